"""`local`: no communication. Peers train only on their own shards; the lower bound (and, with one
peer holding all data, the centralised upper bound)."""
from __future__ import annotations

from tallysim.sim import comm, faults
from tallysim.protocols import Traits
from tallysim.protocols.base import Context, Protocol, active_set, local_round, loss_info, round_keys

TRAITS = Traits(messages=False)   # no exchange: every derived default is the base one, nothing is sent


def make(ctx: Context) -> Protocol:
    lspec = ctx.local_spec()

    def round_fn(state, data, root, r):
        keys = round_keys(root, r)
        idx = active_set(ctx, keys.active, data)
        fr = faults.for_round(ctx, data, root, r, idx)     # only training faults change anything here
        params, opt, _, loss_A, steps = local_round(ctx, lspec, state, data, keys, idx, fr=fr)
        return state._replace(params=params, opt=opt), {**loss_info(ctx, loss_A, steps), **steps,
                                                        **faults.info(fr)}

    return Protocol(init=lambda key, data: ctx.init_state(key, data, ctx.cfg.init.shared),
                    round=round_fn, cost=lambda info: comm.RoundBits(0, 0, ctx.spec.active))
