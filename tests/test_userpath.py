"""A new user's path through the docs (README -> getting started -> own runs -> a sweep -> pandas ->
a plugin): the slips a newcomer makes are answered with the near name, results read back in one call,
and a plot says which model each curve measures. Each test failed before the change it covers."""
import csv
import json

import pytest

from tallysim import config, protocols, schema, validation
from tallysim.config import ConfigError
from tallysim.fields import did_you_mean
from tallysim.results import metrics
from tallysim.results.runs import Results, read_rows


def _refusal(*items) -> str:
    with pytest.raises(ConfigError) as e:
        validation.validate(config.apply_overrides(config.Config(), list(items)))
    return str(e.value)


# ----------------------------------------------------------------------------- typos of a choice

@pytest.mark.parametrize("item, near", [
    ("protocol.name=tallly", "tally"),
    ("protocol.name=TallyTrain", "tally"),          # the paper's name
    ("protocol.name=fedAvg", "fedavg"),             # the case alone: that one name, not fedavgm too
    ("protocol.name=FedMD", "softlabel"),           # docs: softlabel is FedMD / DS-FL
    ("protocol.name=ds-fl", "softlabel"),
    ("partition.kind=dirichelt", "dirichlet or dirichlet_mix"),
    ("model.name=mpl", "mlp"),
    ("optim.name=Adam", "adam"),
])
def test_an_unknown_choice_names_the_near_one_after_the_allowed_list(item, near):
    msg = _refusal(item)
    key = item.split("=")[0]
    assert f"{key}=" in msg and "is not known; allowed: " in msg, msg     # the message as before ...
    assert msg.endswith(f"; did you mean {near}?"), msg                     # ... then the near name


def test_a_value_near_nothing_gets_no_guess():
    msg = _refusal("partition.kind=shards")
    assert "did you mean" not in msg and msg.endswith("population"), msg
    assert did_you_mean("xyz", ["tally", "fedavg"]) == ""
    assert did_you_mean("fedavg", ["fedavg", "fedavgm"]) == ""             # a valid value: nothing to say


def test_the_registry_and_a_groups_model_name_suggest_too():
    with pytest.raises(ConfigError, match=r"protocol.name='softlabels' is not known; allowed: .*; did you mean "
                                          r"softlabel\?$"):
        protocols.factory("softlabels")
    msg = _refusal("model.groups=a:2:mpl;b:2:mlp")
    assert "group a: model.name='mpl' is not known" in msg and msg.endswith("did you mean mlp?"), msg


# ----------------------------------------------------------------------------- a section given a value

def test_a_section_given_a_value_lists_its_fields():
    with pytest.raises(ConfigError) as e:
        config.apply_overrides(config.Config(), ["partition=iid"])
    msg = str(e.value)
    assert "partition is a section" in msg and "partition.kind" in msg and "partition.alpha" in msg, msg
    assert "did you mean partition.k " not in msg
    assert schema.suggest("protocol").endswith("did you mean protocol.name?")     # one field: that field
    assert schema.suggest("peer").endswith("did you mean peers?")                 # unchanged


# ----------------------------------------------------------------------------- results in one call

