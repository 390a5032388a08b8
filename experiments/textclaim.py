"""Why tally stays at the majority-token floor on the reduced fig11 grid (docs/text.md, "The class-count
axis: fig11"): one run of the reduced grid's tally (or softlabel, fedavg, local) with overrides,
and, per evaluation round, what the vote carried.

    PYTHONPATH=. python experiments/textclaim.py chars tally warmup_epochs=5 probe.per_round=256

Beside the metrics row's accuracy, bits, agreement (mean winning vote share) and vote_acc (the vote's
accuracy on the probes' hidden next tokens), it reports, over the probe positions trained on:
  vote_major   the share of the vote that is the majority token of the training split (the space on
               characters, the most frequent word on words);
  label_major  the share of the probes' true next tokens that are that token (what vote_major would be
               if the vote were the truth);
  vote_acc_rest the vote's accuracy where the true next token is not the majority token.
`floor` is the accuracy of always predicting the majority token on the evaluated test set.

The diagnostics are added to the round's info by wrapping distill.probe_exchange (tally, softlabel,
bridge) and added to the metrics rows' round keys for this process only; nothing in tallysim changes.
One line of JSON per run on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import jax.numpy as jnp
import numpy as np

import tallysim
from tallysim import config
from tallysim.protocols import distill
from tallysim.results import rows as rows_
from tallysim.sim import tasks

# the reduced fig11 grid (experiments/fig11_reduced.json over fig11.json's base), one panel
BASE = ["partition.kind=natural", "peers=10", "rounds=8", "eval_every=2", "eval_peers=10", "batch_size=16",
        "local_epochs=1", "model.name=lstm", "model.embed=8", "model.hidden=64", "model.layers=1",
        "optim.name=sgd", "optim.lr=1", "optim.momentum=0", "probe.per_round=32", "probe.pool_size=500",
        "data.max_test=500", "seeds=1"]
PANELS = {"chars": "data.name=shakespeare", "words": "data.name=shakespeare_words"}
KEYS = ("vote_major", "label_major", "vote_acc_rest")


def with_vote_diagnostics(real):
    """`real` (a probe_exchange) that also puts KEYS in a next_token round's info: the share of the
    trained positions whose vote is the training split's majority token (vote_major), whose label is
    (label_major), and the vote's accuracy on the other positions (vote_acc_rest). Shared with
    wordclaim.py; image rounds pass through unchanged."""
    def probe_exchange(ctx, state, data, keys, idx, hard, *a, **kw):
        probes, info = real(ctx, state, data, keys, idx, hard, *a, **kw)
        if tasks.of(ctx.spec).name != "next_token":
            return probes, info
        major, y_probe = majority_and_probe_labels(ctx, data, keys)
        target = probes.target_M if hard else jnp.argmax(probes.target_M, -1)
        w = probes.weight_M * (y_probe != tasks.PAD)
        n = jnp.maximum(jnp.sum(w), 1.0)
        rest = w * (y_probe != major)
        info["vote_major"] = jnp.sum(w * (target == major)) / n
        info["label_major"] = jnp.sum(w * (y_probe == major)) / n
        info["vote_acc_rest"] = jnp.sum(rest * (target == y_probe)) / jnp.maximum(jnp.sum(rest), 1.0)
        return probes, info
    return probe_exchange


def majority_and_probe_labels(ctx, data, keys):
    """(the training split's most frequent token, PAD left out; this round's probe labels [M, T]), as
    the exchange draws the probes (every party derives them from the round's key)."""
    from tallysim.protocols.base import draw_probes
    from tallysim.sim.fed import pool_examples
    y = data.y_train.reshape(-1)
    major = jnp.argmax(jnp.bincount(jnp.where(y >= 0, y, 0), length=ctx.spec.classes).at[tasks.PAD].set(0))
    _, y_probe = pool_examples(data, draw_probes(ctx, data, keys.probe))
    return major, y_probe


def floor(name: str, max_test: int, seed: int = 0) -> float:
    """Accuracy of always predicting the training split's majority token on the scored test positions
    (the whole test split: the run's max_test subset differs by a few 1e-3)."""
    from tallysim.data import text
    d = text.load(name)
    y_tr, y_te = np.asarray(d.y_train).ravel(), np.asarray(d.y_test).ravel()
    major = np.bincount(y_tr[y_tr != tasks.PAD]).argmax()
    scored = (y_te != tasks.PAD) & (y_te != tasks.OOV) & (y_te != tasks.BOS) & (y_te != tasks.EOS)
    return float(np.mean(y_te[scored] == major))


def main(argv):
    panel, protocol, *over = argv
    # the config first: a bad override is refused before tallysim's globals are instrumented, and they are
    # put back after the run (main called in a process that goes on, e.g. a test's, left every later run's
    # rows with KEYS)
    cfg = config.apply_overrides(config.Config(), [PANELS[panel], f"protocol.name={protocol}", *BASE, *over])
    real, keys = distill.probe_exchange, dict(rows_.ROUND_KEYS)
    distill.probe_exchange = with_vote_diagnostics(real)
    rows_.ROUND_KEYS.update({k: float for k in KEYS})
    try:
        t0 = time.time()
        res = tallysim.run(cfg, out=tempfile.mkdtemp(prefix="textclaim-"))
        wall = time.time() - t0
    finally:
        distill.probe_exchange = real
        rows_.ROUND_KEYS.clear()
        rows_.ROUND_KEYS.update(keys)
    acc = "acc_global" if res.last.get("acc_global") is not None else "acc_mean"
    per_round = [{"round": r["round"], "acc": round(r[acc], 4), "acc_min": r["acc_min"], "acc_max": r["acc_max"],
                  **{k: (None if r.get(k) is None else round(r[k], 4))
                     for k in ("agreement", "vote_acc", *KEYS, "ppl_mean", "ppl_global", "train_loss")}}
                 for r in res.rows]
    bits = {k: v for k, v in res.last.items() if "bits" in k}
    print(json.dumps({"panel": panel, "protocol": protocol, "over": over, "wall_s": round(wall, 1),
                      "bits": bits, "rounds": per_round}), flush=True)


def parse(argv: list) -> list:
    """main's argv, checked: a panel (or `floor`), then for a panel the protocol and overrides; none, or a
    panel without a protocol, is argparse's usage line (the unpacking raised a ValueError traceback)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("panel", choices=[*PANELS, "floor"], help="the grid's panel, or floor: the majority-token accuracy")
    ap.add_argument("protocol", nargs="?", help="tally, softlabel, fedavg, local, ... (a protocol.name)")
    ap.add_argument("overrides", nargs="*", default=[], help="key=value config overrides")
    a = ap.parse_args(argv)
    if a.panel != "floor" and a.protocol is None:
        ap.error(f"panel {a.panel} needs a protocol, e.g. `{a.panel} tally`")
    if a.panel == "floor" and a.protocol is not None:     # `floor tally rounds=2` printed the floor, the rest ignored
        ap.error(f"floor takes nothing after it (given: {' '.join([a.protocol, *a.overrides])}); it is the majority "
                 "token's accuracy on each panel's test split")
    return [a.panel] if a.panel == "floor" else [a.panel, a.protocol, *a.overrides]


if __name__ == "__main__":
    args = parse(sys.argv[1:])
    if args == ["floor"]:
        print({p: round(floor(PANELS[p].split("=")[1], 500), 4) for p in PANELS})
    else:
        try:
            main(args)
        except config.ConfigError as e:      # a misspelt protocol or override: one line, not a traceback
            raise SystemExit(f"textclaim.py: {e}") from None
