"""leftovers39's fixes: each test fails without its fix (checked by reverting it once)."""
from __future__ import annotations

import json

import pytest

from tallysim.config import ConfigError


def _run(d, rows: list[dict], cfg: dict | None = None):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg or {"rounds": len(rows)}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


# ----------------------------------------------------------------------------- table: a cost's best is its least

@pytest.mark.parametrize("metric", ["bits_per_peer@a", "bits_up", "wall_s"])
def test_table_best_of_a_cost_is_its_smallest(metric, tmp_path):
    # `table --metric bits_per_peer@a`'s best was a run's most bits, a cost ranked as a score
    from tallysim.results import table
    d = _run(tmp_path / "r", [{"round": r, "acc_mean": 0.5, "bits_per_peer": 5.0 * r, "wall_s": 1, metric: 10.0 * r} for r in (1, 2, 3)])
    cols, rows = table.table_rows([str(d)], metric, log=lambda m: None)
    assert rows[0][f"best {metric}"] == 10.0 and rows[0][f"final {metric}"] == 30.0


def test_table_refuses_round_as_a_metric(tmp_path):
    from tallysim.results import table
    d = _run(tmp_path / "r", [{"round": 1, "acc_mean": 0.5, "bits_per_peer": 5.0}])
    with pytest.raises(ConfigError, match="'round' is not a score to rank runs by"):
        table.table_rows([str(d)], "round", log=lambda m: None)
