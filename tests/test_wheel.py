"""Installable like a library: build the wheel, install it into a fresh venv, run the console script.

Offline and without downloading JAX again: the wheel is built without build isolation, installed with
--no-deps into a bare venv, and the dependencies come from this venv's site-packages on PYTHONPATH (an
editable install's .pth files are not processed from PYTHONPATH, so the wheel's copy is the one imported,
which the test checks). The figure runs from an empty directory, so nothing resolves against the checkout.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "tallysim", "experiments")


def _setuptools_ok() -> bool:
    try:
        from importlib.metadata import version
        return int(version("setuptools").split(".")[0]) >= 77
    except Exception:       # noqa: BLE001 - absent or unparsable: skip
        return False


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """(python, console script, env) of a fresh venv holding only the tallysim wheel."""
    if not _setuptools_ok():
        pytest.skip("building the wheel offline needs setuptools>=77 here (pip install -e '.[dev]')")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"                          # a copy: the build writes build/ and *.egg-info into it
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(dist), str(src)], check=True, capture_output=True, text=True)
    (whl,) = dist.glob("tallysim-*.whl")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(whl)], check=True, capture_output=True, text=True)
    deps = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COV_", "COVERAGE"))}
    env.update(PYTHONPATH=os.pathsep.join(dict.fromkeys(deps)), TALLYSIM_DATA=str(tmp / "cache"),
               MPLBACKEND="Agg", TALLYSIM_NO_AUTO_PREPARE="1", TALLYSIM_NO_DEBIAN="1")
    # A small stand-in for Fashion-MNIST in the cache: this test is about packaging, not data.
    rng = np.random.default_rng(0)
    (tmp / "cache").mkdir()
    np.savez(tmp / "cache" / "fashion_mnist.npz", x_train=rng.integers(0, 256, (1000, 28, 28, 1), np.uint8),
             y_train=rng.integers(0, 10, 1000).astype(np.int32), num_classes=np.int64(10),
             x_test=rng.integers(0, 256, (300, 28, 28, 1), np.uint8), y_test=rng.integers(0, 10, 300).astype(np.int32))
    return python, env_dir / "bin" / "tallysim", env, whl


@pytest.mark.slow
def test_wheel_holds_the_experiments_and_imports_from_itself(wheel_env, tmp_path):
    import zipfile
    python, _, env, whl = wheel_env
    names = zipfile.ZipFile(whl).namelist()
    for f in ("tallysim/experiments/fig1.json", "tallysim/experiments/pareto/bridge.json",
              "tallysim/experiments/cifar/fig1.json", "tallysim/experiments/demo.json",
              "tallysim/experiments/base/smoke.json", "tallysim/experiments/base/pareto.json"):
        assert f in names, f
    assert any(n.endswith("licenses/LICENSE") for n in names), names
    code = ("import json, tallysim, tallysim.config as c, tallysim.figures as f\n"
            "spec = c.read_file(f.FIGURES['fig5'])\n"
            "plans = f.group_plans(spec, True, f.EXPERIMENTS)\n"       # fig5 includes experiments/pareto/*
            "print(json.dumps({'file': tallysim.__file__, 'experiments': str(f.EXPERIMENTS),\n"
            "                  'version': tallysim.__version__, 'groups': sorted(plans)}))\n")
    out = subprocess.run([str(python), "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    site = str(python.parent.parent)
    assert info["file"].startswith(site) and info["experiments"].startswith(site), info   # the wheel's copy
    assert "bridge" in info["groups"] and "fedavg" in info["groups"]
    from tallysim import __version__
    assert info["version"] == __version__ and whl.name.startswith(f"tallysim-{__version__}-")


@pytest.mark.slow
def test_wheel_console_script_runs_a_figure_from_an_empty_directory(wheel_env, tmp_path):
    # fig4 is the smallest figure that runs simulations (two runs at smoke size); the configs it reads,
    # the runs and the drawing all come from the installed wheel.
    python, script, env, _ = wheel_env
    work = tmp_path / "empty"
    work.mkdir()
    out = subprocess.run([str(script), "--version"], cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("tallysim "), out
    out = subprocess.run([str(script), "figure", "fig4", "--smoke", "--quiet"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    png = work / "figures" / "fig4-smoke.png"
    assert png.stat().st_size > 1000 and (work / "figures" / "fig4-smoke.csv").is_file()
    rows = (work / "figures" / "fig4-smoke.csv").read_text().splitlines()
    assert len(rows) > 2, rows                                    # points, not empty axes
    assert sorted(p.name for p in (work / "results" / "fig4-smoke").iterdir()) == ["tally"]
