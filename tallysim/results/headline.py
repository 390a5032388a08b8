"""The headline numbers of metrics rows: which accuracy is a row's (the server model's, acc_global,
where there is one, else the mean of the peers' own models, acc_mean), a run's (the final row's or the
best over its rows), the words for a multi-seed mean over fewer seeds or with a diverged seed, the
one-line summary of a finished run, and the same model's perplexity and per-client accuracy on text
tasks. The multi-seed row itself is made by seed_mean.py (aggregate, re-exported here); the warnings that a
run learnt nothing (collapse_warning, floor_note) by no_learning.py (re-exported here).

Re-exported by tallysim/results/metrics.py, the run directory's schema, under the same names; like it,
imports nothing above it and no JAX.
"""
from __future__ import annotations

import math
from typing import Optional

from tallysim.config import ConfigError, active_peers, group_active_counts, parse_groups
from tallysim.fields import first_few, is_number
from tallysim.results.rows import SEEDS_COUNTED, SEEDS_NONFINITE, check_metric_key
# the mean over seeds (one row from per-seed rows) is seed_mean.py's; its name stays importable from here
from tallysim.results.seed_mean import aggregate  # noqa: F401
# the warnings that a run learnt nothing (collapsed onto one answer, at the most frequent target's floor) are
# no_learning.py's; their names stay importable from here, where run.py, table and the CLI found them
from tallysim.results.no_learning import FLOOR_MARGIN, MIN_COLLAPSE_ROUNDS, at_floor, collapse_warning, floor_note  # noqa: F401

HEADLINE = ("acc_global", "acc_mean")                     # the server model, else the peers' mean
HONEST = ("acc_global", "acc_mean_honest", "acc_mean")    # ... else the honest peers' mean (faults)
WHICH = ("final", "best")


def headline_key(row: dict, keys: tuple = HEADLINE) -> str:
    """The first of `keys` the row has a value for (the last one when it has none)."""
    for k in keys[:-1]:
        if row.get(k) is not None:
            return k
    return keys[-1]


def accuracy(row: dict, keys: tuple = HEADLINE) -> float:
    """The row's headline accuracy: acc_global where there is a server model, else acc_mean."""
    if not hasattr(row, "get"):     # None, or a run's rows (a list): AttributeError 'get' from inside
        raise ConfigError(f"accuracy(row={row!r:.60}): a {type(row).__name__}; expected one metrics row (a dict, "
                          "as Results.rows, Results.last and read_rows hold them)")
    k = headline_key(row, keys)
    if k not in row:                # {} was KeyError: 'acc_mean', as if acc_mean were the only candidate
        raise KeyError(f"accuracy(row): the row has none of {', '.join(keys)} (its keys: "
                       f"{first_few(sorted(map(str, row)), 6)}); expected a metrics row")
    return row[k]


def accuracy_std(row: dict, keys: tuple = HEADLINE) -> tuple[float, float]:
    """(headline accuracy, its std over seeds; 0.0 for one seed)."""
    k = headline_key(row, keys)
    return row[k], row.get(k + "_std", 0.0)


def metric(row: dict, name: str = "auto"):
    """The row's value of column `name` (`auto`: the headline accuracy; `ppl`: the headline model's
    perplexity, next-token runs); None when not a number."""
    if name == "ppl" and "ppl" not in row:
        v = text_headline(row)["ppl"]
    else:
        v = row.get(headline_key(row)) if name == "auto" else row.get(name)
    return v if is_number(v) else None


def _seeds_in(row: dict, name: str, field: str) -> str:
    """"2 of 3 seeds": how many of `row`'s seeds aggregate's `field` (seeds_counted, seeds_nonfinite) names
    for metric `name`'s key, else "" (every seed, one seed, or no such key)."""
    if not isinstance(row, dict):
        return ""
    key = headline_key(row) if name in ("auto", "ppl") else name
    key = TEXT_HEADLINE.get(key, (key,))[0] if name == "ppl" else key
    n = (row.get(field) or {}).get(key)
    return f"{n} of {len(row.get('seeds') or ())} seeds" if n else ""


