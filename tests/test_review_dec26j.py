"""review32: an adversarial review of compare50 / verdicts52 / leftovers51 / house48 / hostile23.

What each test pins, and the mutation of the merged code it was written against (each fails without its fix
or against that mutation): the statistics when every seed's difference is the same (the s.e. is 0 and a
zero-width interval claimed a direction from 2 seeds); `--at best` of a perplexity or a loss (the smallest,
not the largest); `--by` values that both match one run (1 and 1.0); the figure's folder check's message
(`--out` renamed to `--results` only where it is the flag)."""
import json
from pathlib import Path

import numpy as np
import pytest

from tallysim.config import ConfigError
from tallysim.results import compare as cmp
from tallysim.results import paired_stats as ps
from conftest import hand_run




# ---- every seed's difference the same: the interval has no width ------------------------------------------

def test_equal_differences_do_not_claim_a_direction_from_two_seeds():
    """Two seeds each 0.01 ahead: the s.e. is 0, the t-interval [0.01, 0.01] 'lies above 0', and the verdict
    was "A above B" from two seeds (sign test p = 0.5). Accuracies are counts over a test set, so two seeds
    ahead by the same count happen; the interval then measures no noise, and the verdict falls to the sign
    test, which needs 6 untied seeds."""
    for n in (2, 3, 5):
        s = ps.summarize([0.01] * n)
        assert s["se"] == 0.0 and s["verdict"] == ps.LEVEL_WORD and s["flat"], n
        assert ps.summarize([-0.25] * n)["verdict"] == ps.LEVEL_WORD
    six = ps.summarize([0.01] * 6)
    assert six["sign_p"] < 0.05 and six["verdict"] == ps.ABOVE and six["flat"]
    assert ps.summarize([-0.01] * 7)["verdict"] == ps.BELOW
    # not flat: a real spread keeps the interval's verdict (the rule as compare50 wrote it)
    s = ps.summarize([0.1, 0.11, 0.09])
    assert s["verdict"] == ps.ABOVE and not s["flat"]
    assert not ps.summarize([0.3])["flat"]            # one seed: no interval, not "flat"


def test_equal_differences_through_float32_accuracies_are_flat(tmp_path):
    """The same count ahead at each seed, as float32 accuracies written to metrics.jsonl: the differences
    differ in the eighth decimal (float32 rounding), a s.e. of ~1e-8 made a 2-seed interval of width ~1e-7
    and the verdict "A above B"; compare treats a spread within the values' float32 rounding as none."""
    a = [float(np.float32(x)) for x in (0.8123, 0.6012)]
    b = [float(np.float32(x)) for x in (0.8111, 0.6000)]
    assert len({x - y for x, y in zip(a, b)}) == 2              # not exactly equal: the trap
    ra = hand_run(tmp_path / "a", "tally", {0: [a[0]], 1: [a[1]]})
    rb = hand_run(tmp_path / "b", "local", {0: [b[0]], 1: [b[1]]})
    p, = c = cmp.compare(ra, rb)
    assert p["verdict"] == "level within noise" and p["flat"], p
    assert any("the same at every seed" in n for n in c.notes), c.notes
    assert "the same at every seed" in c.text()


# ---- --at best of a lower-is-better metric ------------------------------------------------------------------

def test_best_of_a_perplexity_or_loss_is_its_smallest(tmp_path):
    """`--at best --metric ppl_mean`: each seed's best perplexity is its lowest (a diverging seed's largest
    was its 'best'); untested before, `pick = max` passed every test."""
    a = hand_run(tmp_path / "a", "tally", {0: [9.0, 5.0, 7.0], 1: [8.0, 4.0, 6.0]}, key="ppl_mean")
    b = hand_run(tmp_path / "b", "local", {0: [9.5, 6.0, 6.5], 1: [8.5, 5.5, 7.5]}, key="ppl_mean")
    p, = cmp.compare(a, b, metric="ppl_mean", at="best")
    assert p["a_values"] == [5.0, 4.0] and p["b_values"] == [6.0, 5.5]
    assert p["diffs"] == [-1.0, -1.5]


# ---- --by values that name one run twice ---------------------------------------------------------------------

