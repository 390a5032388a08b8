"""Hostile review of 2026-12-05, weighted to what the earlier five attacked least: the partition knobs a
partition kind never reads (text's natural split, population, iid), config files (a `sweep` section given
to `run`, one field written twice in one file, another script's digits), sweep axes no run reads, figure
configs' own keys, the probe pool drawn from the training set itself, `table --out` under another format's
name, a perplexity's "best", and the results readers and config helpers of the Python API given the wrong
type. Each case failed before its fix (ran while ignoring the knob, the section or the axis in silence,
wrote a file its name misdescribes, called the worst perplexity the best, a TypeError from inside pathlib
or the parser, a misleading line); the controls (`ok`) pass both. Nothing here compiles (`no_compile`);
the run directories `table` and `pareto` read are written by hand."""
import json

import pytest

import tallysim
from tallysim import cli, config, outdir, run, validation  # noqa: F401  (imported before jit is patched)
from tallysim.config import ConfigError
from tallysim.results import metrics, table
from conftest import TINY, one_line, tiny

TEXT = ["data.name=shakespeare", "partition.kind=natural", "model.name=lstm", "model.hidden=16", "peers=3"]

# ----------------------------------------------------------------------------- partition knobs nobody reads

RUN = [
    # each ran with the knob ignored: iid, natural and population read none of alpha, k, scheme, cap
    (["partition.alpha=0.5"], "partition.alpha=0.5 is not read with partition.kind='iid' (only with "
                              "partition.kind=dirichlet|dirichlet_mix|quantity); allowed there: its default 0.1"),
    (["partition.kind=population", "partition.alpha=0.5"], "partition.alpha=0.5 is not read with "
                                                           "partition.kind='population'"),
    (["partition.k=3"], "partition.k=3 is not read with partition.kind='iid' (only with "
                        "partition.kind=label_quantity)"),
    (["partition.kind=dirichlet", "partition.scheme=balanced"], "partition.scheme='balanced' is not read with "
                                                                "partition.kind='dirichlet'"),
    (["partition.kind=quantity", "partition.cap=false"], "partition.cap=False is not read with "
                                                         "partition.kind='quantity' (only with partition.kind=dirichlet)"),
    # min_size: only dirichlet and population hold a peer to it (validation's min_each)
    (["partition.kind=quantity", "partition.min_size=0"], "partition.min_size=0 is not read with "
                                                          "partition.kind='quantity' (only with "
                                                          "partition.kind=dirichlet|population)"),
    (["partition.min_size=3"], "partition.min_size=3 is not read with partition.kind='iid'"),
    # the population's own knobs with another kind
    (["partition.mean_size=20"], "partition.mean_size=20.0 is not read with partition.kind='iid' (only with "
                                 "partition.kind=population)"),
    (["partition.sigma=2"], "partition.sigma=2.0 is not read with partition.kind='iid'"),
    (["partition.kind=dirichlet", "partition.reuse=true"], "partition.reuse=True is not read with "
                                                           "partition.kind='dirichlet'"),
    # a dataset name in the wrong case: "data.train_size=1600 is not read by data.name=Synthetic"
    (["data.name=Synthetic"], "dataset 'Synthetic' is not prepared in"),
    # the pool from the training dataset itself: copies of the examples the peers train on
    (["probe.source=synthetic"], "probe.source=synthetic is the training dataset itself: its pool would be "
                                 "copies of the peers' own training examples"),
    # digits of another script, which int() and float() read: 3 peers, lr 0.1 (model.groups refused them)
    (["peers=\u0663"], "peers='\u0663': expected an integer"),
    (["optim.lr=\u0660.\u0661"], "optim.lr='\u0660.\u0661': expected a number"),
    (["data.input_shape=\u0668x8"], "expected a shape like 28x28x1"),
    # more peers evaluated than there are: ran as eval_peers=none
    (["eval_peers=5"], "eval_peers=5 is more than the 4 peers (peers=4); allowed: 1..4, or none (every peer)"),
]


