"""Bit costs from static shapes, and the ledger that accumulates them.

Everything here is a Python int: float32 on the device is exact only to 2^24, and a run's total
traffic passes that within a few FedAvg rounds.
"""
from __future__ import annotations

import math
from typing import NamedTuple


class RoundBits(NamedTuple):
    """Bits sent up and down per active peer in one round, and how many peers were active."""
    up: int
    down: int
    active: int


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


class Ledger:
    """Cumulative totals over all peers; `bits_per_peer` divides up+down by P. It also counts the
    private training steps the active peers really took and those the round computed (idle lanes
    and group padding included), so the cost of ragged shards stays visible."""

    def __init__(self, peers: int):
        self.peers = peers
        self.up = 0
        self.down = 0
        self.steps_real = 0
        self.steps_computed = 0

    def add_steps(self, real: int, computed: int) -> None:
        self.steps_real += int(real)
        self.steps_computed += int(computed)

    def state(self) -> list:
        return [self.up, self.down, self.steps_real, self.steps_computed]

    def restore(self, state: list) -> None:
        self.up, self.down, self.steps_real, self.steps_computed = (list(state) + [0, 0])[:4]

    def add(self, bits: RoundBits) -> None:
        self.up += bits.up * bits.active
        self.down += bits.down * bits.active

    @property
    def bits_per_peer(self) -> float:
        return (self.up + self.down) / self.peers

    def row(self) -> dict:
        return {"bits_up": self.up, "bits_down": self.down, "bits_per_peer": self.bits_per_peer,
                "steps_real": self.steps_real, "steps_computed": self.steps_computed}
