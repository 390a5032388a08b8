"""Ragged client data (FedData.shard_H + offset_P + count_P, fed.cohort_shards), partition.kind=population,
and participation_rule (sim/cohort.py): the storage against the padded [P, S] matrix of earlier versions,
the sampling rules' frequencies against their definitions, the refusals, and a 10^5-client build's memory."""
import itertools
import json
import subprocess
import sys
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import tallysim
from conftest import tiny
from tallysim import data, run
from tallysim.config import PARTITIONS, ConfigError, PartitionConfig
from tallysim.protocols import fedavg
from tallysim.sim import cohort, fed


SMALL = ["data.input_shape=8x8x1", "model.width=8", "data.train_size=400", "data.test_size=50",
         "probe.pool_size=50", "probe.per_round=16"]       # seconds: compiling is most of these tests


def padded(parts, S):
    """The storage of earlier versions (fed.pad_shards): [P, S] int32, padding 0."""
    out = np.zeros((len(parts), S), np.int32)
    for i, p in enumerate(parts):
        out[i, :len(p)] = p
    return out


def cfg_for(**kw):
    return tallysim.Config().replace(**{"probe.per_round": 1, **kw})


def parts_of(kind, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, 400)
    extra = dict(alpha=0.3, min_size=2, mean_size=20.0, sigma=1.0) if kind != "natural" else {}
    cfg = PartitionConfig(kind=kind, **extra)
    clients = rng.integers(0, 12, 400) if kind == "natural" else None
    return data.partition(labels, 7, cfg, 5, seed, clients=clients)


@pytest.mark.parametrize("kind", PARTITIONS)
def test_ragged_storage_gathers_the_padded_matrix_rows_for_every_partition_kind(kind):
    per_seed = [parts_of(kind, s) for s in (0, 1)]      # two seeds: H differs, padded to the larger
    fdata, spec = fed.build(np.zeros((400, 2), np.float32), np.zeros(400, np.int32), per_seed,
                            [np.arange(3)] * 2, np.zeros((3, 2), np.float32), np.zeros(3, np.int32), 5,
                            cfg_for(peers=7))
    S = spec.shard_max
    assert S == max(len(p) for parts in per_seed for p in parts)
    assert fdata.shard_H.shape == (2, max(sum(len(p) for p in parts) for parts in per_seed))
    for z, parts in enumerate(per_seed):
        one = fed.seed_slice(fdata, z)
        old = padded(parts, S)
        np.testing.assert_array_equal(np.asarray(fed.cohort_shards(one, None, S)), old)
        np.testing.assert_array_equal(np.asarray(fed.cohort_shards(one, jnp.array([1, 4, 6]), S)), old[[1, 4, 6]])
        np.testing.assert_array_equal(np.asarray(one.count_P), [len(p) for p in parts])
    if kind == "population":      # the lane axis: the same gather under vmap over seeds (run.py's batch)
        both = jax.vmap(lambda d: fed.cohort_shards(d, jnp.array([0, 5]), S), in_axes=(fed.SEED_AXES,))(fdata)
        np.testing.assert_array_equal(np.asarray(both), np.stack([padded(p, S)[[0, 5]] for p in per_seed]))


def test_ragged_reads_like_the_list_it_replaces():
    parts = [np.array([3, 1]), np.array([], np.int64), np.array([7, 8, 9])]
    r = data.ragged(parts)
    assert len(r) == 3 and [list(p) for p in r] == [[3, 1], [], [7, 8, 9]]
    assert list(r.offsets) == [0, 2, 2] and list(r.owner()) == [0, 0, 2, 2, 2]
    rows = np.arange(100, 110)
    assert [list(p) for p in r.take(rows)] == [[103, 101], [], [107, 108, 109]]
    labels = np.array([0, 1, 1, 2, 0, 0, 1, 2, 2, 0])
    np.testing.assert_array_equal(data.class_counts(labels, r, 3), data.class_counts(labels, parts, 3))


def test_population_sizes_follow_their_lognormal_and_clients_hold_distinct_examples():
    cfg = PartitionConfig(kind="population", mean_size=12.0, sigma=0.8, min_size=1, reuse=True)
    parts = data.partition(np.zeros(1000, np.int32), 5000, cfg, 2, seed=3)
    assert isinstance(parts, data.Ragged) and len(parts) == 5000
    # independent derivation: the same stream, sizes = max(1, rint(exp(mu + sigma z)))
    rng = np.random.default_rng([3, 0x9097])
    want = np.maximum(np.rint(np.exp(np.log(12.0) - 0.32 + 0.8 * rng.standard_normal(5000))), 1)
    np.testing.assert_array_equal(parts.sizes, want)
    assert abs(parts.sizes.mean() - 12.0) < 0.6              # E = mean_size (the floor adds a little)
    assert all(len(set(p.tolist())) == len(p) for p in parts)   # reuse never repeats within a client
    assert parts.flat.min() >= 0 and parts.flat.max() < 1000
    # a pass deals each example once: the clients wholly inside the first pass share none
    ends = np.cumsum(parts.sizes)
    first = parts.flat[:ends[ends <= 1000].max()]
    assert len(np.unique(first)) == len(first) > 900


