"""The metrics schema: what a run directory holds, how it is read, and the numbers read from it.

A `tallysim run --out DIR` directory (run.py) holds
    config.json      the fully resolved config (plus `placement`, `code` (code_identity.py), and `resumed`
                     after a resume)
    partition.json   per-peer class counts of the first seed (`per_seed`: every seed's); above 10,000
                     peers a summary, the per-peer arrays in partition_clients.npz beside it
    metrics.jsonl    one row per evaluation (keys in docs/protocols.md); with several seeds the mean
                     under the usual keys, `<key>_std` and `per_seed` lists, `seeds_counted` where
                     some seed has no value (`aggregate`)
    error.txt        the run failed
and, in a sweep (sweep.py), `done.json` once the run returned; the sweep directory's `sweep.json`
indexes its runs ({..., "runs": [{name, overrides, dir, status, [summary|error]}]}; a failed run whose
loss went non-finite also has "diverged": true; a run done now whose last row's mean holds a diverged seed's
NaN or inf, "seeds_diverged": "ppl_mean: 1 of 3 seeds diverged").

The headline accuracy of a metrics row is the server model's (acc_global) where there is one, else
the mean of the peers' own models (acc_mean); a run's is the final row's or the best over its rows
(results/headline.py, with the summary line; the mean over seeds is results/seed_mean.py's). The rows
are written by results/rows.py; each file of one run directory is read by results/run_dir.py. All four
are re-exported here: `metrics.<name>` is every name of the schema.

Every reader checks what the plots rely on, so a corrupt or hand-edited file fails in one line naming
the file (and the line) instead of as a traceback from inside matplotlib. This module imports nothing
above it (run, sweep, cli import it) and no JAX; matplotlib only inside figure_files.py's functions
(`pyplot`, `save_figure`), re-exported here.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Iterable, Optional

from tallysim.config import ConfigError, show
from tallysim.fields import did_you_mean, home, is_path
# The headline numbers and the row writer live in their own modules; their names stay importable from
# here, where readers, run.py and the figures have always found them.
from tallysim.results.headline import (HEADLINE, HONEST, TEXT_HEADLINE, WHICH, accuracy, accuracy_std,  # noqa: F401
                                       bits_text, bits_to_target, check_bits, check_which, collapse_warning,
                                       column_final_best, diverged_of, headline_key, is_cost, is_number, lower_is_better, metric, run_accuracy,
                                       text_headline)
from tallysim.results.seed_mean import aggregate  # noqa: F401
from tallysim.results import dead_peers, headline as _headline
from tallysim.results.rows import (CLIENT_PERCENTILE, GROUP_KEYS, METRIC_ALIASES, NON_FINITE, PEER_PLACES, PROBE_KEYS,  # noqa: F401
                                   ROUND_KEYS, SEEDS_COUNTED, SEEDS_NONFINITE, check_metric_key, check_own_keys, client_stats,
                                   dumps_row, group_row, lane_row, revive, text_row)
# A figure's files (matplotlib on Agg, --out checked, a table beside it, titles wrapped, written whole):
# results/figure_files.py, re-exported: metrics.save_figure as before
from tallysim.results.figure_files import (DPI, check_figure_out, pyplot, refuse_foreign_beside,  # noqa: F401
                                           save_figure, wrap_titles)

# A run directory's file names and the reader of each file (read_config, read_rows, read_partition,
# read_sweep): results/run_dir.py, re-exported, where dead_peers.py reads them without this module
from tallysim.results.run_dir import (missing, CONFIG, DONE, ERROR, METRICS, PARTITION, PARTITION_CLIENTS,  # noqa: F401
                                      SWEEP, metrics_path, read_config, read_partition, read_rows, read_sweep)
# the files a sweep (and so a figure's group, a sweep too) writes beside its run directories: skipped when
# given among runs, as `tallysim plot runs/x/*` gives them; hidden ones (the lock) no shell glob matches
SWEEP_WRITTEN = frozenset({SWEEP})
# sweep.json's status of a run an earlier invocation of the sweep finished (this one left it as it was);
# files written before 2026-12-07 say "skipped" for it, which read_sweep and the readers take as the same
DONE_BEFORE = "done_before"
DONE_BEFORE_OLD = "skipped"


def done_before(record: dict) -> bool:
    """Whether a sweep.json run record is a run finished by an earlier invocation (old files: "skipped")."""
    return record.get("status") in (DONE_BEFORE, DONE_BEFORE_OLD)


def sweep_axis_keys(doc: dict) -> list[str]:
    """The keys of a sweep.json's `axes` ("key=v1,v2" each, in the order the user gave them), [] where it
    names none (a file written before 2026-12-07 recorded only the command line's, so a config file's
    `sweep` section left it []) or is not a list of such texts."""
    axes = doc.get("axes") if isinstance(doc, dict) else None
    if not isinstance(axes, list):
        return []
    return [a.split("=", 1)[0] for a in axes if isinstance(a, str) and "=" in a]


def run_collapse_warning(last: dict, spec) -> Optional[str]:
    """collapse_warning of a finished run (run.py): `last` its last row with `out`, its run directory, whose
    rows give the best accuracy it reached (none: not known, as for a run without a directory); `spec` its
    fed.Spec (read, not imported: results/ imports no sim/): classes, active voters, task (next-token
    runs: no 1/C chance, no warning). The warning names the run by its directory's name."""
    classes = spec.classes if getattr(spec, "task", "classification") == "classification" else 0
    name = Path(last["out"]).name if last.get("out") else ""
    note = collapse_warning(last, classes, spec.active, name=name)
    if note and last.get("out"):        # the rows read only where the last one would warn
        try:
            best = max((v for v in map(metric, read_rows(last["out"])) if v is not None and math.isfinite(v)),
                       default=None)
        except ConfigError:     # a run directory that cannot be read: no history, as without one
            return note
        return collapse_warning(last, classes, spec.active, best, name)
    return note


