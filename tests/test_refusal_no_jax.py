"""A refused `run`, `sweep` or `figure` imports no JAX: the config is validated before `jax.distributed`
and the compile cache are set up (cli.start_jax), so a refusal costs ~0.25 s of CPU, not ~2 s.

The check is on the import (sys.modules), not on a timing: one subprocess runs every refusal in turn
through cli.main, then a control that gets past validation and must import JAX with the compile cache
set (so the harness can see JAX, and start_jax still runs for an accepted config)."""
from __future__ import annotations

import json
import subprocess
import sys

HARNESS = """
import json, sys
from tallysim import cli
cases, report = json.loads(sys.argv[1]), []
for argv in cases:
    rc = cli.main(argv, repeats=False)
    report.append([rc, sorted(m for m in sys.modules if m == 'jax' or m.startswith('jax.'))[:3]])
import jax
report.append(jax.config.jax_compilation_cache_dir)
print(json.dumps(report))
"""


def _refused_before_jax(monkeypatch, tmp_path, cache, refused: list, control: list) -> str:
    """Runs every argv of `refused`, then `control`, in one fresh process (HARNESS): each refusal is one
    error line with exit 2 and no jax module imported; the valid control imports JAX. Returns the compile
    cache directory JAX was given."""
    monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", str(cache))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("TALLYSIM_DISTRIBUTED", raising=False)
    done = subprocess.run([sys.executable, "-c", HARNESS, json.dumps(refused + [control])],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    *rows, cache_dir = json.loads(done.stdout.strip().splitlines()[-1])
    errors = [line for line in done.stderr.splitlines() if line.startswith("tallysim: error:")]
    assert len(errors) == len(refused), done.stderr
    for argv, (rc, jax_modules), error in zip(refused, rows, errors):
        assert rc == 2 and jax_modules == [], (argv, rc, jax_modules, error)
    rc, jax_modules = rows[-1]
    assert rc == 0 and "jax" in jax_modules, (rc, jax_modules, done.stderr[-2000:])
    return cache_dir


def test_refused_run_and_sweep_import_no_jax(tmp_path, monkeypatch):
    out, empty, cache = tmp_path / "out", tmp_path / "empty", tmp_path / "cache"
    empty.mkdir()
    refused = [
        ["run", "rounds=-1", "--out", str(out)],                                          # a range
        ["run", "protocol.name=tally", "distill.temperature=2", "--out", str(out)],       # a field not read
        ["run", "protocol.name=nope", "--out", str(out)],                                 # a choice
        ["run", "rounds=-1", "--out", str(out), "--resume"],                              # resume + override
        ["run", "--out", str(empty), "--resume"],                                         # not a run directory
        ["run", "--out", str(out), "--resume", "--overwrite"],
        ["sweep", "rounds=-1,2", "--out", str(out)],
        ["sweep", "rounds=2", "lr=0,0.1", "--out", str(out)],
    ]
    control = ["sweep", "rounds=2", "--out", str(out), "--dry-run"]   # valid: gets to the devices check
    cache_dir = _refused_before_jax(monkeypatch, tmp_path, cache, refused, control)
    assert cache_dir == str(cache)                       # start_jax ran once the config validated
    assert not out.exists() and not list(empty.iterdir())


def test_refused_figure_imports_no_jax(tmp_path, monkeypatch):
    """`figure` as `run` and `sweep`: its refusals (a name, its arguments, its config, its runs'
    fields, with or without --dry-run) come before startup.start_jax; a valid --dry-run then imports
    JAX with the compile cache set (start_jax runs once it validated)."""
    out, cache, results = tmp_path / "figs", tmp_path / "cache", tmp_path / "results"
    a_file = tmp_path / "a_file"
    a_file.write_text("")

    def figure(name, spec):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(spec))
        return str(path)
    tiny = {"rounds": 1, "peers": 2, "data": {"name": "synthetic", "train_size": 64, "test_size": 16}}
    good = figure("good", {"kind": "curves", "base": tiny, "groups": {"a": {"protocol": {"name": "fedavg"}}}})
    bad_kind = figure("bad_kind", {"kind": "nope", "base": tiny})
    bad_field = figure("bad_field", {"kind": "curves", "base": {**tiny, "rounds": -1}})
    bad_axis = figure("bad_axis", {"kind": "curves", "base": tiny, "sweep": {"optim.lr": [0, 0.1]}})
    common = ["--out", str(out), "--results", str(results)]
    refused = [
        ["figure", "nope", *common],                                   # not a figure
        ["figure", "all", "fig1", *common],                            # all with names
        ["figure", bad_kind, *common],                                 # a kind
        ["figure", bad_field, *common],                                # a field's range
        ["figure", bad_axis, *common],                                 # a sweep value
        ["figure", good, "--out", str(a_file), "--results", str(results)],   # --out a file
        ["figure", bad_field, *common, "--dry-run"],                   # --dry-run refuses the same way
    ]
    control = ["figure", good, *common, "--dry-run"]
    cache_dir = _refused_before_jax(monkeypatch, tmp_path, cache, refused, control)
    assert cache_dir == str(cache)
    assert not out.exists() and not results.exists()
