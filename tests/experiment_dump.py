"""Every shipped experiment, fully resolved: what each of its runs writes as config.json, full and smoke.

    PYTHONPATH=. python tests/experiment_dump.py OUT_DIR [EXPERIMENTS_DIR]

writes, for each experiment file E under experiments/ (shared bases in experiments/base/ are not
experiments and are skipped):
    OUT_DIR/E/spec.json                   the file as the figure code reads it, less the parts that only
                                          say how runs are built (base, groups, sweep, smoke, panels),
                                          which the run documents below cover; a benchmark (kind speed)
                                          has no runs, so its whole file. Keys sorted: the order of
                                          these keys means nothing (that of groups, axes and panels does,
                                          and plan.json keeps it)
    OUT_DIR/E/{full,smoke}/plan.json      group -> [[run name, [key=value overrides]], ...] in run order
                                          (the overrides also label the plots)
    OUT_DIR/E/{full,smoke}/<group>/<run>.json   config.to_dict of the run's validated config, as
                                          `tallysim run` writes it to config.json (less `placement`,
                                          which depends on the devices)
A figure file (one with `kind`) expands as `tallysim figure` does (figures.group_plans); any other
file as `tallysim sweep --config E [--smoke]` does. Comparing two dumps (diff -r) shows whether a
rewrite of the experiment files changed any run. tests/test_extends.py expands every experiment this
way (without writing) so that each keeps resolving.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tallysim import config, sweep
from tallysim import figures

PLAN_KEYS = ("base", "groups", "sweep", "smoke", "panels")
# This checkout's experiments/ (figures.EXPERIMENTS is the installed package's copy, which under an
# editable install of another checkout is not this one).
ROOT = Path(__file__).resolve().parents[1] / "experiments"


def experiment_files(root: Path = ROOT) -> list[Path]:
    """Every experiment file under `root`, sorted; shared bases (`base/`) are not experiments."""
    return sorted(p for p in root.rglob("*.json") if "base" not in p.relative_to(root).parts[:-1])


def _text(doc, sort_keys: bool = False) -> str:
    return json.dumps(doc, indent=2, sort_keys=sort_keys) + "\n"


def expand(path: Path) -> dict[str, str]:
    """relative output path -> text, for one experiment file (see the module docstring)."""
    spec = config.read_file(str(path))
    out = {}
    figure = "kind" in spec
    if figure and spec["kind"] == "speed":
        out["spec.json"] = _text(spec, sort_keys=True)
        return out
    out["spec.json"] = _text({k: v for k, v in spec.items() if k not in PLAN_KEYS}, sort_keys=True)
    for smoke in (False, True):
        mode = "smoke" if smoke else "full"
        if figure:
            plans = figures.group_plans(spec, smoke, path.parent)
        else:
            base = config.load_file(str(path), smoke=smoke, sweep_base=True)
            plans = {"sweep": (base, sweep.expand(spec.get("sweep") or {}, []))}
        out[f"{mode}/plan.json"] = _text({g: [[n, ov] for n, ov in runs] for g, (_, runs) in plans.items()})
        for gname, (cfg, runs) in plans.items():
            for (name, _), c in zip(runs, sweep.configs(cfg, runs)):
                out[f"{mode}/{gname}/{name}.json"] = _text(config.to_dict(c))
    return out


def dump(out_dir: Path, root: Path = ROOT) -> int:
    """Write every experiment's expansion under out_dir; returns the number of run documents."""
    n = 0
    for path in experiment_files(root):
        rel = path.relative_to(root).with_suffix("")
        for name, text in expand(path).items():
            target = out_dir / rel / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            n += not name.endswith(("spec.json", "plan.json"))
    return n


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python tests/experiment_dump.py OUT_DIR [EXPERIMENTS_DIR (default: this checkout's)]")
    root = Path(sys.argv[2]).resolve() if len(sys.argv) == 3 else ROOT
    print(f"{dump(Path(sys.argv[1]), root)} run documents from {root} written under {sys.argv[1]}")
