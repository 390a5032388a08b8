"""A run directory's files, each read and checked: their names (config.json, partition.json,
metrics.jsonl, error.txt, done.json, a sweep's sweep.json) and one reader each (read_config, read_rows,
read_partition, read_sweep). Every reader checks what the plots rely on, so that a corrupt or hand-edited
file fails in one line naming the file (and the line).

Split from results/metrics.py, the run directory's schema, which re-exports every name here; what reads
one run's files without being metrics.py (dead_peers.py: the rows, the floor and the eval sample of a
run) imports them from here, so that metrics.py, which uses dead_peers.py for the summary line, is
imported by none of them. Imports nothing above it and no JAX.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from tallysim.config import ConfigError
from tallysim.fields import home, is_number, is_path
from tallysim.results import accuracy_check, partition_file
from tallysim.results.accuracy_check import ACCURACIES
from tallysim.results.headline import check_bits
from tallysim.results.rows import SEEDS_NONFINITE, revive

CONFIG = "config.json"
PARTITION = "partition.json"
PARTITION_CLIENTS = partition_file.CLIENTS      # beside partition.json above 10,000 peers
METRICS = "metrics.jsonl"
ERROR = "error.txt"
DONE = "done.json"
SWEEP = "sweep.json"
# What a run stopped by a non-finite loss writes in its error.txt (run.py's line: "round 3, seed 0: the
# training loss is nan; ..."): such a run keeps no checkpoint (how_stopped)
DIVERGED = "the training loss is "


def how_stopped(d: Path) -> str:
    """How a run directory without a checkpoint stopped before its last round, as the refusals of a plain
    run into it and of its --resume say it: by a non-finite loss (error.txt says so), whose checkpoint is
    removed as the run stops (a resume would compute the same rounds and diverge in the same one, a
    changed learning rate is refused there: docs/howto/resume.md), or before its first checkpoint."""
    try:
        diverged = DIVERGED in (d / ERROR).read_text(encoding="utf-8", errors="replace")
    except OSError:
        diverged = False
    return (f"stopped on a non-finite training loss ({d / ERROR}), and keeps no checkpoint: resumed, it would "
            "diverge again" if diverged else "stopped before its first checkpoint")


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")     # past the byte-order mark a Windows editor saves
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text (corrupt?); it should hold JSON written by tallysim") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None


def _json(path: Path):
    text = _text(path)      # its own line for a missing or unreadable file, not "not valid JSON ... corrupt"
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:     # RecursionError: `[[[...]]]` nested thousands deep
        raise ConfigError(f"{path} is not valid JSON ({str(e)[:80]}); it is corrupt or truncated") from None


def _dir(d, reader: str) -> Path:
    """The directory a reader was given, as a Path with a leading `~` expanded (as Results.read and
    tallysim.read_rows expand it): this module's read_rows("~/runs/a") of a run there said "has no
    metrics.jsonl" and read_config returned {}, and a number or None was a TypeError from inside pathlib."""
    if not is_path(d):
        raise ConfigError(f"metrics.{reader}({d!r:.60}): {type(d).__name__}, not a path; allowed: a directory as a "
                          "str or pathlib.Path")
    return Path(home(d))


def missing(path) -> str:
    """'does not exist', said of a path that is not there, with why where a folder on its way is a file
    (`table FILE/x`: "does not exist" sent the user looking for a missing folder, where FILE is there)."""
    for up in Path(os.path.expanduser(str(path))).parents:
        try:
            if up.exists():          # the nearest that does: a file there is why nothing below it can be
                return f"does not exist: {up} is a file, not a folder" if up.is_file() else "does not exist"
        except OSError:              # a folder it may not look into: nothing more to say
            break
    return "does not exist"


