"""review34: an adversarial review of this session's merges (compare51's family-wise intervals and per-seed CSV
sides, hostile24's checks, house49's splits). Each test here kills a hand mutation the suite let live, or pins
a bug found (a diverged seed's `nan` in the compared column made it a setting column, and `compare FILE.csv
--by` was refused). Nothing compiles: hand-made CSVs and run directories."""
import json
from pathlib import Path

import pytest

from tallysim.config import ConfigError
from tallysim.results import compare as cmp


def _csv(path: Path, rows: list, header: str = "group,panel,seed,round,acc_mean") -> Path:
    path.write_text("# made by a test\n" + header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def _pairs(panel: str, accs: list, rnd: int = 5) -> list:
    """(group t and l rows of one panel): accs is [(t, l) per seed]."""
    return [row for s, (t, l) in enumerate(accs) for row in (("t", panel, s, rnd, t), ("l", panel, s, rnd, l))]


# ---- bug: a diverged seed's nan in the column compared ------------------------------------------------------

def test_csv_by_reads_past_a_diverged_seeds_nan(tmp_path):
    """`nan` (or a word) in the column compared is not a setting's name: the column compared became a setting column (each value its own setting)
    and --by was refused, "no setting of panel, acc_mean ... has rows with both values"; the two-sides form
    read the same file and dropped the seed with a note."""
    f = _csv(tmp_path / "nan_seeds.csv", _pairs("a", [(0.6, 0.5), ("nan", 0.5), (0.7, 0.55)])
             + _pairs("b", [(0.6, 0.5), (0.62, 0.5), ("inf", 0.55)]) + _pairs("c", [(0.6, 0.5), ("diverged", 0.5)]))
    c = cmp.compare(str(f), by="group=t,l")
    assert [p["pair"] for p in c] == ["panel=a", "panel=b", "panel=c"]
    assert [p["seeds"] for p in c] == [[0, 2], [0, 1], [0]]
    assert "panel=a: seeds dropped (no finite value, e.g. diverged): 1 (A)" in c.notes
    assert "panel=b: seeds dropped (no finite value, e.g. diverged): 2 (A)" in c.notes
    sides = cmp.compare(f"{f}:group=t:panel=a", f"{f}:group=l:panel=a")
    assert sides[0]["diffs"] == c[0]["diffs"]


def test_csv_by_blank_cells_of_a_number_column_are_no_setting(tmp_path):
    """A number column with blanks (bits_per_peer unknown for some rows), or a diverged seed's nan in another
    column than the one compared (its loss), is no setting column either."""
    rows = [(*r, "" if r[2] == 0 else 100, "nan" if r[0] == "t" else 1.2) for r in _pairs("a", [(0.6, 0.5), (0.7, 0.5)])]
    f = _csv(tmp_path / "blank_seeds.csv", rows, header="group,panel,seed,round,acc_mean,bits_per_peer,loss")
    c = cmp.compare(str(f), by="group=t,l")
    assert len(c) == 1 and c[0]["seeds"] == [0, 1]


def test_csv_by_notes_other_final_rounds_and_bits_as_two_sides_do(tmp_path):
    """--by over a CSV compared A at round 5 with B at round 8, and 100 against 200 bits per peer, in silence;
    the two-sides form of the same rows said both."""
    rows = [("t", "a", 0, 5, 0.6, 100), ("t", "a", 1, 5, 0.7, 100), ("l", "a", 0, 8, 0.5, 200), ("l", "a", 1, 8, 0.5, 200)]
    f = _csv(tmp_path / "rb_seeds.csv", rows, header="group,panel,seed,round,acc_mean,bits_per_peer")
    by, sides = cmp.compare(str(f), by="group=t,l"), cmp.compare(f"{f}:group=t", f"{f}:group=l")
    assert by.notes == sides.notes == ["A's final round is 5, B's 8",
                                       "not matched bits: A 100 bits per peer, B 200 bits per peer"]
    assert (by[0]["round"], by[0]["bits_a"], by[0]["bits_b"]) == (sides[0]["round"], 100, 200) == (8, 100, 200)
    best = cmp.compare(str(f), by="group=t,l", at="best").notes      # each seed's best: no final round to match
    assert best == ["not matched bits: A 100 bits per peer, B 200 bits per peer"]
    two = _csv(tmp_path / "rb2_seeds.csv", rows + [("t", "b", 0, 8, 0.6, 200), ("l", "b", 0, 8, 0.5, 200)],
               header="group,panel,seed,round,acc_mean,bits_per_peer")
    assert cmp.compare(str(two), by="group=t,l").notes == ["panel=a: A's final round is 5, B's 8",
                                                           "panel=a: not matched bits: A 100 bits per peer, B 200 bits per peer"]


@pytest.mark.parametrize("cell", [45.9, -0.4, 1.5])
def test_a_seeds_accuracy_out_of_zero_one_is_refused_by_compare(tmp_path, cell):
    """A percent (45.9) or a negative in a run's per_seed accuracies, or in a CSV's acc_mean, went into the
    paired differences: the row's own acc_mean was checked (hostile23), verdicts.py refuses the CSV cell."""
    from tallysim.results import run_dir
    for name, acc in (("a", [0.5, cell]), ("b", [0.5, 0.5])):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 1, "seed": 0, "seeds": 2}))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 0, "acc_mean": 0.5, "seeds": [0, 1],
                                                     "per_seed": {"acc_mean": acc}}) + "\n")
    with pytest.raises(ConfigError, match=rf"line 1, seed 1: per_seed\['acc_mean'\]={cell} is not an accuracy"):
        cmp.compare(tmp_path / "a", tmp_path / "b")
    with pytest.raises(ConfigError, match="not an accuracy"):
        run_dir.read_rows(tmp_path / "a")
    nan = tmp_path / "nan"          # a diverged seed's NaN is its result, not a misread accuracy: read, and dropped
    nan.mkdir()
    (nan / "config.json").write_text((tmp_path / "b" / "config.json").read_text())
    (nan / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 0, "acc_mean": float("nan"), "seeds": [0, 1],
                                                   "per_seed": {"acc_mean": [0.5, float("nan")]},
                                                   "seeds_nonfinite": {"acc_mean": 1}}) + "\n")
    assert cmp.compare(nan, tmp_path / "b").notes == ["seeds dropped (no finite value, e.g. diverged): 1 (A)"]
    f = _csv(tmp_path / "pct_seeds.csv", _pairs("a", [(cell, 0.5), (0.7, 0.5)]))
    for call in (lambda: cmp.compare(f"{f}:group=t", f"{f}:group=l"), lambda: cmp.compare(str(f), by="group=t,l")):
        with pytest.raises(ConfigError, match=rf"seed 0, round \d+: acc_mean='{cell}' is not an accuracy; "
                                              r"allowed: a fraction in \[0, 1\], or no finite value"):
            call()
    loss = _csv(tmp_path / "loss_seeds.csv", _pairs("a", [(cell, 0.5), (0.7, 0.5)]), header="group,panel,seed,round,loss")
    assert cmp.compare(f"{loss}:group=t", f"{loss}:group=l", metric="loss")[0]["n"] == 2     # a loss may be any size


