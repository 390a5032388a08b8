"""An out-of-memory retry (run.py's `run` and `run_group`): whether to retry at all, decided together by
every process of a jax.distributed run, and where a lone run's or a group's retry starts and what it keeps.

One process ran out of memory while the others went on: the process that retried alone compiled
narrower programs while the others waited at a collective of the wide one, for ever (two CPU
processes, seeds=4, process 1 out of memory at its first chunk: process 1 retried 2 seeds at a time,
both hung). Each process now says what stopped it through jax.distributed's key-value store (not a
collective: a process stuck at one still has the store), and one out of memory waits for every
other's word, at most TALLYSIM_DISTRIBUTED_TIMEOUT seconds: all out of memory, all retry together;
otherwise each that decides raises the same message naming the processes that ran out.

A decision's words are keyed by the run (begin(): every process begins the same runs in the same order,
so their counts agree whatever errors each had), the chunk under way and its width (smaller at each
retry of a run): unique to that decision in every process. Keyed by a count of this process's
decisions, a word one process left at an earlier error (a sweep's run whose error only it had) was
read as the other's word at the next decision: both out of memory, one read "another error".
"""
from __future__ import annotations

import itertools
import zipfile
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim import atomic, checkpoint, jax_check, outdir
from tallysim.config import ConfigError
from tallysim.run_recorders import restart_meta
from tallysim.sim import distributed

OOM, OTHER = "out of memory", "another error"
_runs = itertools.count()       # runs begun in this process (begin)


def counted(n: int, word: str) -> str:
    """`1 seed`, `2 seeds`: the retry's lines said `retrying 1 seeds at a time` and `the 1 metrics row(s)`."""
    return f"{n} {word}{'' if n == 1 else 's'}"


class NotTogether(RuntimeError):
    """Some processes of a jax.distributed run ran out of memory, not all: none retries."""


def begin() -> str:
    """This run's name in the store's keys: called first in run.run and run.run_group, before anything
    that may fail in one process only, so every process's n-th run has the same name."""
    return f"run{next(_runs)}"


def decision(run: str, at: list, chunk: int) -> str:
    """A decision's keys: the run's (begin), the chunk under way (`at`: its Lanes, lo, hi; empty if none
    began) and the width that failed. A run retries each width once (halved each time): the store
    refuses a key set twice."""
    return f"{run}/{at[1] if at else '-'}/{chunk}"


def retry(e: BaseException, chunk: int, where: str = "") -> bool:
    """Whether the run retries `chunk // 2` lanes at a time after `e`: XLA out of memory (not the host's
    MemoryError: the same batch would not fit better), a batch wider than 1, and with several processes
    every process out of memory (words(), under the keys `where`: decision()). Raises NotTogether where
    only some are, in a process out of memory and in one whose own error came after another's word of it."""
    oom = jax_check.device_out_of_memory(e)
    if jax.process_count() == 1:
        return oom and chunk > 1
    first = (str(e).strip().splitlines() or [""])[0][:160]
    said = words(OOM if oom else f"{OTHER} ({type(e).__name__}: {first})", wait=oom, where=where)
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


def words(mine: str, wait: bool = True, where: str = "") -> list:
    """Every process's word (OOM, OTHER, or None: none within TALLYSIM_DISTRIBUTED_TIMEOUT), this one's
    `mine`; `wait=False`: the others' words said by now, not waited for (another error is raised at
    once, naming a process out of memory if one said so before it); `where`: the decision's keys."""
    # the coordination service's store: no public handle. Named jax_distributed: this module's
    # `distributed` is tallysim.sim.distributed (the timeout below), which a plain import would shadow.
    from jax._src import distributed as jax_distributed
    client, me, n = jax_distributed.global_state.client, jax.process_index(), jax.process_count()
    key = f"tallysim/oom/{where}"
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
        limit = (distributed.distributed_settings() or {}).get("timeout", distributed.DISTRIBUTED_TIMEOUT)
    except ConfigError:
        limit = distributed.DISTRIBUTED_TIMEOUT
    for p in range(n):
        if p != me:
            try:
                out[p] = client.blocking_key_value_get(f"{key}/{p}", int(limit * 1000))
            except Exception:   # noqa: BLE001 - its deadline passed: no word
                limit = 1       # waited once: the others' words are there by now or never
    return out


