"""Bit costs from static shapes, and the ledger that accumulates them.

Everything here is a Python int: float32 on the device is exact only to 2^24, and a run's total
traffic passes that within a few FedAvg rounds.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional


class RoundBits(NamedTuple):
    """Bits sent up and down per active peer in one round, and how many peers were active.

    When not every active peer sends or receives the same (faults.kind=dropout: lost messages are
    not counted), `up_total` / `down_total` give the round's exact totals over all peers instead
    of up * active / down * active."""
    up: int
    down: int
    active: int
    up_total: Optional[int] = None
    down_total: Optional[int] = None
    # the bits each active peer sent, in active order, where they differ from peer to peer (selective_fd's
    # shared probes, cfd's delta coding; 0 for a lost message; `uneven`): sum(up_A) == the round's up total
    up_A: Optional[tuple] = None

    def totals(self) -> tuple[int, int]:
        """(bits up, bits down) of the round, summed over the peers."""
        return (self.up * self.active if self.up_total is None else self.up_total,
                self.down * self.active if self.down_total is None else self.down_total)

    def group_totals(self, a_lo: int, a_hi: int) -> tuple[int, int]:
        """(bits up, bits down) of the active peers at positions a_lo..a_hi-1 (model.groups: a group's
        active peers are contiguous in active order). Exact: every protocol that runs with groups sends
        the same reply to every active peer, and groups refuse faults (no lost messages to split)."""
        up_split = self.up_A is not None or self.up_total in (None, self.up * self.active)
        if not up_split or self.down_total not in (None, self.down * self.active):
            raise ValueError("a round with lost messages has no per-group split (model.groups refuse faults)")
        n = a_hi - a_lo
        return (self.up * n if self.up_A is None else sum(self.up_A[a_lo:a_hi]), self.down * n)


def uneven(bits_A: tuple) -> Optional[tuple]:
    """RoundBits.up_A of a round whose active peers sent bits_A: None where they all sent the same."""
    return tuple(bits_A) if len(set(bits_A)) > 1 else None


def with_senders(bits: RoundBits, senders: int, down_per_sender: bool = False) -> RoundBits:
    """`bits` of a round in which only `senders` of the active peers' uploads were sent (dropout).
    Up: senders * up. Down: every active peer receives the server's reply (active * down) when at
    least one message arrived, nothing otherwise; with down_per_sender (allgather) each sent
    message is relayed to the others: senders * down."""
    senders = int(senders)
    down = senders * bits.down if down_per_sender else (bits.active * bits.down if senders else 0)
    return bits._replace(up_total=senders * bits.up, down_total=down)


def ceil_log2(n: int) -> int:
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def dense_params(num_params: int, bits: int) -> int:
    return num_params * bits


def sparse_params(nnz: int, num_params: int, bits: int) -> int:
    """Cheapest coding of `nnz` non-zeros of a |W|-vector: (value, index) pairs, a bitmask plus
    values, or the dense vector."""
    return min(nnz * (bits + ceil_log2(num_params)), num_params + nnz * bits, num_params * bits)


def hard_labels(probes: int, classes: int) -> int:
    return probes * ceil_log2(classes)


def soft_labels(probes: int, classes: int, bits: int) -> int:
    return probes * classes * bits


def exact_log2_ceil(n: int) -> int:
    """ceil(log2 n) of a Python int n >= 1, exactly (bit_length, no float: binom(10013, 10) is past
    2^53); 0 for n = 1 (one possible message carries no information), unlike ceil_log2's 1."""
    return (int(n) - 1).bit_length()


def histogram_natural(voters: int, classes: int) -> int:
    """Bits per probe of a histogram of `voters` votes sent as C counts of ceil(log2(A+1)) bits each."""
    return classes * exact_log2_ceil(voters + 1)


