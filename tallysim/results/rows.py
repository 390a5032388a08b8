"""Writing a metrics row: the row of one lane at an evaluation round, as run.py appends it to
metrics.jsonl (its keys are in docs/protocols.md), with the per-group keys (model.groups) and the text
keys (perplexity, per-client accuracy).

Re-exported by tallysim/results/metrics.py, the run directory's schema, under the same names; like it,
imports nothing above it and no JAX (the evaluation's arrays arrive as NumPy-convertible values).
"""
from __future__ import annotations

import json
import math
import time

import numpy as np

from tallysim.fields import ConfigError, did_you_mean, first_few

PROBE_KEYS = ("consensus_acc", "vote_acc", "softavg_acc", "agreement", "tied", "wrong_confidence",
              "vote_acc_honest", "softavg_acc_honest")
# Scalars a protocol's round reports of itself (null in the rows of protocols that do not compute them):
# the share of the round's probes kept after abstention (tally, bridge), whether bridge merged this round
# and the merged update's non-zeros, FedDF's last server distillation loss. The row holds the
# evaluation round's value, as train_loss does.
ROUND_KEYS = {"kept": float, "merged": int, "nnz": int, "feddf_loss": float}


PEER_PLACES = 4
# A multi-seed row's {key: seeds averaged} for each key only some seeds have a value of (seed_mean.aggregate),
# absent where every mean is over every seed
SEEDS_COUNTED = "seeds_counted"
# {key: seeds whose value is NaN or inf} (a diverged seed's perplexity): kept in the mean, not left out as a
# missing value is; absent where every seed's value is finite
SEEDS_NONFINITE = "seeds_nonfinite"

# The columns lane_row (and the ledger, text_row, a multi-seed row) write of their own. A plugin's
# Protocol.row_keys naming one replaced it in silence (row_keys={"acc_mean": float} wrote the plugin's
# info value as the headline accuracy), so check_own_keys refuses them. ROUND_KEYS are left out on
# purpose: they are the protocol's own info scalars already, so a plugin naming one writes its own value
# either way and may give it another cast (a float `merged`). tests/test_leftovers_dec13.py runs each
# row-writing path (seeds, grouped, population, model groups, text) and checks every column it writes is
# refused here or is one of ROUND_KEYS.
WRITTEN_KEYS = ("round", "bits_up", "bits_down", "bits_per_peer", "steps_real", "steps_computed", "epsilon",
                "acc_mean", "acc_min", "acc_max", "acc_peers", "acc_global", "acc_ensemble", "eval_peers",
                "train_loss", "faulty", "acc_mean_honest", *PROBE_KEYS, "ppl_mean", "ppl_global",
                "acc_client_mean", "acc_client_p10", "acc_own_mean", "acc_own_p10", "wall_s", "seeds", "per_seed",
                SEEDS_COUNTED, SEEDS_NONFINITE)



# What a newcomer types for `--metric auto`, the headline accuracy (acc_global where there is a server
# model, else acc_mean): offered as "did you mean auto?" when refused (metrics re-exports it)
METRIC_ALIASES = {"accuracy": "auto", "acc": "auto", "headline": "auto", "testacc": "auto"}


def check_metric_key(rows: list, name, aliases: dict | None = METRIC_ALIASES, call: str = "final_best") -> None:
    """A metric name that no row holds and no run writes (WRITTEN_KEYS, ROUND_KEYS, with `@GROUP` or a seed
    mean's `_std`; `auto`, `ppl`) refused naming close keys (`aliases`: did_you_mean's):
    metrics.final_best(rows, "acc_globl") returned (None, None), read as "this run has no value", and
    headline.run_accuracy None. `call`: the public function refusing it, as the message names it."""
    if not isinstance(name, str):
        raise ConfigError(f"{call}(name={name!r:.40}): expected a column name (str), or 'auto'")
    head = name.split("@")[0]
    head = head[:-len("_std")] if head.endswith("_std") else head
    if name in ("auto", "ppl") or head in WRITTEN_KEYS or head in ROUND_KEYS \
            or any(isinstance(r, dict) and name in r for r in rows):
        return
    held = sorted({k for r in rows if isinstance(r, dict) for k in r if k not in ("seeds", "per_seed")})
    known = sorted(set(held) | {k for k in (*WRITTEN_KEYS, *ROUND_KEYS) if k not in ("seeds", "per_seed")})
    raise ConfigError(f"metric {name!r} is no key of these rows nor one a run writes; allowed: auto, ppl or a "
                      f"key of the rows ({first_few(held, 8) or 'none: no rows'}){did_you_mean(name, known, aliases)}")


