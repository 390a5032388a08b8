"""What a run does with its rows as they come back: each configuration's Recorder (its metrics.jsonl,
its tracker, the progress bar's row, the host-side state a checkpoint keeps) and Lanes, which routes
each lane's rows to its configuration's recorder and stops a configuration whose loss is not finite.
Split from run.py (which re-exports these names) so the round loop keeps to its own job.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Optional

from tallysim import atomic, code_identity, config, tracking
from tallysim.build import Built
from tallysim.protocols import plugin_import
from tallysim.metrics_file import MetricsFile
from tallysim.results import dead_peers
from tallysim.results.metrics import ERROR, METRICS, aggregate, dumps_row
from tallysim.run_files import majority_of
from tallysim.sim import mesh


class NonFiniteLoss(RuntimeError):
    """A lane's training loss is not finite: its configuration stops (the others in a group go on)."""


class Recorder:
    """Writes one configuration's metrics line once every seed has reached a round (seed chunks run
    one after another), whole lines only; knows the host-side state a checkpoint must keep."""

    def __init__(self, seeds: list, out_dir: Optional[Path], chunk: int, bar, resume: Optional[dict],
                 track: Optional[tracking.RunTracker] = None, index: int = 0):
        self.seeds, self.out_dir, self.chunk, self.bar, self.track = seeds, out_dir, chunk, bar, track
        self.index = index              # the configuration's index in its group (the bar's label)
        self.evals = {int(k): v for k, v in resume["evals"].items()} if resume else {}
        self.lines = resume["lines"] if resume else 0
        self.last = resume["last"] if resume else {}
        self.t0 = time.perf_counter() - (resume["elapsed"] if resume else 0.0)
        # without a run directory, the rows given to the tracker: a retry's fresh tracker is given them
        # again (the retry's tracker started at the first row not yet given, under another name)
        self.given = list(resume.get("given", [])) if resume else []
        self.file = None
        if out_dir:
            path = out_dir / METRICS
            # resumed: rows written after the checkpoint are recomputed, identically
            keep = path.read_bytes().split(b"\n")[:self.lines] if resume and path.exists() else []
            self.file = MetricsFile(path, keep)     # whole rows; a file changed mid-run is written again

    def rows(self, r: int, rows: list[dict]) -> None:
        if r <= self.last.get("round", 0):  # written before an out-of-memory retry ran its chunk again
            return      # (run._retry_point): the same numbers, kept, not written twice nor left waiting
        self.evals.setdefault(r, []).extend(rows)
        if len(self.evals[r]) < len(self.seeds):
            return
        self.last = aggregate(self.evals.pop(r), self.seeds)
        if self.file:
            self.file.write(dumps_row(self.last).encode())     # strict JSON: inf as "Infinity"
            self.lines += 1
        elif self.track:
            self.given.append(self.last)
        if self.track:
            self.track.row(self.last)
        if self.bar:
            self.bar.row(self.last, self.index)

    def meta(self, lo: int, r: int, ledgers) -> dict:
        return {"version": 1, "chunk": self.chunk, "lo": lo, "round": r,
                "ledgers": [led.state() for led in ledgers], "evals": self.evals,
                "lines": self.lines, "last": self.last, "elapsed": time.perf_counter() - self.t0,
                **({"given": self.given, "track_name": self.track.name} if self.track and not self.file else {})}

    def close_file(self) -> None:
        """The metrics file; the only closing: Lanes hands it (and the tracker's close, after it) to the
        run's ExitStack as each opens (a `close` of both, used by tests alone, went: one way to close)."""
        if self.file:
            self.file.close()


