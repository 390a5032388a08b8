"""What a plugin's Protocol must return, checked where it is built (build.py builds every protocol here).

A built-in protocol is tested; a plugin's is not, and a mistake in it used to surface as a KeyError in
run.py's bookkeeping, a silently reshaped state or a traceback from its cost. Here the factory's result
must be a Protocol, its round is checked while it is traced (no cost at run time: shapes are static
there) and its cost is wrapped, each failure one line naming the protocol, its plugin and what is
expected.
"""
from __future__ import annotations

import numbers
import sys
from typing import Optional

import jax
import numpy as np

from tallysim import protocols
from tallysim.fields import ConfigError
from tallysim.protocols.base import Protocol
from tallysim.sim.comm import RoundBits

# The info entries run.py reads from every round (the ledger's steps, the loss it checks for divergence),
# each a scalar per lane.
REQUIRED_INFO = ("train_loss", "steps_real", "steps_computed")


def make(ctx) -> Protocol:
    """protocols.make, with a plugin's Protocol checked."""
    name = ctx.cfg.protocol.name
    if name in protocols.REGISTRY:
        return protocols.make(ctx)
    who = f"protocol {name!r} (plugin {protocols.module_of(name)!r})"
    # a plugin that declares Traits(model_groups=True) but writes its round for one model (ctx.model,
    # vmapped over every peer) failed inside vmap on a grouped run ("inconsistent sizes"), no word of why
    hint = ("; this run has model.groups and the plugin declares Traits(model_groups=True), so its init and round "
            "must give each group's peers their own model (distill_round and warmup_init do; ctx.model is one "
            "model), or it should not declare model_groups (write-a-protocol.md)") if ctx.model_groups else ""
    p = _raised_in_plugin(who, "its factory", protocols.make, hint)(ctx)
    if not isinstance(p, Protocol):
        raise ConfigError(f"{who}: its factory returned {type(p).__name__}; expected "
                          "tallysim.protocols.base.Protocol(init=..., round=..., cost=...)")
    return p._replace(init=_raised_in_plugin(who, "init(key, data)", p.init, hint),
                      round=_checked_round(who, _raised_in_plugin(who, "round(state, data, key, r)", p.round, hint),
                                           p.row_keys),
                      cost=_checked_cost(who, p.cost, ctx.spec.peers))