def seeds_of(row: dict, name: str = "auto") -> str:
    """"2 of 3 seeds" where `row`'s mean of metric `name` is over only the seeds that have a value there
    (aggregate's `seeds_counted`), else "" (every seed, one seed, or no such key)."""
    return _seeds_in(row, name, SEEDS_COUNTED)


def diverged_of(row: dict, name: str = "auto") -> str:
    """"1 of 3 seeds diverged" where `row`'s mean of metric `name` holds a seed's NaN or inf (aggregate's
    `seeds_nonfinite`: the mean is then NaN or inf too, and a table cell read `nan` with no word why), else ""."""
    n = _seeds_in(row, name, SEEDS_NONFINITE)
    return f"{n} diverged" if n else ""


def _words(what: str, final: bool, diverged: bool) -> str:
    """A seed count as a table's cell or CSV column says it: "final over 2 of 3 seeds" ("final" only in a
    table of final values) of a mean over fewer seeds; "1 of 3 seeds diverged" of a mean holding a NaN or inf
    (the cell reads `nan (1 of 3 seeds diverged)`: md.starred)."""
    return what if diverged else ("final " if final else "") + f"over {what}"


def partial_seeds(rows: list, name: str = "auto", diverged: bool = False) -> str:
    """How a run's values of metric `name` fall short of its seeds (aggregate's `seeds_counted`): "final over
    2 of 3 seeds", "some evaluations over fewer seeds" (its best may be one), or "" where every mean is over
    every seed. A partial mean looks like any other in a table cell or a curve, and its std is over fewer seeds.
    `diverged`: where a mean holds a seed's NaN or inf instead (`seeds_nonfinite`): "final: 1 of 3 seeds
    diverged", "some evaluations with a diverged seed", or ""."""
    if not rows:
        return ""
    of = diverged_of if diverged else seeds_of
    if final := of(rows[-1], name):
        return f"final: {final}" if diverged else _words(final, True, False)
    if not any(of(r, name) for r in rows):
        return ""
    return "some evaluations with a diverged seed" if diverged else "some evaluations over fewer seeds"


def seeds_counted(row: dict, keys=("auto",), final: bool = False, diverged: bool = False) -> str:
    """A figure CSV row's `seeds_counted`, of the metrics row `row` it holds `keys` of: "" where each is a
    mean over every seed, else "over 2 of 3 seeds" ("final over ..." for a table of final values, as
    partial_seeds says it); with several keys, each short one named: "vote_acc over 2 of 3 seeds".
    `diverged`: its `seeds_nonfinite` instead, the keys whose mean holds a seed's NaN or inf ("1 of 3 seeds
    diverged")."""
    of = diverged_of if diverged else seeds_of
    short = [(k, what) for k in keys if (what := of(row, k))]
    words = [_words(what, final, diverged) for _, what in short]
    return "; ".join(w if len(keys) == 1 else f"{k} {w}" for (k, _), w in zip(short, words))


def seed_marks(row: dict, keys=("auto",), final: bool = False) -> dict:
    """A figure's or pareto's CSV row's two seed columns of the metrics row `row` (seeds_counted): `seeds_counted`
    (a mean over fewer seeds) and `seeds_nonfinite` (a mean holding a diverged seed's NaN or inf); md.starred
    marks a Markdown cell by them."""
    return {SEEDS_COUNTED: seeds_counted(row, keys, final),
            SEEDS_NONFINITE: seeds_counted(row, keys, final, diverged=True)}


def partial_note(who: str, metric: str, runs: list, diverged: bool = False) -> str:
    """The line `table` and `plot` say of the (label, partial_seeds) of the runs it names."""
    named = first_few([f"{label}: {what}" for label, what in runs], 3, ", ... ({} more)")
    what = 'the headline accuracy' if metric == 'auto' else metric
    if diverged:
        return (f"{who}: {what} is in some rows NaN or inf: a seed diverged, and its NaN or inf is kept in the mean "
                f"over seeds, std too (metrics.jsonl's seeds_nonfinite; per_seed holds each seed's): {named}")
    return (f"{who}: {what} is in some rows a mean over only "
            "the seeds that have a value there (in the others' round no vote arrived, say), its std over those "
            f"seeds too (metrics.jsonl's seeds_counted): {named}")


