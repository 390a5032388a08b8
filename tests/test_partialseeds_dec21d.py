"""Partial-seed means beyond table/plot/pareto (review22 marked those): a multi-seed row's mean over only
the seeds that have a value (aggregate's `seeds_counted`) reached the TensorBoard/MLflow scalars, the
figures (robustness's worst cases, mechanism's vote_acc, ...) and the summary line unmarked, and the
summary's by-group part had no std. Rows written by hand, no run; no TensorBoard or MLflow needed."""
import csv
import json
import sys
import types

import pytest

from tallysim import tracking
from tallysim.results import headline


def _row(rnd: int, vote_acc, counted=None, seeds=(0, 1, 2)) -> dict:
    return {"round": rnd, "acc_mean": 0.5, "acc_mean_std": 0.01, "vote_acc": vote_acc, "vote_acc_std": 0.02,
            "bits_per_peer": 100.0 * rnd, "seeds": list(seeds), "wall_s": 1.0,
            **({} if counted is None else {"seeds_counted": counted})}


# ----------------------------------------------------------------------------- 1. TensorBoard and MLflow

class _Writer:
    def __init__(self):
        self.rows = []

    def start(self, name, hparams):
        pass

    def row(self, step, scalars):
        self.rows.append((step, scalars))

    def image(self, tag, png):
        pass

    def close(self):
        pass


def test_a_tracker_logs_over_how_many_seeds_each_short_mean_is():
    w = _Writer()
    t = tracking.RunTracker(tracking.Config(), None, [w])
    for r in (_row(1, 0.6), _row(2, 0.7, {"vote_acc": 2}), _row(3, 0.5), _row(4, None), _row(5, 0.4, {"vote_acc": 1})):
        t.row(r)
    t.close()
    got = {step: s.get("seeds_counted/vote_acc") for step, s in w.rows}
    # nothing while every mean is over every seed; from the first short row on, every row: 2, then 3 (whole),
    # 0 (null for every seed: no vote_acc point), 1
    assert got == {1: None, 2: 2.0, 3: 3.0, 4: 0.0, 5: 1.0}
    assert w.rows[1][1]["vote_acc"] == 0.7 and "vote_acc" not in w.rows[3][1]    # the mean itself, as before
    assert not [k for _, s in w.rows for k in s if k.startswith("seeds_counted/") and k != "seeds_counted/vote_acc"]
    # one seed (aggregate returns the seed's own row): no count at all
    assert tracking.seeds_counted({"round": 1, "vote_acc": 0.5}, set()) == {}


def test_mlflow_gets_the_count_under_a_name_it_accepts(monkeypatch):
    import re
    calls = []
    fake = types.SimpleNamespace(**{name: (lambda name: lambda *a, **k: calls.append((name, a, k)))(name)
                                    for name in ("set_experiment", "start_run", "log_params", "log_metrics",
                                                 "log_artifact", "end_run")})
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    t = tracking.RunTracker(tracking.Config(), None, [tracking.MLflowWriter("exp")])
    # a model group's columns too: MLflow refuses "@" in a name (acc_mean@phone raised at the first row)
    t.row({**_row(2, 0.7, {"vote_acc": 2, "acc_mean@phone": 1}), "acc_mean@phone": 0.4, "bits_per_peer@phone": 8})
    t.close()
    (metrics,) = [c[1][0] for c in calls if c[0] == "log_metrics"]
    assert metrics["seeds_counted/vote_acc"] == 2.0 and metrics["vote_acc"] == 0.7
    assert metrics["acc_mean/phone"] == 0.4 and metrics["seeds_counted/acc_mean/phone"] == 1.0
    assert metrics["bits_per_peer/phone"] == 8.0
    assert all(re.fullmatch(r"[/\w.\- ]+", k) for k in metrics), sorted(metrics)       # MLflow's names


# ----------------------------------------------------------------------------- 2. the figures