# ----------------------------------------------------------------------------- a lone run's retry

def lone_point(b, at: list, meta: Optional[dict], chunk: int, out_dir) -> tuple:
    """Where a lone run retries after running out of memory, `chunk` seeds at a time, and what it says
    of it: the seed chunk under way (`at`, else the one a resume was to continue) again; the chunks
    finished before it, their pending rows and the metrics rows written, kept (the retry started over
    from round 1 and rewrote metrics.jsonl before 2026-12-07: a resumed run lost every round it resumed).
    A checkpoint of that chunk after round R starts each narrower chunk within it from R, its lanes cut
    from a copy of it (kept(): RETRY, for the retry's own saves overwrite the checkpoint; one process
    only: the others, which hold no checkpoint, would start from round 1, out of step). A copy kept by an
    earlier retry whose seeds hold this chunk stays the one read: a narrower copy in its place left the
    earlier copy's later chunks to start from round 1, their rows up to its round counted twice."""
    if at:
        lanes, lo, hi = at
        redo = lanes.restart(lo, chunk)
    elif meta:                      # out of memory before a chunk began: the resume's own chunk again
        lo, hi, redo = meta["lo"], min(meta["lo"] + meta["chunk"], len(b.seeds)), restart_meta(meta, meta["lo"], chunk)
    else:
        return None, ""             # nothing ran: nothing to keep
    wide = on_disk(out_dir)
    if not (wide and wide["lo"] <= lo and hi <= wide["hi"]):
        wide = kept(out_dir, lo, hi)
    if wide:        # the rounds up to R: every seed's rows from the copy; later ones: the seeds before lo's
        redo = {**redo, "wide": wide, "evals": {**{r: rows for r, rows in redo["evals"].items() if r > wide["round"]},
                                                **{r: rows for r, rows in wide["evals"].items() if r <= wide["round"]}}}
    seeds = f"seeds {b.seeds[lo]}-{b.seeds[hi - 1]}" if hi - lo > 1 else f"seed {b.seeds[lo]}"
    one, lines = hi - lo == 1, redo["lines"]
    return redo, (f"; {seeds} start{'s' if one else ''} again from "
                  + (f"{'its' if one else 'their'} checkpoint after round {wide['round']}" if wide else "round 1")
                  + (f"; the {counted(lo, 'seed')} before {'it' if one else 'them'}, finished, "
                     f"{'is' if lo == 1 else 'are'} kept" if lo else "")
                  + (f"; the {counted(lines, 'metrics row')} written {'is' if lines == 1 else 'are'} kept and not "
                     "written again" if lines else ""))


RETRY = outdir.RETRY_CHECKPOINT     # the copy, in the run directory: a --resume after the retry stopped reads it


def kept(out_dir, lo: int, hi: int) -> Optional[dict]:
    """The lone run's checkpoint of seeds [lo, hi) after a round R > 0, kept as RETRY (until late on
    2026-12-07 held in memory only: a retry stopped after its first narrower chunk resumed the next from
    round 1): a hard link to it, where the filesystem makes one, for the retry's saves replace
    checkpoint.npz by a rename, never writing into it (a copy, until late on 2026-12-07, held the same bytes twice
    on disk until the retry's first save); else a copy written whole and renamed. on_disk's description of
    it; None where there is none (no --out, no state saved yet, another chunk's, several processes,
    unreadable)."""
    if out_dir is None or jax.process_count() > 1 or not (out_dir / checkpoint.FILE).is_file():
        return None
    try:
        meta = checkpoint.read_meta(out_dir)
        if meta["lo"] != lo or meta["round"] < 1 or len(meta["ledgers"]) != hi - lo:
            return None
        atomic.link_or_copy(out_dir / checkpoint.FILE, out_dir / RETRY)     # a link: no second copy on disk
    except (ConfigError, OSError):
        return None
    return on_disk(out_dir)


