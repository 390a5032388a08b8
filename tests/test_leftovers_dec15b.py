"""Leftovers the reviewers of 2026-12-15 noted (leftovers14). Each test names what the input did before
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
