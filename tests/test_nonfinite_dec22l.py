"""A multi-seed mean holding a diverged seed's NaN or inf (aggregate's `seeds_nonfinite`, leftovers30) is
marked wherever a mean over fewer seeds is (`seeds_counted`): the notes of table, plot, pareto and the
figures, a Markdown cell (`nan (1 of 3 seeds diverged)`), a `seeds_nonfinite` CSV column beside
`seeds_counted`, the summary line and the sweep's closing lines. Before, the cell said `nan` and only the
row's JSON said why. Rows built by hand (aggregate of per-seed rows), no run."""
import csv
import json
import math

import pytest

from tallysim.results import headline, md, metrics
from tallysim.results.seed_mean import aggregate
# (robustness below: a NaN accuracy no run writes, read_rows refusing acc_mean's: the worst-case rule's own)


def _last(ppl=(10.0, math.inf, 12.0), vote=(0.6, None, 0.8), rnd=2) -> dict:
    """The aggregate of three seeds' rows of a text run: seed 1's test perplexity inf (its loss overflowed exp:
    the realistic non-finite mean; an accuracy stays finite: NaN logits argmax to a class; read_rows refuses a non-finite acc_mean
    unless seeds_nonfinite marks it, tests/test_results_dec23c.py),
    vote_acc null for seed 1 (a mean over fewer seeds)."""
    return aggregate([{"round": rnd, "acc_mean": 0.5, "ppl_mean": p, "vote_acc": v, "bits_per_peer": 100 * rnd,
                       "wall_s": 1.0} for p, v in zip(ppl, vote)], [0, 1, 2])


def _write(d, rows, cfg=None):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg or {"protocol": {"name": "tally"}, "rounds": rows[-1]["round"],
                                                      "seeds": 3}))
    (d / "metrics.jsonl").write_text("".join(metrics.dumps_row(r) + "\n" for r in rows))   # inf as "Infinity"


def test_the_words_the_cells_and_the_summary_say_a_seed_diverged():
    from conftest import tiny
    last, clean = _last(), _last(ppl=(10.0, 11.0, 12.0))
    assert last["ppl_mean"] == math.inf and last["seeds_nonfinite"] == {"ppl_mean": 1}
    assert headline.seed_marks(last, ("ppl",), final=True) == {"seeds_counted": "",
                                                              "seeds_nonfinite": "1 of 3 seeds diverged"}
    assert headline.seed_marks(last, ("ppl_mean", "vote_acc"), final=True) == {
        "seeds_counted": "vote_acc final over 2 of 3 seeds", "seeds_nonfinite": "ppl_mean 1 of 3 seeds diverged"}
    assert headline.seed_marks(last) == {"seeds_counted": "", "seeds_nonfinite": ""}      # acc_mean: every seed
    assert headline.partial_seeds([last], "ppl", diverged=True) == "final: 1 of 3 seeds diverged"
    assert headline.partial_seeds([last, clean], "ppl_mean", diverged=True) == "some evaluations with a diverged seed"
    assert headline.partial_seeds([clean], "ppl", diverged=True) == "" and headline.partial_seeds([last], "ppl") == ""
    # a Markdown cell: the inf says why; a short mean's `*` and footnote as before, both where both hold
    marked = []
    assert md.starred("inf", headline.seed_marks(last, ("ppl",), final=True), marked, "a") == \
        "inf (1 of 3 seeds diverged)" and marked == []
    both = headline.seed_marks(last, ("ppl_mean", "vote_acc"), final=True)
    assert md.starred("inf", both, marked, "b") == "inf* (ppl_mean 1 of 3 seeds diverged)"
    assert marked == ["b: vote_acc final over 2 of 3 seeds"]
    # the notes of table/plot/pareto: one for the short means, one for the diverged, each naming its runs
    notes = headline.seed_notes("table", "vote_acc", [("x", [last]), ("y", [clean])])
    assert len(notes) == 1 and "seeds_counted" in notes[0] and "x: final over 2 of 3 seeds" in notes[0]
    (note,) = headline.seed_notes("plot", "ppl", [("x", [last]), ("y", [clean])])
    assert note.startswith("plot: ppl is in some rows NaN or inf: a seed diverged") \
        and "seeds_nonfinite" in note and "x: final: 1 of 3 seeds diverged" in note and "y:" not in note, note
    assert headline.seed_notes("plot", "auto", [("x", [last])]) == []
    line = headline.summary_line(tiny("seeds=3"), {**last, "acc_ensemble": 0.6})
    assert "perplexity inf (1 of 3 seeds diverged), " in line, line
    assert "diverged" not in headline.summary_line(tiny("seeds=3"), {**clean, "acc_ensemble": 0.6})


def _robustness(root, acc_ipm) -> dict:
    """A robustness study's two attacks at fraction 0.2 (alie first): ipm's acc_mean_honest `acc_ipm` seeds."""
    data = {"mean": []}
    for kind, accs in (("alie", (0.6, 0.6, 0.6)), ("ipm", acc_ipm)):
        last = aggregate([{"round": 2, "acc_mean": 0.5, "acc_mean_honest": a, "vote_acc": 0.5, "softavg_acc": 0.5,
                           "bits_per_peer": 200, "wall_s": 1.0} for a in accs], [0, 1, 2])
        d = root / kind
        _write(d, [last], {"partition": {"alpha": 0.5}, "faults": {"kind": "none", "fraction": 0.2}, "peers": 5,
                           "seeds": 3})
        data["mean"].append(({"faults.kind": kind, "partition.alpha": "0.5", "faults.fraction": "0.2"}, d))
    return data


