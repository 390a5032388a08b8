"""Cross-device populations (issue 33, docs/population.md): client_storage=auto holds a stateless
protocol's server model alone and materialises each round's cohort from it, with the same numbers as the
stacked storage; stateful protocols keep theirs; the memory estimate knows which, and refuses in one line
before anything is loaded or compiled."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim import cli, config, protocols, run, sizing, storage_notes
from tallysim.build import build
from tallysim.results import metrics
from tallysim.sim import lanes, peers
from conftest import TINY, read_rows, tiny
from test_resume import crash_then_resume, no_wall

STATELESS = {"fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "fednova", "fedpaq", "signsgd", "randk",
             "feddf"}


def test_which_protocols_keep_client_state():
    """The brief's list, protocol by protocol; the configuration can make a stateless one stateful."""
    for name in protocols.names():
        why = protocols.client_state(config.Config().replace(protocol={"name": name}))
        assert (why == "") == (name in STATELESS), (name, why)
        assert why == "" or why.startswith(f"{name} keeps "), why
    fedavg = config.Config().replace(protocol={"name": "fedavg"})
    assert "optim.reset_each_round=false" in protocols.client_state(fedavg.replace(**{"optim.reset_each_round": False}))
    assert "straggler" in protocols.client_state(fedavg.replace(faults={"kind": "straggler"}))
    assert "control variate" in protocols.client_state(fedavg.replace(protocol={"name": "scaffold"}))


def _drive(cfg, rounds):
    """(state after each round, cost of each round) of the first lane, driving the protocol directly."""
    b = build(cfg)
    p, data = b.protocol, b.one
    key, root = jax.random.split(jax.random.PRNGKey(cfg.seed))
    state = jax.jit(p.init)(key, data)
    step = jax.jit(p.round)
    out = []
    for r in range(1, rounds + 1):
        state, info = step(state, data, root, r)
        out.append((state, p.cost(jax.tree.map(lambda a: np.asarray(a).tolist(), info)), float(info["train_loss"])))
    return b, out


@pytest.mark.parametrize("name", ["fedavg", pytest.param("fedadam", marks=pytest.mark.slow)])
def test_stateless_equals_stacked_round_for_round(name):
    """The server model after every round, the round's loss and its exact bits: the cohort path equals
    today's stacked path (float rounding only: the two are different XLA programs)."""
    items = [f"protocol.name={name}", "participation=0.5", "rounds=2"]
    bs, stacked = _drive(tiny(*items), 2)
    bc, cohort = _drive(tiny(*items, "client_storage=auto"), 2)
    assert not bs.ctx.cohort and bc.ctx.cohort
    for (s, cost_s, loss_s), (c, cost_c, loss_c) in zip(stacked, cohort):
        assert c.params is None and c.opt is None                      # nothing per client is kept
        assert jax.tree.leaves(s.params)[0].shape[0] == 4               # the stacked path keeps all four
        assert cost_s == cost_c
        np.testing.assert_allclose(loss_c, loss_s, rtol=1e-5)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6),
                     s.server, c.server)


def test_stateless_run_rows_and_readers(tmp_path, capsys):
    """A run's rows: the server model's accuracy and bits as the stacked run's; no per-client numbers
    (acc_mean, acc_ensemble null, acc_peers empty, eval_peers 0); the readers and `table` take them."""
    items = ["protocol.name=fedavg", "participation=0.5", "rounds=2"]
    ref = read_rows(run.run(tiny(*items), str(tmp_path / "s"), progress=False)["out"])
    out = tmp_path / "c"
    assert cli.main(["run", *TINY, *items, "client_storage=auto", "--out", str(out), "--quiet"]) == 0
    assert "server model; no client model is kept" in capsys.readouterr().out
    rows = metrics.read_rows(out)
    for a, b in zip(ref, rows):
        assert b["bits_per_peer"] == a["bits_per_peer"] and b["round"] == a["round"]
        assert abs(b["acc_global"] - a["acc_global"]) <= 1 / 300 + 1e-9        # at most one test example
        assert a["eval_peers"] == 4 and len(a["acc_peers"]) == 4 and a["acc_mean"] is not None
        assert b["eval_peers"] == 0 and b["acc_peers"] == [] and b["acc_mean"] is None and b["acc_ensemble"] is None
    assert metrics.run_accuracy(rows) == rows[-1]["acc_global"]
    assert cli.main(["table", str(out)]) == 0