def read_config(run_dir) -> dict:
    """A run directory's config.json as a dict ({} when it has none; a directory that does not exist, or a
    file, is refused: a misspelt run read as a run of no config, in silence)."""
    where = _dir(run_dir, "read_config")
    if not where.is_dir():
        what = "is a file, not a run directory" if where.exists() else missing(where)
        raise ConfigError(f"{where} {what}; allowed: a run directory (written by `tallysim run --out` or tallysim.run)")
    path = where / CONFIG
    if not path.exists():
        return {}
    cfg = _json(path)
    proto = cfg.get("protocol", {}) if isinstance(cfg, dict) else None
    if not isinstance(proto, dict) or not isinstance(proto.get("name", ""), str):
        raise ConfigError(f"{path} is not a tallysim config (expected an object with protocol.name)")
    if "rounds" in cfg and not (isinstance(cfg["rounds"], int) and not isinstance(cfg["rounds"], bool)):
        raise ConfigError(f"{path}: rounds={cfg['rounds']!r} must be an integer")
    if "seed" in cfg and type(cfg["seed"]) is not int:     # "0" or null: compare sorted it against 0, a TypeError
        raise ConfigError(f"{path}: seed={cfg['seed']!r:.40} must be an integer (the run's first seed)")
    return cfg


def metrics_path(run_dir) -> Path:
    """A run directory's metrics.jsonl; ConfigError saying what the path is instead where it is no file
    of rows (a folder of that name, a sweep directory, a file given as the run, nothing)."""
    run_dir = _dir(run_dir, "read_rows")
    path = run_dir / METRICS
    if not path.is_file():
        if path.is_dir():     # a folder of that name: "has no metrics.jsonl" sent the user looking for a file
            raise ConfigError(f"{path} is a directory, not the file of the run's rows tallysim writes there; "
                              "move it aside (or rerun the run)")
        if (Path(run_dir) / SWEEP).is_file():      # a sweep's --out: its runs are one level down
            raise ConfigError(f"{Path(run_dir)} is a sweep directory, not a run; pass its runs "
                              f"({Path(run_dir)}/*/), or read it whole: `tallysim table` or `pareto`, tallysim.read_rows "
                              "in Python")
        if Path(run_dir).is_file():                # e.g. a sweep's sweep.json caught by DIR/*
            raise ConfigError(f"{Path(run_dir)} is a file, not a run directory; pass directories written by "
                              "`tallysim run --out` (a sweep's runs: DIR/*/)")
        if not Path(os.path.expanduser(run_dir)).exists():     # was "has no metrics.jsonl", as if a folder were there
            raise ConfigError(f"{Path(run_dir)} {missing(run_dir)}; pass directories written by `tallysim run --out`")
        if (Path(run_dir) / CONFIG).is_file() or (Path(run_dir).parent / SWEEP).is_file():
            # a run started (its config.json) or a sweep's run not run yet (`plot sw/*` mid-sweep): "pass
            # directories written by `tallysim run --out`" said it was none of tallysim's
            raise ConfigError(f"{Path(run_dir)} has no {METRICS} yet: a run not evaluated yet (not started, "
                              "compiling, or stopped before its first evaluation); allowed: runs that have written "
                              "rows (leave it out, or read it once it has)")
        raise ConfigError(f"{Path(run_dir)} has no {METRICS}; pass directories written by `tallysim run --out`")
    return path