# ---- mutants the suite let live -----------------------------------------------------------------------------

def test_family_wise_flat_differences_to_float_rounding(tmp_path):
    """0.3 - 0.2 and 0.4 - 0.3 differ in the last bit: flat (the sign test decides), family-wise as per pair;
    with no tolerance the interval, 1e-16 wide, said "A above B" from 3 seeds."""
    acc = [(0.3, 0.2), (0.4, 0.3), (0.5, 0.4)]
    f = _csv(tmp_path / "flat_seeds.csv", _pairs("a", acc) + _pairs("b", acc))
    c = cmp.compare(str(f), by="group=t,l")
    assert c.family == 2 and len(set(c[0]["diffs"])) == 2
    assert [(p["flat"], p["verdict"]) for p in c] == [(True, "level within noise")] * 2


def test_csv_auto_metric_is_acc_global_where_the_file_has_it(tmp_path):
    rows = [("t", "a", 0, 5, 0.5, 0.9), ("l", "a", 0, 5, 0.4, 0.6)]
    f = _csv(tmp_path / "g_seeds.csv", rows, header="group,panel,seed,round,acc_mean,acc_global")
    c = cmp.compare(f"{f}:group=t", f"{f}:group=l")
    assert c[0]["metric_a"] == "acc_global" and c[0]["diffs"] == pytest.approx([0.3])


