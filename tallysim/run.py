"""Build a run from a config, compile its round once, loop over rounds, log one JSON line per eval.

Seeds are a leading axis vmapped around the peer axis: `seeds=N` runs seeds seed..seed+N-1 as one
compiled program, each with its own partition, probe pool, init and keys (the dataset itself is fixed
by `data.seed`). When the seed batch does not fit in memory it is split into chunks that run one
after another. The same axis carries a sweep's grouped configurations (`run_group`, lanes.py): one
lane per (configuration, seed). The rounds between two evaluations run as one `lax.scan`. With
several devices a chunk's lanes or peers are sharded over a mesh (mesh.py).

Output directory: config.json (fully resolved), partition.json (per-peer class counts per seed),
metrics.jsonl (one row per evaluation, keys as in docs/protocols.md; with several seeds the mean, a
`<key>_std` and `per_seed` lists), and on failure error.txt.
"""
from __future__ import annotations

import contextlib
import math
import sys
import tempfile
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim import api_arguments, checkpoint, config, jax_check, memory_retry, nonfinite_stop, outdir, privacy, protocols, tracking, validation
from tallysim import progress as progress_bars
from tallysim.build import Built, auto_chunk, build, build_group  # noqa: F401 - run.build etc., as before
from tallysim.config import Config, ConfigError
from tallysim.results.metrics import (CONFIG, ERROR, METRICS, PARTITION, PROBE_KEYS, ROUND_KEYS,  # noqa: F401
                                      aggregate, check_own_keys, dumps_row, lane_row, run_collapse_warning)
from tallysim.results.rows import unreported_steps
from tallysim.programs import chunk_inputs, eval_clients, initial_state, lanes_per_device, round_programs  # noqa: F401
# a chunk's programs, made once per run and chunk width: programs.py (moved from here)
from tallysim.programs import chunk_programs as _programs, programs_key as _programs_key
# what a finished run warns of on stderr: run_warnings.py (run.warn_collapsed etc., as before)
from tallysim.run_warnings import warn_collapsed, warn_dead
from tallysim.results.runs import Results
from tallysim.results import run_dir
from tallysim.run_files import check_same_data, write_partition, write_run_files
from tallysim.run_recorders import Lanes as _Lanes, NonFiniteLoss, Recorder as _Recorder, restart_meta  # noqa: F401 - run._Recorder, as before
from tallysim.sim import comm, faults, mesh, peers, tasks


def _host(tree, what: str = "") -> dict:
    return {k: (None if v is None else np.asarray(v)) for k, v in mesh.host(tree, what).items()}


def evaluates(cfg: Config, r: int) -> bool:
    """Does a run of `cfg` log a metrics row at round r?"""
    return r <= cfg.rounds and (r % cfg.eval_every == 0 or r == cfg.rounds)


def _segments(cfgs: list, r0: int, every: Optional[int]) -> list[tuple[int, int]]:
    """(first, last) rounds of the stretches that run on the device without the host: each ends at
    a round where some lane evaluates (or a checkpoint every `every` rounds may be due)."""
    last = max(c.rounds for c in cfgs)
    ends = sorted({r for r in range(r0 + 1, last + 1)
                   if any(evaluates(c, r) for c in cfgs) or (every and r % every == 0)})
    return list(zip([r0 + 1] + [end + 1 for end in ends[:-1]], ends))      # each starts after the last ends


