"""Review of 2026-12-06's change (review14): what the day's data digest, sweep lock and plugins got wrong.

- A resume of a run on synthetic data was refused on another machine: the data digest (hostile10) took
  the generated inputs' float bytes, whose last bits come from the machine's BLAS (synthetic._render's
  tensordot: OpenBLAS picks its sgemm kernel by CPU). Generated data now counts by labels and shapes.
- An interrupted command line whose stdout pipe was gone (`tallysim sweep ... | tee log`, Ctrl-C ends both)
  raised BrokenPipeError out of end_now's flush: a traceback and exit 1, not 128 + signal.
- An installed package's entry point named after a built-in model (`cnn`) was imported for every
  model.name=cnn override and stopped the run: built-in model names are never looked up.
Host-side only: `build` loads and partitions, nothing compiles.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tallysim import build as buildmod
from tallysim.config import ConfigError
from tallysim.data import synthetic
from tallysim.run_files import check_same_data

from conftest import tiny_no_warmup


def _other_blas(monkeypatch):
    """synthetic's tensordot as another machine's sgemm sums it: the same values, one ulp apart."""
    real = np.tensordot

    def tensordot(*a, **k):
        out = real(*a, **k)
        return np.nextafter(out, np.inf, dtype=out.dtype) if out.dtype == np.float32 else out
    monkeypatch.setattr(synthetic.np, "tensordot", tensordot)


def test_a_synthetic_run_resumes_on_a_machine_whose_blas_rounds_otherwise(monkeypatch, tmp_path):
    cfg = tiny_no_warmup("protocol.name=local")
    here = buildmod.build(cfg)
    _other_blas(monkeypatch)
    there = buildmod.build(cfg)
    # was: crc32 of the float inputs, which differ here: "--resume: the data ... is not what ... trained on"
    assert there.data_digest == here.data_digest and here.data_digest.startswith("gen-crc32:")
    check_same_data(there, tmp_path, {"data_digest": here.data_digest})         # not refused
    # the labels still count: another data.seed's synthetic data is other data
    other = buildmod.build(tiny_no_warmup("protocol.name=local", "data.seed=7"))
    with pytest.raises(ConfigError, match="is not what"):
        check_same_data(other, tmp_path, {"data_digest": here.data_digest})


def test_a_digest_of_another_kind_is_not_compared(tmp_path):
    # a synthetic run recorded by 2026-12-06's main ("crc32:" of its floats) resumes: nothing to compare
    b = buildmod.build(tiny_no_warmup("protocol.name=local"))
    check_same_data(b, tmp_path, {"data_digest": "crc32:0badf00d"})
    (tmp_path / "partition.json").write_text(json.dumps({"data_digest": "crc32:0badf00d"}))
    check_same_data(b, tmp_path, {})


class _BrokenPipe:
    """stdout piped into `tee`, which the same Ctrl-C ended: its buffer cannot be flushed any more."""
    def write(self, s):
        return len(s)

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_an_interrupted_command_line_exits_128_plus_signal_when_its_stdout_pipe_is_gone(monkeypatch):
    # was: end_now's stdout.flush() raised BrokenPipeError out of main: a traceback, exit 1 (not 130),
    # and the interpreter's teardown under XLA's threads that os._exit is there to skip
    from tallysim import cli
    codes = []
    monkeypatch.setattr(cli.os, "_exit", codes.append)
    monkeypatch.setattr(cli.sys, "stdout", _BrokenPipe())
    cli.end_now(130)
    assert codes == [130]


def test_a_built_in_model_is_not_looked_up_among_installed_plugins(tmp_path, monkeypatch, registry_restored):
    # was: apply_overrides asked the tallysim.plugins entry points for every model.name, built-ins too: an
    # installed package with an entry point `cnn` (whose model the registry refuses as a built-in's name)
    # stopped every model.name=cnn run with "model.name='cnn' cannot be used: its installed plugin ..."
    from tallysim import config
    from tallysim.protocols import plugin_import
    dist = tmp_path / "other_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: other-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tallysim.plugins]\ncnn = r14_cnn\n")
    (tmp_path / "r14_cnn.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n"
                                         "MODELS = {'cnn': 'f'}\n\ndef f(k):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugin_import, "_INSTALLED", [])
    monkeypatch.setattr(plugin_import, "_INSTALLED_FAILED", {})
    monkeypatch.delitem(sys.modules, "r14_cnn", raising=False)
    cfg = config.validate(config.apply_overrides(config.Config(), ["model.name=cnn"]))
    assert cfg.model.name == "cnn" and not (tmp_path / "imported").exists()