def _watch(b: Built, i: int, rec: Optional[Recorder] = None) -> dead_peers.Watch:
    """Configuration i's mid-run dead-peer watch (results/dead_peers.Watch): its floor is the test set's
    majority (read once per run, as partition.json's), its first evaluation the one it skips; resumed
    (`rec` holding rows from before the checkpoint), those rows read first, silently."""
    cfg = b.cfgs[i]
    floor = dead_peers.floor_of(majority_of(b), b.ctx.spec.classes)
    total = dead_peers.evaluated({"eval_peers": cfg.eval_peers, "peers": cfg.peers})   # of_run's reading
    sampled = cfg.eval_sample == "random" and total is not None
    groups = tuple((g.name, g.peers) for g in config.parse_groups(cfg.model.groups))      # of_run's too
    watch = dead_peers.Watch(floor, min(cfg.eval_every, cfg.rounds), len(b.lanes_of(i)), sampled,
                             cfg.participation < 1, total=total, groups=groups)
    if rec is not None and (rec.evals or (rec.file and rec.file.rows)):
        watch.replay([json.loads(line) for line in rec.file.rows] if rec.file else [], rec.evals, rec.seeds)
    return watch


class Lanes:
    """Routes each lane's rows to its configuration's recorder; a lane whose loss is not finite stops
    its configuration (the others in the group go on)."""

    def __init__(self, b: Built, out_dirs: list, chunk: int, bar, resume: Optional[dict],
                 held: contextlib.ExitStack, on_final=None):
        """Each configuration's tracker and metrics file, each handed to `held` as soon as it is open:
        a later one failing to open (a tracker refused, a metrics file that cannot be written) closes
        those before it with the rest of the run. (A list of recorders built in one expression left
        the first configuration's files open when the second's failed.) `on_final(i, result)`: called
        once configuration i's last row is on disk (a group's run finished while others go on)."""
        self.b = b
        self.recs = []
        # an out-of-memory retry (run._retry_point) keeps the rows written and writes none again: its trackers
        # start afresh and are given those rows first (a retry's MLflow run began at the first row not yet
        # written, the earlier rounds only in the attempt that ran out of memory)
        retry = bool(resume and resume.get("retry"))
        for i, d in enumerate(out_dirs):
            own = resume["recs"][i] if resume and "recs" in resume else resume    # a group's retry: each its own
            track = tracking.open_run(b.cfgs[i], d, fresh=resume is None or retry,      # no directory: the name
                                      name=own and own.get("track_name")) if mesh.is_writer() else None   # kept
            if track:
                held.callback(track.close)
            rec = Recorder([b.seeds[j] for j in b.lanes_of(i)], d, chunk, bar, own, track, index=i)
            held.callback(rec.close_file)       # before its tracker, which draws from the file
            if track and resume:    # a retry's fresh tracker logs the rows before it; a resume's learns from them
                kept = [json.loads(line) for line in rec.file.rows] if rec.file else rec.given
                track.resumed(kept, log=retry)      # which keys were short (seeds_counted/<key>)
            self.recs.append(rec)
        self.t0 = self.recs[0].t0
        self.failed: dict[int, NonFiniteLoss] = dict(resume.get("failed") or {}) if resume else {}    # a group's retry
        self.bar = bar
        self.watches = [_watch(b, i, rec) for i, rec in enumerate(self.recs)] if mesh.is_writer() else []
        self.names = [Path(d).name if d is not None else "" for d in out_dirs]
        self.on_final = on_final        # those finished before (a retry's kept rows): not again
        self.final = {i for i, rec in enumerate(self.recs) if rec.last.get("round") == b.cfgs[i].rounds}
        self.said: set = set()

    def say_once(self, key: str, line: str) -> None:
        """A warning line on stderr (above tqdm's bar where there is one), once per run: `key` names it."""
        if key in self.said or not mesh.is_writer():
            return
        self.said.add(key)
        if self.bar is not None and hasattr(self.bar, "note"):
            self.bar.note(line)
        else:
            print(line, file=sys.stderr)

    def live(self, j: int) -> bool:
        return self.b.lane_cfg[j] not in self.failed

    def diverged(self, j: int, message: str) -> None:
        i = self.b.lane_cfg[j]
        err = NonFiniteLoss(message)
        rec = self.recs[i]
        if rec.out_dir:
            atomic.write_text(rec.out_dir / ERROR, message + "\n")
        if len(self.recs) == 1:
            raise err
        self.failed[i] = err
        if self.on_final:       # final now, as a run whose last row is written (a sweep records it stopped:
            if rec.file:        # its out-of-memory fallback ran it again, from round 1, until late on 2026-12-07)
                rec.file.sync()
            self.on_final(i, err)

    def rows(self, r: int, lane_rows: list) -> None:
        for i, rec in enumerate(self.recs):
            mine = [row for j, row in lane_rows if self.b.lane_cfg[j] == i]
            if mine:
                rec.rows(r, mine)
        for j, row in lane_rows:        # a peer at the floor for STREAK evaluations: said now, once per run
            i = self.b.lane_cfg[j]
            if self.watches and (line := self.watches[i].see(row, self.b.seeds[j], self.names[i])):
                if self.bar is not None and hasattr(self.bar, "note"):
                    self.bar.note(line)         # above tqdm's bar, not through it
                else:
                    print(line, file=sys.stderr)
        for i, rec in enumerate(self.recs):
            if i not in self.final and i not in self.failed and rec.last.get("round") == self.b.cfgs[i].rounds:
                self.final.add(i)       # its last row written: final now, not when the group ends (a group
                if self.on_final:       # stopped later kept its old checkpoint, and a resume reran it)
                    if rec.file:
                        rec.file.sync()
                    self.on_final(i, self.result(i))

    def meta(self, lo: int, r: int, ledgers):
        """A checkpoint's meta: one configuration's (--resume compares its config with the one resuming);
        a group's (one chunk of every lane, lo 0) a list, each configuration's as it alone would save it
        (its own ledgers and lanes), None for one stopped (its loss not finite) or past its rounds."""
        if len(self.recs) == 1:
            return self._meta(0, self.recs[0].meta(lo, r, ledgers))
        return [None if i in self.failed or r >= self.b.cfgs[i].rounds else
                self._meta(i, {**rec.meta(lo, r, [ledgers[j - lo] for j in self.b.lanes_of(i)]),
                               "chunk": len(self.b.lanes_of(i))}) for i, rec in enumerate(self.recs)]

    def restart(self, lo: int, chunk: int) -> dict:
        """The state for an out-of-memory retry of the chunk at lane lo from its round 1, `chunk` lanes at
        a time, kept in memory: a lone run's a checkpoint's meta (run._retry_point); a group's
        (memory_retry.group_point) each configuration's own under "recs" (its lanes before lo, finished,
        keep their waiting rows), the configurations stopped under "failed" (their error.txt written)."""
        if len(self.recs) == 1:
            return restart_meta(self.meta(lo, 0, []), lo, chunk)
        recs = [restart_meta(rec.meta(lo, 0, []), max(0, lo - self.b.lanes_of(i)[0]), chunk)
                for i, rec in enumerate(self.recs)]
        return {"lo": lo, "round": 0, "ledgers": [], "chunk": chunk, "retry": True, "recs": recs,
                "failed": dict(self.failed)}

    def _meta(self, i: int, own: dict) -> dict:
        doc = config.to_dict(self.b.cfgs[i])
        return {**own, "config": doc, "plugins": {m: plugin_import.source_digest(m) for m in doc.get("plugins", [])},
                "data_digest": self.b.data_digest, "code": code_identity.identity(),
                "random": code_identity.random_settings()}

    def results(self) -> list:
        return [self.result(i) for i in range(len(self.recs))]

    def result(self, i: int):
        """Configuration i's last row plus 'out', or the error that stopped it."""
        if i in self.failed:
            return self.failed[i]
        rec = self.recs[i]
        return {**rec.last, "out": str(rec.out_dir) if rec.out_dir else None}


def restart_meta(meta: dict, lo: int, chunk: int) -> dict:
    """A lone run's meta (a checkpoint's, or Recorder.meta's) made to start the seed chunk at index `lo`
    again from its round 1, `chunk` seeds at a time: the rows the seeds before `lo` left waiting for the
    later chunks kept (each round's list holds them first, in seed order: chunks run in order), that
    chunk's own dropped (it recomputes them), the metrics rows written, `last` and the time spent kept.
    Recorder.rows takes no row of a round written already: recomputed, not written twice. `retry`: Lanes
    opens the trackers afresh and gives them the rows written (kept in memory only: no checkpoint holds it)."""
    evals = {int(r): list(rows[:lo]) for r, rows in meta["evals"].items() if rows[:lo]}
    return {**meta, "lo": lo, "round": 0, "ledgers": [], "chunk": chunk, "evals": evals, "retry": True}
