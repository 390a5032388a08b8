"""leftovers36: small user-facing gaps left by earlier sessions (one section per item): `tallysim sweep`
not refusing finished runs for data moved since; a misspelt data.name refused at `run --print-config` and
a sweep's --dry-run; data.num_classes typed on a dataset whose files fix its classes; ..."""
from __future__ import annotations

import json

import pytest

from conftest import one_line  # noqa: F401
from tallysim import cli, run, sweep  # noqa: F401  (imported before no_compile patches jax.jit)
from tallysim import config, outdir


# ----------------------------------------------------------------------------- 1. sweep: finished runs' data

MOVED = ["data.name=files", "peers=2", "rounds=1"]


def _finished_sweep(tmp_path, names):
    """A sweep folder whose runs `names` finished (marker, config.json, done.json), their data since gone."""
    out = tmp_path / "s"
    for name in names:
        cfg = config.validate(config.apply_overrides(config.Config(), MOVED + [f"data.path={tmp_path / 'gone'}", name]))
        (out / name).mkdir(parents=True)
        outdir.mark(out / name)
        (out / name / "config.json").write_text(json.dumps(config.to_dict(cfg)))
        (out / name / sweep.DONE).write_text(json.dumps({"name": name}))
    return out


def test_tallysim_sweep_does_not_refuse_finished_runs_whose_data_moved(tmp_path, capsys, no_compile):
    # the CLI checked every run's data.path (command_configs), where run_sweep from Python and a figure
    # skip the finished ones: a sweep re-run over finished results was refused for data it never reads
    out = _finished_sweep(tmp_path, ["seed=0", "seed=1"])
    argv = ["sweep", "--out", str(out), *MOVED, f"data.path={tmp_path / 'gone'}", "seed=0,1"]
    assert cli.main(argv[:1] + ["--dry-run"] + argv[1:]) == 0
    assert "2 runs (2 done, 0 to run)" in capsys.readouterr().out
    assert cli.main(argv) == 0
    assert "0 ran, 2 done before, 0 failed" in capsys.readouterr().out
    # a run still to do reads the data: refused as before, in one line, nothing run
    line = one_line(capsys, argv[:-1] + ["seed=0,1,2"])
    assert "data.path=" in line and "gone does not exist" in line, line
    assert not (out / "seed=2").exists()


# ----------------------------------------------------------------------------- 2. a misspelt data.name

@pytest.mark.parametrize("command", [["run", "--print-config"], ["sweep", "--dry-run", "--out", "OUT", "seed=0,1"],
                                     ["run", "--out", "OUT"]])
def test_a_misspelt_dataset_name_is_refused_before_anything_loads(command, tmp_path, capsys, no_compile, monkeypatch):
    # --print-config and the sweep's --dry-run passed data.name=cifr10, and the run said it after JAX started
    from tallysim import startup
    monkeypatch.setattr(startup, "start_jax", lambda: pytest.fail("JAX started before the name was refused"))
    command = [str(tmp_path / "o") if c == "OUT" else c for c in command]
    line = one_line(capsys, command + ["data.name=cifr10"])
    assert line.startswith("tallysim: error: dataset 'cifr10' is not prepared in ") and "closest: cifar10" in line \
        and "allowed data.name: built in: synthetic, files" in line, line
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- 3. data.num_classes on a real dataset

TEXT = ["model.name=lstm", "partition.kind=natural"]


@pytest.mark.parametrize("items, count", [(["data.name=cifar100"], "has C = 100 from its files"),
                                          (["data.name=shakespeare", *TEXT], "has C = 80 from its files"),
                                          (["data.name=files", "data.path=DIR"], "takes its classes from its files")])
def test_num_classes_typed_at_its_default_on_a_real_dataset_is_refused(items, count, tmp_path, capsys, no_compile):
    # the default 10 passed check_read (it compares with the default): cifar100 ran on its 100 classes
    items = [i.replace("DIR", str(tmp_path)) for i in items]
    line = one_line(capsys, ["run", "--print-config", *items, "data.num_classes=10"])
    name = items[0].split("=")[1]
    assert line == (f"tallysim: error: data.num_classes=10 is not read by data.name={name} (only by synthetic: it "
                    f"does not pick a subset of classes); data.name={name} {count}; allowed there: no "
                    "data.num_classes"), line
    sweep_line = one_line(capsys, ["sweep", "--dry-run", "--out", str(tmp_path / "s"), *items, "data.num_classes=10",
                                   "seed=0,1"])
    assert sweep_line == line.replace("error: ", "error: sweep run seed=0: "), sweep_line


def test_num_classes_said_as_the_datasets_own_or_read_by_a_synthetic_run_passes(tmp_path, capsys, no_compile):
    assert cli.main(["run", "--print-config", "data.name=fashion_mnist", "data.num_classes=10"]) == 0
    assert cli.main(["sweep", "--dry-run", "--out", str(tmp_path / "s"), "data.name=synthetic,fashion_mnist",
                     "data.num_classes=10"]) == 0
    capsys.readouterr()


