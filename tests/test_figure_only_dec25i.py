"""`tallysim figure --only GROUP,... --panel PANEL,...` (make_figure's only= and panel=): the selected runs go
into the full figure's run folders, a later full figure skips them, and an unknown name is refused before
any folder is made. Before it, re-running some groups of a figure meant one hand-written sweep per group
and panel."""
import json

import pytest

from tallysim import cli, figures
from tallysim.config import ConfigError
from conftest import one_line

# two groups, two panels, the smallest runs (test_figures' tiny pareto figure at 1 round and 2 peers)
SPEC = {"kind": "pareto", "title": "tiny",
        "panels": {"a": {"partition": {"kind": "iid"}}, "b": {"partition": {"kind": "dirichlet", "alpha": 0.5}}},
        "base": {"peers": 2, "rounds": 1, "eval_every": 1, "probe": {"per_round": 32, "pool_size": 100},
                 "data": {"name": "synthetic", "train_size": 600, "test_size": 100}, "model": {"width": 8}},
        "groups": {"fedavg": {"protocol": {"name": "fedavg"}}, "tally": {"protocol": {"name": "tally"}}}}


def _figure(tmp_path) -> str:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SPEC))
    return str(path)


def _run_dirs(root) -> list:
    return sorted(f"{g.name}/{r.name}" for g in root.iterdir() if g.is_dir() for r in g.iterdir() if r.is_dir())


def test_a_selection_runs_its_folders_and_the_full_figure_reuses_them(tmp_path, capsys):
    path, res, fig = _figure(tmp_path), tmp_path / "res", tmp_path / "fig"
    assert cli.main(["figure", path, "--results", str(res), "--out", str(fig), "--only", "tally",
                     "--panel", "a", "--quiet"]) == 0                   # not drawn yet: not an error
    assert _run_dirs(res / "tiny") == ["tally/a"]                 # exactly the selection, the full figure's folder
    assert (res / "tiny" / "tally" / "a" / "done.json").exists() and not fig.joinpath("tiny.png").exists()
    said = capsys.readouterr().out
    assert "tiny: not drawn: groups still missing runs: fedavg (2), tally (1)" in said and "kept" in said
    logs = []
    out = figures.make_figure(path, results=str(res), out=str(fig), progress=False, log=logs.append)
    assert [m for m in logs if "skip" in m] == ["[1/2] skip a (done)"]     # the selected run was not re-run
    assert sum("results in" in m for m in logs) == 3                       # the other three ran
    assert _run_dirs(res / "tiny") == ["fedavg/a", "fedavg/b", "tally/a", "tally/b"]
    assert fig.joinpath("tiny.png").stat().st_size > 100 and "missing" not in out


def test_unknown_group_or_panel_is_refused_before_any_folder(tmp_path, capsys):
    path, res = _figure(tmp_path), tmp_path / "res"
    for kw, allowed in (({"only": "tally,nope"}, "allowed: fedavg, tally"), ({"panel": "c"}, "allowed: a, b")):
        with pytest.raises(ConfigError, match=allowed):
            figures.make_figure(path, results=str(res), out=str(tmp_path / "fig"), progress=False,
                                log=lambda m: None, **kw)
    line = one_line(capsys, ["figure", path, "--results", str(res), "--only", "nope", "--quiet"])
    assert "--only nope: not a group of this figure; allowed: fedavg, tally" in line
    line = one_line(capsys, ["figure", path, "fig1", "--results", str(res), "--panel", "a"])
    assert "--only/--panel name groups and panels of one figure" in line      # whose groups? refused
    assert not res.exists() and not (tmp_path / "fig").exists()


def test_dry_run_lists_the_selection(tmp_path, capsys):
    path = _figure(tmp_path)
    assert cli.main(["figure", path, "--only", "fedavg", "--panel", "b", "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "tiny: group fedavg: 1 run, 1 compiled program" in said and "group tally" not in said
