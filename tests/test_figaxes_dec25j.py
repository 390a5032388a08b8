"""figaxes47 (2026-12-07): every figure kind tells apart the values of an axis a group sweeps of its own
besides the ones the kind draws (a group's `sweep` of `distill.weight=0.5,1`). userjourney14 fixed
final_vs; classes, faults, privacy, robustness, model_groups and mechanism merged the two values: one
zigzag line (robustness: one cell, the last run's accuracy kept) and CSV rows told apart by nothing.
Runs are faked as files (config.json, metrics.jsonl): no compile."""
import csv
import json
import pathlib

import pytest

W = "distill.weight"


def _run(d: pathlib.Path, cfg: dict, **row) -> pathlib.Path:
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"data": {"name": "synthetic"}, "peers": 2, **cfg}))
    (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 800.0, "bits_up": 400.0,
                                                 **row}) + "\n")
    (d / "partition.json").write_text(json.dumps({"class_counts": [[1] * 4, [1] * 4]}))
    return d


def _csv(paths) -> list:
    with open(paths["csv"], newline="") as f:
        return list(csv.DictReader(f))


def _draw(kind, spec, data, tmp_path):
    from tallysim.figures import plots
    return plots.draw(kind, spec, data, tmp_path / "out" / kind, "t")


def _two(tmp_path, x_ov: list, cfg=None, **row):
    """A group `tally` whose runs sweep distill.weight=0.5,1 at each of the overrides `x_ov`; the
    accuracy is the weight (told apart in the CSV)."""
    return {"tally": [({**ov, W: w}, _run(tmp_path / f"r{i}_{w}", cfg or {}, acc_mean=float(w), **row))
                      for i, ov in enumerate(x_ov) for w in ("0.5", "1")]}


@pytest.fixture(autouse=True)
def _mpl():
    pytest.importorskip("matplotlib")


def test_classes_draws_a_line_per_value(tmp_path):
    data = _two(tmp_path, [{"data.num_classes": "4"}], {"participation": 1.0, "probe": {"per_round": 50}})
    rows = _csv(_draw("classes", {"target": 0.9}, data, tmp_path))
    assert [(r["group"], r[W], r["final_accuracy"]) for r in rows] == [
        ("tally distill.weight=0.5", "0.5", "0.5"), ("tally distill.weight=1", "1", "1.0")]


def test_faults_draws_a_line_per_value_and_tables_each(tmp_path):
    data = _two(tmp_path, [{"faults.fraction": f, "faults.kind": "random", "partition.kind": "iid"}
                           for f in ("0", "0.2")], vote_acc=0.4)
    paths = _draw("faults", {}, data, tmp_path)
    rows = _csv(paths)
    assert [(r["group"], r[W], r["faults.fraction"], r["accuracy"]) for r in rows] == [
        ("tally distill.weight=0.5", "0.5", "0.0", "0.5"), ("tally distill.weight=0.5", "0.5", "0.2", "0.5"),
        ("tally distill.weight=1", "1", "0.0", "1.0"), ("tally distill.weight=1", "1", "0.2", "1.0")]
    table = pathlib.Path(paths["table"]).read_text()
    assert "| random, iid | tally distill.weight=1 | 1.000 | 1.000 | 0.2 |" in table, table


def test_privacy_draws_a_line_per_value(tmp_path):
    data = _two(tmp_path, [{"partition.alpha": "0.1"}], {"privacy": {"noise": 1.0}}, epsilon=3.0)
    rows = _csv(_draw("privacy", {}, data, tmp_path))
    assert [(r["group"], r[W], r["accuracy"]) for r in rows] == [
        ("tally distill.weight=0.5", "0.5", "0.5"), ("tally distill.weight=1", "1", "1.0")]


def test_robustness_keeps_each_value_a_row_of_its_own(tmp_path):
    data = _two(tmp_path, [{"partition.alpha": "0.1", "faults.fraction": "0.2", "faults.kind": "random"}],
                {"partition": {"alpha": 0.1}, "faults": {"fraction": 0.2, "kind": "random"}})
    rows = _csv(_draw("robustness", {}, data, tmp_path))
    assert [(r["group"], r["accuracy"]) for r in rows] == [
        ("tally distill.weight=0.5", "0.5"), ("tally distill.weight=1", "1.0")]


def test_mechanism_panels_say_the_value(tmp_path):
    data = _two(tmp_path, [{"partition.alpha": "0.1"}], vote_acc=0.4, softavg_acc=0.5, wrong_confidence=0.6,
                agreement=0.7)
    rows = _csv(_draw("mechanism", {}, data, tmp_path))
    assert [(r["partition.alpha"], r[W]) for r in rows] == [("0.1", "0.5"), ("0.1", "1")]


def test_model_groups_draws_a_line_per_value(tmp_path):
    cfg = {"model": {"groups": "a:1:mlp;b:1:mlp"}, "protocol": {"name": "tally"}}
    data = {"tally": [({W: w}, _run(tmp_path / f"m{w}", cfg, **{"acc_mean": 0.3, "acc_mean@a": float(w), "acc_mean@b": 0.2,
                                                                  "bits_per_peer@a": 8.0, "bits_per_peer@b": 8.0}))
                      for w in ("0.5", "1")]}
    rows = _csv(_draw("model_groups", {}, data, tmp_path))
    assert [(r["protocol"], r["model_group"], r["accuracy"]) for r in rows] == [
        ("tally distill.weight=0.5", "a", "0.5"), ("tally distill.weight=0.5", "b", "0.2"),
        ("tally distill.weight=1", "a", "1.0"), ("tally distill.weight=1", "b", "0.2")]


def test_curves_and_vocab_already_tell_the_values_apart(tmp_path):
    # a line per run, labelled with its overrides; the CSV's run (curves) or group (vocab) column differs
    data = _two(tmp_path, [{}])
    assert len({r["run"] for r in _csv(_draw("curves", {}, data, tmp_path))}) == 2
    assert {r["group"] for r in _csv(_draw("vocab", {}, data, tmp_path))} == {
        "tally distill.weight=0.5", "tally distill.weight=1"}
