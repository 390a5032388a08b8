"""leftovers42: an out path with stray whitespace or control characters; ..."""
import os

import pytest

import tallysim
from tallysim import cli, figures, sweep
from tallysim.config import ConfigError
from conftest import TINY, tiny


@pytest.mark.parametrize("name", ["runs\n", " runs ", "runs\t", "a\x1bb"])
def test_an_out_path_with_stray_whitespace_is_refused_everywhere(tmp_path, monkeypatch, capsys, name):
    """`out="runs\\n"` (a line read from a file) silently created a folder whose name is not the one seen."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="neither start nor end with whitespace") as e:
        tallysim.run(tiny("rounds=1"), out=name, progress=False)
    assert repr(name) in str(e.value)
    with pytest.raises(ConfigError, match="would create"):
        sweep.run_sweep(tiny("rounds=1"), [("a", [])], name, progress=False, log=lambda m: None)
    assert cli.main(["run", *TINY, "rounds=1", "--out", name, "--quiet"]) == 2
    assert cli.main(["sweep", *TINY, "rounds=1", "--out", f"sw/{name}", "--quiet"]) == 2
    for kw in ({"results": name}, {"out": name}):
        with pytest.raises(ConfigError, match="would create"):
            figures.make_figure("fig1", smoke=True, progress=False, **kw)
    assert os.listdir(tmp_path) == []                     # nothing created before the refusal
    err = capsys.readouterr().err
    assert err.count("tallysim: error: --out") == 2, err


def test_an_existing_oddly_named_directory_stays_usable(tmp_path):
    """Only the names still to be created are checked: a folder made so before can be read and resumed."""
    from tallysim import outdir
    (tmp_path / " old ").mkdir()
    assert outdir.destination(tmp_path / " old " / "new") == tmp_path / " old " / "new"
    with pytest.raises(ConfigError):
        outdir.destination(tmp_path / " old " / "new ")
