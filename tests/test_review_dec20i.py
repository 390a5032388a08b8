"""review22 on the merges after 91b70b5: a multi-seed row's mean over only the seeds that have a value
(leftovers26's `seeds_counted`) reached `tallysim table`, `plot` and `pareto` as a number like any other:
`table --metric vote_acc` of a 3-seed dropout run showed the final mean of 2 seeds, and a final_std over
them, with no word; each now says which runs and over how many seeds. Rows written by hand, no run."""
import json

import pytest

from tallysim.results import headline, plot, table


def _run(d, vote_accs: list, counted: list, seeds=(0, 1, 2)) -> None:
    """A 3-seed run's rows, one per round: vote_acc the mean over `counted[i]` seeds (None: every seed)."""
    d.mkdir(parents=True)
    rows = [{"round": i + 1, "bits_per_peer": 1000.0 * (i + 1), "acc_mean": 0.5, "acc_mean_std": 0.01,
             "vote_acc": v, "vote_acc_std": 0.02, "seeds": list(seeds), "wall_s": 1.0,
             **({} if c is None else {"seeds_counted": {"vote_acc": c}})}
            for i, (v, c) in enumerate(zip(vote_accs, counted))]
    (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": len(rows), "seeds": 3}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_partial_seeds_says_the_final_and_the_earlier_partial_means():
    row = {"seeds": [0, 1, 2], "vote_acc": 0.6}
    assert headline.partial_seeds([row, {**row, "seeds_counted": {"vote_acc": 2}}], "vote_acc") \
        == "final over 2 of 3 seeds"
    assert headline.partial_seeds([{**row, "seeds_counted": {"vote_acc": 1}}, row], "vote_acc") \
        == "some evaluations over fewer seeds"                 # the best may be one of them
    assert headline.partial_seeds([row, row], "vote_acc") == ""
    assert headline.partial_seeds([{**row, "seeds_counted": {"tied": 1}}], "vote_acc") == ""     # another key
    assert headline.partial_seeds([], "vote_acc") == ""
    # auto reads the headline key of each row (acc_mean here), ppl the headline model's perplexity
    assert headline.partial_seeds([{**row, "acc_mean": 0.5, "seeds_counted": {"acc_mean": 2}}]) \
        == "final over 2 of 3 seeds"
    assert headline.partial_seeds([{**row, "acc_mean": 0.5, "seeds_counted": {"ppl_mean": 2}}], "ppl") \
        == "final over 2 of 3 seeds"


def test_table_and_plot_say_which_runs_hold_a_mean_over_fewer_seeds(tmp_path, capsys):
    _run(tmp_path / "res" / "partial", [0.5, 0.6], [None, 2])
    _run(tmp_path / "res" / "earlier", [0.5, 0.6], [1, None])
    _run(tmp_path / "res" / "whole", [0.5, 0.6], [None, None])
    said = []
    cols, rows = table.table_rows([tmp_path / "res"], metric="vote_acc", log=said.append)
    assert {r["run"]: r["final vote_acc"] for r in rows} == {"partial": 0.6, "earlier": 0.6, "whole": 0.6}
    notes = [m for m in said if "seeds_counted" in m]
    assert len(notes) == 1, said
    assert "partial: final over 2 of 3 seeds" in notes[0] and "earlier: some evaluations over fewer seeds" \
        in notes[0] and "whole" not in notes[0]
    assert notes[0].startswith("table: vote_acc is in some rows a mean over only the seeds that have a value")
    # every mean over every seed: no note
    said.clear()
    table.table_rows([tmp_path / "res" / "whole"], metric="vote_acc", log=said.append)
    assert not [m for m in said if "seeds_counted" in m]
    # the plot draws the same means and bands: it says so on stderr
    pytest.importorskip("matplotlib")
    plot.plot_curves([str(tmp_path / "res" / n) for n in ("partial", "earlier", "whole")], str(tmp_path / "c.png"),
                     "vote_acc")
    err = capsys.readouterr().err
    assert "plot: vote_acc is in some rows" in err and "(partial): final over 2 of 3 seeds" in err, err
    plot.plot_curves([str(tmp_path / "res" / "whole")], str(tmp_path / "w.png"), "vote_acc")
    assert "seeds_counted" not in capsys.readouterr().err


def test_pareto_says_which_points_are_means_over_fewer_seeds(tmp_path):
    from tallysim.results import pareto
    _run(tmp_path / "res" / "partial", [0.5, 0.6], [None, 2])
    _run(tmp_path / "res" / "whole", [0.5, 0.7], [None, None])
    said = []
    points = pareto.collect([tmp_path / "res"], metric="vote_acc", log=said.append)
    assert sorted(p["accuracy"] for p in points) == [0.6, 0.7]
    notes = [m for m in said if "seeds_counted" in m]
    assert len(notes) == 1 and notes[0].startswith("pareto: vote_acc is in some rows") and \
        "partial: final over 2 of 3 seeds" in notes[0] and "whole" not in notes[0], said
