"""faults.redraw=true at population scale (sim/faults.py): under cohort_draw=sequential a round draws only
its cohort's faulty status (`cohort_status`, sequential hypergeometric draws), checked against the
enumerated distribution of a uniform faulty set restricted to the cohort; nothing in such a round is
[P]-shaped; the round's info carries the count, not a [P] mask; the metrics' redrawn set under `sort`
is the round's own."""
import itertools
import re
from dataclasses import replace
from math import comb
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from conftest import run_rows, tiny
from tallysim.protocols.base import active_set, round_keys
from tallysim.sim import faults

P, F, A = 7, 3, 4           # small enough to enumerate every status vector of the cohort
DRAWS = 20_000


def status_probs(peers, faulty, active):
    """{status vector of `active` fixed peers: probability} when `faulty` of `peers` are faulty,
    uniformly (every faulty set equally likely): C(P - A, F - k) / C(P, F) for a vector with k faulty."""
    return {v: comb(peers - active, faulty - sum(v)) / comb(peers, faulty)
            for v in itertools.product((0, 1), repeat=active)
            if sum(v) <= faulty and faulty - sum(v) <= peers - active}


def drawn(status, n=DRAWS, seed=2026):
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    return np.asarray(jax.jit(jax.vmap(status))(keys)).astype(int)


def chi_square_p(got, probs):
    seen = {}
    for row in map(tuple, got.tolist()):
        seen[row] = seen.get(row, 0) + 1
    assert set(seen) <= set(probs), "an impossible status vector was drawn"
    support = sorted(probs)
    counts = np.array([seen.get(v, 0) for v in support])
    return stats.chisquare(counts, len(got) * np.array([probs[v] for v in support])).pvalue


def wrong_status(key, peers, faulty, active):
    """A plausible mistake: independent coins with the right marginal F / P (the count is then binomial,
    not hypergeometric, and can exceed F)."""
    return jax.random.uniform(key, (active,)) < faulty / peers


def test_the_cohort_s_status_follows_a_uniform_faulty_set():
    """Chi-square over every status vector of the cohort, each peer's marginal F / P within 5 binomial
    sigmas, and the count's mean A * F / P; the negative control (independent coins) is rejected."""
    got = drawn(lambda k: faults.cohort_status(k, P, F, A))
    probs = status_probs(P, F, A)
    assert chi_square_p(got, probs) > 1e-3
    freq = got.mean(axis=0)
    assert (np.abs(freq - F / P) <= 5 * np.sqrt(F / P * (1 - F / P) / DRAWS)).all()
    assert abs(got.sum(axis=1).mean() - A * F / P) < 0.05
    bad = drawn(lambda k: wrong_status(k, P, F, A))
    bad_probs = {v: p for v, p in status_probs(P, F, A).items()}
    bad = bad[bad.sum(axis=1) <= F]                 # the chi-square's support (more than F: impossible)
    assert chi_square_p(bad, bad_probs) < 1e-12