def on_disk(out_dir) -> Optional[dict]:
    """The retry's copy (RETRY) as the retry reads it: its seeds [lo, hi), round R, its lanes' ledgers,
    the rows waiting at R, its lanes as saved (padding included: several devices pad them) and its
    path; None where there is none or it cannot be read."""
    path = None if out_dir is None or jax.process_count() > 1 else out_dir / RETRY
    if path is None or not path.is_file():
        return None
    try:       # checked as a checkpoint is (CRCs, version, keys): a damaged copy is not started from
        meta = checkpoint.read_meta(out_dir, name=RETRY)
        with np.load(path) as z:
            saved_lanes = z["leaf_00000"].shape[0]
        lo, r, ledgers = int(meta["lo"]), int(meta["round"]), list(meta["ledgers"])
        evals = {int(k): rows for k, rows in meta["evals"].items()}
    except (ConfigError, OSError, KeyError, ValueError, TypeError, AttributeError, zipfile.BadZipFile):
        return None
    return {"lo": lo, "hi": lo + len(ledgers), "round": r, "ledgers": ledgers, "saved_lanes": saved_lanes,
            "evals": evals, "path": path}


def resumed(out_dir, meta: dict) -> dict:
    """A --resume's meta with the retry's copy (on_disk) where its seeds hold the chunk the checkpoint
    continues: the chunks within them start from its round (chunk_start), not from round 1."""
    wide = on_disk(out_dir)
    return {**meta, "wide": wide} if wide and wide["lo"] <= meta["lo"] < wide["hi"] else meta


def copy_notice(b, meta: dict) -> str:
    """The line --resume adds where the retry's copy starts seeds (resumed): its seeds and round."""
    w = meta.get("wide")
    if not w:
        return ""
    first = meta["lo"] + (1 if meta["round"] else 0) * meta["chunk"]      # the checkpoint's own chunk first
    if first >= w["hi"]:
        return ""
    one = w["hi"] - first == 1
    seeds = f"seed {b.seeds[first]} starts" if one else f"seeds {b.seeds[first]}-{b.seeds[w['hi'] - 1]} start"
    return (f"\ntallysim: {seeds} from the out-of-memory retry's copy of {'its' if one else 'their'} checkpoint "
            f"after round {w['round']} ({RETRY})")


def wide_resume(resume: dict, lo: int, hi: int) -> dict:
    """A lone retry's chunk [lo, hi) inside its kept checkpoint's seeds: from its round, with its lanes'
    ledgers and a `load` that cuts them from the copy (padded with the last, as chunk_inputs pads)."""
    w = resume["wide"]

    def load(like):
        n = jax.tree.leaves(like)[0].shape[0]
        full = jax.tree.map(lambda s: jax.ShapeDtypeStruct((w["saved_lanes"], *s.shape[1:]), s.dtype), like)
        state = checkpoint.read_state(w["path"], full)
        picks = jnp.array([j - w["lo"] for j in [*range(lo, hi), *[hi - 1] * (n - (hi - lo))]])
        return jax.tree.map(lambda x: x[picks], state)
    return {**resume, "round": w["round"], "ledgers": w["ledgers"][lo - w["lo"]:hi - w["lo"]], "load": load}


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
    # runs finished or stopped (loss not finite): their lanes not run again (bounds)
    skip = sorted({*lanes.final, *lanes.failed})
    saved = {}
    if jax.process_count() == 1:        # one process reads every run's checkpoint (process 0 alone writes)
        for i in sorted({b.lane_cfg[j] for j in range(lo, len(b.seeds))}):
            if out_dirs[i] is not None and (out_dirs[i] / checkpoint.FILE).is_file():
                try:
                    saved[i] = checkpoint.read_meta(out_dirs[i])
                except ConfigError:
                    pass                # unreadable: its lanes start from round 1
    redo = {**redo, "saved": saved, "dirs": out_dirs, "skip": skip}
    first = next(((a, z) for a, z in bounds(b, redo, chunk) if a >= lo), None)
    first = chunk_resume(b, redo, *first) if first else {"round": 0}
    lines = sum(r["lines"] for r in redo.get("recs", [redo]))       # a group of one: a lone run's meta
    todo = [j for j in range(lo, hi) if b.lane_cfg[j] not in skip]
    gone = [j for j in range(lo, hi) if b.lane_cfg[j] in skip]
    return redo, ((f"; {lane_list(todo)} start{'s' if len(todo) == 1 else ''} again from "
                   + (f"their runs' checkpoints after round {first['round']}" if first["round"] else "round 1")
                   if todo else "")
                  + (f"; {lane_list(gone)}, of runs finished or stopped (loss not finite), "
                     f"{'is' if len(gone) == 1 else 'are'} kept and not run again" if gone else "")
                  + (f"; the {counted(lo, 'lane')} before {'them' if hi - lo > 1 else 'it'}, finished, {'is' if lo == 1 else 'are'} kept" if lo else "")
                  + (f"; the {counted(lines, 'metrics row')} written {'is' if lines == 1 else 'are'} kept and not "
                     "written again" if lines else ""))


