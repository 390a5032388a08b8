"""leftovers54: a `tallysim compare` CSV side over several files (FILE.csv+FILE2.csv:...), --per-pair with one
pair said, --by comparing config values by number, a sweep.json entry that names a file, and the wait note
on an accelerator (jax.Array.is_ready). Nothing compiles: hand-made CSVs, run folders and fakes."""
from pathlib import Path

import pytest

from tallysim.config import ConfigError
from tallysim.results import compare as cmp
from tallysim.results import verdicts

ROOT = Path(__file__).resolve().parent.parent
FIG = ROOT / "docs" / "figures"


def _csv(path: Path, rows: list, header: str = "group,panel,seed,round,acc_mean") -> Path:
    path.write_text("# made by hand\n" + header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


# ---- 1. a side over several CSVs --------------------------------------------------------------------------

def test_side_over_several_files_gives_the_verdicts_row():
    files = f"{FIG / 'fig2_small_mlp_paired_seeds.csv'}+{FIG / 'fig2_small_mlp_seeds2to4.csv'}"
    c = cmp.compare(f"{files}:group=tally:panel=alpha=0.1", f"{files}:group=local:panel=alpha=0.1")
    want = next(r for r in verdicts.rows() if r["setting"] == "Fashion-MNIST MLP control, alpha 0.1"
                and r["a"] == "tally" and r["b"] == "local")
    (p,) = c
    assert p["n"] == want["n"] == 5
    assert p["mean"] == pytest.approx(want["mean"], abs=1e-12)
    assert (p["ci_low"], p["ci_high"]) == pytest.approx((want["ci_low"], want["ci_high"]), abs=1e-12)
    by = cmp.compare(files, by="group=tally,local")          # --by over the same two files: 5 seeds a pair
    assert [q["n"] for q in by] == [5, 5, 5] and by[0]["mean"] == pytest.approx(p["mean"], abs=1e-12)


def test_seed_in_two_files_refused_where_they_differ(tmp_path):
    a = _csv(tmp_path / "a_seeds.csv", [("x", "p", 0, 1, 0.5), ("x", "p", 1, 1, 0.6), ("y", "p", 0, 1, 0.4),
                                         ("y", "p", 1, 1, 0.5)])
    b = _csv(tmp_path / "b_seeds.csv", [("x", "p", 1, 1, 0.7), ("x", "p", 2, 1, 0.8), ("y", "p", 2, 1, 0.6)])
    with pytest.raises(ConfigError, match=r"seed 1 of group=x:panel=p is in .*a_seeds.csv \(acc_mean=0.6\) and in "
                                          r".*b_seeds.csv \(acc_mean=0.7\)"):
        cmp.compare(f"{a}+{b}:group=x:panel=p", f"{a}+{b}:group=y:panel=p")
    with pytest.raises(ConfigError, match=r"seed 1 .* is in .*a_seeds.csv .* and in .*b_seeds.csv"):
        cmp.compare(f"{a}+{b}", by="group=x,y")
    same = _csv(tmp_path / "c_seeds.csv", [("x", "p", 1, 1, 0.6), ("x", "p", 2, 1, 0.8), ("y", "p", 2, 1, 0.6)])
    c = cmp.compare(f"{a}+{same}:group=x:panel=p", f"{a}+{same}:group=y:panel=p")     # agreeing: kept once
    assert c[0]["seeds"] == [0, 1, 2] and c[0]["a_values"] == [0.5, 0.6, 0.8]


def test_file_without_the_selection_left_out_none_refused(tmp_path):
    a = _csv(tmp_path / "a_seeds.csv", [("x", "p", 0, 1, 0.5), ("y", "p", 0, 1, 0.4)])
    b = _csv(tmp_path / "b_seeds.csv", [("x", "p", 1, 1, 0.7), ("z", "p", 1, 1, 0.6)])
    c = cmp.compare(f"{a}+{b}:group=x", f"{a}+{b}:group=y")     # y only in a: seed 1 is A's alone
    assert c[0]["n"] == 1
    with pytest.raises(ConfigError, match=r"no file of .*a_seeds.csv \+ .*b_seeds.csv has a row with group=w"):
        cmp.compare(f"{a}+{b}:group=w", f"{a}+{b}:group=y")
    with pytest.raises(ConfigError, match=r"no such file"):
        cmp.compare(f"{a}+{tmp_path / 'gone.csv'}:group=x", f"{a}:group=y")


# ---- 2. --per-pair over one pair -------------------------------------------------------------------------

def test_per_pair_with_one_pair_is_said(tmp_path, capsys):
    from tallysim import cli
    f = _csv(tmp_path / "s_seeds.csv", [("x", "p", 0, 1, 0.5), ("x", "p", 1, 1, 0.6), ("y", "p", 0, 1, 0.4),
                                         ("y", "p", 1, 1, 0.45)])
    a, b = f"{f}:group=x", f"{f}:group=y"
    assert not any("--per-pair" in n for n in cmp.compare(a, b).notes)
    for c in (cmp.compare(a, b, per_pair=True), cmp.compare(str(f), by="group=x,y", per_pair=True)):
        assert any(n.startswith("--per-pair changes nothing here: there is one pair") for n in c.notes)
    assert cli.main(["compare", a, b, "--per-pair"]) == 0
    assert "--per-pair changes nothing here" in capsys.readouterr().out
    assert cli.main(["compare", a, b, "--per-pair", "--format", "csv"]) == 0
    assert "compare: --per-pair changes nothing here" in capsys.readouterr().err
    two = _csv(tmp_path / "t_seeds.csv", [(g, p, s, 1, 0.5 + s / 10 + (g == "x") / 20) for g in "xy" for p in "pq"
                                          for s in range(2)])
    assert not any("--per-pair" in n for n in cmp.compare(str(two), by="group=x,y", per_pair=True).notes)


# ---- 3. --by: 1 and 1.0 are one setting; true is not 1 -----------------------------------------------------

def _run(d: Path, proto: str, acc: dict, cfg: dict) -> Path:
    """A finished run folder: config.json and metrics.jsonl at one round, seeds pooled in per_seed."""
    import json
    d.mkdir(parents=True)
    seeds = sorted(acc)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": proto}, "rounds": 1, "seed": seeds[0],
                                               "seeds": len(seeds), "peers": 4, **cfg}))
    vals = [acc[s] for s in seeds]
    (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 10, "acc_mean": sum(vals) / len(vals),
                                                 "acc_global": None, "seeds": seeds, "per_seed": {"acc_mean": vals}})
                                     + "\n")
    return d