def _write_run(d, rows, cfg):
    d.mkdir(parents=True)
    (d / metrics.CONFIG).write_text(json.dumps(cfg))
    (d / metrics.METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def _row(r, acc, bits, acc_global=None):
    return {"round": r, "bits_up": bits, "bits_down": bits, "bits_per_peer": 2 * bits / 4, "acc_mean": acc,
            "acc_global": acc_global, "acc_peers": [acc] * 4, "wall_s": 0.1 * r}


@pytest.fixture
def sweep(tmp_path):
    base = {"peers": 4, "rounds": 2, "partition": {"kind": "dirichlet", "alpha": 0.1}}
    for name in ("tally", "softlabel"):
        for alpha in (0.1, 1.0):
            cfg = {**base, "protocol": {"name": name}, "partition": {"kind": "dirichlet", "alpha": alpha}}
            _write_run(tmp_path / "sw" / f"protocol.name={name}__partition.alpha={alpha}",
                       [_row(1, 0.5, 100), _row(2, 0.6, 200)], cfg)
    return tmp_path / "sw"


def test_read_rows_is_a_whole_sweep_as_one_long_table(sweep):
    rows = read_rows(sweep)
    assert len(rows) == 8                                         # 4 runs x 2 evaluations
    first = rows[0]
    assert list(first)[:5] == ["run", "protocol", "accuracy", "partition.alpha", "round"]
    assert first["accuracy"] == first["acc_mean"] == 0.5                   # no server model: the peers' mean
    assert first["run"] == "protocol.name=softlabel__partition.alpha=0.1" and first["protocol"] == "softlabel"
    assert {(r["protocol"], r["partition.alpha"]) for r in rows} == {
        ("tally", 0.1), ("tally", 1.0), ("softlabel", 0.1), ("softlabel", 1.0)}
    assert [r["bits_per_peer"] for r in rows[:2]] == [50.0, 100.0]       # as written: cumulative, per peer
    assert rows == read_rows([str(sweep)])                              # a list of directories too
    one = read_rows(sweep / "protocol.name=tally__partition.alpha=1.0")
    assert [r["run"] for r in one] == ["protocol.name=tally__partition.alpha=1.0"] * 2
    import tallysim
    assert tallysim.read_rows is read_rows


def test_read_rows_of_nothing_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no run directories"):
        read_rows(tmp_path)


def test_a_wrong_column_key_names_the_near_ones(sweep):
    res = Results.read(sweep / "protocol.name=tally__partition.alpha=0.1")
    assert res.column("acc_global") == [None, None]                    # a key with null values: as before
    assert res.column("acc_mean") == [0.5, 0.6]
    with pytest.raises(KeyError) as e:
        res.column("acc_maen")
    assert "did you mean acc_mean" in str(e.value) and "keys: round, bits_up" in str(e.value), str(e.value)
    with pytest.raises(KeyError, match="the headline accuracy is acc_global where there is a server model"):
        res.column("accuracy")


# ----------------------------------------------------------------------------- the plot's legend

def test_a_plot_mixing_server_and_peer_accuracy_says_which_curve_is_which(tmp_path, monkeypatch):
    from tallysim.results import plot
    a = _write_run(tmp_path / "tally", [_row(1, 0.5, 100)], {"protocol": {"name": "tally"}})
    b = _write_run(tmp_path / "fedavg", [_row(1, 0.3, 900, acc_global=0.7)], {"protocol": {"name": "fedavg"}})
    drawn = []
    save = plot.metrics.save_figure

    def legend_then_save(fig, *paths, **kw):               # the legend as drawn, then the real save
        drawn.extend(t.get_text() for t in fig.axes[0].get_legend().get_texts())
        return save(fig, *paths, **kw)
    monkeypatch.setattr(plot.metrics, "save_figure", legend_then_save)
    plot.plot_curves([a, b], str(tmp_path / "f.png"))
    assert drawn == ["tally (peer mean)", "fedavg (server model)"]
    with open(tmp_path / "f.csv") as f:                                  # the CSV keeps the plain labels
        assert [r["label"] for r in csv.DictReader(f)] == ["tally", "fedavg"]
    drawn.clear()
    plot.plot_curves([a, b], str(tmp_path / "g.png"), labels=["mine", "theirs"])
    assert drawn == ["mine", "theirs"]                                   # --label: as given
    drawn.clear()
    plot.plot_curves([a], str(tmp_path / "h.png"))
    assert drawn == ["tally"]                                            # one kind of model: the axis says it
    drawn.clear()
    local = _write_run(tmp_path / "local", [_row(1, 0.2, 0)], {"protocol": {"name": "local"}})
    plot.plot_curves([a, local], str(tmp_path / "i.png"))
    assert drawn == ["tally", "local, 0 bits (drawn at 1)"]             # a log axis has no 0


def test_a_figures_curves_say_which_model_and_where_zero_bits_sit(tmp_path, monkeypatch):
    from tallysim.figures import plots
    a = _write_run(tmp_path / "tally", [_row(1, 0.5, 100)], {"protocol": {"name": "tally"}})
    b = _write_run(tmp_path / "fedavg", [_row(1, 0.3, 900, acc_global=0.7)], {"protocol": {"name": "fedavg"}})
    c = _write_run(tmp_path / "local", [_row(1, 0.2, 0)], {"protocol": {"name": "local"}})
    drawn = []
    real = plots.band
    monkeypatch.setattr(plots, "band", lambda ax, x, y, s, label, **kw: (drawn.append(label),
                                                                          real(ax, x, y, s, label, **kw))[1])
    paths = plots.curves({}, {"tally": [({}, a)], "fedavg": [({}, b)], "local": [({}, c)]},
                         str(tmp_path / "fig"), "t")
    assert drawn == ["tally (peer mean)", "fedavg (server model)", "local (peer mean), 0 bits (drawn at 1)"]
    with open(paths["csv"]) as f:                                        # the table keeps the group names
        assert [r["group"] for r in csv.DictReader(f)] == ["tally", "fedavg", "local"]


# ----------------------------------------------------------------------------- a plugin from the checkout

def test_a_plugin_not_on_the_path_names_the_file_it_sees(tmp_path, monkeypatch):
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "nearby_plugin_xyz.py").write_text("PROTOCOLS = {}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        protocols.load_plugin("nearby_plugin_xyz")
    assert str(e.value).endswith("; examples/nearby_plugin_xyz.py is here: put its folder on the Python path, "
                                 "e.g. PYTHONPATH=examples tallysim ... --plugin nearby_plugin_xyz"), str(e.value)
    with pytest.raises(ConfigError) as e:
        protocols.load_plugin("no_such_plugin_anywhere_xyz")
    assert "is here" not in str(e.value)


# ----------------------------------------------------------------------------- mixed architectures

def test_the_summary_line_of_a_grouped_run_gives_each_groups_accuracy():
    from conftest import tiny
    last = {"round": 2, "bits_per_peer": 16000.0, "acc_mean": 0.66, "acc_ensemble": 0.69, "acc_global": None,
            "acc_mean@phone": 0.65, "acc_mean@phone_std": 0.01, "acc_mean@server": 0.692, "wall_s": 3.0}
    line = metrics.summary_line(tiny("protocol.name=tally"), last)
    # each group's std over seeds where the row has one (phone's), as table's final_std@NAME
    assert "(peer mean 0.6600, ensemble 0.6900, by group: phone 0.6500 +- 0.0100, server 0.6920)" in line, line
    plain = {k: v for k, v in last.items() if "@" not in k}
    assert "(peer mean 0.6600, ensemble 0.6900)," in metrics.summary_line(tiny("protocol.name=tally"), plain)


def test_a_config_file_typo_names_the_file_beside_it(tmp_path, monkeypatch):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "quick.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"config file 'experiments/quikc.json' does not exist; did you mean "
                                          r"experiments/quick.json\?$"):
        config.load_file("experiments/quikc.json")
    with pytest.raises(ConfigError, match=r"config file 'nowhere/x.json' does not exist$"):
        config.load_file("nowhere/x.json")


def test_a_subcommand_a_metric_and_a_figure_name_typo_get_the_near_one(sweep, capsys):
    from tallysim import cli, figures
    from tallysim.results import table
    with pytest.raises(SystemExit) as e:
        cli.main(["tabel", str(sweep)])
    assert e.value.code == 2 and "invalid choice: 'tabel'" in capsys.readouterr().err.replace("\n", " ")
    with pytest.raises(SystemExit):
        cli.main(["tabel", str(sweep)])
    assert "; did you mean table? (see `tallysim --help`)" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"--metric 'accuracy' is not a column .*; did you mean auto\?$"):
        table.table_rows([sweep], metric="accuracy")
    with pytest.raises(ConfigError, match=r"--metric 'acc_maen' .*; did you mean acc_mean\?$"):
        table.table_rows([sweep], metric="acc_maen")
    with pytest.raises(ConfigError, match=r"figure 'Fig4' not found; .*; did you mean fig4\?$"):
        figures.resolve("Fig4")
