"""`extends` in experiment and --config files (config.read_file): deep merge, chains, lists of parents,
paths relative to the file, one-line errors; and every shipped experiment resolves and expands."""
import json
from pathlib import Path

import pytest

from tallysim import cli, config
from tallysim import figures

from experiment_dump import ROOT, expand, experiment_files


def _write(path: Path, doc) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return str(path)


def test_child_deep_merges_over_parent(tmp_path):
    _write(tmp_path / "base.json", {"peers": 10, "data": {"name": "synthetic", "train_size": 600},
                                    "sweep": {"rounds": [1, 2, 3]}, "smoke": {"peers": 3}})
    child = _write(tmp_path / "child.json", {"extends": "base.json", "data": {"train_size": 900},
                                             "sweep": {"rounds": [5]}, "rounds": 4})
    d = config.read_file(child)
    assert d == {"peers": 10, "data": {"name": "synthetic", "train_size": 900},   # objects merge key by key
                 "sweep": {"rounds": [5]}, "smoke": {"peers": 3}, "rounds": 4}  # lists replace
    assert list(d) == ["peers", "data", "sweep", "smoke", "rounds"]          # parent's order, then the child's
    cfg = config.load_file(child, smoke=True, sweep_base=True)     # the base of its sweep (a sweep reads it so)
    assert (cfg.peers, cfg.rounds, cfg.data.train_size) == (3, 4, 900)


def test_a_value_replaces_an_object_and_null_replaces_a_value(tmp_path):
    _write(tmp_path / "base.json", {"data": {"max_train": 100}, "notes": {"a": 1}})
    child = _write(tmp_path / "child.json", {"extends": "base.json", "data": {"max_train": None}, "notes": "x"})
    assert config.read_file(child) == {"data": {"max_train": None}, "notes": "x"}


def test_chain_and_list_of_parents(tmp_path):
    _write(tmp_path / "a.json", {"peers": 1, "rounds": 1, "seeds": 1})
    _write(tmp_path / "b.json", {"extends": "a.json", "rounds": 2})
    _write(tmp_path / "c.json", {"seeds": 3, "rounds": 3, "eval_every": 3})
    child = _write(tmp_path / "d.json", {"extends": ["b.json", "c.json"], "eval_every": 4})
    # later parents over earlier ones, the file itself over all of them
    assert config.read_file(child) == {"peers": 1, "rounds": 3, "seeds": 3, "eval_every": 4}


def test_diamond_is_not_a_cycle(tmp_path):
    _write(tmp_path / "root.json", {"peers": 7})
    _write(tmp_path / "l.json", {"extends": "root.json", "rounds": 2})
    _write(tmp_path / "r.json", {"extends": "root.json", "seeds": 2})
    assert config.read_file(_write(tmp_path / "x.json", {"extends": ["l.json", "r.json"]})) == \
        {"peers": 7, "rounds": 2, "seeds": 2}


def test_paths_are_relative_to_the_file_that_names_them(tmp_path, monkeypatch):
    _write(tmp_path / "base" / "common.json", {"extends": "smoke.json", "peers": 9})
    _write(tmp_path / "base" / "smoke.json", {"smoke": {"peers": 2}})
    child = _write(tmp_path / "sub" / "deep" / "x.json", {"extends": "../../base/common.json", "rounds": 5})
    monkeypatch.chdir(tmp_path / "sub")                 # not the directory of any of the files
    rel = str(Path("deep") / "x.json")
    assert config.read_file(rel) == config.read_file(child) == {"smoke": {"peers": 2}, "peers": 9, "rounds": 5}


@pytest.mark.parametrize("value", [3, {"path": "a.json"}, [], ["a.json", 1], None, ""])
def test_extends_of_the_wrong_type_is_one_line(tmp_path, value):
    _write(tmp_path / "a.json", {})
    f = _write(tmp_path / "x.json", {"extends": value})
    with pytest.raises(config.ConfigError) as e:
        config.read_file(f)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f'{f}: "extends"=') and "a path or a list of paths" in msg


