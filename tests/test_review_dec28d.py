"""review35: the numerical core derived again by hand (numpy, exact fractions, brute-force enumeration) on
tiny cases where a plausible bug would differ: ties, one voter, every voter disagreeing, a margin at the
edge of float32, odd class counts (C = 3, 10,004), one peer, padding positions, whole-population cohorts.
Each test names the hand mutation of the code it kills (docs/mutation.md lists the session's results).
Nothing here compiles a round: pure functions on small arrays."""
from __future__ import annotations

import itertools
import math
from fractions import Fraction
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim.protocols import topk_soft
from tallysim.protocols.probe_targets import consensus_acc, text_agreement, vote_targets
from tallysim.sim import cohort, comm, tasks, vote


def _numpy_tally(votes_AxM, C, min_agreement=0.0, min_margin=0.0):
    """Plurality by hand: lowest class on a tie, share and margin as exact fractions of the voters."""
    A = votes_AxM.shape[0]
    win, share, keep = [], [], []
    for col in votes_AxM.T:
        n = np.bincount(col, minlength=C)
        order = sorted(n, reverse=True) + [0]
        win.append(int(np.flatnonzero(n == n.max())[0]))
        s, m = Fraction(int(n.max()), A), Fraction(int(order[0] - order[1]), A)
        share.append(float(s))
        keep.append(float(s >= Fraction(min_agreement).limit_denominator(10**6)
                          and (min_margin <= 0 or m >= Fraction(min_margin).limit_denominator(10**6))))
    return win, share, keep


@pytest.mark.parametrize("A,C", [(1, 3), (2, 3), (3, 3), (4, 5), (5, 2)])
def test_plurality_share_and_abstention_against_numpy(A, C):
    rng = np.random.default_rng(A * 10 + C)
    votes = rng.integers(0, C, size=(A, 40))
    votes[:, 0] = np.arange(A) % C            # every voter disagrees (as far as C allows)
    votes[:, 1] = C - 1                       # unanimous on the highest class
    for min_agreement, min_margin in [(0.0, 0.0), (0.5, 0.0), (0.0, 1 / 3), (0.6, 0.2)]:
        t = vote.tally_counts(vote.count_votes(jnp.asarray(votes), C), A, "lowest", min_agreement, None,
                              min_margin)
        win, share, keep = _numpy_tally(votes, C, min_agreement, min_margin)
        assert t.winner_M.tolist() == win
        np.testing.assert_allclose(np.asarray(t.share_M), share, rtol=1e-6)
        assert np.asarray(t.keep_M).tolist() == keep, (min_agreement, min_margin)


def test_a_margin_a_float_rounding_below_min_margin_is_kept():
    # the trust-weighted vote's counts are float sums of weights r_i * |S| / sum r_j (sim/trust.py), a last
    # bits off: 8 votes of weight 1 may sum to 8 - 2^-19. Its margin over 1 and 1 of 10 is then 0.6999998,
    # below float32's 0.7 (however XLA divides: 8 - 2^-21 read 0.6999999 one at a time and 0.7 in a vector,
    # a multiplication by 1/10), and the 1e-6 tolerance keeps it; 6 against 1 and 3 (margin 0.3) is dropped
    # kills: `margin >= min_margin` without the tolerance
    counts = jnp.asarray([[8 - 2.0 ** -19, 1.0, 1.0], [6.0, 1.0, 3.0]], jnp.float32)
    assert np.all(np.asarray((counts[:, 0] - 1) / 10)[:1] < float(jnp.float32(0.7)))
    assert vote.tally_counts(counts, 10, min_margin=0.7).keep_M.tolist() == [1.0, 0.0]


def test_one_class_margin_is_the_whole_share():
    # C = 1: no runner-up, the margin is the top count over the voters (a zero runner-up, not the top again)
    # kills: the C = 1 branch concatenating the counts with themselves (margin 0, every probe dropped)
    t = vote.tally_counts(jnp.asarray([[3], [0]]), 3, min_margin=0.5)
    assert t.keep_M.tolist() == [1.0, 0.0] and t.winner_M.tolist() == [0, 0]


