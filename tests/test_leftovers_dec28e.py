"""leftovers56: one accuracy check for every reader (results/accuracy_check.py: one message shape, a mode for
refusing or dropping a diverged seed), verdicts.py joining a side's files as compare's `+` does, the CPU wait
note saying what it measured, and the docs saying what a kill loses without --checkpoint-every. Nothing
compiles: hand-made CSVs, run directories and a fake clock."""
import json
import math
import re
from pathlib import Path

import pytest

from tallysim import checkpoint
from tallysim.config import ConfigError
from tallysim.results import accuracy_check, run_dir
from tallysim.results import compare as cmp
from tallysim.results import verdicts as v
from conftest import watch_wait_note

DOCS = Path(__file__).resolve().parents[1] / "docs"
# the one shape: WHERE (the file, then its line or its selection, the seed, the round): COLUMN=VALUE is not an
# accuracy; allowed: ...
SHAPE = r"^(?P<file>\S+)(?: line \d+|: \S+)(?:, seed \d+)?(?:, round \d+)?: (?P<col>\S+)=(?P<val>\S+) is not an " \
        r"accuracy; allowed: a fraction in \[0, 1\]"


def _csv(path: Path, rows: list) -> Path:
    path.write_text("# made by a test\ngroup,panel,seed,round,acc_mean\n"
                    + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _run(d: Path, row: dict) -> Path:
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 1, "seed": 0, "seeds": 2}))
    (d / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    return d


def _refusal(call) -> str:
    with pytest.raises(ConfigError) as e:
        call()
    return str(e.value)


def test_every_reader_refuses_a_percent_in_one_message_shape(tmp_path, monkeypatch):
    """A percent (45.9) said four ways before: `line 1: acc_mean=45.9 is not ...`, `per_seed['acc_mean'] holds
    45.9, not ...`, `seed 0's acc_mean is 45.9, not ...`, `tally / p, seed 0: acc_mean='45.9' is not ...`."""
    row = {"round": 1, "bits_per_peer": 0, "acc_mean": 0.5, "seeds": [0, 1]}
    f = _csv(tmp_path / "x_seeds.csv", [("t", "p", 0, 5, 45.9), ("l", "p", 0, 5, 0.5)])
    monkeypatch.setattr(v, "FIG", tmp_path)
    said = {
        "row": _refusal(lambda: run_dir.read_rows(_run(tmp_path / "a", {**row, "acc_mean": 45.9}))),
        "per_seed": _refusal(lambda: run_dir.read_rows(_run(tmp_path / "b", {**row, "per_seed": {"acc_mean": [0.5, 45.9]}}))),
        "compare": _refusal(lambda: cmp.compare(f"{f}:group=t", f"{f}:group=l")),
        "compare --by": _refusal(lambda: cmp.compare(str(f), by="group=t,l")),
        "verdicts": _refusal(lambda: v._values((("x_seeds.csv",), "t", "p", None, None))),
    }
    for who, text in said.items():
        m = re.match(SHAPE, text)
        assert m and "45.9" in m["val"] and m["file"].rstrip(":").endswith(("metrics.jsonl", "x_seeds.csv")), (who, text)
    assert ", seed 1: per_seed['acc_mean']=45.9 is not" in said["per_seed"]     # the seed, not the list's index
    assert "x_seeds.csv: group=t, seed 0, round 5: acc_mean='45.9' is not" in said["compare"]
    assert "x_seeds.csv: group=t:panel=p, seed 0, round 5: acc_mean='45.9' is not" in said["verdicts"]


def test_a_diverged_seed_is_dropped_with_a_note_by_compare_and_refused_by_a_verdict(tmp_path, monkeypatch):
    f = _csv(tmp_path / "n_seeds.csv", [("t", "p", 0, 5, 0.6), ("t", "p", 1, 5, "nan"), ("l", "p", 0, 5, 0.5),
                                        ("l", "p", 1, 5, 0.5)])
    assert cmp.compare(f"{f}:group=t", f"{f}:group=l").notes == ["seeds dropped (no finite value, e.g. diverged): 1 (A)"]
    monkeypatch.setattr(v, "FIG", tmp_path)
    text = _refusal(lambda: v._values((("n_seeds.csv",), "t", "p", None, None)))
    assert re.match(SHAPE, text) and "seed 1, round 5: acc_mean='nan' is not an accuracy" in text, text
    assert "for every seed" in text, text       # what is allowed here, and why nan is not


@pytest.mark.parametrize("value, drop, refuse", [
    (0.5, True, True), (0.0, True, True), (1, True, True), (None, True, False), (math.nan, True, False),
    (math.inf, True, False), (45.9, False, False), (-0.4, False, False), (1.0000001, False, False)])
def test_the_two_modes(value, drop, refuse):
    for mode, passes in ((accuracy_check.DROP, drop), (accuracy_check.REFUSE, refuse)):
        if passes:
            accuracy_check.check(value, "f line 1", "acc_mean", mode)
        else:
            with pytest.raises(ConfigError, match=rf"^f line 1: acc_mean=.* is not an accuracy; allowed: "
                                                  rf"{re.escape(accuracy_check.ALLOWED[mode])}$"):
                accuracy_check.check(value, "f line 1", "acc_mean", mode)
    with pytest.raises(ValueError, match="allowed 'refuse' or 'drop'"):     # no third, silent behaviour
        accuracy_check.check(0.5, "f", "acc_mean", "skip")


def test_verdicts_join_a_sides_files_as_compare_does(tmp_path, monkeypatch):
    """A seed two files hold: verdicts refused it even where both say the same, compare's `+` keeps it once;
    where they differ both refuse, naming both files and values."""
    _csv(tmp_path / "a.csv", [("t", "p", 0, 5, 0.5), ("t", "p", 1, 5, 0.25)])
    _csv(tmp_path / "same.csv", [("t", "p", 1, 5, 0.25), ("t", "p", 2, 5, 0.75)])
    _csv(tmp_path / "other.csv", [("t", "p", 1, 5, 0.3), ("t", "p", 2, 5, 0.75)])
    monkeypatch.setattr(v, "FIG", tmp_path)
    assert v._values((("a.csv", "same.csv"), "t", "p", None, None)) == {0: 0.5, 1: 0.25, 2: 0.75}
    assert v._values((("a.csv", "a.csv"), "t", "p", None, None)) == {0: 0.5, 1: 0.25}      # a file listed twice
    text = _refusal(lambda: v._values((("a.csv", "other.csv"), "t", "p", None, None)))
    assert re.search(r"seed 1 of group=t:panel=p is in \S*a\.csv \(acc_mean=0\.25\) and in \S*other\.csv "
                     r"\(acc_mean=0\.3\)", text), text
    side = f"{tmp_path / 'a.csv'}+{tmp_path / 'other.csv'}:group=t:panel=p"
    assert _refusal(lambda: cmp.compare(side, side)) == text          # one reader, one refusal


def test_the_cpu_wait_note_says_what_it_measured(monkeypatch, capsys):
    """'the process used no CPU' of a process that used 1% of a core (6 CPU s in 600 s, under BUSY)."""
    err = watch_wait_note(monkeypatch, capsys, [6.0])
    assert "after 600 s (rounds 1-400) and the process used 1.0% of a core over the last 600 s (under 2%, which a " \
           "working run stays above): it is stuck" in err, err
    assert "no CPU" not in err


def test_the_docs_say_what_a_kill_loses_without_a_cadence(monkeypatch):
    """A sweep of runs under 5 minutes saves no checkpoint by default: the docs say so plainly, and what the
    code does (a lone run's clock, none in a group) is what they say."""
    sweeps = " ".join((DOCS / "sweeps.md").read_text().split())
    assert "**What a kill loses without `--checkpoint-every`**" in sweeps
    assert "a run shorter than that has saved none and runs again from round 1" in sweeps
    assert "a group saves none, so every unfinished run of it runs again from round 1" in sweeps
    assert "a sweep of short runs saved none" not in sweeps.split("(Until 2026-12-08")[0]    # only as history
    assert "one shorter than that saves none" in " ".join((DOCS / "howto" / "resume.md").read_text().split())
    assert checkpoint.DEFAULT_SECONDS == 5 * 60         # the docs' "5 minutes"
    now = [0.0]
    monkeypatch.setattr(checkpoint.time, "monotonic", lambda: now[0])
    lone = checkpoint.Saver(Path("."), None)
    now[0] = checkpoint.DEFAULT_SECONDS - 1
    assert not lone.due(3)              # a run shorter than 5 minutes reaches no save
    now[0] = checkpoint.DEFAULT_SECONDS
    assert lone.due(4)
    assert checkpoint.GroupSaver([Path(".")], None, [[0]]).every == 0      # a group: none without a K
