"""Numbers the docs quote from committed tables equal those tables: the faulty-peers table of
docs/figures.md (from docs/figures/fig8_table.md), the measured Pareto front of docs/sweeps.md (from
docs/figures/fig5_frontier.md), the Fig. 11 text table (from fig11_reduced_table.md), and the Fig. 2 / Fig. 6
sequences (from fig2.csv, fig6.csv), the Fig. 2 with LeNet tables (from fig2_lenet.csv, fig2_small_mlp.csv, fig2_cnn.csv), the transformer-on-words tables of docs/text.md (from wordtransformer_local.csv, wordtransformer.jsonl, wordtransformer_firstvote.jsonl), the 8- vs 16-bit soft labels at matched bits on words (from words_matched_softbits.jsonl), the ties table of docs/matched-bits.md (from niid_ties.csv), its C = 1000 table (from class_1000_seeds.csv and class_1000.csv) its table without momentum (class_1000_momentum0_seeds.csv, class_1000_momentum0.csv; the soft labels before the rounded downlink, class_1000_momentum0_unrounded_seeds.csv) and the twenty rounds without momentum (class_1000_momentum0_r20.csv). The demo's table has its own test (tests/test_docs.py). Pure text."""
import csv
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIG = DOCS / "figures"


def _md_rows(path: Path) -> list[list[str]]:
    return _md_rows_text(path.read_text())


def test_the_faulty_peers_table_is_fig8s():
    table = {(r[0], r[1]): r[2:] for r in _md_rows(FIG / "fig8_table.md")[1:]}
    fractions = ["0", "0.1", "0.2", "0.3", "0.4", "0.45"]
    columns = ["confident_wrong, iid", "confident_wrong, dirichlet 0.5", "under_trained, iid",
               "under_trained, dirichlet 0.5"]
    seen = 0
    for line in (DOCS / "figures.md").read_text().splitlines():
        m = re.match(r"\s*\| (tally|softlabel \(\w+\)|fedavg \(\w+\)) \| (\*\*.*) \|$", line)
        if not m:
            continue
        for column, cell in zip(columns, m.group(2).split(" | ")):
            within, clean, faulty, at = re.fullmatch(r"\*\*([\d.]+)\*\* \(([\d.]+) -> ([\d.]+) at ([\d.]+)\)",
                                                     cell).groups()
            row = table[(column, m.group(1))]
            largest = max(i for i, v in enumerate(row[:6]) if v)          # the largest fraction that ran
            assert (within, clean, at, faulty) == (row[6], row[0], fractions[largest], row[largest]), \
                (m.group(1), column, cell, row)
            seen += 1
    assert seen == 24


def test_the_measured_pareto_front_is_fig5_frontier():
    frontier: dict[str, list[tuple[float, float]]] = {}
    for r in _md_rows(FIG / "fig5_frontier.md")[1:]:
        frontier.setdefault(r[0], []).append((round(float(r[4]), 3), float(r[3])))
    text = (DOCS / "sweeps.md").read_text().split("**Measured front**")[1].split("In this strongly")[0]
    names = {"fedavg": "fedavg", "fedprox": "fedprox", "feddf (100 server steps)": "feddf", "softlabel": "softlabel",
             "tally": "tally", "bridge without votes (`distill.weight=0`)": "bridge_novote"}
    checked = 0
    for r in _md_rows_text(text):
        if r[0] not in names:
            continue
        points = [(float(a), float(mb)) for a, mb in re.findall(r"([\d.]+) @ ([\d.]+)", r[1])]
        want = frontier[names[r[0]]]
        assert len(points) == len(want), (r[0], points, want)
        for (acc, mb), (acc_f, mb_f) in zip(points, want):
            assert abs(acc - acc_f) <= 0.0005 + 1e-9 and abs(mb - mb_f) <= 0.005 + 1e-9 * mb_f or \
                f"{mb_f:.2g}" == f"{mb:g}", (r[0], (acc, mb), (acc_f, mb_f))
        checked += 1
    assert checked == len(names)
    bridge = max(frontier["bridge"], key=lambda p: p[0])
    assert f"at most {bridge[0]:.3f} (@ {bridge[1]:.2f} MB" in text