def _runs(root, counted: dict) -> dict:
    """A robustness study's runs (one group, two attacks at fraction 0.2): last rows with acc_mean_honest,
    `counted[attack]` its seeds_counted (None: every seed)."""
    data = {"mean": []}
    for kind, a in (("alie", 0.6), ("ipm", 0.3)):
        d = root / "mean" / kind
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"partition": {"alpha": 0.5}, "faults": {"kind": "none", "fraction": 0.2},
                                                   "peers": 5, "seeds": 3}))
        row = {**_row(2, a), "acc_mean_honest": a, "acc_mean_honest_std": 0.0, "softavg_acc": a,
               "wrong_confidence": 0.5, "agreement": 0.9,
               **({} if counted.get(kind) is None else {"seeds_counted": {"acc_mean_honest": counted[kind],
                                                                           "vote_acc": counted[kind]}})}
        (d / "metrics.jsonl").write_text(json.dumps(row) + "\n")
        data["mean"].append(({"faults.kind": kind, "partition.alpha": "0.5", "faults.fraction": "0.2"}, d))
    return data


def test_the_robustness_figure_marks_a_worst_case_over_fewer_seeds(tmp_path):
    pytest.importorskip("matplotlib")
    from tallysim.figures import drawing, plots
    data = _runs(tmp_path / "r", {"ipm": 2})
    paths = plots.draw("robustness", {}, data, tmp_path / "out" / "rb", "test")
    md = open(paths["table"]).read()
    assert "| mean | 0.300 (ipm)* |" in md and "mean a=0.5 f=0.2 (ipm): final over 2 of 3 seeds" in md, md
    with open(paths["csv"], newline="") as f:
        rows = {r["attack"]: r for r in csv.DictReader(f)}
    assert rows["ipm"]["seeds_counted"] == "final over 2 of 3 seeds" and rows["alie"]["seeds_counted"] == ""
    notes = drawing.partial_notes("robustness", data, "robustness")
    assert len(notes) == 1 and notes[0].startswith("robustness: the headline accuracy is in some rows a mean") \
        and "mean ipm: final over 2 of 3 seeds" in notes[0] and "alie" not in notes[0], notes
    # a short alie run beside a whole ipm (the worst): the CSV says it, the worst case is not marked
    whole = _runs(tmp_path / "w", {"alie": 1})
    md = open(plots.draw("robustness", {}, whole, tmp_path / "out" / "w", "t")["table"]).read()
    assert "| mean | 0.300 (ipm) |" in md and "*" not in md
    # every seed everywhere: no note, no mark
    assert drawing.partial_notes("robustness", _runs(tmp_path / "n", {}), "robustness") == []


def test_every_figure_kind_names_its_short_points_by_the_keys_it_draws(tmp_path):
    from tallysim.figures import drawing
    data = _runs(tmp_path / "r", {"ipm": 2})                 # acc_mean_honest and vote_acc short, acc_mean whole
    mech = drawing.partial_notes("mechanism", data, "fig4")
    assert len(mech) == 1 and mech[0].startswith("fig4: vote_acc is in some rows") and "mean ipm" in mech[0]
    faults = drawing.partial_notes("faults", data, "fig8")
    assert [n.split(" is in")[0] for n in faults] == ["fig8: the headline accuracy", "fig8: vote_acc"]
    assert drawing.partial_notes("curves", data, "fig1") == []          # it draws acc_mean: every seed
    assert drawing.partial_notes("speed", [{"model": "mlp"}], "speed") == []
    groups = _runs(tmp_path / "g", {})
    d = groups["mean"][0][1]
    (d / "metrics.jsonl").write_text(json.dumps({**_row(2, 0.5), "acc_mean@phone": 0.4,
                                                 "seeds_counted": {"acc_mean@phone": 1}}) + "\n")
    (note,) = drawing.partial_notes("model_groups", groups, "fig12")
    assert note.startswith("fig12: acc_mean@phone is in some rows") and "mean alie: final over 1 of 3" in note


# ----------------------------------------------------------------------------- 3. the summary line