def lane_list(js: list) -> str:
    """`lane 3`, `lanes 0-3`, `lanes 0-1, 4`: lane indices as runs of consecutive ones."""
    parts, i = [], 0
    while i < len(js):
        k = i
        while k + 1 < len(js) and js[k + 1] == js[k] + 1:
            k += 1
        parts.append(f"{js[i]}-{js[k]}" if k > i else f"{js[i]}")
        i = k + 1
    return f"lane{'s' if len(js) > 1 else ''} {', '.join(parts)}"


def bounds(b, resume: Optional[dict], chunk: int) -> list:
    """run._run_all's chunks [lo, hi): `chunk` lanes at a time from the resume's lo, which a retry in
    narrower chunks may place off their multiples (seeds=5, 5 -> 2 at a time from index 0 or 5), those
    before it, done, as wide (the bar's count); none across a lone retry's kept seeds' end (a chunk across
    it started from round 1, its rows up to the copy's round counted twice); a group retry's without the
    lanes of its runs finished or stopped (`skip`: until late on 2026-12-07 run again from round 1, their rows
    not rewritten but the compute spent, the narrower program widened, and the chunk holding them
    started from round 1: a finished run keeps no checkpoint)."""
    n, start = len(b.seeds), resume["lo"] if resume else 0
    skip = set(resume.get("skip", ())) if resume else set()

    def out(j: int) -> bool:
        return b.lane_cfg[j] in skip
    edges = sorted({0, start, n, *([resume["wide"]["hi"]] if resume and resume.get("wide") else []),
                    *(j for j in range(start + 1, n) if out(j) != out(j - 1))})
    return [(lo, min(lo + chunk, end)) for first, end in zip(edges, edges[1:]) if first < start or not out(first)
            for lo in range(first, end, chunk)]


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
    (later ones from round 1), a lone retry's for each within its kept checkpoint (wide_resume), a group
    retry's for each (chunk_resume). The first chunk past the kept seeds removes the copy (RETRY): the
    checkpoint saved after the chunk before it (no state, its seeds done) replaces it."""
    if resume is not None and "saved" in resume:
        return chunk_resume(b, resume, lo, hi)
    if resume is not None and lo == start and resume["round"]:
        return resume               # a checkpoint of this chunk itself (after the copy's round)
    if resume is not None and "wide" in resume:
        w = resume["wide"]
        if w["lo"] <= lo and hi <= w["hi"]:
            return wide_resume(resume, lo, hi)
        if lo >= w["hi"] and w["path"].is_file():   # past its seeds: the checkpoint after them replaces it
            w["path"].unlink()
        return None
    return resume if lo == start else None