def directory(d, what: str = "a run directory"):
    """`d`, if it is a path (str or os.PathLike), with a leading `~` expanded as the run's out= was (Python
    and quoted arguments get no shell to do it); anything else one ConfigError (Results.read(123) was a
    TypeError from inside pathlib)."""
    if isinstance(d, str) and not d.strip():    # `tallysim table "$OUT"` with OUT unset: read every run below
        raise ConfigError(f"{d!r} is an empty path (an unset shell variable?), read as this directory and all "  # "."
                          f"below it; allowed: {what} named, or . for this directory")
    if is_path(d):
        return home(d)
    raise ConfigError(f"{show(d)} is {type(d).__name__}, not a path; allowed: {what} as a str or pathlib.Path")


def directories(dirs) -> list:
    """The directories a reader of several runs was given: one path (table_rows("runs/a") walked the
    string's letters, "t is not a directory") or a list of them, at least one (read_rows([]) said "no run
    directories under " of nothing)."""
    if is_path(dirs):
        return [directory(dirs)]
    if isinstance(dirs, (bytes, dict)) or not isinstance(dirs, Iterable):
        raise ConfigError(f"{show(dirs)} is {type(dirs).__name__}; allowed: a directory (str or pathlib.Path) or "
                          "a list of them")
    out = [directory(d, "each directory") for d in dirs]
    if not out:
        raise ConfigError("no directory given (an empty list); allowed: run directories or directories above them")
    # a sweep's own index beside its runs (DIR/* in a shell) is left out in silence; given alone, or any
    # other file, it is refused by the reader as before ("is a file, not a run directory")
    return [d for d in out if not sweeps_own(d)] or out


def sweeps_own(path) -> bool:
    """`path` is a file a sweep wrote beside its run directories (SWEEP_WRITTEN, in a sweep directory)."""
    p = Path(path)
    return p.name in SWEEP_WRITTEN and p.is_file() and (p.parent / SWEEP).is_file()


def read_run(run_dir) -> tuple[dict, list[dict]]:
    """(config dict, metric rows) of one run directory; ConfigError naming the file when corrupt."""
    run_dir = directory(run_dir)
    metrics_path(run_dir)                    # a directory that is no run fails on that first
    cfg = read_config(run_dir)
    return cfg, read_rows(run_dir)