def test_the_summary_gives_each_groups_std_and_a_short_mean_its_seeds():
    from conftest import tiny
    last = {"round": 2, "bits_per_peer": 16000.0, "acc_mean": 0.66, "acc_mean_std": 0.02, "acc_ensemble": 0.69,
            "acc_global": None, "acc_mean@phone": 0.65, "acc_mean@phone_std": 0.01, "acc_mean@server": 0.692,
            "acc_mean@server_std": 0.004, "wall_s": 3.0, "seeds": [0, 1, 2], "seeds_counted": {"acc_mean@server": 2}}
    line = headline.summary_line(tiny("protocol.name=tally", "seeds=3"), last)
    assert "accuracy 0.6600 +- 0.0200 (peer mean" in line, line
    assert "by group: phone 0.6500 +- 0.0100, server 0.6920 +- 0.0040 (final over 2 of 3 seeds))" in line, line
    short = headline.summary_line(tiny("seeds=3"), {**last, "seeds_counted": {"acc_mean": 2}})
    assert "accuracy 0.6600 +- 0.0200 (final over 2 of 3 seeds) (peer mean" in short, short


def test_tallysim_figure_says_the_note_after_drawing(tmp_path, monkeypatch):
    # make_figure's wiring: the runs (their sweep faked: rows by hand, nothing compiled) hold a short vote_acc
    pytest.importorskip("matplotlib")
    from tallysim import figures

    def run_sweep(cfg, runs, out_dir, **kw):
        for i, (name, _) in enumerate(runs):
            d = out_dir / name
            d.mkdir(parents=True)
            (d / "metrics.jsonl").write_text(json.dumps({**_row(1, 0.5), "softavg_acc": 0.4, "wrong_confidence": 0.5,
                                                         "agreement": 0.9, **({"seeds_counted": {"vote_acc": 2}}
                                                                              if i == 0 else {})}) + "\n")
            (d / "config.json").write_text("{}")
        return [{"name": name, "status": "done"} for name, _ in runs]
    monkeypatch.setattr(figures.sweep, "run_sweep", run_sweep)
    spec = {"kind": "mechanism", "title": "t", "x": "partition.alpha",
            "base": {"peers": 3, "rounds": 1, "seeds": 3, "probe": {"per_round": 32, "pool_size": 100},
                     "data": {"name": "synthetic", "train_size": 600, "test_size": 100}, "model": {"width": 8},
                     "partition": {"kind": "dirichlet", "alpha": 0.1}},
            "groups": {"tally": {"protocol": {"name": "tally"}}}, "sweep": {"partition.alpha": [0.1, 100]},
            "smoke": {}}
    (tmp_path / "mech.json").write_text(json.dumps(spec))
    said = []
    figures.make_figure(str(tmp_path / "mech.json"), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                        progress=False, log=said.append)
    notes = [m for m in said if "seeds_counted" in m]
    assert len(notes) == 1 and notes[0].startswith("mech: vote_acc is in some rows") \
        and "final over 2 of 3 seeds" in notes[0], said


def test_table_names_a_groups_final_over_fewer_seeds(tmp_path):
    from tallysim.results import table
    for name, counted in (("short", {"acc_mean@phone": 2}), ("whole", None)):
        d = tmp_path / "res" / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 1, "seeds": 3}))
        row = {**_row(1, 0.5), "acc_mean@phone": 0.4, "acc_mean@phone_std": 0.03,
               **({} if counted is None else {"seeds_counted": counted})}
        (d / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    said = []
    cols, rows = table.table_rows([tmp_path / "res"], log=said.append)
    assert "final_std@phone" in cols and {r["run"]: r["final_std@phone"] for r in rows} == {"short": 0.03, "whole": 0.03}
    notes = [m for m in said if "seeds_counted" in m]
    assert len(notes) == 1 and notes[0].startswith("table: acc_mean@phone is in some rows") \
        and "short: final over 2 of 3 seeds" in notes[0] and "whole" not in notes[0], said