def test_a_config_files_num_classes_is_to_be_removed_not_typed(tmp_path, capsys, no_compile):
    # check_read's advice for a field --config set was "add data.num_classes=10 to the command", which the
    # typed check now refuses on cifar100: remove it from the file instead
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": {"name": "cifar100", "num_classes": 7}}))
    line = one_line(capsys, ["run", "--print-config", "--config", str(path)])
    assert line.endswith(f"(data.num_classes is set by --config {path}, not on the command line: remove it from "
                         "that file)"), line
    # a run's config.json holds the default 10 whatever the dataset: --config takes it back
    path.write_text(json.dumps({"data": {"name": "files", "path": str(tmp_path), "num_classes": 10}}))
    assert cli.main(["run", "--print-config", "--config", str(path)]) == 0
    capsys.readouterr()


# ----------------------------------------------------------------------------- 4. tallysim clean's prefix

def test_tallysim_clean_says_its_errors_as_every_other_command(tmp_path, capsys, monkeypatch):
    # its lines started `tallysim.clean:` (make clean's module), every other command's `tallysim: error:`
    from tallysim import clean
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    assert cli.main(["clean", "mine"]) == 2
    assert capsys.readouterr().err.startswith("tallysim: error: refusing to remove mine: ")
    assert cli.main(["clean", "gone"]) == 0
    assert capsys.readouterr().err == "tallysim: nothing to remove: gone does not exist\n"
    assert clean.main(["mine"]) == 2            # `make clean` (python -m tallysim.clean) names its module
    assert capsys.readouterr().err.startswith("tallysim.clean: refusing to remove mine: ")


# ----------------------------------------------------------------------------- 5. run --print-config --out

@pytest.mark.parametrize("flags, named", [(["--out", "OUT"], "--out"), (["--out", "OUT", "--overwrite"], "--out"),
                                          (["--overwrite"], "--overwrite"), (["--checkpoint-every", "2"],
                                                                             "--checkpoint-every")])
def test_print_config_refuses_the_flags_it_would_ignore(flags, named, tmp_path, capsys):
    # `run --print-config --out DIR` printed the JSON and wrote nothing in DIR, no word said
    flags = [str(tmp_path / "o") if f == "OUT" else f for f in flags]
    line = one_line(capsys, ["run", "--print-config", *flags])
    assert line == (f"tallysim: error: --print-config prints the config a run would use and writes nothing, so "
                    f"{named} is not read with it; allowed: --print-config alone (`> FILE` keeps the JSON, which "
                    "--config reads), or the run without --print-config"), line
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- 6. a quoted number in a sweep file

def test_a_quoted_number_on_a_sweep_axis_runs_as_the_number():
    # checked, not changed: {"optim.lr": ["1e-3"]} runs 0.001 (a float in the config, config.json's too),
    # named as typed (docs/sweeps.md); a quoted value not of the field's type is refused (test_leftovers_dec22m)
    runs = sweep.expand({"optim.lr": ["1e-3", 0.01], "peers": ["3"]}, [])
    assert [n for n, _ in runs] == ["optim.lr=1e-3", "optim.lr=0.01"]
    cfg = sweep.command_configs(config.Config(), runs)[0]
    assert config.to_dict(cfg)["optim"]["lr"] == 0.001 and type(cfg.optim.lr) is float and type(cfg.peers) is int


# ----------------------------------------------------------------------------- 7. a cohort run's memory line

def test_a_cohort_run_says_its_memory_as_a_stacked_run_does(tmp_path, capsys, monkeypatch):
    # client_storage=stacked told the models' memory before the run (storage_hint), client_storage=auto nothing
    from tallysim import storage_notes
    from tallysim.results import metrics
    big = ["protocol.name=fedavg", "peers=100000", "participation=0.0001", "model.width=200", "client_storage=auto"]
    note = storage_notes.cohort_note(config.apply_overrides(config.Config(), big))
    assert note.startswith("client_storage=auto holds the server model and the 10 active clients' models a round "
                           "(about 26.2 MB), not all 100,000 clients' (about 239 GB)"), note
    for items in (big[:-1], big[:2] + ["participation=1", big[-1]], ["protocol.name=tally", *big[1:]],
                  ["protocol.name=fedavg", "peers=100", "participation=0.1", "client_storage=auto"]):
        assert storage_notes.cohort_note(config.apply_overrides(config.Config(), items)) is None, items
    monkeypatch.setattr(run, "run", lambda *a, **k: {})            # the note comes before anything runs
    monkeypatch.setattr(storage_notes, "HINT_BYTES", 1)
    monkeypatch.setattr(metrics, "summary_line", lambda *a: "")
    cli.main(["run", "protocol.name=fedavg", "peers=10", "participation=0.5", "client_storage=auto",
              "--out", str(tmp_path / "o")])
    assert "tallysim: note: client_storage=auto holds the server model and the 5 active" in capsys.readouterr().err