def test_random_ties_pick_only_the_tied_classes_each_about_equally():
    # kills: a tie score on classes near the top (count top - 1) as well as at it
    counts = jnp.asarray([[2, 2, 1, 2, 0]] * 600)
    w = np.asarray(vote.tally_counts(counts, 7, "random", key=jax.random.PRNGKey(5)).winner_M)
    assert set(w.tolist()) == {0, 1, 3}
    assert all(150 < np.sum(w == c) < 250 for c in (0, 1, 3))


def test_lowest_word_counts_the_first_word_id_as_a_word():
    # FIRST_WORD (4) is the lowest real token: tied with BOS it wins, tied with 5 too; OOV (3) is a special
    # kills: `> FIRST_WORD` (id 4 treated as a special, losing its ties to 5 and to BOS)
    C, W = 8, tasks.FIRST_WORD
    counts = np.zeros((3, C), np.int32)
    counts[0, [tasks.BOS, W]] = 2
    counts[1, [W, W + 1]] = 2
    counts[2, [tasks.OOV, W + 2]] = 2
    assert vote.tally_counts(jnp.asarray(counts), 4, "lowest_word").winner_M.tolist() == [W, W, W + 2]


def test_a_vote_outside_the_classes_is_dropped_not_wrapped():
    # count_votes' padding marker is C; a negative id must not wrap onto class C - 1 (numpy indexing)
    # kills: count_votes without its negative-vote guard
    counts = vote.count_votes(jnp.asarray([[-1, 0], [2, 3]]), 3)
    assert counts.tolist() == [[0, 0, 1], [1, 0, 0]]


def test_tied_counts_a_shared_plurality_but_not_an_empty_probe():
    # kills: `tied` without `top_M > 0` (a probe no vote reached is not a tie)
    assert vote.tied(jnp.asarray([[1, 1, 0], [2, 1, 0], [0, 0, 0]])).tolist() == [True, False, False]


def test_honest_diagnostics_count_the_honest_votes_alone():
    # three peers on two probes (label 0 both); peer 2 is faulty and votes 1 with peers 1's help on probe 1.
    # The round's vote: [0, 1]; the honest peers' own (peers 0, 1): [0, 0] on probe 0, a 1-1 tie on probe 1
    # that the lowest class (0) breaks. probe_round.messages (cfd, selective_fd) passes no honest winner.
    # kills: the default honest winner taken from every peer's counts
    logits = jnp.asarray([[[5.0, 0.0], [5.0, 0.0]],
                          [[5.0, 0.0], [0.0, 5.0]],
                          [[0.0, 5.0], [0.0, 5.0]]])
    y = jnp.asarray([0, 0])
    s = vote.chunk_sums(logits, jnp.ones((3,), bool), y, honest_c=jnp.asarray([True, True, False]))
    t = vote.tally_counts(s.counts_MxC, 3)
    assert t.winner_M.tolist() == [0, 1]
    info = vote.finish_diagnostics(s, 3, y, t.winner_M, t.share_M)
    assert float(info["vote_acc"]) == 0.5 and float(info["vote_acc_honest"]) == 1.0
    assert float(info["wrong_confidence"]) == pytest.approx(float(jax.nn.softmax(jnp.asarray([0.0, 5.0]))[1]))


def _compositions(voters, classes):
    return sum(1 for c in itertools.product(range(voters + 1), repeat=classes) if sum(c) == voters)


@pytest.mark.parametrize("C", [1, 2, 3, 4])
@pytest.mark.parametrize("voters", [0, 1, 2, 3])
def test_histogram_bits_are_the_log_of_the_enumerated_compositions(voters, C):
    # kills: exact_log2_ceil off by one at powers of 2, binom(A+C-1, C) for binom(A+C-1, C-1), the natural
    # code's ceil(log2 A) for ceil(log2 (A+1)) (then cheaper than the composition for one voter)
    n = _compositions(voters, C)
    want = 0 if n == 1 else math.ceil(math.log2(n))
    assert comm.vote_histograms(3, voters, C) == 3 * want
    assert comm.histogram_natural(voters, C) == C * (0 if voters == 0 else math.ceil(math.log2(voters + 1)))


