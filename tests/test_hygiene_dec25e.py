"""house41: the import-cycle and layering checks (tests/test_hygiene.py) follow the names tallysim/__init__.py
hands out through its name table (`tallysim.Config` is tallysim.api's, imported on first use), and the
modules split today keep the names their callers use. Nothing here compiles or loads data."""
from __future__ import annotations

from test_hygiene import PACKAGE, _cycles, _graph, _layer


def _package(tmp_path, files: dict):
    pkg = tmp_path / "tallysim"
    pkg.mkdir()
    (pkg / "__init__.py").write_text((PACKAGE / "__init__.py").read_text())     # the real name table
    for name, text in files.items():
        (pkg / name).write_text(text)
    return pkg


def test_the_cycle_rule_follows_an_api_name_to_the_module_that_hands_it_out(tmp_path):
    """A cycle through an API name, planted in both spellings: `tallysim.Config` after `import
    tallysim.fields` was no arrow at all (the attribute is no submodule), `from tallysim import Driver` one
    to the package; both are tallysim.api's, which __init__'s __getattr__ imports on first use."""
    graph = _graph(_package(tmp_path, {
        "api.py": "from tallysim.low import X\nfrom tallysim.low2 import Y\n",
        "fields.py": "",
        "low.py": "import tallysim.fields\n\nX = 1\n\n\ndef f():\n    return tallysim.Config()\n",
        "low2.py": "Y = 2\n\n\ndef g():\n    from tallysim import Driver\n    return Driver\n",
        "run.py": "",
    }))
    assert graph["tallysim.low"] == {"tallysim.fields": 1, "tallysim.api": 7}
    assert graph["tallysim.low2"] == {"tallysim.api": 5}
    # __init__'s own arrows: `from tallysim import api` and importlib.import_module("tallysim.run")
    assert set(graph["tallysim"]) == {"tallysim.run", "tallysim.api"}
    assert _cycles(graph) == [["tallysim.api", "tallysim.low", "tallysim.low2"]]


def test_an_api_name_imported_low_is_an_upward_import(tmp_path):
    """`from tallysim import Config` in a bottom-layer module imports tallysim.api, the top layer: read as
    the package (layer 0), the layering rule let it pass."""
    graph = _graph(_package(tmp_path, {"api.py": "", "fields.py": "def f():\n    from tallysim import Config\n",
                                       "schema.py": "from tallysim import __version__\n"}))
    assert graph["tallysim.fields"] == {"tallysim.api": 2}
    assert graph["tallysim.schema"] == {"tallysim": 1}          # a name __init__ binds itself is the package's
    assert _layer("tallysim.api") > _layer("tallysim.fields")


def test_the_split_modules_keep_their_callers_names(monkeypatch, tmp_path):
    """checkpoint.py and data/text.py re-export what moved out of them (docs, notebooks and tests name
    `checkpoint.read_meta`, `text.windows`); Saver still saves through `checkpoint.save`, so a test that
    replaces it sees every save."""
    from tallysim import checkpoint, checkpoint_file, resume
    from tallysim.data import text, tokens
    for name in ("FILE", "VERSION", "save", "read_meta", "load", "read_state"):
        assert getattr(checkpoint, name) is getattr(checkpoint_file, name), name
    for name in ("MOVED", "check_resume", "in_words", "moved_paths", "note_resume", "nothing_to_resume",
                 "plugin_changes", "read_paths", "resume_notice"):
        assert getattr(checkpoint, name) is getattr(resume, name), name
    for name in ("PAD", "BOS", "EOS", "OOV", "SPECIALS", "TOKENS", "TRAIN_FRACTION", "build_vocab", "decode",
                 "encode", "stream_of", "temporal_split", "units", "windows", "words"):
        assert getattr(text, name) is getattr(tokens, name), name
    saved = []
    monkeypatch.setattr(checkpoint, "save", lambda d, state, meta: saved.append(meta))
    checkpoint.Saver(tmp_path, 1).save({"w": 0}, {"round": 1})
    assert saved == [{"round": 1}] and not (tmp_path / checkpoint.FILE).exists()
