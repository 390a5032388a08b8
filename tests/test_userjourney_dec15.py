"""userjourney4 (2026-12-06): a federated-learning researcher's first runs in TallyTrain's own regime
(next-word prediction at C = 10,004, a population of 10^5 clients, model groups), the fixes they needed.

- The probe diagnostics on text scored every probe position: `vote_acc`, `softavg_acc` and
  `consensus_acc` counted padding and the PAD / OOV / BOS / EOS targets, which test accuracy never
  scores, as misses, so a vote at the comma floor read below it (0.0859 against a test accuracy of
  0.0898 in the journey's first run). They now score the positions accuracy scores
  (tasks.NextToken.scored_messages); image programs are unchanged (no mask).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim import config
from tallysim.sim import tasks, vote

PAD, BOS, EOS, OOV = tasks.PAD, tasks.BOS, tasks.EOS, tasks.OOV


def test_diagnostics_score_only_the_positions_accuracy_scores():
    # 3 peers, 6 messages, 8 classes; the hidden targets hold every special once and two words
    y = jnp.array([PAD, BOS, EOS, OOV, 5, 6])
    votes = np.array([[5, 5, 5, 5, 5, 6], [5, 5, 5, 5, 5, 6], [7, 7, 7, 7, 4, 4]])   # winners: 5 ... 5, 6
    logits = jax.nn.one_hot(jnp.asarray(votes), 8) * 4.0
    counts = jax.nn.one_hot(jnp.asarray(votes), 8).sum(0)
    t = vote.tally_counts(counts, 3, "lowest", 0.0)
    s = vote.chunk_sums(logits, jnp.ones((3,), bool), y, None, None)
    scored = tasks.NextToken(positions=6).scored_messages(y)
    np.testing.assert_array_equal(np.asarray(scored), [0, 0, 0, 0, 1, 1])
    out = vote.finish_diagnostics(s, 3, y, t.winner_M, t.share_M, scored_M=scored)
    # the two word targets: 5 is voted (hit), 6 is voted (hit): 1.0; over all six it read 2/6
    assert float(out["vote_acc"]) == 1.0 and float(out["softavg_acc"]) == 1.0
    assert float(vote.finish_diagnostics(s, 3, y, t.winner_M, t.share_M)["vote_acc"]) == pytest.approx(2 / 6)
    # images: no mask, the program and its numbers as before
    assert tasks.Classification().scored_messages(y) is None


TINY_TEXT = ["data.name=shakespeare", "partition.kind=natural", "peers=3", "model.name=lstm",
             "model.hidden=16", "batch_size=256", "local_epochs=1", "optim.momentum=0",
             "data.max_train=600", "data.max_test=100", "probe.pool_size=40", "rounds=1"]


def test_vote_acc_on_text_is_the_vote_scored_as_accuracy():
    """A round's vote on the whole pool, recomputed in numpy from the peers' models (lr 1e-30 and no
    warm-up: the models that vote are the initial ones): its accuracy over the scored positions is
    the row's vote_acc and, with every vote kept, its consensus_acc."""
    import tallysim
    cfg = config.apply_overrides(config.Config(), TINY_TEXT + [
        "protocol.name=tally", "probe.per_round=40", "probe.resample=false", "optim.lr=1e-30",
        "warmup_epochs=0"])
    d = tallysim.drive(cfg)
    b = d.built
    params0 = d.state.params
    _, info = d.step()
    rows = np.asarray(b.one.pool_Q)
    x, y = np.asarray(b.one.x_train)[rows], np.asarray(b.one.y_train)[rows].reshape(-1)
    logits = jax.vmap(lambda p: b.ctx.model.apply(p, jnp.asarray(x)))(params0)     # [P, M, T, C]
    votes = np.asarray(jnp.argmax(logits, -1)).reshape(3, -1)
    C = logits.shape[-1]
    counts = np.stack([np.bincount(votes[:, m], minlength=C) for m in range(votes.shape[1])])
    winner = counts.argmax(-1)                                   # ties to the lowest class, as vote.ties=lowest
    scored = ~np.isin(y, [PAD, BOS, EOS, OOV])
    assert scored.sum() < y.size               # the pool holds targets accuracy does not score
    want = (winner == y)[scored].mean()
    assert abs((winner == y).mean() - want) > 1e-4    # so scoring every position would read otherwise
    assert float(info["vote_acc"]) == pytest.approx(want, abs=1e-6)
    assert float(info["consensus_acc"]) == pytest.approx(want, abs=1e-6)


def test_print_config_says_the_memory_estimate_of_a_run_that_fits(capsys):
    """A user checking docs/population.md's memory promise could see the estimate only in a refusal:
    `run --print-config` now prints it on stderr (stdout stays the JSON `--config` reads back)."""
    import json
    from tallysim import cli
    pop = ["protocol.name=fedavg", "peers=100000", "participation=0.0001", "client_storage=auto",
           "data.name=synthetic", "data.input_shape=[8]", "data.num_classes=10", "data.train_size=2401000",
           "data.test_size=1000", "probe.pool_size=1000", "partition.kind=iid", "model.name=mlp",
           "model.width=32", "batch_size=8"]
    assert cli.main(["run", *pop, "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["peers"] == 100000
    line, = [e for e in err.splitlines() if "memory estimate" in e]
    # 2.4M synthetic examples of 8 floats: the largest part, 76.9 MB
    assert line.startswith("tallysim: memory estimate: 82 MB (the largest part: the synthetic data 76.9 MB)"), line


def test_model_groups_of_text_models_need_no_run_level_text_model():
    """Every group names its own text model: the run's model.name (the default mlp) is no peer's, and was
    refused ("model.name=mlp does not fit shakespeare_words"), so a grouped text run had to set a
    model.name nothing used. Each group's model is still checked, naming the group."""
    from tallysim.build import build
    from tallysim.config import ConfigError
    base = [a for a in TINY_TEXT if a != "model.name=lstm" and not a.startswith("model.hidden")]
    cfg = config.apply_overrides(config.Config(), base + [
        "protocol.name=tally", "probe.per_round=4",
        "model.groups=small:2:lstm,hidden=8,layers=1;tf:1:transformer,hidden=8,layers=1,heads=2"])
    assert cfg.model.name == "mlp"
    b = build(cfg)
    assert [g.name for g in b.ctx.model_groups] == ["small", "tf"]
    bad = config.apply_overrides(config.Config(), base + [
        "protocol.name=tally", "probe.per_round=4", "model.groups=small:2:lstm,hidden=8,layers=1;img:1:mlp,width=8"])
    with pytest.raises(ConfigError, match="group img: model.name=mlp does not fit shakespeare"):
        build(bad)


def test_table_leaves_probe_per_round_empty_where_no_probe_is_exchanged():
    """`tallysim table` of tally (32 probe windows) beside FedAvg read FedAvg's probe.per_round as 1000,
    the default it never draws; the protocols that exchange on probes keep theirs."""
    from tallysim.results.table import unread_blank
    swept = ["protocol.name", "probe.per_round"]
    assert unread_blank({"protocol.name": "fedavg", "probe.per_round": 1000}, swept)["probe.per_round"] is None
    assert unread_blank({"protocol.name": "local", "probe.per_round": 1000}, swept)["probe.per_round"] is None
    for name in ("tally", "softlabel", "fedct", "bridge"):
        assert unread_blank({"protocol.name": name, "probe.per_round": 32}, swept)["probe.per_round"] == 32
