"""Derived outputs (figures' and pareto's CSV and markdown tables, images) are written atomically: the
same bytes as the plain writes they replaced, a destination that is a symbolic link refused before
anything is written, no temporary file left behind, a user's regular file at the path replaced whole
(docs/cli.md, "Your files are safe")."""
import hashlib
import json
import pathlib

import pytest

from tallysim import atomic, figures
from tallysim.cli import main
from tallysim.config import ConfigError
from tallysim.figures import plots
from tallysim.results import metrics
from tallysim.results.plot import plot_curves
from test_figures import FAULTS_SPEC, faults_runs
from test_pareto import _row, _write_run

# sha256 of each file as main at 1ca3d39 (plain `open(path, "w", newline="")` / `Path.write_text`)
# wrote it from the fixtures below, the run directories' absolute path replaced by ROOT.
BEFORE = {
    # its bits_per_peer column whole since 2026-12-06 (10, not 10.0: one bit-count format, metrics.bits_text);
    # every CSV below: an empty `seeds_counted` column appended on 2026-12-07 (leftovers29; without it, the
    # bytes are the old ones, checked), the rest as before; and an empty `seeds_nonfinite` column after it
    # (nonfinite, 2026-12-07: each CSV line without its last field is the bytes before, checked)
    "out/f8.csv": "adad02d564f46afc3af38d94e71e1b3c7db071ada95f4244d80a296d428b5bef",
    "out/f8_table.md": "63a2d79d61dfa1a4d94dcf4985f38988a9364e48e1d3a5fe6c19d4c3c2bac03b",
    "figs/pareto_frontier.csv": "4d55e26b5447625002a7e43ab98cd0d948810926ee559d9e44181e8f2425bcfd",
    "figs/pareto_frontier.md": "b6b630b4c4c02fb96713c03c88b1905f5a777d87852277962fcfa9a3115d22f0",
    # two columns appended on 2026-12-06 (seeds, accuracy_final_std: userjourney3), the rest as before
    "figs/pareto_points.csv": "976b7d09260dc01641c1b6ec5309a9b9fd454a9a17a3b623920ad9c2f2dfd7cf",
}


def _pareto_runs(root: pathlib.Path) -> pathlib.Path:
    """tests/test_pareto.runs without its failed run."""
    runs = root / "results"
    _write_run(runs / "sw" / "protocol.name=tally", "tally", [_row(1, 400, 0.5), _row(2, 800, 0.7), _row(3, 1200, 0.6)])
    _write_run(runs / "sw" / "protocol.name=fedavg", "fedavg", [_row(1, 1e6, 0.3, 0.55), _row(2, 2e6, 0.2, 0.65)])
    _write_run(runs / "deep" / "a" / "b" / "loc", "local", [_row(1, 0, 0.4), _row(2, 0, 0.45)])
    return runs


