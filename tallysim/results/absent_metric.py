"""--metric naming no numeric column of the runs, refused saying why (a key that is no score, a column
null in every row and why it is, a model group the runs do not have, no column at all): table's,
compare's, pareto's and plot's one refusal (split from table.py, which imports it)."""
from __future__ import annotations

from tallysim.config import ConfigError
from tallysim.fields import did_you_mean
from tallysim.results import metrics

def refuse_absent(metric: str, rows_per_run: list, cols, flag: str = "--metric", command: str = "") -> None:
    """--metric naming no numeric column of the runs (`cols`), refused saying why: a key every row holds that
    is no score (`round`, `acc_peers`), a column null in every row (and why it is), or no column at all.
    table's, and pareto's and plot's since: theirs said "not a column of any run's metrics.jsonl" of `round`
    and of acc_mean on a cohort run (null: no client model kept), sending the user looking for a typo."""
    if metric in cols:
        return
    allowed = f"allowed: auto, {', '.join(sorted(cols))}{did_you_mean(metric, sorted(cols), metrics.METRIC_ALIASES)}"
    held = [r[metric] for rows in rows_per_run for r in rows if r.get(metric) is not None]
    if held:
        # `round`, `acc_peers` (a list): "has no value in any run's metrics.jsonl (null in every row)"
        # of a key every row holds
        what = ("the evaluation round each row is of" if metric == "round" else
                f"its values are {type(held[0]).__name__}s, not single numbers")
        raise ConfigError(f"{flag} {metric!r} is not a score to {command or 'rank runs by'} ({what}); {allowed}")
    if any(metric in r for rows in rows_per_run for r in rows):
        # a column of the rows, null in every one: "not a column" sent the user looking for a typo
        raise ConfigError(f"{flag} {metric!r} has no value in any run's {metrics.METRICS} (null in "
                          f"every row: {_NULL_WHY.get(metric, 'not computed by these runs')}); {allowed}")
    groups = sorted({c.partition("@")[2] for c in cols if "@" in c})
    if "@" in metric and metric.partition("@")[2] not in groups:   # acc_mean@A among 60 columns: the groups, first
        raise ConfigError(f"{flag} {metric!r} names model group {metric.partition('@')[2]!r}, and " + (
            f"these runs' groups are {', '.join(groups)}" if groups else "these runs have no model.groups")
            + f"; {allowed}")
    raise ConfigError(f"{flag} {metric!r} is not a column of any run's {metrics.METRICS}; {allowed}")


# Why a column is null in every row of the runs asked about (_NULL_WHY), for --metric's refusal.
_NULL_WHY = {"acc_global": "no server model in these runs; their accuracy is acc_mean, the peers' mean",
             "acc_ensemble": "no peer models in these runs", "acc_mean": "no peer models in these runs",
             "consensus_acc": "no probe was kept and scored",
             "vote_acc": "no probe position was scored, or no vote arrived (every peer dropped)",
             "softavg_acc": "no probe position was scored, or no vote arrived (every peer dropped)",
             **dict.fromkeys(("agreement", "tied", "wrong_confidence"), "no vote arrived (every peer dropped)"),
             "epsilon": "no privacy noise",
             # a next-token run's server-model columns (a tally run has none: its peers' are acc_own_*, ppl_mean)
             **dict.fromkeys(("acc_client_mean", "acc_client_p10", "ppl_global"), "no server model in these runs; "
                             "the peers' own are acc_own_mean, acc_own_p10 and ppl_mean"),
             **dict.fromkeys(("acc_own_mean", "acc_own_p10", "ppl_mean"), "no peer models in these runs; the "
                             "server model's are acc_client_mean, acc_client_p10 and ppl_global")}