def test_csv_by_best_loss_is_the_smallest(tmp_path):
    rows = [("t", "a", 0, 1, 0.9), ("t", "a", 0, 2, 0.7), ("l", "a", 0, 1, 0.5), ("l", "a", 0, 2, 0.6)]
    f = _csv(tmp_path / "loss_seeds.csv", rows, header="group,panel,seed,round,loss")
    c = cmp.compare(str(f), by="group=t,l", metric="loss", at="best")
    assert c[0]["diffs"] == pytest.approx([0.2])        # 0.7 - 0.5, not the largest 0.9 - 0.6


def test_csv_sides_notes_other_final_rounds_and_the_same_rows(tmp_path):
    f = _csv(tmp_path / "r_seeds.csv", [("t", "a", 0, 5, 0.6), ("l", "a", 0, 8, 0.5)])
    assert "A's final round is 5, B's 8" in cmp.compare(f"{f}:group=t", f"{f}:group=l").notes
    assert "A and B select the same rows: every difference is 0" in cmp.compare(f"{f}:group=t", f"{f}:group=t").notes


def test_run_directories_named_like_a_csv_are_run_directories(tmp_path):
    for name, acc in (("a.csv", [0.6, 0.7]), ("b.csv", [0.5, 0.5])):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 1, "seed": 0, "seeds": 2}))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 0, "acc_mean": sum(acc) / 2,
                                                     "seeds": [0, 1], "per_seed": {"acc_mean": acc}}) + "\n")
    c = cmp.compare(tmp_path / "a.csv", tmp_path / "b.csv")
    assert c[0]["diffs"] == pytest.approx([0.1, 0.2])


def test_csv_seed_not_a_whole_number_is_refused(tmp_path):
    f = _csv(tmp_path / "half_seeds.csv", [("t", "a", 1.5, 5, 0.6), ("l", "a", 1.5, 5, 0.5)])
    with pytest.raises(ConfigError, match=r"a row's seed is '1.5', not a whole number"):
        cmp.compare(f"{f}:group=t", f"{f}:group=l")


def test_csv_best_of_a_seed_with_no_finite_value_is_named_so(tmp_path):
    rows = [("t", "a", 0, 1, 0.6), ("t", "a", 1, 1, "nan"), ("t", "a", 1, 2, "nan"),
            ("l", "a", 0, 1, 0.5), ("l", "a", 1, 1, 0.5)]
    f = _csv(tmp_path / "best_seeds.csv", rows)
    c = cmp.compare(f"{f}:group=t", f"{f}:group=l", at="best")
    assert c.notes == ["seeds dropped (no finite value, e.g. diverged): 1 (A)"]


def test_a_flat_pairs_changed_verdict_names_its_sign_test(tmp_path):
    """Six seeds each +0.25 (s.e. 0): alone the sign test says above (p 0.03125), Holm's over 2 pairs does not;
    the note said "its own 95% interval alone says A above B", an interval of no width that decided nothing."""
    rows = _pairs("a", [(0.75, 0.5)] * 6) + _pairs("b", [(0.75, 0.5)] * 6)
    c = cmp.compare(str(_csv(tmp_path / "flat6_seeds.csv", rows)), by="group=t,l")
    assert "panel=a: level within noise over the 2 pairs; its own sign test (p 0.03125) alone says A above B " \
           "(--per-pair)" in c.notes
    assert c.notes[0].endswith("the verdict is the sign test's (p < 0.05, which needs 6 seeds or more; over several "
                               "pairs Holm's p, which needs more)")


