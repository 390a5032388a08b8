"""An out-of-memory retry (run.py's `run` and `run_group`): whether to retry at all, decided together by
every process of a jax.distributed run, and where a group's retry starts and what it keeps.

One process ran out of memory while the others went on: the process that retried alone compiled
narrower programs while the others waited at a collective of the wide one, for ever (two CPU
processes, seeds=4, process 1 out of memory at its first chunk: process 1 retried 2 seeds at a time,
both hung). Each process now says what stopped it through jax.distributed's key-value store (not a
collective: a process stuck at one still has the store), and one out of memory waits for every
other's word, at most TALLYSIM_DISTRIBUTED_TIMEOUT seconds: all out of memory, all retry together;
otherwise each that decides raises the same message naming the processes that ran out.
"""
from __future__ import annotations

import itertools
from typing import Optional

import jax
import jax.numpy as jnp

from tallysim import checkpoint, jax_check
from tallysim.config import ConfigError
from tallysim.sim import mesh

OOM, OTHER = "out of memory", "another error"
_asked = itertools.count()      # each decision's own keys: the store refuses a key set twice


def counted(n: int, word: str) -> str:
    """`1 seed`, `2 seeds`: the retry's lines said `retrying 1 seeds at a time` and `the 1 metrics row(s)`."""
    return f"{n} {word}{'' if n == 1 else 's'}"


class NotTogether(RuntimeError):
    """Some processes of a jax.distributed run ran out of memory, not all: none retries."""


def retry(e: BaseException, chunk: int) -> bool:
    """Whether the run retries `chunk // 2` lanes at a time after `e`: XLA out of memory (not the host's
    MemoryError: the same batch would not fit better), a batch wider than 1, and with several processes
    every process out of memory (words()). Raises NotTogether where only some are, in a process out of
    memory and in one whose own error came after another's word of it."""
    oom = jax_check.device_out_of_memory(e)
    if jax.process_count() == 1:
        return oom and chunk > 1
    first = (str(e).strip().splitlines() or [""])[0][:160]
    said = words(OOM if oom else f"{OTHER} ({type(e).__name__}: {first})", wait=oom)
    if oom and all(w == OOM for w in said):
        return chunk > 1
    if OOM in said:         # this one's error may be that one's doing: a collective it never joined (gloo
        raise NotTogether(not_together(said)) from e        # gave up after 30 s waiting for it)
    return False            # no process out of memory said so yet: this process's own error


def not_together(said: list) -> str:
    """The same message in every process that decides (each reads the same words; a process with no word
    within the wait is stuck at a collective, waiting for those that stopped)."""
    ran_out = [p for p, w in enumerate(said) if w == OOM]
    others = "; ".join(f"process {p}: {w or 'no word within TALLYSIM_DISTRIBUTED_TIMEOUT (still running, or waiting at a collective)'}"
                       for p, w in enumerate(said) if w != OOM)
    return (f"process{'es' if len(ran_out) > 1 else ''} {', '.join(map(str, ran_out))} of {len(said)} ran out "
            f"of memory, the others did not ({others}); a run over several processes retries a narrower "
            "batch only when every process runs out of memory together. Allowed: a smaller seed_chunk "
            "(the lanes each compiled program holds), or fewer seeds per run")


def words(mine: str, wait: bool = True) -> list:
    """Every process's word (OOM, OTHER, or None: none within TALLYSIM_DISTRIBUTED_TIMEOUT), this one's
    `mine`; `wait=False`: the others' words said by now, not waited for (another error is raised at
    once, naming a process out of memory if one said so before it)."""
    from jax._src import distributed        # the coordination service's store: no public handle
    client, me, n = distributed.global_state.client, jax.process_index(), jax.process_count()
    key = f"tallysim/oom/{next(_asked)}"
    client.key_value_set(f"{key}/{me}", mine)
    out = [None] * n
    out[me] = mine
    if not wait:
        for p in range(n):
            if p != me:
                try:
                    out[p] = client.key_value_try_get(f"{key}/{p}")
                except Exception:   # noqa: BLE001 - not said (yet)
                    pass
        return out
    try:
        limit = (mesh.distributed_settings() or {}).get("timeout", mesh.DISTRIBUTED_TIMEOUT)
    except ConfigError:
        limit = mesh.DISTRIBUTED_TIMEOUT
    for p in range(n):
        if p != me:
            try:
                out[p] = client.blocking_key_value_get(f"{key}/{p}", int(limit * 1000))
            except Exception:   # noqa: BLE001 - its deadline passed: no word
                limit = 1       # waited once: the others' words are there by now or never
    return out