def _md_rows_text(text: str) -> list[list[str]]:
    """The rows of the markdown tables in `text` (indented ones too: a table inside a list item)."""
    lines = [line.strip() for line in text.splitlines()]
    return [[c.strip() for c in line.strip("|").split("|")]
            for line in lines if line.startswith("|") and not line.startswith("|---")]


def test_the_fig11_text_table_is_fig11_reduced():
    shipped = {}
    for r in _md_rows(FIG / "fig11_reduced_table.md")[1:]:
        shipped[(r[0], r[3].replace(" bits", "-bit").replace("fedavg", "FedAvg"))] = r
    text = (DOCS / "figures.md").read_text().split("**Fig. 11**")[1].split("![fig11")[0]
    panel = None
    checked = 0
    for r in _md_rows_text(text)[1:]:
        panel = {"chars (C = 80)": "chars", "words (C = 10,004)": "words"}.get(r[0], r[0])
        key = (panel, r[1])
        row = shipped[key]
        acc = float(r[2].split()[0].strip("*"))
        assert acc == round(float(row[5]), 3), (key, r[2], row[5])
        ppl = float(r[3].strip("*").replace(",", ""))
        assert abs(ppl - float(row[6])) <= 0.05 + 0.0005 * ppl, (key, r[3], row[6])
        bits = float(r[4].replace(",", ""))
        # the shipped table's 2.867e+05 (the figure's .4g before bits_text), or 286720 once regenerated
        assert f"{bits:.3e}" == f"{float(row[7]):.3e}", (key, r[4], row[7])
        checked += 1
    assert checked == 12


def test_the_fig11_8bit_before_and_after_are_their_csvs():
    """docs/figures.md, Fig. 11: the 8-bit soft labels' before -> after (the unrounded downlink,
    docs/figures/fig11_reduced_unrounded.csv, against fig11_reduced.csv's rows of the rounded one) at
    round 8 on both vocabularies and words' round 6, to 4 decimals; the unrounded file holds only those
    rows, and every other row of fig11_reduced.csv is not theirs."""
    def acc(name):
        rows = list(csv.DictReader((FIG / name).open(newline="")))
        return {(r["panel"], int(r["round"])): float(r["accuracy"]) for r in rows if r["group"] == "softlabel 8 bits"}, rows
    before, old_rows = acc("fig11_reduced_unrounded.csv")
    after, _ = acc("fig11_reduced.csv")
    assert len(old_rows) == len(before) == 8 and set(before) == set(after)
    text = " ".join((DOCS / "figures.md").read_text().split("**Fig. 11**")[1].split("![fig11")[0].split())
    found = re.search(r"characters (\d\.\d{4}) -> (\d\.\d{4}) .*?words (\d\.\d{4}) -> (\d\.\d{4}) "
                      r"\([\d,]+ -> [\d,]+; round 6 (\d\.\d{4}) -> (\d\.\d{4})\)", text)
    assert found, "Fig. 11's before -> after sentence"
    want = [f"{v[k]:.4f}" for k in (("chars", 8), ("words", 8), ("words", 6)) for v in (before, after)]
    assert list(found.groups()) == want, (found.groups(), want)