def _where(e: BaseException) -> str:
    """The innermost frame of e's traceback outside tallysim and JAX: the plugin's line that raised."""
    import traceback
    import os
    # the directories themselves, with their separator: a plugin package `tallysim_x` (or `jax_plugins`)
    # beside them starts with the same text, and its own frame is the one to name
    inside = tuple(os.path.join(d, "") for d in (os.path.dirname(os.path.dirname(__file__)),
                                                 os.path.dirname(jax.__file__)))
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith(inside)]
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def _raised_in_plugin(who: str, what: str, fn, hint: str = ""):
    """fn, whose exceptions (a plugin's bug: a raise in its factory, init or round, or a JAX error in its
    code) are one line naming the protocol, the plugin, what raised and where, not a traceback through
    tallysim's build and JAX's tracing. ConfigError (this module's own checks) passes as it is."""
    def called(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError:
            raise
        except (Exception, SystemExit) as e:  # noqa: BLE001 - whatever the plugin raised (sys.exit too), one line
            text = str(e).strip().splitlines()
            raise ConfigError(f"{who}: {what} raised {type(e).__name__}{': ' + text[0] if text else ''}"
                              f"{_where(e)}; the plugin's own code failed (see write-a-protocol.md for what "
                              f"each must do){hint}") from None
    return called


def _leaves(tree) -> list:
    return [(jax.tree_util.keystr(k), getattr(v, "shape", ()), getattr(v, "dtype", type(v)))
            for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _checked_round(who: str, round_fn, row_keys: dict):
    def round_checked(state, data, root, r):
        out = round_fn(state, data, root, r)
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
            raise ConfigError(f"{who}: round(state, data, key, r) returned {type(out).__name__}; expected "
                              "(new state, info dict)")
        new, info = out
        before, after = _leaves(state), _leaves(new)
        if jax.tree_util.tree_structure(state) != jax.tree_util.tree_structure(new) or before != after:
            diff = next(((b, a) for b, a in zip(before, after) if b != a), None)
            detail = (f"{diff[0][0]}: {diff[0][1]} {diff[0][2]} became {diff[1][1]} {diff[1][2]}" if diff else
                      f"its structure changed ({len(before)} arrays before, {len(after)} after)")
            raise ConfigError(f"{who}: round returned a state unlike the one it was given ({detail}); expected "
                              "the same arrays, shapes and dtypes (the round runs in a lax.scan)")
        # a value JAX cannot carry out of the program (a str: a TypeError from vmap's tracing)
        foreign = [(jax.tree_util.keystr(k), v) for k, v in jax.tree_util.tree_flatten_with_path(info)[0]
                   if not isinstance(v, (jax.Array, np.ndarray, np.generic, int, float, bool))]
        if foreign:
            raise ConfigError(f"{who}: round's info{foreign[0][0]} is {type(foreign[0][1]).__name__} "
                              f"({foreign[0][1]!r:.40}); expected JAX arrays or numbers (info leaves the compiled "
                              "round; keep other values out of it)")
        missing = [k for k in (*REQUIRED_INFO, *row_keys) if k not in info]
        # a row key's vector was a TypeError when its first metrics row was written, after the whole round ran
        odd = [k for k in (*REQUIRED_INFO, *row_keys) if k in info and getattr(info[k], "shape", ()) != ()]
        if missing or odd:
            raise ConfigError(f"{who}: round's info {'lacks ' + ', '.join(missing) if missing else ''}"
                              f"{' and ' if missing and odd else ''}{'has non-scalar ' + ', '.join(odd) if odd else ''}; "
                              f"expected scalars {', '.join(REQUIRED_INFO)} (the mean local loss and "
                              "local.train_peers' steps; protocols/local_only.py shows them), and every "
                              "Protocol.row_keys entry")
        return new, info
    return round_checked


def _whole_count(v) -> bool:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return False
    return v >= 0 and float(v).is_integer()         # NaN and inf are not integers


def _float_rounded(v) -> Optional[str]:
    """"2**53" where v is a float at or above the first whole number its type cannot hold exactly (2**53 for
    Python's float and float64, 2**24 for float32), else None: there a count of bits may already have been
    rounded (2**53 + 1 bits as a float is 2**53), and int() of it passed for exact, in silence."""
    if isinstance(v, numbers.Integral):
        return None
    digits = np.finfo(type(v)).nmant + 1 if isinstance(v, np.floating) else sys.float_info.mant_dig
    return f"2**{digits}" if abs(float(v)) >= 2.0 ** digits else None


def _checked_cost(who: str, cost_fn, peers: Optional[int] = None):
    def cost_checked(info):
        try:
            bits = cost_fn(info)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - whatever the plugin raised (sys.exit too), one line
            text = str(e).strip().splitlines()
            raise ConfigError(f"{who}: cost(info) raised {type(e).__name__}{': ' + text[0] if text else ''}; "
                              "expected a function of the round's info (host values) returning "
                              "tallysim.sim.comm.RoundBits") from None
        if not isinstance(bits, RoundBits):
            raise ConfigError(f"{who}: cost(info) returned {type(bits).__name__}; expected "
                              "tallysim.sim.comm.RoundBits(up, down, active)")
        counts = {}
        for name in ("up", "down", "active", "up_total", "down_total"):
            v = getattr(bits, name)
            if v is None and name.endswith("_total"):
                counts[name] = None
                continue
            if not _whole_count(v):      # -5 bits ran, and reported -6.25e-07 MB per peer; 1.5 bits too
                raise ConfigError(f"{who}: cost(info) returned RoundBits({name}={v!r}); expected a whole number "
                                  ">= 0 (bits are counted exactly; active: the peers that took part)")
            if limit := _float_rounded(v):
                raise ConfigError(f"{who}: cost(info) returned RoundBits({name}={v!r}), a {type(v).__name__} at or "
                                  f"above {limit}, where not every whole number is a {type(v).__name__} (the count "
                                  "may have been rounded); expected an int (Python's or numpy's)")
            # as Python ints: numpy's (np.int64 from info's arrays) stopped the run at its first metrics row, a
            # TypeError from json after every round had trained; a float's 412288.0 was written as a float
            counts[name] = int(v)
        if peers is not None and counts["active"] > peers:     # up * 999 of 2 peers was counted: 500 times the bits, in silence
            raise ConfigError(f"{who}: cost(info) returned RoundBits(active={counts['active']}) in a run of {peers} "
                              f"peers; expected the peers that took part in the round, 0..{peers}")
        bits = bits._replace(**counts)
        return bits._replace(up_A=_checked_up_A(who, bits))
    return cost_checked


def _checked_up_A(who: str, bits: RoundBits):
    """RoundBits.up_A, each active peer's own bits where they differ (selective_fd, cfd): a whole number each,
    one per active peer, summing to the round's up total (model.groups split it by them). Unchecked,
    (1.5, -2) or "xy" passed, and a grouped run's per-group bits were whatever they summed to."""
    if bits.up_A is None:
        return None
    allowed = (f"expected None or a tuple of {bits.active} whole numbers >= 0 (each active peer's bits up) "
               f"summing to the round's up total, {bits.totals()[0]}")
    if not isinstance(bits.up_A, (tuple, list)) or len(bits.up_A) != bits.active \
            or not all(_whole_count(v) for v in bits.up_A):
        raise ConfigError(f"{who}: cost(info) returned RoundBits(up_A={bits.up_A!r}); {allowed}")
    if rounded := [v for v in bits.up_A if _float_rounded(v)]:
        raise ConfigError(f"{who}: cost(info) returned RoundBits(up_A=...) with {rounded[0]!r}, a "
                          f"{type(rounded[0]).__name__} at or above {_float_rounded(rounded[0])}, where not every "
                          f"whole number is one (the count may have been rounded); {allowed}, as ints")
    up_A = tuple(int(v) for v in bits.up_A)
    if sum(up_A) != bits.totals()[0]:
        raise ConfigError(f"{who}: cost(info) returned RoundBits(up_A=...) summing to {sum(up_A)}; {allowed}")
    return up_A