@pytest.mark.parametrize("items, expected", RUN, ids=[" ".join(i)[-60:] for i, _ in RUN])
def test_run_inputs_are_one_line_before_compiling(items, expected, tmp_path, capsys, no_compile):
    line = one_line(capsys, ["run", *TINY, *items, "--out", str(tmp_path / "o"), "--quiet"])
    assert expected in line, line
    assert not (tmp_path / "o").exists()


def test_a_dataset_name_in_another_case_names_the_dataset():
    """`Fashion_MNIST` was told no near name, though fashion_mnist is a common one (and often prepared)."""
    from tallysim.data import loading
    assert "closest: fashion_mnist" in str(loading._not_prepared("Fashion_MNIST"))
    assert "closest: synthetic" in str(loading._not_prepared("Synthetic"))


@pytest.mark.parametrize("items, key", [
    (["partition.alpha=0.5"], "partition.alpha"), (["partition.min_size=0"], "partition.min_size"),
    (["partition.cap=false"], "partition.cap"),
])
def test_a_partition_knob_on_text_is_refused_from_the_api_too(items, key, no_compile):
    """The natural (one client per speaking role) split reads none of them; nothing loads before the refusal."""
    with pytest.raises(ConfigError, match=f"{key}=.* is not read with partition.kind='natural'"):
        validation.check_read(config.validate(config.apply_overrides(config.Config(), [*TEXT, *items])))


@pytest.mark.parametrize("items", [                                                            # ok
    ["partition.kind=dirichlet", "partition.alpha=0.5", "partition.min_size=3", "partition.cap=false"],
    ["partition.kind=dirichlet_mix", "partition.alpha=0.5"],
    ["partition.kind=quantity", "partition.alpha=0.5"],
    ["partition.kind=label_quantity", "partition.k=3", "partition.scheme=balanced"],
    ["partition.kind=population", "partition.mean_size=8", "partition.sigma=1.5", "partition.min_size=1",
     "partition.reuse=true"],
    ["eval_peers=4"],
])
def test_partition_knobs_their_kind_reads_still_run(items):
    validation.check_read(config.validate(tiny(*items)))


def test_a_sweep_base_may_still_hold_partition_knobs(tmp_path, capsys, no_compile):                      # ok
    """check_read is a single run's: a sweep over partition.kind shares one alpha across its kinds."""
    assert cli.main(["sweep", *TINY, "partition.kind=iid,dirichlet", "partition.alpha=0.5", "--dry-run",
                     "--out", str(tmp_path / "s")]) == 0
    assert "2 runs" in capsys.readouterr().out

# ----------------------------------------------------------------------------- config files


def _file(tmp_path, name, body) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(body) if not isinstance(body, str) else body)
    return str(p)


SWEEP_FILE = {"peers": 4, "sweep": {"bridge.density": [0.01, 0.05], "bridge.period": [1, 2]},
              "protocol": {"name": "bridge"}}


@pytest.mark.parametrize("via_extends", [False, True])
def test_run_of_a_file_with_a_sweep_section_says_to_sweep_it(via_extends, tmp_path, capsys, no_compile):
    """`run --config experiments/pareto/bridge.json` ran the base bridge alone, its 32 runs' axes ignored."""
    path = _file(tmp_path, "s.json", SWEEP_FILE)
    if via_extends:
        path = _file(tmp_path, "child.json", {"extends": "s.json", "rounds": 2})
    line = one_line(capsys, ["run", "--config", path, "--out", str(tmp_path / "o")])
    assert (f"{path} has a `sweep` section (4 runs over bridge.density, bridge.period), which `tallysim run` "
            f"does not read; allowed: `tallysim sweep --config {path} --out DIR`") in line, line
    assert "(bridge.density=0.01 bridge.period=1)" in line, line
    line = one_line(capsys, ["run", "--config", path, "--print-config", "bridge.period=2"])
    assert "one value (bridge.density=0.01)" in line, line                  # only the axis still open
    assert not (tmp_path / "o").exists()


