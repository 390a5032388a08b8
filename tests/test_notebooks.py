"""Execute the notebooks end to end at smoke size (TALLYSIM_SMOKE=1) in a fresh working directory, as on a
fresh Colab: Debian's Fashion-MNIST hidden (TALLYSIM_NO_DEBIAN=1), an empty data cache, and tfds served by
`tfds.testing.mock_data` (offline), so the notebooks' first run must prepare the dataset itself.
The install cell's logic (install only what is missing, keep the JAX that is there) runs against fakes."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _kernel_python_ok() -> None:
    """The `python3` kernel must run this interpreter (the venv's), which has tallysim installed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        argv = KernelSpecManager().get_kernel_spec("python3").argv
    except NoSuchKernel:
        argv = None
    # jupyter_client replaces a bare "python" with sys.executable when it launches the kernel.
    if argv is None or argv[0] not in ("python", "python3", sys.executable):
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
                       check=True, capture_output=True)


# Run first in the kernel: tfds serves random examples with each dataset's real shapes and classes.
MOCK_TFDS = """import tensorflow_datasets as tfds
_mock_tfds = tfds.testing.mock_data(num_examples=1000, policy=tfds.testing.MockPolicy.USE_CODE)
_mock_tfds.__enter__()"""


def _execute(name: str, cwd: Path, monkeypatch) -> str:
    """Run the notebook in a fresh kernel as on a fresh Colab; returns its stderr output."""
    pytest.importorskip("tensorflow_datasets")
    _kernel_python_ok()
    monkeypatch.setenv("TALLYSIM_SMOKE", "1")     # the kernel inherits the environment
    monkeypatch.setenv("TALLYSIM_NO_DEBIAN", "1")           # no Debian Fashion-MNIST, as on Colab
    monkeypatch.setenv("TALLYSIM_DATA", str(cwd / "cache"))  # and nothing prepared yet
    monkeypatch.setenv("TFDS_DATA_DIR", str(cwd / "tfds"))
    monkeypatch.delenv("TALLYSIM_NO_AUTO_PREPARE", raising=False)   # (conftest sets it for the suite)
    # tallysim importable from any directory even without an editable install
    root = str(NOTEBOOKS.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(MOCK_TFDS))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()          # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    stderr = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream" and o.get("name") == "stderr")
    # The dataset was prepared by the notebook's own first run (tfds), not found on disk:
    assert "fashion_mnist is not prepared" in stderr and "prepared fashion_mnist: 1000 train" in stderr, stderr
    assert (cwd / "cache" / "fashion_mnist.npz").is_file()
    return stderr


def test_notebooks_saved_clean():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path
        for c in nb.cells:
            if c.cell_type == "code":
                assert not c.outputs and c.execution_count is None, f"{path.name} has saved outputs"


def _colored_pixels(png: Path) -> int:
    """Pixels of a saturated colour: the plotted lines and markers (axes, text and grid are grey)."""
    import numpy as np
    from matplotlib import image
    rgb = image.imread(str(png))[..., :3]
    return int(np.sum(rgb.max(-1) - rgb.min(-1) > 0.25))


def _finite_rows(path: Path, keys) -> list:
    import json
    import math
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if all(isinstance(r.get(k), (int, float)) and math.isfinite(r[k]) for k in keys)]


# fast (make test): test_leftovers_dec24l.test_quickstart_notebook_runs_pass_the_checks_a_run_makes_first runs
# its run cell as written up to where the runs would load data
@pytest.mark.slow
def test_quickstart_notebook(tmp_path, monkeypatch):
    _execute("quickstart", tmp_path, monkeypatch)
    for name in ("tally", "softlabel", "fedavg"):
        rows = _finite_rows(tmp_path / "runs" / "quickstart" / name / "metrics.jsonl", ("acc_mean", "bits_per_peer"))
        assert rows and all(r["bits_per_peer"] > 0 for r in rows), name      # points to draw
    assert _colored_pixels(tmp_path / "runs" / "quickstart" / "quickstart.png") > 200   # and they were drawn


@pytest.mark.slow
def test_figures_notebook(tmp_path, monkeypatch):
    import csv
    _execute("figures", tmp_path, monkeypatch)
    pngs = list((tmp_path / "runs" / "notebook" / "figures").glob("fig1*.png"))   # fig1-smoke.png
    assert pngs, pngs
    for png in pngs:
        assert _colored_pixels(png) > 200, png                                      # lines, not empty axes
        table = list(csv.DictReader(png.with_suffix(".csv").open()))                # the numbers behind it
        assert len({row["group"] for row in table}) >= 2, table                     # several protocols
        assert all(0.0 <= float(row["accuracy"]) <= 1.0 for row in table), table   # finite points


