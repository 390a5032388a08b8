"""The partitions' refusals (partition.py): each says what went wrong and what is allowed."""
from __future__ import annotations

import numpy as np

from .base import DataError

MAX_REDRAWS = 1000   # dirichlet: enough for any satisfiable setting, bounded for impossible ones


def redraws_exhausted(peers, cfg, best) -> DataError:
    if best is None:        # no draw was usable at all: min_size was never what failed
        return DataError(f"partition.kind=dirichlet: all {MAX_REDRAWS} draws at partition.alpha={cfg.alpha} "
                         "were unusable (numpy's Dir(alpha) draw is NaN or zero for every peer still "
                         "below N/P: the gamma samples underflow to 0 at so small an alpha), so min_size was "
                         "never reached; allowed: partition.alpha >= 1e-3 (at 1e-2 nearly every class "
                         "already goes to one peer)")
    return DataError(f"partition.kind=dirichlet could not give every one of {peers} peers >= "
                     f"{cfg.min_size} examples in {MAX_REDRAWS} draws (alpha={cfg.alpha}, last draw's "
                     f"smallest peer: {best}); lower partition.min_size or peers, or raise partition.alpha")


def check_k(k, num_classes):
    if not 1 <= k <= num_classes:
        raise DataError(f"partition.k={k} is not possible with {num_classes} classes; allowed: "
                        f"1..{num_classes}")


def dealt_absent_classes(parts: list, labels: np.ndarray, num_classes: int, name: str) -> list:
    """label_quantity deals classes, not examples: a dataset that declares classes its training split does
    not hold (an .npz's num_classes=50 over 4 labels, or a data.max_train too small to keep them) left the
    peers dealt only those classes with no examples, and they trained on nothing in silence (6 of 10)."""
    empty = sum(len(p) == 0 for p in parts)
    absent = np.setdiff1d(np.arange(num_classes), labels)
    if empty and absent.size:
        raise DataError(f"partition.kind=label_quantity gave {empty} of {len(parts)} peers no examples: {name} "
                        f"declares {num_classes} classes and {absent.size} of them have no training example "
                        f"(e.g. {', '.join(map(str, absent[:5].tolist()))}), the only classes those peers were "
                        "dealt; allowed: a dataset whose num_classes are the classes it holds, a larger "
                        "data.max_train, a larger partition.k, or another partition.kind")
    return parts
