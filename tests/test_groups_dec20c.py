"""Model groups over seeds and per group (features26), on one tiny grouped 2-seed run shared by the file:
`tallysim table`'s `final@NAME` with its std over seeds beside it (`final_std@NAME`, as `final_std` beside
`final`), each seed's value in read_rows and Results, against NumPy's mean and std of the per-seed values;
and each row's `train_loss@NAME`, the mean of the group's active peers' local losses, against NumPy's
mean of the per-peer losses of local training run outside the round.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tallysim
from conftest import run_rows, tiny
from tallysim.protocols.base import active_set, local_round, round_keys
from tallysim.results import table

# tests/test_groups.py's grouped participation config (5 peers in groups of 3 and 2 of two widths, A_g of
# each: 2 and 1), as `local` (no exchange: the cheapest grouped round) over two seeds, two rounds
GROUPED = ("protocol.name=local", "peers=5", "participation=0.5", "model.groups=a:3;b:2:width=16", "seeds=2")


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    out = tmp_path_factory.mktemp("grouped") / "run"
    return out, run_rows(tiny(*GROUPED), out)


def test_table_gives_each_groups_final_with_its_std_over_seeds(grouped):
    out, rows = grouped
    last = rows[-1]
    cols, (row,) = table.table_rows([out], log=lambda m: None)
    assert cols[cols.index("best") + 1:cols.index("best") + 5] == ["final@a", "final_std@a", "final@b",
                                                                   "final_std@b"]
    for name in ("a", "b"):
        each = last["per_seed"][f"acc_mean@{name}"]         # one value per seed, seed order
        assert len(each) == 2 and each[0] != each[1]        # two seeds that differ: a std that is not 0
        assert row[f"final@{name}"] == pytest.approx(np.mean(each), abs=1e-7)
        assert row[f"final_std@{name}"] == pytest.approx(np.std(each), abs=1e-7) and row[f"final_std@{name}"] > 0
    # the run's own accuracy has the same two forms: its mean and its std over seeds
    assert row["final_std"] == pytest.approx(np.std(last["per_seed"]["acc_mean"]), abs=1e-7)
    text = table.markdown(cols, rows=[row])
    assert f"| {row['final@a']:.4f} | {row['final_std@a']:.4f} | {row['final@b']:.4f} | {row['final_std@b']:.4f} |" in text


def test_read_rows_and_results_hold_each_groups_per_seed_values(grouped):
    out, rows = grouped
    flat = tallysim.read_rows(out)[-1]
    last = tallysim.Results.read(out).last
    for name in ("a", "b"):
        key = f"acc_mean@{name}"
        for got in (flat, last):
            assert got["per_seed"][key] == rows[-1]["per_seed"][key]
            assert got[key + "_std"] == pytest.approx(np.std(got["per_seed"][key]), abs=1e-7)


def test_each_groups_train_loss_is_the_mean_of_its_active_peers_losses(grouped):
    out, rows = grouped
    d = tallysim.drive(tiny(*GROUPED))              # seed 0, with the keys a run of it uses
    ctx, data = d.built.ctx, d.built.one
    keys = round_keys(d.root, 1)
    idx = np.asarray(active_set(ctx, keys.active, data))          # global peer ids, 2 of group a's 3, 1 of b's 2
    # round 1's local training outside the round: every active peer's own loss, in active order
    loss_A = np.asarray(jax.jit(lambda s: local_round(ctx, ctx.local_spec(), s, data, keys, jnp.asarray(idx))[3])(d.state))
    assert loss_A.shape == (3,) and len(set(loss_A.tolist())) == 3
    by_numpy = {"a": loss_A[idx < 3].mean(), "b": loss_A[idx >= 3].mean()}   # group a is peers 0-2, b 3-4
    _, info = d.step()
    first = next(r for r in rows if r["round"] == 1)
    for name, want in by_numpy.items():
        assert float(info[f"train_loss@{name}"]) == pytest.approx(want, rel=1e-6)
        # the run's row (seed 0 of two lanes of one program: the same keys, float sums in another order)
        assert first["per_seed"][f"train_loss@{name}"][0] == pytest.approx(want, rel=1e-5)
    assert by_numpy["a"] != pytest.approx(by_numpy["b"])
    for row in rows:        # every row, every seed: the group means weigh into the run's mean by A_g (2 and 1)
        each = row["per_seed"]
        for s in range(2):
            assert each["train_loss"][s] == pytest.approx((2 * each["train_loss@a"][s] + each["train_loss@b"][s]) / 3,
                                                          rel=1e-5)
        assert row["train_loss@a"] == pytest.approx(np.mean(each["train_loss@a"]), abs=1e-7)
        assert row["train_loss@a_std"] == pytest.approx(np.std(each["train_loss@a"]), abs=1e-7)



def test_a_round_without_group_losses_writes_them_null():
    # a plugin's own grouped round whose info holds train_loss alone (no loss_info): its rows' train_loss@NAME
    # are null, not missing, nor another group's value
    from tallysim.results import metrics

    class Ledger:
        up, down = 8, 8

        def row(self):
            return {"bits_up": 8, "bits_down": 8, "bits_per_peer": 4.0}
    ev = {"acc_P": np.array([[0.5, 0.75, 0.25, 1.0]], np.float32), "acc_global": None, "acc_ensemble": np.array([0.7])}
    groups = (("a", 0, 2, 2, 4), ("b", 2, 4, 2, 4))
    plain = metrics.lane_row(ev, {"train_loss": np.array([1.5])}, Ledger(), 0, 1, 0.0, groups=groups)
    assert plain["train_loss@a"] is None and plain["train_loss@b"] is None
    info = {"train_loss": np.array([1.5]), "train_loss@a": np.array([1.0]), "train_loss@b": np.array([2.0])}
    row = metrics.lane_row(ev, info, Ledger(), 0, 1, 0.0, groups=groups)
    assert (row["train_loss@a"], row["train_loss@b"], row["acc_mean@b"]) == (1.0, 2.0, 0.625)
