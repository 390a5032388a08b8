"""The paper's large-C claim on words (docs/text.md, "The large-C claim on words at CPU size"): the
groups of experiments/wordclaim.json (local training, tally, softlabel, FedAvg, and tally and softlabel
with a light vote) on Shakespeare words (C = 10,004), the 4 role clients with the most text, each group
and seed its own run, and a table of the last evaluation round.

    PYTHONPATH=. python experiments/wordclaim.py                      # every group, both seeds (about 36 minutes, 2 cores)
    PYTHONPATH=. python experiments/wordclaim.py tally tally_light    # some groups
    PYTHONPATH=. python experiments/wordclaim.py tally rounds=4       # with overrides (key=value, after the groups)
    PYTHONPATH=. python experiments/wordclaim.py local seed=0         # one seed alone
    PYTHONPATH=. python experiments/wordclaim.py --smoke              # the figure's smoke size (seconds a run)
    PYTHONPATH=. python experiments/wordclaim.py --spec=experiments/wordtransformer.json   # the transformer's

The configuration is the figure's (`tallysim figure experiments/wordclaim.json` draws the same runs,
both seeds in one program); here each seed runs alone (`seed=s seeds=1`) so that the table gives each
seed's number. Each run is instrumented as textclaim.py's: `vote_major` is the share of the trained
probe positions whose vote (softlabel: the argmax of the averaged distribution) is the training split's
most frequent token, the comma; VOTE_KEYS (below) say why: how many of the peers' own votes are the
comma, and how many positions are ties. `tally_warm` is tally with 4 private epochs before the first
vote. One JSON line per run on stdout (with each evaluated round's diagnostics), then the table
(markdown) with the floor (always predicting the comma, on the whole test split).
An override of data.name is refused (the table's comma is the words'; characters: textclaim.py).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

import jax.numpy as jnp

import tallysim
from tallysim import config, config_reads, figures
from tallysim.config import ConfigError
from tallysim.protocols import distill
from tallysim.results import rows as rows_
from tallysim.sim import tasks, vote

from experiments import textclaim

SPEC = pathlib.Path(__file__).with_name("wordclaim.json")
# the same measurement with the project's transformer instead of the LSTM (docs/text.md, "The large-C
# claim with a transformer"): `--spec=experiments/wordtransformer.json`
TRANSFORMER_SPEC = pathlib.Path(__file__).with_name("wordtransformer.json")


def plans(smoke: bool = False, spec_path: pathlib.Path = SPEC) -> tuple[dict[str, config.Config], list[int]]:
    """group name -> its validated Config (the words panel applied), and the seeds the base names."""
    spec = config.read_file(str(spec_path))
    panels = figures.panels(spec, smoke)
    if len(panels) != 1:        # quick.json, fig2.json (no panel) or fig11.json (several): a ValueError from unpacking
        raise ConfigError(f"{spec_path} has {len(panels)} panels; allowed: a figure config of one panel and groups "
                          f"of one run each, such as experiments/{SPEC.name} or experiments/{TRANSFORMER_SPEC.name}")
    (panel,) = panels.values()
    out = {}
    for group, (cfg, runs) in figures.group_plans(spec, smoke, pathlib.Path(spec_path).parent).items():
        if len(runs) != 1:
            raise ConfigError(f"{spec_path}: group {group} sweeps {len(runs)} runs; allowed: groups of one run "
                              f"each, as in experiments/{SPEC.name}")
        ((_, over),) = runs                   # no sweeps: one run per group
        out[group] = config.apply_overrides(cfg, [*panel, *over])
    seeds = range(next(iter(out.values())).seeds)
    return out, [next(iter(out.values())).seed + s for s in seeds]


# Why the vote is the comma (docs/text.md, "Why the vote is the comma"): over the probe positions whose
# true next token is a word (not PAD), per round
#   peer_major   the share of the individual votes (each peer's argmax) that are the comma;
#   vote_ties    the share of positions whose top count is shared by two or more classes;
#   tie_major    the share of positions that are such a tie with the comma among the tied classes:
#                where `vote.ties=lowest` hands the vote to the comma (its id is the lowest word's);
#   trained      the share of positions that carry a target (abstention: vote.min_agreement/min_margin).
VOTE_KEYS = ("peer_major", "vote_ties", "tie_major", "trained")
_counts: list = []           # the vote counts of the exchange being traced (tally_counts' first call)


def _count_spy(real):
    def tally_counts(counts_MxC, voters, *a, **kw):
        _counts.append((counts_MxC, voters))
        return real(counts_MxC, voters, *a, **kw)
    return tally_counts


def _vote_spy(real):
    """Adds VOTE_KEYS to a hard exchange's info, from the counts its first tally_counts call saw."""
    def probe_exchange(ctx, state, data, keys, idx, hard, *a, **kw):
        _counts.clear()
        probes, info = real(ctx, state, data, keys, idx, hard, *a, **kw)
        if not (hard and _counts) or tasks.of(ctx.spec).name != "next_token":
            return probes, info
        major, y_probe = textclaim.majority_and_probe_labels(ctx, data, keys)   # major: the comma
        counts_MxC, voters = _counts[0]
        info.update(vote_diagnostics(counts_MxC, voters, y_probe.reshape(-1), probes.weight_M.reshape(-1), major))
        return probes, info
    return probe_exchange


