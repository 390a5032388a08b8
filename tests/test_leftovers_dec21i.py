"""leftovers29: small items. 1. every table and CSV a figure (and `pareto`) writes marks a point that is a
mean over fewer seeds than its run has, as the robustness figure did alone (`*` and a footnote in Markdown,
a `seeds_counted` CSV column); 2. counts in the words sweep.json uses, their nouns in the right number;
3. a derived output refused at any depth inside a run directory, marked or not; 4. model.groups' overall
train_loss, kept as A_g / A-weighted (docs/groups.md), in numbers; 5. experiments/niid_shape.py and
wordclaim.py with argparse mains. Rows written by hand, no run."""
import csv
import json
import pathlib

import pytest

from test_figures import FAULTS_SPEC, faults_runs

pytest.importorskip("matplotlib")


def _csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _short(d: pathlib.Path, counted: dict) -> None:
    """Makes the (one-row) run `d` a 3-seed run whose `counted` keys are means over 2 seeds."""
    row = json.loads((d / "metrics.jsonl").read_text())
    (d / "metrics.jsonl").write_text(json.dumps({**row, "seeds": [0, 1, 2], "seeds_counted": counted}) + "\n")


# ----------------------------------------------------------------------------- 1. partial-seed points marked

def test_the_faults_table_and_csv_mark_a_point_over_fewer_seeds(tmp_path):
    from tallysim.figures import plots
    data = faults_runs(tmp_path)
    ov, d = data["tally"][1]                 # confident_wrong at fraction 0.2: acc_mean_honest 0.77
    _short(d, {"acc_mean_honest": 2})
    paths = plots.draw("faults", FAULTS_SPEC, data, tmp_path / "out" / "f8", "test")
    table = pathlib.Path(paths["table"]).read_text()
    assert "| confident_wrong, dirichlet 0.5 | tally | 0.800 | 0.770* | 0.600 | 0.2 |" in table, table
    assert "\\* a mean over only the seeds that have a value" in table \
        and "confident_wrong, dirichlet 0.5 tally faults.fraction=0.2: final over 2 of 3 seeds" in table
    assert table.count("*") == 2                             # the cell and its footnote, nothing else
    counted = {(r["group"], r["faults.kind"], r["faults.fraction"]): r["seeds_counted"] for r in _csv(paths["csv"])}
    assert counted.pop(("tally", "confident_wrong", "0.2")) == "acc_mean_honest final over 2 of 3 seeds"
    assert set(counted.values()) == {""}


def test_fig1s_summary_and_curves_csv_mark_it_per_row(tmp_path):
    from tallysim.figures import plots
    d = tmp_path / "tally"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"data": {"name": "synthetic"}}))
    rows = [{"round": r, "bits_per_peer": 100.0 * r, "acc_mean": a, "acc_mean_std": 0.01, "seeds": [0, 1, 2],
             **({"seeds_counted": {"acc_mean": 2}} if r == 2 else {})} for r, a in ((1, 0.5), (2, 0.6))]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    paths = plots.draw("curves", {}, {"tally": [({}, d)]}, tmp_path / "out" / "fig1", "test")
    assert [r["seeds_counted"] for r in _csv(paths["csv"])] == ["", "over 2 of 3 seeds"]     # each round its own
    table = pathlib.Path(paths["table"]).read_text()
    assert "| tally | synthetic | 0.6000 +- 0.0100* |" in table and "tally: final over 2 of 3 seeds." in table
    # the final_vs kind: its CSV (it writes no Markdown)
    paths = plots.draw("final_vs", {"x": "peers"}, {"tally": [({"peers": "3"}, d)]}, tmp_path / "out" / "fv", "t")
    assert [r["seeds_counted"] for r in _csv(paths["csv"])] == ["final over 2 of 3 seeds"]


def test_pareto_tables_mark_a_frontier_point_over_fewer_seeds(tmp_path, capsys):
    from tallysim.cli import main
    for name, counted in (("short", {"acc_mean": 2}), ("whole", None)):
        d = tmp_path / "res" / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"protocol": {"name": name}, "rounds": 1, "seeds": 3}))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 800.0, "acc_mean": 0.5,
                                                     "acc_mean_std": 0.01, "seeds": [0, 1, 2],
                                                     **({"seeds_counted": counted} if counted else {})}) + "\n")
    assert main(["pareto", str(tmp_path / "res"), "--out", str(tmp_path / "figs" / "p.png")]) == 0
    md = (tmp_path / "figs" / "p_frontier.md").read_text()
    assert "| short | 800 | 0.0001 | 0.5000* |" in md and "| whole | 800 | 0.0001 | 0.5000 |" in md, md
    assert "short: final over 2 of 3 seeds." in md
    for name in ("p_frontier.csv", "p_points.csv"):
        assert {r["run"]: r["seeds_counted"] for r in _csv(tmp_path / "figs" / name)} == \
            {"short": "final over 2 of 3 seeds", "whole": ""}, name


# ----------------------------------------------------------------------------- 2. the words of the counts

def test_counts_take_their_nouns_number():
    # the figure dry run said "1 runs, 1 compiled programs" (tests/test_extends.py and test_leftovers_dec19l pin
    # the lines; test_leftovers_dec20k the sweep's "done before", sweep.json's status)
    from tallysim.fields import count
    assert [count(n, "run") for n in (0, 1, 2)] == ["0 runs", "1 run", "2 runs"]
    assert count(1, "compiled program") == "1 compiled program" and count(3, "child", "children") == "3 children"