def seed_notes(who: str, metric: str, runs: list) -> list[str]:
    """The partial_note lines of `runs` ((label, rows) each, or (label, rows, the run's own key for `metric`)):
    one naming the runs whose metric is a mean over fewer seeds, one naming those where it holds a diverged
    seed's NaN or inf; [] where every mean is over every seed and finite."""
    lines = []
    for diverged in (False, True):
        if short := [(label, p) for label, rows, *key in runs
                     if (p := partial_seeds(rows, key[0] if key else metric, diverged))]:
            lines.append(partial_note(who, metric, short, diverged))
    return lines


def lower_is_better(name: str) -> bool:
    """A perplexity or a loss: its best is its smallest (`table --metric ppl_mean` called the diverged
    first round's inf perplexity the best)."""
    # `tied` (the share of probes whose vote was tied, votes2) was ranked as a score: `table --metric tied`'s
    # best was a run's most tied round, and pareto's frontier the most tied runs
    return name == "ppl" or name.startswith("ppl_") or "loss" in name or name.split("@")[0] in ("wrong_confidence",
                                                                                               "tied")


def is_cost(name: str) -> bool:
    """A cost column (bits_*, bits_per_peer@NAME, wall_s): not a score, and cumulative. Its best is what the
    run spent in all, its last value (`table --metric bits_per_peer@a` called a run's most bits its best, then
    its first round's bits), and pareto refuses it as the score it draws against bits."""
    return name.startswith("bits_") or name == "wall_s"


def column_final_best(rows: list[dict], name: str = "auto") -> tuple[Optional[float], Optional[float]]:
    """A run's (final, best) value of a metric: the last row's, and the largest over its rows (the
    smallest for a perplexity or a loss, lower_is_better; for a cost, is_cost, its last value: a cost is
    cumulative; NaN and missing values left out); None where
    there is none: table's and pareto's path, whose runs may lack a column others have (metrics.final_best,
    the public call, refuses a name no row has and no run writes)."""
    if not isinstance(rows, (list, tuple)) or not all(hasattr(r, "get") for r in rows):
        # None was "'NoneType' object is not iterable"; one row (a dict) iterated its keys
        raise ConfigError(f"final_best(rows={rows!r:.60}): a {type(rows).__name__}; expected a run's metrics rows, "
                          "a list of dicts (Results.rows)")
    values = [float(v) for v in (metric(r, name) for r in rows) if v is not None and not math.isnan(v)]
    last = metric(rows[-1], name) if rows else None
    final = None if last is None or math.isnan(last) else float(last)
    if is_cost(name):
        # a cost is cumulative (bits so far, seconds so far): its smallest is always the first round's, and
        # `table --metric bits_per_peer` called that the best. A run's cost is what it spent in all: its last value
        return final, (values[-1] if values else None)
    return final, ((min if lower_is_better(name) else max)(values) if values else None)


def run_accuracy(rows: list[dict], which: str = "final", name: str = "auto") -> Optional[float]:
    """A run's headline number: the final (`which="final"`) or the best (`"best"`) value of a metric. A name
    no row has and no run writes (`acc_globl`) is refused naming close keys, as metrics.final_best does (it
    returned None, read as "this run has no value"); column_final_best stays the unchecked path."""
    if isinstance(rows, (list, tuple)) and all(isinstance(r, dict) for r in rows):   # else refused below
        check_metric_key(rows, name, call="run_accuracy")
    return column_final_best(rows, name)[WHICH.index(check_which(which))]


def check_which(which: str, flag: str = "--which") -> str:
    if which not in WHICH:
        raise ConfigError(f"{flag}={which!r} is not known; allowed: {', '.join(WHICH)}")
    return which


def bits_to_target(rows: list[dict], target: float):
    """Cumulative bits per peer at the first evaluation reaching `target` accuracy (None if never)."""
    for r in rows:
        if accuracy(r) >= target:
            return r["bits_per_peer"]
    return None


# ----------------------------------------------------------------------------- summary