def test_by_values_that_both_match_one_run_are_refused(tmp_path):
    """`--by optim.lr=0.1,0.10` (or true,True): two different texts, one value; every run was both A and B,
    each compared with itself, every difference 0, and the verdict "level within noise" as if measured."""
    root = tmp_path / "sw"
    root.mkdir()
    (root / "sweep.json").write_text(json.dumps({"runs": [], "axes": []}))
    for lr in (0.1, 0.2):
        hand_run(root / f"lr{lr}", "tally", {0: [0.5 + lr], 1: [0.6 + lr]}, cfg={"optim": {"lr": lr}})
    assert cmp.compare(root, by="optim.lr=0.1,0.2")[0]["verdict"] in ps.VERDICTS     # the honest one works
    with pytest.raises(ConfigError, match=r"--by optim.lr=0.1,0.10: .*both values match"):
        cmp.compare(root, by="optim.lr=0.1,0.10")


# ---- compare50's branches its tests did not reach (each a surviving mutation) ---------------------------

def test_a_nan_seed_is_dropped_at_final_and_best(tmp_path):
    """A seed whose value is NaN (diverged, kept in the mean row: seed_mean.aggregate) leaves the pair at
    `final`, and its NaN rounds do not become its `best` (max() over a list with a NaN depends on order)."""
    nan = float("nan")
    a = hand_run(tmp_path / "a", "tally", {0: [0.6, 0.8], 1: [0.5, nan], 2: [0.7, 0.9]})
    b = hand_run(tmp_path / "b", "local", {0: [0.5, 0.7], 1: [0.4, 0.6], 2: [0.5, 0.7]})
    p, = cmp.compare(a, b)
    assert p["seeds"] == [0, 2] and p["dropped"] == [1]
    best, = cmp.compare(a, b, at="best")
    assert best["seeds"] == [0, 1, 2] and best["a_values"] == [0.8, 0.5, 0.9]
    c = hand_run(tmp_path / "c", "tally", {0: [nan, 0.8], 1: [0.5, 0.3]})
    assert cmp.compare(c, b, at="best")[0]["a_values"] == [0.8, 0.5]


def test_one_seed_in_two_runs_of_a_side_is_refused(tmp_path):
    """Pooled runs of one setting whose seeds overlap (seed=0 seeds=2 beside seed=1): seed 1 twice on a side,
    one value silently replacing the other, is refused."""
    root = tmp_path / "sw"
    root.mkdir()
    hand_run(root / "t01", "tally", {0: [0.6], 1: [0.7]})
    hand_run(root / "t1", "tally", {1: [0.65]})
    hand_run(root / "l01", "local", {0: [0.5], 1: [0.5]})
    with pytest.raises(ConfigError, match=r"A: seed 1 is in two runs of one setting"):
        cmp.compare(root, by="protocol.name=tally,local")


def test_by_reads_a_number_as_the_command_line_writes_it(tmp_path):
    """`--by optim.lr=1e-3,0.002` names lr 0.001 though str(0.001) is '0.001'."""
    root = tmp_path / "sw"
    root.mkdir()
    for lr in (0.001, 0.002):
        hand_run(root / f"lr{lr}", "tally", {0: [0.5 + lr], 1: [0.6 + lr * 2]}, cfg={"optim": {"lr": lr}})
    p, = cmp.compare(root, by="optim.lr=1e-3,0.002")
    assert p["diffs"] == pytest.approx([-0.001, -0.002])


def test_other_metrics_on_each_side_are_said(tmp_path):
    """--metric auto on a run with a server model against one without: acc_global against acc_mean, said."""
    a = hand_run(tmp_path / "a", "fedavg", {0: [0.7], 1: [0.8]}, key="acc_global")
    b = hand_run(tmp_path / "b", "local", {0: [0.5], 1: [0.6]})
    c = cmp.compare(a, b)
    assert c[0]["metric_a"] == "acc_global" and c[0]["metric_b"] == "acc_mean"
    assert any("A's acc_global against B's acc_mean" in n for n in c.notes), c.notes


def test_best_notes_no_final_round_and_csv_means_are_each_sides(tmp_path):
    """`--at best` says nothing of the final rounds (each seed's best is its own round); the CSV's `mean`
    row holds A's and B's means over the paired seeds (their sums passed every test)."""
    import csv
    import io
    a = hand_run(tmp_path / "a", "tally", {0: [0.6, 0.8], 1: [0.5, 0.7]})
    b = hand_run(tmp_path / "b", "local", {0: [0.5, 0.6, 0.65], 1: [0.4, 0.5, 0.55]})
    assert any("final evaluation is round 2" in n for n in cmp.compare(a, b).notes)
    c = cmp.compare(a, b, at="best")
    assert not any("final evaluation" in n for n in c.notes), c.notes
    mean = [r for r in csv.DictReader(io.StringIO(c.text("csv"))) if r["seed"] == "mean"][0]
    assert float(mean["a"]) == pytest.approx(0.75) and float(mean["b"]) == pytest.approx(0.6)


