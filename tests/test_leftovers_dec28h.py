"""leftovers57: three leftovers of the hostile25 round.

1. probe.source naming a known dataset of other inputs than the training data's: refused by validation
   (`run --print-config`, a sweep's --dry-run), naming both shapes, before anything loads.
2. `tallysim table FILE/x` where FILE is a file: says FILE is a file, not "does not exist".
3. experiments/wordclaim.py refuses an override that changes the dataset it is built for.
"""
from __future__ import annotations

import pytest
from conftest import one_line

from tallysim import data


@pytest.fixture
def no_load(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("data.load was called: the check ran after loading")
    monkeypatch.setattr(data, "load", refuse)


@pytest.mark.parametrize("argv, said", [
    (["data.name=fashion_mnist", "probe.source=cifar10"],
     "probe.source=cifar10 has inputs of shape (32, 32, 3) but data.name=fashion_mnist has inputs of shape (28, 28, 1)"),
    (["data.name=fashion_mnist", "probe.source=shakespeare"],
     "probe.source=shakespeare has text windows of shape (80,) but data.name=fashion_mnist has inputs of shape "
     "(28, 28, 1)"),
    (["data.name=synthetic", "data.input_shape=[8,8,1]", "probe.source=mnist"],
     "probe.source=mnist has inputs of shape (28, 28, 1) but data.name=synthetic has inputs of shape (8, 8, 1)"),
    (["data.name=shakespeare", "model.name=lstm", "partition.kind=natural", "probe.source=shakespeare_words"],
     "probe.source=shakespeare_words has text windows of shape (20,) but data.name=shakespeare has text windows "
     "of shape (80,)"),
], ids=["cifar-on-fmnist", "text-on-images", "mnist-on-synthetic", "words-on-chars"])
def test_a_probe_source_of_other_inputs_is_refused_before_loading(capsys, no_load, argv, said):
    line = one_line(capsys, ["run", "--print-config", "peers=4", *argv])
    assert said in line, line
    assert "allowed: a probe.source of the training inputs' shape" in line, line


def test_a_sweeps_dry_run_refuses_it_too(tmp_path, capsys, no_load):
    line = one_line(capsys, ["sweep", "--dry-run", "--out", str(tmp_path / "s"), "peers=4",
                             "data.name=fashion_mnist", "probe.source=mnist,cifar10"])
    assert "probe.source=cifar10 has inputs of shape (32, 32, 3)" in line, line
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("argv", [["data.name=fashion_mnist", "probe.source=mnist"],
                                  ["data.name=fashion_mnist", "probe.source=kmnist"],
                                  ["data.name=synthetic", "probe.source=emnist/letters"]])
def test_a_probe_source_of_the_same_inputs_passes(capsys, no_load, argv):
    from tallysim import config, validation
    validation.check_rules(config.apply_overrides(config.Config(), argv))



def test_a_files_dataset_is_compared_by_its_headers(tmp_path, capsys, no_load):
    import numpy as np
    np.savez(tmp_path / "d.npz", x_train=np.zeros((20, 28, 28), np.uint8), y_train=np.arange(20) % 10,
             x_test=np.zeros((10, 28, 28), np.uint8), y_test=np.arange(10))
    line = one_line(capsys, ["run", "--print-config", "peers=4", "data.name=files", f"data.path={tmp_path / 'd.npz'}",
                             "probe.source=cifar10"])
    assert "probe.source=cifar10 has inputs of shape (32, 32, 3) but data.name=files has inputs of shape (28, 28, 1)" \
        in line, line

# ----------------------------------------------------------------------------- 2. a file on the way

@pytest.mark.parametrize("argv, said", [
    (["table", "{f}/x"], "{f}/x does not exist: {f} is a file, not a folder; pass run directories"),
    (["table", "{f}/x/y"], "{f}/x/y does not exist: {f} is a file, not a folder"),
    (["pareto", "{f}/x", "--out", "{t}/p.png"], "{f}/x does not exist: {f} is a file, not a folder"),
    (["plot", "{f}/x", "--out", "{t}/p.png"], "{f}/x does not exist: {f} is a file, not a folder"),
    (["compare", "{f}/x", "{f}/y"], "A {f}/x does not exist: {f} is a file, not a folder"),
], ids=["table", "table-deeper", "pareto", "plot", "compare"])
def test_a_path_under_a_file_says_the_file_is_no_folder(tmp_path, capsys, argv, said):
    f = tmp_path / "results.csv"
    f.write_text("a,b\n")
    fill = {"f": str(f), "t": str(tmp_path)}
    line = one_line(capsys, [a.format(**fill) for a in argv])
    assert said.format(**fill) in line, line
    assert not (tmp_path / "p.png").exists()


def test_a_path_under_a_missing_folder_still_says_only_that(tmp_path, capsys):
    line = one_line(capsys, ["table", str(tmp_path / "gone" / "x")])
    assert f"{tmp_path / 'gone' / 'x'} does not exist;" in line, line


# ----------------------------------------------------------------------------- 3. wordclaim's dataset

@pytest.mark.parametrize("argv", [["--smoke", "local", "data.name=shakespeare"],
                                  ["--smoke", "data.name=shakespeare", "seed=0"],
                                  ["--smoke", "--spec=experiments/wordtransformer.json", "data.name=shakespeare"]],
                         ids=["group", "every-group", "transformer"])
def test_wordclaim_refuses_another_dataset_before_any_run(monkeypatch, argv):
    # a character run's table called its most frequent token (the space) "the comma"
    from experiments import wordclaim

    def refuse(*a, **k):
        raise AssertionError("a run started")
    monkeypatch.setattr(wordclaim, "run_one", refuse)
    with pytest.raises(SystemExit, match=r"wordclaim.py: data.name=shakespeare \(group \w+\): this script measures "
                                         r"the large-C claim on shakespeare_words, whose most frequent token, the "
                                         r"comma, its table names; allowed: data.name=shakespeare_words or no"):
        wordclaim.main(argv)


def test_wordclaim_takes_its_own_dataset_named_again(monkeypatch):
    from experiments import wordclaim
    ran = []
    monkeypatch.setattr(wordclaim, "run_one", lambda g, c, s, over: ran.append(g) or {})
    monkeypatch.setattr(wordclaim, "table", lambda results, floor: "")
    monkeypatch.setattr(wordclaim.textclaim, "floor", lambda name, n: 0.0)
    monkeypatch.setattr("builtins.print", lambda *a, **k: None)
    wordclaim.main(["--smoke", "local", "seed=0", "data.name=shakespeare_words"])
    assert ran == ["local"]