def test_a_file_with_a_sweep_section_runs_one_point_when_each_axis_is_given(tmp_path, capsys):         # ok
    path = _file(tmp_path, "s.json", SWEEP_FILE)
    assert cli.main(["run", "--config", path, "--print-config", "bridge.density=0.05", "bridge.period=2"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["bridge"]["density"] == 0.05 and got["bridge"]["period"] == 2
    assert cli.main(["sweep", "--config", path, "--dry-run", "--out", str(tmp_path / "sw")]) == 0
    assert "4 runs" in capsys.readouterr().out                                 # the sweep reads it as before


def test_a_field_written_twice_in_one_file_is_refused(tmp_path, capsys):
    """Dotted and inside its section: the later key won in silence (optim.lr 0.2 here)."""
    path = _file(tmp_path, "c.json", '{"optim": {"lr": 0.1}, "optim.lr": 0.2}')
    line = one_line(capsys, ["run", "--config", path, "--print-config"])
    assert "optim.lr is given twice (0.1 and 0.2), dotted and inside its section; give each field once" in line


def test_a_dotted_field_over_its_parents_section_still_overrides(tmp_path):                          # ok
    _file(tmp_path, "p.json", {"optim": {"lr": 0.2}})
    assert config.load_file(_file(tmp_path, "c.json", {"extends": "p.json", "optim.lr": 0.3})).optim.lr == 0.3
    assert config.load_file(_file(tmp_path, "d.json", {"optim.lr": 0.3, "smoke": {"optim.lr": 0.1}}),
                            smoke=True).optim.lr == 0.1

# ----------------------------------------------------------------------------- table --out


@pytest.fixture
def finished(tmp_path):
    """A finished two-round run, written by hand (nothing compiles)."""
    d = outdir.claim(tmp_path / "run", False)
    (d / "config.json").write_text(json.dumps(config.to_dict(config.validate(tiny()).resolved())))
    (d / "metrics.jsonl").write_text("".join(json.dumps({"round": r, "acc_mean": 0.5, "acc_global": None,
                                                         "bits_per_peer": 512.0 * r}) + "\n" for r in (1, 2)))
    (d / "done.json").write_text("{}")
    return d


@pytest.mark.parametrize("argv, expected", [
    (["--out", "t.xlsx"], "--out {}/t.xlsx: table writes markdown or CSV, not .xlsx; allowed: an --out ending "
                          "in .md (markdown), .csv (CSV) or .txt"),
    (["--out", "t.json"], "not .json"),
    (["--out", "t.md", "--format", "csv"], "--format csv with --out {}/t.md, a markdown file's name; allowed: "
                                           "--format markdown, or an --out ending in .csv"),
    (["--out", "t.csv", "--format", "markdown"], "--format markdown with --out {}/t.csv, a csv file's name"),
])
def test_table_out_named_as_another_format_is_refused(argv, expected, finished, tmp_path, capsys):
    """`--out t.xlsx` wrote a markdown table a spreadsheet cannot open; `--format csv --out t.md` CSV."""
    argv = [str(tmp_path / a) if a.startswith("t.") else a for a in argv]
    line = one_line(capsys, ["table", str(finished), *argv])
    assert expected.format(tmp_path) in line, line
    assert not list(tmp_path.glob("t.*"))


@pytest.mark.parametrize("name, first", [("t.CSV", "run,"), ("t.v2", "| run"), ("t.txt", "| run"),   # ok
                                         ("t", "| run")])
def test_table_out_of_any_other_name_still_writes(name, first, finished, tmp_path):
    assert cli.main(["table", str(finished), "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / name).read_text().startswith(first)

# ----------------------------------------------------------------------------- the Python API's readers


@pytest.mark.parametrize("call, expected", [
    (lambda: tallysim.read_rows(123), "123 is int; allowed: a directory (str or pathlib.Path) or a list of them"),
    (lambda: tallysim.read_rows([]), "no directory given (an empty list)"),       # was "... under " of nothing
    (lambda: tallysim.read_rows([None]), "None is NoneType, not a path; allowed: each directory as a str"),
    (lambda: tallysim.Results.read(123), "123 is int, not a path; allowed: a run directory"),
    (lambda: table.table_rows(b"runs"), "is bytes; allowed: a directory"),
    (lambda: config.apply_overrides(config.Config(), [4]), "apply_overrides: 4 is int; expected a key=value "
                                                           "string such as 'peers=4'"),
    (lambda: config.load_file(123), "config file 123 is int; expected a path (str or pathlib.Path)"),
])
def test_api_readers_given_the_wrong_type_are_one_line(call, expected):
    """Each was a TypeError from inside pathlib or the parser ("'int' object is not iterable")."""
    with pytest.raises(ConfigError) as e:
        call()
    assert expected in str(e.value), str(e.value)


def test_read_rows_strict_must_be_a_boolean(finished):
    """strict="no" is truthy: it raised on a corrupt run where the caller asked it not to."""
    with pytest.raises(ConfigError, match=r"read_rows\(strict='no'\): expected True or False"):
        tallysim.read_rows(str(finished), strict="no")
    assert len(tallysim.read_rows(finished, strict=False)) == 2                                 # ok


def test_table_rows_takes_one_directory_as_read_rows_does(finished):
    """table_rows("runs/a") walked the string's letters: "r is not a directory"."""
    assert [r["run"] for r in table.table_rows(str(finished))[1]] == ["run"]
    assert [r["run"] for r in table.table_rows([finished])[1]] == ["run"]                       # ok

# ----------------------------------------------------------------------------- sweeps and figures


@pytest.mark.parametrize("axes, expected", [
    # each ran the same experiment once per value, and `table` showed the values beside equal results
    (["partition.alpha=0.1,1"], "sweep axis partition.alpha (2 values) is read by no run of this sweep "
                                "(partition.alpha=1.0 is not read with partition.kind='iid'"),
    (["model.hidden=8,16"], "sweep axis model.hidden (2 values) is read by no run of this sweep (model.hidden=8 "
                            "is not read by model.name=mlp"),
    (["protocol.name=tally,fedavg", "fedavg.trim=0.1,0.2"], "sweep axis fedavg.trim (2 values) is read by no run"),
])
def test_a_sweep_axis_no_run_reads_is_refused(axes, expected, tmp_path, capsys, no_compile):
    line = one_line(capsys, ["sweep", *TINY, *axes, "--dry-run", "--out", str(tmp_path / "s")])
    assert expected in line, line
    assert "allowed: drop the axis, or sweep it with the fields that make it read" in line


@pytest.mark.parametrize("axes", [                                                                   # ok
    ["protocol.name=softlabel", "softlabel.aggregate=mean,trimmed", "softlabel.trim=0.1,0.2"],  # trimmed reads it
    ["protocol.name=tally,fedavg", "fedavg.aggregate=trimmed", "fedavg.trim=0.1,0.2"],          # fedavg reads it
    ["optim.lr=0.1,0.2"], ["partition.kind=dirichlet", "partition.alpha=0.1,1"],
])
def test_a_sweep_axis_some_run_reads_still_sweeps(axes, tmp_path, capsys, no_compile):
    assert cli.main(["sweep", *TINY, *axes, "--dry-run", "--out", str(tmp_path / "s")]) == 0, capsys.readouterr()


FIGURE = {"title": "t", "kind": "final_vs", "x": "peers", "groups": {"a": {"protocol": {"name": "tally"}}},
          "base": {"rounds": 2, "data": {"name": "synthetic", "train_size": 1600, "test_size": 300},
                   "partition": {"kind": "iid"}, "probe": {"per_round": 64, "pool_size": 200}},
          "sweep": {"peers": [4, 6]}, "smoke": {"sweep": {"peers": [4]}}}


@pytest.mark.parametrize("change, expected", [
    # a field beside `base`, meant for it: the runs had 4 and 6 peers and no word said
    ({"rounds": 5}, "`rounds` is not a figure config key (a config field: put it in `base`, or in a group)"),
    ({"titel": "t"}, "`titel` is not a figure config key; did you mean title?"),
    ({"smoke": {"sweeps": {"peers": [4]}}}, "`smoke.sweeps` is not a figure config key; did you mean sweep?"),
    # x not swept: one point per group, drawn at the base's value
    ({"x": "rounds"}, "x='rounds' is not a sweep axis, so each group draws one point; allowed: a key of "
                      "`sweep` (peers)"),
])
def test_a_figure_config_key_no_figure_reads_is_refused(change, expected, tmp_path, capsys, no_compile):
    path = _file(tmp_path, "f.json", {**FIGURE, **change})
    line = one_line(capsys, ["figure", path, "--dry-run", "--results", str(tmp_path / "r"),
                             "--out", str(tmp_path / "o")])
    assert expected in line, line


def test_a_well_formed_figure_config_still_dry_runs(tmp_path, capsys, no_compile):                      # ok
    path = _file(tmp_path, "f.json", FIGURE)
    assert cli.main(["figure", path, "--dry-run", "--results", str(tmp_path / "r"),
                     "--out", str(tmp_path / "o")]) == 0, capsys.readouterr()

# ----------------------------------------------------------------------------- a perplexity's best


@pytest.fixture
def perplexity(tmp_path):
    """A text-like run whose first round diverged (strict JSON's "Infinity") and whose second did not."""
    d = outdir.claim(tmp_path / "ppl", False)
    (d / "config.json").write_text(json.dumps(config.to_dict(config.validate(tiny()).resolved())))
    (d / "metrics.jsonl").write_text(
        json.dumps({"round": 1, "acc_mean": 0.1, "acc_global": None, "bits_per_peer": 8.0, "ppl_mean": "Infinity",
                    "train_loss": "NaN"}) + "\n" +
        json.dumps({"round": 2, "acc_mean": 0.3, "acc_global": None, "bits_per_peer": 16.0, "ppl_mean": 50.0,
                    "train_loss": 3.5}) + "\n")
    (d / "done.json").write_text("{}")
    return d


@pytest.mark.parametrize("metric, best", [("ppl_mean", 50.0), ("train_loss", 3.5), ("acc_mean", 0.3)])
def test_the_best_perplexity_or_loss_is_the_lowest(metric, best, perplexity):
    """`table --metric ppl_mean` called round 1's inf perplexity the run's best (the largest value)."""
    (row,) = table.table_rows(str(perplexity), metric)[1]
    assert row[f"best {metric}"] == best and row[f"final {metric}"] == best


def test_pareto_of_a_perplexity_is_refused(perplexity, tmp_path, capsys):
    """Its frontier keeps the highest value at each cost: the worst perplexity, silently."""
    line = one_line(capsys, ["pareto", str(perplexity), "--metric", "ppl_mean", "--out", str(tmp_path / "p.png")])
    assert "--metric 'ppl_mean' is better lower (a perplexity, a loss, a share of tied votes)" in line, line


def test_a_pool_larger_than_its_source_is_refused(tmp_path, capsys, no_compile):
    """probe.pool_size=1000 from a source of 300 examples ran with a pool of 300, silently."""
    import numpy as np
    from tallysim import data
    ds = data.load(tiny().data, 7)
    np.savez(tmp_path / "other.npz", x_train=ds.x_train[:300], y_train=ds.y_train[:300], x_test=ds.x_test[:10],
             y_test=ds.y_test[:10])
    data.prepare("other_pool", str(tmp_path / "other.npz"))
    line = one_line(capsys, ["run", *TINY, "probe.source=other_pool", "probe.pool_size=1000",
                             "--out", str(tmp_path / "o")])
    assert "probe.pool_size=1000 is more than the 300 training examples of probe.source=other_pool; allowed: " \
           "1..300" in line, line
    assert not (tmp_path / "o").exists()