def test_odd_class_counts_by_hand():
    # a vote: ceil(log2 C) bits; C = 3: 2, C = 10,004: 14 (2^13 = 8,192 < 10,004 <= 16,384); C = 2: 1
    assert [comm.hard_labels(1, C) for C in (2, 3, 10, 10_004)] == [1, 2, 4, 14]
    # star counts at C = 10,004: one other voter is one class (14 bits), two are binom(10,005, 2) = 50,045,010
    # compositions (2^25 < 50,045,010 <= 2^26: 26 bits); one peer alone receives nothing
    assert math.comb(10_005, 2) == 50_045_010
    assert [comm.vote_histograms(1, v, 10_004) for v in (0, 1, 2)] == [0, 14, 26]
    # topk_soft: k indices of ceil(log2 C) bits and k values of b bits; at k = C no index
    assert topk_soft.message_bits(1, 8, 3) == 2 + 8
    assert topk_soft.message_bits(2, 0, 10_004) == 28
    assert topk_soft.message_bits(3, 8, 3) == 24


def _ctx(active, peers=None, messages=5, classes=3, **cfg):
    tally = SimpleNamespace(target=cfg.pop("target", "counts"))
    comm_ = SimpleNamespace(topology=cfg.pop("topology", "star"))
    v = SimpleNamespace(min_agreement=0.0, min_margin=0.0)
    return SimpleNamespace(spec=SimpleNamespace(active=active, peers=peers or active, messages=messages,
                                                classes=classes),
                           cfg=SimpleNamespace(tally=tally, comm=comm_, vote=v,
                                               privacy=SimpleNamespace(threshold=0.0),
                                               distill=SimpleNamespace(weight=1.0)))


@pytest.mark.parametrize("A", [1, 2, 3, 5])
def test_dropout_histogram_header_is_one_of_the_enumerated_pairs(A, monkeypatch):
    # header: (votes held, own vote to add back) is (S-1, yes) for S in 1..A, (S, no) for S in 1..A-1
    # kills: a header of ceil(log2 2A) bits (one bit too many with one peer), the arrived peers' histograms
    # of S votes instead of the S-1 others
    from tallysim.protocols import tally
    pairs = {(s - 1, True) for s in range(1, A + 1)} | {(s, False) for s in range(1, A)}
    header = 0 if len(pairs) == 1 else math.ceil(math.log2(len(pairs)))
    ctx = _ctx(A)
    for S in range(1, A + 1):
        bits = tally.histogram_senders(ctx, comm.RoundBits(10, 0, A), S)
        hist = lambda v: 0 if _compositions(v, 3) == 1 else math.ceil(math.log2(_compositions(v, 3)))
        want = S * (header + 5 * hist(S - 1)) + (A - S) * (header + 5 * hist(S))
        assert (bits.up_total, bits.down_total) == (S * 10, want), S


def test_topk_message_by_hand():
    # p = [0.5, 0.3, 0.2], k = 1, b = 8: the top value 128/255, the rest 127/255 spread over the 2 not sent
    # kills: the rest spread over C rather than C - k; b = 0's 1/k replaced by the quantised value
    p = jnp.asarray([[0.5, 0.3, 0.2]])
    np.testing.assert_allclose(np.asarray(topk_soft.message(p, 1, 8)), [[128 / 255, 127 / 510, 127 / 510]],
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(topk_soft.message(p, 2, 0)), [[0.5, 0.5, 0.0]])
    # a tie at the top: the lower class is sent (jax.lax.top_k), as tally's lowest-class rule
    np.testing.assert_allclose(np.asarray(topk_soft.message(jnp.asarray([[0.4, 0.4, 0.2]]), 1, 0)), [[1, 0, 0]])