def test_the_fig11_words_controls_are_their_csv():
    """docs/figures.md, Fig. 11: the words controls of the rounded downlink (docs/figures/fig11_words_8bit_controls.csv):
    the code before the change today (seed 0, rounds 8 and 6), seed 1 before -> after, the rounded seed-0 run
    twice equal, and its rows the figure's (fig11_reduced.csv)."""
    by = {}
    for r in _csv("fig11_words_8bit_controls.csv"):
        by.setdefault((r["downlink"], r["run"], r["seed"]), {})[int(r["round"])] = float(r["accuracy"])
    old0 = by[("unrounded", "code before the change 2026-12-07", "0")]
    assert by[("rounded", "fig11_reduced.csv 2026-12-07", "0")] == by[("rounded", "the same run again 2026-12-07", "0")]
    figure = {int(r["round"]): float(r["accuracy"]) for r in _csv("fig11_reduced.csv")
              if r["panel"] == "words" and r["group"] == "softlabel 8 bits"}
    assert all(abs(figure[t] - a) < 1e-6 for t, a in by[("rounded", "fig11_reduced.csv 2026-12-07", "0")].items())
    text = " ".join((DOCS / "figures.md").read_text().split("**Fig. 11**")[1].split("![fig11")[0].split())
    assert f"On words it gives {old0[8]:.4f} " in text and f"round 6 {old0[6]:.4f} where the table had" in text
    s1 = (by[("unrounded", "code before the change 2026-12-07", "1")][8], by[("rounded", "2026-12-07", "1")][8])
    assert f"moves words by nothing: {s1[0]:.4f} -> {s1[1]:.4f}" in text, s1


def _csv(name: str) -> list[dict]:
    return list(csv.DictReader(open(FIG / name)))


def test_the_fig2_and_fig6_sequences_are_their_csvs():
    text = (DOCS / "figures.md").read_text()
    fig2 = text.split("**Fig. 2**")[1].split("![fig2]")[0]
    rows = _csv("fig2.csv")
    for group, label in (("tally", "TallyTrain"), ("softlabel (mean)", "soft labels (mean)")):
        seq = " / ".join(f"{float(r['accuracy']):.3f}" for r in rows if r["group"] == group)
        assert f"{label} {seq}" in fig2, (group, seq)
    fig6 = text.split("**Fig. 6**")[1].split("![fig6]")[0]
    rows = _csv("fig6.csv")
    for group, label in (("tally", "TallyTrain"), ("softlabel", "soft labels")):
        seq = " / ".join(f"{float(r['accuracy']):.3f}" for r in rows if r["group"] == group)
        assert f"{label} {seq}" in " ".join(fig6.split()), (group, seq)



@pytest.mark.parametrize("name, start, end", [("fig2_lenet", "### Fig. 2 with LeNet", "![fig2_lenet]"),
                                              ("fig2_small_mlp", "**The control", "![fig2_small_mlp]"),
                                              ("fig2_cnn", "**The CNN, at a smaller grid", "![fig2_cnn]")])
def test_the_fig2_lenet_tables_are_their_csvs(name, start, end):
    """docs/figures.md's "Fig. 2 with LeNet" tables (alpha x protocol, mean +- std over seeds, then the bits
    per peer), LeNet's, its MLP control's and the CNN's, are docs/figures/<name>.csv, every cell."""
    rows = {(r["group"], float(r["partition.alpha"])): r for r in _csv(f"{name}.csv")}
    text = (DOCS / "figures.md").read_text().split(start)[1].split(end)[0]
    table = _md_rows_text(text)
    groups = table[0][1:]
    assert groups == list(dict.fromkeys(g for g, _ in rows)), groups
    checked = 0
    for r in table[1:]:
        for group, cell in zip(groups, r[1:]):
            if r[0] == "bits per peer":
                bits = {float(v["bits_per_peer"]) for (g, _), v in rows.items() if g == group}
                assert len(bits) == 1 and f"{bits.pop():,.0f}" == cell, (group, cell, bits)
            else:
                want = rows[(group, float(r[0]))]
                assert cell.strip("*") == f"{float(want['accuracy']):.3f} +- {float(want['accuracy_std']):.3f}", \
                    (group, r[0], cell, want)
            checked += 1
    assert checked == len(rows) + len(groups)


