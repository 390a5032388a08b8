"""The two warnings that a run has learnt nothing, from its numbers alone: its peers collapsed onto one
shared wrong answer (collapse_warning: run.py after a run, through metrics.run_collapse_warning), or its
accuracy no better than always predicting the most frequent test target (at_floor, floor_note: the CLI's
note after a run, table's note). Split from headline.py by job: that module picks a row's and a run's
headline numbers and says them; this one says when they mean nothing was learnt (and headline.py
re-exports these names).

Like headline.py, imports nothing above it and no JAX.
"""
from __future__ import annotations

import math
from typing import Optional

from tallysim.fields import is_number

MIN_COLLAPSE_ROUNDS = 10


def _finite(v) -> bool:
    return is_number(v) and math.isfinite(v)


def collapse_warning(last: dict, classes: int, voters: int, best: Optional[float] = None,
                     name: str = "") -> Optional[str]:
    """A warning line when a distillation run's last row shows its peers collapsed onto one shared
    wrong answer: the vote unanimous (agreement >= 0.99) and both the vote's accuracy on the probes
    and the worst peer's test accuracy at chance (at most 1/C + min(0.05, 0.5/C)), else None. A
    healthy run cannot be unanimous at chance (an untrained shared init's first vote is, but its
    peers then train above chance); two voters at least (one peer agrees with itself) and
    classification only (`classes` 0: next-token runs, whose chance is not 1/C), from round 10 on.
    `best`, where known, the run's best headline accuracy over its rows: a run never above chance did not
    collapse, it never learnt (too small a learning rate, a binary task too hard for its model, labels
    that do not match their inputs: the advice below would mislead). `name`: the run's, said first (a
    sweep's or a figure's runs: which one). docs/protocols.md, "Long runs"."""
    agree, vote_acc = last.get("agreement"), last.get("vote_acc")
    acc = last.get("acc_min") if _finite(last.get("acc_min")) else last.get("acc_mean")
    # a run of a few rounds at chance is a run that has not learnt yet (a smoke run), not a collapse,
    # which took 20 rounds and more in every run measured; NaN passed every comparison below (warned)
    if voters < 2 or classes < 2 or not all(_finite(v) for v in (agree, vote_acc, acc)) \
            or not is_number(last.get("round")) or last["round"] < MIN_COLLAPSE_ROUNDS:
        return None
    chance = 1.0 / classes
    near = chance + min(0.05, 0.5 * chance)
    if agree < 0.99 or vote_acc > near or acc > near or (_finite(best) and best <= near):
        return None
    return (f"tallysim: warning: {name + ': ' if name else ''}the peers have collapsed onto one shared answer: the last vote was unanimous "
            f"(agreement {agree:.2f}) and at chance (vote accuracy {vote_acc:.2f}, worst peer's test accuracy "
            f"{acc:.2f}, "
            f"chance {chance:.2f}); a lower optim.lr or distill.weight prevented it where measured "
            f"(docs/protocols.md, \"Long runs\")")


# How far above the most frequent target's share an accuracy must be to count as above that floor: a
# run at 0.0897 against a floor of 0.0898 (one position's rounding over 10,000 test tokens) is at it.
FLOOR_MARGIN = 0.002


def at_floor(acc, majority: dict) -> bool:
    """Whether accuracy `acc` is no better than always predicting the most frequent test target
    (`majority`: partition_file.majority's dict; False where it is empty or acc is no number)."""
    floor = majority.get("majority_acc") if isinstance(majority, dict) else None
    return is_number(acc) and is_number(floor) and math.isfinite(acc) and acc <= floor + FLOOR_MARGIN


def floor_note(acc, majority: dict, name: str = "") -> Optional[str]:
    """One line where a run's headline accuracy `acc` is at the floor of always predicting the most
    frequent test target (at_floor), else None: every protocol's first rounds on Shakespeare words read
    0.0898, the comma's share, so tally, softlabel and FedAvg looked tied where none had learnt
    anything (perplexity still tells them apart)."""
    if not at_floor(acc, majority):
        return None
    return (f"tallysim: note: {name + ': ' if name else ''}accuracy {acc:.4f} is no better than always predicting "
            f"the most frequent test target (class {majority.get('majority_class')}: "
            f"{majority['majority_acc']:.4f} of the scored test targets, partition.json's majority_acc): the "
            "model has learnt nothing beyond the targets' frequencies yet; compare perplexity, or train longer "
            "(docs/cli.md, \"Where results go\")")
