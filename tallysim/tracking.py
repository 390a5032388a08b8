"""Experiment tracking: a run's metrics rows, its config and its final figure, also sent to TensorBoard
(`log.tensorboard=DIR`, `--tensorboard DIR`) or MLflow (`log.mlflow=EXPERIMENT`).

Every backend is one small `Writer`: `start(name, hparams)`, `row(step, scalars)`, `image(tag, png)`,
`close()`. A run opens its writers when it starts (`open_run`), sends each metrics row as it is
written to metrics.jsonl (a mean over fewer seeds than the run has with `seeds_counted/<key>` beside it:
seeds_counted; one holding a diverged seed's NaN or inf with `seeds_nonfinite/<key>`), and at the end its accuracy-vs-bits curve as an image. The run directory's
files stay the record; these are views of it. A sweep's runs each write their own TensorBoard run,
DIR/<run directory's name>-<8 hex digits of its path> (run_name), so TensorBoard's hparams view
compares the configurations and two runs never share one.

The backends are optional installs (`pip install 'tallysim[tensorboard]'`, `'tallysim[mlflow]'`); a
config that names one whose package is missing fails validation in one line.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import uuid
from pathlib import Path
from typing import Optional, Protocol

from tallysim import atomic
from tallysim.config import Config, ConfigError, declared, get_field, show_default, with_values
from tallysim.results.metrics import is_number
from tallysim.results.rows import SEEDS_COUNTED, SEEDS_NONFINITE

EVENTS_GLOB = "events.out.tfevents.*"
# The accuracy columns the hparams view shows per configuration (their last value).
HPARAM_METRICS = ("acc_global", "acc_mean", "acc_ensemble", "bits_per_peer", "train_loss")


class Writer(Protocol):
    """What a tracking backend implements (a test uses a fake one)."""

    def start(self, name: str, hparams: dict) -> None: ...
    def row(self, step: int, scalars: dict) -> None: ...
    def image(self, tag: str, png: Path) -> None: ...
    def close(self) -> None: ...


# ----------------------------------------------------------------------------- what gets sent

def scalars(row: dict) -> dict[str, float]:
    """The row's finite numbers, by column name (null columns and per-seed lists are left out)."""
    return {k: float(v) for k, v in row.items()
            if k != "round" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


COUNTED = "seeds_counted/"      # `seeds_counted/vote_acc`: one tag group in TensorBoard; a valid MLflow name


def seeds_counted(row: dict, keys: set) -> dict[str, float]:
    """`seeds_counted/<key>` for a multi-seed row: over how many seeds the mean `key` logs is (aggregate's
    `seeds_counted`: a 3-seed dropout run's vote_acc averages the seeds whose vote arrived), so a
    tracker's curve says which of its points stand for fewer seeds, as table, plot and pareto say it. For
    each key short of the run's seeds in this row or an earlier one (`keys`, added to here): from then on
    every row says it, the whole count and 0 (no value, no point) included, so a curve of the count never
    joins two short rows over whole ones. {} while every mean is over every seed (one seed: always)."""
    counted = row.get(SEEDS_COUNTED)
    counted = counted if isinstance(counted, dict) else {}
    keys.update(k for k in counted if isinstance(k, str))
    seeds = len(row.get("seeds") or ())
    out = {}
    for k in sorted(keys):
        v = row.get(k)
        shown = is_number(v) and math.isfinite(v)        # what scalars() logs of it
        out[COUNTED + k] = float(counted.get(k, seeds) if shown else 0)
    return out


NONFINITE = "seeds_nonfinite/"      # `seeds_nonfinite/ppl_mean`: its own tag group, beside seeds_counted/


def seeds_nonfinite(row: dict, keys: set) -> dict[str, float]:
    """`seeds_nonfinite/<key>` for a multi-seed row: how many seeds' values of `key` were NaN or inf (aggregate's
    `seeds_nonfinite`: a diverged seed's perplexity). The mean itself is then NaN or inf, which scalars()
    leaves out, so the tracker's curve simply stopped with no word why. As seeds_counted: from a key's first
    such row on (`keys`, added to here) every row says it, 0 where every seed is finite again, so the curve
    never joins two diverged rows over clean ones (logged only when non-zero it would draw a line at 1 across
    them); {} while every value is finite (no tag for each of a run's columns at 0: always would)."""
    gone = row.get(SEEDS_NONFINITE)
    gone = gone if isinstance(gone, dict) else {}
    keys.update(k for k in gone if isinstance(k, str))
    return {NONFINITE + k: float(gone.get(k, 0)) if is_number(gone.get(k, 0)) else 0.0 for k in sorted(keys)}


def hparams(cfg: Config) -> dict:
    """Every config field by dotted key, as TensorBoard's hparams accept them (numbers, booleans, text);
    `log.*` says where results go, not what ran, and is left out."""
    out = {}
    for key in declared():
        if key.startswith("log."):
            continue
        v = get_field(cfg, key)
        out[key] = v if isinstance(v, (bool, int, float, str)) else show_default(v)
    return out


# ----------------------------------------------------------------------------- backends

RECORD = ".tallysim-events.json"     # in a TensorBoard run's directory: the event files tallysim wrote there
_EVENTS = re.compile(r"events\.out\.tfevents\.[^/\\]+")


def _recorded(logdir: Path) -> list[str]:
    """The event files earlier runs of this TensorBoard run wrote (RECORD), plain names only: an event
    file tallysim did not write (a user's, another program's) is never in it, so never deleted."""
    try:
        doc = json.loads((logdir / RECORD).read_text())
        files = doc.get("files", []) if doc.get("written_by") == "tallysim" else []
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return []
    return [f for f in files if isinstance(f, str) and _EVENTS.fullmatch(f)]


class TensorBoardWriter:
    """Event files through tensorboardX (no TensorFlow): scalars under their column names, the config
    as hparams (with HPARAM_METRICS as the metrics the hparams view shows), images as PNG. `fresh`
    (not a resume): the event files RECORD lists are this run directory's earlier curves and are removed
    first; the new one is listed there."""

    def __init__(self, logdir: Path, fresh: bool = True):
        from tensorboardX import SummaryWriter
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        mine = _recorded(self.logdir)
        if fresh:
            for name in mine:
                old = self.logdir / name
                if old.is_file() and not old.is_symlink():
                    old.unlink()
            mine = []
        before = {p.name for p in self.logdir.glob(EVENTS_GLOB)}
        self.w = SummaryWriter(str(self.logdir), flush_secs=10)     # creates its event file now
        new = sorted({p.name for p in self.logdir.glob(EVENTS_GLOB)} - before)
        atomic.write_text(self.logdir / RECORD, json.dumps({"written_by": "tallysim", "files": mine + new}) + "\n")

    def start(self, name: str, hparams: dict) -> None:
        from tensorboardX.summary import hparams as hparams_summary
        fw = self.w._get_file_writer()
        for s in hparams_summary(hparams, {k: 0.0 for k in HPARAM_METRICS}):
            fw.add_summary(s)

    def row(self, step: int, scalars: dict) -> None:
        for k, v in scalars.items():
            self.w.add_scalar(k, v, step)

    def image(self, tag: str, png: Path) -> None:
        import matplotlib.image as mpimg
        img = mpimg.imread(str(png))[..., :3]           # float [H, W, 3] in [0, 1]
        self.w.add_image(tag, img, 0, dataformats="HWC")

    def close(self) -> None:
        self.w.close()


MLFLOW_NAME = re.compile(r"[^/\w.\- ]")      # what MLflow refuses in a metric name ("@" among them)


def mlflow_name(key: str) -> str:
    """A metrics column as MLflow may name it: a model group's `acc_mean@phone` is `acc_mean/phone` (MLflow
    refuses "@": a grouped run's first row raised an MlflowException), any other refused character `_`."""
    return MLFLOW_NAME.sub("_", key.replace("@", "/"))


class MLflowWriter:
    """One MLflow run per tallysim run: params = the config, metrics = the rows (named by mlflow_name),
    the figure an artifact."""

    def __init__(self, experiment: str):
        import mlflow
        self.mlflow = mlflow
        mlflow.set_experiment(experiment)

    def start(self, name: str, hparams: dict) -> None:
        self.mlflow.start_run(run_name=name)
        self.mlflow.log_params({k: str(v) for k, v in hparams.items()})

    def row(self, step: int, scalars: dict) -> None:
        self.mlflow.log_metrics({mlflow_name(k): v for k, v in scalars.items()}, step=step)

    def image(self, tag: str, png: Path) -> None:
        self.mlflow.log_artifact(str(png))

    def close(self) -> None:
        self.mlflow.end_run()


# ----------------------------------------------------------------------------- checks & opening

def with_tracking(cfg, args):
    """`--tensorboard DIR` is `log.tensorboard=DIR` (the flag wins over the config file)."""
    if getattr(args, "tensorboard", None) is None:
        return cfg
    return with_values(cfg, {"log.tensorboard": args.tensorboard})


def tensorboard_dir(cfg: Config) -> Path:
    """log.tensorboard with a leading `~` the home, as --tensorboard (the CLI expands it) and every run's
    out=: from a config file (or `log.tensorboard=~/tb` under sh) it made a directory named `~` here."""
    return Path(os.path.expanduser(cfg.log.tensorboard))


def check_out(cfg: Config, out) -> None:
    """log.tensorboard may not be the run directory or lie inside it: its event files made the run
    directory hold a directory a run does not write, so the finished run could not be replaced
    (--overwrite) nor an interrupted one resumed ("not a tallysim run directory"). One line before
    anything is created or compiled."""
    if cfg.log.tensorboard is None or out is None or str(out).strip() == "":
        return
    run_dir = Path(os.path.realpath(os.path.expanduser(out)))
    tb = Path(os.path.realpath(tensorboard_dir(cfg)))
    if tb == run_dir or run_dir in tb.parents:
        raise ConfigError(f"log.tensorboard={cfg.log.tensorboard} is inside the run directory {out}: its event "
                          "files there would stop the run being resumed or replaced (a run directory holds only "
                          f"the files a run writes); allowed: a directory outside it, e.g. {run_dir.parent / 'tb'}")
    from tallysim.outdir import MARKER
    other = next((d for d in (tb, *tb.parents) if (d / MARKER).is_file()), None)
    if other is not None:       # another run's directory: `sweep --tensorboard runs/a` wrote events into run a
        raise ConfigError(f"log.tensorboard={cfg.log.tensorboard} is inside the tallysim run directory {other}: its "
                          "event files there would stop that run being resumed or replaced (a run directory holds "
                          f"only the files a run writes); allowed: a directory outside it, e.g. {other.parent / 'tb'}")


def check_outs(cfgs: list, dirs: list) -> None:
    """A sweep's runs' log.tensorboard checked as `run` checks it, before any run: `sweep --tensorboard runs/a`
    (a run's directory) was refused run by run, each failure's error.txt written, or not at all (--dry-run)."""
    for cfg, d in zip(cfgs, dirs):
        check_out(cfg, d)


def run_name(out_dir: Optional[Path]) -> str:
    """The name a run has in the trackers: its run directory's name (a sweep's run name) and 8 hex
    digits of its real path. The name alone collides (exp1/r and exp2/r, every sweep's seed=1); two
    run directories never share a real path, and a rerun into the same one keeps its name. Without a
    run directory, a random suffix."""
    if out_dir is None:
        return f"run-{uuid.uuid4().hex[:8]}"
    real = os.path.realpath(out_dir)
    name = re.sub(r"[^\w.=,+-]", "_", os.path.basename(real)) or "run"
    return f"{name}-{hashlib.sha256(real.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def writers(cfg: Config, out_dir: Optional[Path], fresh: bool, name: Optional[str] = None) -> list:
    """The writers `cfg.log` asks for. A fresh run (not a resume) first removes the event files an
    earlier run into the same directory wrote (only those), so the curves are this run's."""
    out = []
    if cfg.log.tensorboard is not None:
        out.append(TensorBoardWriter(tensorboard_dir(cfg) / (name or run_name(out_dir)), fresh))
    if cfg.log.mlflow is not None:
        out.append(MLflowWriter(cfg.log.mlflow))
    return out


class RunTracker:
    """A run's writers together: the config when it starts, every aggregated metrics row, and at the
    end the run's accuracy-vs-bits figure (drawn from its metrics.jsonl)."""

    def __init__(self, cfg: Config, out_dir: Optional[Path], ws: list, name: Optional[str] = None):
        self.cfg, self.out_dir, self.ws, self.rows = cfg, out_dir, ws, 0
        self.name = name or run_name(out_dir)
        self.partial: set = set()        # keys whose mean fell short of the seeds: seeds_counted()
        self.diverged: set = set()       # keys whose mean held a seed's NaN or inf: seeds_nonfinite()
        for w in ws:
            w.start(self.name, hparams(cfg))

    def resumed(self, rows: list[dict], log: bool) -> None:
        """The rows a resumed run kept (its metrics.jsonl before the checkpoint): which keys were short is
        learnt from them, as an uninterrupted run's tracker learnt it row by row (a resumed tracker left
        out `seeds_counted/<key>` until the key fell short again; `seeds_nonfinite/<key>` the same); logged too when `log` (an out-of-memory
        retry's fresh tracker), not when the backends have them (a resume appends to its curves)."""
        for row in rows:
            if log:
                self.row(row)
            else:
                seeds_counted(row, self.partial)
                seeds_nonfinite(row, self.diverged)
                self.rows += 1

    def row(self, row: dict) -> None:
        self.rows += 1
        values = {**scalars(row), **seeds_counted(row, self.partial), **seeds_nonfinite(row, self.diverged)}
        for w in self.ws:
            w.row(int(row["round"]), values)

    def close(self) -> None:
        with tempfile.TemporaryDirectory(prefix="tallysim-track-") as tmp:
            png = self._figure(Path(tmp) / "accuracy_vs_bits.png") if self.rows else None
            for w in self.ws:
                if png is not None:
                    w.image("accuracy_vs_bits", png)
                w.close()

    def _figure(self, png: Path) -> Optional[Path]:
        """The run's curve as `tallysim plot` draws it (from its metrics.jsonl; the run directory keeps
        only its own files), or None without a run directory."""
        if self.out_dir is None:
            return None
        from tallysim.results.plot import plot_curves
        plot_curves([self.out_dir], str(png), title=Path(self.out_dir).name)
        return png


def open_run(cfg: Config, out_dir: Optional[Path], fresh: bool = True, name: Optional[str] = None) -> Optional[RunTracker]:
    """The run's tracker, or None when `cfg.log` names no backend. `name`: an out-of-memory retry's,
    without a run directory, the attempt's before it (its TensorBoard events replaced, not beside it)."""
    name = name or run_name(out_dir)     # once: without a run directory it is random
    ws = writers(cfg, out_dir, fresh, name)
    return RunTracker(cfg, out_dir, ws, name) if ws else None