def test_the_wordtransformer_table_is_its_csv():
    """docs/text.md, "The large-C claim with a transformer": each row of the local-only table equals
    docs/figures/wordtransformer_local.csv (model, parameters, lr, weight decay, rounds, every round's
    accuracy, the best, perplexity, wall), and the text's bests are the CSV's: below the comma floor
    without weight decay, above it with."""
    shipped = _csv("wordtransformer_local.csv")
    text = (DOCS / "text.md").read_text().split("## The large-C claim with a transformer")[1].split("\n## ")[0]
    table = [r for r in _md_rows_text(text) if re.fullmatch(r"\d+ x \d+", r[0])]
    assert len(table) == len(shipped)
    for r, want in zip(table, shipped):
        assert r[0] == f"{want['hidden']} x {want['layers']}" and r[1] == f"{int(want['params']):,}", (r, want)
        assert (r[2], r[3], r[4]) == (want["lr"], want["weight_decay"], want["rounds"]), (r, want)
        assert r[5] == want["acc_by_round"].replace(" ", ", ").replace(":", ": "), (r, want)
        assert r[6] == f"{want['best_acc']} (round {want['best_round']})", (r, want)
        assert r[7] == f"{int(want['last_ppl']):,}" and r[8] == f"{float(want['wall_s']):.0f} s", (r, want)
    flat = " ".join(text.split())
    plain = max(float(w["best_acc"]) for w in shipped if w["weight_decay"] == "0")
    assert f"the best peer mean is {plain:.4f}, below 0.0864" in flat and plain < 0.0864
    decayed = next(w for w in shipped if w["weight_decay"] == "0.01")
    assert f"reaches {decayed['best_acc']} at round {decayed['best_round']}" in flat
    assert float(decayed["best_acc"]) > 0.0864


def test_the_wordtransformer_measurement_is_its_json():
    """docs/text.md, "The large-C claim with a transformer": the measurement's table (accuracy and
    perplexity per seed, mean, spread, the vote's comma share at rounds 2 and 8, bits per peer) equals
    docs/figures/wordtransformer.jsonl, the script's JSON lines, one per group and seed (the warm-up
    rows too: tally_warm, softlabel_warm, local_12); local_12 reproduces local's round 8."""
    import json
    import statistics
    runs = [json.loads(line) for line in (FIG / "wordtransformer.jsonl").read_text().splitlines()]
    names = {"local training alone": "local", "tally": "tally", "softlabel (32-bit)": "softlabel",
             "FedAvg (server model)": "fedavg", "tally, `distill.weight` 0.1": "tally_light",
             "tally, `warmup_epochs=4`": "tally_warm", "softlabel (32-bit), `warmup_epochs=4`": "softlabel_warm",
             "local training alone, 12 rounds": "local_12"}
    text = (DOCS / "text.md").read_text().split("## The large-C claim with a transformer")[1].split("\n## ")[0]
    # the 716-client split's table; the current split's rows (a table of their own, below it) are
    # docs/figures/wordtransformer_715.jsonl's, checked by test_text715_dec14.py
    text = text.split("**The measurement**")[1]
    checked = 0
    for r in _md_rows_text(text.split("**On the current split**")[0]):
        if r[0] not in names:
            continue
        rs = sorted((x for x in runs if x["group"] == names[r[0]]), key=lambda x: x["seed"])
        accs = [x["acc"] for x in rs]
        assert [x["seed"] for x in rs] == [0, 1], r
        assert r[1] == " / ".join(f"{a:.4f}" for a in accs), (r, accs)
        assert r[2].strip("*") == f"{statistics.mean(accs):.4f}" and r[3] == f"{max(accs) - min(accs):.4f}", (r, accs)
        assert r[4] == " / ".join(f"{x['ppl']:,.0f}" for x in rs), r
        for col, rnd in ((5, 2), (6, 8)):
            shares = [next(q["vote_major"] for q in x["rounds"] if q["round"] == rnd) for x in rs]
            assert r[col] == ("-" if shares[0] is None else " / ".join(f"{s:.2f}" for s in shares)), (r, rnd, shares)
        assert r[7] == f"{rs[0]['bits_per_peer']:,.0f}", r
        checked += 1
    assert checked == len(names)
    by = {(x["group"], x["seed"]): x for x in runs}
    for seed in (0, 1):     # 12 rounds of local training pass through the 8-round run's numbers
        at8 = next(q["acc"] for q in by["local_12", seed]["rounds"] if q["round"] == 8)
        assert at8 == pytest.approx(by["local", seed]["acc"], abs=1e-6), (seed, at8)
    first = [json.loads(line) for line in (FIG / "wordtransformer_firstvote.jsonl").read_text().splitlines()]
    flat = " ".join(text.split())
    shares = " and ".join(f"{100 * x['peer_major']:.1f}% (seed {x['seed']})" for x in first)
    assert f"the comma at {shares}" in flat and all(x["vote_major"] == 1.0 for x in first), shares