def vote_diagnostics(counts_MxC, voters, y_M, weight_M, major) -> dict:
    """VOTE_KEYS from the [M, C] vote counts of `voters` peers, the true next tokens y_M (PAD: not
    scored) and the trained weight of each position."""
    pos = (y_M != tasks.PAD).astype(jnp.float32)
    n = jnp.maximum(jnp.sum(pos), 1.0)
    top = jnp.max(counts_MxC, axis=-1, keepdims=True)
    tied = jnp.sum(counts_MxC == top, axis=-1) > 1
    tie_major = tied & (counts_MxC[:, major] == top[:, 0])
    return {"peer_major": jnp.sum(pos * counts_MxC[:, major]) / (n * voters),
            "vote_ties": jnp.sum(pos * tied) / n, "tie_major": jnp.sum(pos * tie_major) / n,
            "trained": jnp.sum(pos * (weight_M > 0)) / n}


def _instrument() -> None:
    """textclaim's vote diagnostics and VOTE_KEYS, once per process."""
    if not getattr(distill.probe_exchange, "_wordclaim", False):
        distill.probe_exchange = textclaim.with_vote_diagnostics(_vote_spy(distill.probe_exchange))
        distill.probe_exchange._wordclaim = True
        vote.tally_counts = _count_spy(vote.tally_counts)
        rows_.ROUND_KEYS.update({k: float for k in (*textclaim.KEYS, *VOTE_KEYS)})


def run_one(group: str, cfg: config.Config, seed: int, over: list[str] = ()) -> dict:
    """One seed of one group alone; its last row's accuracy (peer mean; FedAvg: the server model),
    perplexity, bits per peer and the vote's diagnostics."""
    _instrument()
    cfg = config.apply_overrides(cfg, [f"seed={seed}", "seeds=1", *over])
    t0 = time.time()
    res = tallysim.run(cfg, out=tempfile.mkdtemp(prefix="wordclaim-"))
    last = res.last
    acc = "acc_global" if last.get("acc_global") is not None else "acc_mean"
    return {"group": group, "protocol": cfg.protocol.name, "seed": seed, "over": list(over),
            "wall_s": round(time.time() - t0, 1), "acc": last[acc], "acc_min": last.get("acc_min"),
            "acc_max": last.get("acc_max"), "ppl": last["ppl_global" if acc == "acc_global" else "ppl_mean"],
            "bits_per_peer": last["bits_per_peer"],
            **{k: last.get(k) for k in ("agreement", "vote_acc", *textclaim.KEYS, *VOTE_KEYS)},
            "rounds": [{"round": r["round"], "acc": r[acc], **{k: r.get(k) for k in ("agreement", "vote_major", *VOTE_KEYS)}}
                       for r in res.rows]}


def table(results: list[dict], floor: float) -> str:
    """Markdown: one line per group: each seed's accuracy, their mean and spread, perplexity, the
    vote's share of the comma, bits per peer and their ratio to tally's."""
    lines = [f"floor (always the comma, whole test split): {floor:.4f}", "",
             "| group | accuracy per seed | mean | spread | perplexity per seed | vote = comma | bits per peer | x tally's bits |",
             "|---|---|---|---|---|---|---|---|"]
    tally_bits = next((r["bits_per_peer"] for r in results if r["protocol"] == "tally"), None)
    for g in dict.fromkeys(r["group"] for r in results):
        rs = [r for r in results if r["group"] == g]
        accs = [r["acc"] for r in rs]
        bits = rs[0]["bits_per_peer"]
        ratio = f"{bits / tally_bits:,.0f}" if tally_bits and bits else "-"
        ppls = " / ".join(f"{r['ppl']:,.0f}" for r in rs)
        major = " / ".join(f"{r['vote_major']:.2f}" for r in rs if r.get("vote_major") is not None) or "-"
        lines.append(f"| {g} | {' / '.join(f'{a:.4f}' for a in accs)} | {statistics.mean(accs):.4f} | "
                     f"{max(accs) - min(accs):.4f} | {ppls} | {major} | {bits:,.0f} | {ratio} |")
    return "\n".join(lines)


