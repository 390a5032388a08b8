"""testtime49: the test suite's time, and what it found in the code. An unpaneled pareto figure was
drawn and laid out twice, once for its .png and again for its .pdf (figures/plots.pareto_drawn called
results/pareto.plot per file): about 0.4 s of CPU per figure, for users and in every test that draws one.
Now drawn once and written twice, the files as before."""
from tallysim.figures import plots
from tallysim.results import pareto


def _points() -> list[dict]:
    """Three runs of two protocols as pareto.collect returns them (the keys the drawing and tables read)."""
    out = []
    for proto, run, bits, acc in (("tally", "a", 1e4, 0.61), ("tally", "b", 2e4, 0.66), ("fedavg", "c", 1e6, 0.72)):
        out.append({"protocol": proto, "run": run, "dir": f"res/{proto}/{run}", "bits_per_peer": bits,
                    "MB_per_peer": bits / 8e6, "accuracy": acc, "accuracy_final": acc, "accuracy_best": acc,
                    "seeds": None, "accuracy_final_std": None, "seeds_counted": ""})
    return out


def test_an_unpaneled_pareto_figure_is_drawn_once_for_its_png_and_pdf(tmp_path, monkeypatch):
    drawn, real = [], pareto.draw

    def spy(ax, *a, **k):
        drawn.append(ax)
        return real(ax, *a, **k)
    monkeypatch.setattr(pareto, "draw", spy)
    out = plots.pareto_drawn({"kind": "pareto"}, _points(), tmp_path / "fig", "two protocols")
    assert len(drawn) == 1, "the .png and the .pdf are one drawing"
    assert out["png"] == str(tmp_path / "fig.png") and out["pdf"] == str(tmp_path / "fig.pdf")
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "fig.pdf").read_bytes()[:5] == b"%PDF-"
    # the tables beside it as before: every run on the frontier here (tally's two and FedAvg's one)
    assert "; 3 of 3 runs." in (tmp_path / "fig_frontier.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.pdf", "fig.png", "fig_frontier.csv", "fig_frontier.md",
                                                          "fig_points.csv"]


def test_pareto_plot_writes_every_path_it_is_given(tmp_path):
    points = _points()
    front = pareto.frontier(points)
    assert pareto.plot(points, front, str(tmp_path / "a.png"), also=(str(tmp_path / "a.pdf"),)) == str(tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 100 and (tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    assert pareto.plot(points, front, str(tmp_path / "b.png")) == str(tmp_path / "b.png")     # one file, as before
    assert not (tmp_path / "b.pdf").exists()