# ----------------------------------------------------------------------------- a group's retry

def group_point(b, at: list, chunk: int, out_dirs: list) -> tuple:
    """Where a group (run.run_group) retries `chunk` lanes at a time, and what it says of it: the chunk
    under way (`at`: its Lanes, lo, hi) again; the lanes before it, finished, their rows waiting for
    later lanes of their runs, the rows written and the runs stopped (loss not finite) kept. A chunk of
    the retry whose runs all hold a checkpoint after the same round R (the group's saves, every run's
    lanes of the state: saved while the group ran as one chunk; the retry saves none, so they stay as
    they were) starts there, its lanes cut from those checkpoints (chunk_resume)."""
    if not at:
        return None, ""                 # nothing ran: nothing to keep
    lanes, lo, hi = at
    redo = lanes.restart(lo, chunk)
    saved = {}
    if jax.process_count() == 1:        # one process reads every run's checkpoint (process 0 alone writes)
        for i in sorted({b.lane_cfg[j] for j in range(lo, len(b.seeds))}):
            if out_dirs[i] is not None and (out_dirs[i] / checkpoint.FILE).is_file():
                try:
                    saved[i] = checkpoint.read_meta(out_dirs[i])
                except ConfigError:
                    pass                # unreadable: its lanes start from round 1
    redo = {**redo, "saved": saved, "dirs": out_dirs}
    first = chunk_resume(b, redo, lo, min(lo + chunk, len(b.seeds)))
    lines = sum(r["lines"] for r in redo.get("recs", [redo]))       # a group of one: a lone run's meta
    which = f"lanes {lo}-{hi - 1}" if hi - lo > 1 else f"lane {lo}"
    return redo, (f"; {which} start{'s' if hi - lo == 1 else ''} again from "
                  + (f"their runs' checkpoints after round {first['round']}" if first["round"] else "round 1")
                  + (f"; the {counted(lo, 'lane')} before {'them' if hi - lo > 1 else 'it'}, finished, {'is' if lo == 1 else 'are'} kept" if lo else "")
                  + (f"; the {counted(lines, 'metrics row')} written {'is' if lines == 1 else 'are'} kept and not "
                     "written again" if lines else ""))


def chunk_resume(b, redo: dict, lo: int, hi: int) -> dict:
    """A group retry's start for its chunk of lanes [lo, hi): redo (round 0, its rows and runs kept) where
    a run of the chunk has no checkpoint or another round's; else from the round R every run's checkpoint
    holds, with the chunk's lanes' ledgers and a `load` that cuts its lanes' state from them."""
    runs = sorted({b.lane_cfg[j] for j in range(lo, hi)})
    metas = [redo["saved"].get(i) for i in runs]
    if any(m is None or m["lo"] != 0 or m["chunk"] != len(b.lanes_of(i)) for i, m in zip(runs, metas)) or \
            len({m["round"] for m in metas}) != 1:
        return {**redo, "round": 0}
    first = {i: b.lanes_of(i)[0] for i in runs}
    ledgers = [redo["saved"][b.lane_cfg[j]]["ledgers"][j - first[b.lane_cfg[j]]] for j in range(lo, hi)]

    def load(like):
        """The chunk's state shaped like `like` (its lanes, padded with the last as chunk_inputs pads)."""
        pad = jax.tree.leaves(like)[0].shape[0] - (hi - lo)
        own = {i: checkpoint.load(redo["dirs"][i], jax.tree.map(
            lambda s, n=len(b.lanes_of(i)): jax.ShapeDtypeStruct((n, *s.shape[1:]), s.dtype), like)) for i in runs}
        picks = [(b.lane_cfg[j], j - first[b.lane_cfg[j]]) for j in [*range(lo, hi), *[hi - 1] * pad]]
        return jax.tree.map(lambda *xs: jnp.stack([xs[runs.index(i)][k] for i, k in picks]), *[own[i] for i in runs])
    return {**redo, "round": metas[0]["round"], "ledgers": ledgers, "load": load}


def chunk_start(b, resume: Optional[dict], start: int, lo: int, hi: int) -> Optional[dict]:
    """The resume a chunk [lo, hi) of run._run_all starts from: a lone run's for its first chunk only
    (later ones from round 1), a group retry's for each (chunk_resume)."""
    if resume is not None and "saved" in resume:
        return chunk_resume(b, resume, lo, hi)
    return resume if lo == start else None