def test_by_pairs_a_hand_edited_whole_float_with_its_int(tmp_path):
    _run(tmp_path / "t", "tally", {0: 0.6, 1: 0.7}, {"optim": {"lr": 1}})
    _run(tmp_path / "l", "local", {0: 0.5, 1: 0.55}, {"optim": {"lr": 1.0}})     # hand-edited 1 -> 1.0
    c = cmp.compare(str(tmp_path), by="protocol.name=tally,local")
    assert len(c) == 1 and c[0]["n"] == 2 and not c.notes
    assert cmp.compare(str(tmp_path / "t"), str(tmp_path / "l")).notes == [   # no "optim.lr (1 / 1.0)"
        "A and B differ in: protocol.name (tally / local)"]
    from tallysim.results.swept import setting, swept_fields
    assert swept_fields([{"optim": {"lr": 1}}, {"optim": {"lr": 1.0}}]) == []
    assert setting(1) == setting(1.0) == "1" and setting(0.5) == "0.5"
    assert len({setting(True), setting(1), setting("1")}) == 3 and setting(False) != setting(0)
    assert swept_fields([{"x": True}, {"x": 1}]) == ["x"] and swept_fields([{"x": "1"}, {"x": 1}]) == ["x"]


def test_by_keeps_bools_and_strings_apart_from_numbers(tmp_path):
    _run(tmp_path / "t", "tally", {0: 0.6, 1: 0.7}, {"comm": {"flag": True}})
    _run(tmp_path / "l", "local", {0: 0.5, 1: 0.55}, {"comm": {"flag": 1}})       # true is not 1: no partner
    with pytest.raises(ConfigError, match="no run with protocol.name=tally has a partner"):
        cmp.compare(str(tmp_path), by="protocol.name=tally,local")
    # the --by value against a run's value: 1.0 in config.json is --by's 1, and 1 and 1.0 are one value
    _run(tmp_path / "a" / "x", "tally", {0: 0.6, 1: 0.7}, {"optim": {"lr": 1.0}})
    _run(tmp_path / "a" / "y", "tally", {0: 0.5, 1: 0.55}, {"optim": {"lr": 0.5}})
    assert cmp.compare(str(tmp_path / "a"), by="optim.lr=1,0.5")[0]["n"] == 2
    with pytest.raises(ConfigError, match="both values match the same runs"):
        cmp.compare(str(tmp_path / "a"), by="optim.lr=1,1.0")


