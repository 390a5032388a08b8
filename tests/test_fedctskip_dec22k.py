"""fedct with fedct.period > 1 skips the probes' forward passes and the vote between exchanges
(protocols/fedct.py, vote_if): a real branch in the lane-vmapped program (r is not batched over lanes),
the skipped rounds' vote diagnostics missing (NaN, null in the row), bits and exchange rounds as
before, no program lowered per round."""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

import tallysim
from tallysim.protocols import fedct
from tallysim.results.rows import PROBE_KEYS
from tallysim.sim import comm

ITEMS = ("protocol.name=fedct", "fedct.period=2", "rounds=4", "warmup_epochs=0")


def _eqns(jaxpr):
    """Every equation of a jaxpr and of the jaxprs inside it (cond branches, scans, pjit bodies)."""
    for e in jaxpr.eqns:
        yield e
        for p in e.params.values():
            for sub in (p if isinstance(p, (tuple, list)) else (p,)):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _eqns(inner)


def _vote_branches(closed) -> int:
    """The cond equations with the vote (an argmax) in one branch and none in the other: fedct's skip.
    local training's own cond (a peer with no step) has no argmax in either branch."""
    def votes(branch):
        return any(e.primitive.name == "argmax" for e in _eqns(branch.jaxpr))
    return sum(1 for e in _eqns(closed.jaxpr) if e.primitive.name == "cond"
               and sorted(votes(b) for b in e.params["branches"]) == [False, True])


def test_between_exchanges_no_vote_is_computed_and_its_diagnostics_are_missing():
    d = tallysim.drive(tiny(*ITEMS))
    ctx = d.built.ctx
    M, A = ctx.spec.probes, ctx.spec.active
    # the program run.py compiles vmaps the round over lanes with r unbatched (programs.py): the skip
    # stays a cond there; with r batched (the control: the test can fail) vmap turns it into a select
    two = jax.tree.map(lambda a: jnp.stack([a, a]), (d.state, d.root))
    lanes = jax.make_jaxpr(jax.vmap(d.built.protocol.round, in_axes=(0, None, 0, None)))
    assert _vote_branches(lanes(two[0], d.built.one, two[1], 1)) == 1
    batched = jax.make_jaxpr(jax.vmap(d.built.protocol.round, in_axes=(0, None, 0, 0)))
    assert _vote_branches(batched(two[0], d.built.one, two[1], jnp.array([1, 2]))) == 0
    kept = []
    for r in (1, 2, 3, 4):
        _, info = d.step()
        kept.append(np.asarray(d.state.votes.target_M).copy())
        diag = {k: float(info[k]) for k in (*PROBE_KEYS, "kept") if k in info}
        assert len(diag) == len(PROBE_KEYS) + 1, sorted(info)
        if r % 2:
            assert int(info["exchanged"]) == 0 and all(np.isnan(v) for v in diag.values()), (r, diag)
            assert d.bits() == comm.RoundBits(0, 0, A)
        else:
            assert int(info["exchanged"]) == 1 and all(np.isfinite(v) for v in diag.values()), (r, diag)
            assert d.bits() == comm.RoundBits(M * 4, M * 4, A)
    assert not kept[0].any() and np.array_equal(kept[1], kept[2])     # round 3 keeps round 2's vote


# The old dataflow: the vote every round, kept where the round exchanges (main before fedctskip)
OLD = textwrap.dedent("""
    import hashlib, json, sys
    sys.path.insert(0, sys.argv[1])
    import jax, jax.numpy as jnp, numpy as np
    from conftest import tiny
    import tallysim
    from tallysim.protocols import fedct

    def every_round(exchange, vote_round, state):
        return jax.tree.map(lambda a, b: jnp.where(exchange, a, b), vote_round(state),
                            (state.votes, fedct.missing(vote_round, state)))

    out = {}
    for name in ("new", "old"):
        if name == "old":
            fedct.vote_if = every_round
        d = tallysim.drive(tiny(*sys.argv[2:]))
        rounds = []
        for r in range(4):
            _, info = d.step()
            leaves = jax.tree.leaves((d.state.params, d.state.opt, d.state.votes))
            h = hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in leaves)).hexdigest()
            rounds.append({"state": h, "bits": list(d.bits().totals()),
                           **{k: np.asarray(v).tolist() for k, v in info.items()}})
        out[name] = rounds
    print(json.dumps(out))
""")


@pytest.mark.slow     # a subprocess, two runs (~20 s); the skip's wiring: the fast test above
def test_exchange_rounds_bit_for_bit_as_the_vote_every_round():
    """Without FMA (XLA_FLAGS=--xla_cpu_max_isa=AVX) two programs that fuse differently still compute
    the same bits: there the skipping run's state (parameters, optimizer, kept vote) equals the
    every-round vote's in every round, and each exchange round's info and bits are the same, bit for
    bit. (With FMA any change to the program, even jnp.where(exchange, v, nan) on an info value, moves
    the trained parameters in float32's last bit: XLA contracts multiply-adds per fusion.)"""
    import json
    tests = os.path.dirname(__file__)
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_max_isa=AVX", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", OLD, tests, *ITEMS], capture_output=True, text=True,
                         env=env, check=True, timeout=600)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for r, (new, old) in enumerate(zip(got["new"], got["old"]), start=1):
        assert new["state"] == old["state"] and new["bits"] == old["bits"], r
        if r % 2 == 0:
            assert new == old, r
        else:
            assert np.isnan(new["vote_acc"]) and new["exchanged"] == 0