# Strict JSON for the numbers JSON has none for. A text run whose test loss overflows exp has perplexity
# inf; Python's json wrote it as the bare token `Infinity`, which jq, JavaScript's JSON.parse and pandas'
# strict readers refuse. It is written as the string "Infinity" ("-Infinity", "NaN") instead: strict
# JSON, spelt as JavaScript's Number() and Python's float() read it, and told apart from null, which
# means "not computed" (a column the run has no model for). tallysim's reader (run_dir.read_rows, public
# as metrics.read_rows) turns these three strings back into floats, and still reads the bare tokens of
# files written before.
NON_FINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


def _strict(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def check_own_keys(name: str, row_keys) -> None:
    """Protocol `name`'s row_keys, checked before its rows are written (run.py, after the build and before
    anything compiles): new column names, each cast by int or float (lane_row's cast)."""
    from tallysim import protocols
    who = f"protocol {name!r}" + ("" if name in protocols.REGISTRY else f" (plugin {protocols.module_of(name)!r})")
    if not isinstance(row_keys, dict):
        raise ConfigError(f"{who}: Protocol.row_keys is {type(row_keys).__name__}; expected a dict of "
                          "info key -> int or float")
    for k, cast in row_keys.items():
        if not isinstance(k, str) or k in WRITTEN_KEYS or "@" in k or k.endswith("_std"):
            raise ConfigError(f"{who}: Protocol.row_keys names {k!r}, a column tallysim writes itself "
                              "(a plugin's value would replace it in every row); allowed: a new name, "
                              "not one of round, acc_*, bits_*, train_loss, ..., nor with '@' or ending '_std'")
        if cast not in (int, float):
            raise ConfigError(f"{who}: Protocol.row_keys[{k!r}] is {cast!r}; allowed: int or float (how "
                              "the value is written in the metrics rows)")


def dumps_row(row: dict, **kw) -> str:
    """A metrics row (or any record holding rows, e.g. done.json) as strict JSON: inf and NaN as the
    strings of NON_FINITE (allow_nan=False: nothing else non-finite can slip through)."""
    return json.dumps(_strict(row), allow_nan=False, **kw)


def revive(value):
    """A row read back from JSON with NON_FINITE's strings turned into the floats they stand for (at any
    depth: per_seed lists too). Rows hold no other strings that could be those exact words."""
    if isinstance(value, str):
        return NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revive(v) for v in value]
    return value


def lane_row(ev: dict, info: dict, led, j: int, r: int, t0: float, own_keys: dict = None,
             groups: tuple = ()) -> dict:
    """The metrics row of lane j (an index into the chunk) at evaluation round r. `own_keys`: the
    protocol's own row scalars (Protocol.row_keys, name -> int or float), after ROUND_KEYS.
    `groups` (model.groups): (name, lo, hi, active, all active) per group, for its GROUP_KEYS."""
    acc = ev["acc_P"][j]
    some = acc.size > 0         # none under client_storage=auto (a stateless protocol keeps no client model)
    row = {"round": r, **led.row(),
           "acc_mean": float(acc.mean()) if some else None, "acc_min": float(acc.min()) if some else None,
           "acc_max": float(acc.max()) if some else None,
           # every peer's own test accuracy, peer order, rounded to 4 places (within 5e-5, far below a
           # seed's spread; 7 characters a peer keep a 1000-peer row near 8 kB)
           "acc_peers": [round(float(a), PEER_PLACES) for a in acc],
           "acc_global": None if ev["acc_global"] is None else float(ev["acc_global"][j]),
           "acc_ensemble": float(ev["acc_ensemble"][j]) if some else None,
           "eval_peers": int(acc.size),      # the client models evaluated (eval_peers, eval_sample)
           "train_loss": None if _none_stepped(info, "stepped", j) else float(info["train_loss"][j])}
    # faults.py: faulty peers this round, and the mean test accuracy of the others (null if none)
    row["faulty"] = int(info["faulty"][j]) if "faulty" in info else 0
    # ev["faulty_P"] (faults.eval_sets): each lane's faulty set at this round, None without faults, False
    # where the round drew only its cohort's status (redraw under cohort_draw=sequential): no honest set
    faulty = ev.get("faulty_P")
    honest = np.ones(acc.shape, bool) if faulty is not False else np.zeros(acc.shape, bool)
    if faulty is not None and faulty is not False:   # of the peers evaluated: 0..N-1, or the lane's sample
        pick = ev.get("eval_idx")
        honest = ~np.asarray(faulty[j], bool)
        honest = honest[pick[j]] if pick is not None else honest[:acc.shape[0]]
    row["acc_mean_honest"] = float(acc[honest].mean()) if some and honest.any() else None
    for k in PROBE_KEYS:
        row[k] = float(info[k][j]) if k in info and math.isfinite(info[k][j]) else None
    for k, cast in {**ROUND_KEYS, **(own_keys or {})}.items():
        row[k] = cast(info[k][j]) if k in info and math.isfinite(info[k][j]) else None
    for i, (name, lo, hi, active, total) in enumerate(groups):
        loss = info.get(f"train_loss@{name}")       # the round's (protocols/round_helpers.loss_info)
        row.update(group_row(name, acc[lo:hi], led, hi - lo, active, total, i,
                             None if loss is None or _none_stepped(info, f"stepped@{name}", j) else float(loss[j])))
    row.update(text_row(ev, j))
    row["wall_s"] = round(time.perf_counter() - t0, 3)
    return row


