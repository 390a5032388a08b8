"""A round's loss where no peer took a local step is missing, not 0 (pairing, 2026-12-07).

`train_loss@NAME` of a model group in which no active peer stepped read 0 (local.stepped_mean_fill's value
for "none stepped"), and counted 0 in the row's `train_loss`; an ungrouped round without a stepping peer
read 0 too. Now local training counts its stepping peers (train_peers' `stepped`, each group's
`stepped@NAME`), loss_info leaves such a group out of `train_loss`, and the row writes null there, as it
writes any other missing value (trackers and seed means leave it out). The program itself still carries 0,
never NaN (run.py stops a run whose train_loss is not finite)."""
from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from tallysim import run
from tallysim.protocols.round_helpers import loss_info
from tallysim.results.rows import lane_row
from tallysim.sim import comm


def _groups():
    return [types.SimpleNamespace(name="phone", a_lo=0, a_hi=3), types.SimpleNamespace(name="server", a_lo=3, a_hi=4)]


def test_loss_info_leaves_a_group_without_a_step_out_and_keeps_every_stepping_round_bit_for_bit():
    ctx = types.SimpleNamespace(model_groups=_groups())
    loss_A = jnp.array([0.0, 0.0, 0.0, 1.25], jnp.float32)         # phone: none stepped (the fill's 0)
    steps = {"stepped": jnp.int32(1), "stepped@phone": jnp.int32(0), "stepped@server": jnp.int32(1)}
    info = loss_info(ctx, loss_A, steps)
    assert float(info["train_loss"]) == 1.25                        # was 1/4 x 1.25: the empty group as 0
    assert float(loss_info(ctx, loss_A)["train_loss"]) == pytest.approx(0.3125)    # without steps: as before
    # every group stepped: exactly the mean over all A (no other arithmetic in the program)
    odd = jnp.array([0.1, 0.7, 1.3, 2.9], jnp.float32)
    every = {"stepped": jnp.int32(4), "stepped@phone": jnp.int32(3), "stepped@server": jnp.int32(1)}
    assert np.asarray(loss_info(ctx, odd, every)["train_loss"]).tobytes() == np.asarray(jnp.mean(odd)).tobytes()
    none = {"stepped": jnp.int32(0), "stepped@phone": jnp.int32(0), "stepped@server": jnp.int32(0)}
    assert float(loss_info(ctx, jnp.zeros(4), none)["train_loss"]) == 0.0       # finite: no divergence


def _row(info, groups=()):
    led = comm.Ledger(4)
    ev = {"acc_P": np.array([[0.5, 0.5, 0.5, 0.5]]), "acc_global": None, "acc_ensemble": np.array([0.5])}
    lane = {k: np.asarray([v]) for k, v in info.items()}
    return lane_row(ev, lane, led, 0, 1, 0.0, groups=groups)


def test_the_row_writes_null_where_no_peer_stepped():
    base = {"train_loss": 0.0, "steps_real": 0, "steps_computed": 0}
    groups = (("phone", 0, 3, 3, 4), ("server", 3, 4, 1, 4))
    row = _row({**base, "stepped": 1, "stepped@phone": 0, "stepped@server": 1, "train_loss@phone": 0.0,
                "train_loss@server": 1.25, "train_loss": 1.25}, groups)
    assert row["train_loss@phone"] is None and row["train_loss@server"] == 1.25 and row["train_loss"] == 1.25
    assert _row({**base, "stepped": 0})["train_loss"] is None                  # ungrouped: the same rule
    assert _row({**base, "train_loss": 0.5})["train_loss"] == 0.5              # no count (a plugin's info): as before


def test_a_grouped_round_whose_group_has_no_data_reports_it_missing():
    """The wiring, driven: group `b`'s two peers hold no examples (their counts zeroed), so none steps; the
    round's info says so and loss_info leaves b out. Fails without the counts: train_loss@b's row read 0.0 and
    train_loss half of a's."""
    b = run.build(tiny("protocol.name=local", "model.groups=a:2;b:2", "rounds=1"))
    data = b.one._replace(count_P=b.one.count_P.at[2:].set(0))
    k_init, root = jax.random.split(jax.random.PRNGKey(0))
    _, info = jax.jit(b.protocol.round)(b.protocol.init(k_init, data), data, root, jnp.int32(1))
    assert (int(info["stepped@a"]), int(info["stepped@b"]), int(info["stepped"])) == (2, 0, 2)
    assert float(info["train_loss"]) == pytest.approx(float(info["train_loss@a"])) and float(info["train_loss@a"]) > 0
    row = _row({k: np.asarray(v) for k, v in info.items()}, (("a", 0, 2, 2, 4), ("b", 2, 4, 2, 4)))
    assert row["train_loss@b"] is None and row["train_loss"] == pytest.approx(float(info["train_loss@a"]))
