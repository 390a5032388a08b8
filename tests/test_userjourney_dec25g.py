"""userjourney14 (2026-12-07): a researcher's own study, followed from the README and docs/ alone."""
import csv
import json
import pathlib

import pytest


def _run(d: pathlib.Path, acc: float) -> pathlib.Path:
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"data": {"name": "synthetic"}}))
    (d / "metrics.jsonl").write_text(json.dumps({"round": 2, "bits_per_peer": 800.0, "acc_mean": acc}) + "\n")
    return d


def test_final_vs_draws_a_line_per_value_of_a_groups_own_sweep_axis(tmp_path):
    """A final_vs figure whose group sweeps a knob of its own (docs/figures.md's `groups` ... `sweep`) drew
    both knob values as one zigzag line and wrote CSV rows that differed only in their numbers."""
    pytest.importorskip("matplotlib")
    from tallysim.figures import plots
    runs = {"tally": [({"partition.alpha": a}, _run(tmp_path / f"t{a}", 0.3)) for a in ("0.1", "1.0")],
            "confvote": [({"partition.alpha": a, "confvote.power": p}, _run(tmp_path / f"c{a}_{p}", float(p) / 10))
                         for a in ("0.1", "1.0") for p in ("1", "4")]}
    paths = plots.draw("final_vs", {"x": "partition.alpha"}, runs, tmp_path / "out" / "fv", "t")
    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["group"], r["confvote.power"], r["accuracy"]) for r in rows] == [
        ("tally", "", "0.3"), ("tally", "", "0.3"),
        ("confvote confvote.power=1", "1", "0.1"), ("confvote confvote.power=1", "1", "0.1"),
        ("confvote confvote.power=4", "4", "0.4"), ("confvote confvote.power=4", "4", "0.4")]


ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_text_first_run_numbers_are_the_commands_own():
    """docs/text.md's first character run gave 0.1822 and perplexity 42.8 as a result: 0.1822 is the floor
    (always the space) and 42.8 was round 4 of another, older run; the command as written gives 46.45, and
    softlabel beside it leaves 7 of 10 peers at the floor. The numbers against the runs' CSV."""
    with open(ROOT / "docs" / "figures" / "text_first_run.csv", newline="") as f:
        run = {r["protocol"]: r for r in csv.DictReader(f)}
    page = (ROOT / "docs" / "text.md").read_text()
    text = " ".join(page[page.index("## A first run"):page.index("**Read every accuracy on words")].split())
    t, s = run["tally"], run["softlabel"]
    assert t["acc_mean"] == t["majority_acc"] == "0.1822"          # tally at the floor, as the page now says
    assert (f"tally {t['acc_mean']} next-character accuracy, **the floor**" in text
            and f"perplexity {float(t['ppl_mean']):.1f}, at {int(t['bits_per_peer']) // 8:,} bytes per peer" in text)
    assert f"round 4 is the same {t['ppl_mean']}" in text             # the 8-round run's round 4 (no schedule)
    assert (f"`protocol.name=softlabel` {s['acc_mean']} (perplexity {s['ppl_mean']}) at "
            f"{int(s['bits_per_peer']) / 8e6:.3f} MB per peer, with {s['peers_at_floor']} of its {s['peers']} peers" in text)
