"""The paper's large-C claim on words (docs/text.md, "The large-C claim on words at CPU size"):
local, tally, softlabel and FedAvg on Shakespeare words (C = 10,004) in the smallest CPU-sized setting
where local training beats the majority-token floor (experiments/wordclaim.json), over two seeds,
and a table of the last evaluation round.

    PYTHONPATH=. python experiments/wordclaim.py                # the measurement (about 35 minutes, 2 cores)
    PYTHONPATH=. python experiments/wordclaim.py base|variants  # only the base protocols, or the variants
    PYTHONPATH=. python experiments/wordclaim.py --smoke        # a toy size of the same code (about a minute)
    PYTHONPATH=. python experiments/wordclaim.py tally 0 rounds=4   # one run, with overrides

The variants (wordclaim.json's "variants") rerun some protocols with a few fields changed (the light
vote: distill.weight 0.1); their rows are labelled "PROTOCOL, LABEL".

Each run is textclaim.py's (the same per-round diagnostics of the vote: `vote_major` is the share of
the trained probe positions whose vote, or softlabel's argmax, is the training split's most frequent
token, the comma); one JSON line per run on stdout, then the table (markdown) with the floor
(always predicting the comma on the whole test split).
"""
from __future__ import annotations

import json
import pathlib
import statistics
import sys
import tempfile
import time

import tallysim
from tallysim import config
from tallysim.protocols import distill
from tallysim.results import rows as rows_

from experiments import textclaim

SPEC = pathlib.Path(__file__).with_name("wordclaim.json")


def settings(smoke: bool = False) -> tuple[dict, list[str], list[int], str]:
    """(overrides as key=value, protocols, seeds, panel) from wordclaim.json; smoke: its toy block."""
    spec = json.loads(SPEC.read_text())
    base, seeds = dict(spec["base"]), spec["seeds"]
    if smoke:
        base.update(spec["smoke"]["base"])
        seeds = spec["smoke"]["seeds"]
    return base, spec["protocols"], seeds, spec["panel"]


def variants() -> list[tuple[str, str, list[str]]]:
    """(label, protocol, overrides) of wordclaim.json's variants."""
    return [(v["label"], p, [f"{k}={x}" for k, x in v["over"].items()])
            for v in json.loads(SPEC.read_text()).get("variants", []) for p in v["protocols"]]


def _instrument() -> None:
    """textclaim's vote diagnostics, once per process."""
    if not getattr(distill.probe_exchange, "_wordclaim", False):
        distill.probe_exchange = textclaim._spy(distill.probe_exchange)
        distill.probe_exchange._wordclaim = True
        rows_.ROUND_KEYS.update({k: float for k in textclaim.KEYS})


def run_one(panel: str, protocol: str, seed: int, base: dict, over: list[str] = (), label: str = "") -> dict:
    """One run; its last row's accuracy (peer mean; FedAvg: the server model), perplexity, bits per
    peer and the vote's diagnostics."""
    _instrument()
    pairs = [textclaim.PANELS[panel], f"protocol.name={protocol}", f"seed={seed}",
             *(f"{k}={v}" for k, v in base.items()), *over]
    cfg = config.apply_overrides(config.Config(), pairs)
    t0 = time.time()
    res = tallysim.run(cfg, out=tempfile.mkdtemp(prefix="wordclaim-"))
    last = res.last
    server = last.get("acc_global") is not None
    return {"protocol": f"{protocol}, {label}" if label else protocol, "seed": seed, "over": list(over), "wall_s": round(time.time() - t0, 1),
            "acc": last["acc_global"] if server else last["acc_mean"],
            "acc_min": last.get("acc_min"), "acc_max": last.get("acc_max"),
            "ppl": last["ppl_global"] if server else last["ppl_mean"],
            "bits_per_peer": last["bits_per_peer"],
            **{k: last.get(k) for k in ("agreement", "vote_acc", *textclaim.KEYS)},
            "rounds": [{"round": r["round"], "acc": r["acc_global"] if server else r["acc_mean"],
                        "vote_major": r.get("vote_major")} for r in res.rows]}


def table(results: list[dict], floor: float) -> str:
    """Markdown: one line per protocol, each seed's accuracy and the mean, spread, perplexity, bits."""
    lines = [f"floor (always the comma, whole test split): {floor:.4f}", "",
             "| protocol | accuracy per seed | mean | spread | perplexity per seed | vote = comma | bits per peer | x tally's bits |",
             "|---|---|---|---|---|---|---|---|"]
    tally_bits = next((r["bits_per_peer"] for r in results if r["protocol"].split(",")[0] == "tally"), None)
    for p in dict.fromkeys(r["protocol"] for r in results):
        rs = [r for r in results if r["protocol"] == p]
        accs = [r["acc"] for r in rs]
        major = [r["vote_major"] for r in rs if r.get("vote_major") is not None]
        ratio = (f"{rs[0]['bits_per_peer'] / tally_bits:,.0f}" if tally_bits and rs[0]["bits_per_peer"] else "-")
        ppls = " / ".join(f"{r['ppl']:,.0f}" for r in rs)
        accs_s = " / ".join(f"{a:.4f}" for a in accs)
        major_s = " / ".join(f"{m:.2f}" for m in major) or "-"
        lines.append(f"| {p} | {accs_s} | {statistics.mean(accs):.4f} | {max(accs) - min(accs):.4f} | {ppls} | "
                     f"{major_s} | {rs[0]['bits_per_peer']:,.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str]) -> list[dict]:
    smoke = "--smoke" in argv
    argv = [a for a in argv if a != "--smoke"]
    base, protocols, seeds, panel = settings(smoke)
    part = argv[0] if argv[:1] in (["base"], ["variants"]) else "all"
    runs = [("", p, []) for p in protocols] * (part != "variants") + variants() * (part != "base")
    if len(argv) == 1 and part == "all":
        raise SystemExit(f"one run takes a protocol and a seed (wordclaim.py tally 0 [key=value ...]); got {argv}")
    if argv and part == "all":                 # one run: PROTOCOL SEED [key=value ...]
        runs, seeds = [("", argv[0], argv[2:])], [int(argv[1])]
    results = []
    for label, protocol, over in runs:
        for seed in seeds:
            results.append(run_one(panel, protocol, seed, base, over, label))
            print(json.dumps(results[-1]), flush=True)
    print(table(results, textclaim.floor(textclaim.PANELS[panel].split("=")[1], 500)), flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