def _spread(last: dict, key: str) -> str:
    """" +- 0.0100" (the std over seeds, `<key>_std`; "" for one seed), and " (final over 2 of 3 seeds)"
    where the mean is over only the seeds that have a value (partial_seeds: as table, plot and pareto say it),
    " (1 of 3 seeds diverged)" where it holds a seed's NaN or inf (the accuracy read `nan` with no word why)."""
    std = last.get(key + "_std")
    part = partial_seeds([last], key)
    return (f" +- {std:.4f}" if is_number(std) else "") + (f" ({part})" if part else "") + _gone(last, key)


def _gone(last: dict, name: str) -> str:
    """" (1 of 3 seeds diverged)" where the row's mean of `name` holds a seed's NaN or inf (diverged_of), else ""."""
    return f" ({gone})" if (gone := diverged_of(last, name)) else ""


def _by_group(last: dict) -> str:
    """", by group: phone 0.6503 +- 0.0100, server 0.6920 +- 0.0040" under model.groups (the peer mean of
    each group's own models, `acc_mean@NAME`, and its std over seeds as table's final_std@NAME), the number a
    mixed-architecture run is about; "" without groups. A 2-seed run gave each group's mean alone."""
    groups = [k for k, v in last.items() if k.startswith("acc_mean@") and not k.endswith("_std") and is_number(v)]
    return (", by group: " + ", ".join(f"{k.removeprefix('acc_mean@')} {last[k]:.4f}{_spread(last, k)}"
                                       for k in groups)) if groups else ""


def bits_text(bits) -> str:
    """A count of bits as every table prints it (`table`, `pareto`'s tables, `plot`'s and the figures'
    CSVs and Markdown tables): a whole number whole, a fraction (total bits / peers, a mean over seeds:
    a cohort run's 59.8980101989801, a gated run's 9533.333333333332) to two decimals; "" for none.
    Each table had its own rule: `table` 9533.33, `pareto` 60, the figures 59.9 and 3.2e+09."""
    if bits is None or bits == "":
        return ""
    if isinstance(bits, str) or not math.isfinite(bits):
        return str(bits)
    return str(int(bits)) if float(bits).is_integer() else f"{bits:.2f}"


def _per_active(cfg, last: dict) -> str:
    """With a cohort each round (participation < 1): what one active client sends and receives in a round,
    beside `bits_per_peer`, which divides by every client: FedAvg over 10,000 clients, 10 a round, read
    "0.0002678 MB per peer" where each of the 10 moved 0.0134 MB a round (docs/population.md). "" with
    every peer active. With model.groups each group draws its own A_g of P_g (model_groups.active_counts),
    so A is their sum; left out before, a cross-device run of groups showed only the per-all-peers share."""
    peers, rounds, bits = cfg.peers, last.get("round"), last.get("bits_per_peer")
    if cfg.participation >= 1 or not (is_number(rounds) and rounds > 0 and is_number(bits)):
        return ""
    groups = parse_groups(cfg.model.groups)
    # config_shapes' A and model_groups' A_g, re-exported by the configuration (results/ imports only it)
    active = sum(group_active_counts(cfg, groups)) if groups else active_peers(cfg)
    if groups and active >= peers:   # every group rounds to all its peers: nothing to add
        return ""
    return f" ({bits * peers / active / rounds / 8e6:.4g} MB per active client and round, {active} of {peers:,} a round)"


