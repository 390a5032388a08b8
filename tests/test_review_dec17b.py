"""review18: the later part of 2026-12-06's change. A checkpoint from before a config field existed is
continued by `run --resume` and by a sweep (its config read as config.json is, new fields at their
defaults), and one that recorded fewer JAX random settings than this code does is not refused for it."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import RESUMABLE, tiny
from tallysim import checkpoint, config, sweep_resume


def _rewrite_meta(path, edit) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    edit(meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_a_checkpoint_from_before_a_field_existed_is_continued(tmp_path, checkpointed):
    # was refused by both: "this config differs from the config ... (cohort_draw=None->'sort')"
    d = tmp_path / "sweep" / "seed=0"
    shutil.copytree(checkpointed, d)
    _rewrite_meta(d / checkpoint.FILE, lambda m: m["config"].pop("cohort_draw"))
    cfg = config.validate(tiny(*RESUMABLE))
    assert checkpoint.check_resume(cfg, str(d))[0] == d
    sweep_resume.refuse_lost_checkpoints([("seed=0", [])], [cfg], d.parent, "done.json")
    with pytest.raises(config.ConfigError, match="rounds=3->5"):        # a real difference still refused
        sweep_resume.refuse_lost_checkpoints([("seed=0", [])], [config.validate(tiny(*RESUMABLE, "rounds=5"))],
                                             d.parent, "done.json")


def test_a_checkpoint_recording_fewer_random_settings_is_continued(tmp_path, checkpointed):
    # a setting this code records and the checkpoint's code did not (or a JAX without it): was refused
    from tallysim import code_identity
    d = tmp_path / "run"
    shutil.copytree(checkpointed, d)
    now = code_identity.random_settings()
    _rewrite_meta(d / checkpoint.FILE, lambda m: m.update(random={"prng_impl": now["prng_impl"]}))
    assert checkpoint.check_resume(config.validate(tiny(*RESUMABLE)), str(d))[0] == d
    _rewrite_meta(d / checkpoint.FILE, lambda m: m.update(random={"prng_impl": "rbg"}))      # still refused
    with pytest.raises(config.ConfigError, match="JAX_DEFAULT_PRNG_IMPL=rbg"):
        checkpoint.check_resume(config.validate(tiny(*RESUMABLE)), str(d))


def test_a_sweep_with_a_refused_run_of_counts_is_refused_before_any_run(capsys, monkeypatch, tmp_path):
    # was refused at that run's build: the first run ran, then "1 failed" (then a star run; star is allowed
    # since the server sends the histograms, tests/test_votes_dec18b.py; vote.ties=random is still refused)
    from conftest import argv, one_line
    from tallysim import run
    monkeypatch.setattr(run, "run", lambda *a, **k: pytest.fail("a run started before the sweep was refused"))
    monkeypatch.setattr(run, "run_group", lambda *a, **k: pytest.fail("a run started before the sweep was refused"))
    line = one_line(capsys, ["sweep", "--quiet", "--out", str(tmp_path / "s"),
                             *argv("protocol.name=tally", "tally.target=counts"), "vote.ties=lowest,random"])
    assert "not with vote.ties=random" in line and "allowed: those at their defaults" in line
    assert not (tmp_path / "s" / "vote.ties=lowest").exists()


def test_the_estimate_counts_the_counts_targets_unblocked_soft_sums():
    # tally.target=counts sums its one-hot votes over every probe at once (the soft path, never in blocks):
    # 4096 word windows were estimated at 533 MB of probe outputs, a blocked vote's, not the ~39 GB it holds
    from tallysim import sizing
    items = ["protocol.name=tally", "comm.topology=allgather", "data.name=shakespeare_words", "peers=10",
             "probe.per_round=4096"]

    def outputs(*more):
        cfg = config.apply_overrides(config.Config(), items + list(more))
        return dict((what, n) for what, n, _ in sizing.estimate_bytes(cfg))["the probe outputs"]
    soft = sizing.exchange_bytes(10, 4096, 10_004, True, positions=20, blocked=False)
    assert outputs("tally.target=counts") == soft > 20 * outputs()


def test_counts_trains_on_the_histogram_whatever_a_sweeps_base_sets_for_softlabel(monkeypatch):
    # a sweep over protocol.name=softlabel,tally with softlabel.aggregate=median in its base (a field one of
    # its runs reads, so not refused): the counts run took the robust path and trained on the median of the
    # peers' probabilities, its one-hot votes never summed. drive() refuses the unread field as a single run
    # does; sweeps never check it, so it is let through here as a sweep's run is.
    import jax

    import tallysim
    from tallysim import validation
    monkeypatch.setattr(validation, "single_run", lambda *a, **k: None)
    items = ("protocol.name=tally", "comm.topology=allgather", "rounds=1", "tally.target=counts")
    a = tallysim.drive(tiny(*items, "softlabel.aggregate=median"))
    b = tallysim.drive(tiny(*items))
    a.step(), b.step()
    for x, y in zip(jax.tree.leaves(a.state.params), jax.tree.leaves(b.state.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-6)
