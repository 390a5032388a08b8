"""Results you can trust: the accuracies a metrics row reports are those of the models the run holds.

The run's state is captured after every round (the round programs wrapped), and every evaluated row's
acc_peers / acc_mean / acc_min / acc_max / acc_ensemble / acc_global are recomputed here in numpy from
those parameters on the test set: the MLP's forward pass written out, argmax with ties to the lower
class, the plurality vote with ties to the lower class. Logits within 1e-4 of a tie may round either way
in float32, so a prediction counts as a disagreement only where the top two logits are further apart.

bits_per_peer against docs/protocols.md's formulas is tests/test_comm.py, tests/test_round_bits.py and
tests/test_spec_audit.py (one setting each, every protocol: checked to cover the registry below)."""
import jax
import numpy as np
import pytest

import test_comm
import test_round_bits
import test_spec_audit
import trust_cases as tc
from tallysim import programs, protocols, run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _forward(params: dict, x: np.ndarray) -> np.ndarray:
    """The tallysim MLP (sim/models.py): flatten, Dense-ReLU, Dense-ReLU, Dense, in float64."""
    layers = params["params"]
    h = x.reshape(x.shape[0], -1).astype(np.float64)
    names = sorted(layers, key=lambda n: int(n.split("_")[-1]))
    for i, n in enumerate(names):
        h = h @ np.asarray(layers[n]["kernel"], np.float64) + np.asarray(layers[n]["bias"], np.float64)
        if i < len(names) - 1:
            h = np.maximum(h, 0)
    return h


def _predict(params, x):
    """(argmax with ties to the lower class, whether the top two logits are within 1e-4: either may win)."""
    z = _forward(params, x)
    top2 = np.sort(z, axis=1)[:, -2:]
    return np.argmax(z, axis=1), (top2[:, 1] - top2[:, 0]) < 1e-4


def _capture(monkeypatch) -> dict:
    """{round: (params [Z, P, ...], server [Z, ...]) on the host} after each round program call."""
    seen = {}
    made = programs.round_programs

    def round_programs(*a, **k):
        progs = made(*a, **k)

        def keep(f):
            def call(state, data_c, keys, rs, values):
                state, info = f(state, data_c, keys, rs, values)
                seen[int(np.asarray(rs)[-1])] = jax.device_get((state.params, state.server))
                return state, info
            return call
        return tuple(keep(f) for f in progs)
    monkeypatch.setattr(programs, "round_programs", round_programs)     # programs.chunk_programs calls it
    return seen


def _check_row(row, params_P, server, x, y, classes, what):
    V = len(y)
    P = len(params_P)
    preds, loose = zip(*(_predict(p, x) for p in params_P))
    for i in range(P):
        hits = int(np.sum(preds[i] == y))
        # the run's count, within the examples whose logits tie to 1e-4 (float32 may round them either way)
        run_hits = round(row["acc_peers"][i] * V)
        assert abs(run_hits - hits) <= int(np.sum(loose[i])), (what, "peer", i, run_hits, hits)
    acc = np.asarray([np.mean(p == y) for p in preds])
    slack = max(int(np.sum(lo)) for lo in loose) / V + 1e-6
    assert abs(row["acc_mean"] - acc.mean()) <= slack, (what, "acc_mean", row["acc_mean"], acc.mean())
    assert abs(row["acc_min"] - acc.min()) <= slack and abs(row["acc_max"] - acc.max()) <= slack, what
    counts = np.zeros((V, classes), int)
    for p in preds:
        counts[np.arange(V), p] += 1
    vote = np.argmax(counts, axis=1)                  # plurality, ties to the lower class
    ens = np.mean(vote == y)
    assert abs(row["acc_ensemble"] - ens) <= sum(int(np.sum(lo)) for lo in loose) / V + 1e-6, (what, "ensemble")
    if server is None:
        assert row.get("acc_global") is None, what
    else:
        g, loose_g = _predict(server, x)
        assert abs(round(row["acc_global"] * V) - np.sum(g == y)) <= np.sum(loose_g), (what, "acc_global")


@pytest.mark.parametrize("case", tc.marked("metrics", protocols.REGISTRY))
def test_reported_accuracies_are_those_of_the_held_models(case, tmp_path, monkeypatch):
    cfg = tc.cfg(case, "rounds=3", "seeds=2")             # two lanes: the row is each lane's own models
    b = run.build(cfg)
    seen = _capture(monkeypatch)
    run.run(cfg, str(tmp_path / "r"), progress=False, built=b)
    rows = tc.read_rows(tmp_path / "r")
    x, y = np.asarray(b.fed.x_test, np.float64), np.asarray(b.fed.y_test)
    assert b.fed.x_test.dtype != np.uint8              # synthetic inputs are the model's inputs (fed.to_input)
    assert [r["round"] for r in rows] == [1, 2, 3] and set(seen) == {1, 2, 3}
    for row in rows:
        params, server = seen[row["round"]]
        for z in range(2):
            lane = {k: v[z] for k, v in row["per_seed"].items()}
            lane_params = jax.tree.map(lambda a: a[z], params)
            P = jax.tree.leaves(lane_params)[0].shape[0]
            per_peer = [jax.tree.map(lambda a: a[i], lane_params) for i in range(P)]
            lane_server = None if server is None else jax.tree.map(lambda a: a[z], server)
            _check_row(lane, per_peer, lane_server, x, y, b.ctx.spec.classes, f"{case} round {row['round']} lane {z}")


def test_bits_formulas_cover_every_protocol():
    """Every registered protocol's bits_per_peer is checked against docs/protocols.md at one setting
    somewhere (the spec audit and the bits tests): a new protocol without such a check fails here."""
    cases = (*test_comm.CASES, *test_round_bits.CASES, *test_spec_audit.PARAM_BITS_16, *test_spec_audit.DROPOUT)

    def names(n, c):
        return c == n or c.startswith((n + "-", n + "_")) and c not in protocols.REGISTRY or \
            (c.startswith(n) and c[len(n):].isdigit())
    covered = {n for n in protocols.REGISTRY if any(names(n, c) for c in cases)}
    missing = set(protocols.REGISTRY) - covered
    assert not missing, f"no bits-by-formula case for {sorted(missing)}"