def _count(n: int, noun: str) -> str:
    """`1 round`, `2 rounds`: the summary said "1 rounds"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def summary_line(cfg, last: dict, dead: str = "") -> str:
    """One line for a finished run: `cfg` a Config (protocol.name, rounds, peers, seeds, data.name), `last`
    its last metrics row (plus `out`, the run directory, if it was written), `dead` the clause naming the
    peers at the floor all run (dead_peers.clause of the run's rows). The rows are read by
    metrics.summary_line, the public one, which passes the clause: this module reads no run directory
    (reading them here, through dead_peers.py and metrics.py, made an import cycle back to this module)."""
    k = headline_key(last)
    acc = last.get(k)
    seeds = f" x {cfg.seeds} seeds" if cfg.seeds > 1 else ""
    ppl = text_headline(last)["ppl"]        # next-token runs: the headline model's perplexity
    return (f"{cfg.protocol.name}: {_count(cfg.rounds, 'round')}, {_count(cfg.peers, 'peer')}{seeds} on {cfg.data.name} -> "
            f"accuracy {acc:.4f}" + _spread(last, k)
            + (f" (peer mean {last['acc_mean']:.4f}, ensemble {last['acc_ensemble']:.4f}{_by_group(last)}{dead})"
               if last.get("acc_mean") is not None else " (server model; no client model is kept)") + ", "
            + ("" if ppl is None else f"perplexity {ppl:.4g}{_gone(last, 'ppl')}, ") +
            f"{last['bits_per_peer'] / 8e6:.4g} MB per peer{_per_active(cfg, last)}, {last['wall_s']:.1f} s"
            + (f"; results in {last['out']}" if last.get("out") else ""))


# The text columns beside a row's headline accuracy: the same model's perplexity and per-client
# accuracy (the server model's on every client, else each peer's own on its own client).
TEXT_HEADLINE = {"acc_global": ("ppl_global", "acc_client_mean", "acc_client_p10"),
                 "acc_mean": ("ppl_mean", "acc_own_mean", "acc_own_p10")}


def text_headline(row: dict) -> dict:
    """{ppl, client_mean, client_p10} of the row's headline model (None where the run has none)."""
    keys = TEXT_HEADLINE.get(headline_key(row), (None, None, None))
    return {name: row.get(k) if k else None for name, k in zip(("ppl", "client_mean", "client_p10"), keys)}


def no_client_note(runs: list) -> Optional[str]:
    """`tallysim table`'s note for next-token runs whose per-client accuracy is null in every row, so that
    its client_mean and client_p10 columns vanished in silence: with a natural split and a data.max_test
    sample, the peers' own clients (a few roles of 715) had no test window among the windows evaluated
    (the study's 6 roles among 200 of 11,040). `runs`: (dir, label, config dict, rows) as table reads them."""
    empty = [(label, cfg) for _, label, cfg, rows in runs if rows and rows[-1].get("ppl_mean") is not None
             and all(text_headline(r)["client_mean"] is None for r in rows)
             and (cfg.get("partition") or {}).get("kind") == "natural" and headline_key(rows[-1]) == "acc_mean"]
    if not empty:
        return None
    names = first_few([label for label, _ in empty], 3, ", ... ({} more)")
    sizes = sorted({(cfg.get("data") or {}).get("max_test") for _, cfg in empty}, key=str)
    why = (f"among the data.max_test={', '.join(map(str, sizes))} test windows evaluated (a uniform sample of "
           "every client's): raise data.max_test or leave it unset" if sizes != [None] else
           "in the test set evaluated")
    return (f"table: {names}: no per-client accuracy (acc_own_mean null in every row; no client_mean or "
            f"client_p10 column for them): none of the peers' own clients had a scored test position {why}")


def say_no_client(runs: list, log) -> None:
    """no_client_note through `log`, where there is one."""
    note = no_client_note(runs)
    if note:
        log(note)


def _whole(v) -> bool:
    return is_number(v) and math.isfinite(v) and float(v).is_integer()


def check_bits(row: dict, where: str) -> None:
    """Bit counts as the ledger writes them (sim/comm.py; results/run_dir.read_rows checks each row): every `bits_*` column (bits_up, bits_down,
    bits_per_peer and each group's `@NAME` ones) a finite number >= 0, and bits_up / bits_down whole
    counts (a multi-seed row's mean may be fractional; each seed's own, in `per_seed`, is whole). A
    hand-edited -5 or 12.5 was drawn and tabled as if a run had sent it."""
    per_seed = row.get("per_seed") if isinstance(row.get("per_seed"), dict) else {}
    for key, v in row.items():
        if not key.startswith("bits_") or key.endswith("_std") or v is None:
            continue
        if not is_number(v) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"{where}: {key}={v!r} is not a bit count; allowed: a finite number >= 0")
        if key.split("@")[0] in ("bits_up", "bits_down"):
            each = per_seed.get(key, []) if "seeds" in row else [v]     # a mean: its seeds are whole
            bad = [x for x in (each if isinstance(each, list) else [each]) if not _whole(x) or x < 0]
            if bad:
                raise ConfigError(f"{where}: {key}={bad[0]!r}{' (a seed in per_seed)' if 'seeds' in row else ''}"
                                  " is not a whole number of bits; allowed: an integer >= 0")
