"""Experiment tracking: a run's metrics rows, its config and its final figure, also sent to TensorBoard
(`log.tensorboard=DIR`, `--tensorboard DIR`) or MLflow (`log.mlflow=EXPERIMENT`).

Every backend is one small `Writer`: `start(name, hparams)`, `row(step, scalars)`, `image(tag, png)`,
`close()`. A run opens its writers when it starts (`open_run`), sends each metrics row as it is
written to metrics.jsonl, and at the end its accuracy-vs-bits curve as an image. The run directory's
files stay the record; these are views of it. A sweep's runs each write their own TensorBoard run,
DIR/<run directory's name>, so TensorBoard's hparams view compares the configurations.

The backends are optional installs (`pip install 'tallysim[tensorboard]'`, `'tallysim[mlflow]'`); a
config that names one whose package is missing fails validation in one line.
"""
from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Optional, Protocol

from tallysim.config import Config, declared, get_field, show_default, with_values

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

class TensorBoardWriter:
    """Event files through tensorboardX (no TensorFlow): scalars under their column names, the config
    as hparams (with HPARAM_METRICS as the metrics the hparams view shows), images as PNG."""

    def __init__(self, logdir: Path):
        from tensorboardX import SummaryWriter
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.w = SummaryWriter(str(self.logdir), flush_secs=10)

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


class MLflowWriter:
    """One MLflow run per tallysim run: params = the config, metrics = the rows, the figure an artifact."""

    def __init__(self, experiment: str):
        import mlflow
        self.mlflow = mlflow
        mlflow.set_experiment(experiment)

    def start(self, name: str, hparams: dict) -> None:
        self.mlflow.start_run(run_name=name)
        self.mlflow.log_params({k: str(v) for k, v in hparams.items()})

    def row(self, step: int, scalars: dict) -> None:
        self.mlflow.log_metrics(scalars, step=step)

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


def run_name(out_dir: Optional[Path]) -> str:
    """The name a run has in the trackers: its run directory's name (a sweep's run name)."""
    name = Path(out_dir).resolve().name if out_dir is not None else "run"
    return re.sub(r"[^\w.=,+-]", "_", name) or "run"


def writers(cfg: Config, out_dir: Optional[Path], fresh: bool) -> list:
    """The writers `cfg.log` asks for. A fresh run (not a resume) first removes the event files an
    earlier run of the same name left in its TensorBoard directory, so the curves are this run's."""
    out = []
    if cfg.log.tensorboard is not None:
        logdir = Path(cfg.log.tensorboard) / run_name(out_dir)
        if fresh and logdir.is_dir():
            for old in logdir.glob(EVENTS_GLOB):
                old.unlink()
        out.append(TensorBoardWriter(logdir))
    if cfg.log.mlflow is not None:
        out.append(MLflowWriter(cfg.log.mlflow))
    return out


class RunTracker:
    """A run's writers together: the config when it starts, every aggregated metrics row, and at the
    end the run's accuracy-vs-bits figure (drawn from its metrics.jsonl)."""

    def __init__(self, cfg: Config, out_dir: Optional[Path], ws: list):
        self.cfg, self.out_dir, self.ws, self.rows = cfg, out_dir, ws, 0
        for w in ws:
            w.start(run_name(out_dir), hparams(cfg))

    def row(self, row: dict) -> None:
        self.rows += 1
        values = scalars(row)
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
        plot_curves([self.out_dir], str(png), title=run_name(self.out_dir))
        return png


def open_run(cfg: Config, out_dir: Optional[Path], fresh: bool = True) -> Optional[RunTracker]:
    """The run's tracker, or None when `cfg.log` names no backend."""
    ws = writers(cfg, out_dir, fresh)
    return RunTracker(cfg, out_dir, ws) if ws else None