def read_rows(run_dir) -> list[dict]:
    """A run directory's metrics rows, each checked (bits_per_peer and acc_mean finite numbers, acc_mean
    null only beside a number in acc_global, NaN or inf only where the row's seeds_nonfinite names it (a
    diverged seed's, kept in the mean over seeds), round an integer, acc_global a number or null)."""
    metrics = metrics_path(run_dir)
    rows = []
    text = _text(metrics)
    lines = text.splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_int=_int)
        except ValueError:
            if i == len(lines) and not text.endswith("\n"):
                # a last row without its newline: the one a run writes now, or was writing when it was
                # killed (the writer ends every row with one). The whole run was skipped ("torn by a
                # crash"); its rows before it stand, and the run reads as stopped at the round before
                break
            raise ConfigError(f"{metrics} line {i} is not valid JSON (corrupt or torn by a crash); "
                              "remove that line or rerun") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{metrics} line {i} is not a JSON object of metrics")
        row = revive(row)       # "Infinity" (strict JSON, rows.NON_FINITE) -> inf, as the bare token reads
        for key in ("bits_per_peer", "acc_mean"):
            if key == "acc_mean" and row.get(key) is None and is_number(row.get("acc_global")):
                continue        # client_storage=auto: no client model is kept, the server's is evaluated
            if key not in row:      # was "bits_per_peer=None must be a finite number", a value never written
                raise ConfigError(f"{metrics} line {i} has no {key} (every row tallysim writes holds one); "
                                  "remove that line or rerun")
            if key == "acc_mean" and is_number(row.get(key)) and isinstance(row.get(SEEDS_NONFINITE), dict) \
                    and key in row[SEEDS_NONFINITE]:
                continue        # a mean over seeds holding a diverged seed's NaN or inf, marked as aggregate
                # marks it (per_seed holds each seed's): read, as a perplexity's is, not the whole run refused
            if not is_number(row.get(key)) or not math.isfinite(row[key]):
                also = (" (or, in a mean over seeds, NaN or inf where seeds_nonfinite names acc_mean: a seed "
                        "diverged)") if key == "acc_mean" else ""
                raise ConfigError(f"{metrics} line {i}: {key}={row.get(key)!r} must be a finite number{also}")
        if not isinstance(row.get("round"), int) or isinstance(row.get("round"), bool):   # every writer writes it
            raise ConfigError(f"{metrics} line {i}: round={row.get('round')!r} must be an integer (the round "
                              "the row was evaluated after)")
        if row["round"] < 1 or (rows and row["round"] <= rows[-1]["round"]):
            # a pasted, repeated or reordered row: `final` was whichever came last, `best` counted it twice
            after = f" after round {rows[-1]['round']} (line {last_line})" if rows else ""
            raise ConfigError(f"{metrics} line {i}: round {row['round']}{after}; a run writes its rows once each, "
                              "in increasing rounds from 1: remove the repeated or misplaced line")
        if rows and row["bits_per_peer"] < rows[-1]["bits_per_peer"]:
            raise ConfigError(f"{metrics} line {i}: bits_per_peer={row['bits_per_peer']!r} is below round "
                              f"{rows[-1]['round']}'s {rows[-1]['bits_per_peer']!r}; it counts every bit sent so far, "
                              "so it never decreases (a hand-edited row?)")
        if row.get("acc_global") is not None and not is_number(row["acc_global"]):
            raise ConfigError(f"{metrics} line {i}: acc_global={row['acc_global']!r} must be a number or null")
        for key in ACCURACIES:      # 2.0 (or 50, a percent) was drawn and tabled as it stood; a NaN passes
            if is_number(row.get(key)):     # (acc_mean's was checked above: only where seeds_nonfinite marks it)
                accuracy_check.check(row[key], f"{metrics} line {i}", key, accuracy_check.DROP)
        check_bits(row, f"{metrics} line {i}")
        check_seeds(row, f"{metrics} line {i}")
        for key in ACCURACIES:      # a seed's 45.9 (a percent) went into compare's differences; its NaN (it
            for j, v in enumerate((row.get("per_seed") or {}).get(key) or []):     # diverged) is dropped there
                seed = row["seeds"][j] if isinstance(row.get("seeds"), list) else f"#{j}"
                accuracy_check.check(v, f"{metrics} line {i}, seed {seed}", f"per_seed[{key!r}]",
                                     accuracy_check.DROP)
        rows.append(row)
        last_line = i
    return rows


def _int(text: str):
    """A JSON integer as a row holds it; one past a float's range (a hand edit, `1` and 400 zeros) as inf,
    which the checks below refuse naming the column: comparing it with a float was an OverflowError's
    traceback from `table`, `pareto`, `plot` and the readers."""
    n = int(text)
    return n if abs(n) < 2 ** 1000 else (math.inf if n > 0 else -math.inf)