# ---- 4. a sweep.json entry named after a file ------------------------------------------------------------

def test_a_sweep_json_entry_naming_a_file_is_said_to_name_a_file(tmp_path, capsys):
    import json

    from tallysim import cli
    from tallysim.results import sweep_gaps
    sw = tmp_path / "sw"
    _run(sw / "a", "tally", {0: 0.6}, {})
    (sw / "notes.txt").write_text("mine\n")
    names = ["a", "sweep.json", "notes.txt"]
    (sw / "sweep.json").write_text(json.dumps({"runs": [{"name": n, "status": "done" if n == "a" else "not_run"}
                                                        for n in names]}))
    [line] = sweep_gaps.notes([sw], "table")
    assert "not run yet" not in line and "run again" not in line, line
    assert line.endswith("2 of 3 runs its sweep.json lists have no rows and are missing here: each names a file in "
                         "the sweep folder, not a run folder (a hand-edited sweep.json?): sweep.json, notes.txt")
    runs = json.loads((sw / "sweep.json").read_text())["runs"] + [{"name": "b", "status": "pending"}]
    (sw / "sweep.json").write_text(json.dumps({"runs": runs}))
    assert cli.main(["table", str(sw)]) == 0
    err = capsys.readouterr().err
    assert "sweep.json?): sweep.json, notes.txt; not run yet (the sweep stopped before them, or is running): b" in err
    assert err.rstrip().endswith("the same sweep or figure run again runs those not run yet")


# ---- 5. the wait note on an accelerator: jax.Array.is_ready ----------------------------------------------

class _Fake:
    """An awaited result as the device holds it: is_ready() False until `ready_at` (time.monotonic())."""

    def __init__(self, ready_at: float):
        self.ready_at = ready_at

    def is_ready(self) -> bool:
        import time
        return time.monotonic() >= self.ready_at


def _host(monkeypatch, tree, fetch_s: float, backend: str = "gpu") -> None:
    import time

    from tallysim.sim import mesh, wait_note
    monkeypatch.setattr(mesh, "_fetch", lambda t: time.sleep(fetch_s) or t)   # the host idles meanwhile
    monkeypatch.setattr(mesh, "WAIT_NOTE_S", 0.1)
    monkeypatch.setattr(wait_note, "GRACE", 0.05)
    monkeypatch.setattr(wait_note.jax, "default_backend", lambda: backend)
    mesh.host(tree, "rounds 1-400")


def test_device_still_computing_is_said_once(monkeypatch, capsys):
    import time
    _host(monkeypatch, {"a": _Fake(time.monotonic() + 10), "b": _Fake(0)}, 0.6)
    err = capsys.readouterr().err
    assert err == ("tallysim: no result from the compiled program after 0.1 s (rounds 1-400); the device is still "
                   "computing it (1 of 2 results not ready; the result comes when it ends)\n"), err


def test_ready_results_whose_fetch_has_not_returned_are_a_stuck_fetch(monkeypatch, capsys):
    import time
    _host(monkeypatch, {"a": _Fake(0), "b": [_Fake(0)]}, 0.8)           # ready at once, the fetch hangs
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "after 0.15 s (rounds 1-400); the device finished it (every result is ready) " \
        "but fetching the results to the host has not returned: the fetch is stuck, not the device" in err, err
    _host(monkeypatch, {"a": _Fake(time.monotonic() + 0.5)}, 1.2)      # computing, then ready: both, in order
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "still computing it (1 of 1" in lines[0] and "the fetch is stuck" in lines[1], lines


def test_without_arrays_or_on_a_cpu_the_old_rules_hold(monkeypatch, capsys):
    _host(monkeypatch, {"a": 1}, 0.3)                  # nothing to ask: the device may still be computing
    assert "; the device may still be computing it" in capsys.readouterr().err
    _host(monkeypatch, {"a": _Fake(0)}, 0.3, backend="cpu")      # a CPU: the CPU-time rule, the arrays unasked
    assert "of a core over the last 0.1 s (under 2%, which a working run stays above): it is stuck" in capsys.readouterr().err
    import jax.numpy as jnp
    _host(monkeypatch, {"a": jnp.zeros(2)}, 0.5)       # a real jax Array (done on the CPU) is asked, and ready
    assert "the device finished it (every result is ready)" in capsys.readouterr().err