def test_stateful_protocol_unchanged_under_auto(tmp_path):
    """client_storage=auto leaves a stateful protocol's storage, and so its every number, as it was."""
    items = ["protocol.name=local", "participation=0.5", "rounds=2"]
    b = build(tiny(*items, "client_storage=auto"))
    assert not b.ctx.cohort
    a = read_rows(run.run(tiny(*items), str(tmp_path / "a"), progress=False)["out"])
    c = read_rows(run.run(tiny(*items, "client_storage=auto"), str(tmp_path / "c"), progress=False, built=b)["out"])
    assert no_wall(a) == no_wall(c)


def test_resume_a_stateless_run(tmp_path, monkeypatch):
    """A cohort run killed after its checkpoint resumes to the uninterrupted run's rows."""
    ref, resumed = crash_then_resume(tiny("protocol.name=fedavg", "participation=0.5", "rounds=4",
                                          "client_storage=auto"), tmp_path, monkeypatch)
    assert resumed == ref


def test_grouped_sweep_of_stateless_runs(tmp_path):
    """Two learning rates as one program (lanes) give each run's own rows."""
    cfgs = [tiny("protocol.name=fedavg", "participation=0.5", "client_storage=auto", f"optim.lr={lr}")
            for lr in (0.05, 0.1)]
    outs = [str(tmp_path / f"g{i}") for i in range(2)]
    assert len(lanes.group(cfgs)) == 1
    run.run_group(cfgs, outs, progress=False)
    for c, o in zip(cfgs, outs):
        alone = read_rows(run.run(c, str(tmp_path / ("a" + o[-1])), progress=False)["out"])
        for g, a in zip(read_rows(o), alone):
            assert g["bits_per_peer"] == a["bits_per_peer"] and g["acc_mean"] is None
            assert abs(g["acc_global"] - a["acc_global"]) <= 1 / 300 + 1e-9
            np.testing.assert_allclose(g["train_loss"], a["train_loss"], rtol=1e-4)


# ----------------------------------------------------------------------------- memory and refusals

