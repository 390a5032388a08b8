"""The floor of always predicting the most frequent test target (userjourney7): on Shakespeare words tally,
softlabel and FedAvg all read 0.0898 after a few rounds, the comma's share of the test tokens, and the
summary line, `tallysim table`, `tallysim plot` and `Results` showed it as a result (tally "winning" at
10^4 bits). partition.json now records `majority_acc` / `majority_class`, and each of them says when a
run sits at it."""
import json

import numpy as np

from conftest import TINY
from tallysim import cli, cli_commands, run_files
from tallysim.results import headline, metrics, partition_file, plot, table
from tallysim.results.runs import Results
from tallysim.sim import tasks


def test_majority_scores_as_accuracy_scores():
    # classification: every example counts (the test walk's padding, -1, never)
    got = run_files.majority(np.array([3, 3, 1, 2, -1, -1, -1]), tasks.CLASSIFICATION)
    assert got == {"majority_acc": 0.5, "majority_class": 3}
    # next token: PAD, OOV, BOS, EOS targets are not scored, as accuracy leaves them out; OOV is the most
    # frequent target here, so counting it would give 4/9 for class OOV
    y = np.array([[tasks.BOS, tasks.OOV, tasks.OOV, tasks.OOV, tasks.OOV, 5, 5, 6, tasks.EOS, tasks.PAD]])
    got = run_files.majority(y, tasks.make("next_token", (10,)))
    assert got["majority_class"] == 5 and abs(got["majority_acc"] - 2 / 3) < 1e-12
    assert run_files.majority(np.array([[tasks.PAD, tasks.OOV]]), tasks.make("next_token", (2,))) == {}


def test_a_run_records_its_floor_and_says_nothing_above_it(tmp_path, capsys):
    # the same configuration as test_run.py's local run (its programs are compiled already)
    out = tmp_path / "local"
    assert cli.main(["run", *TINY, "protocol.name=local", "--out", str(out), "--quiet"]) == 0
    part = metrics.read_partition(out)
    # TINY's synthetic test set: 300 examples of 10 classes; the floor is its largest class's share
    assert 0.1 <= part["majority_acc"] < 0.2 and 0 <= part["majority_class"] < 10
    assert part["majority_acc"] * 300 == round(part["majority_acc"] * 300)
    assert "most frequent" not in capsys.readouterr().err         # 0.85 and more: far above it
    assert Results.read(out).majority_acc == part["majority_acc"]


def _at_floor_run(d, acc=0.0897, proto="tally", server=False):
    d.mkdir(parents=True)
    row = {"round": 3, "bits_per_peer": 53760.0 if proto == "tally" else 9.6e7, "acc_mean": acc,
           "acc_global": acc if server else None, "ppl_mean": 8925.0, "ppl_global": 2191.0 if server else None,
           "wall_s": 1.0}
    (d / metrics.CONFIG).write_text(json.dumps({"protocol": {"name": proto}, "rounds": 3}))
    (d / metrics.METRICS).write_text(json.dumps(row) + "\n")
    (d / "done.json").write_text("{}")
    (d / metrics.PARTITION).write_text(json.dumps({"majority_acc": 0.0898, "majority_class": 4}))
    return d


def test_cli_table_plot_and_results_say_a_run_is_at_the_floor(tmp_path, capsys):
    tally = _at_floor_run(tmp_path / "runs" / "tally")
    fedavg = _at_floor_run(tmp_path / "runs" / "fedavg", acc=0.0899, proto="fedavg", server=True)
    cli_commands._note_floor({"acc_mean": 0.0897, "acc_global": None, "out": str(tally)}, "unused")
    err = capsys.readouterr().err
    assert "accuracy 0.0897 is no better than always predicting the most frequent test target (class 4: 0.0898" in err
    cli_commands._note_floor({"acc_mean": 0.2, "acc_global": None, "out": str(tally)}, "unused")
    assert capsys.readouterr().err == ""
    notes = []
    table.table_rows([tmp_path / "runs"], log=notes.append)
    assert any("fedavg, tally: final accuracy at or below 0.0898 + 0.002 (a margin for rounding), what always" in n and "ppl column" in n for n in notes), notes
    assert "at the floor 0.0898" in repr(Results.read(tally))
    png = plot.plot_curves([str(tally), str(fedavg)], str(tmp_path / "f.png"))
    assert png.endswith("f.png")