def test_the_16_bit_soft_labels_on_words_are_their_json():
    """docs/text.md, "Tally, soft labels and FedAvg at matched bits on words": the 8- vs 16-bit soft-label
    table, the 16-bit rows of the 2- and 10-round tables, and the 8-bit downlink's zeros and mass equal
    docs/figures/words_matched_softbits.jsonl (the runs' metrics rows, seed 0)."""
    import json
    runs = {(x["soft_bits"], x["rounds"]): x for x in map(json.loads, (FIG / "words_matched_softbits.jsonl").open())}
    ev = {k: {e["round"]: e for e in x["evals"]} for k, x in runs.items()}
    text = (DOCS / "text.md").read_text().split("## Tally, soft labels and FedAvg at matched bits on words")[1]
    text = text.split("\n## ")[0]
    rows = {r[0]: r for r in _md_rows_text(text.split("at 16 bits they still fall below the floor**")[1])}
    for bits in (8, 16):
        at = [ev[bits, 2][2], ev[bits, 10][5], ev[bits, 10][10]]
        r = rows[f"{bits}-bit"]
        assert r[1] == " / ".join(f"{e['acc_mean']:.4f}" for e in at), r
        assert r[2] == " / ".join(f"{e['ppl_mean']:.1f}" for e in at), r
    two = next(r for r in _md_rows_text(text) if r[0].startswith("softlabel 16-bit") and len(r) == 6)
    e = ev[16, 2][2]
    assert two[2:5] == [f"{e['bits_per_peer']:,}", f"{e['acc_mean']:.4f}", f"{e['ppl_mean']:.1f}"], two
    ten = next(r for r in _md_rows_text(text) if r[0].startswith("softlabel 16-bit") and len(r) == 5)
    assert ten[1:4] == [f"{ev[16, 10][10]['bits_per_peer']:,}", f"{ev[16, 10][5]['acc_mean']:.4f} / "
                        f"{ev[16, 10][10]['acc_mean']:.4f}", f"{ev[16, 10][5]['ppl_mean']:.1f} / "
                        f"{ev[16, 10][10]['ppl_mean']:.1f}"], ten
    flat = " ".join(text.split())
    d = runs[8, 2]["downlink"]
    assert (f"values were 0 for {100 * d[0]['values_zero']:.2f}% (round 1) and {100 * d[1]['values_zero']:.2f}% "
            f"(round 2)") in flat
    assert f"target summed to {d[0]['token_mass']:.3f} and {d[1]['token_mass']:.3f}, not 1" in flat
    assert all(x["values_zero"] == 0 and x["token_mass"] == 1 for x in runs[16, 2]["downlink"])
    assert "at 16 bits no value was 0 and a token's target summed to 1.000 in both rounds" in flat


