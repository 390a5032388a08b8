"""textleft33: text leftovers refused or warned about before anything builds (a soft label rounded to
zeros on a large vocabulary, a noisy target that is never scored, a data.path that does not exist, a
plugin group that trained nothing)."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import one_line  # noqa: F401
from tallysim import cli, run, sweep  # noqa: F401  (imported before no_compile patches jax.jit)
from tallysim import config, validation
from tallysim.config import ConfigError
from tallysim.sim import vote


# ----------------------------------------------------------------------------- 1. a soft label rounded to zeros

@pytest.mark.parametrize("bits", [8, 16])
def test_the_uniform_zero_threshold_is_quantize_probs_own(bits):
    Z = validation.UNIFORM_ZERO_FROM[bits]
    sent = np.asarray(vote.quantize_probs(jnp.asarray([1 / (Z - 1), 1 / Z], jnp.float32), bits))
    assert sent[0] > 0 and sent[1] == 0, sent          # 1/(Z-1) survives, 1/Z is sent as 0


WORDS_SOFT = ["data.name=shakespeare_words", "model.name=lstm", "partition.kind=natural", "protocol.name=softlabel"]


def _warned(items) -> list[str]:
    cfg = config.apply_overrides(config.Config(), items)
    return [w for w in validation.warnings(config.validate(cfg)) if w.startswith("comm.soft_bits")]


def test_softlabel_at_8_bits_on_words_warns_that_a_uniform_target_is_sent_as_zeros():
    (line,) = _warned(WORDS_SOFT + ["comm.soft_bits=8"])
    assert line.startswith("comm.soft_bits=8 with the 10,004 classes of shakespeare_words")
    assert "at or below 1/510 arrives as 0" in line and "only below C = 510" in line
    assert "comm.soft_bits=16" in line and "or 32 keeps it" in line
    assert _warned(WORDS_SOFT + ["comm.soft_bits=16"]) == []        # float16 keeps 1/10,004
    assert _warned(WORDS_SOFT + ["comm.soft_bits=32"]) == []
    assert _warned(["data.name=shakespeare", "model.name=lstm", "partition.kind=natural", "protocol.name=softlabel",
                    "comm.soft_bits=8"]) == []                       # 80 characters: 1/80 survives
    assert len(_warned(["data.name=synthetic", "data.num_classes=1000", "protocol.name=selective_fd",
                        "comm.soft_bits=8"])) == 1
    assert _warned(["data.name=synthetic", "data.num_classes=509", "protocol.name=softlabel",
                    "comm.soft_bits=8"]) == []


def test_the_soft_bits_warning_is_printed_once_before_a_single_run(capsys):
    cfg = config.apply_overrides(config.Config(), WORDS_SOFT + ["comm.soft_bits=8"])
    validation.single_run(cfg)
    err = capsys.readouterr().err
    assert err.count("tallysim: warning: comm.soft_bits=8 with the 10,004 classes") == 1



def test_a_sweep_warns_once_naming_its_runs_whose_soft_labels_round_to_zeros(capsys, tmp_path, no_compile):
    # a sweep prints no validation.warnings(); fig11 sweeps comm.soft_bits=32,8 on words in silence
    assert cli.main(["sweep", "--dry-run", "--out", str(tmp_path / "s"), *WORDS_SOFT, "comm.soft_bits=32,8"]) == 0
    err = capsys.readouterr().err
    assert err.count("tallysim: warning: sweep run comm.soft_bits=8: comm.soft_bits=8 with the 10,004 classes") == 1
    assert "comm.soft_bits=32:" not in err

# ----------------------------------------------------------------------------- 2. a noisy target never scored

# EOS, OOV and a target past the vocabulary are refused beside PAD and BOS: test_leftovers_dec22m's
# test_a_text_fault_target_that_is_never_scored_is_refused.


def _wrong(C, task, y, rows=None, target=-1):
    from types import SimpleNamespace as NS
    import jax
    from tallysim.sim import faults
    ctx = NS(spec=NS(classes=C, task=task, input_shape=(20,) if task == "next_token" else (8,)),
             cfg=NS(faults=NS(target=target)))
    fr = NS(key=jax.random.PRNGKey(3))
    return np.asarray(faults.wrong_classes(ctx, fr, jnp.arange(4), jnp.asarray(y, jnp.int32), rows))


def test_a_random_wrong_token_on_text_is_a_word_other_than_the_label():
    C = 12
    y = np.tile(np.arange(C), 400)                  # every token as the label, words and specials
    got = _wrong(C, "next_token", y)
    assert got.min() >= 4 and got.max() < C         # never PAD, BOS, EOS or OOV (was (y + U[1, C)) % C)
    assert not np.any((got == y) & (y >= 4))         # a word label: always another word
    for label in (0, 2, 5):                          # every word drawn, about equally (8 words, or 7 others)
        counts = np.bincount(got[:, y == label].ravel(), minlength=C)[4:]
        n = 8 - (label >= 4)
        assert (counts > 0).sum() == n and counts.max() < 2 * counts.sum() / n, counts
    block = _wrong(C, "next_token", y[40:56], rows=(40, len(y)))    # a probe block: the same draws
    np.testing.assert_array_equal(block, got[:, 40:56])


def test_a_random_wrong_class_on_images_is_unchanged():
    import jax
    C, y = 10, np.arange(10).repeat(20)
    want = np.stack([(y + np.asarray(jax.random.randint(jax.random.fold_in(jax.random.PRNGKey(3), p), y.shape,
                                                          1, C))) % C for p in range(4)])
    np.testing.assert_array_equal(_wrong(C, "classification", y), want)


def test_label_flip_on_text_stays_among_the_words():
    from tallysim.sim import local, tasks
    y = jnp.array([[0, 1, 2, 3, 4, 5, 10, 11]], jnp.int32)        # C = 12: the specials, then 8 words
    flipped, w = local.private_targets(tasks.make("next_token", (8,)), y, jnp.array([True]), jnp.bool_(True), 12)
    assert flipped.tolist() == [[0, 1, 2, 3, 5, 6, 11, 4]]          # the last word to the first, never to PAD
    assert w.tolist() == [[0.0] + [1.0] * 7]                         # the weights read from the labels as they are


# ----------------------------------------------------------------------------- 3. a data.path that does not exist

@pytest.mark.parametrize("command", [["run", "--print-config"], ["sweep", "--dry-run", "--out", "SWEEP", "seed=0,1"],
                                     ["run", "--out", "RUN"]])
def test_a_missing_data_path_is_refused_in_one_line_before_anything_loads(capsys, tmp_path, no_compile, command):
    command = [str(tmp_path / c) if c in ("SWEEP", "RUN") else c for c in command]
    missing = tmp_path / "fashon"
    line = one_line(capsys, command + ["data.name=files", f"data.path={missing}"])
    assert line == (f"tallysim: error: data.path={missing} does not exist; allowed: a directory of IDX files "
                    "(or with one .npz file), or an .npz file"), line
    assert not (tmp_path / "SWEEP").exists() and not (tmp_path / "RUN").exists()


def test_a_data_path_of_a_plain_file_is_refused_and_a_directory_passes(capsys, tmp_path):
    (tmp_path / "x.txt").write_text("")
    line = one_line(capsys, ["run", "--print-config", "data.name=files", f"data.path={tmp_path / 'x.txt'}"])
    assert "x.txt is a file, not an .npz file" in line
    assert cli.main(["run", "--print-config", "data.name=files", f"data.path={tmp_path}"]) == 0


def test_the_api_run_refuses_a_missing_data_path_before_loading(tmp_path):
    import tallysim
    cfg = config.apply_overrides(config.Config(), ["data.name=files", f"data.path={tmp_path / 'none'}"])
    with pytest.raises(ConfigError, match="does not exist"):
        tallysim.run(cfg, out=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- 4. a plugin group that trained nothing

def test_unreported_steps_names_a_group_at_loss_0_whose_info_has_no_step_count():
    from tallysim.results.rows import unreported_steps
    info = {"train_loss@a": np.array([0.7]), "train_loss@b": np.array([0.0])}
    assert unreported_steps(info, ["a", "b"], 0) == ["b"]
    assert unreported_steps({**info, "stepped@b": np.array([0])}, ["a", "b"], 0) == []    # built-in: the row nulls it
    assert unreported_steps({**info, "train_loss@b": np.array([0.3])}, ["a", "b"], 0) == []


def test_a_grouped_plugin_round_without_steps_warns_once_when_a_group_trained_nothing(capsys):
    """Wired: local's grouped round with its stepped@NAME keys dropped (a plugin's round that called
    loss_info(ctx, loss_A) and put no steps in its info), group b's peers holding no examples: 2 rounds,
    one warning (a built-in's info, with the keys: test_unreported_steps_names_a_group_at_loss_0_...)."""
    import dataclasses
    from conftest import tiny
    b = run.build(tiny("protocol.name=local", "model.groups=a:2;b:2", "rounds=2", "eval_every=2"))
    b = dataclasses.replace(b, fed=b.fed._replace(count_P=b.fed.count_P.at[..., 2:].set(0)))
    real = b.protocol.round

    def plugin_round(state, data, key, r):
        state, info = real(state, data, key, r)
        return state, {k: v for k, v in info.items() if not k.startswith("stepped@")}
    run.run(b.cfg, progress=False, built=dataclasses.replace(b, protocol=b.protocol._replace(round=plugin_round)))
    err = capsys.readouterr().err
    assert err.count("tallysim: warning: round 1: model group b reports train_loss@b 0 and the round's info holds "
                     "no stepped@b") == 1, err
    assert "loss_info(ctx, loss_A, steps)" in err