def histogram_composition(voters: int, classes: int) -> int:
    """Bits per probe of the same histogram sent as its index among all the compositions of A votes into
    C classes (the counts sum to A): ceil(log2(binom(A+C-1, C-1))), counted with Python's exact ints.
    A = 1: binom(C, C-1) = C, the winner's ceil(log2 C); A = 3, C = 10: binom(12, 9) = 220, 8 bits."""
    return exact_log2_ceil(math.comb(voters + classes - 1, classes - 1))


def vote_histograms(messages: int, voters: int, classes: int) -> int:
    """A star server's downlink to one peer under tally.target=counts: each message's histogram of
    `voters` votes (the C counts of the votes that peer lacks: the other A-1 of the A that arrived, as
    it adds its own back; protocols/tally.py), in the cheaper exact code of the two above. The
    composition's count is never above the natural code's ((A+1)^C tuples hold every composition), so
    it is the one; the min keeps the statement checkable. voters = 0 (one peer, its own vote the whole
    histogram): 0 bits."""
    return messages * min(histogram_composition(voters, classes), histogram_natural(voters, classes))


class Ledger:
    """Cumulative totals over all peers; `bits_per_peer` divides up+down by P. It also counts the
    private training steps the active peers really took and those the round computed (idle lanes
    and group padding included), so the cost of ragged shards stays visible."""

    def __init__(self, peers: int, privacy=None, groups: tuple = ()):
        self.peers = peers
        self.up = 0
        self.down = 0
        self.steps_real = 0
        self.steps_computed = 0
        self.privacy = privacy      # privacy.PrivacyLedger when privacy.noise > 0: epsilon beside the bits
        # model.groups: (a_lo, a_hi) of each group's active peers, and each group's cumulative totals
        # (its peers' own bits: a share A_g / A of the totals only where every peer sends the same)
        self.groups = tuple(groups)
        self.group_up = [0] * len(self.groups)
        self.group_down = [0] * len(self.groups)

    def add_steps(self, real: int, computed: int) -> None:
        self.steps_real += int(real)
        self.steps_computed += int(computed)

    def state(self) -> list:
        rounds = [self.privacy.rounds] if self.privacy is not None else []
        groups = [{"group_up": self.group_up, "group_down": self.group_down}] if self.groups else []
        return [self.up, self.down, self.steps_real, self.steps_computed] + rounds + groups

    def restore(self, state: list) -> None:
        state = list(state)
        saved = state.pop() if state and isinstance(state[-1], dict) else None
        self.up, self.down, self.steps_real, self.steps_computed = (state + [0, 0])[:4]
        if self.privacy is not None and len(state) > 4 and state[4]:
            self.privacy.step(int(state[4]))
        if saved is not None:
            self.group_up, self.group_down = [int(v) for v in saved["group_up"]], [int(v) for v in saved["group_down"]]
        elif self.groups:      # a checkpoint written before the per-group totals: the shares A_g / A
            active = self.groups[-1][1]
            self.group_up = [self.up * (hi - lo) // active for lo, hi in self.groups]
            self.group_down = [self.down * (hi - lo) // active for lo, hi in self.groups]

    def add(self, bits: RoundBits) -> None:
        """One round's bits (and, with privacy, one round of the privacy ledger)."""
        up, down = bits.totals()
        self.up += up
        self.down += down
        for i, (lo, hi) in enumerate(self.groups):
            g_up, g_down = bits.group_totals(lo, hi)
            self.group_up[i] += g_up
            self.group_down[i] += g_down
        if self.privacy is not None:
            self.privacy.step()

    @property
    def bits_per_peer(self) -> float:
        return (self.up + self.down) / self.peers

    def row(self) -> dict:
        row = {"bits_up": self.up, "bits_down": self.down, "bits_per_peer": self.bits_per_peer,
               "steps_real": self.steps_real, "steps_computed": self.steps_computed}
        if self.privacy is not None:          # only with privacy on: rows of other runs are unchanged
            row["epsilon"] = self.privacy.epsilon()
        return row
