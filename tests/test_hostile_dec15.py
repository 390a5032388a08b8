"""Hostile inputs, round 10 (hostile10): silent wrong numbers more than error messages. Grouped sweeps
against their runs alone, the bits ledger under rare knobs against docs/protocols.md's hand counts,
resumes over changed data, and one config's numbers from `run`, `sweep`, the Python API and `figure`.
Each test names what the input did before its fix; the few that compile run tiny synthetic configs.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import one_line, tiny

import tallysim
from tallysim import data
from tallysim.config import ConfigError


def _copy(checkpointed, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(checkpointed, d)
    return d


# ----------------------------------------------------------------------------- resume over changed data

def test_the_data_digest_tells_an_edit_from_the_same_arrays():
    x, y = np.zeros((5, 2, 2, 1), np.uint8), np.arange(5, dtype=np.int32)
    same = data.digest(x, y, x[:2], y[:2])
    assert same == data.digest(x.copy(), y.copy(), x[:2].copy(), y[:2].copy())
    x2 = x.copy()
    x2[3, 1, 1, 0] = 1                               # one pixel
    assert data.digest(x2, y, x[:2], y[:2]) != same
    assert data.digest(x.reshape(5, 4, 1, 1), y, x[:2], y[:2]) != same        # same bytes, other shape


def test_partition_json_and_the_checkpoint_record_the_data_it_trained_on(checkpointed):
    from tallysim import checkpoint
    part = json.loads((checkpointed / "partition.json").read_text())
    meta = checkpoint.read_meta(checkpointed)
    # synthetic data: its labels and its inputs' shapes (data.generated_digest; review14)
    assert part["data_digest"].startswith("gen-crc32:") and meta["data_digest"] == part["data_digest"]
    assert meta["plugins"] == {}                    # the checkpoint lists its plugins' sources


def _set_meta(d, **changes):
    """The checkpoint in run directory d with its meta's keys changed (None: removed)."""
    path = d / "checkpoint.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    meta.update(changes)
    meta = {k: v for k, v in meta.items() if v is not None}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)


# where the other data's digest is recorded: the checkpoint, and partition.json for a checkpoint without one
@pytest.mark.parametrize("where", ["checkpoint", "partition.json"])
def test_resume_after_the_data_changed_is_refused_before_compiling(where, checkpointed, tmp_path, capsys,
                                                                   no_compile):
    # was: a data file replaced under the same name (or a relative data.path resumed from another
    # directory) resumed on the new contents in silence, its rows before the checkpoint from the old data
    d = _copy(checkpointed, tmp_path)
    if where == "checkpoint":
        _set_meta(d, data_digest="gen-crc32:00000000")        # what another file's digest would be
        (d / "partition.json").unlink()                   # deleted too: the checkpoint still knows
    else:
        _set_meta(d, data_digest=None)
        part = json.loads((d / "partition.json").read_text())
        part["data_digest"] = "gen-crc32:00000000"
        (d / "partition.json").write_text(json.dumps(part))
    line = one_line(capsys, ["run", "--out", str(d), "--resume"])
    assert "--resume: the data (data.name=synthetic) is not what" in line and "crc32:00000000" in line
    assert "--overwrite" in line
    with pytest.raises(ConfigError, match=r"^tallysim.run\(resume=True\): the data .*overwrite=True"):
        tallysim.run(_config_of(d), out=str(d), resume=True)
    assert "resumed" not in json.loads((d / "config.json").read_text())     # a refused resume is not recorded


def _config_of(d):
    from tallysim import config
    return config.load_file(str(d / "config.json"))


def test_resume_under_an_edited_plugin_is_said(tmp_path, monkeypatch):
    # was: a plugin edited between a crash and its resume continued under the new code in silence (the
    # rows before the checkpoint from the old code, those after from the new, in one metrics.jsonl)
    import sys
    import types

    from tallysim import checkpoint
    from tallysim.protocols import plugin_import
    src = tmp_path / "myplug.py"
    src.write_text("PROTOCOLS = {}\n")
    mod = types.ModuleType("myplug")
    mod.__file__ = str(src)
    monkeypatch.setitem(sys.modules, "myplug", mod)
    meta = {"round": 3, "lo": 0, "elapsed": 1.0, "plugins": {"myplug": plugin_import.source_digest("myplug")}}
    cfg = tiny()
    assert "warning" not in checkpoint.resume_notice(tmp_path, cfg, meta)             # ok: the same file
    src.write_text("PROTOCOLS = {}\n# fixed a bug\n")
    note = checkpoint.resume_notice(tmp_path, cfg, meta)
    assert "warning: plugin myplug has changed since the checkpoint was saved; the rounds after 3 run its new code" in note
    assert "warning" not in checkpoint.resume_notice(tmp_path, cfg, {**meta, "plugins": None})   # older checkpoints


@pytest.mark.parametrize("error, said", [
    ("NameTaken", "clashes with a plugin already loaded"),
    # `run --out RUN --resume` of a plugin run without the plugin's folder on the Python path
    ("PluginError", "names a plugin this process cannot load"),
])
def test_resume_whose_plugin_cannot_load_does_not_blame_config_json(error, said, tmp_path, monkeypatch):
    # was: "RUN/config.json cannot be read (...); restore it, or start the run again with --overwrite", of a
    # config.json that is fine: another --plugin registering the same protocol name (fedmix2 beside
    # fedmix), or the plugin not importable from here
    from tallysim import config, fields, outdir

    def fails(path, **_):
        raise getattr(fields, error)("plugin 'fedmix': ...")
    monkeypatch.setattr(config, "load_file", fails)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError) as e:
        outdir.run_config(tmp_path, "--resume", outdir.CLI)
    assert said in str(e.value) and "restore it" not in str(e.value)


def test_a_plugin_that_cannot_be_imported_is_a_plugin_error():
    from tallysim import protocols
    from tallysim.fields import PluginError
    with pytest.raises(PluginError, match="cannot be imported"):
        protocols.load_plugin("no_such_plugin_module_hostile10")


@pytest.mark.parametrize("old, new, said", [("crc32:aaaaaaaa", "crc32:bbbbbbbb", True),
                                            ("crc32:aaaaaaaa", "crc32:aaaaaaaa", False)])   # ok: same data
def test_a_sweep_run_again_says_which_skipped_runs_trained_on_other_data(old, new, said, tmp_path):
    # was: the same sweep run again after its data file changed (same name, other contents) skipped its
    # complete runs, trained on the old data, and ran the rest on the new: one table of two datasets
    from tallysim import sweep_data
    records = []
    for name, status, digest in (("a", "skipped", old), ("b", "done", new)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "partition.json").write_text(json.dumps({"data_digest": digest}))
        records.append({"name": name, "dir": str(tmp_path / name), "status": status})
    lines = []
    sweep_data.skipped_on_other_data(records, [tiny("optim.lr=0.1"), tiny("optim.lr=0.2")], lines.append)
    assert bool(lines) == said
    if said:
        assert "a was skipped (done before) but trained on other data than the runs this sweep ran now" in lines[0]
        assert "crc32:aaaaaaaa" in lines[0] and "delete" in lines[0]
    lines.clear()       # ok: other data settings (another data.max_train) are other data, not a change
    sweep_data.skipped_on_other_data(records, [tiny("data.train_size=800"), tiny()], lines.append)
    assert not lines