def _temps(d: pathlib.Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


def test_tables_are_the_bytes_the_plain_writes_made(tmp_path):
    plots.draw("faults", FAULTS_SPEC, faults_runs(tmp_path), tmp_path / "out" / "f8", "test")
    assert main(["pareto", str(_pareto_runs(tmp_path)), "--out", str(tmp_path / "figs" / "pareto.png"),
                 "--which", "best"]) == 0
    for name, digest in BEFORE.items():
        data = (tmp_path / name).read_bytes().replace(str(tmp_path).encode(), b"ROOT")
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert (tmp_path / "out" / "f8.csv").read_bytes().count(b"\r\n") == 13      # csv's own line ends kept
    assert _temps(tmp_path / "out") == [] and _temps(tmp_path / "figs") == []


def test_pareto_refuses_a_linked_table_before_writing_anything(tmp_path, capsys):
    runs, figs = _pareto_runs(tmp_path), tmp_path / "figs"
    figs.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("mine\n")
    (figs / "pareto_points.csv").symlink_to(precious)
    assert main(["pareto", str(runs), "--out", str(figs / "pareto.png")]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert precious.read_text() == "mine\n" and (figs / "pareto_points.csv").is_symlink()
    assert sorted(p.name for p in figs.iterdir()) == ["pareto_points.csv"]     # no image, no table, no temp


def test_each_write_refuses_a_link_and_leaves_no_temporary_file(tmp_path):
    """The writes themselves refuse a link (a figure's outputs, made by whichever kind draws them)."""
    precious = tmp_path / "precious.txt"
    precious.write_text("mine\n")
    for name in ("t.csv", "t.md", "t.png"):
        (tmp_path / name).symlink_to(precious)
    with pytest.raises(ConfigError, match="symbolic link"):
        atomic.write_csv(tmp_path / "t.csv", ["a"], [{"a": 1}])
    with pytest.raises(ConfigError, match="symbolic link"):
        atomic.write_text(tmp_path / "t.md", "| a |\n")
    fig, _ = metrics.pyplot().subplots()
    with pytest.raises(ConfigError, match="symbolic link"):
        metrics.save_figure(fig, tmp_path / "t.png")
    metrics.pyplot().close(fig)
    assert precious.read_text() == "mine\n" and all((tmp_path / n).is_symlink() for n in ("t.csv", "t.md", "t.png"))
    assert _temps(tmp_path) == []


def test_a_failed_table_leaves_the_old_file_whole(tmp_path):
    """What a kill mid-write did to a plain write (a truncated table) cannot happen: the rows are
    formatted in memory and the file is replaced only when all of it is written."""
    dest = tmp_path / "f8.csv"
    dest.write_bytes(b"old,table\r\n1,2\r\n")

    def rows():
        yield {"a": 1}
        raise KeyboardInterrupt                 # as a Ctrl-C halfway through the rows

    with pytest.raises(KeyboardInterrupt):
        atomic.write_csv(dest, ["a"], rows())
    assert dest.read_bytes() == b"old,table\r\n1,2\r\n" and _temps(tmp_path) == []


def test_a_users_file_at_an_output_path_is_replaced_whole(tmp_path):
    """The documented policy: outputs are regenerated each time, whoever wrote the file there; but a
    table written beside the image named (pareto's, plot's `<stem>.csv`) only when it is one that command
    wrote (hostile9: `plot --out mydata.png` replaced the user's mydata.csv)."""
    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "pareto.png").write_text("not an image\n")          # the file named: replaced whole
    (figs / "pareto_frontier.md").write_text("my notes\n")
    argv = ["pareto", str(_pareto_runs(tmp_path)), "--out", str(figs / "pareto.png")]
    assert main(argv) == 2 and (figs / "pareto_frontier.md").read_text() == "my notes\n"
    (figs / "pareto_frontier.md").write_text("Pareto frontier per protocol: an older one\n")
    assert main(argv) == 0
    assert (figs / "pareto_frontier.md").read_text().startswith("Pareto frontier per protocol: final")
    assert (figs / "pareto.png").read_bytes().startswith(b"\x89PNG")
    assert oct((figs / "pareto_frontier.md").stat().st_mode & 0o777) == "0o644"


def test_plot_refuses_a_linked_points_csv_before_drawing(tmp_path):
    (tmp_path / "fig.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(ConfigError, match="symbolic link"):
        plot_curves([tmp_path / "no-such-run"], str(tmp_path / "fig.png"))
    assert not (tmp_path / "fig.png").exists() and not (tmp_path / "elsewhere.csv").exists()


def test_figure_refuses_a_linked_output_before_any_run(tmp_path):
    spec = {"kind": "pareto", "title": "tiny", "panels": {"a": {"partition": {"kind": "iid"}}},
            "base": {"peers": 3, "rounds": 1, "data": {"name": "synthetic", "train_size": 60, "test_size": 20},
                     "model": {"width": 8}},
            "groups": {"fedavg": {"protocol": {"name": "fedavg"}}}, "smoke": {}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "fig"
    out.mkdir()
    (out / "tiny_a_frontier.md").symlink_to(tmp_path / "elsewhere.md")
    with pytest.raises(ConfigError, match="symbolic link"):
        figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(out), progress=False,
                            log=lambda m: None)
    assert not (tmp_path / "res").exists()                      # refused before anything ran
    assert "tiny_a_frontier.md" in figures.output_names("tiny", {"a": []})
