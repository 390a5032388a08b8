"""Model groups over seeds (features26): `tallysim table`'s `final@NAME` with its std over seeds beside it
(`final_std@NAME`, as `final_std` beside `final`), each seed's value in read_rows and Results, checked
against NumPy's mean and std of the per-seed values, on one tiny grouped 2-seed run shared by the file.
"""
import numpy as np
import pytest

import tallysim
from conftest import run_rows, tiny
from tallysim.results import table

# tests/test_groups.py's grouped participation config (5 peers in groups of 3 and 2 of two widths, A_g of
# each: 2 and 1), as `local` (no exchange: the cheapest grouped round) over two seeds, two rounds
GROUPED = ("protocol.name=local", "peers=5", "participation=0.5", "model.groups=a:3;b:2:width=16", "seeds=2")


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    out = tmp_path_factory.mktemp("grouped") / "run"
    return out, run_rows(tiny(*GROUPED), out)


def test_table_gives_each_groups_final_with_its_std_over_seeds(grouped):
    out, rows = grouped
    last = rows[-1]
    cols, (row,) = table.table_rows([out], log=lambda m: None)
    assert cols[cols.index("best") + 1:cols.index("best") + 5] == ["final@a", "final_std@a", "final@b",
                                                                   "final_std@b"]
    for name in ("a", "b"):
        each = last["per_seed"][f"acc_mean@{name}"]         # one value per seed, seed order
        assert len(each) == 2 and each[0] != each[1]        # two seeds that differ: a std that is not 0
        assert row[f"final@{name}"] == pytest.approx(np.mean(each), abs=1e-7)
        assert row[f"final_std@{name}"] == pytest.approx(np.std(each), abs=1e-7) and row[f"final_std@{name}"] > 0
    # the run's own accuracy has the same two forms: its mean and its std over seeds
    assert row["final_std"] == pytest.approx(np.std(last["per_seed"]["acc_mean"]), abs=1e-7)
    text = table.markdown(cols, rows=[row])
    assert f"| {row['final@a']:.4f} | {row['final_std@a']:.4f} | {row['final@b']:.4f} | {row['final_std@b']:.4f} |" in text


def test_read_rows_and_results_hold_each_groups_per_seed_values(grouped):
    out, rows = grouped
    flat = tallysim.read_rows(out)[-1]
    last = tallysim.Results.read(out).last
    for name in ("a", "b"):
        key = f"acc_mean@{name}"
        for got in (flat, last):
            assert got["per_seed"][key] == rows[-1]["per_seed"][key]
            assert got[key + "_std"] == pytest.approx(np.std(got["per_seed"][key]), abs=1e-7)