def _near_folder(root: Path) -> str:
    """"; did you mean runs?" where a folder beside a missing `root` has a close name (`table runz`)."""
    try:
        beside = [p.name for p in root.parent.iterdir() if p.is_dir()]
    except OSError:         # the parent missing or unreadable: nothing to suggest
        return ""
    near = did_you_mean(root.name, beside)
    if not near or root.parent == Path("."):
        return near
    names = near[len("; did you mean "):-1].split(" or ")      # named as the user wrote root: a/runz -> a/runs
    return f"; did you mean {' or '.join(str(root.parent / n) for n in names)}?"


def find_runs(dirs: Iterable, unlisted: Optional[Callable] = None) -> list[tuple[Path, str]]:
    """(run directory, label) for every directory with metrics.jsonl at or below each of dirs.
    The label is the path relative to the given directory (its own name if it is a run). A folder it
    cannot list (no read permission) is passed to `unlisted(folder, label, ConfigError)`, as read_runs
    passes a corrupt run to its `skip`: its runs were left out in silence (os.walk's default)."""
    found, seen = [], set()
    for root in directories(dirs):
        root = Path(root)
        if not root.is_dir():
            what = "is not a directory" if root.exists() else missing(root)
            raise ConfigError(f"{root} {what}; pass run directories or directories above them{_near_folder(root)}")

        def cannot_list(e: OSError, root=root):
            if unlisted is not None:
                where = Path(e.filename) if e.filename else root
                below = where != root and where.is_relative_to(root)
                label = where.relative_to(root).as_posix() if below else str(where)
                unlisted(where, label, ConfigError(f"cannot list this folder ({e.strerror or e}): any runs "
                                                   "under it are left out"))
        try:
            is_run = (root / METRICS).exists()
        except OSError as e:        # a folder it may not enter (chmod 000): exists() raises, a traceback
            cannot_list(OSError(e.errno, e.strerror, str(root)))
            continue
        if is_run:
            hits = [(root, root.resolve().name)]
        else:
            hits, walked = [], {root.resolve()}
            # links followed: a folder of links to runs (`ln -s ../sweep/a results/a`) was "no run
            # directories"; each real directory walked once, so a link back up (a loop) ends
            for dirpath, dirnames, filenames in os.walk(root, onerror=cannot_list, followlinks=True):
                # real directories claim before links: a link to a run beside it (`ln -s t latest`) sorted
                # first and claimed the run, which table and read_rows then named by the link's name; then
                # walked in name order, links among them (a link `a` before the real `b`, as ever)
                fresh, as_dir = set(), {METRICS} & set(dirnames)
                for name in sorted(dirnames, key=lambda n: (os.path.islink(os.path.join(dirpath, n)), n)):
                    real = (Path(dirpath) / name).resolve()
                    if real not in walked:
                        walked.add(real)
                        fresh.add(name)
                dirnames[:] = sorted(fresh)
                if METRICS in dirnames:     # a directory of that name: the run was left out in silence
                    dirnames.remove(METRICS)    # (read_runs now says why it cannot read it); not walked
                if METRICS in filenames or METRICS in as_dir:
                    d = Path(dirpath)
                    hits.append((d, d.relative_to(root).as_posix()))
        for d, label in hits:
            key = d.resolve()
            if key not in seen:
                seen.add(key)
                found.append((d, label))
    labels = [label for _, label in found]
    if len(set(labels)) < len(labels):   # the same sweep names under several roots: keep them apart
        found = [(d, f"{d.parent.name}/{label}" if labels.count(label) > 1 else label) for d, label in found]
    return found


