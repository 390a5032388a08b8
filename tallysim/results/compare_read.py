"""One side of `tallysim compare` (compare.py) read: a finished run directory, the column compared
(`--metric`), each seed's value at the final or best evaluation (`--at`), refused in one line otherwise."""
from __future__ import annotations

import math
from pathlib import Path

from tallysim.config import ConfigError
from tallysim.results import compare_text, headline, metrics

AT = ("final", "best")


def finished(d: Path, cfg: dict, rows: list, role: str) -> None:
    from tallysim.results.table import run_status
    status = run_status(d, cfg, rows) if cfg else f"it has no {metrics.CONFIG}, so its round count is unknown"
    if status != "done":
        done = rows[-1].get("round") if rows else 0
        # with a config, say how to finish it (the sweep again, --resume, --overwrite, its error.txt)
        then = f"; {compare_text.to_finish(d, status)}" if cfg else ""
        raise ConfigError(f"{role} {d} is not finished ({status}: round {done} of {cfg.get('rounds')}); "
                          f"allowed: finished runs (a paired comparison of unequal lengths would not be one){then}")


def read_run(d, role: str) -> tuple[Path, dict, list]:
    """(directory, config, rows) of one finished run directory, refused in one line otherwise."""
    d = Path(metrics.directory(d, "a run directory"))
    if d.is_dir() and not (d / metrics.METRICS).exists() and (d / metrics.SWEEP).is_file():
        raise ConfigError(f"{role} {d} is a sweep directory, not a run; allowed: two run directories, or the "
                          "sweep with --by FIELD=VALUE_A,VALUE_B (pairs its runs that differ only in FIELD)")
    if not d.is_dir():
        raise ConfigError(f"{role} {d} {'is not a directory' if d.exists() else metrics.missing(d)}; allowed: a "
                          "run directory (with metrics.jsonl)")
    cfg, rows = metrics.read_run(d)
    if not rows:
        raise ConfigError(f"{role} {d}: its {metrics.METRICS} holds no row yet; allowed: finished runs")
    finished(d, cfg, rows, role)
    return d, cfg, rows


def metric_key(rows: list, metric: str) -> str:
    """The column compared: `auto` the run's headline (acc_global where there is a server model, else
    acc_mean), `ppl` the headline model's perplexity, else `metric` itself."""
    last = rows[-1]
    if metric == "auto":
        return metrics.headline_key(last)
    if metric == "ppl" and "ppl" not in last:
        return metrics.TEXT_HEADLINE.get(metrics.headline_key(last), ("ppl",))[0]
    return metric


def _row_seeds(row: dict, key: str, cfg: dict) -> dict:
    """{seed: value of `key`} of one metrics row: a multi-seed row's `per_seed` (aligned with its `seeds`),
    else the one value, of the run's `seed` (one-seed rows name no seeds)."""
    seeds = row.get("seeds") or [cfg.get("seed", 0)]
    per = (row.get("per_seed") or {}).get(key)
    if isinstance(per, list) and len(per) == len(seeds):
        return dict(zip(seeds, per))
    # several seeds and no per-seed list (a key the mean row does not split, wall_s): no seed's own value
    return {seeds[0]: row.get(key)} if len(seeds) == 1 else dict.fromkeys(seeds)


def _good(v) -> bool:
    return metrics.is_number(v) and math.isfinite(v)


def seed_values(cfg: dict, rows: list, key: str, at: str) -> dict:
    """{seed: value} of a run: the last row's (`final`), or each seed's best over its rows (`best`: the
    largest, the smallest for a perplexity or a loss); None where a seed has no finite value."""
    if at == "final":
        return {s: (float(v) if _good(v) else None) for s, v in _row_seeds(rows[-1], key, cfg).items()}
    pick = min if headline.lower_is_better(key) else max
    out: dict = {}
    for r in rows:
        for s, v in _row_seeds(r, key, cfg).items():
            out.setdefault(s, [])
            if _good(v):
                out[s].append(float(v))
    return {s: (pick(vs) if vs else None) for s, vs in out.items()}


def check_metric(metric: str, runs: list) -> None:
    """A named --metric refused as `tallysim table` refuses it (a table column, a std, no such key, ...)."""
    if not isinstance(metric, str):
        raise ConfigError(f"compare(metric={metric!r:.40}): expected a column name (str), or 'auto'")
    if metric in ("auto", "ppl"):
        return
    from tallysim.results import table
    cols = {c for *_, rows in runs for c in metrics.columns(rows)}
    table.own_column(metric, cols)
    table.refuse_absent(metric, [rows for *_, rows in runs], cols, command="compare runs by")


def check_at(at: str) -> None:
    if at not in AT:
        raise ConfigError(f"--at {at!r} is not known; allowed: final (the last evaluation) or best (each seed's "
                          "best over its evaluations)")