def test_plot_draws_the_floor_line_once_for_one_test_set(tmp_path, monkeypatch):
    tally = _at_floor_run(tmp_path / "tally")
    drawn = []
    real = partition_file.draw_floor
    monkeypatch.setattr(partition_file, "draw_floor", lambda ax, dirs, metric: drawn.append(
        (real(ax, dirs, metric), [line.get_label() for line in ax.get_lines()])))
    plot.plot_curves([str(tally)], str(tmp_path / "a.png"))
    assert any("most frequent test target alone (0.0898)" in lab for lab in drawn[-1][1])
    plot.plot_curves([str(tally)], str(tmp_path / "b.png"), metric="ppl_mean")     # not an accuracy: no line
    assert not any("most frequent" in lab for lab in drawn[-1][1])
    # another test set (another floor): no single line to draw
    other = _at_floor_run(tmp_path / "other")
    (other / metrics.PARTITION).write_text(json.dumps({"majority_acc": 0.5, "majority_class": 1}))
    plot.plot_curves([str(tally), str(other)], str(tmp_path / "c.png"))
    assert not any("most frequent" in lab for lab in drawn[-1][1])
    assert headline.at_floor(0.092, {"majority_acc": 0.0898}) is False


def test_summary_line_says_what_an_active_client_moves_in_a_cohort_run():
    # docs/population.md's first run: bits_per_peer divides by all 10,000 clients; each of the 10 a round
    # sent and received FedAvg's 1,674 float32 parameters (53,568 bits) each way
    from tallysim import config
    cfg = config.apply_overrides(config.Config(), ["protocol.name=fedavg", "peers=10000", "participation=0.001"])
    last = {"round": 20, "bits_per_peer": 2 * 53568 * 10 * 20 / 10000, "acc_global": 0.195, "acc_mean": None,
            "wall_s": 24.3}
    line = headline.summary_line(cfg, last)
    assert "0.0002678 MB per peer (0.01339 MB per active client and round, 10 of 10,000 a round), 24.3 s" in line
    full = config.apply_overrides(config.Config(), ["protocol.name=fedavg", "peers=10"])
    assert "active client" not in headline.summary_line(full, {**last, "bits_per_peer": 1e6})


def test_table_has_each_model_groups_final_peer_mean(tmp_path):
    # a model.groups run: each group's accuracy took one `table --metric acc_mean@NAME` per group
    d = tmp_path / "res" / "groups"
    d.mkdir(parents=True)
    row = {"round": 2, "bits_per_peer": 35840.0, "acc_mean": 0.0891, "acc_global": None, "acc_mean@lstm": 0.0884,
           "acc_mean@lstm_std": 0.001, "acc_mean@tf": 0.0898, "wall_s": 1.0}
    (d / metrics.CONFIG).write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 2}))
    (d / metrics.METRICS).write_text(json.dumps(row) + "\n")
    plain = _at_floor_run(tmp_path / "res" / "plain")
    cols, rows = table.table_rows([tmp_path / "res"], log=lambda m: None)
    # each group's std over seeds beside its mean, as final_std beside final (features26)
    assert cols[cols.index("best") + 1:cols.index("best") + 5] == ["final@lstm", "final_std@lstm", "final@tf",
                                                                   "final_std@tf"]
    got = {r["run"]: (r["final@lstm"], r["final_std@lstm"], r["final@tf"], r["final_std@tf"]) for r in rows}
    assert got == {"groups": (0.0884, 0.001, 0.0898, None), "plain": (None, None, None, None)}
    assert "| 0.0884 | 0.0010 | 0.0898 |  |" in table.markdown(cols, rows)
    assert "final@lstm" not in table.table_rows([plain], log=lambda m: None)[0]     # no groups: no column
    assert "final@lstm" not in table.table_rows([tmp_path / "res"], metric="acc_mean", log=lambda m: None)[0]