def test_the_robustness_figure_shows_a_diverged_attack_as_the_worst_case(tmp_path):
    pytest.importorskip("matplotlib")
    from tallysim.figures import drawing, plots
    data = _robustness(tmp_path / "r", (0.3, math.nan, 0.3))
    paths = plots.draw("robustness", {}, data, tmp_path / "out" / "rb", "test")
    table = open(paths["table"]).read()
    # NaN compared false: min kept alie's 0.600 as the worst case and the diverged ipm went unseen
    assert "| mean | nan (ipm) (1 of 3 seeds diverged) |" in table, table
    with open(paths["csv"], newline="") as f:
        rows = {r["attack"]: r for r in csv.DictReader(f)}
    assert rows["ipm"]["seeds_nonfinite"] == "1 of 3 seeds diverged" and rows["alie"]["seeds_nonfinite"] == ""
    assert rows["ipm"]["seeds_counted"] == ""
    (note,) = drawing.partial_notes("robustness", data, "robustness")
    assert "NaN or inf: a seed diverged" in note and "mean ipm: final: 1 of 3 seeds diverged" in note, note
    whole = _robustness(tmp_path / "w", (0.3, 0.3, 0.3))
    assert drawing.partial_notes("robustness", whole, "robustness") == []
    assert "diverged" not in open(plots.draw("robustness", {}, whole, tmp_path / "out" / "w", "t")["table"]).read()


def test_table_and_pareto_name_the_run_whose_seed_diverged(tmp_path):
    from tallysim.results import pareto, table
    root = tmp_path / "res"
    _write(root / "gone", [_last(ppl=(10.0, 11.0, 12.0), rnd=1), _last(rnd=2)])     # seed 1 inf at the end
    _write(root / "fine", [_last(ppl=(10.0, 11.0, 12.0), rnd=1), _last(ppl=(9.0, 9.0, 9.0), rnd=2)])
    said = []
    _, rows = table.table_rows([root], log=said.append)
    assert {r["run"]: r["ppl"] for r in rows} == {"gone": math.inf, "fine": 9.0}        # the column said `inf`
    (note,) = [m for m in said if "seeds_nonfinite" in m]
    assert note.startswith("table: ppl is in some rows NaN or inf") and "gone: final: 1 of 3 seeds diverged" in note \
        and "fine" not in note, said
    said = []
    table.table_rows([root], "ppl_mean", log=said.append)
    assert any(m.startswith("table: ppl_mean is in some rows NaN or inf") for m in said), said
    # pareto ranks accuracies (a perplexity refused): a NaN there only by hand, a vote_acc here; --which final
    # skips it, said as NaN with why (it said "null (nothing scored or kept that round)")
    _write(root / "nan", [_last(rnd=1, vote=(0.7,) * 3),
                          {**_last(rnd=2, vote=(0.7,) * 3), "vote_acc": math.nan, "seeds_nonfinite": {"vote_acc": 1}}])
    said = []
    assert sorted(p["run"] for p in pareto.collect([root], "final", "vote_acc", log=said.append)) == ["fine", "gone"]
    assert any("'vote_acc' is NaN (final: 1 of 3 seeds diverged)" in m for m in said), said
    points = pareto.collect([root], "best", "vote_acc", log=said.append)
    nan = next(p for p in points if p["run"] == "nan")
    assert nan["seeds_nonfinite"] == "final: 1 of 3 seeds diverged" and nan["accuracy"] == pytest.approx(0.7)
    paths = pareto.write_tables(points, pareto.frontier(points), str(tmp_path / "p.png"), "best", "vote_acc")
    with open(paths[2], newline="") as f:
        by_run = {r["run"]: r for r in csv.DictReader(f)}
    assert by_run["nan"]["seeds_nonfinite"] == "final: 1 of 3 seeds diverged" and by_run["fine"]["seeds_nonfinite"] == ""
    front = pareto.overall_lines([nan])
    assert any("| 0.7000 (final: 1 of 3 seeds diverged) |" in line for line in front), front


def test_the_sweeps_closing_lines_name_a_run_with_a_diverged_seed(tmp_path, monkeypatch, capsys):
    from conftest import tiny
    from tallysim import cli, sweep
    rec = {"name": "gone"}
    (tmp_path / "gone").mkdir()
    sweep._done(tmp_path / "gone", rec, None, tiny("seeds=3"), [], {**_last(), "acc_ensemble": 0.6}, 1.0, lambda m: None)
    assert rec["seeds_diverged"] == "ppl_mean: 1 of 3 seeds diverged" and "(1 of 3 seeds diverged)" in rec["summary"]
    fine = {"name": "fine"}
    sweep._done(tmp_path / "gone", fine, None, tiny("seeds=3"), [], {**_last(ppl=(9.0,) * 3), "acc_ensemble": 0.6},
                1.0, lambda m: None)
    assert "seeds_diverged" not in fine
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: [{**rec, "status": "done"}, {**fine, "status": "done"}])
    assert cli.main(["sweep", "--out", str(tmp_path / "s"), "--quiet", "seed=0,1"]) == 0
    err = capsys.readouterr().err
    assert "  diverged: gone: ppl_mean: 1 of 3 seeds diverged (its mean is NaN or inf" in err and "fine" not in err, err
