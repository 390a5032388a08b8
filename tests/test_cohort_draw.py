"""`cohort_draw` (sim/cohort.py): `sort`, the draws of earlier versions, and `sequential`, the same
distributions from A random integers (removed intervals in point space), checked against their
definitions, a numpy reference of the walk, and in whole runs."""
import itertools
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from conftest import run_rows, tiny
from tallysim import run
from tallysim.config import ConfigError
from tallysim.protocols.base import active_set, round_keys
from tallysim.sim import cohort

# a small population with an empty shard: its sets are enumerable, and the empty one is never drawn
W = np.array([3, 0, 2, 1, 5, 4])
DRAWS = 20_000


def set_probs(w, active):
    """{sorted set: probability} of drawing `active` peers one after another without replacement, each
    draw proportional to w among those left (unit w: uniform), by enumerating every order."""
    probs = {}
    for order in itertools.permutations(range(len(w)), active):
        p, left = 1.0, float(w.sum())
        for i in order:
            p *= w[i] / left
            left -= w[i]
        key = tuple(sorted(order))
        probs[key] = probs.get(key, 0.0) + p
    return probs


def drawn_sets(draw, n=DRAWS, seed=2026):
    """[n, A] cohorts of `draw(key)`, jitted and vmapped over n keys (as run.py vmaps rounds over lanes)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    return np.asarray(jax.jit(jax.vmap(draw))(keys))


def offsets(w):
    return jnp.asarray(np.concatenate([[0], np.cumsum(w)[:-1]]), jnp.int32)


RULES = {  # (rule, draw) -> the cohort of one key over W
    ("uniform", "sort"): lambda a: lambda k: cohort.uniform(k, len(W), a),
    ("uniform", "sequential"): lambda a: lambda k: cohort.uniform_sequential(k, len(W), a),
    ("size", "sort"): lambda a: lambda k: cohort.by_size(k, jnp.asarray(W, jnp.int32), a),
    ("size", "sequential"): lambda a: lambda k: cohort.by_size_sequential(k, offsets(W), jnp.asarray(W, jnp.int32), a),
}


@pytest.fixture(scope="module")
def sets():
    """Every rule's DRAWS cohorts of 2 and of 3 (compiled once, shared by the tests below)."""
    return {(rule, how, a): drawn_sets(f(a)) for (rule, how), f in RULES.items() for a in (2, 3)}


@pytest.mark.parametrize("rule, how", list(RULES))
@pytest.mark.parametrize("active", [2, 3])
def test_cohorts_follow_their_definition(sets, rule, how, active):
    """Chi-square of the drawn sets against the enumerated set probabilities (a multinomial), and each
    peer's inclusion frequency within 5 binomial sigmas of its exact inclusion probability."""
    got = sets[(rule, how, active)]
    assert got.shape == (DRAWS, active) and got.dtype == np.int32
    assert (np.diff(got, axis=1) > 0).all() and got.min() >= 0 and got.max() < len(W)   # sorted, distinct
    w = np.ones(len(W)) if rule == "uniform" else W.astype(float)
    probs = set_probs(w, active)
    seen = {}
    for row in map(tuple, got.tolist()):
        seen[row] = seen.get(row, 0) + 1
    assert set(seen) <= {s for s, p in probs.items() if p > 0}            # nothing impossible (no empty shard)
    support = sorted(s for s, p in probs.items() if p > 0)
    counts = np.array([seen.get(s, 0) for s in support])
    expected = DRAWS * np.array([probs[s] for s in support])
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    incl = np.array([sum(p for s, p in probs.items() if i in s) for i in range(len(W))])
    freq = np.array([(got == i).any(axis=1).mean() for i in range(len(W))])
    if rule == "uniform":
        np.testing.assert_allclose(incl, active / len(W))                   # the definition: A / P
    assert (np.abs(freq - incl) <= 5 * np.sqrt(incl * (1 - incl) / DRAWS) + 1e-12).all()


def test_the_definition_test_can_fail(sets):
    """The chi-square above separates the rules: sequential size cohorts are far from uniform ones."""
    got = sets[("size", "sequential", 2)]
    probs = set_probs(np.ones(len(W)), 2)
    support = sorted(probs)
    counts = np.array([sum(1 for row in got.tolist() if tuple(row) == s) for s in support])
    assert stats.chisquare(counts, DRAWS * np.array([probs[s] for s in support])).pvalue < 1e-12


def walk(u, removed):
    """The removed-interval mapping as written: in ascending order of start, u += width for each
    interval whose start <= u."""
    for start, width in sorted(removed):
        if start <= u:
            u += width
    return u