def test_median_and_trimmed_mean_of_the_arrived_rows_by_hand():
    x = jnp.asarray([[0.1], [0.9], [0.4], [0.2], [5.0]])
    mask = jnp.asarray([True, True, True, True, False])      # the 5.0 was lost
    # median of an even count is the mean of the two middle values: (0.2 + 0.4) / 2
    # kills: the median's lower index n // 2 (the upper middle twice)
    np.testing.assert_allclose(np.asarray(vote.coordinate_stat(x, mask, "median")), [0.3], rtol=1e-6)
    # trimmed 0.25 of 4 rows: floor(1) cut from each end, mean of 0.2 and 0.4
    # kills: keeping rows up to n - k inclusive
    np.testing.assert_allclose(np.asarray(vote.coordinate_stat(x, mask, "trimmed", 0.25)), [0.3], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(vote.coordinate_stat(x[:4], None, "trimmed", 0.25)), [0.3], rtol=1e-6)


def test_text_padding_is_voted_and_counted_kept_but_never_trained_on():
    # two probes of three positions; the second probe's last two inputs are PAD (its window's padding)
    task = tasks.NextToken(positions=3)
    x = jnp.asarray([[5, 6, 7], [8, tasks.PAD, tasks.PAD]])
    y = jnp.asarray([6, 7, tasks.EOS, 9, tasks.PAD, tasks.PAD])         # hidden next tokens, flattened
    t = vote.Tally(winner_M=jnp.asarray([6, 4, 2, 9, 0, 0], jnp.int32),
                   share_M=jnp.asarray([1.0, 0.5, 1.0, 1.0, 1.0, 1.0]),
                   keep_M=jnp.asarray([1.0, 0.0, 1.0, 1.0, 1.0, 1.0]))
    ctx = SimpleNamespace(spec=SimpleNamespace(probes=2))
    mask = task.message_mask(x)
    assert mask.tolist() == [1, 1, 1, 1, 0, 0]
    probes, info = vote_targets(ctx, task, x, y, t, None, None, mask)
    # kills: the padding trained on (keep times the text mask dropped)
    assert probes.weight_M.tolist() == [[1, 0, 1], [1, 0, 0]]
    assert probes.target_M.tolist() == [[6, 4, 2], [9, 0, 0]]
    # `kept` counts every position the vote kept, padding included (the abstention's own share): 5 of 6
    assert float(info["kept"]) == pytest.approx(5 / 6)
    # consensus accuracy over kept, scored positions: 0 (hit), 3 (hit); position 2 (EOS) is not scored,
    # 1 was dropped by the vote, 4 and 5 are padding. kills: consensus_acc over every position
    assert float(info["consensus_acc"]) == 1.0
    # the gate reads the mean share over the real positions only: (1 + .5 + 1 + 1) / 4
    # kills: text_agreement over every position
    assert float(text_agreement(task, x, t.share_M)[vote.GATE_AGREEMENT]) == pytest.approx(3.5 / 4)
    # accuracy's positions: not PAD, OOV, BOS or EOS. kills: EOS scored
    assert task.scored_messages(y).tolist() == [1, 1, 0, 1, 0, 0]
    assert float(consensus_acc(task, jnp.asarray([6, 7, 0, 0, 0, 0]), y)) == pytest.approx(2 / 3)


def test_a_cohort_of_the_whole_population_is_everyone_once():
    key = jax.random.PRNGKey(11)
    for P in (1, 5, 7):
        assert cohort.uniform(key, P, P).tolist() == list(range(P))
        assert cohort.uniform_sequential(key, P, P).tolist() == list(range(P))
    count = jnp.asarray([3, 0, 2, 5, 1])
    assert cohort.by_size(key, count, 4).tolist() == [0, 2, 3, 4]          # every non-empty shard
    assert cohort.by_size_sequential(key, None, count, 4).tolist() == [0, 2, 3, 4]


def test_size_sampling_picks_one_client_in_proportion_to_its_shard():
    # one draw (A = 1) of shards 1, 0, 3: probabilities 1/4, 0, 3/4, by both draws
    count = jnp.asarray([1, 0, 3])
    keys = jax.random.split(jax.random.PRNGKey(2), 800)
    for fn in (lambda k: cohort.by_size(k, count, 1), lambda k: cohort.by_size_sequential(k, None, count, 1)):
        got = np.asarray(jax.vmap(fn)(keys))[:, 0]
        assert np.sum(got == 1) == 0 and 0.68 < np.mean(got == 2) < 0.82