def test_the_ties_table_is_niid_ties_csv():
    """docs/matched-bits.md, "How often ties decide the vote": every cell of the `tied` table (seed 0 /
    seed 1 at rounds 1, 2, 3, 5, 10, 20, the accuracy after round 20) is docs/figures/niid_ties.csv's,
    and so are the prose's at-most share from round 5 on and the random rule's gains on the mean."""
    by = {(r["split"], r["ties"], int(r["seed"]), int(r["round"])): r for r in _csv("niid_ties.csv")}
    text = (DOCS / "matched-bits.md").read_text().split("**How often ties decide the vote.**")[1].split("**Findings**")[0]
    table = _md_rows_text(text)
    rounds = [int(c.split()[-1]) for c in table[0][2:-1]]
    assert rounds == [1, 2, 3, 5, 10, 20], table[0]
    splits = {"Dirichlet 0.05": "dir0.05", "one class per peer": "one_class"}

    def pair(split, ties, rnd, key):
        return " / ".join(f"{float(by[split, ties, seed, rnd][key]):.3f}" for seed in (0, 1))
    for r in table[1:]:
        split, ties = splits[r[0]], r[1].strip("`")
        assert r[2:-1] == [pair(split, ties, n, "tied") for n in rounds], r
        assert r[-1] == pair(split, ties, 20, "acc_mean"), r
    assert len(table) == 5
    flat = " ".join(text.split())
    late = max(float(v["tied"]) for (_, _, _, rnd), v in by.items() if rnd >= 5)
    assert f"at most {100 * late:.1f}% of the probes are tied" in flat
    for split in splits.values():
        gain = sum(float(by[split, "random", s, 20]["acc_mean"]) - float(by[split, "lowest", s, 20]["acc_mean"])
                   for s in (0, 1)) / 2
        assert f"+{gain:.3f} on the mean" in flat, (split, gain)


