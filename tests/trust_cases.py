"""Shared cases of the "results you can trust" audit (tests/test_trust_*.py): one tiny synthetic
configuration per registered protocol, with the settings that switch on the state it carries between
rounds (what a resume must restore, what a lane must keep to itself), and a cache of finished runs so
that the audit's files compare against one reference run each instead of recomputing it.

Every protocol in tallysim.protocols.REGISTRY must have an entry in STATE (test_trust_resume checks it),
so a new protocol is audited, or its absence is a failing test."""
from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

from tallysim import config, protocols, run

# 4 peers, 600 training examples, an MLP of width 16 on 10-class synthetic data: compiles in ~2 s.
BASE = ["data.name=synthetic", "data.train_size=600", "data.test_size=200", "data.difficulty=0.5",
        "peers=4", "rounds=4", "eval_every=1", "probe.per_round=32", "probe.pool_size=100", "batch_size=32",
        "partition.kind=iid", "model.width=16"]

# protocol -> settings that put its between-round state to work (empty: the defaults already do)
STATE = {
    "local": [],
    "fedavg": ["participation=0.5"],                                   # a cohort drawn every round
    "fedprox": [],
    "feddf": ["feddf.steps=2", "feddf.batch_size=16"],                 # the server's Adam distillation
    "softlabel": ["softlabel.aggregate=era"],
    "tally": ["vote.weighting=history"],                                # the tally history
    "bridge": ["bridge.period=2", "bridge.density=0.1", "bridge.reset=soft", "bridge.vote_at=merge"],
    "fedavgm": [],                                                     # server momentum
    "fedadam": [],                                                     # FedOpt moments
    "fedyogi": [],
    "topk_ef": ["topk_ef.density=0.1"],                                # error feedback
    "randk": ["randk.density=0.1"],
    "fedpaq": [],
    "signsgd": ["participation=0.5"],                                  # peers that missed rounds
    "scaffold": ["optim.momentum=0"],                                  # control variates
    "fednova": ["partition.kind=dirichlet", "partition.alpha=0.5", "partition.min_size=2"],   # unequal tau_i
    "cfd": ["cfd.delta=true", "probe.resample=false", "warmup_epochs=0"],                    # delta coding's last message
    "selective_fd": ["warmup_epochs=0"],
    "fedct": ["fedct.period=2", "fedct.xor_epsilon=1"],                # exchange period, XOR accountant
    "topk_soft": ["topk_soft.k=2"],
}
# cases beyond one per protocol: population cohorts (client_storage=auto: only the cohort's models exist)
EXTRA = {
    "tally-private": ["protocol.name=tally", "privacy.noise=1"],        # the RDP accountant
    "fedavg-private": ["protocol.name=fedavg", "privacy.noise=0.5", "privacy.accountant=pld"],
    "tally-population": ["protocol.name=tally", "partition.kind=population", "peers=30", "partition.mean_size=10",
                         "participation=0.1", "client_storage=auto", "probe.per_round=16"],
    # a client's optimizer state kept between its rounds, under a cohort drawn each round
    "fedavg-keep_optim": ["protocol.name=fedavg", "participation=0.5", "optim.reset_each_round=false"],
    # a straggler sends its last model: state of the faulty peers; a new faulty set every round
    "fedavg-straggler": ["protocol.name=fedavg", "faults.kind=straggler", "faults.fraction=0.5",
                         "participation=0.5"],
    "tally-redraw": ["protocol.name=tally", "faults.kind=confident_wrong", "faults.fraction=0.25",
                     "faults.redraw=true", "participation=0.75", "cohort_draw=sequential", "eval_peers=2",
                     "eval_sample=random"],
    # model.groups: per-group bits summed in the ledger (restored on resume), per-group rows
    "selective_fd-groups": ["protocol.name=selective_fd", "warmup_epochs=0",
                            "model.groups=small:2:mlp,width=8;big:2:mlp,width=16"],
    "cfd-groups": ["protocol.name=cfd", "cfd.delta=true", "probe.resample=false", "warmup_epochs=0",
                   "model.groups=small:2:mlp,width=8;big:2:mlp,width=16", "participation=0.5"],
    # lanes whose fixed faulty fraction differs (a host-side field in a group); dropout's bits per lane
    "fedavg-label_flip": ["protocol.name=fedavg", "faults.kind=label_flip", "faults.fraction=0.25"],
    "tally-dropout": ["protocol.name=tally", "faults.kind=dropout", "faults.fraction=0.25", "faults.drop_prob=0.5"],
    # control variates across a seed chunk boundary (the crash lands in the second chunk)
    "scaffold-chunks": ["protocol.name=scaffold", "optim.momentum=0", "seeds=3", "seed_chunk=2"],
    "fedavg-population": ["protocol.name=fedavg", "partition.kind=population", "peers=30",
                          "partition.mean_size=10", "participation=0.1", "client_storage=auto"],
}
# The cases each property runs in make test (about 90 s of CPU in all, cold compile cache); every
# other case is marked slow and runs in make test-all.
FAST = {"resume": ("scaffold", "fedct", "cfd", "bridge"), "segments": ("fedadam",), "seeds": ("tally",),
        "chunks": ("softlabel",), "groups": ("tally-dropout",), "metrics": ("tally", "fedavg")}


def marked(prop: str, cases) -> list:
    """`cases` as pytest params, those not in FAST[prop] marked slow."""
    import pytest
    return [c if c in FAST[prop] else pytest.param(c, marks=pytest.mark.slow) for c in cases]


def items(case: str, *extra: str) -> tuple:
    """The config items of `case` (a protocol name or an EXTRA key), then `extra`."""
    if case in EXTRA:
        return (*BASE, *EXTRA[case], *extra)
    return (*BASE, f"protocol.name={case}", *STATE[case], *extra)


def cfg(case: str, *extra: str) -> config.Config:
    return config.validate(config.apply_overrides(config.Config(), list(items(case, *extra))))


def no_wall(rows: list) -> list:
    for r in rows:
        r.pop("wall_s", None)
    return rows


def read_rows(out) -> list:
    return no_wall([json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()])


@functools.lru_cache(maxsize=None)
def rows(case: str, *extra: str) -> tuple:
    """metrics.jsonl of the uninterrupted run of items(case, *extra), as JSON text per row (cached:
    several properties compare against the same reference run)."""
    out = Path(tempfile.mkdtemp(prefix="trust-")) / "run"
    run.run(cfg(case, *extra), str(out), progress=False)
    return tuple(json.dumps(r, sort_keys=True) for r in read_rows(out))


def loaded(case: str, *extra: str) -> list:
    return [json.loads(r) for r in rows(case, *extra)]


def every_case() -> list:
    return list(protocols.REGISTRY) + list(EXTRA)