def _run_chunk(b: Built, lo: int, hi: int, lanes_out: "_Lanes", bar, saver: checkpoint.Saver,
               resume: Optional[dict]) -> None:
    """All rounds of lanes [lo, hi) as one vmapped program, from round 1 or from a checkpoint."""
    ctx = b.ctx
    check_own_keys(b.cfg.protocol.name, b.protocol.row_keys)    # before anything compiles
    cfgs = [b.cfgs[b.lane_cfg[j]] for j in range(lo, hi)]
    placement = mesh.plan(1 if ctx.model_groups else b.cfg.devices, hi - lo, b.cfg.peers)   # groups: one device
    if bar:                 # a later chunk: the bar names its round 0 while it compiles, not 400/400 of the last;
        # one of another width (seeds=5 in chunks of 2: the last, of 1) compiles its own programs (the ETA)
        bar.chunk_starts(placement.mesh is not None or _programs_key(b, placement, hi - lo) not in b.programs)
    data_c, values, k_init, k_rounds, x_test, y_test = chunk_inputs(b, lo, hi, placement)
    ledgers = [comm.Ledger(c.peers, privacy.ledger_for(c, protocols.traits(c.protocol.name).privacy,
                                                       ctx.spec.messages, ctx.spec.active),
                           groups=tuple((g.a_lo, g.a_hi) for g in ctx.model_groups)) for c in cfgs]
    r0 = resume["round"] if resume else 0
    progs = _programs(b, placement, hi - lo, k_init, data_c, values)
    if r0:              # a group's out-of-memory retry cuts its lanes from its runs' checkpoints (`load`)
        like = progs["init"].eval_shape(k_init, data_c, values)
        state = resume["load"](like) if "load" in resume else checkpoint.load(saver.out_dir, like)
        state = jax.device_put(state, progs["state_sh"]) if progs["state_sh"] else state
        for led, saved in zip(ledgers, resume["ledgers"]):
            led.restore(saved)
    else:
        state = progs["init"](k_init, data_c, values)
    single, scan, eval_fn = progs["single"], progs["scan"], progs["eval"]
    clients_V, own_K = eval_clients(b, lo, hi, placement)     # per-client test metrics (text)
    last_round = max(c.rounds for c in cfgs)
    lanes_c = list(range(lo, hi)) + [hi - 1] * placement.pad_lanes       # as chunk_inputs
    pick = peers.eval_sample(b.cfg.eval_peers, b.cfg.eval_sample, ctx.spec.peers, [b.seeds[j] for j in lanes_c])
    # a group retry's chunk from its runs' checkpoints: the bar counts the rounds before them with its first
    # stretch (a lone resume's are its `initial`), else it named the chunk before and round 1/3 for round 3
    skipped = r0 if resume and "load" in resume else 0
    for first, end in _segments(cfgs, r0, saver.cadence):     # every process's the same (Saver.cadence)
        rs = jnp.arange(first, end + 1, dtype=jnp.int32)
        state, info_T = (single if end == first else scan)(state, data_c, k_rounds, rs, values)
        info_T = _host(info_T, f"round {first}" if end == first else f"rounds {first}-{end}, one compiled stretch")
        for t, r in enumerate(range(first, end + 1)):
            info = {k: v[t] for k, v in info_T.items()}
            for j, (c, led) in enumerate(zip(cfgs, ledgers)):
                if r > c.rounds or not lanes_out.live(lo + j):
                    continue
                led.add(b.cost_protocol(b.lane_cfg[lo + j]).cost({k: v[j].tolist() for k, v in info.items()}))
                led.add_steps(info["steps_real"][j], info["steps_computed"][j])
                loss = float(info["train_loss"][j])
                if ctx.model_groups and (zero := unreported_steps(info, [g.name for g in ctx.model_groups], j)):
                    lanes_out.say_once("steps", f"tallysim: warning: round {r}: model group {zero[0]} reports "
                                       f"train_loss@{zero[0]} 0 and the round's info holds no stepped@{zero[0]}: "
                                       "if none of its peers took a step, that 0 is in its rows and in train_loss; "
                                       "pass local_round's steps, loss_info(ctx, loss_A, steps), and put them in "
                                       "the info (docs/write-a-protocol.md)")
                if not math.isfinite(loss):
                    lanes_out.diverged(lo + j, f"round {r}, seed {b.seeds[lo + j]}: {run_dir.DIVERGED}"
                                       f"{loss}; the run stopped (try a smaller {nonfinite_stop.lr_now(c)}){nonfinite_stop.own_model(c, r)}"
                                       f"{nonfinite_stop.diverged_peers(state, j, ctx)}")
        if not any(lanes_out.live(j) for j in range(lo, hi)):
            break
        evaluating = [j for j, c in enumerate(cfgs) if evaluates(c, end) and lanes_out.live(lo + j)]
        if evaluating:
            params, own = peers.eval_params(state.params, pick, b.cfg.eval_sample, own_K)
            ev = _host(eval_fn(params, state.server, x_test, y_test, clients_V, own), f"evaluation at round {end}")
            ev["eval_idx"] = pick if b.cfg.eval_sample == "random" else None
            # the faulty sets acc_mean_honest reads: read or redrawn here, not carried in every round's info
            ev["faulty_P"] = faults.eval_sets(ctx.cfg, ctx.spec.peers, b.fed.faulty_P, lanes_c, k_rounds, end)
            info = {k: v[-1] for k, v in info_T.items()}
            lanes_out.rows(end, [(lo + j, lane_row(ev, info, ledgers[j], j, end, lanes_out.t0,
                                                         b.protocol.row_keys, group_ranges(ctx)))
                                 for j in evaluating])
        if bar:     # the examples (tokens) the local steps processed: the bar's throughput
            bar.update(end - first + 1 + skipped, int(np.sum(info_T["steps_real"][:, :hi - lo])) * b.cfg.batch_size
                       * tasks.of(ctx.spec).positions)
            skipped = 0
        if end < last_round and mesh.agree(saver.due(end)):  # every process gathers the state (a
            saver.save(mesh.host(state), lanes_out.meta(lo, end, ledgers))     # collective), process 0 writes it
    if hi < len(b.seeds) and saver.out_dir is not None and saver.every != 0:     # 0: never
        saver.save(None, lanes_out.meta(hi, 0, []))       # this chunk is done: a resume starts the next one


