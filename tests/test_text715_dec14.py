"""Text numbers measured again on the 715-client split (2026-12-06, after the role merge): the docs'
numbers are the committed rows' (docs/text.md, "Which numbers were measured on which split").

- Shakespeare at its full population, memory (docs/population.md): docs/figures/shakespeare_memory_715.jsonl
- selective_fd on words (docs/protocols.md): docs/figures/selective_fd_words_715.jsonl
- Reddi et al.'s setting, 60 rounds (docs/text.md): docs/shakespeare_fedavg_60.csv from
  docs/figures/shakespeare_fedavg_60_715.jsonl (the run's metrics rows); the 716-client split's rows kept
  in docs/figures/shakespeare_fedavg_60_716.csv
- wordtransformer, 5 of its measurement's 8 groups, both seeds (docs/text.md, "On the current split" in
  "The large-C claim with a transformer"): docs/figures/wordtransformer_715.jsonl

Each check formats the number from the rows with the rule the page uses and looks for it in the page's
paragraph, so a hand edit of a number, or rows without their paragraph, fail here. No training, no build.
"""
from __future__ import annotations

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def jsonl(name: str) -> list:
    return [json.loads(line) for line in (ROOT / "docs/figures" / name).read_text().splitlines()]


def section(page: str, start: str, end: str) -> str:
    text = (ROOT / "docs" / page).read_text()
    assert text.count(start) == 1, (page, start)
    return " ".join(text.split(start)[1].split(end)[0].split())      # one line: the page wraps anywhere


# -- Shakespeare at its full population: memory by storage ----------------------------------------

def memory_phrases(rows: list) -> list:
    """What docs/population.md says of the rows: MB (10^6 bytes) of /usr/bin/time's KiB per storage,
    and the numbers both storages share to the last digit."""
    by = {r["client_storage"]: r for r in rows}
    mb = {s: f"**{round(r['max_rss_kib'] * 1024 / 1e6):,} MB** with `client_storage={s}`" for s, r in by.items()}
    a, s = by["auto"]["row"], by["stacked"]["row"]
    same = ("acc_global", "bits_up", "bits_per_peer", "train_loss")
    assert all(a[k] == s[k] for k in same), [(k, a[k], s[k]) for k in same]
    return [mb["auto"], mb["stacked"], f"server accuracy ({a['acc_global']:.5f})",
            f"({a['bits_up']:,} up in all: {a['bits_per_peer']:,.1f} per peer)",
            f"training loss ({a['train_loss']:.6f})",
            f"wall clock {by['auto']['elapsed'].split('.')[0]} and {by['stacked']['elapsed'].split('.')[0]}"]


def test_population_memory_paragraph_is_its_rows():
    rows = jsonl("shakespeare_memory_715.jsonl")
    assert [r["client_storage"] for r in rows] == ["auto", "stacked"]
    assert all(" peers=" not in r["command"] and "--config experiments/shakespeare_fedavg.json rounds=3 eval_every=3 "
               "data.max_test=200" in r["command"] for r in rows)    # the config's 715 peers, 3 rounds
    text = section("population.md", "## Shakespeare at its full population", "## The cohort draw")
    missing = [p for p in memory_phrases(rows) if p not in text]
    assert not missing, missing


def test_memory_rule_reads_a_moved_number():
    """The check above can fail: 1 MB more resident memory is another sentence."""
    rows = jsonl("shakespeare_memory_715.jsonl")
    moved = json.loads(json.dumps(rows))
    moved[1]["max_rss_kib"] += 1000
    text = section("population.md", "## Shakespeare at its full population", "## The cohort draw")
    assert memory_phrases(moved)[1] not in text


# -- selective_fd on words ----------------------------------------------------------------------

