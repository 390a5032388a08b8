"""Leftovers the reviewers of 2026-12-06 noted (leftovers14). Each test names what the input did before
its fix; none compiles beyond the shared `checkpointed` run."""
from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from tallysim import checkpoint, config, outdir
from tallysim.config import ConfigError
from tallysim.run_files import check_same_data


# ------------------------------------------------------ 1. a requeued job finds its data at another path

def _as_files_run(checkpointed, tmp_path, digest):
    """A copy of the shared checkpointed run, recorded as a data.name=files run of /old/place/d.npz
    whose data gave `digest` (None: a run from before digests were recorded)."""
    d = tmp_path / "run"
    shutil.copytree(checkpointed, d)
    doc = json.loads((d / "config.json").read_text())
    doc["data"].update(name="files", path="/old/place/d.npz")
    (d / "config.json").write_text(json.dumps(doc))
    path = d / "checkpoint.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    meta["config"]["data"].update(name="files", path="/old/place/d.npz")
    meta.pop("data_digest")
    if digest:
        meta["data_digest"] = digest
    part = json.loads((d / "partition.json").read_text())
    part.pop("data_digest")
    (d / "partition.json").write_text(json.dumps(part))
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    cfg = config.apply_overrides(outdir.run_config(d, "--resume", outdir.CLI), ["data.path=/new/place/d.npz"])
    return d, cfg


def _built(cfg, digest):
    return SimpleNamespace(cfg=cfg, data_digest=digest)


def test_resume_with_the_same_data_at_another_path_continues_and_config_json_names_it(checkpointed, tmp_path):
    # was: refused as a config change (data.path=...->...), though the digest proves the same data
    d, cfg = _as_files_run(checkpointed, tmp_path, "crc32:0000abcd")
    out, meta = checkpoint.check_resume(cfg, str(d))
    check_same_data(_built(cfg, "crc32:0000abcd"), out, meta)          # the same contents: continues
    checkpoint.note_resume(out, meta)
    doc = json.loads((d / "config.json").read_text())
    assert doc["data"]["path"] == "/new/place/d.npz"                    # a plain --resume finds it here
    assert doc["resumed"][-1]["data_path_was"] == "/old/place/d.npz"
    with pytest.raises(ConfigError, match=r"^--resume: this config differs from .*data\.path=.*"
                                          r"gives crc32:00000bad, not the crc32:0000abcd"):
        check_same_data(_built(cfg, "crc32:00000bad"), out, meta)        # other contents: refused


def test_resume_at_another_path_is_refused_without_a_digest_or_with_another_change(checkpointed, tmp_path):
    d, cfg = _as_files_run(checkpointed, tmp_path, None)                # a run from before digests
    with pytest.raises(ConfigError, match=r"^--resume: this config differs from .*data\.path='/old"):
        checkpoint.check_resume(cfg, str(d))
    d, cfg = _as_files_run(checkpointed, tmp_path / "b", "crc32:0000abcd")
    with pytest.raises(ConfigError, match=r"this config differs from .*rounds"):
        checkpoint.check_resume(config.apply_overrides(cfg, ["rounds=5"]), str(d))
    d, cfg = _as_files_run(checkpointed, tmp_path / "c", "gen-crc32:0000abcd")   # counts no input bytes
    with pytest.raises(ConfigError, match=r"this config differs from .*data\.path"):
        checkpoint.check_resume(cfg, str(d))


# ------------------------------------------- 2. the memory estimate of a files dataset reads its headers

def _npz(path, shape, classes, **extra):
    y = np.arange(40) % classes
    np.savez(path, x_train=np.zeros((40, *shape), np.uint8), y_train=y, x_test=np.zeros((8, *shape), np.uint8),
             y_test=y[:8], **extra)
    return path


def test_the_memory_estimate_of_a_files_dataset_counts_its_shape_and_classes(tmp_path, monkeypatch):
    # was: every data.name=files dataset was estimated as Fashion-MNIST's 784 inputs and 10 classes
    from tallysim import sizing
    cfg = config.apply_overrides(config.Config(), ["data.name=files", f"data.path={_npz(tmp_path / 'c.npz', (32, 32, 3), 20)}",
                                                   "model.name=mlp", "model.width=100"])
    assert sizing.data_shape(cfg) == (3072, 20, 3) and sizing.example_shape(cfg) == (32, 32, 3)
    assert sizing.models_bytes(cfg)[0] == 4 * 3 * (3072 * 100 + 100 * 100 + 100 * 20) * cfg.peers
    # no image array is read for it: only the .npy header of x_train
    monkeypatch.setattr(np.lib.format, "read_array", _refuse_images(np.lib.format.read_array))
    grey = config.apply_overrides(cfg, [f"data.path={_npz(tmp_path / 'g.npz', (12, 12), 3)}"])
    assert sizing.example_shape(grey) == (12, 12, 1) and sizing.data_shape(grey)[:2] == (144, 3)
    declared = config.apply_overrides(cfg, [f"data.path={_npz(tmp_path / 'd.npz', (5,), 3, num_classes=7)}"])
    assert sizing.data_shape(declared) == (5, 7, 1)


def _refuse_images(read):
    def only_small(f, *a, **k):
        out = read(f, *a, **k)
        assert out.ndim <= 1, "an image array was loaded for the estimate"
        return out
    return only_small