def test_server_mean_weights_follow_the_sampling_rule():
    # uniform sampling weighs the cohort by shard size (FedAvg), size sampling weighs it uniformly
    # kills: the two rules' aggregation counts swapped
    c = jnp.asarray([1, 3])
    assert cohort.aggregation_counts("uniform", c).tolist() == [1, 3]
    assert cohort.aggregation_counts("size", c).tolist() == [1, 1]


def test_soft_targets_with_no_voter_are_zero_not_nan():
    s = jnp.asarray([[0.0, 0.0, 0.0]])
    assert vote.soft_targets(s, jnp.int32(0)).tolist() == [[0.0, 0.0, 0.0]]
    np.testing.assert_allclose(np.asarray(vote.soft_targets(jnp.asarray([[1.0, 0.5, 0.5]]), 2)), [[0.5, 0.25, 0.25]])


@pytest.mark.parametrize("proto", ["bridge", "fedct"])
@pytest.mark.parametrize("field", ["comm.topology=allgather", "tally.target=counts"])
def test_a_star_vote_is_charged_star_bits_whatever_tally_fields_a_sweep_sets(proto, field):
    # A sweep keeps a field in every run where some run reads it: `protocol.name=tally,bridge
    # comm.topology=allgather` left allgather in bridge's config, and bridge's (and fedct's) star vote was
    # charged allgather's (A-1) * M * L downlink (3x at A = 4), tally.target=counts the histograms (2x).
    # kills: the bug (tally.vote_bits / vote_cost reading fields the protocol does not read)
    from tallysim import config
    from tallysim.protocols import tally
    M, A, C = 7, 4, 3
    for items in ([], [field]):
        cfg = config.apply_overrides(config.Config(), [f"protocol.name={proto}", *items])
        ctx = SimpleNamespace(cfg=cfg, spec=SimpleNamespace(active=A, peers=A, messages=M, classes=C),
                              hp=lambda key: 1.0)
        assert tally.vote_bits(ctx) == comm.RoundBits(M * 2, M * 2, A)
        # dropout, 3 of 4 votes arrived: 3 uploads, the winner to all 4 (not relayed per sender)
        assert tally.vote_cost(ctx, {"senders": 3}).totals() == (3 * M * 2, 4 * M * 2)
    # tally itself still runs what it reads
    cfg = config.apply_overrides(config.Config(), ["protocol.name=tally", field])
    ctx = SimpleNamespace(cfg=cfg, spec=SimpleNamespace(active=A, peers=A, messages=M, classes=C), hp=lambda key: 1.0)
    assert tally.vote_bits(ctx).down == (3 * M * 2 if "allgather" in field else M * comm.vote_histograms(1, 3, C))