def _same_dataset(group: str, spec: config.Config, cfg: config.Config) -> None:
    """An override of the dataset the spec is built for refused: the table calls the vote's token the comma
    (the words' most frequent token) and its floor always predicts it; `data.name=shakespeare` (characters,
    whose most frequent token is the space) ran and printed a table about a comma it never measured."""
    if cfg.data.name != spec.data.name:
        raise SystemExit(f"wordclaim.py: data.name={cfg.data.name} (group {group}): this script measures the large-C "
                         f"claim on {spec.data.name}, whose most frequent token, the comma, its table names; allowed: "
                         f"data.name={spec.data.name} or no data.name override (characters: experiments/textclaim.py "
                         "chars)")


def parser() -> argparse.ArgumentParser:
    """The options, as the sibling scripts take theirs (argparse: `--help` is the docstring; it parsed argv
    by hand before)."""
    ap = argparse.ArgumentParser(prog="python experiments/wordclaim.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("args", nargs="*", metavar="GROUP|key=value",
                    help="the groups to run (default: every group of the spec), then key=value config overrides "
                         "(seed=N: that seed alone)")
    ap.add_argument("--smoke", action="store_true", help="the figure's smoke size (seconds a run)")
    ap.add_argument("--spec", action="append", type=pathlib.Path, metavar="PATH",
                    help=f"a figure config (default experiments/{SPEC.name}; experiments/{TRANSFORMER_SPEC.name}: "
                         "the transformer's)")
    return ap


def main(argv: list[str]) -> list[dict]:
    ap = parser()
    opts = ap.parse_intermixed_args(argv)
    if opts.spec is not None and len(opts.spec) > 1:
        ap.error(f"--spec given {len(opts.spec)} times; allowed: once (a figure config like {SPEC.name} or "
                 f"{TRANSFORMER_SPEC.name})")
    smoke, spec_path, argv = opts.smoke, (opts.spec or [SPEC])[0], opts.args
    if not spec_path.is_file():
        ap.error(f"--spec={spec_path}: no such file; allowed: a figure config such as "
                 f"experiments/{SPEC.name} or experiments/{TRANSFORMER_SPEC.name}")
    try:
        groups, seeds = plans(smoke, spec_path)
    except ConfigError as e:
        ap.error(str(e))
    names = [a for a in argv if "=" not in a] or list(groups)
    unknown = [n for n in names if n not in groups]
    if unknown:
        raise SystemExit(f"wordclaim.py: no group {', '.join(unknown)}; allowed: {', '.join(groups)}")
    over = [a for a in argv if "=" in a]
    # `seed=N` runs that seed alone (without it each of the spec's seeds runs, each overriding nothing)
    chosen = [a.split("=", 1)[1] for a in over if a.startswith("seed=")]
    if chosen:
        if not all(c.isdigit() for c in chosen) or len(chosen) > 1:
            raise SystemExit(f"wordclaim.py: {', '.join('seed=' + c for c in chosen)}: allowed: one seed=N, N a whole number")
        seeds, over = [int(chosen[0])], [a for a in over if not a.startswith("seed=")]
    if any(a.startswith("seeds=") for a in over):   # each run got seeds=N: the table's per-seed column held means
        raise SystemExit("wordclaim.py: seeds=N: each seed runs alone here (seed=S seeds=1), one number per seed in "
                         "the table; allowed: seed=N for that seed alone, or none for the spec's seeds")
    # every run's config checked before the first runs (about 5 minutes each): an override one group does not
    # read, or a seed out of range, was refused only when its run came, after the groups before it had run
    for name in names:
        for seed in seeds:
            cfg = config.validate(config.apply_overrides(groups[name], [f"seed={seed}", "seeds=1", *over]))
            config_reads.check_read(cfg)
            _same_dataset(name, groups[name], cfg)
    results = []
    for name in names:
        for seed in seeds:
            results.append(run_one(name, groups[name], seed, over))
            print(json.dumps(results[-1]), flush=True)
    print(table(results, textclaim.floor(groups[names[0]].data.name, 500)), flush=True)
    return results


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ConfigError as e:     # a bad override: one line, as `tallysim run` says it, not a traceback
        raise SystemExit(f"wordclaim.py: {e}") from None