def test_the_estimate_reads_an_idx_directory_and_keeps_its_guess_for_what_it_cannot_read(tmp_path):
    from tallysim import sizing

    def idx(name, arr):
        head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        (tmp_path / name).write_bytes(head + arr.astype(np.uint8).tobytes())
    idx("train-images-idx3-ubyte", np.zeros((30, 20, 20)))
    idx("train-labels-idx1-ubyte", np.arange(30) % 13)
    idx("t10k-images-idx3-ubyte", np.zeros((6, 20, 20)))
    idx("t10k-labels-idx1-ubyte", np.arange(6))
    cfg = config.apply_overrides(config.Config(), ["data.name=files", f"data.path={tmp_path}"])
    assert sizing.data_shape(cfg) == (400, 13, 1) and sizing.example_shape(cfg) == (20, 20, 1)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    broken = config.apply_overrides(cfg, [f"data.path={tmp_path / 'broken.npz'}"])
    assert sizing.data_shape(broken) == (784, 10, 1)           # the load will say what is wrong with it


# --------------------------------------------------------------------------------------- 3. small ones

def test_hasattr_of_a_broken_installed_plugins_name_is_false_and_real_use_still_says_why(tmp_path, monkeypatch,
                                                                                       registry_restored):
    # was: hasattr(cfg, "<a broken installed plugin>") raised ConfigError (hasattr's contract: False)
    import sys
    from tallysim.protocols import plugin_import
    dist = tmp_path / "l14_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: l14-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tallysim.plugins]\nl14_broken = l14_broken\n")
    (tmp_path / "l14_broken.py").write_text("raise ImportError('needs torch_scatter')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugin_import, "_INSTALLED", [])
    monkeypatch.setattr(plugin_import, "_INSTALLED_FAILED", {})
    monkeypatch.delitem(sys.modules, "l14_broken", raising=False)
    cfg = config.Config()
    assert not hasattr(cfg, "l14_broken") and getattr(cfg, "l14_broken", 7) == 7
    with pytest.raises(ConfigError, match=r"'l14_broken' cannot be used: its installed plugin cannot be "
                                          r"loaded .*l14-pkg.*torch_scatter"):
        cfg.l14_broken


def test_a_figure_whose_progress_bar_fails_to_start_gives_its_group_locks_back(tmp_path, monkeypatch, no_compile):
    # was: the runs bar was made after the group locks were taken but outside the try that releases them
    from tallysim import figures, outdir
    spec = {"kind": "curves", "title": "two", "base": {"peers": 2, "rounds": 1, "data": {"name": "synthetic"}},
            "groups": {"tally": {"protocol": {"name": "tally"}}, "fedavg": {"protocol": {"name": "fedavg"}}}}
    path = tmp_path / "two.json"
    path.write_text(json.dumps(spec))

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(figures.progress_bars, "runs_bar", interrupted)
    with pytest.raises(KeyboardInterrupt) as held:      # `held` keeps the figure's frame (and its locks) alive
        figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"), progress=True,
                            log=lambda m: None, grouped=False)
    import threading
    errors = []

    def take():         # another thread (the lock is reentrant in this one): SweepBusy while still held
        for group in ("tally", "fedavg"):
            try:
                with outdir.sweep_lock(tmp_path / "res" / "two" / group):
                    pass
            except outdir.SweepBusy as e:
                errors.append(e)
    other = threading.Thread(target=take)
    other.start()
    other.join(30)
    assert errors == [] and held.value is not None


def test_the_runs_eta_holds_still_while_the_next_run_compiles(monkeypatch):
    # was: after a run ended, the next run's compile added (runs left / runs done) s to the ETA per second
    from tallysim import progress
    from tallysim import progress_base
    now = [0.0]
    monkeypatch.setattr(progress_base.time, "perf_counter", lambda: now[0])
    c = progress.RunsClock(3)
    now[0] = 10.0
    c.report(1.0)
    c.count(1, skipped=False)                   # one run in 10 s: 20 s left
    assert c.eta() == pytest.approx(20.0) and c.eta_text() == "ETA 20s, next run compiling"
    now[0] = 70.0                               # a minute compiling the next run
    assert c.eta() == pytest.approx(20.0) and c.eta_text() == "ETA 20s, next run compiling"
    c.report(0.5)                               # its first stretch came back: the rate counts again
    assert c.eta() == pytest.approx(70.0 * 1.5 / 1.5) and "compiling" not in c.eta_text()


# ---------------------------------------- 4. tally's probe outputs counted quantised copies it never makes

def test_the_vote_exchange_is_estimated_with_the_buffers_it_holds_and_above_the_measured_peak():
    # was: 4 live [c, M, C] buffers (logits, probabilities, quantised, product) for votes too: tally over
    # 500 word windows (10,000 messages x 10,004 classes, one peer a chunk) 4.0 GB of probe outputs
    # against a process peak RSS of 2.63 GB (docs/text.md)
    from tallysim import sizing
    M, C = 500 * 20, 10_004
    unit = 4 * M * C                                            # one [M, C] float32
    assert sizing.peer_chunk(4, M, C) == 1
    assert sizing.footprint_bytes(4, M, C, soft=False) == unit * (2 * 1 + 6) == 3_201_280_000
    assert sizing.footprint_bytes(4, M, C, soft=True) == unit * (4 * 1 + 8)         # soft labels: as before
    assert sizing.footprint_bytes(4, M, C, soft=False) > 2.63e9                      # still above the peak
