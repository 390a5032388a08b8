"""docs/matched-bits.md, "The demo's probe share": every cell of its table is docs/figures/demo_probe_share.csv's
(probes, pool and share, training examples, seed 0's one-seed run, the mean +- population standard deviation
of the three-seed program or, where it stopped on a NaN, of the one-seed runs that finished), the default
rows' seed 0 are docs/demo.csv's final points, and the training examples are Fashion-MNIST's 60,000 less the
pool (the default one by `schema.default_pool_size`). Pure text: no training."""
import csv
import statistics
from pathlib import Path

from tallysim.schema import default_pool_size

DOCS = Path(__file__).resolve().parent.parent / "docs"
SETTINGS = {"the demo": "default", "`probe.pool_size=4000`": "pool4000",
            "`probe.per_round=500`": "per_round500", "`probe.pool_size=2000`": "pool2000"}
FMNIST_TRAIN = 60_000


def _rows():
    return list(csv.DictReader(open(DOCS / "figures" / "demo_probe_share.csv")))


def _section() -> str:
    return (DOCS / "matched-bits.md").read_text().split("### The demo's probe share")[1].split("\n## ")[0]


def _cells(runs: list[dict]) -> list[str]:
    """Seed 0's one-seed run, then the three seeds' mean +- population std (the one-seed runs that finished,
    named, where the three-seed program stopped)."""
    one = {int(r["seed"]): r for r in runs if r["program"] == "seed"}
    three = [r for r in runs if r["program"] == "seeds3"]
    first = f"{float(one[0]['acc_mean']):.3f}"
    if all(r["status"] == "finished" for r in three):
        assert [int(r["seed"]) for r in three] == [0, 1, 2]
        accs = [float(r["acc_mean"]) for r in three]
        return [first, f"{statistics.mean(accs):.3f} ± {statistics.pstdev(accs):.3f}"]
    done = sorted(s for s, r in one.items() if r["status"] == "finished")
    failed = sorted(s for s, r in one.items() if r["status"] != "finished")
    accs = [float(one[s]["acc_mean"]) for s in done]
    return [first, f"{statistics.mean(accs):.3f} ± {statistics.pstdev(accs):.3f} (seeds {', '.join(map(str, done))}; "
                   f"seed {', '.join(map(str, failed))}: NaN)"]


def test_the_demo_probe_share_table_is_its_csv():
    by = {}
    for r in _rows():
        by.setdefault((r["setting"], r["protocol"]), []).append(r)
    table = [[c.strip() for c in line.strip().strip("|").split("|")] for line in _section().splitlines()
             if line.startswith("|") and not line.startswith("|---")]
    assert [r[0] for r in table[1:]] == list(SETTINGS), table
    for row in table[1:]:
        setting = SETTINGS[row[0]]
        tally, soft = by[setting, "tally"], by[setting, "softlabel"]
        first = tally[0]
        pool = int(first["pool_size"] or default_pool_size(FMNIST_TRAIN))
        per_round, train = int(first["per_round"]), int(first["train_examples"])
        assert {(r["per_round"], r["pool_size"], r["train_examples"]) for r in tally + soft} == {
            (first["per_round"], first["pool_size"], first["train_examples"])}, setting
        assert train == FMNIST_TRAIN - pool, (setting, train, pool)
        expected = [f"{per_round:,}", f"{pool:,} ({per_round / pool:.2f})", f"{train:,}"] + _cells(tally) + _cells(soft)
        assert row[1:] == expected, (row, expected)


def test_the_demo_rows_are_demo_csv():
    """The default setting's seed 0 is the demo's run: the committed docs/demo.csv's round 15."""
    demo = {r["protocol"]: r for r in csv.DictReader(open(DOCS / "demo.csv")) if r["round"] == "15"}
    mine = {r["protocol"]: r for r in _rows() if (r["setting"], r["program"], r["seed"]) == ("default", "seed", "0")}
    for proto in ("tally", "softlabel"):
        assert float(mine[proto]["acc_mean"]) == float(demo[proto]["value"]), proto
        assert float(mine[proto]["bits_per_peer"]) == float(demo[proto]["bits_per_peer"]), proto


def test_the_prose_numbers_are_the_table_s():
    """The reading's numbers: halving the probes against the demo, and the range of soft labels' lead over
    tally on the three-seed means (seeds 0 and 2 where seed 1 stopped), both from the CSV."""
    rows = _rows()

    def mean(setting, proto):
        runs = [r for r in rows if (r["setting"], r["protocol"]) == (setting, proto) and r["status"] == "finished"]
        three = [r for r in runs if r["program"] == "seeds3"]
        use = three if len(three) == 3 else [r for r in runs if r["program"] == "seed"]
        return statistics.mean(float(r["acc_mean"]) for r in use)
    flat = " ".join(_section().split())
    assert f"halving the probes is level ({mean('per_round500', 'tally'):.3f} against {mean('default', 'tally'):.3f})" in flat
    gaps = [mean(s, "softlabel") - mean(s, "tally") for s in SETTINGS.values()]
    assert f"Tally stays {min(gaps):.2f}-{max(gaps):.2f} below soft labels on the three-seed means" in flat, gaps