def test_population_without_reuse_is_disjoint_and_too_many_clients_are_refused():
    cfg = PartitionConfig(kind="population", mean_size=5.0, sigma=0.5, min_size=1)
    parts = data.partition(np.zeros(1000, np.int32), 50, cfg, 2, seed=0)
    assert len(np.unique(parts.flat)) == len(parts.flat)
    with pytest.raises(ConfigError, match=r"partition.reuse=true") as e:
        data.partition(np.zeros(1000, np.int32), 500, cfg, 2, seed=0)
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- participation_rule

W = np.array([1, 2, 3, 5, 8, 13])
A, DRAWS = 2, 20_000


def successive_pair_probs(w):
    """Definition of `size`: draw one with probability w_i / W, then one of the rest with w_j / (W - w_i)."""
    W_ = w.sum()
    return {(i, j): w[i] / W_ * w[j] / (W_ - w[i]) + w[j] / W_ * w[i] / (W_ - w[j])
            for i, j in itertools.combinations(range(len(w)), 2)}


def pair_counts(draw):
    keys = jax.random.split(jax.random.PRNGKey(2024), DRAWS)
    sets = np.asarray(jax.jit(jax.vmap(draw))(keys))
    assert (np.diff(sets, axis=1) > 0).all()                 # sorted, distinct
    pairs = list(itertools.combinations(range(len(W)), 2))
    seen = {p: 0 for p in pairs}
    for a, b in sets.tolist():
        seen[(a, b)] += 1
    return np.array([seen[p] for p in pairs]), pairs


def test_size_rule_cohorts_follow_successive_sampling_by_size():
    counts, pairs = pair_counts(lambda k: cohort.by_size(k, jnp.asarray(W, jnp.int32), A))
    probs = successive_pair_probs(W)
    expected = DRAWS * np.array([probs[p] for p in pairs])
    assert abs(expected.sum() - DRAWS) < 1e-6
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    # inclusion frequencies: the larger the shard, the likelier (peer 5 > 4 > ... > 0)
    incl = np.array([sum(c for c, p in zip(counts, pairs) if i in p) for i in range(len(W))])
    assert (np.diff(incl) > 0).all()


def test_uniform_rule_matches_its_definition_and_fails_the_size_rules():
    counts, pairs = pair_counts(lambda k: cohort.uniform(k, len(W), A))
    uniform = np.full(len(pairs), DRAWS / len(pairs))
    assert stats.chisquare(counts, uniform).pvalue > 1e-3
    probs = successive_pair_probs(W)
    # the test above would fail for a uniform rule: its counts are far from the size rule's
    assert stats.chisquare(counts, DRAWS * np.array([probs[p] for p in pairs])).pvalue < 1e-12


def test_uniform_rule_draws_what_active_set_drew_before():
    key = jax.random.PRNGKey(7)
    np.testing.assert_array_equal(np.asarray(cohort.uniform(key, 10, 4)),
                                  np.sort(np.asarray(jax.random.permutation(key, 10)[:4])))


def test_size_rule_never_draws_an_empty_shard():
    keys = jax.random.split(jax.random.PRNGKey(0), 500)
    counts = jnp.array([0, 4, 0, 1, 9, 0], jnp.int32)
    sets = np.asarray(jax.vmap(lambda k: cohort.by_size(k, counts, 3))(keys))
    assert set(sets.ravel().tolist()) == {1, 3, 4}


def test_size_rule_aggregates_the_cohort_with_equal_weights():
    """fedavg.aggregate under `size`: the plain mean of the received models (Li et al. 2020's Scheme I),
    under `uniform`: the shard-size weighted mean (FedAvg); both against numpy."""
    b = run.build(tiny(*SMALL, "protocol.name=fedavg", "participation=0.5", "participation_rule=size"))
    rng = np.random.default_rng(0)
    server = jax.tree.map(lambda a: jnp.zeros_like(a), b.protocol.init(jax.random.PRNGKey(0), b.one).server)
    sent = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=(2,) + a.shape), jnp.float32), server)
    count = jnp.array([10, 30], jnp.int32)
    new, w = fedavg.aggregate(b.ctx, sent, count, server)
    np.testing.assert_allclose(np.asarray(w), [0.5, 0.5])
    for got, s in zip(jax.tree.leaves(new), jax.tree.leaves(sent)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(s).mean(0), rtol=1e-6, atol=1e-6)
    ctx_u = replace(b.ctx, cfg=replace(b.cfg, participation_rule="uniform"))
    new, w = fedavg.aggregate(ctx_u, sent, count, server)
    np.testing.assert_allclose(np.asarray(w), [0.25, 0.75])
    for got, s in zip(jax.tree.leaves(new), jax.tree.leaves(sent)):
        np.testing.assert_allclose(np.asarray(got), 0.25 * np.asarray(s)[0] + 0.75 * np.asarray(s)[1],
                                   rtol=1e-6, atol=1e-6)


