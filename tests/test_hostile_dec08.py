"""Hostile review of 2026-12-08, weighted to what the earlier three attacked least: user data through the
loaders (pixel dtypes, value ranges, label ranges, shapes), partitions at their edges, and result
directories edited by hand or by other tools for `plot`, `table`, `pareto` and `tallysim.Results`. Each
case failed before its fix (a traceback, a hang, a silent wrong number, a misleading line); the controls
(`ok`) pass both. Nothing here trains a model: refusals come before anything compiles (`no_compile`)."""
import json
import sys

import numpy as np
import pytest

from tallysim import cli, config, nonfinite_stop, run  # noqa: F401 (imported before jit is patched)
from tallysim.config import PartitionConfig
from tallysim.data import DataError
from tallysim.data.base import checked
from tallysim.results import table as table_mod
from conftest import one_line

partition_mod = sys.modules["tallysim.data.partition"]     # the package re-exports a function of that name


def _split(x, y):
    return {"x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]}


BYTES = np.random.default_rng(0).integers(0, 256, (60, 4, 4)).astype(np.uint8)
LABELS = np.arange(60) % 3


# ----------------------------------------------------------------------------- pixels

def test_integer_pixels_in_byte_range_are_the_same_bytes():
    """int64 pixels 0..255 (np.array of a list of bytes) trained as raw floats 0..255, unscaled: 0.104
    against 0.6765 for the same Fashion-MNIST pixels saved as uint8 (3 rounds, 4 peers, tally). They are
    now the uint8 bytes they hold, scaled to [-1, 1] as uint8 images are."""
    for dtype in (np.int64, np.int32, np.uint16, np.int8):
        x = BYTES.astype(dtype) if dtype != np.int8 else (BYTES // 2).astype(np.int8)
        ds = checked("files", **_split(x, LABELS))
        assert ds.x_train.dtype == np.uint8 and ds.x_test.dtype == np.uint8
        np.testing.assert_array_equal(ds.x_train[..., 0], x.astype(np.uint8))
    assert checked("files", **_split(BYTES, LABELS)).x_train.dtype == np.uint8          # ok: unchanged
    f = checked("files", **_split(BYTES.astype(np.float32) / 255, LABELS)).x_train      # ok: floats as given
    assert f.dtype == np.float32 and f.max() <= 1


@pytest.mark.parametrize("x, expected", [
    # uint16 images as floats up to 65535: round 1's loss was NaN, "try a smaller optim.lr"
    (BYTES.astype(np.uint16) * 257, r"uint16 integers in 0..65535; integer pixels are read as bytes .*x / 65535"),
    ((BYTES.astype(np.int16) - 128).astype(np.int8), r"int8 integers in -128..127"),       # ran unscaled
    # finite in float64, infinite on the device: NaN, "try a smaller optim.lr"
    (BYTES.astype(np.float64) * 1e300, r"hold values up to 2.5\de\+302, beyond float32's 3.4e\+38"),
    (BYTES.reshape(60, -1)[:, :0], r"have shape \(60, 0\), no values per example"),      # ZeroDivisionError
])
def test_pixels_the_device_cannot_read_as_meant_are_refused(x, expected):
    with pytest.raises(DataError, match=expected):
        checked("files", **_split(x, LABELS))


def test_one_split_scaled_and_the_other_not_is_refused():
    """uint8 train and float test images: the model trained on [-1, 1] and was tested on 0..255."""
    with pytest.raises(DataError, match=r"train images are uint8 and test images float32.*tested on other numbers"):
        checked("files", x_train=BYTES, y_train=LABELS, x_test=BYTES[:20].astype(np.float32), y_test=LABELS[:20])


@pytest.mark.parametrize("labels, num_classes, expected", [
    (np.where(np.arange(60) == 0, 5_000_000, LABELS), None, r"has 5,000,001 classes \(labels reach 5,000,000\); "
                                                            r"allowed: at most 100,000"),     # hung compiling
    (LABELS, 200_000, r"has 200,000 classes \(labels reach 2, num_classes given\)"),
])
def test_a_class_count_past_the_limit_is_refused_before_compiling(labels, num_classes, expected, tmp_path, capsys,
                                                                   no_compile):
    f = tmp_path / "d.npz"
    extra = {} if num_classes is None else {"num_classes": np.int64(num_classes)}
    np.savez(f, **_split(BYTES, labels), **extra)
    line = one_line(capsys, ["run", "data.name=files", f"data.path={f}", "peers=2", "rounds=1",
                             "probe.per_round=4", "probe.pool_size=10", "--out", str(tmp_path / "o")])
    assert __import__("re").search(expected, line), line


def test_uint16_images_from_the_command_line_are_one_line(tmp_path, capsys, no_compile):
    f = tmp_path / "d.npz"
    np.savez(f, **_split(BYTES.astype(np.uint16) * 257, LABELS))
    line = one_line(capsys, ["run", "data.name=files", f"data.path={f}", "peers=2", "--out", str(tmp_path / "o")])
    assert "uint16 integers in 0..65535" in line


# ----------------------------------------------------------------------------- partitions

@pytest.mark.parametrize("min_size", [0, 10])
def test_a_dirichlet_alpha_whose_draws_underflow_says_so(min_size):
    """Was 'could not give every one of 4 peers >= 0 examples', impossible to fail, at min_size=0."""
    cfg = PartitionConfig(kind="dirichlet", alpha=1e-6, min_size=min_size)
    with pytest.raises(DataError, match=r"all 1000 draws at partition.alpha=1e-06 were unusable .*allowed: "
                                        r"partition.alpha >= 1e-3"):
        partition_mod.partition(np.repeat(np.arange(10), 36), 4, cfg, 10, 0)
    parts = partition_mod.partition(np.repeat(np.arange(10), 36), 4,                       # ok
                                    PartitionConfig(kind="dirichlet", alpha=1e-3, min_size=1), 10, 0)
    assert sum(len(p) for p in parts) == 360


# ----------------------------------------------------------------------------- result directories

ROW = {"round": 1, "bits_up": 64, "bits_down": 64, "bits_per_peer": 32.0, "acc_mean": 0.5, "acc_global": None}


def _run_dir(path, rows, protocol="tally"):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"protocol": {"name": protocol}, "rounds": 2}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("command", ["plot", "table"])
def test_a_row_without_its_round_is_one_line(command, tmp_path, capsys):
    """plot: KeyError 'round'; table: TypeError comparing None with an int."""
    d = _run_dir(tmp_path / "r", [{k: v for k, v in ROW.items() if k != "round"}])
    argv = [command, str(d)] + (["--out", str(tmp_path / "p.png")] if command == "plot" else [])
    line = one_line(capsys, argv) if command == "plot" else None
    if command == "table":
        code = cli.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and "line 1: round=None must be an integer" in err[0], err
        line = err[-1]
        assert line.startswith("tallysim: error: no readable run under"), line
    else:
        assert "metrics.jsonl line 1: round=None must be an integer" in line


def test_table_of_runs_it_could_not_read_does_not_say_there_were_none(tmp_path, capsys):
    """Was 'no run directories (with metrics.jsonl)' under a directory holding one."""
    d = _run_dir(tmp_path / "r", [{**ROW, "acc_mean": "0.5"}])
    code = cli.main(["table", str(d)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == (f"tallysim: error: no readable run under {d}: the 1 run directory found "
                                     "could not be read (above)"), err


@pytest.mark.parametrize("name", ["a\nb", "a|b", "a\r\nb"])
def test_a_run_label_with_a_line_break_or_pipe_stays_one_cell(name, tmp_path, capsys):
    """A line break in a run's directory name split its markdown row in two (table, pareto)."""
    _run_dir(tmp_path / "s" / name, [ROW, {**ROW, "round": 2}])
    _run_dir(tmp_path / "s" / "plain", [ROW, {**ROW, "round": 2, "acc_mean": 0.6}])
    text = table_mod.table([str(tmp_path / "s")])
    lines = text.splitlines()
    assert len(lines) == 4 and all(line.count(" | ") == lines[0].count(" | ") for line in lines[2:]), text
    assert cli.main(["pareto", str(tmp_path / "s"), "--out", str(tmp_path / "f.png")]) == 0
    md = (tmp_path / "f_frontier.md").read_text().splitlines()
    rows = [line for line in md if line.startswith("| tally")]
    assert rows and all(line.count(" | ") == 4 for line in rows), md
    csv_text = table_mod.table([str(tmp_path / "s")], fmt="csv")                # ok: CSV quotes it
    import csv
    import io
    assert sorted(r[0] for r in list(csv.reader(io.StringIO(csv_text)))[1:]) == sorted([name, "plain"])


def test_plot_of_a_sweep_directory_says_to_pass_its_runs(tmp_path, capsys):
    s = tmp_path / "s"
    _run_dir(s / "a", [ROW])
    (s / "sweep.json").write_text(json.dumps({"runs": []}))
    line = one_line(capsys, ["plot", str(s), "--out", str(tmp_path / "p.png")])
    assert f"{s} is a sweep directory, not a run; pass its runs ({s}/*/)" in line


def test_plot_leaves_out_a_run_without_rows_and_says_so(tmp_path, capsys):
    """A run that failed in round 1 (no rows) drew an empty line in silence, and alone an empty figure."""
    failed = _run_dir(tmp_path / "s" / "lr=1000", [])
    (failed / "error.txt").write_text("round 1, seed 0: the training loss is nan\n")
    line = one_line(capsys, ["plot", str(failed), "--out", str(tmp_path / "p.png")])
    assert line == (f"tallysim: error: nothing to draw: {failed}/metrics.jsonl holds no rows (failed: "
                    f"{failed}/error.txt)")
    assert not (tmp_path / "p.png").exists()
    ok = _run_dir(tmp_path / "s" / "lr=0.1", [ROW, {**ROW, "round": 2}])
    assert cli.main(["plot", str(failed), str(ok), "--out", str(tmp_path / "p.png"), "--label", "a", "--label", "b"]) == 0
    err = capsys.readouterr().err
    assert f"plot: {failed} has no rows (failed: {failed}/error.txt); drawn without it" in err
    assert {r.split(",")[0] for r in (tmp_path / "p.csv").read_text().splitlines()[1:]} == {"b"}


def test_plot_of_a_perplexity_that_is_inf_everywhere_is_one_line(tmp_path, capsys):
    """A text run at optim.lr=1000 (train loss 1227, finite) writes ppl_mean Infinity; `plot --metric
    ppl` was a ValueError traceback from matplotlib's log axis."""
    text_row = {**ROW, "ppl_mean": float("inf"), "ppl_global": None}
    d = _run_dir(tmp_path / "r", [text_row, {**text_row, "round": 2}])
    line = one_line(capsys, ["plot", str(d), "--out", str(tmp_path / "p.png"), "--metric", "ppl"])
    assert "nothing to draw: --metric ppl is not finite at any evaluation of" in line
    fine = _run_dir(tmp_path / "f", [{**text_row, "ppl_mean": 60.0}, {**text_row, "round": 2, "ppl_mean": 50.0}])
    assert cli.main(["plot", str(d), str(fine), "--out", str(tmp_path / "p.png"), "--metric", "ppl"]) == 0   # ok


# ----------------------------------------------------------------------------- models on the data's shape

SYN = ["data.name=synthetic", "data.train_size=400", "data.test_size=100", "rounds=1", "probe.per_round=4",
       "probe.pool_size=10", "peers=2"]


@pytest.mark.parametrize("items, expected", [
    # each was a traceback from the model's initialisation (ValueError or ZeroDivisionError)
    (["data.input_shape=16", "model.name=lenet"], "model.name=lenet convolves images of shape [h, w, ch], and the "
                                                  "examples of data.name=synthetic have shape [16]"),
    (["data.input_shape=4x4", "model.name=cnn"], "have shape [4, 4]"),
    (["data.input_shape=2x4x4x1", "model.name=resnet8"], "have shape [2, 4, 4, 1]"),
    (["data.input_shape=11x28x1", "model.name=lenet"], "model.name=lenet needs images of at least 12x12, and those "
                                                       "of data.name=synthetic are 11x28 (its pools would leave no "
                                                       "features); allowed for them: mlp, cnn, resnet8"),
    (["data.input_shape=3x3x1", "model.name=cnn"], "model.name=cnn needs images of at least 4x4"),
    (["data.input_shape=16", "model.groups=a:1:mlp;b:1:lenet"], "group b: model.name=lenet convolves images"),
])
def test_a_conv_model_on_examples_it_cannot_convolve_is_one_line(items, expected, tmp_path, capsys, no_compile):
    line = one_line(capsys, ["run", *SYN, *items, "--out", str(tmp_path / "o")])
    assert expected in line, line


def test_a_conv_model_on_flat_file_examples_is_one_line(tmp_path, capsys, no_compile):
    f = tmp_path / "d.npz"
    np.savez(f, **_split(BYTES.reshape(60, -1), LABELS))
    line = one_line(capsys, ["run", "data.name=files", f"data.path={f}", "model.name=lenet", "peers=2",
                             "probe.per_round=4", "probe.pool_size=10", "--out", str(tmp_path / "o")])
    assert "the examples of data.name=files have shape [16]; allowed for them: model.name=mlp (any shape), or " \
           "[h, w, ch] examples" in line and "input_shape" not in line


@pytest.mark.parametrize("model", ["lenet", "cnn", "resnet8"])
def test_the_smallest_image_each_conv_model_takes_is_the_one_it_initialises_on(model):
    """CONV_MIN_SIDE is the models' own limit: at it the model has features, one pixel less it has none."""
    import jax
    from tallysim.sim import tasks
    from tallysim.sim.models import make_model
    side = tasks.CONV_MIN_SIDE[model]
    cfg = config.validate(config.apply_overrides(config.Config(), [f"model.name={model}", "data.name=synthetic",
                                                                  f"data.input_shape={side}x{side}x1"]))
    tasks.check_shape(cfg, (side, side, 1))
    m = make_model(cfg.model, 10)
    out = jax.eval_shape(m.apply, jax.eval_shape(m.init, jax.random.PRNGKey(0), np.zeros((1, side, side, 1))),
                         np.zeros((1, side, side, 1)))
    assert out.shape == (1, 10)
    if side > 1:
        with pytest.raises(config.ConfigError, match=f"needs images of at least {side}x{side}"):
            tasks.check_shape(cfg, (side - 1, side, 1))
        with pytest.raises(ZeroDivisionError):            # what the check stands in front of
            jax.eval_shape(m.init, jax.random.PRNGKey(0), np.zeros((1, side - 1, side - 1, 1)))


# ----------------------------------------------------------------------------- legends and titles

@pytest.mark.parametrize("argv, expected", [
    (["plot", "{run}", "--label", "$\\frac$"], "--label '$\\\\frac$' is not valid matplotlib mathtext"),  # traceback
    (["plot", "{run}", "--label", "$$"], "--label '$$' is not valid matplotlib mathtext"),
    (["plot", "{run}", "--title", "$$"], "--title '$$' is not valid matplotlib mathtext"),
    (["pareto", "{run}", "--title", "$x^$"], "--title '$x^$' is not valid matplotlib mathtext"),
    (["plot", "{run}", "--label", ""], "--label '' is empty"),                # left out of the legend
])
def test_a_legend_or_title_matplotlib_cannot_draw_is_one_line(argv, expected, tmp_path, capsys):
    run_dir = _run_dir(tmp_path / "r", [ROW, {**ROW, "round": 2}])
    line = one_line(capsys, [a.replace("{run}", str(run_dir)) for a in argv] + ["--out", str(tmp_path / "p.png")])
    assert expected in line, line
    assert not (tmp_path / "p.png").exists()


def test_a_label_starting_with_an_underscore_is_in_the_legend(tmp_path, monkeypatch):
    """matplotlib leaves `_v2` out of a legend; math that parses is drawn as math (ok)."""
    import matplotlib.axes
    shown = {}
    orig = matplotlib.axes.Axes.legend

    def spy(self, *a, **k):
        legend = orig(self, *a, **k)
        shown["texts"] = [t.get_text().strip() for t in legend.get_texts()]
        return legend
    monkeypatch.setattr(matplotlib.axes.Axes, "legend", spy)
    a = _run_dir(tmp_path / "a", [ROW])
    b = _run_dir(tmp_path / "b", [ROW])
    assert cli.main(["plot", str(a), str(b), "--label", "_v2", "--label", "$x_1$ rate",
                     "--out", str(tmp_path / "p.png")]) == 0
    assert shown["texts"] == ["_v2", "$x_1$ rate"]
    assert (tmp_path / "p.csv").read_text().splitlines()[1].startswith("_v2,")     # the CSV keeps it as given


# ----------------------------------------------------------------------------- groups

@pytest.mark.parametrize("items, expected", [
    # group a's own optim.lr=1000 made the loss NaN in round 1, and the line said "now 0.05"
    (["model.groups=a:2:mlp,optim.lr=1000;b:2:mlp"], "optim.lr; by group now a 1000.0, b 0.05"),
    (["model.groups=a:2:mlp;b:2:mlp"], "optim.lr, now 0.05 in every group"),                 # ok
    ([], "optim.lr, now 0.05"),                                                              # ok: as before
])
def test_a_diverged_run_names_the_learning_rates_it_ran(items, expected):
    assert nonfinite_stop.lr_now(config.validate(config.apply_overrides(config.Config(), [*SYN, "peers=4", *items]))) == expected


@pytest.mark.parametrize("groups", ["\u00e9:1:mlp;b:1:mlp", "a b:1;c:1", "a.b:1;c:1"])
def test_a_group_name_that_is_not_plain_says_so(groups, tmp_path, capsys, no_compile):
    """Was "group '\u00e9:1:mlp' is not NAME:PEERS[:FIELDS]", which it is."""
    line = one_line(capsys, ["run", *SYN, f"model.groups={groups}", "--out", str(tmp_path / "o")])
    assert "is not a plain name; allowed: 1..40 ASCII letters, digits, '_', '-'" in line, line


@pytest.mark.parametrize("items, expected", [
    (["data.name=files", "data.path=/tmp", "data.num_classes=7"], "data.num_classes=7 is not read by data.name=files "
                                                                   "(only by synthetic"),
    (["data.name=fashion_mnist", "data.train_size=1000"], "data.train_size=1000 is not read by data.name=fashion_mnist"
                                                          " (only by synthetic: a dataset's files fix its classes, "
                                                          "example shape and sizes); allowed there: its default 12000 "
                                                          "(data.max_train / data.max_test subsample a dataset)"),
    (["data.name=shakespeare", "partition.kind=natural", "model.name=lstm", "data.input_shape=5x5x1"],
     "data.input_shape=5x5x1 is not read by data.name=shakespeare"),
])
def test_a_synthetic_only_data_field_with_another_dataset_is_refused(items, expected, tmp_path, capsys, no_compile):
    """Each ran on the dataset as it is, the field ignored in silence."""
    line = one_line(capsys, ["run", *items, "--out", str(tmp_path / "o")])
    assert expected in line, line
    config.validate(config.apply_overrides(config.Config(), ["data.name=synthetic", "data.num_classes=7"]))   # ok


def test_label_quantity_over_declared_classes_with_no_examples_is_refused(tmp_path, capsys, no_compile):
    """An .npz declaring num_classes=50 over labels 0..2: 7 of 10 peers were dealt only absent classes and
    trained on nothing, in silence."""
    f = tmp_path / "d.npz"
    np.savez(f, **_split(BYTES, LABELS), num_classes=np.int64(50))
    line = one_line(capsys, ["run", "data.name=files", f"data.path={f}", "peers=10", "partition.kind=label_quantity",
                             "partition.k=1", "probe.per_round=4", "probe.pool_size=10", "--out", str(tmp_path / "o")])
    assert "partition.kind=label_quantity gave 7 of 10 peers no examples: files declares 50 classes and 47 of them " \
           "have no training example (e.g. 3, 4, 5, 6, 7)" in line, line
    parts = partition_mod.partition(np.arange(360) % 10, 10, PartitionConfig(kind="label_quantity", k=1), 10, 0)
    assert [len(p) for p in parts] == [36] * 10                                   # ok: every class present