def test_per_round_past_a_set_pool_is_refused_before_any_run(tmp_path, capsys):
    # a sweep with probe.pool_size=500 and the default probe.per_round=1000: --dry-run listed its 4 runs,
    # then every run failed at build ("larger than the probe pool") once the data had loaded
    import pytest
    from tallysim import config
    from tallysim.config import ConfigError
    from conftest import tiny
    with pytest.raises(ConfigError, match=r"probe.per_round=500 is larger than the probe pool \(200 examples; "
                                          r"probe.pool_size\); allowed: probe.per_round=1..200"):
        config.validate(tiny("protocol.name=tally", "probe.per_round=500"))
    config.validate(tiny("protocol.name=fedavg", "probe.per_round=500"))     # draws no probes: not refused
    code = cli.main(["sweep", *TINY, "protocol.name=tally,softlabel", "seed=0,1", "probe.per_round=1000",
                     "--out", str(tmp_path / "sw"), "--dry-run"])
    assert code == 2 and "probe.per_round=1000 is larger than the probe pool (200 examples" in capsys.readouterr().err
    assert not (tmp_path / "sw").exists()


def test_read_rows_carries_each_rows_headline_accuracy(tmp_path):
    # tally beside FedAvg in one DataFrame: acc_mean is FedAvg's peers' own models, not its server model
    import tallysim
    _at_floor_run(tmp_path / "r" / "tally", acc=0.31)
    fedavg = _at_floor_run(tmp_path / "r" / "fedavg", acc=0.5, proto="fedavg", server=True)
    row = json.loads((fedavg / metrics.METRICS).read_text())
    (fedavg / metrics.METRICS).write_text(json.dumps({**row, "acc_mean": 0.2}) + "\n")
    got = {r["run"]: (r["accuracy"], r["acc_mean"]) for r in tallysim.read_rows(tmp_path / "r")}
    assert got == {"tally": (0.31, 0.31), "fedavg": (0.5, 0.2)}


def test_table_blanks_what_a_runs_dataset_or_model_does_not_read(tmp_path):
    # Shakespeare LSTM runs beside a synthetic MLP run: the text rows showed synthetic's data.input_shape
    # [28, 28, 1] and the MLP's model.width 200, settings those runs never read
    def write(name, data, model):
        d = tmp_path / "r" / name
        d.mkdir(parents=True)
        (d / metrics.CONFIG).write_text(json.dumps({"protocol": {"name": "fedavg"}, "rounds": 1, "data": data,
                                                    "model": model}))
        (d / metrics.METRICS).write_text(json.dumps({"round": 1, "bits_per_peer": 1.0, "acc_mean": 0.1,
                                                     "acc_global": 0.1}) + "\n")
    write("words", {"name": "shakespeare_words", "input_shape": [28, 28, 1], "train_size": 12000},
          {"name": "lstm", "width": 200, "hidden": 64})
    write("pop", {"name": "synthetic", "input_shape": [8], "train_size": 241000}, {"name": "mlp", "width": 32, "hidden": 256})
    write("groups", {"name": "shakespeare_words", "input_shape": [28, 28, 1], "train_size": 12000},
          {"name": "lstm", "width": 8, "hidden": 64, "groups": "a:2:mlp;b:2:lstm"})
    cols, rows = table.table_rows([tmp_path / "r"], log=lambda m: None)
    got = {r["run"]: (r["data.input_shape"], r["data.train_size"], r["model.width"], r["model.hidden"]) for r in rows}
    # with model.groups a run-level model field may be a group's: kept
    assert got == {"words": (None, None, None, 64), "pop": ("[8]", 241000, 32, None), "groups": (None, None, 8, 64)}