def _none_stepped(info: dict, key: str, j: int) -> bool:
    """No active peer (of the group) took a local step in the round (sim/local.train_peers' `stepped`): its
    train_loss is missing (null, left out as other missing values), not the 0 the program carries (a NaN
    there would stop the run as diverged). A round without the count (a plugin's own info) is as before."""
    return key in info and int(info[key][j]) == 0


def unreported_steps(info: dict, names, j: int) -> list:
    """The groups (of `names`) whose round's `train_loss@NAME` is exactly 0 where the info holds no
    `stepped@NAME`: a plugin round that called loss_info(ctx, loss_A) without local_round's steps, and
    (a cross-entropy of exactly 0 being a run's last word, not its first) a group in which no peer took a
    step, whose 0 its row reports and train_loss averages in. loss_info cannot tell it alone: it is handed
    the losses, and the steps only by the caller (docs/groups.md)."""
    return [n for n in names if f"stepped@{n}" not in info and f"train_loss@{n}" in info
            and float(info[f"train_loss@{n}"][j]) == 0.0]


# model.groups: a row's keys per group, `<key>@<group name>` (docs/groups.md)
GROUP_KEYS = ("acc_mean", "acc_min", "acc_max", "bits_up", "bits_down", "bits_per_peer", "train_loss")


def group_row(name: str, acc, led, peers: int, active: int, total: int, index: int = 0,
              loss=None) -> dict:
    """One group's keys. `loss`: the evaluation round's mean local loss over the group's active peers, as
    train_loss is over all of them (None where the round's info has none: a plugin's own round). The bits are the group's own (its peers' messages, summed round by round in the
    ledger: comm.RoundBits.group_totals), exact where peers send different bits (selective_fd's shared
    probes, cfd's delta coding). A ledger without groups (written by hand) gives the share active / all
    active of its totals, exact where every active peer sends and receives the same bits."""
    if getattr(led, "groups", ()):
        up, down = led.group_up[index], led.group_down[index]
    else:
        up, down = led.up * active // total, led.down * active // total
    return {f"acc_mean@{name}": float(acc.mean()), f"acc_min@{name}": float(acc.min()),
            f"acc_max@{name}": float(acc.max()), f"bits_up@{name}": up, f"bits_down@{name}": down,
            f"bits_per_peer@{name}": (up + down) / peers, f"train_loss@{name}": loss}


CLIENT_PERCENTILE = 10


def client_stats(hits_K, scored_K, keep_K=None) -> tuple:
    """(mean, 10th percentile) over clients of per-client accuracy hits_k / scored_k, each client
    weighing the same, over the clients with a scored test target (and keep_K); (None, None) if none.
    The percentile is numpy's default (linear interpolation between the closest ranks)."""
    hits, scored = np.asarray(hits_K, float), np.asarray(scored_K, float)
    ok = scored > 0 if keep_K is None else (scored > 0) & np.asarray(keep_K, bool)
    if not ok.any():
        return None, None
    acc = hits[ok] / scored[ok]
    return float(acc.mean()), float(np.percentile(acc, CLIENT_PERCENTILE))


def text_row(ev: dict, j: int) -> dict:
    """The row keys evaluate() adds on next-token tasks (perplexity) and on datasets with clients
    (per-client accuracy); {} for the others, whose rows are as before."""
    row = {}
    if ev.get("ppl_P") is not None:
        ppl = np.asarray(ev["ppl_P"][j], float)
        row["ppl_mean"] = float(ppl.mean()) if ppl.size else None     # none: client_storage=auto
        row["ppl_global"] = None if ev.get("ppl_global") is None else float(ev["ppl_global"][j])
    if ev.get("client_scored_K") is not None:
        scored = ev["client_scored_K"][j]
        glob = ev.get("client_global_K")
        row["acc_client_mean"], row["acc_client_p10"] = (
            (None, None) if glob is None else client_stats(glob[j], scored))
        row["acc_own_mean"], row["acc_own_p10"] = client_stats(ev["client_own_K"][j], scored,
                                                               ev["client_held_K"][j])
    return row