def group_ranges(ctx) -> tuple:
    """model.groups: (name, lo, hi, active, all active) per group, for the metrics rows' per-group keys."""
    return tuple((g.name, g.lo, g.hi, g.a_hi - g.a_lo, ctx.spec.active) for g in ctx.model_groups)


out_of_memory = jax_check.out_of_memory          # run.out_of_memory, as before (sweep.py)


def run(cfg: Config, out: Optional[str] = None, overwrite: bool = False, progress: bool = True,
        built: Optional[Built] = None, checkpoint_every: Optional[int] = None, resume: bool = False,
        words: dict = outdir.CLI) -> dict:
    """Run one configuration (all its seeds) end to end; returns the last metrics row plus 'out'.

    With `out`, a checkpoint is saved every `checkpoint_every` rounds (None: every few minutes; 0: never)
    and removed when the run finishes; `resume=True` continues the run in `out` from it. One process at
    a time writes `out` (outdir.exclusive); a second is refused in one line."""
    name = memory_retry.begin()     # first: every process's n-th run, whatever fails in one process only
    with outdir.exclusive(out if mesh.is_writer() else None):
        return _run(cfg, out, overwrite, progress, built, checkpoint_every, resume, words, name)


def _run(cfg: Config, out: Optional[str], overwrite: bool, progress: bool, built: Optional[Built],
         checkpoint_every: Optional[int], resume: bool, words: dict = outdir.CLI, name: str = "") -> dict:
    meta = None
    elsewhere = out is not None and not mesh.is_writer()     # process 0 saves the checkpoints (Saver)
    if not mesh.is_writer():        # several processes (jax.distributed): only process 0 writes
        if resume:
            raise ConfigError("--resume is not supported across several processes yet; resume with one")
        out = None
    mesh.check_devices(cfg.devices)  # before any directory is created
    tracking.check_out(cfg, out)
    if resume:
        out, meta = checkpoint.check_resume(cfg, out, words)
    elif out is not None:
        outdir.check(out, overwrite)     # before the data is loaded: a bad --out fails at once
    b = built or build(cfg, (Path(out).name,) if out is not None else ())     # the data's notes name the run
    cfg = b.cfg
    out_dir = Path(out) if resume else outdir.claim(out, overwrite) if out is not None else None
    if resume:
        try:
            check_same_data(b, out_dir, meta)
        except ConfigError as e:
            raise type(e)(str(e) if words is outdir.CLI else checkpoint.in_words(str(e), words)) from None
        checkpoint.note_resume(out_dir, meta)
        meta = memory_retry.resumed(out_dir, meta)      # an out-of-memory retry's copy: its chunks from it
        print(checkpoint.resume_notice(out_dir, cfg, meta) + memory_retry.copy_notice(b, meta), file=sys.stderr)
    chunk = meta["chunk"] if meta else auto_chunk(b)
    if out_dir and not resume:
        write_run_files(b, 0, out_dir, chunk)
    elif out_dir:       # a pure function of the build: a deleted or damaged one was left so, silently
        write_partition(b, 0, out_dir)
    saver = checkpoint.Saver(out_dir, checkpoint_every, elsewhere=elsewhere)
    while True:
        at: list = []      # _run_all's chunk under way: (its Lanes, lo, hi), what a retry keeps
        try:
            last = _run_all(b, [out_dir], chunk, progress, saver, meta, at)[0]
            saver.discard()
            if isinstance(last, Exception):
                raise last
            warn_collapsed([last], b.ctx.spec)
            warn_dead([last])
            return last
        except NonFiniteLoss:
            saver.discard()     # final, as a grouped run stopped so (run_group): resumed, it would diverge again
            raise
        except Exception as e:   # noqa: BLE001 - only out-of-memory is retried, smaller
            if not memory_retry.retry(e, chunk, memory_retry.decision(name, at, chunk)):   # all processes, or none
                raise
            meta, said = memory_retry.lone_point(b, at, meta, max(1, chunk // 2), out_dir)
            chunk = max(1, chunk // 2)
            print("tallysim: the seed batch did not fit in memory; retrying "
                  f"{memory_retry.counted(chunk, 'seed')} at a time{said}",
                  file=sys.stderr)


def run_group(cfgs: list[Config], outs: list, progress: bool = True, built: Optional[Built] = None,
              warn: bool = True, checkpoint_every: Optional[int] = None, on_finished=None) -> list:
    """Run configurations that share a static signature (lanes.group) as one compiled program, each
    into its own run directory (claimed with overwrite: the caller has checked them, as `sweep`
    does); two that share seeds are warned about as a sweep's runs are (`warn=False`: a sweep's batch,
    warned for the whole sweep). Returns per configuration its last metrics row plus 'out', or the
    exception that stopped it (a NonFiniteLoss stops only its own configuration). Given a
    `checkpoint_every` K, each configuration saves its own checkpoint (checkpoint.GroupSaver). A
    configuration whose last row is written, or whose loss is not finite, is final at once:
    `on_finished(i, its result)` (a sweep writes its done.json, or records it failed), then its
    checkpoint is removed (it stayed until the group ended: a group
    stopped later, by an interrupt or out of memory, left it, and a resume ran the run again from it)."""
    name = memory_retry.begin()     # first, as in `run`
    api_arguments.check_group(cfgs, outs, checkpoint_every)
    if warn:
        validation.warn_seed_overlap([Path(o).name for o in outs], cfgs, "grouped runs")
    with contextlib.ExitStack() as held:     # one writer per directory, as `run` (two identical sweeps)
        for o in outs:
            held.enter_context(outdir.exclusive(o if mesh.is_writer() else None))
        return _run_group(cfgs, outs, progress, built, checkpoint_every, name, on_finished)


def _run_group(cfgs: list[Config], outs: list, progress: bool, built: Optional[Built], every: Optional[int],
               name: str = "", on_finished=None) -> list:
    b = built or build_group(cfgs, tuple(Path(o).name for o in outs))
    chunk = auto_chunk(b)
    out_dirs = [outdir.claim(o, True) if mesh.is_writer() else None for o in outs]
    for i, d in enumerate(out_dirs):
        if d is not None:
            write_run_files(b, i, d, chunk)
    redo = None

    def final(i: int, result) -> None:      # its rows on disk (Lanes synced them), its done.json next:
        if on_finished:                     # only then its checkpoint goes
            on_finished(i, result)
        checkpoint.Saver(out_dirs[i], 0).discard()
    while True:
        saver = checkpoint.GroupSaver(out_dirs, every, [b.lanes_of(i) for i in range(len(out_dirs))], chunk)
        at: list = []      # the chunk under way, as in _run: what a retry keeps (memory_retry.group_point)
        try:
            results = _run_all(b, out_dirs, chunk, progress, saver, redo, at, final)
            saver.discard()
            warn_collapsed(results, b.ctx.spec)
            warn_dead(results)
            return results
        except NonFiniteLoss:    # a group of one stops as a lone run does (Lanes.diverged): final, its checkpoint
            saver.discard()      # removed, as a larger group's run stopped so (`final`)
            raise
        except Exception as e:   # noqa: BLE001 - only out-of-memory is retried, smaller
            if not memory_retry.retry(e, chunk, memory_retry.decision(name, at, chunk)):
                raise
            # the checkpoints stay: a narrower chunk saves none (a chunk mixes runs), its runs' lanes start
            # from them (and an interrupted retry's runs resume from them, each alone)
            chunk = max(1, chunk // 2)
            redo, said = memory_retry.group_point(b, at, chunk, out_dirs)
            print("tallysim: the lane batch did not fit in memory; retrying "
                  f"{memory_retry.counted(chunk, 'lane')} at a time{said}",
                  file=sys.stderr)


def _run_all(b: Built, out_dirs: list, chunk: int, progress: bool, saver: checkpoint.Saver,
             resume: Optional[dict] = None, at: Optional[list] = None, on_final=None) -> list:
    """Every chunk of `chunk` lanes from `resume`'s (or the first); `at`, given, holds the chunk under
    way: (its Lanes, lo, hi), for an out-of-memory retry (memory_retry.lone_point)."""
    start = resume["lo"] if resume else 0
    bounds = memory_retry.bounds(b, resume, chunk)      # a group retry's: without its runs finished or stopped
    rounds = [max(b.cfgs[b.lane_cfg[j]].rounds for j in range(lo, hi)) for lo, hi in bounds]
    done = 0
    if resume:
        k = next((k for k, bd in enumerate(bounds) if bd[0] >= start), len(bounds))
        done = sum(rounds[:k]) + resume["round"]
    labels = [Path(d).name if d is not None else f"config {i}" for i, d in enumerate(out_dirs)]
    bar = progress_bars.round_bar(sum(rounds), progress, labels, initial=done,
                                  unit="tokens" if tasks.of(b.ctx.spec).positions > 1 else "examples",
                                  chunks=[(lo, hi, r) for (lo, hi), r in zip(bounds, rounds)],
                                  noun="seeds" if len(out_dirs) == 1 else "lanes")
    with contextlib.ExitStack() as held:    # the bar (its ticker a thread) closes, a recorder failing to
        if bar:                             # open too: it said `compiling` for the rest of the process
            held.callback(bar.close)
        lanes_out = _Lanes(b, out_dirs, chunk, bar, resume, held, on_final)   # each file it opens closes with `held`
        for lo, hi in bounds:
            if lo >= start:
                if at is not None:
                    at[:] = [lanes_out, lo, hi]
                _run_chunk(b, lo, hi, lanes_out, bar, saver, memory_retry.chunk_start(b, resume, start, lo, hi))
    return lanes_out.results()


def run_results(cfg: Config, out: Optional[str] = None, overwrite: bool = False, progress: bool = False,
                **kwargs) -> Results:
    """`run` for scripts and notebooks: into `out` (None: a new temporary directory), no progress bar by
    default; returns the run's Results (rows, .plot()). kwargs: as `run` (checkpoint_every, resume)."""
    api_arguments.check_read(cfg, out, kwargs.get("resume"))    # a single run: refuse a field its protocol ignores
    overwrite, progress, kwargs = api_arguments.check(out, overwrite, progress, kwargs)
    from tallysim import jax_check
    jax_check.backend()             # 64-bit mode on in the notebook: one line, not a traceback in a round
    if out is None:
        out = tempfile.mkdtemp(prefix="tallysim-")
    elif not kwargs.get("resume"):      # a new directory is made; advice names this API's arguments
        outdir.check(out, overwrite, flag="out", words=outdir.PYTHON)
    run(cfg, str(out), overwrite=overwrite, progress=progress, words=outdir.PYTHON, **kwargs)
    return Results.read(out)


class _CallableModule(type(sys)):
    """`tallysim.run(cfg, out=...)`: this module, called, is `run_results` (the public API's run)."""

    def __call__(self, cfg: Config, out: Optional[str] = None, **kwargs):
        return run_results(cfg, out, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
