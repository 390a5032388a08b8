"""A new user's journey (2026-12-06): a notebook researcher checking the non-IID claim from the README.

- `--config experiments/quick.json partition.kind=label_quantity` (the one-class split on top of the
  getting-started config) was refused for `partition.alpha=0.5`, a field the user never typed: quick.json
  sets it. The refusal now says the file set it and how to run without it; a value typed on the command
  line keeps the plain refusal. `run` and `sweep` alike, before anything compiles.
- The quickstart notebook ran silently at smoke size (`progress=not SMOKE`: 22 s without a line) and
  recompiled every program when its cell ran again (`tallysim.run` does not use the persistent compile
  cache; 26 s -> 5 s a run with it). Its run cell now turns the cache on first and shows progress.
Nothing here compiles: the refusals come before JAX, and the notebook's cell runs against a stub.
"""
import json
from pathlib import Path

import pytest

from tallysim import cli

ROOT = Path(__file__).resolve().parent.parent
QUICK = str(ROOT / "experiments" / "quick.json")


def _error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_unread_field_from_the_config_file_is_named_as_the_files(command, capsys, tmp_path):
    extra = ["protocol.name=tally,softlabel"] if command == "sweep" else []
    err = _error(capsys, [command, "--config", QUICK, "partition.kind=label_quantity", "partition.k=1", *extra,
                          "--out", str(tmp_path / "out")])
    assert "partition.alpha=0.5 is not read with partition.kind='label_quantity'" in err, err
    assert f"partition.alpha is set by --config {QUICK}, not on the command line" in err, err
    assert "add partition.alpha=0.1 to the command" in err, err
    assert not (tmp_path / "out").exists()