# ---- house49 and hostile24 mutants the suite let live ---------------------------------------------------------

def test_a_group_folder_inside_a_run_is_named_under_results(tmp_path, capsys, no_compile):
    """RES/<figure> a `tallysim run` folder: its group's folder is named as the folder of group g under
    --results (refuse_inside_run is given the figure's flag), not as a value given to --out."""
    from conftest import one_line
    from test_house_dec27e import FIGURE
    from tallysim import outdir
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(FIGURE))
    res = tmp_path / "res"
    (res / "tiny").mkdir(parents=True)
    (res / "tiny" / outdir.MARKER).write_text('{"written_by": "tallysim"}\n')
    line = one_line(capsys, ["figure", str(path), "--results", str(res), "--out", str(tmp_path / "fig"), "--dry-run"])
    assert line.startswith(f"tallysim: error: figure group 'fedavg': the folder {res / 'tiny' / 'fedavg'} of group "
                           f"'fedavg' (under --results {res}) is inside the tallysim run directory {res / 'tiny'}"), line


def test_sweep_checked_out_names_a_new_folder_through_the_flag_given(tmp_path):
    """sweep.checked_out hands its flag to destination too: a folder still to be created whose name ends in a
    space is named under the flag given."""
    from tallysim import sweep
    from tallysim.out_path import Given
    with pytest.raises(ConfigError, match=r"^the folder .* of group 'g' \(under --results "):
        sweep.checked_out(tmp_path / "fig " / "g", [], [], Given("--results", tmp_path, "group 'g'"))


def test_a_started_run_outside_a_sweep_has_no_rows_yet(tmp_path):
    """A run folder with its config.json and no metrics.jsonl (compiling) is a run not evaluated yet, sweep or
    not: "pass directories written by `tallysim run --out`" said it was none of tallysim's."""
    from tallysim.results import run_dir
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 2}))
    with pytest.raises(ConfigError, match="has no metrics.jsonl yet: a run not evaluated yet"):
        run_dir.read_rows(tmp_path / "r")


def test_one_pair_has_no_family_line(tmp_path):
    f = _csv(tmp_path / "one_seeds.csv", _pairs("a", [(0.6, 0.5), (0.7, 0.5), (0.65, 0.5)]))
    for c in (cmp.compare(f"{f}:group=t", f"{f}:group=l"), cmp.compare(str(f), by="group=t,l", per_pair=True)):
        text = c.text()
        assert c.family == 1 and "per-pair 95% over" not in text and "family-wise 95% over" not in text, text
        assert "| 95% t-interval | above / below / tied | sign test p |" in text


def test_seed_csv_read_of_a_folder_is_refused_in_one_line(tmp_path):
    from tallysim.results import seed_csv
    (tmp_path / "x.csv").mkdir()        # opened, it was an IsADirectoryError's traceback
    with pytest.raises(ConfigError, match=r"x\.csv: not a file; allowed: a per-seed CSV"):
        seed_csv.read(tmp_path / "x.csv")


def test_a_family_counts_the_pairs_compared_not_those_left_out(tmp_path):
    """Panel c has rows of t only: left out with a note, and not one of the family's m (m = 2, not 3)."""
    rows = _pairs("a", [(0.6, 0.5), (0.7, 0.5)]) + _pairs("b", [(0.6, 0.5), (0.7, 0.5)]) + [("t", "c", 0, 5, 0.6)]
    c = cmp.compare(str(_csv(tmp_path / "left_seeds.csv", rows)), by="group=t,l")
    assert c.family == 2 and "panel=c has rows with group=t and none with group=l; left out" in c.notes
    assert "family-wise 95% over 2 pairs" in c.text()