def _refused(capsys, tmp_path, monkeypatch, *items) -> str:
    monkeypatch.setattr("tallysim.data.load", lambda *a, **k: pytest.fail("loaded data"))
    monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("compiled"))
    code = cli.main(["run", "data.name=synthetic", "data.train_size=40000000", "model.width=2000", *items,
                     "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("tallysim: error: "), err
    assert not (tmp_path / "o").exists()
    return err


def test_population_that_does_not_fit_is_refused_with_the_fix(capsys, tmp_path, monkeypatch):
    err = _refused(capsys, tmp_path, monkeypatch, "protocol.name=fedavg", "peers=1000000", "participation=0.00001")
    assert "stacked by client_storage=stacked" in err and "set client_storage=auto" in err, err
    assert "fedavg keeps no client state: the server model and its 10 active clients need" in err, err


def test_stateful_protocol_refusal_names_what_it_keeps(capsys, tmp_path, monkeypatch):
    err = _refused(capsys, tmp_path, monkeypatch, "protocol.name=tally", "peers=1000000", "participation=0.00001",
                   "client_storage=auto")
    assert "tally keeps each client's own model between rounds" in err and "lower model.width, peers" in err, err
    err = _refused(capsys, tmp_path, monkeypatch, "protocol.name=fedavg", "peers=1000000", "participation=0.00001",
                   "client_storage=auto", "optim.reset_each_round=false")
    assert "fedavg keeps each client's optimizer state" in err, err


def test_estimate_of_a_cohort_does_not_grow_with_the_population():
    def models(peers, storage, name="fedavg"):
        cfg = config.Config().replace(peers=peers, participation=10 / peers, client_storage=storage,
                                      protocol={"name": name}, data={"name": "synthetic"})
        return sizing.estimate_bytes(cfg)[0][1]
    assert models(10 ** 4, "auto") == models(10 ** 6, "auto")
    assert models(10 ** 6, "stacked") == 100 * models(10 ** 4, "stacked")
    assert models(10 ** 6, "auto", "tally") == models(10 ** 6, "stacked", "tally")     # tally keeps state


# ----------------------------------------------------------------------------- evaluating a sample

def test_eval_sample_draws_distinct_clients_per_seed():
    a = peers.eval_sample(3, "random", 50, [0, 1])
    assert a.shape == (2, 3) and all(len(set(r)) == 3 and list(r) == sorted(r) for r in a)
    assert not np.array_equal(a[0], a[1])                               # each seed its own sample
    np.testing.assert_array_equal(a, peers.eval_sample(3, "random", 50, [0, 1]))   # fixed by the seed
    np.testing.assert_array_equal(peers.eval_sample(3, "first", 50, [7])[0], [0, 1, 2])
    assert peers.eval_sample(None, "random", 50, [0]) is None and peers.eval_sample(50, "random", 50, [0]) is None


def test_eval_sample_random_evaluates_exactly_the_sampled_clients(tmp_path):
    """A stateful run evaluating a sample of 2 of its 4 peers reports those peers' own accuracies (as
    the run evaluating every peer does) and the sample size."""
    items = ["protocol.name=local", "rounds=1"]
    full = read_rows(run.run(tiny(*items), str(tmp_path / "f"), progress=False)["out"])[-1]
    part = read_rows(run.run(tiny(*items, "eval_peers=2", "eval_sample=random"), str(tmp_path / "p"),
                             progress=False)["out"])[-1]
    pick = peers.eval_sample(2, "random", 4, [0])[0]
    assert part["eval_peers"] == 2 and full["eval_peers"] == 4
    np.testing.assert_allclose(part["acc_peers"], np.asarray(full["acc_peers"])[pick], atol=1e-4)
    assert part["acc_mean"] == pytest.approx(np.mean(np.asarray(full["acc_peers"])[pick]), abs=1e-4)



@pytest.mark.slow
def test_bench_population_point():
    """`bench --population`'s measurement on a tiny population (20 s on the shared CPU): the cohort
    storage holds no client's model (state = the server model), the stacked one all of them."""
    from tallysim.bench import population
    auto = population.point(40, 4, "auto", examples=4, rounds=1)
    stacked = population.point(40, 4, "stacked", examples=4, rounds=1)
    assert auto["cohort"] and not stacked["cohort"] and auto["active"] == 4
    assert stacked["state_bytes"] > 30 * auto["state_bytes"]        # 40 models and momenta vs one model
    assert auto["round_s"] > 0 and auto["peak_rss"] > 0 and auto["data_bytes"] > 0
    assert auto["loss"] == pytest.approx(stacked["loss"], rel=1e-5)  # the same round, either storage


def test_bench_population_table_and_draw():
    """The table has a line per point with its storage, memory ratio and the draw's share (the small
    twin of test_bench_population_point); the draw is timed on base.active_set itself."""
    from tallysim.bench import population
    assert population.draw_s(40, 4, repeats=1) > 0
    row = dict(peers=40, active=4, storage="auto", examples=4, round_s=0.002, peak_rss=5e8, data_bytes=1e6,
               vs_target=1.07, draw_s=0.0005)
    lines = population.table([row, dict(row, storage="stacked", vs_target=1.2),
                              dict(peers=40, active=4, storage="stacked", error="MemoryError")], row).splitlines()
    assert len(lines) == 6
    assert "auto" in lines[3] and "1.07x" in lines[3] and "0.5 |" in lines[3] and "2.0 |" in lines[3]
    assert "stacked" in lines[4] and "1.20x" in lines[4] and "failed: MemoryError" in lines[5]


# ----------------------------------------------------------------------------- the cohort draw

@pytest.mark.parametrize("P, A", [(1625, 10), (1626, 10), (1626, 1625), (70_000, 100)])
def test_cohort_draw_is_the_permutations_first_A(P, A):
    """sim/cohort.draw equals today's rule, jnp.sort(jax.random.permutation(key, P)[:A]), bit for bit:
    on both sides of the one-sort/two-sort boundary (P = 1,625 / 1,626), and on its fallback."""
    from tallysim.sim import cohort
    draw = jax.jit(lambda k, b: cohort.draw(k, P, A, b), static_argnums=1)
    want = jax.jit(lambda k: jax.numpy.sort(jax.random.permutation(k, P)[:A]))
    for s in range(3):
        k = jax.random.fold_in(jax.random.PRNGKey(11), s)
        np.testing.assert_array_equal(draw(k, 0), want(k))
    if cohort.rounds(P) == 2:
        np.testing.assert_array_equal(draw(k, 2), want(k))         # 2 candidates: the fallback runs
        # as run.py calls it, vmapped over lanes (its fallback loop then runs while any lane needs it)
        keys = jax.random.split(k, 2)
        for b in (0, 2):
            got = jax.jit(jax.vmap(lambda kk: cohort.draw(kk, P, A, b)))(keys)
            np.testing.assert_array_equal(got, jax.vmap(want)(keys))


def test_rank_selection_with_ties_is_a_stable_argsort():
    """select_ranks against numpy's stable argsort on keys with many equal values (equal keys in
    position order, as lax.sort_key_val orders them), and the budget flag."""
    from tallysim.sim import cohort
    rng = np.random.default_rng(0)
    select = jax.jit(cohort.select_ranks, static_argnums=2)
    for P in (10, 30_000):
        keys = (rng.integers(0, 5, P).astype(np.uint32) << 30) | rng.integers(0, 3, P).astype(np.uint32)
        ranks = rng.choice(P, 7, replace=False)
        pos, fits = select(jnp.asarray(keys), jnp.asarray(ranks), P)
        assert bool(fits)
        np.testing.assert_array_equal(np.asarray(pos), np.argsort(keys, kind="stable")[ranks])
    assert not bool(select(jnp.asarray(keys), jnp.asarray(ranks), 5)[1])      # 30,000 candidates > 5


def test_own_client_peers_map_into_the_eval_sample():
    """eval_sample=random with per-client metrics: the peer holding client k, as its position in the
    lane's sample (-1 when not sampled, or no peer holds k)."""
    own = np.array([[3, 0, -1, 7, 3], [2, 2, 5, -1, 9]])
    pick = np.array([[0, 3, 9], [1, 2, 9]])
    np.testing.assert_array_equal(peers.sample_positions(own, pick), [[1, 0, -1, -1, 1], [1, 1, -1, -1, 2]])


def test_storage_hint_says_what_auto_would_save_only_where_it_applies(tmp_path, capsys, monkeypatch):
    big = ["protocol.name=fedavg", "peers=100000", "participation=0.0001", "model.width=200"]

    def cfg_of(items):
        return config.apply_overrides(config.Config(), items)
    hint = storage_notes.storage_hint(cfg_of(big))
    # 100,000 MLPs of 784-200-200-10 (198,800 parameters), 3 float32 copies: 239 GB; the cohort's 11: 26.2 MB
    assert hint and "100,000 clients' models (about 239 GB)" in hint and "the 10 active ones (about 26.2 MB)" in hint
    for items in (big + ["client_storage=auto"], big + ["participation=1"],
                  ["protocol.name=tally", "peers=100000", "participation=0.0001", "model.width=200"],
                  ["protocol.name=fedavg", "peers=100", "participation=0.1"]):
        assert storage_notes.storage_hint(cfg_of(items)) is None, items
    monkeypatch.setattr(run, "run", lambda *a, **k: {})            # the note comes before anything runs
    monkeypatch.setattr(storage_notes, "HINT_BYTES", 1)
    monkeypatch.setattr(metrics, "summary_line", lambda *a: "")
    cli.main(["run", "protocol.name=fedavg", "peers=10", "participation=0.5", "data.name=synthetic",
              "--out", str(tmp_path / "o")])
    assert "tallysim: note: fedavg keeps no client state" in capsys.readouterr().err


def test_draw_hint_names_the_sequential_draw_for_large_populations():
    def cfg_of(items):
        return config.apply_overrides(config.Config(), items)
    big = ["protocol.name=fedavg", "peers=100000", "participation=0.0001"]
    assert "cohort_draw=sequential draws them from the same distribution in O(A)" in storage_notes.draw_hint(cfg_of(big))
    assert "10 of 100,000 clients" in storage_notes.draw_hint(cfg_of(big))
    for items in (big + ["cohort_draw=sequential"], ["peers=99999", "participation=0.001"], big[:2]):
        assert storage_notes.draw_hint(cfg_of(items)) is None, items
    # a cohort run of sequential draws: no draw hint (its memory line, storage_notes.cohort_note, is test_leftovers_dec24a's)
    assert not [n for n in storage_notes.run_notes(cfg_of(big + ["cohort_draw=sequential", "client_storage=auto"]))
                if "cohort_draw" in n]
