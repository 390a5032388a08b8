"""docs/api.md, "Protocols at matched bits" (2026-12-07, userjourney13): a notebook user reading a sweep had
read_rows, plots and the Pareto front, but no documented way to set protocols side by side at one budget of
bits. The page's snippet is run here as written, on two hand-made runs (no JAX, nothing trained): each
run's last evaluation within the budget, and a run whose first evaluation is over it said in words; before it,
the plot of the sweep's runs (plot_curves refuses the sweep's own directory, naming its runs)."""
import contextlib
import io
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _snippet() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    after = text.split("Protocols at matched bits:", 1)[1]
    return re.search(r"```python\n(.*?)```", after, re.S).group(1)


def _run(d: Path, protocol: str, per_round: int, accs: list) -> None:
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": protocol}, "peers": 4, "rounds": len(accs)}))
    rows = [{"round": i + 1, "bits_up": 2 * per_round * (i + 1), "bits_down": 2 * per_round * (i + 1),
             "bits_per_peer": float(per_round * (i + 1)), "acc_mean": a, "acc_global": None}
            for i, a in enumerate(accs)]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "done.json").write_text("{}")


def test_the_matched_bits_snippet_runs_as_written(tmp_path, monkeypatch):
    code = _snippet()
    assert 'read_rows("results/alpha")' in code and "budget = 200_000" in code, code
    _run(tmp_path / "results" / "alpha" / "protocol.name=tally", "tally", 1_600, [0.21, 0.25, 0.30])
    _run(tmp_path / "results" / "alpha" / "protocol.name=softlabel", "softlabel", 128_000, [0.18, 0.40])
    _run(tmp_path / "results" / "alpha" / "protocol.name=fedavg", "fedavg", 3_000_000, [0.50])
    # an evaluation exactly at the budget is within it (review29: `<` for `<=` in the snippet passed)
    _run(tmp_path / "results" / "alpha" / "protocol.name=cfd", "cfd", 100_000, [0.30, 0.35, 0.40])
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/api.md", "exec"), {"__name__": "__main__"})
    assert out.getvalue().splitlines() == [
        "protocol.name=cfd 0.3500 at round 2",             # 200,000 bits by round 2: at the budget
        "protocol.name=fedavg no evaluation within 200,000 bits",
        "protocol.name=softlabel 0.1800 at round 1",       # 256,000 bits by round 2: over the budget
        "protocol.name=tally 0.3000 at round 3"], out.getvalue()
    assert (tmp_path / "alpha.png").is_file() and (tmp_path / "alpha.csv").is_file()     # the plot, one line a run
    assert len({row.split(",")[0] for row in (tmp_path / "alpha.csv").read_text().splitlines()[1:]}) == 4
