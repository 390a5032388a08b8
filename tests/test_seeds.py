"""Seeds as one vmapped program: per-seed results equal running each seed alone; chunking agrees."""
import json

import numpy as np
import pytest

from tallysim import cli, run
# TINY without the warm-up epoch: these tests compare seeds as lanes with seeds alone (and chunks); the
# warm-up under seed lanes is compared, exactly, by tests/test_trust_resume.py::
# test_same_seed_same_rows_other_seed_other_rows_and_lanes_change_nothing[tally] (trust_cases.BASE warms up)
from conftest import TINY_NO_WARMUP as TINY, tiny_no_warmup as tiny, read_rows

COMPARE = ("acc_mean", "acc_min", "acc_max", "acc_ensemble", "train_loss", "vote_acc", "softavg_acc",
           "agreement", "tied", "wrong_confidence", "consensus_acc", "bits_up", "bits_down")


@pytest.mark.parametrize("protocol", ["tally", "fedavg"])
def test_seed_batch_matches_seeds_run_alone(protocol, tmp_path):
    base = [f"protocol.name={protocol}", "partition.kind=dirichlet", "partition.alpha=0.5"]
    run.run(tiny(*base, "seed=3", "seeds=2"), str(tmp_path / "batch"), progress=False)
    batch = read_rows(tmp_path / "batch")
    assert batch[-1]["seeds"] == [3, 4] and "acc_mean_std" in batch[-1]
    for j, seed in enumerate((3, 4)):
        run.run(tiny(*base, f"seed={seed}"), str(tmp_path / f"s{seed}"), progress=False)
        alone = read_rows(tmp_path / f"s{seed}")
        for rb, ra in zip(batch, alone):
            for k in COMPARE:
                if ra.get(k) is None:
                    continue
                np.testing.assert_allclose(rb["per_seed"][k][j], ra[k], rtol=1e-4, atol=2e-3,
                                           err_msg=f"seed {seed} round {ra['round']} {k}")
    # the mean row is the mean of the per-seed values, and the seeds really differ
    last = batch[-1]
    assert last["acc_mean"] == pytest.approx(np.mean(last["per_seed"]["acc_mean"]))
    assert last["per_seed"]["train_loss"][0] != last["per_seed"]["train_loss"][1]


def test_chunks_give_the_same_rows(tmp_path):
    run.run(tiny("protocol.name=tally", "seeds=3"), str(tmp_path / "one"), progress=False)
    run.run(tiny("protocol.name=tally", "seeds=3", "seed_chunk=2"), str(tmp_path / "two"), progress=False)
    a, b = read_rows(tmp_path / "one"), read_rows(tmp_path / "two")
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(ra["per_seed"]["acc_mean"], rb["per_seed"]["acc_mean"], atol=2e-3)
        assert ra["bits_per_peer"] == rb["bits_per_peer"]


def test_cli_seed_list(tmp_path, capsys):
    assert cli.main(["run", *TINY, "rounds=1", "protocol.name=local", "seed=0,1", "--out", str(tmp_path / "o"),
                     "--quiet"]) == 0
    assert "x 2 seeds" in capsys.readouterr().out
    assert json.loads((tmp_path / "o" / "config.json").read_text())["seeds"] == 2
    assert cli.main(["run", *TINY, "seed=0,2", "--out", str(tmp_path / "p")]) == 2
    assert "consecutive" in capsys.readouterr().err