def sfd_phrases(rows: list) -> list:
    by = {r["setting"]: r for r in rows}
    d, t = by["default"], by["trained"]
    out = []
    for r in (d, t):                      # every round: nothing shared, the masks alone, up and down
        m = r["messages"]
        assert all(x["shared"] == [0] * 4 and x["kept"] == 0 and x["bits_up"] == x["bits_down"] == m
                   for x in r["rounds"][1:]), r["setting"]
    peers_d = [p for x in d["rounds"] for p in x["peers"]]
    out += [f"at most **{max(p['max_p'] for p in peers_d):.1e}**".replace("e-04", "e-4"),
            f"({sum(p['mean_p'] for p in peers_d) / len(peers_d):.1e} on average".replace("e-04", "e-4"),
            f"a round costs **{d['messages']} bits up and {d['messages']} down** a peer"]
    last = t["rounds"][-1]["peers"]
    means = [p["mean_p"] for p in last]
    past = [p for p in last if p["share_ge_threshold"] > 0]
    pool = 4000                           # 200 pool windows of 20 words (10% of 2,000 windows)
    comma = [p for p in past if p["major_of_those"] and p["major_of_those"] > 0.5]
    assert len(comma) == 1 and all(p["major_of_those"] == 0 for p in past if p not in comma)
    out += [f"averages {min(means):.2f}-{max(means):.2f}",
            f"{len(past)} of the 4 peers pass 0.5 somewhere (at most {max(p['max_p'] for p in last):.2f})".replace(
                "3 of", "three of"),
            f"on {round(min(p['share_ge_threshold'] for p in past) * pool)} to "
            f"{round(max(p['share_ge_threshold'] for p in past) * pool)} of the pool's {pool:,} positions",
            f"mostly the comma ({round(comma[0]['major_of_those'] * comma[0]['share_ge_threshold'] * pool)} of "
            f"{round(comma[0]['share_ge_threshold'] * pool)})"]
    return out


def test_selective_fd_paragraph_is_its_rows():
    rows = jsonl("selective_fd_words_715.jsonl")
    assert [(r["setting"], r["classes"], r["messages"], r["major"]) for r in rows] == [
        ("default", 10_004, 320, 4), ("trained", 10_004, 320, 4)]      # id 4: the comma (vocab[4])
    text = section("protocols.md", "The thresholds are absolute probabilities, whatever C.", "SCARLET-style")
    missing = [p for p in sfd_phrases(rows) if p not in text]
    assert not missing, missing


def test_sfd_rule_reads_a_moved_number():
    rows = jsonl("selective_fd_words_715.jsonl")
    moved = json.loads(json.dumps(rows))
    moved[0]["rounds"][2]["peers"][1]["max_p"] = 3.1e-4
    text = section("protocols.md", "The thresholds are absolute probabilities, whatever C.", "SCARLET-style")
    assert sfd_phrases(moved)[0] not in text


# -- Reddi et al.'s setting, 60 rounds -------------------------------------------------------------

CSV_HEADER = "round,acc_global,bits_per_peer,wall_s"


def csv_rows(path: str) -> list:
    lines = (ROOT / path).read_text().splitlines()
    assert lines[0] == CSV_HEADER, lines[0]
    return [[float(c) for c in line.split(",")] for line in lines[1:]]


def test_the_60_round_csv_is_the_run_s_metrics_rows():
    """docs/shakespeare_fedavg_60.csv is the 715-client run's metrics rows (docs/figures/
    shakespeare_fedavg_60_715.jsonl) cut to four columns, as the 716-client split's csv was."""
    rows = jsonl("shakespeare_fedavg_60_715.jsonl")
    want = [[r["round"], round(r["acc_global"], 6), round(r["bits_per_peer"]), round(r["wall_s"], 3)] for r in rows]
    assert csv_rows("docs/shakespeare_fedavg_60.csv") == want
    assert [r[0] for r in want] == [10, 20, 30, 40, 50, 60]
    # 10 clients a round of the 817,872-parameter LSTM, 32 bits up and down, over the 715 peers
    assert all(r["bits_up"] == r["round"] * 10 * 817_872 * 32 for r in rows)
    assert all(abs(r["bits_per_peer"] - 2 * r["bits_up"] / 715) < 1e-3 for r in rows)


def reddi_cells(rows: list) -> tuple:
    acc = " | ".join(f"{r[1]:.3f}" for r in rows)
    wall = " | ".join(f"{round(r[3]):,}" for r in rows)
    return acc, wall