# ----------------------------------------------------------------------------- 3. pareto --out in a run

def _two_runs(res: pathlib.Path) -> None:
    for name in ("a", "b"):          # written by hand: no tallysim marker, as an older tallysim's runs
        (res / name).mkdir(parents=True)
        (res / name / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 1}))
        (res / name / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 800.0,
                                                              "acc_mean": 0.5}) + "\n")


@pytest.mark.parametrize("inside", ["a/p.png", "a/sub/p.png", "m/deep/er/p.png"])
def test_pareto_refuses_an_out_inside_a_run_and_says_where_to_write(inside, tmp_path, capsys):
    # only the folder the file went in was checked, and only for the marker: `pareto --out res/a/p.png` with
    # res/a a run without it, or `res/m/deep/er/p.png` below a marked run, wrote the tables into the run
    from tallysim.cli import main
    res = tmp_path / "res"
    _two_runs(res)
    (res / "m" / "deep").mkdir(parents=True)
    (res / "m" / ".tallysim-run").write_text(json.dumps({"written_by": "tallysim"}))
    before = sorted(p.relative_to(res) for p in res.rglob("*"))
    assert main(["pareto", str(res), "--out", str(res / inside)]) == 2
    err = capsys.readouterr().err.strip()
    run = res / inside.split("/")[0]
    assert len(err.splitlines()) == 1 and f"is inside the {'tallysim ' * (run.name == 'm')}run directory {run}," in err \
        and f"allowed: a path outside any run directory, such as {res}" in err, err
    assert sorted(p.relative_to(res) for p in res.rglob("*")) == before              # nothing written


def test_pareto_beside_the_runs_is_allowed_and_not_read_as_a_run(tmp_path, capsys):
    from tallysim.cli import main
    from tallysim.results import table
    res = tmp_path / "res"
    _two_runs(res)
    for _ in range(2):       # a second pareto of the folder reads its own tables as nothing
        assert main(["pareto", str(res), "--out", str(res / "p.png")]) == 0
        assert "tally: a 0.5000 @ 0.0001 MB, b 0.5000 @ 0.0001 MB" in capsys.readouterr().out
    _, rows = table.table_rows([res], log=lambda m: None)
    assert [r["run"] for r in rows] == ["a", "b"]
    # Results.plot()'s curve.png into a run stays allowed (a run file)
    assert main(["plot", str(res / "a"), "--out", str(res / "a" / "curve.png")]) == 0


# ----------------------------------------------------------------------------- 4. train_loss under groups

def test_grouped_train_loss_is_the_groups_means_weighted_by_their_peers():
    # decided and documented in docs/groups.md ("Kept so on purpose"): a peer without a step counts as its own
    # group's stepping mean, so train_loss = sum_g A_g / A * train_loss@g, not the pooled stepping mean
    import types

    import jax.numpy as jnp

    from tallysim.protocols.round_helpers import loss_info
    from tallysim.sim.local import stepped_mean_fill
    phone = stepped_mean_fill(jnp.array([4.0, 6.0, 0.0]), jnp.array([2, 3, 0]))     # means 2.0, 2.0; none
    server = stepped_mean_fill(jnp.array([3.0]), jnp.array([3]))                        # 1.0
    assert phone.tolist() == [2.0, 2.0, 2.0]                # the peer without a step: its group's mean
    groups = [types.SimpleNamespace(name="phone", a_lo=0, a_hi=3), types.SimpleNamespace(name="server", a_lo=3, a_hi=4)]
    info = loss_info(types.SimpleNamespace(model_groups=groups), jnp.concatenate([phone, server]))
    assert float(info["train_loss@phone"]) == 2.0 and float(info["train_loss@server"]) == 1.0
    assert float(info["train_loss"]) == pytest.approx(1.75)         # 3/4 x 2.0 + 1/4 x 1.0; pooled: 5/3
    # ungrouped, the same peers' mean is the stepping peers' (the fill is over all of them)
    one = stepped_mean_fill(jnp.array([4.0, 6.0, 0.0, 3.0]), jnp.array([2, 3, 0, 3]))
    assert float(loss_info(types.SimpleNamespace(model_groups=()), one)["train_loss"]) == pytest.approx(5 / 3)


# ----------------------------------------------------------------------------- 5. experiments' mains

def test_niid_shape_prints_its_run_and_wordclaim_parses_with_argparse(monkeypatch, capsys):
    # niid_shape.py did nothing when run; wordclaim.py parsed its options by hand (their --help: test_leftovers_dec21a)
    from test_leftovers_dec21a import _script
    code, out = _script(monkeypatch, capsys, "niid_shape.py", "rounds=1", "seeds=2")
    assert code in (0, None) and out.startswith("tallysim run protocol.name=fedprox") \
        and " seeds=2 rounds=1" in out and "rounds=3" not in out, out
    code, out = _script(monkeypatch, capsys, "niid_shape.py", "rounds")
    assert code == 2 and "'rounds' is not key=value" in out
    code, out = _script(monkeypatch, capsys, "wordclaim.py", "--spek")
    assert code == 2 and "usage: python experiments/wordclaim.py" in out and "unrecognized arguments: --spek" in out