def reference_sequential(key, active, peers, w=None):
    """The whole sequential draw in numpy, given the same u's (jax.random.randint per step, as
    sim/cohort.sequential draws them): unit masses when w is None, else shard sizes w."""
    w = np.ones(peers, np.int64) if w is None else np.asarray(w, np.int64)
    off = np.concatenate([[0], np.cumsum(w)[:-1]])
    removed, picked = [], []
    for j in range(active):
        mass = int(w.sum()) - sum(width for _, width in removed)
        u = int(jax.random.randint(jax.random.fold_in(key, j), (), 0, mass, jnp.int32))
        point = walk(u, removed)
        peer = int(np.searchsorted(off, point, side="right")) - 1    # unit masses: the point itself
        start, width = int(off[peer]), int(w[peer])
        assert width > 0 and peer not in picked
        removed.append((start, width))
        picked.append(peer)
    return np.sort(np.array(picked, np.int32))


def test_the_vectorised_walk_is_the_written_walk():
    """skip_removed (a masked sum over the removed intervals) equals walking them one by one, on
    random disjoint intervals and every u of the reduced space."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        total, K, slots = 60, int(rng.integers(0, 6)), 8
        cuts = np.sort(rng.choice(total + 1, 2 * K, replace=False)).reshape(K, 2)
        removed = [(int(a), int(b - a)) for a, b in cuts]
        start = np.full(slots, np.iinfo(np.int32).max, np.int32)
        width = np.zeros(slots, np.int32)
        start[:K], width[:K] = cuts[:, 0], cuts[:, 1] - cuts[:, 0]
        left = total - int(width.sum())
        us = jnp.arange(left, dtype=jnp.int32)
        got = np.asarray(jax.vmap(lambda u: cohort.skip_removed(u, jnp.asarray(start), jnp.asarray(width)))(us))
        want = np.array([walk(int(u), removed) for u in range(left)])
        np.testing.assert_array_equal(got, want)
        assert not any(a <= p < a + b for p in want for a, b in removed)     # never a removed point


@pytest.mark.parametrize("w", [None, [3, 0, 2, 1, 5, 4, 0, 0, 7, 1, 2, 9]], ids=["uniform", "size"])
def test_sequential_is_the_reference_given_the_same_draws(w):
    peers, active = 12, 5
    if w is None:
        f = jax.jit(lambda k: cohort.uniform_sequential(k, peers, active))
    else:
        count = jnp.asarray(w, jnp.int32)
        f = jax.jit(lambda k: cohort.by_size_sequential(k, offsets(np.asarray(w)), count, active))
    for s in range(8):
        key = jax.random.PRNGKey(s)
        np.testing.assert_array_equal(np.asarray(f(key)), reference_sequential(key, active, peers, w))


def test_sequential_is_deterministic_and_independent_of_the_population_size():
    """Same key, same cohort; other keys, other cohorts; and a cohort of 2**31 - 1 clients costs what
    one of 10 does (no [P] value is made: it would not fit)."""
    key = jax.random.PRNGKey(5)
    for peers in (10, 1_000_000, 2**31 - 1):
        f = jax.jit(lambda k: cohort.uniform_sequential(k, peers, 4))
        a = np.asarray(f(key))
        np.testing.assert_array_equal(a, np.asarray(f(key)))
        assert (np.diff(a) > 0).all() and 0 <= a[0] and a[-1] < peers
        others = drawn_sets(lambda k: cohort.uniform_sequential(k, peers, 4), n=20, seed=1)
        assert len({tuple(r) for r in others.tolist()}) > 1
    # by size over shards whose total is close to the int32 limit (H < 2**31: sim/fed.ragged_stack)
    count = jnp.asarray([2**30, 0, 2**29, 1, 2**29 - 2], jnp.int32)
    got = drawn_sets(lambda k: cohort.by_size_sequential(k, None, count, 2), n=200)
    assert (np.diff(got, axis=1) > 0).all() and not (got == 1).any()
    assert (got == 3).sum() <= 1      # one example among 2**31 - 1: (almost) never


def test_size_never_draws_an_empty_shard():
    count = jnp.array([0, 4, 0, 1, 9, 0], jnp.int32)
    got = drawn_sets(lambda k: cohort.by_size_sequential(k, offsets(np.asarray(count)), count, 3), n=500)
    assert set(got.ravel().tolist()) == {1, 3, 4}


# ----------------------------------------------------------------------------- wiring and runs

SMALL = ["data.input_shape=8x8x1", "model.width=8", "data.train_size=400", "data.test_size=50",
         "probe.pool_size=50", "probe.per_round=16", "protocol.name=fedavg", "peers=8",
         "participation=0.375", "rounds=2"]


@pytest.mark.parametrize("rule", ["uniform", "size"])
def test_active_set_draws_with_the_configured_rule(rule):
    b = run.build(tiny(*SMALL, f"participation_rule={rule}", "partition.kind=dirichlet"))
    data, A, P = b.one, b.ctx.spec.active, b.ctx.spec.peers
    key = round_keys(jax.random.PRNGKey(3), 1).active
    seq = replace(b.ctx, cfg=replace(b.cfg, cohort_draw="sequential"))
    if rule == "uniform":
        want_sort, want_seq = cohort.uniform(key, P, A), cohort.uniform_sequential(key, P, A)
    else:
        want_sort = cohort.by_size(key, data.count_P, A)
        want_seq = cohort.by_size_sequential(key, data.offset_P, data.count_P, A)
    np.testing.assert_array_equal(np.asarray(active_set(b.ctx, key, data)), np.asarray(want_sort))
    np.testing.assert_array_equal(np.asarray(active_set(seq, key, data)), np.asarray(want_seq))


def test_model_groups_draw_each_group_sequentially():
    b = run.build(tiny("protocol.name=local", "peers=5", "participation=0.5", "cohort_draw=sequential",
                       "model.groups=small:3:mlp,width=16;big:2:mlp,width=8"))
    key = round_keys(jax.random.PRNGKey(0), 1).active
    idx = np.asarray(active_set(b.ctx, key))
    assert 0 <= idx[0] < idx[1] < 3 <= idx[2] < 5          # A_g peers of each group, in its own range
    np.testing.assert_array_equal(idx[:2], cohort.uniform_sequential(jax.random.fold_in(key, 0), 3, 2))
    np.testing.assert_array_equal(idx[2:], 3 + cohort.uniform_sequential(jax.random.fold_in(key, 1), 2, 1))


@pytest.mark.parametrize("rule", ["uniform", "size"])
def test_a_sequential_run_is_deterministic(tmp_path, rule):
    """A FedAvg run of two seeds (lanes, vmapped) with the server model alone, twice: the same rows
    (size: over a lognormal population, each seed its own shard sizes)."""
    population = ["partition.kind=population", "partition.mean_size=8", "partition.sigma=1.5",
                  "partition.min_size=1", "partition.reuse=true"] if rule == "size" else []
    cfg = tiny(*SMALL, *population, f"participation_rule={rule}", "cohort_draw=sequential",
               "client_storage=auto", "seeds=2")
    a, b = run_rows(cfg, tmp_path / "a"), run_rows(cfg, tmp_path / "b")
    assert a == b and len(a) == 2 and a[0]["seeds"] == [0, 1]
    assert all(np.isfinite(r["train_loss"]) for r in a)


@pytest.mark.parametrize("items, match", [
    (["cohort_draw=sequential"], r"cohort_draw=sequential draws a cohort, but participation=1.0"),
    (["cohort_draw=sequential", "participation=0.5", "participation_rule=size", "privacy.noise=1",
      "privacy.clip=1"], r"participation_rule=size with privacy"),
])
def test_sequential_is_refused_where_it_cannot_apply(items, match):
    with pytest.raises(ConfigError, match=match) as e:
        run.build(tiny(*items))
    assert "\n" not in str(e.value)


def test_sequential_uniform_is_allowed_with_privacy():
    """Uniform fixed-size sampling without replacement, what the accountant assumes, either way."""
    b = run.build(tiny("protocol.name=fedavg", "participation=0.5", "cohort_draw=sequential",
                       "privacy.noise=1", "privacy.clip=1"))
    assert b.cfg.cohort_draw == "sequential"


def test_bench_population_times_each_draw():
    """`bench --population --cohort-draw`: the draws parsed (unknown ones refused in one line), timed,
    and named in the table's draw column."""
    from tallysim.bench import population
    assert population.parse_draws(None) == ("sort", "sequential")
    assert population.parse_draws("sequential") == ("sequential",)
    with pytest.raises(ConfigError, match=r"unknown draw 'floyd'; allowed: a comma list of sort, sequential"):
        population.parse_draws("sort,floyd")
    assert population.draw_s(40, 4, "sequential", repeats=1) > 0
    assert "cohort_draw=sequential" in population.items(40, 4, "auto", 4, "sequential")
    assert not any(i.startswith("cohort_draw") for i in population.items(10, 10, "auto", 4, "sequential"))
    row = dict(peers=40, active=4, storage="auto", cohort_draw="sequential", examples=4, round_s=0.002,
               peak_rss=5e8, data_bytes=1e6, vs_target=1.07, draw_s=0.0005)
    lines = population.table([row], row).splitlines()
    assert "| sequential |" in lines[-1] and "draw" in lines[1]