def test_the_text_s_60_round_table_is_the_csvs():
    text = section("text.md", "## Reddi et al.'s setting", "## The class-count axis")
    new, old = csv_rows("docs/shakespeare_fedavg_60.csv"), csv_rows("docs/figures/shakespeare_fedavg_60_716.csv")
    (acc, wall), (acc_old, wall_old) = reddi_cells(new), reddi_cells(old)
    assert f"| server next-character accuracy (`acc_global`, 2,000 test sequences) | {acc} |" in text
    assert f"| wall clock (s) | {wall} |" in text
    assert f"| 716-client split: `acc_global` | {acc_old} |" in text
    assert f"| 716-client split: wall clock (s) | {wall_old} |" in text
    per_round = (new[-1][3] - new[0][3]) / 50
    assert f"a round takes **{per_round:.1f} s**" in text
    assert f"**1,200 rounds would take about {1200 * per_round / 3600:.1f} hours**" in text
    assert "(The rows: `docs/shakespeare_fedavg_60.csv`" in text


def test_the_60_round_rule_reads_a_moved_number():
    new = csv_rows("docs/shakespeare_fedavg_60.csv")
    moved = [list(r) for r in new]
    moved[2][1] += 0.001
    assert reddi_cells(moved)[0] != reddi_cells(new)[0]


def test_the_split_table_names_these_as_measured_again():
    """docs/text.md's "Which numbers were measured on which split": the three results are 'yes', with
    the test that checks them."""
    table = section("text.md", "## Which numbers were measured on which split", "## A first run")
    for result in ("| Shakespeare at its full population (memory, 3 rounds) |",
                   "| selective_fd on words (nothing shared at C = 10,004) |",
                   "| Reddi et al.'s setting, 60 rounds (`docs/shakespeare_fedavg_60.csv`) |"):
        row = table.split(result)[1].split(" | ", 1)[1]
        assert row.startswith("yes") and "tests/test_text715_dec14.py" in row.split("|")[0], (result, row[:80])


# -- wordtransformer, the measurement's rows measured again (not all of them) ------------------------

WT_HEADER = "| protocol, transformer, 715-client split | accuracy, seed 0 / 1 | mean |"
WT_ROWS = {"local training alone": "local", "tally": "tally", "softlabel (32-bit)": "softlabel",
           "FedAvg (server model)": "fedavg", "tally, `distill.weight` 0.1": "tally_light"}


def wt_cells(runs: dict, group: str) -> list:
    """A row's cells from its runs: each seed's accuracy ('-' where not run), their mean where both
    ran, perplexity, the vote's comma share at round 8, bits per peer."""
    seeds = [runs.get((group, s)) for s in (0, 1)]

    def each(fmt):
        return " / ".join("-" if r is None else fmt(r) for r in seeds)
    ran = [r for r in seeds if r is not None]
    mean = f"{sum(r['acc'] for r in ran) / 2:.4f}" if len(ran) == 2 else "-"
    comma = "-" if ran[0]["vote_major"] is None else each(lambda r: f"{r['vote_major']:.2f}")
    return [each(lambda r: f"{r['acc']:.4f}"), mean, each(lambda r: f"{r['ppl']:,.0f}"), comma,
            f"{ran[0]['bits_per_peer']:,.0f}"]


def test_the_transformer_rows_on_the_current_split_are_their_json():
    runs = {(r["group"], r["seed"]): r for r in jsonl("wordtransformer_715.jsonl")}
    assert all(r["over"] == [] for r in runs.values())
    text = (ROOT / "docs/text.md").read_text()
    assert text.count(WT_HEADER) == 1
    lines = text.split(WT_HEADER)[1].split("\n\n")[0].splitlines()[2:]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    assert sorted(WT_ROWS[r[0]] for r in rows) == sorted({g for g, _ in runs})      # a row per group run
    for name, *cells in rows:
        assert cells[:5] == wt_cells(runs, WT_ROWS[name]), (name, cells[:5], wt_cells(runs, WT_ROWS[name]))


def test_the_transformer_rule_reads_a_moved_number():
    runs = {(r["group"], r["seed"]): r for r in jsonl("wordtransformer_715.jsonl")}
    moved = json.loads(json.dumps({f"{g}|{s}": r for (g, s), r in runs.items()}))
    key = next(iter(moved))
    moved[key]["acc"] += 1e-4
    moved = {(k.split("|")[0], int(k.split("|")[1])): r for k, r in moved.items()}
    assert wt_cells(moved, key.split("|")[0]) != wt_cells(runs, key.split("|")[0])