@pytest.fixture(scope="module")
def two_groups():
    """A built two-group run (model.groups a:2;b:2) and its untrained state: the grouped exchange's peer
    bookkeeping, no round compiled."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from conftest import tiny
    from tallysim import build
    from tallysim.sim.fed import pool_examples
    b = build.build(tiny("protocol.name=cfd", "rounds=1", "model.groups=a:2;b:2"))
    ctx, data = b.ctx, b.one
    state = ctx.init_state(jax.random.PRNGKey(0), data, True)
    x_M, y_M = pool_examples(data, jnp.arange(8))
    return ctx, state, x_M, y_M


def test_grouped_exchange_hands_each_peer_its_own_active_position_and_global_id(two_groups):
    # cfd's delta coding reads each peer's last message at its active position (rows_c) and fedct's XOR
    # draws its bits from its global id: group b's peers are active positions 2, 3 and peers 2, 3, not
    # group a's 0, 1 again. kills: probe_round._grouped_stream without g.a_lo; base._grouped_sums giving
    # vote_fn the group's rows instead of the global ids
    from tallysim.protocols import base, probe_round
    ctx, state, x_M, y_M = two_groups
    task = tasks.of(ctx.spec)
    _, rows = probe_round._grouped_stream(ctx, state, None, x_M, task,
                                          lambda z, rows_c, valid_c: (jnp.zeros(()), rows_c), None)
    assert rows.tolist() == [0, 1, 2, 3]
    C = ctx.spec.classes

    def vote_fn(ids_c, z):       # each peer votes its own id: the counts show who voted
        return jnp.broadcast_to(jax.nn.one_hot(ids_c, C)[:, None, :], z.shape) * 10.0
    sums = base._grouped_sums(ctx, state, None, x_M, y_M, None, None, None, vote_fn)
    assert np.asarray(sums.counts_MxC)[:, :5].tolist() == [[1, 1, 1, 1, 0]] * 8


def test_soft_targets_of_a_round_no_message_reached_weigh_nothing():
    # every message lost (dropout): the mean's targets are zeros (a zero KL), but ERA's softmax of them is
    # uniform, a real target; the round's `arrived` 0 must weigh every probe out
    # kills: base._soft_targets' weight without `arrived`
    from tallysim import config
    from tallysim.protocols import base
    cfg = config.apply_overrides(config.Config(), ["protocol.name=softlabel", "softlabel.aggregate=era"])
    ctx = SimpleNamespace(cfg=cfg, spec=SimpleNamespace(messages=2, probes=2, classes=3), hp=lambda key: 0.1)
    zeros = jnp.zeros((2, 3))
    sums = vote.Sums(jnp.zeros((2, 3), jnp.int32), zeros, zeros, jnp.float32(0), jnp.int32(0))
    probes, _ = base._soft_targets(ctx, tasks.CLASSIFICATION, jnp.zeros((2, 4)), jnp.asarray([0, 1]), sums,
                                   jnp.int32(0), jnp.float32(0.0), None, None, lambda t: t)
    np.testing.assert_allclose(np.asarray(probes.target_M), 1 / 3, rtol=1e-6)
    assert probes.weight_M.tolist() == [0.0, 0.0]


def test_trust_weights_and_update_by_hand_with_a_lost_vote():
    # active peers 0, 1, 3 of 4 (trust 1, 0.9, 0.5); peer 3's vote was lost. Weights r_i * |S| / sum_S r_j over
    # the senders: 2 / 1.9 and 1.8 / 1.9, 0 for the lost vote. Agreement with the kept winners [0, 1]:
    # peer 0 votes [0, 0] (1/2), peer 1 [0, 1] (1); beta 0.5: 0.75 and 0.95; peer 2 (inactive) and peer 3
    # (lost: it sent nothing to agree with) keep theirs. kills: the update applied to a peer whose vote was lost
    from tallysim.sim import trust
    trust_P = jnp.asarray([1.0, 0.9, 1.0, 0.5])
    idx, sent = jnp.asarray([0, 1, 3]), jnp.asarray([True, True, False])
    w, voters = trust.weights(trust_P[idx], sent)
    np.testing.assert_allclose(np.asarray(w), [2 / 1.9, 1.8 / 1.9, 0.0], rtol=1e-6)
    assert float(voters) == 2.0
    votes = jnp.asarray([[0, 0], [0, 1], [1, 0]])
    t = vote.Tally(jnp.asarray([0, 1], jnp.int32), jnp.asarray([1.0, 0.5]), jnp.asarray([1.0, 1.0]))
    np.testing.assert_allclose(np.asarray(trust.updated(trust_P, idx, votes, t, sent, 0.5)),
                               [0.75, 0.95, 1.0, 0.5], rtol=1e-6)


def test_cfd_round_in_which_no_message_arrived_trains_on_no_probe(monkeypatch):
    # dropout losing every message: cfd's server mean is all zeros, which the peers' normalisation turns into
    # a uniform target; the round must weigh every probe out (probe_round.make_round's voters > 0), not train
    # every peer toward uniform. Run eagerly, local training replaced by a recorder (nothing compiled).
    # kills: make_round without the voters > 0 weight
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from conftest import tiny
    from tallysim import build
    from tallysim.protocols import probe_round
    b = build.build(tiny("protocol.name=cfd", "rounds=1", "faults.kind=dropout", "faults.fraction=1",
                         "faults.drop_prob=1"))
    ctx, data = b.ctx, b.one
    state = ctx.init_state(jax.random.PRNGKey(0), data, True)._replace(extra={})
    seen = {}

    def record(ctx_, lspec, state_, data_, keys, idx, probes=None, fr=None, **kw):
        seen["probes"] = probes
        return state_.params, state_.opt, None, jnp.zeros((ctx_.spec.active,)), {}
    monkeypatch.setattr(probe_round, "local_round", record)
    _, info = b.protocol.round(state, data, jax.random.PRNGKey(1), 1)
    assert int(info["senders"]) == 0
    np.testing.assert_allclose(np.asarray(seen["probes"].target_M), 1 / ctx.spec.classes, rtol=1e-6)
    assert float(jnp.sum(seen["probes"].weight_M)) == 0.0


@pytest.mark.parametrize("protocol", ["cfd", "selective_fd"])
def test_probe_round_protocols_do_not_train_on_text_padding(protocol, monkeypatch):
    # cfd and selective_fd (probe_round.make_round) on next-token probes: a position whose input is PAD (a
    # client's padded last window) is sent and counted but weighs 0, as tally's and softlabel's
    # (tests/test_text_vote.py checks those two). Eager, local training replaced by a recorder.
    # kills: make_round without the text mask
    from test_text_vote import _setup
    from tallysim.protocols import make as make_protocol, probe_round
    from tallysim.sim.peers import State
    thresholds = {"selective_fd.client_threshold": 0, "selective_fd.server_threshold": 0} if protocol == "selective_fd" else {}
    ctx, one, params, x, _ = _setup(protocol, **thresholds)
    seen = {}

    def record(ctx_, lspec, state_, data_, keys, idx, probes=None, fr=None, **kw):
        seen["probes"] = probes
        return state_.params, state_.opt, None, jnp.zeros((ctx_.spec.active,)), {}
    monkeypatch.setattr(probe_round, "local_round", record)
    round_fn = make_protocol(ctx).round
    state = State(params=params, opt=None, server=None, error=None, extra={})
    for r in range(1, 20):           # rounds until the probes hold a padded window (the pool has 2 of 8)
        round_fn(state, one, jax.random.PRNGKey(3), r)
        x_M = np.asarray(seen["probes"].x_M)
        if (x_M == tasks.PAD).any():
            break
    assert (x_M == tasks.PAD).any() and (x_M != tasks.PAD).any()
    np.testing.assert_array_equal(np.asarray(seen["probes"].weight_M), (x_M != tasks.PAD).astype(np.float32))


def test_selective_fd_keeps_no_probe_nobody_shared_on_even_at_server_threshold_0(monkeypatch):
    # client threshold 1: no peer's top probability reaches it, so no peer shares on any probe. The server's
    # mean there is all zeros, whose max (0) passes server_threshold 0: a probe must also have a sharer to
    # be kept, or its M * C * b downlink bits are charged for nothing (and its zero target trained on).
    # kills: selective_fd's keep without n > 0
    from test_text_vote import _setup
    from tallysim.protocols import make as make_protocol, probe_round
    from tallysim.sim.peers import State
    ctx, one, params, _, _ = _setup("selective_fd", **{"selective_fd.client_threshold": 1,
                                                        "selective_fd.server_threshold": 0})
    seen = {}

    def record(ctx_, lspec, state_, data_, keys, idx, probes=None, fr=None, **kw):
        seen["probes"] = probes
        return state_.params, state_.opt, None, jnp.zeros((ctx_.spec.active,)), {}
    monkeypatch.setattr(probe_round, "local_round", record)
    proto = make_protocol(ctx)
    _, info = proto.round(State(params=params, opt=None, server=None, error=None, extra={}), one,
                          jax.random.PRNGKey(3), 1)
    assert np.asarray(info["sfd_shared_A"]).tolist() == [0, 0, 0]
    assert int(info["sfd_kept"]) == 0 and float(jnp.sum(seen["probes"].weight_M)) == 0.0
    M = ctx.spec.messages
    assert proto.cost(jax.device_get(info)).totals() == (3 * M, 3 * M)    # the masks' bit per message alone
