"""leftovers44 (one section per item): the bar over runs counts a run skipped as stopped on a NaN loss
before (sweep_plan.diverged_before) as done before, in a sweep and in a figure, and a figure's selection
counts it final, not missing; a figure's --only/--panel selection that completes the figure reads the
full plan's records back in silence."""
import json

from tallysim import cli, figures, progress


# ----------------------------------------------------------------------------- 1. done before: diverged runs too

def test_a_run_diverged_before_counts_as_done_before_in_the_bars(tmp_path, monkeypatch):
    """It was counted as a run still to do: the first ETA waited for a run the sweep skips at once."""
    spec = {"kind": "curves", "title": "nan",
            "base": {"peers": 2, "rounds": 1, "data": {"name": "synthetic", "train_size": 600, "test_size": 100},
                     "model": {"width": 8}, "protocol": {"name": "local"}},
            "groups": {"g": {}}, "sweep": {"optim.lr": [0.1, 1e30]}}         # one program; 1e30 diverges
    path, res = tmp_path / "nan.json", tmp_path / "res"
    path.write_text(json.dumps(spec))
    kw = dict(results=str(res), out=str(tmp_path / "fig"), log=lambda m: None)
    figures.make_figure(str(path), progress=False, **kw)                # drawn without the diverged run
    assert [d.name for d in (res / "nan" / "g").iterdir() if (d / "error.txt").is_file()] == ["optim.lr=1e+30"]
    told = []
    monkeypatch.setattr(progress, "runs_bar", lambda total, enabled, desc="runs", done_before=0:
                        told.append((desc, total, done_before)))       # None: no bar drawn
    figures.make_figure(str(path), progress=True, **kw)
    # the figure's bar over its runs, then (the spy drew none, so run_sweep opens its own) the sweep's:
    # each was told 1 done before, the diverged run counted as one to do
    assert told == [("nan runs", 2, 2), ("runs", 2, 2)]
    # a selection that holds it draws the figure: the run is final, not missing (it said "not drawn:
    # groups still missing runs: g (1)" however often it ran)
    out = figures.make_figure(str(path), progress=False, only="g", **kw)
    assert "missing" not in out and (tmp_path / "fig" / "nan.png").is_file(), out


# ----------------------------------------------------------------------------- 2. a selection's second pass

def test_a_selection_that_completes_the_figure_reads_it_back_quietly(tmp_path, capsys):
    """The second pass over the full plan printed "[1/2] skip a (done)" for each of the figure's runs and
    a second bar, already full, under the first."""
    from test_figure_only_dec25i import _figure
    path, res, fig = _figure(tmp_path), tmp_path / "res", tmp_path / "fig"
    args = ["figure", path, "--results", str(res), "--out", str(fig)]
    assert cli.main(args + ["--only", "tally", "--quiet"]) == 0         # half the figure: not drawn
    capsys.readouterr()
    assert cli.main(args + ["--only", "fedavg"]) == 0                   # the other half: drawn now
    said = capsys.readouterr()
    assert fig.joinpath("tiny.png").stat().st_size > 100 and "tiny: wrote" in said.out
    assert "skip" not in said.out, said.out                             # was four "[i/2] skip NAME (done)"
    bars = [ln for ln in said.err.splitlines() if ln.startswith("tiny runs ")]
    assert bars and all(ln.startswith("tiny runs ") and "/2 " in ln for ln in bars), said.err   # not "/4"
    assert said.out.count("tiny: group ") == 1                          # the selection's one group only