POPULATION = [*SMALL, "protocol.name=fedavg", "peers=40", "participation=0.1", "participation_rule=size",
              "partition.kind=population", "partition.mean_size=8", "partition.sigma=1.5", "partition.min_size=1",
              "partition.reuse=true"]


def test_size_rule_picks_large_clients_of_a_population():
    b = run.build(tiny(*POPULATION))
    count = np.asarray(b.one.count_P)
    assert count.max() > 4 * count.mean()                    # a skewed population
    from tallysim.protocols.base import active_set, round_keys
    draw = jax.jit(lambda k: active_set(b.ctx, round_keys(k, 1).active, b.one))
    drawn = np.concatenate([np.asarray(draw(jax.random.PRNGKey(s))) for s in range(200)])
    assert len(drawn) == 200 * 4
    assert count[drawn].mean() > 1.3 * count.mean()          # size-biased: E[size of a drawn client] > mean


@pytest.mark.slow
def test_size_rule_runs_population_rounds():
    d = tallysim.drive(tiny(*POPULATION))
    d.run(2)
    assert np.isfinite(float(d.info["train_loss"]))


@pytest.mark.parametrize("items, match", [
    (["participation_rule=size"], r"participation=1.0 makes all 4 peers active"),
    (["participation_rule=size", "participation=0.5", "protocol.name=fedavg", "privacy.noise=1",
      "privacy.clip=1"], r"amplification by subsampling"),
])
def test_size_rule_is_refused_where_it_cannot_apply(items, match):
    with pytest.raises(ConfigError, match=match) as e:
        run.build(tiny(*items))
    assert "\n" not in str(e.value)


def test_size_rule_is_refused_when_fewer_shards_than_the_cohort_hold_data():
    parts = [np.array([0, 1]), np.array([], np.int64), np.array([], np.int64), np.array([2])]
    with pytest.raises(ConfigError, match=r"only 2 peers hold any examples") as e:
        fed.build(np.zeros((4, 2), np.float32), np.zeros(4, np.int32), [parts], [np.arange(1)],
                  np.zeros((1, 2), np.float32), np.zeros(1, np.int32), 2,
                  cfg_for(peers=4, participation=0.75, participation_rule="size"))
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- storage-independent training

@pytest.mark.parametrize("protocol", ["fedavg", pytest.param("tally", marks=pytest.mark.slow)])
def test_training_is_the_same_on_the_old_padded_layout(protocol):
    """The padded [P, S] matrix of earlier versions, laid out in the new storage (shard_H = its rows end
    to end, offset_P = p * S), trains bit for bit like the ragged layout: nothing reads the layout."""
    b = run.build(tiny(*SMALL, f"protocol.name={protocol}", "participation=0.5", "partition.kind=dirichlet",
                       "partition.alpha=0.5", "partition.min_size=5"))
    one, S, P = b.one, b.ctx.spec.shard_max, b.ctx.spec.peers
    old = fed.cohort_shards(one, None, S)
    as_padded = one._replace(shard_H=old.reshape(-1), offset_P=jnp.arange(P, dtype=jnp.int32) * S)
    assert (np.asarray(as_padded.offset_P) != np.asarray(one.offset_P)).any()    # really another layout
    # the ragged array zero-filled to the same length: one compiled round serves both
    one = one._replace(shard_H=jnp.zeros(P * S, jnp.int32).at[:one.shard_H.shape[0]].set(one.shard_H))
    step = jax.jit(b.protocol.round)
    state0 = b.protocol.init(jax.random.PRNGKey(0), one)
    outs = []
    for d in (one, as_padded):
        state = state0
        for r in range(2):
            state, info = step(state, d, jax.random.PRNGKey(1), jnp.int32(r))
        outs.append((state, info))
    for a, c in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))


# ----------------------------------------------------------------------------- scale

def test_a_100k_client_build_stays_within_its_real_size():
    """10^5 clients of ~30 examples (3 * 10^6 indices, 12 MB as int32): the data path of a build in a
    fresh process adds < 400 MB resident and takes < 60 s on the 2-core CPU (measured 91 MB, 0.7 s);
    the [P, S] matrix of earlier versions would need 468 MB of indices alone."""
    out = subprocess.run([sys.executable, "-m", "tallysim.bench.population_data", "--one", "100000"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert 2.5e6 < m["examples_held"] < 3.5e6
    assert m["ragged_index_mib"] < 4 * m["examples_held"] / 2**20 + 2
    assert m["padded_index_mib"] > 10 * m["ragged_index_mib"]
    assert m["rss_added_mib"] < 400 and m["build_s"] < 60
