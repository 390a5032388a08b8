"""The one check that an accuracy is a fraction in [0, 1], for every reader of one: a run directory's rows
and their `per_seed` lists (run_dir.py), a per-seed CSV side of `tallysim compare` and docs/verdicts.md's
recomputation (both through seed_csv.merged_values). One message shape, naming where (the file, its line or
its selection, the seed), the column and the value as the file holds it, and what is allowed:

    FILE line 3, seed 1: per_seed['acc_mean']=45.9 is not an accuracy; allowed: a fraction in [0, 1], ...

A finite value outside [0, 1] (a percent, 45.9; a sign slip, -0.4) is refused by every reader: it is a
misread accuracy, and it went into tables, plots and paired differences as it stood. What differs is a seed
with no finite value (a diverged seed's nan or inf, a blank cell), and the caller names which by `mode`:

- DROP (compare, run directories): it is that seed's result (it diverged); the value passes as it is, and
  compare_pairs.paired drops the seed from the pairing with the note `seeds dropped (no finite value, e.g.
  diverged): 1 (A)`, so a diverged seed is never silently gone and never paired.
- REFUSE (verdicts.py): a verdict in the docs stands on every seed its committed files hold, so a seed that
  cannot be paired there is a damaged file, not a result to leave out: refused.

Imports nothing above it.
"""
from __future__ import annotations

import math

from tallysim.fields import ConfigError, is_number

ACCURACIES = ("acc_mean", "acc_global")     # the columns that hold fractions in [0, 1]
REFUSE, DROP = "refuse", "drop"
ALLOWED = {
    DROP: "a fraction in [0, 1], or no finite value (a diverged seed's nan or inf, a blank), which a paired "
          "comparison drops with a note",
    REFUSE: "a fraction in [0, 1] for every seed (a diverged seed's nan or inf, or a blank, is refused too: a "
            "verdict stands on every seed its files hold)",
}


def finite(value) -> bool:
    return is_number(value) and math.isfinite(value)


def passes(value, mode: str) -> bool:
    """A fraction in [0, 1], or (DROP) no finite value: None, nan, inf."""
    if mode not in ALLOWED:             # a caller's slip, not a user's: say which modes there are
        raise ValueError(f"accuracy_check: mode={mode!r}; allowed {REFUSE!r} or {DROP!r}")
    return finite(value) and 0 <= value <= 1 or not finite(value) and mode == DROP


def check(value, where: str, column: str, mode: str, shown=None) -> None:
    """Refuse `value` of `column` at `where` (e.g. "runs/a/metrics.jsonl line 3, seed 1") unless it passes.
    `shown`: the value as the file holds it where that differs from `value` (a CSV's cell text, '45.9' or ''
    or 'nan')."""
    if not passes(value, mode):
        raise ConfigError(message(where, column, value if shown is None else shown, mode))


def message(where: str, column: str, shown, mode: str) -> str:
    return f"{where}: {column}={shown!r} is not an accuracy; allowed: {ALLOWED[mode]}"
