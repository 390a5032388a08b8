"""Package layout (all metadata is in pyproject.toml).

The experiment configs live in the repository's top-level `experiments/` and ship inside the package
as `tallysim.experiments` (package data, subdirectories included), so `tallysim figure fig1` works
from a wheel as well as from an editable install; `tallysim.figures.experiments_dir()` finds them
with importlib.resources.
"""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
EXPERIMENTS = ["tallysim.experiments"] + sorted(
    "tallysim.experiments." + ".".join(d.relative_to(ROOT / "experiments").parts)
    for d in (ROOT / "experiments").rglob("*") if d.is_dir() and d.name != "__pycache__")

setup(
    packages=find_packages(include=["tallysim", "tallysim.*"]) + EXPERIMENTS,
    package_dir={"tallysim.experiments": "experiments"},
    package_data={pkg: ["*.json"] for pkg in EXPERIMENTS},
)