def test_the_whole_population_gets_exactly_the_faulty_count():
    """Drawn over all P peers the sequential draws mark exactly F (the hypergeometric walk uses up the
    faulty peers), every set equally likely; at the edges, none or every peer."""
    got = drawn(lambda k: faults.cohort_status(k, P, F, P), n=5000)
    assert (got.sum(axis=1) == F).all()
    sets = {}
    for row in map(tuple, got.tolist()):
        sets[row] = sets.get(row, 0) + 1
    assert len(sets) == comb(P, F)
    assert stats.chisquare(list(sets.values())).pvalue > 1e-3
    assert drawn(lambda k: faults.cohort_status(k, P, P, A), n=50).all()
    assert not drawn(lambda k: faults.cohort_status(k, P, 0, A), n=50).any()
    big = 2**31 - 1         # P up to the int32 field's limit
    assert drawn(lambda k: faults.cohort_status(k, big, big // 2, 8), n=200).mean() == pytest.approx(0.5, abs=0.06)


def ctx_of(*items, peers=P, active=A):
    cfg = tiny(*items, f"peers={peers}", f"participation={active / peers}")
    return SimpleNamespace(cfg=cfg, spec=SimpleNamespace(peers=peers, active=active, classes=10), model_groups=None)


@pytest.mark.parametrize("kind", ["label_flip", "dropout"])
def test_a_sequential_round_has_no_population_shaped_value(kind):
    """The traced fault draw of a sequential round at P = 1,000,003 holds nothing of P's size (the
    number is in no shape of its jaxpr), and its info is the count alone."""
    peers = 1_000_003
    ctx = ctx_of(f"faults.kind={kind}", "faults.fraction=0.3", "faults.redraw=true", "faults.drop_prob=0.5",
                 "cohort_draw=sequential", peers=peers, active=10)
    data = SimpleNamespace(faulty_P=None)

    def round_faults(root):
        idx = active_set(ctx, round_keys(root, 1).active, data)
        fr = faults.for_round(ctx, data, root, 1, idx)
        assert fr.faulty_P is None and fr.faulty_A.shape == (10,)
        return fr.info(), fr.lost_A
    info, _ = round_faults(jax.random.PRNGKey(0))
    assert set(info) == {"faulty"}
    jaxpr = str(jax.make_jaxpr(round_faults)(jax.random.PRNGKey(0)))
    assert f"sub {peers}:i32" in jaxpr                      # P is there, as a scalar ...
    assert not re.search(rf"\[{peers}\b|\b{peers}\]|,{peers}\b", jaxpr)   # ... in no shape
    counts = jax.vmap(lambda k: round_faults(k)[0]["faulty"])(jax.random.split(jax.random.PRNGKey(1), 2000))
    expected = 10 * 0.3 * (0.5 if kind == "dropout" else 1.0)
    assert abs(float(jnp.mean(counts)) - expected) < 0.15


def test_sort_s_redrawn_set_is_the_one_the_metrics_read():
    """Under cohort_draw=sort the round draws its set from all P (as earlier versions); eval_sets
    recomputes the same set per lane at an evaluation round, and gives no set under sequential."""
    ctx = ctx_of("faults.kind=label_flip", "faults.fraction=0.3", "faults.redraw=true", active=P)
    data = SimpleNamespace(faulty_P=None)
    roots = jax.random.split(jax.random.PRNGKey(5), 3)
    for r in (1, 4):
        in_round = np.stack([np.asarray(faults.for_round(ctx, data, k, r, None).faulty_P) for k in roots])
        assert (in_round.sum(axis=1) == faults.count(ctx.cfg, P)).all()
        assert np.array_equal(faults.eval_sets(ctx.cfg, P, None, [0, 1, 2], roots, r), in_round)
    seq = replace(ctx.cfg, cohort_draw="sequential")
    assert faults.eval_sets(seq, P, None, [0], roots, 1) is False
    fixed = replace(ctx.cfg, faults=replace(ctx.cfg.faults, redraw=False))
    mask = np.zeros((2, P), bool)
    mask[1, 2] = True
    assert np.array_equal(faults.eval_sets(fixed, P, jnp.asarray(mask), [1, 1], roots, 3), mask[[1, 1]])
    off = replace(ctx.cfg, faults=replace(ctx.cfg.faults, kind="none"))
    assert faults.eval_sets(off, P, jnp.asarray(mask), [0], roots, 3) is None


def test_a_redrawn_sequential_run_reports_faulty_counts_and_no_honest_set(tmp_path):
    """A whole run: the rows' faulty counts come from the cohort's draw (at most A, at most the faulty
    count); acc_mean_honest is null (no set outside the cohort was drawn); two runs agree exactly."""
    cfg = tiny("protocol.name=fedavg", "peers=8", "participation=0.5", "faults.kind=label_flip",
               "faults.fraction=0.5", "faults.redraw=true", "cohort_draw=sequential", "rounds=3", "eval_every=1")
    rows = run_rows(cfg, tmp_path / "a")
    assert [r["round"] for r in rows] == [1, 2, 3]
    assert all(0 <= r["faulty"] <= 4 for r in rows) and all(r["acc_mean_honest"] is None for r in rows)
    assert rows == run_rows(cfg, tmp_path / "b")


def test_rows_read_each_evaluation_round_s_own_redrawn_set(tmp_path):
    """cohort_draw=sort, faults.redraw=true: each row's acc_mean_honest is the mean of acc_peers over the
    peers outside the set that round r drew (recomputed here from the run's round key), not another
    round's set and not the seed's."""
    cfg = tiny("protocol.name=fedavg", "peers=8", "participation=0.5", "faults.kind=label_flip",
               "faults.fraction=0.25", "faults.redraw=true", "rounds=3", "eval_every=1", "seed=4")
    rows = run_rows(cfg, tmp_path / "a")
    root = jax.random.split(jax.random.PRNGKey(4))[1]               # programs.chunk_inputs' round key
    sets = [np.asarray(faults.redrawn_set(8, 2, root, jnp.int32(r["round"]))) for r in rows]
    assert len({s.tobytes() for s in sets}) > 1 and all(s.sum() == 2 for s in sets)
    for row, faulty in zip(rows, sets):
        acc = np.asarray(row["acc_peers"])
        assert row["acc_mean_honest"] == pytest.approx(acc[~faulty].mean(), abs=1e-4)
        assert row["acc_mean_honest"] != pytest.approx(acc.mean(), abs=1e-9)


def test_bench_population_set_adds_config_items_to_each_point():
    """`bench --population --set`: items checked as config items before any point runs, passed to the
    points (here a faulty population point, in this process), named in the table's first line."""
    from tallysim.bench import population
    from tallysim.config import ConfigError
    assert population.parse_set(None) == ()
    assert population.parse_set("faults.kind=dropout, faults.redraw=true") == ("faults.kind=dropout",
                                                                              "faults.redraw=true")
    with pytest.raises(ConfigError, match="faults.kind"):
        population.parse_set("faults.kind=sometimes")
    extra = ("faults.kind=dropout", "faults.fraction=0.5", "faults.redraw=true", "faults.drop_prob=0.5")
    r = population.point(40, 4, "auto", 4, 2, "sequential", extra)
    assert r["extra"] == list(extra) and np.isfinite(r["loss"])
    assert r["info_bytes"] < 40            # a few scalars a round: no [P] mask
    r.update(vs_target=1.0, draw_s=0.0)
    assert "with faults.kind=dropout faults.fraction=0.5" in population.table([r], r).splitlines()[0]
