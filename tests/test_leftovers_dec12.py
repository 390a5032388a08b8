"""Leftovers of 2026-12-12: FedNova's momentum normaliser with a carried buffer (refused), a field written
both dotted and nested in one mapping (refused), the seed-overlap warning from every sweep entrance, and
the one path-type check. Each case failed before its fix; the controls (`ok`) pass both. Nothing here
compiles (`no_compile`) but the Python API's sweep test, which stops before running."""
import numpy as np
import pytest

from tallysim import cli, config, validation  # noqa: F401  (imported before jit is patched)
from tallysim.config import ConfigError
from conftest import TINY, one_line, tiny

# ----------------------------------------------------------------------------- 1. FedNova's carried momentum

NOVA = ["protocol.name=fednova", "optim.momentum=0.9"]


def test_fednova_refuses_momentum_with_a_carried_buffer(tmp_path, capsys, no_compile):
    """It ran, normalising last round's momentum as if it were this round's gradients."""
    line = one_line(capsys, ["run", *TINY, *NOVA, "optim.reset_each_round=false", "--out", str(tmp_path / "o")])
    assert ("optim.reset_each_round=false with optim.momentum=0.9 is not allowed with protocol.name=fednova: "
            "its momentum normaliser a_i counts this round's gradients from a zero buffer") in line, line
    assert "allowed: optim.reset_each_round=true, or optim.momentum=0" in line, line
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match="optim.reset_each_round=false with optim.momentum=0.9"):
        config.validate(tiny(*NOVA, "optim.reset_each_round=false"))


@pytest.mark.parametrize("items", [                                                                      # ok
    NOVA, [*NOVA, "optim.reset_each_round=true"], ["protocol.name=fednova", "optim.momentum=0",
                                                   "optim.reset_each_round=false"],
    ["protocol.name=fednova", "optim.name=adam", "optim.momentum=0", "optim.reset_each_round=false"],
    ["protocol.name=fedavg", "optim.momentum=0.9", "optim.reset_each_round=false"],
])
def test_fednova_and_others_still_accept_the_rest(items):
    config.validate(tiny(*items))


def test_the_carried_buffer_is_an_offset_no_normaliser_scales():
    """The refusal's reason, against optax's SGD: with zero gradients tau steps from a buffer v move the
    model by lr rho (1 - rho^tau) / (1 - rho) v, whatever a_i divides it by afterwards."""
    import optax
    lr, rho, tau = 0.05, 0.9, 7
    tx = optax.sgd(lr, momentum=rho)
    v = np.array([1.0, -2.0, 0.5], np.float32)
    state = tx.init(np.zeros(3, np.float32))
    state = (state[0]._replace(trace=v),) + tuple(state[1:])
    moved = np.zeros(3, np.float32)
    for _ in range(tau):
        upd, state = tx.update(np.zeros(3, np.float32), state)
        moved += np.asarray(upd)
    np.testing.assert_allclose(-moved, lr * rho * (1 - rho ** tau) / (1 - rho) * v, rtol=1e-5)
