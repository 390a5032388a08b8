"""userjourney18 (a cross-device user's population sweep, docs/population.md): what a single `tallysim run`
notes before it starts (storage_notes: tally under client_storage=auto stacks every client, a stateless
protocol's cohort, cohort_draw=sort's O(P) draw) a sweep said nowhere. `tallysim sweep
protocol.name=fedavg,tally,softlabel client_storage=auto peers=100000 ...` ran tally and softlabel over 10^5
stacked clients with nothing on stderr about it. Pure Python: nothing is loaded or compiled."""
from tallysim import config, sweep_checks
from tallysim.config import Config
from tallysim.sweep_axes import expand

POP = ["peers=100000", "participation=0.0001", "client_storage=auto", "data.name=synthetic",
       "data.input_shape=[8]", "data.num_classes=10", "data.train_size=2401000", "partition.kind=iid",
       "model.name=mlp", "model.width=32"]


def _notes(capsys, *axes):
    base = config.apply_overrides(Config(), POP)
    runs = expand({}, list(axes))
    sweep_checks.warn_before(runs, sweep_checks.configs(base, runs))
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("tallysim: note:")]


def test_sweep_notes_what_each_run_would(capsys):
    notes = _notes(capsys, "protocol.name=fedavg,tally,softlabel")
    stacked = [n for n in notes if "stacks every client's state" in n]
    # tally's and softlabel's lines differ (their reasons); each names its run, said once
    assert len(stacked) == 2, notes
    assert any("sweep run protocol.name=tally:" in n and "100,000 clients' models" in n for n in stacked), notes
    assert any("sweep run protocol.name=softlabel:" in n for n in stacked), notes
    # the O(P) draw under the default cohort_draw=sort, one line naming all three runs
    draw = [n for n in notes if "cohort_draw=sequential" in n]
    assert len(draw) == 1 and "protocol.name=fedavg, protocol.name=tally and 1 more" in draw[0], notes


def test_sweep_of_small_populations_says_nothing(capsys):
    assert _notes(capsys, "protocol.name=fedavg,tally", "peers=10", "participation=1",
                  "data.train_size=20000") == []


def test_a_note_sizes_the_models_of_one_seed_and_says_so():
    # models_bytes sizes one seed's models: a 2-seed tally sweep over 10^5 clients was told "about 1.92 GB"
    # and peaked at 9.0 GB (docs/population.md, a user's run)
    from tallysim import storage_notes
    base = config.apply_overrides(Config(), POP)
    two = config.validate(config.apply_overrides(base, ["protocol.name=tally", "seeds=2"]))
    one = config.validate(config.apply_overrides(base, ["protocol.name=tally"]))
    assert "models (about 1.92 GB a seed)" in storage_notes.stateful_note(two)
    assert "models (about 1.92 GB)" in storage_notes.stateful_note(one)
    fedavg = config.validate(config.apply_overrides(base, ["protocol.name=fedavg", "seeds=2"]))
    assert "(about 1.92 GB a seed)" in storage_notes.cohort_note(fedavg)
    stacked = config.validate(config.apply_overrides(fedavg, ["client_storage=stacked"]))
    assert "models (about 1.92 GB a seed)" in storage_notes.storage_hint(stacked)


def _run(d, proto, **row):
    import json
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": proto}, "rounds": 2, "seeds": 1,
                                               "data": {"name": "synthetic"}}))
    (d / "metrics.jsonl").write_text(json.dumps({"round": 2, "bits_per_peer": 100.0, **row}) + "\n")


def test_pareto_says_its_axis_mixes_the_server_model_and_the_peer_mean(tmp_path):
    # the sweep's pareto drew FedAvg's server model (acc_global) and tally's peer mean (acc_mean) on one
    # "final test accuracy" axis and said nothing; `table` said it of the same runs
    from tallysim.results import pareto
    _run(tmp_path / "fedavg", "fedavg", acc_global=0.31, acc_mean=None)
    _run(tmp_path / "tally", "tally", acc_mean=0.11, acc_global=None)
    said = []
    points = pareto.collect([str(tmp_path)], log=said.append)
    assert len(points) == 2, said
    mixed = [s for s in said if "not one column" in s]
    assert len(mixed) == 1 and "acc_global in fedavg" in mixed[0] and "acc_mean in tally" in mixed[0], said
    said.clear()                    # one column named: nothing to say
    pareto.collect([str(tmp_path)], metric="acc_mean", log=said.append)
    assert not [s for s in said if "not one column" in s], said
