"""Leftovers the closing note of 2026-12-06 listed (leftovers15). Each test names what the input did before
its fix; none compiles beyond the shared `checkpointed` run."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from tallysim import checkpoint, code_identity, config, outdir


# ------------------------------------------------- 1. the code's identity, and a resume under other code

def _with_code(checkpointed, tmp_path, code):
    """A copy of the shared checkpointed run whose checkpoint records `code` (None: none, as before)."""
    d = tmp_path / "run"
    shutil.copytree(checkpointed, d)
    path = d / checkpoint.FILE
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    meta.pop("code", None)
    if code is not None:
        meta["code"] = code
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    return d


def test_a_run_records_its_code_and_a_resume_under_other_code_warns_naming_both(checkpointed, tmp_path):
    # was: config.json and the checkpoint held no code but __version__, a constant: a run resumed after
    # the code changed continued in silence, its rows before the checkpoint from the old code
    now = code_identity.identity()
    assert json.loads((checkpointed / "config.json").read_text())["code"] == now
    assert checkpoint.read_meta(checkpointed)["code"] == now
    assert now["version"] and now["source"].startswith("crc32:")
    if (code_identity.PACKAGE.parent / ".git").exists():      # the tests run from a checkout
        assert len(now["commit"]) == 40 and now["dirty"] in (True, False, None)
    cfg = outdir.run_config(checkpointed, "--resume", outdir.CLI)     # config.json with `code` reads back
    out, meta = checkpoint.check_resume(cfg, str(checkpointed))
    assert "warning" not in checkpoint.resume_notice(out, cfg, meta)     # the same code: nothing said

    old = {**now, "source": "crc32:00000bad", "commit": "ab" * 20, "dirty": True}
    d = _with_code(checkpointed, tmp_path, old)
    out, meta = checkpoint.check_resume(cfg, str(d))                     # warned, not refused
    text = checkpoint.resume_notice(out, cfg, meta)
    assert (f"warning: tallysim's code has changed since the checkpoint was saved (it was tallysim {now['version']}, "
            f"commit abababababab with local changes, source crc32:00000bad; now "
            f"{code_identity.describe(now)}): the rounds after 1 run the new code") in text
    checkpoint.note_resume(out, meta)
    doc = json.loads((d / "config.json").read_text())
    assert doc["code"] == now and doc["resumed"][-1]["code"] == now     # which code ran from which round

    d = _with_code(checkpointed, tmp_path / "old", None)              # a run from before the record
    out, meta = checkpoint.check_resume(cfg, str(d))
    assert "warning" not in checkpoint.resume_notice(out, cfg, meta)
    checkpoint.note_resume(out, meta)
    assert "code" not in json.loads((d / "config.json").read_text())["resumed"][-1]
    # another commit of the same source (a docs commit) is the same code
    assert not code_identity.changed({**now, "commit": "cd" * 20}, now)
    assert code_identity.changed({**now, "version": "0.0.9"}, now)


def _repo(tmp_path, head: str):
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text(head)
    return git


def test_the_commit_is_read_from_gits_files_and_nothing_fails_without_git(tmp_path, monkeypatch):
    a, b = "1" * 40, "2" * 40
    git = _repo(tmp_path / "loose", "ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(a + "\n")
    assert code_identity.git_commit(tmp_path / "loose") == a
    git = _repo(tmp_path / "packed", "ref: refs/heads/main\n")
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{b} refs/heads/main\n")
    assert code_identity.git_commit(tmp_path / "packed") == b
    _repo(tmp_path / "detached", b + "\n")
    assert code_identity.git_commit(tmp_path / "detached") == b
    # a worktree: `.git` is a file naming its git directory, whose refs live in the main one's
    wt = tmp_path / "loose" / ".git" / "worktrees" / "w"
    wt.mkdir(parents=True)
    (wt / "HEAD").write_text("ref: refs/heads/main\n")
    (wt / "commondir").write_text("../..\n")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / ".git").write_text(f"gitdir: {wt}\n")
    assert code_identity.git_commit(tmp_path / "w") == a
    # no checkout, a broken one, an unborn branch: no commit, no error
    (tmp_path / "none").mkdir()
    _repo(tmp_path / "unborn", "ref: refs/heads/main\n")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / ".git").write_text("not a gitdir line")
    for name in ("none", "unborn", "bad"):
        assert code_identity.git_commit(tmp_path / name) is None
    # git not installed, or failing: the dirty flag is unknown, nothing raises
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError("git")))
    assert code_identity.git_dirty(tmp_path / "loose") is None
    assert "(local changes unknown)" in code_identity.describe({"version": "1", "commit": a, "dirty": None})


# ------------------------------------------- 2. installed plugins listed where the built-in names are

def _installed(tmp_path, monkeypatch, entry_points: str, modules: dict):
    """A fake installed distribution (a *.dist-info with entry_points.txt on sys.path, as pip writes it)
    and its plugin modules, each leaving a file named after it when imported."""
    from tallysim.protocols import plugin_import
    dist = tmp_path / "l15_plugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: l15-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tallysim.plugins]\n" + entry_points)
    for name, body in modules.items():
        (tmp_path / f"{name}.py").write_text(f"open({str(tmp_path / ('imported_' + name))!r}, 'w').close()\n" + body)
        monkeypatch.delitem(__import__("sys").modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugin_import, "_INSTALLED", [])            # read this process's sys.path again
    monkeypatch.setattr(plugin_import, "_INSTALLED_FAILED", {})
    return tmp_path


SEQ = "MODELS = {'l15_seq': 'f'}\n\ndef f(classes, width):\n    return None\n"


def test_installed_plugins_not_named_yet_are_listed_in_help_and_refusals_without_being_imported(
        tmp_path, monkeypatch, registry_restored):
    # was: `run --help` and "allowed: ..." listed the built-ins and loaded plugins only: a package's
    # installed protocol or model could be used by name but was nowhere to be seen
    from tallysim import protocols
    from tallysim.cli_parser import parser
    d = _installed(tmp_path, monkeypatch, "l15_seq = l15_seq\n", {"l15_seq": SEQ})
    help_text = next(a for a in parser()._subparsers._group_actions[0].choices.items() if a[0] == "run")[1].format_help()
    for key in ("protocol.name", "model.name"):
        row = next(line for line in help_text.splitlines() if line.split()[:1] == [key])
        assert row.endswith("|l15_seq (installed)"), row
    assert "\"(installed)\": an installed package's plugin (a tallysim.plugins entry point), loaded when named" in help_text
    for key in ("protocol.name", "model.name"):
        with pytest.raises(config.ConfigError, match=rf"^{key}='l15_sq' is not known; allowed: .*, l15_seq \(installed\) "
                                                     r"\(\"\(installed\)\": an installed package's plugin .*; did you mean l15_seq\?"):
            config.validate(config.apply_overrides(config.Config(), [f"{key}=l15_sq"]))
    with pytest.raises(config.ConfigError, match=r"protocol.name='nope' is not known; allowed: local, .*l15_seq \(installed\)"):
        protocols.traits("nope")
    assert not (d / "imported_l15_seq").exists()             # listed from the metadata alone
    # named, it loads, and is then listed as the model it is, no longer as "installed"
    config.validate(config.apply_overrides(config.Config(), ["model.name=l15_seq"]))
    assert (d / "imported_l15_seq").exists() and protocols.not_loaded(protocols) == ()
    assert "l15_seq (installed)" not in config.help_table() and "|l15_seq" in config.help_table()


# --------------------------------- 3. an installed plugin that lacks its entry point's name registers none

TWO = ("PROTOCOLS = {'l15_a': 'make'}\nMODELS = {'l15_m': 'f'}\n\ndef make(ctx):\n    return None\n\n"
       "def f(classes, width):\n    return None\n")


def test_an_installed_plugin_without_its_entry_points_name_registers_none_of_its_names(tmp_path, monkeypatch,
                                                                                      registry_restored):
    # was: the module loaded (its protocol l15_a and model l15_m registered in the process, usable in a
    # notebook), then the run was refused "provides l15_a, l15_m, not 'l15_other'": half a load, where
    # load_plugin registers all or nothing
    from tallysim import protocols
    _installed(tmp_path, monkeypatch, "l15_other = l15_two\n", {"l15_two": TWO})
    before = (protocols.names(), protocols.plugin_models())
    want = (r"model.name='l15_other' cannot be used: its installed plugin cannot be loaded \(entry point l15_other "
            r"= 'l15_two' in \[tallysim.plugins\] of package l15-plugins\): plugin 'l15_two' provides l15_a, l15_m, "
            r"not 'l15_other'")
    for _ in range(2):                               # asked again: the same line
        with pytest.raises(config.ConfigError, match=want):
            config.validate(config.apply_overrides(config.Config(), ["model.name=l15_other"]))
    assert (protocols.names(), protocols.plugin_models()) == before
    assert protocols.plugin_of("l15_a") is None and protocols.model_plugin_of("l15_m") is None


# ------------------------------------ 4. the class count of labels over 64 MB, and the estimate's guess

def _labels_npz(path, y):
    np.savez(path, x_train=np.zeros((3, 6, 6), np.uint8), y_train=y, x_test=np.zeros((2, 6, 6), np.uint8),
             y_test=np.zeros(2, y.dtype))
    return path


def test_labels_over_64_mb_are_streamed_for_their_class_count_and_a_guess_is_said(tmp_path, monkeypatch):
    # was: labels over 64 MB were not read, and the estimate assumed 10 classes without a word
    from tallysim import file_shapes, sizing, validation
    y = np.zeros(9_000_000, np.int64)          # 72 MB
    y[-1] = 41
    big = _labels_npz(tmp_path / "big.npz", y)
    cfg = config.validate(config.apply_overrides(config.Config(), ["data.name=files", f"data.path={big}"]))
    assert file_shapes.peek(str(big)) == ((6, 6, 1), 42) and sizing.data_shape(cfg)[1] == 42
    assert "assumed" not in validation.memory_note(cfg)
    # an IDX directory's labels too, gzipped, streamed in chunks smaller than one label's bytes' worth
    import gzip

    def idx(name, arr, code=0x08):
        head = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        with gzip.open(tmp_path / "idx" / name, "wb") as f:
            f.write(head + arr.tobytes())
    (tmp_path / "idx").mkdir()
    idx("train-images-idx3-ubyte.gz", np.zeros((4, 5, 5), np.uint8))
    idx("train-labels-idx1-ubyte.gz", (np.arange(1000) % 57).astype(">i4"), code=0x0C)
    idx("t10k-images-idx3-ubyte.gz", np.zeros((2, 5, 5), np.uint8))
    idx("t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    monkeypatch.setattr(file_shapes, "LABELS_CHUNK_BYTES", 6)     # 4-byte labels, one a chunk
    assert file_shapes.peek(str(tmp_path / "idx")) == ((5, 5, 1), 57)
    # out of time (a slow disk, a gzip bomb): the guess is kept, and the estimate's line says it is one
    monkeypatch.setattr(file_shapes, "LABELS_SECONDS", 0.0)
    file_shapes._peek.cache_clear()
    assert file_shapes.peek(str(big)) == ((6, 6, 1), 10)
    assert validation.memory_note(cfg).endswith("; data.path: its labels' largest value could not be read "
                                                "within 0 s (nor a num_classes member), so 10 classes are assumed")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    broken = config.apply_overrides(cfg, [f"data.path={tmp_path / 'broken.npz'}"])
    assert "so 784 inputs and 10 classes are assumed" in validation.memory_note(broken)
    with pytest.raises(config.ConfigError, match=r"more than this machine's 1 B; .* \(data.path: its labels' "
                                                 r"largest value could not be read within 0 s"):
        validation.check_memory(cfg, limit=1)