def test_missing_parent_names_the_file_and_the_path(tmp_path):
    f = _write(tmp_path / "sub" / "x.json", {"extends": "nope.json"})
    with pytest.raises(config.ConfigError) as e:
        config.read_file(f)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{f}: \"extends\" 'nope.json' is not a file")
    assert str(tmp_path / "sub" / "nope.json") in msg and "relative to the file" in msg


@pytest.mark.parametrize("files", [{"a.json": "a.json"},
                                   {"a.json": "b.json", "b.json": "c.json", "c.json": "a.json"}])
def test_cycle_is_one_line(tmp_path, files):
    for name, parent in files.items():
        _write(tmp_path / name, {"extends": parent, "peers": 2})
    with pytest.raises(config.ConfigError) as e:
        config.read_file(str(tmp_path / "a.json"))
    msg = str(e.value)
    assert "\n" not in msg and "is a cycle" in msg and msg.count("a.json") >= 2


def test_a_parent_that_is_not_an_object_names_the_parent(tmp_path):
    _write(tmp_path / "a.json", [1, 2])
    f = _write(tmp_path / "x.json", {"extends": "a.json"})
    with pytest.raises(config.ConfigError, match="a.json.* holds a list"):
        config.read_file(f)


def test_run_sweep_and_figure_read_extends(tmp_path, capsys):
    """`run --config`, `sweep --config` (its sweep section too) and `figure` all see the parents."""
    base = {"peers": 3, "rounds": 1, "eval_every": 1, "probe": {"per_round": 16, "pool_size": 60},
            "data": {"name": "synthetic", "train_size": 300, "test_size": 60}, "model": {"width": 8},
            "sweep": {"protocol.name": ["tally", "fedavg"]}, "smoke": {"peers": 2}}
    _write(tmp_path / "base" / "common.json", base)
    child = _write(tmp_path / "exp" / "x.json", {"extends": "../base/common.json", "rounds": 2})
    assert cli.main(["sweep", "--config", child, "--smoke", "--dry-run", "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "2 runs" in out and "protocol.name=fedavg" in out
    cfg = cli._config(cli._parse(["run", "--config", child, "--smoke", "--out", "o", "seed=4",
                                   "protocol.name=tally"]))           # its sweep axis given one value: a run
    assert (cfg.peers, cfg.rounds) == (2, 2)
    fig = _write(tmp_path / "exp" / "fig.json", {"extends": "../base/fig.json", "title": "mine"})
    _write(tmp_path / "base" / "fig.json", {"kind": "curves", "base": {k: v for k, v in base.items()
                                                                        if k not in ("sweep", "smoke")},
                                            "groups": {"tally": {"protocol": {"name": "tally"}}},
                                            "smoke": {"base": {"peers": 2}}})
    logs = []
    figures.dry_run(fig, smoke=True, log=logs.append)
    assert logs[-1] == "fig-smoke: 1 run; 1 compiled program", logs


@pytest.mark.parametrize("path", experiment_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_experiment_resolves_and_expands(path):
    """Each experiment file (with its parents) expands into valid runs, full and smoke, as
    tests/experiment_dump.py does; base files are not experiments and are not figures."""
    docs = expand(path)
    spec = config.read_file(str(path))
    assert "extends" not in spec
    if spec.get("kind") != "speed":
        assert any(k.startswith("full/") for k in docs) and any(k.startswith("smoke/") for k in docs)



def test_bases_are_not_experiments_or_figures():
    bases = sorted((ROOT / "base").glob("*.json"))
    assert bases and not set(bases) & set(experiment_files())
    assert not {Path(p).resolve() for p in figures.FIGURES.values()} & {b.resolve() for b in bases}
    for b in bases:
        config.read_file(str(b))                  # each base resolves (its own parents included)