def check_seeds(row: dict, where: str) -> None:
    """A mean row's `seeds` (distinct integers) and `per_seed` (a list per key, one entry per seed): what
    `compare` pairs seed by seed. A hand edit ("0" for 0, a seed twice, a list one short) was a TypeError's
    traceback, or paired seed 0 with seed 1's value (zip over [0, 0, 2]) in silence."""
    seeds, per = row.get("seeds"), row.get("per_seed")
    if "seeds" in row and not (isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)
                               and len(set(seeds)) == len(seeds)):
        raise ConfigError(f"{where}: seeds={seeds!r:.60} is not a list of distinct integers (the seeds a mean row "
                          "is over, as tallysim writes it: a hand-edited row?)")
    if "per_seed" not in row:
        return
    bad = ("is not an object of per-seed lists" if not isinstance(per, dict) else
           next((f"per_seed[{k!r}] is not a list of {len(seeds or [])} values, one per seed" for k, v in per.items()
                 if not isinstance(v, list) or seeds is not None and len(v) != len(seeds)
                 or any(isinstance(x, (str, dict)) for x in v)), None))
    if bad:
        raise ConfigError(f"{where}: {'per_seed ' + bad if bad.startswith('is') else bad} (seeds {seeds!r:.40}): a "
                          "hand-edited or damaged row")


def read_partition(run_dir) -> dict:
    """A run directory's partition.json (dataset, peers, class_counts [P][C], ...); above 10,000 peers
    with its per-client arrays read back from partition_clients.npz (results/partition_file.py)."""
    where = _dir(run_dir, "read_partition")
    if not (where / PARTITION).exists() and (where / SWEEP).is_file():
        # "cannot read SWEEP/partition.json: No such file", as if a run had lost its file
        raise ConfigError(f"{where} is a sweep directory, not a run: each of its runs has its own {PARTITION}; "
                          f"pass one of its runs ({where}/*/), e.g. metrics.read_partition({str(where / 'RUN')!r})")
    doc = _json(where / PARTITION)
    if not isinstance(doc, dict):       # a list or a number was returned as the partition, in silence
        raise ConfigError(f"{where / PARTITION} is not a tallysim partition record (expected an object with peers "
                          f"and class_counts, got {type(doc).__name__}); it is damaged or not tallysim's: rerun")
    return partition_file.read(where, doc)


def read_sweep(sweep_dir) -> dict:
    """A sweep directory's sweep.json: the sweep's meta fields and `runs`, one record per run."""
    where = _dir(sweep_dir, "read_sweep")
    if not (where / SWEEP).exists() and ((where / CONFIG).is_file() or (where / METRICS).is_file()):
        # a run's own folder said only "cannot read RUN/sweep.json: No such file", as if one were lost
        parent = f"; its sweep is {where.parent}" if (where.parent / SWEEP).is_file() else ""
        raise ConfigError(f"{where} is a run directory (it holds {CONFIG} / {METRICS}), not a sweep's: it has no "
                          f"{SWEEP}{parent}; read the run with tallysim.read_rows({str(where)!r}) or "
                          f"tallysim.Results.read({str(where)!r})")
    doc = _json(where / SWEEP)
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise ConfigError(f"{where / SWEEP} is not a tallysim sweep index (expected an object "
                          "with a list `runs`)")
    bad = next((r for r in doc["runs"] if not isinstance(r, dict) or not isinstance(r.get("name"), str)), False)
    if bad is not False:    # [1, "x", null] was returned as runs, and read_rows then said "no run has written rows yet"
        raise ConfigError(f"{where / SWEEP}: run record {bad!r:.60} is not an object with a name; every record "
                          "tallysim writes is {\"name\": ..., \"overrides\": [...], \"dir\": ..., \"status\": ...}: the "
                          "file is damaged or not tallysim's (the sweep writes it again when run again)")
    return doc

