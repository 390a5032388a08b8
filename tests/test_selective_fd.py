"""Selective-FD (`selective_fd`, Shao et al. 2024; protocols/selective_fd.py): the shared predictions,
the server's average over the sharers and its ambiguity filter against numpy from the peers' own
predictions on the round's probes, exact bits (the shared vectors plus a 1-bit-per-probe mask each
way), the degenerate case (both thresholds 0 is softlabel's mean), and a grouped sweep."""
import jax
import numpy as np
from conftest import tiny
from test_cfd import _probs, caught  # noqa: F401 - the fixture

import tallysim
from tallysim import sweep
from tallysim.protocols import probe_round


def test_selective_fd_matches_numpy(caught, monkeypatch):  # noqa: F811
    tc, ts = 0.6, 0.7
    weights = []
    real = probe_round.local_round

    def spy(ctx, lspec, state, data, keys, idx, probes=None, **kw):
        jax.debug.callback(lambda w: weights.append(np.asarray(w)), probes.weight_M)
        return real(ctx, lspec, state, data, keys, idx, probes=probes, **kw)
    d = tallysim.drive(tiny("protocol.name=selective_fd", f"selective_fd.client_threshold={tc}",
                            f"selective_fd.server_threshold={ts}"))
    start = d.state.params
    monkeypatch.setattr(probe_round, "local_round", spy)   # inside the catcher: both see the round
    d.step()
    x_M, target = caught[-1]
    p = _probs(d, start, x_M)
    share = p.max(-1) >= tc                                  # [A, M]
    n = share.sum(0)
    want = np.einsum("am,amc->mc", share, p) / np.maximum(n, 1)[:, None]
    keep = (n > 0) & (want.max(-1) >= ts)
    assert 0 < share.mean() < 1 and 0 < keep.mean() < 1      # both selectors act in this case
    np.testing.assert_array_equal(weights[-1], keep.astype(np.float32))
    np.testing.assert_allclose(target[keep], want[keep], rtol=1e-5, atol=1e-6)
    M, C = want.shape
    bits = d.bits()
    assert bits.up_total == sum(M + int(k) * C * 32 for k in share.sum(1))
    assert bits.down == M + int(keep.sum()) * C * 32 and bits.down_total == 4 * bits.down


def test_selective_fd_without_thresholds_is_softlabel():
    a = tallysim.drive(tiny("protocol.name=softlabel"))
    b = tallysim.drive(tiny("protocol.name=selective_fd", "selective_fd.client_threshold=0",
                            "selective_fd.server_threshold=0"))
    for _ in range(2):
        a.step()
        b.step()
    for x, y in zip(jax.tree.leaves(a.state.params), jax.tree.leaves(b.state.params)):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-4, atol=1e-5)
    M = b.built.ctx.spec.probes
    sa, sb = a.bits(), b.bits()
    assert sb.totals() == ((sa.up + M) * 4, (sa.down + M) * 4)   # every probe shared and kept, plus the masks


def test_selective_fd_sweeps_its_threshold_as_one_program(tmp_path):
    logs = []
    runs = [(f"t={v}", [f"selective_fd.client_threshold={v}"]) for v in (0.3, 0.9)]
    recs = sweep.run_sweep(tiny("protocol.name=selective_fd", "rounds=1"), runs, tmp_path / "sw",
                           progress=False, log=logs.append)
    assert [r["status"] for r in recs] == ["done", "done"]
    assert any("2 runs as one program" in m for m in logs), logs
