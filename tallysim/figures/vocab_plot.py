"""The class-count figure on real text (fig11): accuracy against cumulative bits per peer, one panel per
vocabulary (the `panels`: Shakespeare characters, C = 80, and words, C = 10,004), one line per run.
Also `<stem>_table.md`: per panel and run, C, the final accuracy and perplexity, the bits per peer, and
the bits per token of a vote (ceil(log2 C): tally, bridge, fedct) and of a soft label (C * soft_bits; cfd's
C * cfd.bits) with their ratio; topk_soft's k indices and values, selective_fd's share bit and soft label
where shared, local's 0."""
from __future__ import annotations

import math

from tallysim import config
from tallysim.figures.drawing import finish_axis, save
from tallysim.results.headline import seed_marks
from tallysim.results.md import cell, footnote, starred
from tallysim.figures.panel_layout import panel_grid
from tallysim.results.metrics import accuracy_std as acc, bits_text, read_run, text_headline


def vocab_size(dataset: str):
    """C of a prepared dataset, read from its cache file (None when it is not there)."""
    try:
        import numpy as np
        from tallysim.data.cache import cache_file
        with np.load(cache_file(dataset)) as z:
            return int(z["num_classes"])
    except Exception:           # noqa: BLE001 - the table then says "?"
        return None


def _other_token_bits(protocol: str, cfg: dict, C, hard):
    """The bits per token (up, per active peer) of the protocols that send neither a plain vote nor a whole
    soft label (docs/protocols.md), each was tabled "by parameters": `topk_soft` k indices and k values
    (`k*L + k*b`; `k = C`, no index: `C*b`), `selective_fd` a share bit plus `C*soft_bits` where it shares,
    `local` nothing. None (by parameters) for the rest."""
    if protocol == "local":
        return 0
    if not C:
        return None
    if protocol == "topk_soft":
        own, default = cfg.get("topk_soft", {}), config.Config().topk_soft
        k, b = int(own.get("k", default.k)), int(own.get("value_bits", default.value_bits))
        return C * b if k == C else k * hard + k * b
    if protocol == "selective_fd":
        return f"1 + {C * int(cfg.get('comm', {}).get('soft_bits', 32))} where shared"
    return None


def vocab_fig(spec, data, stem, title) -> dict:
    per_panel, order, fig, axes = panel_grid(spec, data)
    table, lines, marked = [], [], []            # marked: the table's cells over fewer seeds (footnote)
    for ax, p in zip(axes[0], order):
        C = None
        for group, ov, d in per_panel[p]:
            cfg, rows = read_run(d)
            dataset = cfg.get("data", {}).get("name")
            C = vocab_size(dataset) if C is None else C
            soft_bits = int(cfg.get("comm", {}).get("soft_bits", 32))
            # what each token costs is the run's protocol's, not the figure group's name: a user's group
            # "soft" of softlabel was tabled "by parameters", a group "light" of tally too (hostile19)
            protocol = cfg.get("protocol", {}).get("name", group)
            if protocol == "cfd":          # cfd quantises each value to cfd.bits (its soft label's bits)
                soft_bits = int(cfg.get("cfd", {}).get("bits", 8))
            extra = {k: v for k, v in ov.items() if k != "data.name"}
            soft = protocol in ("softlabel", "cfd")           # a distribution per token
            label = group + (f" {soft_bits} bits" if soft else "") \
                + ("".join(f" {k}={v}" for k, v in extra.items() if k != "comm.soft_bits"))
            xs = [max(float(r["bits_per_peer"]), 1.0) for r in rows]
            ys = [acc(r)[0] for r in rows]
            ax.plot(xs, ys, marker="o", markersize=3, label=label,
                    linestyle="--" if protocol == "softlabel" and soft_bits != 32 else "-")
            table += [{"panel": p, "group": label, "dataset": dataset, "classes": C, "round": r["round"],
                       "bits_per_peer": r["bits_per_peer"], "accuracy": a, **seed_marks(r)}
                      for r, a in zip(rows, ys)]
            hard = math.ceil(math.log2(C)) if C else None
            # one vote per token (fedct's too: it was tabled "by parameters"); the FedAvg family: parameters
            votes = protocol in ("tally", "bridge", "fedct")
            per_token = (hard if votes else C * soft_bits if soft and C else _other_token_bits(protocol, cfg, C, hard))
            if protocol == "cfd" and cfg.get("cfd", {}).get("labels") == "hard" and C:    # a vote up, levels down
                per_token = f"{hard} up, {C * soft_bits} down"
            ratio = f"{C * soft_bits / hard:,.0f}" if soft and C else \
                (f"{C * 32 / hard:,.0f} (32-bit soft / vote)" if votes and C else "-")
            ppl = text_headline(rows[-1])["ppl"]            # the same model's test perplexity
            lines.append(f"| {cell(p)} | {cell(dataset)} | {C if C else '?'} | {cell(label)} | {rows[-1]['round']} | "
                         f"{starred(f'{ys[-1]:.4f}', seed_marks(rows[-1], final=True), marked, f'{p} {label}')} "
                         f"| {'-' if ppl is None else starred(f'{ppl:.4g}', seed_marks(rows[-1], ('ppl',), final=True), marked, f'{p} {label} perplexity')} "
                         f"| {bits_text(rows[-1]['bits_per_peer'])} | {'by parameters' if per_token is None else per_token} "
                         f"| {ratio} |")
        finish_axis(ax, "cumulative bits per peer (up + down)", "next-token test accuracy",
                f"{p}: C = {C}" if C else p, logx=True, legend_size=7)
    fig.suptitle(title, fontsize=10)
    return save(fig, stem, table,
        "Final next-token accuracy (positions whose target is not PAD/OOV/BOS/EOS; the server model where "
        "there is one, else the evaluated peers' mean), that model's test perplexity (exp of the mean "
        "cross-entropy over the non-PAD targets; the peers' mean perplexity) and cumulative bits per peer "
        "(up + down). Bits per token: a vote costs ceil(log2 C), a soft label C * soft_bits (cfd: C * "
        "cfd.bits); the ratio column is soft / vote per "
        "token (for tally: a 32-bit soft label's).\n\n"
        "| panel | dataset | C | protocol | rounds | final accuracy | final perplexity | bits per peer | "
        "bits per token | soft / hard per token |\n|---|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(lines + footnote(marked)) + "\n")