def test_the_star_counts_row_is_niid_counts_star_csv():
    """docs/matched-bits.md, "Why the vote loses here": the `counts_star_200p` row (mean +- population
    standard deviation over seeds 0-2 after round 20, vote_acc and wrong_confidence means, the bits) and
    its per-seed accuracies are docs/figures/niid_counts_star.csv's."""
    import statistics
    rows = _csv("niid_counts_star.csv")
    text = (DOCS / "matched-bits.md").read_text().split("### Why the vote loses here")[1].split("\n## ")[0]
    row = next(r for r in _md_rows_text(text) if r[0] == "`counts_star_200p`")
    last = {split: [r for r in rows if r["split"] == split and r["round"] == "20"] for split in ("dir0.05", "one_class")}
    assert [[r["seed"] for r in v] for v in last.values()] == [["0", "1", "2"]] * 2
    accs = {s: [float(r["acc_mean"]) for r in v] for s, v in last.items()}
    assert row[4:6] == [f"{statistics.mean(a):.3f} ± {statistics.pstdev(a):.3f}" for a in accs.values()], row

    def means(key):
        return " / ".join(f"{statistics.mean(float(r[key]) for r in v):.3f}" for v in last.values())
    assert (row[6], row[7]) == (means("vote_acc"), means("wrong_confidence")), row
    per_round = {int(r["bits_per_peer"]) // int(r["round"]) for r in rows}
    assert per_round == {4000} and row[2:4] == ["200", "4,000"], (row, per_round)    # 200 x (4 + 16)
    seeds = " and ".join(" / ".join(f"{a:.3f}" for a in v) for v in accs.values())
    assert f"`counts_star_200p` {seeds}." in " ".join(text.split()), seeds


def _c1000_section(part: str) -> str:
    """docs/matched-bits.md's "C = 1000 at matched bits" section in its three parts: the momentum-0.9 table
    and findings ("table"), "#### Without momentum" ("momentum0") and "#### Twenty rounds without momentum"
    ("r20"; "#### Re-measured with paired seeds" after it is not part of it)."""
    text = (DOCS / "matched-bits.md").read_text().split("### C = 1000 at matched bits")[1].split("\n### ")[0]
    table, rest = text.split("\n#### Without momentum")
    momentum0, r20 = rest.split("\n#### Twenty rounds without momentum")
    r20 = r20.split("\n#### Re-measured with paired seeds")[0]     # its own table: tests/test_paired_dec25b.py
    return {"table": table, "momentum0": momentum0, "r20": r20}[part]


def check_c1000_table(text: str, seeds_csv: str, figure_csv: str) -> dict:
    """Every cell of the one table in `text` is `seeds_csv`'s (per group, panel and seed, every evaluated
    round): the bits per peer and round, the mean ± population standard deviation after the last round with
    each seed's value, and the best evaluated round's mean; the figure's own CSV (written by `tallysim
    figure`) has the same final means. Returns {(group, panel, round): [acc per seed]}."""
    import statistics
    rows = _csv(seeds_csv)
    table = _md_rows_text(text)
    groups = [c.split("`")[1] for c in table[0][1:]]
    assert groups == ["tally_800p", "softlabel_8bit_1p", "softlabel_8bit_10p", "local"], table[0]
    last = max(int(r["round"]) for r in rows)
    by = {}
    for r in rows:
        by.setdefault((r["group"], r["panel"], int(r["round"])), []).append(float(r["acc_mean"]))
    assert {len(v) for v in by.values()} == {3}, "three seeds in every cell"
    body = {r[0]: r[1:] for r in table[1:]}        # _md_rows_text drops the |---| line
    assert len(body) == len(table) - 1 == 7, "one table: the bits row and two rows a panel"
    bits = {g: {int(r["bits_per_peer"]) // int(r["round"]) for r in rows if r["group"] == g} for g in groups}
    assert [{int(c.replace(",", ""))} for c in body["bits per peer and round"]] == [bits[g] for g in groups], bits
    figure = {(r["protocol"], r["panel"]): float(r["accuracy_final"]) for r in _csv(figure_csv)}
    checked = 0
    for panel, label in (("iid", "IID"), ("dir0.5", "Dirichlet 0.5"), ("dir0.1", "Dirichlet 0.1")):
        for g, cell in zip(groups, body[f"{label}, after round {last}"]):
            accs = by[(g, panel, last)]
            per_seed = " / ".join(f"{a:.3f}" for a in accs)
            assert cell.strip("*") == f"{statistics.mean(accs):.3f} ± {statistics.pstdev(accs):.3f} ({per_seed})", (g, panel, cell)
            assert abs(figure[(g, panel)] - statistics.mean(accs)) < 1e-4, (g, panel)
            rounds = sorted(k[2] for k in by if k[:2] == (g, panel))
            best = max(rounds, key=lambda t: statistics.mean(by[(g, panel, t)]))
            assert cell_best(body[f"{label}, best round"][groups.index(g)]) == (round(statistics.mean(by[(g, panel, best)]), 3), best)
            checked += 1
    assert checked == 12
    return by


def test_the_class_1000_table_is_its_csvs():
    """docs/matched-bits.md, "C = 1000 at matched bits": the momentum-0.9 table is docs/figures/class_1000_seeds.csv's
    and class_1000.csv's (check_c1000_table)."""
    check_c1000_table(_c1000_section("table"), "class_1000_seeds.csv", "class_1000.csv")


def cell_best(cell: str) -> tuple:
    """'0.208 (round 4)' -> (0.208, 4)."""
    m = re.fullmatch(r"\**([0-9.]+) \(round (\d+)\)\**", cell)
    assert m, cell
    return float(m[1]), int(m[2])


def test_the_class_1000_momentum0_table_is_its_csvs():
    """docs/matched-bits.md, "Without momentum": its table is docs/figures/class_1000_momentum0_seeds.csv's and
    class_1000_momentum0.csv's (`make class-1000-momentum0`), as the momentum-0.9 table is its CSVs'."""
    check_c1000_table(_c1000_section("momentum0"), "class_1000_momentum0_seeds.csv", "class_1000_momentum0.csv")


def test_the_class_1000_twenty_rounds_are_their_csv():
    """docs/matched-bits.md, "Twenty rounds without momentum": each row (rounds 10-20) is
    docs/figures/class_1000_momentum0_r20.csv's tally and local means with each seed, tally's lead and its
    vote's accuracy; the page's "in every seed at every round" is checked too."""
    import statistics
    rows = _csv("class_1000_momentum0_r20.csv")
    by = {}
    for r in rows:
        by.setdefault((r["protocol"], int(r["round"])), []).append(r)
    table = _md_rows_text(_c1000_section("r20"))
    assert table[0][:3] == ["round", "`tally` (800 probes)", "`local`"], table[0]

    def cell(accs):
        return f"{statistics.mean(accs):.3f} ({' / '.join(f'{a:.3f}' for a in accs)})"
    assert [int(r[0]) for r in table[1:]] == list(range(10, 21, 2))
    for r in table[1:]:
        t, loc = ([float(x["acc_mean"]) for x in by[(p, int(r[0]))]] for p in ("tally", "local"))
        vote = statistics.mean(float(x["vote_acc"]) for x in by[("tally", int(r[0]))])
        assert r[1:] == [cell(t), cell(loc), f"{statistics.mean(t) - statistics.mean(loc):.3f}", f"{vote:.2f}"], r
        assert min(t) > max(loc), f"round {r[0]}: the page says tally is ahead in every seed"
    assert [len(by[(p, 20)]) for p in ("tally", "local")] == [3, 3]


def _round10_means(name):
    """{(group, panel): mean acc_mean after round 10 over the seeds, as 0.xxx} of a figure's per-seed CSV."""
    import statistics
    by = {}
    for r in _csv(name):
        if r["round"] == "10":
            by.setdefault((r["group"], r["panel"]), []).append(float(r["acc_mean"]))
    return {k: f"{statistics.mean(v):.3f}" for k, v in by.items()}


def test_the_class_1000_momentum0_before_and_after_are_their_csvs():
    """docs/matched-bits.md, "Without momentum": the soft-label groups' before -> after means (the
    unrounded downlink, docs/figures/class_1000_momentum0_unrounded_seeds.csv, against the table's
    class_1000_momentum0_seeds.csv), after round 10, IID / Dirichlet 0.5 / Dirichlet 0.1."""
    before, after = _round10_means("class_1000_momentum0_unrounded_seeds.csv"), _round10_means("class_1000_momentum0_seeds.csv")
    text = " ".join(_c1000_section("momentum0").split())
    for label, group in (("one probe", "softlabel_8bit_1p"), ("ten probes", "softlabel_8bit_10p")):
        pairs = re.search(label + r" (\d\.\d+ -> \d\.\d+), (\d\.\d+ -> \d\.\d+), (\d\.\d+ -> \d\.\d+)", text).groups()
        want = tuple(f"{before[(group, p)]} -> {after[(group, p)]}" for p in ("iid", "dir0.5", "dir0.1"))
        assert pairs == want, (label, pairs, want)


def test_the_class_1000_soft_labels_before_and_after_are_their_csvs():
    """docs/matched-bits.md, "C = 1000 at matched bits" (momentum 0.9): both softlabel groups re-run with the
    rounded downlink; their before -> after means after round 10, IID / Dirichlet 0.5 / Dirichlet 0.1, are
    docs/figures/class_1000_unrounded_seeds.csv's against class_1000_seeds.csv's (which the table is), and
    the unrounded file holds those groups' rows only (three panels, three seeds, rounds 2-10)."""
    old = _csv("class_1000_unrounded_seeds.csv")
    assert {r["group"] for r in old} == {"softlabel_8bit_1p", "softlabel_8bit_10p"} and len(old) == 2 * 3 * 3 * 5
    before, after = _round10_means("class_1000_unrounded_seeds.csv"), _round10_means("class_1000_seeds.csv")
    text = " ".join(_c1000_section("table").split())
    for label, group in (("one probe", "softlabel_8bit_1p"), ("ten probes", "softlabel_8bit_10p")):
        pairs = re.search(label + r" (\d\.\d+ -> \d\.\d+), (\d\.\d+ -> \d\.\d+), (\d\.\d+ -> \d\.\d+)", text)
        assert pairs, f"the {label}' before -> after sentence"
        want = tuple(f"{before[(group, p)]} -> {after[(group, p)]}" for p in ("iid", "dir0.5", "dir0.1"))
        assert pairs.groups() == want, (label, pairs.groups(), want)