def test_a_per_seed_list_not_of_its_seeds_is_no_seeds_value(tmp_path):
    """A per_seed list shorter than the row's seeds (a hand edit) cannot say which seed each value is: not the
    first values zipped onto the first seeds. (hostile24: the row is refused when read, naming its line; it
    was "no seed has a finite value", the words of diverged seeds.)"""
    a = hand_run(tmp_path / "a", "tally", {0: [0.8], 1: [0.7], 2: [0.9]})
    rows = [json.loads(x) for x in (a / "metrics.jsonl").read_text().splitlines()]
    rows[-1]["per_seed"]["acc_mean"] = [0.8, 0.7]
    (a / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    b = hand_run(tmp_path / "b", "local", {0: [0.5], 1: [0.5], 2: [0.5]})
    with pytest.raises(ConfigError, match=r"metrics.jsonl line 1: per_seed\['acc_mean'\] is not a list of 3 values"):
        cmp.compare(a, b)


def test_a_sweeps_failed_runs_are_not_promised_a_rerun(tmp_path, capsys):
    """sweep_gaps: runs that failed before their first row are named with why; 'run again runs those not
    run yet' is said only where some are not run yet (a failed run's rerun is not promised)."""
    from tallysim.results import sweep_gaps
    root = tmp_path / "sw"
    root.mkdir()
    hand_run(root / "ok", "tally", {0: [0.5]})
    (root / "sweep.json").write_text(json.dumps({"runs": [{"name": "ok", "status": "done"},
                                                          {"name": "bad", "status": "failed"}]}))
    line, = sweep_gaps.notes([root], "table")
    assert "1 of 2 runs" in line and "failed before their first row" in line and "bad" in line
    assert "run again runs those not run yet" not in line
    (root / "sweep.json").write_text(json.dumps({"runs": [{"name": "ok", "status": "done"},
                                                          {"name": "later", "status": "pending"}]}))
    assert "run again runs those not run yet" in sweep_gaps.notes([root], "table")[0]


def test_by_pairs_a_run_whose_config_predates_a_field_at_its_default(tmp_path):
    """A run written before a field existed (its config.json lacks optim.lr) is the same setting as one
    with optim.lr at its default: paired, not left out as 'no run ... differs from it only in'."""
    from tallysim.results.swept import with_defaults
    lr = with_defaults({}, ["optim.lr"])["optim.lr"]
    root = tmp_path / "sw"
    root.mkdir()
    hand_run(root / "t", "tally", {0: [0.7], 1: [0.8]}, cfg={"optim": {"lr": lr}})
    hand_run(root / "l", "local", {0: [0.5], 1: [0.7]})          # no optim.lr: its default
    hand_run(root / "t2", "tally", {0: [0.6], 1: [0.6]}, cfg={"optim": {"lr": lr * 2}})
    c = cmp.compare(root, by="protocol.name=tally,local")
    assert len(c) == 1 and c[0]["a"].endswith("t") and c[0]["diffs"] == pytest.approx([0.2, 0.1])
    assert any("(t2) has no run with protocol.name=local" in n for n in c.notes), c.notes


# ---- leftovers51 / hostile23 branches their tests did not reach (each a surviving mutation) --------------

def test_a_selections_plan_lists_done_runs_as_done_before(tmp_path):
    """figures/selection.left_alone: a run of the group left out by the selection that finished before is
    listed as done before (its rows are there), not as "not run yet"."""
    from tallysim.figures.plans import Plans
    from tallysim.figures.selection import left_alone
    from tallysim.results import metrics
    runs = [("a", ["seed=0"]), ("b", ["seed=1"]), ("c", ["seed=2"])]
    full = Plans({"g": (None, runs)}, {"g": [None, None, None]})
    chosen = Plans({"g": (None, runs[:1])}, {"g": [None]})
    (tmp_path / "g" / "b").mkdir(parents=True)
    (tmp_path / "g" / "b" / metrics.DONE).write_text("{}")
    plan = left_alone(full, chosen, tmp_path)["g"]
    assert plan[0] == "a" and plan[1]["status"] == metrics.DONE_BEFORE and plan[2]["status"] == "not_run"


def test_sweep_json_keeps_a_record_its_plan_does_not_name(tmp_path):
    """sweep_records.write_index with a selection's plan: records of runs the plan does not name are kept
    after the plan's (nothing a sweep ran is left out of its sweep.json)."""
    from tallysim import sweep_records
    recs = [{"name": "a", "status": "done"}, {"name": "extra", "status": "done"}]
    plan = ["a", {"name": "b", "status": "not_run"}]
    sweep_records.write_index(tmp_path, recs, {sweep_records.PLAN: plan, "axes": []})
    doc = json.loads((tmp_path / sweep_records.INDEX).read_text())
    assert [r["name"] for r in doc["runs"]] == ["a", "b", "extra"] and sweep_records.PLAN not in doc


def test_make_figure_refuses_a_bool_checkpoint_every(tmp_path):
    """checkpoint_every=True is no number of rounds (True is an int to isinstance): refused before any plan."""
    from tallysim.figures import make_figure
    with pytest.raises(ConfigError, match=r"make_figure\(checkpoint_every=True\): allowed None"):
        make_figure("no-such-figure", results=str(tmp_path / "r"), out=str(tmp_path / "f"), checkpoint_every=True)


def test_by_pairs_a_field_one_side_does_not_read(tmp_path):
    """`--by protocol.name=softlabel,tally` over soft labels at comm.soft_bits 8 and tally (whose config.json
    holds the unread default 32): the matched-bits comparison was refused, "the runs differ in
    comm.soft_bits"; a field a run does not read matches any value (one pair per soft_bits, both ways)."""
    root = tmp_path / "sw"
    root.mkdir()
    hand_run(root / "t", "tally", {0: [0.7], 1: [0.8]}, cfg={"comm": {"soft_bits": 32}})
    hand_run(root / "s8", "softlabel", {0: [0.6], 1: [0.75]}, cfg={"comm": {"soft_bits": 8}})
    p, = c = cmp.compare(root, by="protocol.name=softlabel,tally")
    assert p["diffs"] == pytest.approx([-0.1, -0.05]) and not any("left out" in n for n in c.notes), c.notes
    hand_run(root / "s32", "softlabel", {0: [0.65], 1: [0.9]}, cfg={"comm": {"soft_bits": 32}})
    c = cmp.compare(root, by="protocol.name=tally,softlabel")     # tally against each bit width
    got = {p["pair"]: p["diffs"] for p in c}
    assert sorted(got) == ["comm.soft_bits=32", "comm.soft_bits=8"]
    assert got["comm.soft_bits=8"] == pytest.approx([0.1, 0.05]) and got["comm.soft_bits=32"] == pytest.approx([0.05, -0.1])
    c = cmp.compare(root, by="protocol.name=softlabel,tally")
    assert sorted(p["pair"] for p in c) == ["comm.soft_bits=32", "comm.soft_bits=8"]


def test_by_over_a_full_grid_keeps_each_setting_with_its_own(tmp_path):
    """protocol.name=tally,softlabel x comm.soft_bits=8,32 (a sweep allows it: softlabel reads the field):
    each tally run pairs with the softlabel run of its own soft_bits, not with both (the unread-field match
    is for a setting with no partner of its own; pooling both tally runs was 'seed 0 is in two runs')."""
    root = tmp_path / "sw"
    root.mkdir()
    for b in (8, 32):
        hand_run(root / f"t{b}", "tally", {0: [0.7], 1: [0.8]}, cfg={"comm": {"soft_bits": b}})
        hand_run(root / f"s{b}", "softlabel", {0: [0.6], 1: [0.75 if b == 8 else 0.7]}, cfg={"comm": {"soft_bits": b}})
    c = cmp.compare(root, by="protocol.name=softlabel,tally")
    assert {p["pair"]: Path(p["b"]).name for p in c} == {"comm.soft_bits=8": "t8", "comm.soft_bits=32": "t32"}
    assert not any("left out" in n for n in c.notes), c.notes


def test_sign_test_past_a_floats_range_of_seeds():
    """2.0 ** n overflowed past 1023 untied seeds (seeds goes to 10,000): an OverflowError's traceback from
    `tallysim compare`; the exact quotient is scipy's binomtest."""
    stats = pytest.importorskip("scipy.stats")
    for n, k in ((1030, 343), (1100, 366), (5000, 2500), (3000, 0)):
        assert ps.sign_test_p(k, n - k) == pytest.approx(stats.binomtest(k, n, 0.5).pvalue, rel=1e-9, abs=1e-300)
    s = ps.summarize([0.01 + 1e-4 * (i % 7) for i in range(1200)])
    assert s["n"] == 1200 and s["verdict"] == ps.ABOVE and s["sign_p"] == 0.0