# ----------------------------------------------------------------------------- the install cell, against fakes

def _cell(name: str, needle: str) -> str:
    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    hits = [c.source for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert len(hits) == 1, (name, needle)
    return hits[0]


@pytest.mark.parametrize("jax_installed,gpu", [(True, True), (False, True), (False, False)])
def test_install_cell_installs_only_what_is_missing(jax_installed, gpu, tmp_path, monkeypatch):
    import importlib.metadata
    import shutil
    needle = "# Install tallysim if it is not importable"
    code = _cell("quickstart", needle)
    assert _cell("figures", needle) == code                        # one install cell, in both notebooks
    real_find_spec = importlib.util.find_spec
    missing = {"tallysim"} | (set() if jax_installed else {"jax"})
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in missing else real_find_spec(n, *a))
    monkeypatch.setattr(shutil, "which", lambda cmd: "/usr/bin/nvidia-smi" if gpu and cmd == "nvidia-smi" else None)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "install cell", "exec"), {"__name__": "__main__"})
    src = str(tmp_path / "tallysim-src")
    assert calls[0][:4] == ["git", "clone", "--depth", "1"] and calls[0][-1] == src
    assert len(calls) == 2, calls                                  # the clone, then one pip install
    pip = calls[1]
    assert pip[:5] == [sys.executable, "-m", "pip", "install", "-q"] and "-U" not in pip and "--upgrade" not in pip
    assert not any("jax" in arg for arg in pip), pip               # JAX is never named, so never reinstalled
    target = pip[pip.index("-e") + 1]
    assert target == (src + "[cuda]" if gpu and not jax_installed else src)
    pins = Path(pip[pip.index("-c") + 1]).read_text().split()
    if jax_installed:                                              # Colab: its JAX pinned as it is
        assert f"jax=={importlib.metadata.version('jax')}" in pins
        assert f"jaxlib=={importlib.metadata.version('jaxlib')}" in pins
    else:
        assert pins == []
    assert sys.path[0] == src                                      # the kernel imports the clone


def test_figures_notebook_smoke_switch_follows_its_variable(monkeypatch):
    code = _cell("figures", "SMOKE =")
    for value, smoke in ((None, True), ("1", True), ("0", False)):
        if value is None:
            monkeypatch.delenv("TALLYSIM_SMOKE", raising=False)
        else:
            monkeypatch.setenv("TALLYSIM_SMOKE", value)
        ns = {}
        exec(code, ns)
        assert ns["SMOKE"] is smoke, value
    code = _cell("quickstart", "SMOKE =")
    monkeypatch.setenv("TALLYSIM_SMOKE", "0")
    ns = {}
    exec(code.split("base = ")[0], ns)                             # up to the config it builds
    assert ns["SMOKE"] is False


def test_figures_notebook_make_figure_call_passes_the_figures_checks(tmp_path, monkeypatch):
    """The figures notebook ran `make_figure(..., results="runs/notebook", out="runs/notebook/figures")`,
    refused since figures refuse an --out inside --results (its cell failed; only the slow notebook test,
    not `make test`, executed it). Its call's own arguments, taken from the cell, pass the checks the figure
    makes before any run (figures.preflight); nothing compiles or runs. The slow test_figures_notebook runs it."""
    import ast
    from tallysim import figures
    code = _cell("figures", "figures.make_figure(")
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "make_figure"]
    assert len(calls) == 1, code
    kwargs = {k.arg: ast.literal_eval(k.value) for k in calls[0].keywords if k.arg in ("results", "out")}
    assert set(kwargs) == {"results", "out"}, kwargs
    ns = {}
    exec(_cell("figures", "FIGURE ="), ns)
    monkeypatch.chdir(tmp_path)                                    # the notebook's fresh working directory
    for smoke in (True, False):
        figures.preflight(ns["FIGURE"], smoke, kwargs["results"], kwargs["out"])
    # a config the notebook offers for FIGURE (the make targets' studies) runs from the fresh directory too:
    # found among the shipped configs, its smoke section valid, with the cell's own results and out
    nb_text = (NOTEBOOKS / "figures.ipynb").read_text()
    offered = set(re.findall(r"experiments/[\w/]+\.json", nb_text)) - {"experiments/figN.json"}   # figN: any
    assert offered, "the figures notebook names no figure config for FIGURE"
    for path in sorted(offered):
        figures.preflight(path, True, kwargs["results"], kwargs["out"])
    doc = " ".join((NOTEBOOKS.parent / "docs" / "notebooks.md").read_text().split())
    assert f"`{kwargs['results']}/`" in doc and f"`{kwargs['out']}/`" in doc      # where docs/notebooks.md says
