"""Results you can trust, for every registered protocol (tests/trust_cases.py): a run stopped after a
round and resumed from its checkpoint writes the uninterrupted run's metrics.jsonl (values and bits,
exactly: the same programs run), including every protocol's between-round state; the same seed twice
gives identical rows, another seed other rows; the seed chunk (lanes per program) changes no vote, bit
or accuracy. trust_cases.FAST's cases run in make test, the rest in make test-all (each case is 1-4 runs)."""
import pytest
from conftest import crash_after_row

import trust_cases as tc
from tallysim import checkpoint, protocols, run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class Crash(Exception):
    pass


def _crash_then_resume(case, tmp_path, monkeypatch, at_round, every, *extra):
    """The rows of items(case) stopped right after round `at_round`'s row was written (checkpoints every
    `every` rounds) and resumed with `run --resume`'s own entry point."""
    out = tmp_path / "crashed"
    with monkeypatch.context() as m:
        crash_after_row(m, at_round, Crash)
        with pytest.raises(Crash):
            run.run(tc.cfg(case, *extra), str(out), progress=False, checkpoint_every=every)
    assert (out / checkpoint.FILE).is_file()
    run.run(tc.cfg(case, *extra), str(out), progress=False, checkpoint_every=every, resume=True)
    assert not (out / checkpoint.FILE).exists()
    return tc.read_rows(out)


def test_every_registered_protocol_has_a_trust_case():
    assert set(tc.STATE) == set(protocols.REGISTRY)


@pytest.mark.parametrize("case", tc.marked("resume", tc.every_case()))
def test_resume_after_round_3_gives_the_uninterrupted_rows(case, tmp_path, monkeypatch):
    # checkpoint after round 2, rows 3 written then lost: round 3 is recomputed from the checkpoint
    assert _crash_then_resume(case, tmp_path, monkeypatch, 3, 2) == tc.loaded(case)


@pytest.mark.parametrize("case", tc.marked("segments", ["tally", "fedadam", "fedct", "scaffold"]))
def test_resume_where_the_segments_differ_from_the_uninterrupted_run(case, tmp_path, monkeypatch):
    """eval_every=2: the uninterrupted run scans rounds 1-2 and 3-4 as one program each; the stopped run
    checkpoints every round, so it runs single rounds. The same numbers either way (floats to rounding:
    other programs)."""
    ref = tc.loaded(case, "eval_every=2")
    assert [r["round"] for r in ref] == [2, 4]
    got = _crash_then_resume(case, tmp_path, monkeypatch, 2, 1, "eval_every=2")
    # Two programs here (a 2-round scan against single rounds): XLA may fuse a float reduction
    # differently in each (on an AVX-512 CPU tally's wrong_confidence came out 6e-8 apart), so floats
    # agree to rounding; integers (bits, steps, rounds) and every other value exactly.
    assert [sorted(r) for r in got] == [sorted(r) for r in ref]
    for g, r in zip(got, ref):
        for key in r:
            if isinstance(r[key], float) or (isinstance(r[key], list) and r[key]
                                             and isinstance(r[key][0], float)):
                assert g[key] == pytest.approx(r[key], rel=1e-5, abs=1e-7), (r["round"], key)
            else:
                assert g[key] == r[key], (r["round"], key)


@pytest.mark.parametrize("case", tc.marked("seeds", protocols.REGISTRY))
def test_same_seed_same_rows_other_seed_other_rows_and_lanes_change_nothing(case, tmp_path):
    """seeds=2 in one program (2 lanes) and in chunks of one (1 lane, the single run's program): the
    per-seed votes, bits and accuracies are identical; chunks of one are the single runs exactly; the
    two seeds differ; and a second run of the same seed is identical to the first."""
    one = tc.loaded(case)
    again = tc.read_rows(run.run(tc.cfg(case), str(tmp_path / "again"), progress=False)["out"])
    assert again == one
    chunked = tc.loaded(case, "seeds=2", "seed_chunk=1")
    together = tc.loaded(case, "seeds=2")
    exact = [k for k in chunked[0]["per_seed"] if k.startswith(("acc_", "vote_", "bits", "softavg_")) or k in
             ("agreement", "kept", "merged")]
    assert "acc_mean" in exact or "acc_global" in exact
    for rc, rt, r1 in zip(chunked, together, one):
        for k in exact:
            assert rc["per_seed"][k] == rt["per_seed"][k], (case, rc["round"], k)
        for k, v in r1.items():            # seed 0 alone = lane 0 of the chunks of one, every column
            if k not in ("round",) and k in rc["per_seed"]:
                assert rc["per_seed"][k][0] == v, (case, rc["round"], k)
    last = chunked[-1]["per_seed"]
    assert any(last[k][0] != last[k][1] for k in exact if not k.startswith("bits")) or \
        last.get("train_loss", [0, 0])[0] != last.get("train_loss", [0, 0])[1], (case, "two seeds, one result")


@pytest.mark.parametrize("case", tc.marked("chunks", protocols.REGISTRY))
def test_exchange_chunks_and_eval_batches_change_no_vote_bit_or_accuracy(case, tmp_path, monkeypatch):
    """The probe exchange streams 3 of the 4 active peers at a time (a padded last chunk) and the test set
    is evaluated 24 examples at a time (a padded last batch) instead of everything at once: the votes,
    bits and accuracies of the whole run are the same. (Soft sums are added in another order: losses and
    soft targets may move in the last float bits, so only what is counted is compared exactly.)"""
    from tallysim import sizing
    b = run.build(tc.cfg(case))
    M, C = b.ctx.spec.probes, b.ctx.spec.classes
    monkeypatch.setattr(sizing, "CHUNK_BYTES", 3 * 4 * M * C)
    assert sizing.peer_chunk(4, M, C) == 3 and sizing.eval_batch(4, C) == 3 * M // 4
    rows = tc.read_rows(run.run(tc.cfg(case), str(tmp_path / "chunked"), progress=False)["out"])
    ref = tc.loaded(case)
    exact = [k for k in ref[0] if k.startswith(("acc_", "vote_acc", "bits", "softavg_acc")) or k in
             ("round", "agreement", "kept", "merged", "eval_peers", "faulty")]
    assert [{k: r.get(k) for k in exact} for r in rows] == [{k: r.get(k) for k in exact} for r in ref], case