def test_the_suggested_fix_is_accepted(capsys, tmp_path):
    # the way out the message gives passes validation (--print-config runs nothing)
    assert cli.main(["run", "--config", QUICK, "partition.kind=label_quantity", "partition.k=1",
                     "partition.alpha=0.1", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["partition"]["kind"] == "label_quantity" and printed["partition"]["k"] == 1


def test_unread_field_typed_on_the_command_line_keeps_the_plain_refusal(capsys, tmp_path):
    err = _error(capsys, ["run", "--config", QUICK, "partition.kind=label_quantity", "partition.alpha=0.3",
                          "--out", str(tmp_path / "out")])
    assert "partition.alpha=0.3 is not read with partition.kind='label_quantity'" in err, err
    assert "set by --config" not in err, err
    err = _error(capsys, ["run", "protocol.name=fedavg", "vote.min_agreement=0.3", "--out", str(tmp_path / "o")])
    assert "vote.min_agreement=0.3 is not read by protocol.name=fedavg" in err and "--config" not in err, err


def _cell(name: str, marker: str) -> str:
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return next(c for c in cells if marker in c)


def test_quickstart_run_cell_keeps_compiled_programs_and_shows_progress(monkeypatch):
    """The run cell executed against stubs: the compile cache is turned on before the first run, and
    every run shows progress, at smoke size too."""
    from tallysim import config, startup
    from tallysim.results import metrics
    calls = []
    monkeypatch.setattr(startup, "compile_cache", lambda: calls.append("cache"))

    class Done:
        last = {}

    def fake_run(cfg, out=None, **kw):
        calls.append(("run", cfg.protocol.name, kw.get("progress")))
        return Done()
    monkeypatch.setattr(metrics, "summary_line", lambda cfg, last: "")
    code = _cell("quickstart", "PROTOCOLS =")
    base = config.apply_overrides(config.Config(), ["data.name=synthetic", "peers=2", "rounds=1"])
    ns = {"config": config, "metrics": metrics, "base": base, "SMOKE": True,
          "tallysim": type("T", (), {"run": staticmethod(fake_run)})}
    exec(compile(code, "quickstart-run-cell", "exec"), ns)
    assert calls[0] == "cache", calls
    assert calls[1:] == [("run", p, True) for p in ("tally", "softlabel", "fedavg")], calls


def test_table_prints_a_fractional_bits_per_peer_to_two_places():
    # gatedvote's peers under its threshold send nothing: 57,200 bits over 6 peers, 9533.333333333332
    from tallysim.results import table
    assert table._cell(57200 / 6, "bits_per_peer") == "9533.33"
    assert table._cell(9600.0, "bits_per_peer") == "9600"


def test_progress_bar_in_a_notebook_without_ipywidgets_warns_nothing(monkeypatch):
    """tqdm.auto in a Jupyter kernel without ipywidgets printed 'IProgress not found' into the cell;
    its text bar is kept, without the warning."""
    import sys
    import types
    import warnings
    from tallysim import progress, progress_base
    pytest.importorskip("IPython")         # tqdm.autonotebook asks sys.modules["IPython"].get_ipython()
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    monkeypatch.setitem(sys.modules, "ipywidgets", None)          # not installed
    for name in ("tqdm.auto", "tqdm.autonotebook", "tqdm.notebook"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with warnings.catch_warnings(record=True) as caught:     # (tqdm swallows a warning raised as an error)
        warnings.simplefilter("always")
        assert not progress_base.in_notebook()              # asked first by the bar's mode (progress_base.mode)
        bar = progress._tqdm(total=1, disable=True)
    bar.close()
    assert not [w for w in caught if "IProgress" in str(w.message)], [str(w.message) for w in caught]


GATED = """
import json, sys
from pathlib import Path
from tallysim import cli
from tallysim.results.metrics import read_rows
out, tiny = Path(sys.argv[1]), sys.argv[2:]
assert cli.main(["sweep", "--plugin", "gatedvote", "--quiet", "--out", str(out / "gated"), *tiny,
                 "protocol.name=gatedvote", "gatedvote.threshold=0,0.5"]) == 0
assert cli.main(["run", "--quiet", "--out", str(out / "tally"), *tiny, "protocol.name=tally"]) == 0
rows = {d.name: read_rows(d) for d in (out / "gated").iterdir() if d.is_dir()}
rows["tally"] = read_rows(out / "tally")
print(json.dumps(rows))
"""


def test_vote_type_example_plugin_at_threshold_0_is_tally_and_counts_only_its_voters_bits(tmp_path):
    """examples/gatedvote.py, the vote-type example of docs/write-a-protocol.md, in a grouped sweep over its
    threshold on shards of unequal size (partition.kind=quantity): at 0 every peer votes and it is tally
    number for number, bits included; at 0.5 the peers under it (the small shards) send nothing in
    round 2, and only the voters' uploads are counted, while every peer still receives the vote."""
    import os
    import subprocess
    import sys
    from conftest import TINY_NO_WARMUP, assert_rows_close
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "examples"),
                                                       os.environ.get("PYTHONPATH", "")]))
    tiny = [*TINY_NO_WARMUP, "partition.kind=quantity", "partition.alpha=0.3", "eval_every=1"]
    out = subprocess.run([sys.executable, "-c", GATED, str(tmp_path), *tiny], capture_output=True, text=True,
                         env=env, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    zero, half = rows["gatedvote.threshold=0"], rows["gatedvote.threshold=0.5"]
    assert_rows_close(rows["tally"], zero, "threshold 0 is tally", ("round", "bits_up", "bits_down", "bits_per_peer"),
                      ("acc_mean", "acc_min", "acc_max", "acc_ensemble", "train_loss", "vote_acc", "softavg_acc",
                       "agreement"))
    peers = int(next(t for t in TINY_NO_WARMUP if t.startswith("peers=")).split("=")[1])
    assert [r["voters"] for r in zero] == [peers, peers]
    up_each = zero[0]["bits_up"] // peers                   # one peer's votes in a round
    # round 1: the untrained models pass no one's check, so all vote; round 2: the small shards' peers
    # stay under 0.5 (own-shard accuracy 0.12-0.37 against 0.92 at seed 0) and send nothing
    assert half[0]["voters"] == peers and 1 <= half[1]["voters"] < peers, half
    assert half[1]["bits_up"] - half[0]["bits_up"] == half[1]["voters"] * up_each
    assert half[1]["bits_down"] == zero[1]["bits_down"]      # every peer receives the vote
    assert half[1]["acc_mean"] != zero[1]["acc_mean"]        # and the vote it trained on differed


def test_the_vote_type_walk_through_is_examples_gatedvote():
    """write-a-protocol.md's "A vote-type plugin" block: every code line but the elided ones (`...`) is a
    line of examples/gatedvote.py, in the file's order."""
    import re

    def code(line: str) -> str:
        return re.sub(r"\s+#.*$", "", line).strip()
    source = [code(x) for x in (ROOT / "examples" / "gatedvote.py").read_text().splitlines() if code(x)]
    page = (ROOT / "docs" / "write-a-protocol.md").read_text()
    block = re.search(r"## A vote-type plugin.*?```python\n(.*?)```", page, re.S).group(1)
    at = 0
    for line in [code(x) for x in block.splitlines() if code(x) and "..." not in x]:
        assert line in source[at:], line
        at = source.index(line, at) + 1


def test_a_title_wider_than_the_figure_is_wrapped_not_cut(tmp_path):
    """A figure config's long title ran off the image; titles that fit stay on one line."""
    from tallysim.results import metrics
    plt = metrics.pyplot()
    long = "Non-IID check: final accuracy vs Dirichlet alpha (6 peers, 6 rounds, 6,000 examples, 2 seeds) " * 2
    for title, lines in ((long.strip(), 2), ("Fig. 2: final accuracy vs label skew", 1)):
        fig, ax = plt.subplots(figsize=(8.3, 5.6))
        ax.set_title(title, fontsize=10)
        fig.suptitle(title, fontsize=10)
        metrics.wrap_titles(fig)
        assert ax.title.get_text().count("\n") + 1 >= lines and fig._suptitle.get_text().count("\n") + 1 >= lines
        if lines == 1:
            assert ax.title.get_text() == title
        renderer = fig.canvas.get_renderer()
        assert ax.title.get_window_extent(renderer).width <= fig.bbox.width
        metrics.save_figure(fig, str(tmp_path / "t.png"))


def test_a_one_class_split_of_fewer_peers_than_classes_is_warned_about():
    """label_quantity with k=1 and 6 peers on Fashion-MNIST (10 classes) trains on 6 classes and tests
    on 10: the cap on accuracy was silent."""
    from tallysim import config, validation
    lq = ["data.name=fashion_mnist", "partition.kind=label_quantity", "partition.k=1"]
    six = validation.warnings(config.validate(config.apply_overrides(config.Config(), [*lq, "peers=6"])))
    line = next(w for w in six if w.startswith("partition.kind=label_quantity"))
    assert "at most 6 of the 10 classes" in line and "at least 4 are in the test set" in line and "peers >= 10" in line, line
    for fine in (["peers=10"], ["peers=5", "partition.k=2"], ["peers=6", "partition.kind=dirichlet"]):
        cfg = config.validate(config.apply_overrides(config.Config(), [*lq, *fine]))
        assert not [w for w in validation.warnings(cfg) if w.startswith("partition.kind=label_quantity")], fine
