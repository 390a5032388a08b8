"""leftovers30: small items. 1. a stray metrics.jsonl (or config.json) in a parent folder no longer refuses
every derived output below it (atomic.run_above: a run is tallysim's marker, or config.json beside a
metrics.jsonl whose first row is a run's; the walk stops at the root and a home directory)."""
import json

import pytest


# ----------------------------------------------------------------------------- 1. run_above's walk

def _legacy_run(d):
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 1}))
    (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 800.0, "acc_mean": 0.5}) + "\n")


@pytest.mark.parametrize("stray", [{"metrics.jsonl": '{"loss": 1.0}\n'},
                                   {"config.json": "{}", "metrics.jsonl": '{"step": 3, "loss": 1.0}\n'},
                                   {"config.json": "{}"}])
def test_a_stray_file_two_levels_up_refuses_nothing(stray, tmp_path, capsys):
    # a metrics.jsonl of another tool in a project folder two levels above the results (or beside the
    # project's config.json) made every --out below it "inside the run directory <project>"
    from tallysim.cli import main
    proj = tmp_path / "proj"
    _legacy_run(proj / "work" / "res" / "a")
    for name, text in stray.items():
        (proj / name).write_text(text)
    out = proj / "work" / "res" / "p.png"
    assert main(["pareto", str(proj / "work" / "res"), "--out", str(out)]) == 0, capsys.readouterr().err
    assert out.is_file()
    # a real run two levels up is still refused: a legacy pair, and tallysim's marker alone
    (proj / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 8.0}) + "\n")
    (proj / "config.json").write_text("{}")
    assert main(["pareto", str(proj / "work" / "res"), "--out", str(out)]) == 2
    assert f"is inside the run directory {proj}," in capsys.readouterr().err


def test_run_above_stops_at_a_home_directory(tmp_path, monkeypatch):
    from tallysim import atomic
    home = tmp_path / "home"
    _legacy_run(home)                       # a home that looks like a run: never written as one
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr("pathlib.Path.home", classmethod(lambda cls: home))
    assert atomic.run_above(home / "res" / "t.md") is None
    _legacy_run(home / "res" / "a")
    assert atomic.run_above(home / "res" / "a" / "sub" / "t.md") == home / "res" / "a"
    (home / "res" / "m").mkdir()
    (home / "res" / "m" / ".tallysim-run").write_text(json.dumps({"written_by": "tallysim"}))
    assert atomic.run_above(home / "res" / "m" / "x" / "y" / "t.md") == home / "res" / "m"
    # an empty metrics.jsonl beside a config: a run stopped before its first row
    (home / "res" / "e").mkdir()
    (home / "res" / "e" / "config.json").write_text("{}")
    (home / "res" / "e" / "metrics.jsonl").write_text("")
    assert atomic.run_above(home / "res" / "e" / "t.md") == home / "res" / "e"