def read_runs(dirs: Iterable, skip, none_ok: bool = False) -> list[tuple[Path, str, dict, list]]:
    """(run directory, label, config, rows) of every run find_runs finds under `dirs`. A corrupt run is
    passed to `skip(run_dir, label, error)` (which may raise) and left out; none readable is a
    ConfigError, which says whether runs were found and could not be read (`tallysim table` and
    tallysim.read_rows, alike), or with `none_ok` an empty list (pareto.collect: a figure's group may
    have no finished run yet, and `tallysim pareto` says "no complete runs" itself)."""
    dirs = directories(dirs)
    runs, skipped, unlisted = [], 0, []

    def cannot_list(d, label, e):
        unlisted.append(d)
        skip(d, label, e)
    for d, label in find_runs(dirs, cannot_list):
        try:
            runs.append((d, label, *read_run(d)))
        except ConfigError as e:
            skip(d, label, e)
            skipped += 1
    if not runs and not none_ok:
        where = ", ".join(map(str, dirs))
        if skipped:           # they were found, and were unreadable: not "no run directories"
            raise ConfigError(f"no readable run under {where}: the {skipped} run "
                              f"director{'y' if skipped == 1 else 'ies'} found could not be read (above)")
        blind = f" ({len(unlisted)} folder{'s' if len(unlisted) > 1 else ''} not listed, above)" if unlisted else ""
        sweeps = [d for d in dirs if (Path(d) / SWEEP).is_file()]
        if sweeps and not unlisted:     # a sweep just started: "no run directories" read as a wrong folder
            raise ConfigError(f"{', '.join(map(str, sweeps))}: a sweep ({SWEEP}) none of whose runs has written "
                              f"its {METRICS} yet (not started, or before its first evaluation); read it again "
                              "once a run has evaluated (`tallysim sweep` writes each run's rows as it goes)")
        raise ConfigError(f"no run directories (with {METRICS}) under {where}{blind}")
    return runs


def panel_of(run_dir) -> str:
    """The figure panel a run directory belongs to: its name up to the first "__"."""
    return Path(run_dir).name.split("__")[0]


def columns(rows: list[dict]) -> list[str]:
    """Numeric columns of metric rows (what --metric may name)."""
    return sorted({k for r in rows for k, v in r.items() if is_number(v) and k != "round"})


def final_best(rows: list[dict], name: str = "auto") -> tuple[Optional[float], Optional[float]]:
    """A run's (final, best) value of metric `name`: the last row's, and the largest over its rows (the
    smallest for a perplexity or a loss, lower_is_better; a cost, is_cost, is cumulative: its last value; NaN
    and missing values left out); None where there is none. A name no row has and no run writes (`acc_globl`) is refused naming close keys, where it
    returned (None, None); column_final_best is the unchecked path (table's runs that lack a column)."""
    if isinstance(rows, (list, tuple)) and all(isinstance(r, dict) for r in rows):   # else refused below
        check_metric_key(rows, name)
    return column_final_best(rows, name)


def summary_line(cfg, last: dict) -> str:
    """A finished run's one line (results/headline.py's): `cfg` its Config, or its config.json as a dict
    (`Results.config`: the notebook's `summary_line(res.config, res.last)` was an AttributeError 'seeds'),
    `last` its last metrics row (`Results.last`); anything else refused in one line (a list of rows, or a
    row without an accuracy, was a TypeError from inside)."""
    from tallysim.config import Config, from_dict
    if isinstance(cfg, dict):
        cfg = from_dict(cfg, where="summary_line(cfg)")     # its records (code, placement) left out
    if not isinstance(cfg, Config) or not isinstance(last, dict) or not is_number(last.get(headline_key(last))) \
            or not is_number(last.get("bits_per_peer")):     # a row without it: KeyError 'bits_per_peer' from inside
        raise ConfigError(f"summary_line(cfg={type(cfg).__name__}, last={type(last).__name__}): expected a Config "
                          "(or a run's config.json as a dict, Results.config) and one metrics row with an "
                          "accuracy and bits_per_peer (Results.last)")
    # the run's rows name the peers at the floor all run (results/dead_peers.py, which reads them through
    # run_dir.py, never through this module)
    dead = dead_peers.clause(dead_peers.of_run(last["out"])) if last.get("out") else ""
    return _headline.summary_line(cfg, last, dead)
