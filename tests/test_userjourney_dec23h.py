"""userjourney12: a federated-learning researcher in the paper's regime (words at C = 10,004, LSTM and
transformer peers, 10^5 clients in cohorts, a plugin sweep, the results in Python). What it found:
- a group field's near miss (`hiden=32`, `lr=0.02` for optim.lr) listed every field but named none;
- `data.num_classes=10004` on shakespeare_words said "allowed there: its default 10", as if the words
  had 10 classes;
- a stateless protocol's stacked storage evaluates every client model at each evaluation, which the
  note before the run did not say (a 2-round run of 10^5 clients: 25 s with client_storage=auto, not
  done after 20 minutes without);
- docs/population.md's two benchmark tables were checked by nothing against their JSON rows.
Nothing here compiles (refusals before jit; the doc tables are text)."""
import json
from pathlib import Path

import pytest

from tallysim import cli, config, sizing, storage_notes  # noqa: F401 (imported before jit is patched)
from tallysim.bench import population
from conftest import one_line

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["protocol.name=fedct", "data.name=shakespeare_words", "partition.kind=natural", "peers=4"]


@pytest.mark.parametrize("group, near", [
    ("lstm:2:lstm,hiden=32;tf:2:transformer", "; did you mean hidden?"),
    ("lstm:2:lstm,lr=0.02;tf:2:transformer", "; did you mean optim.lr?"),
    ("lstm:2:lstm,optim.lrr=1;tf:2:transformer", "; did you mean optim.lr"),
])
def test_a_group_fields_near_miss_is_named(group, near, tmp_path, capsys, no_compile):
    line = one_line(capsys, ["run", *WORDS, f"model.groups={group}", "--out", str(tmp_path / "o")])
    assert "a group may set name, dtype" in line and near in line, line


def test_a_group_fields_near_miss_in_a_config_file_is_named():
    groups = [{"name": "a", "peers": 2, "model": {"hiden": 3}}, {"name": "b", "peers": 2}]
    with pytest.raises(config.ConfigError, match="model.hiden; a group may set .*; did you mean hidden"):
        config.from_dict({"peers": 4, "protocol": {"name": "tally"}, "model": {"groups": groups}})


@pytest.mark.parametrize("name, value, own", [("shakespeare_words", 10004, "C = 10,004 from its files: its vocabulary"),
                                              ("shakespeare", 86, "C = 80 from its files"),
                                              ("cifar100", 1000, "C = 100 from its files")])
def test_num_classes_on_a_known_dataset_names_its_own(name, value, own, tmp_path, capsys, no_compile):
    text = ["partition.kind=natural", "model.name=lstm"] if name.startswith("shakespeare") else []
    line = one_line(capsys, ["run", f"data.name={name}", f"data.num_classes={value}", *text,
                             "--out", str(tmp_path / "o")])
    assert f"data.num_classes={value} is not read by data.name={name}" in line and own in line, line


def test_the_storage_note_says_every_client_is_evaluated():
    big = config.apply_overrides(config.Config(), ["protocol.name=fedavg", "peers=100000", "participation=0.0001",
                                                   "model.width=200"])
    assert "and evaluates all 100,000 at every evaluation (eval_peers=N: N of them)" in storage_notes.storage_hint(big)
    assert "evaluates" not in storage_notes.storage_hint(big.replace(eval_peers=10))


def _rows(name):
    rows = json.loads((ROOT / "docs" / name).read_text())
    return [r for r in rows if not r.get("baseline")], next(r for r in rows if r.get("baseline"))


def test_the_population_benchmark_table_is_its_json():
    """docs/population.md, "Benchmark": every row is bench.population.table's line for
    docs/population_bench.json's row, and the 10-client yardstick below it is its baseline row."""
    doc = (ROOT / "docs" / "population.md").read_text()
    rows, base = _rows("population_bench.json")
    lines = population.table(rows, base).splitlines()
    assert len(lines) == 3 + 16
    for line in lines[1:]:
        assert line in doc, line
    assert f"10 clients alone: {base['peak_rss'] / 1e6:.0f} MB peak, {base['round_s'] * 1e3:.1f} ms/round" in doc


def test_the_population_memory_table_is_its_json():
    """docs/population.md's "after" columns (peak, RSS in rounds, data, peak vs 10 + data) are
    docs/population_bench_memory.json's client_storage=auto rows."""
    doc = (ROOT / "docs" / "population.md").read_text()
    rows, base = _rows("population_bench_memory.json")
    auto = [r for r in rows if r["storage"] == "auto"]
    assert len(auto) == 6
    for r in auto:
        cells = [c.strip() for c in next(line for line in doc.splitlines() if line.startswith(
            f"| {r['peers']:>10,} | {r['active']:>11} | ") and line.count("|") == 9).split("|")[1:-1]]
        assert cells[3] == f"{r['peak_rss'] / 1e6:,.0f}", (r["peers"], r["active"], cells)
        assert cells[5] == f"{r['rss_rounds'] / 1e6:,.0f}", (r["peers"], r["active"], cells)
        assert cells[6] == f"{r['data_bytes'] / 1e6:,.0f}", (r["peers"], r["active"], cells)
        assert cells[7] == f"{r['vs_target']:.2f}x", (r["peers"], r["active"], cells)
    assert f"The 10-client yardstick is itself noisy: {base['peak_rss'] / 1e6:.0f} MB" in " ".join(doc.split())
