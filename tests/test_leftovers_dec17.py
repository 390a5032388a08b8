"""Leftovers the last closing note listed (leftovers17): vote_acc / softavg_acc with nothing scored, the
memory estimate's kept results of faults and Confident-GNMax, figures.ipynb's progress without ipywidgets,
an all-skipped sweep re-run's data digests, a moved relative .npz path on resume, the shipped figure
tables' bit format and `table --metric` with a name it cannot show. Each test names what the input did
before its fix; tiny inputs, no training except where a run is the thing tested."""
from __future__ import annotations

import csv
import json
import math

import pytest


def _write_run(d, rows, cfg):
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


BASE = {"protocol": {"name": "tally"}, "rounds": 2, "seeds": 2}


# ------------------------------------------------------------------ 1. vote_acc / softavg_acc, nothing scored

def test_vote_and_softavg_acc_with_nothing_scored_are_nan():
    """A text round whose probe positions are all PAD/OOV/BOS/EOS scored nothing: vote_acc and softavg_acc
    read 0.0 (every answer wrong) where consensus_acc read NaN. Now the one rule (vote.scored_mean) gives
    NaN to all three, the blocked vote's too (it calls the same function); images (no mask) unchanged."""
    import jax.numpy as jnp
    from tallysim.sim import vote
    hit = jnp.array([1.0, 0.0, 1.0, 1.0])
    assert math.isnan(float(vote.scored_mean(hit, jnp.zeros(4))))
    assert float(vote.scored_mean(hit, jnp.array([1.0, 1.0, 0.0, 0.0]))) == pytest.approx(0.5)
    assert float(vote.scored_mean(hit)) == pytest.approx(0.75)
    logits = jnp.array([[[2.0, 0.0, 0.0]] * 4, [[0.0, 2.0, 0.0]] * 4, [[2.0, 0.0, 0.0]] * 4])   # [A, M, C]
    y = jnp.array([0, 0, 1, 2], jnp.int32)
    sums = vote.chunk_sums(logits, jnp.ones((3,), bool), y)
    winner, share = jnp.zeros(4, jnp.int32), jnp.full((4,), 2 / 3)
    out = vote.finish_diagnostics(sums, 3, y, winner, share, scored_M=jnp.zeros(4))
    assert math.isnan(float(out["vote_acc"])) and math.isnan(float(out["softavg_acc"])), out
    assert float(out["agreement"]) == pytest.approx(2 / 3)      # over every message, as before
    out = vote.finish_diagnostics(sums, 3, y, winner, share, scored_M=jnp.array([1.0, 1.0, 0.0, 0.0]))
    assert (float(out["vote_acc"]), float(out["softavg_acc"])) == (1.0, 1.0), out


def test_null_vote_acc_rounds_are_skipped_by_figures_and_pareto(tmp_path, capsys):
    """Its readers: the mechanism figure's band raised a TypeError (None - std) on a two-seed run with one
    null round, and `pareto --which best --metric vote_acc` skipped the run as having "no 'vote_acc' values" for its null last round."""
    from tallysim.figures import plots
    from tallysim.results import pareto, table
    rows = [{"round": r, "acc_mean": 0.5, "acc_mean_std": 0.01, "acc_global": None, "bits_per_peer": 100 * r,
             "vote_acc": v, "softavg_acc": v, "wrong_confidence": 0.4, "wrong_confidence_std": 0.02,
             "agreement": 0.9, **({} if v is None else {"vote_acc_std": 0.05, "softavg_acc_std": 0.05})}
            for r, v in ((1, 0.6), (2, None))]
    d = _write_run(tmp_path / "sw" / "partition.alpha=0.5", rows, {**BASE, "partition": {"alpha": 0.5}})
    paths = plots.mechanism({}, {"tally": [({"partition.alpha": "0.5"}, d)]}, tmp_path / "mech", "t")
    drawn = list(csv.DictReader(open(paths["csv"])))
    assert [r["vote_acc"] for r in drawn] == ["0.6", ""], drawn
    (row,) = table.table_rows([d], "vote_acc")[1]
    assert (row["final vote_acc"], row["best vote_acc"]) == (None, 0.6), row
    logged = []
    (p,) = pareto.collect([tmp_path / "sw"], which="best", metric="vote_acc", log=logged.append)
    assert (p["accuracy"], p["accuracy_final"]) == (0.6, None), p
    assert pareto.collect([tmp_path / "sw"], which="final", metric="vote_acc", log=logged.append) == []
    assert "last round's 'vote_acc' is null" in logged[-1] and "--which best" in logged[-1], logged
    pareto.write_tables([p], [p], str(tmp_path / "pf.png"), "best", "vote_acc")      # "" for the null final
