"""Leftovers noticed by earlier reviews (Dec 5, fifth pass): the distillation gate's agreement on text
counts only real probe positions, the exchange splits a peer's probes when its forward pass over all of
them exceeds the chunk budget, perplexity overflow is strict JSON in metrics.jsonl, only a command-line
ARGS reaches make's figure targets, pareto skips corrupt runs through read_runs, and the traced
per-example peak is positive for conv models."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------- make's ARGS: the command line only

def _make_n(target: str, *words: str, env_args: str | None = None) -> str:
    if shutil.which("make") is None:
        pytest.skip("no make here")
    env = {k: v for k, v in os.environ.items() if k not in ("ARGS", "MAKEFLAGS", "MFLAGS")}
    if env_args is not None:
        env["ARGS"] = env_args
    out = subprocess.run(["make", "-n", target, *words], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return next(ln for ln in out.splitlines() if " figure " in ln)


@pytest.mark.parametrize("target", ["fig1", "robustness", "matched-bits"])
def test_an_args_exported_in_the_shell_does_not_reach_a_figure_target(target):
    """`export ARGS=--foo; make fig1` passed --foo to `tallysim figure` (make reads the environment)."""
    line = _make_n(target, env_args="--foo")
    assert "--foo" not in line and line.rstrip().endswith("--progress lines"), line


def test_a_command_line_args_still_reaches_it_and_wins_over_the_shells():
    assert _make_n("fig1", "ARGS=--dry-run").rstrip().endswith("--progress lines --dry-run")
    line = _make_n("fig1", "ARGS=--dry-run", env_args="--foo")
    assert "--foo" not in line and line.rstrip().endswith("--dry-run"), line
    # the shell's ARGS cannot change the progress either (FIG_PROGRESS reads the same ARGS)
    assert _make_n("fig8", env_args="--quiet").rstrip().endswith("--progress lines")


# ------------------------------------------------------------------- perplexity overflow: strict JSON

import json  # noqa: E402
import math  # noqa: E402
import warnings  # noqa: E402

TEXT_ROW = {"round": 1, "bits_up": 64, "bits_down": 64, "bits_per_peer": 32.0, "acc_mean": 0.5, "acc_global": None,
            "ppl_mean": float("inf"), "ppl_global": None, "wall_s": 1.0}


def _strict_loads(text: str):
    """json.loads as jq, JavaScript's JSON.parse and pandas' strict readers read: no Infinity/NaN tokens."""
    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def _write_run(path: Path, lines: list[str], rounds: int = 2) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": rounds}))
    (path / "metrics.jsonl").write_text("".join(ln + "\n" for ln in lines))
    return path


def test_the_run_writes_an_overflowed_perplexity_as_strict_json(tmp_path):
    """run.py's recorder wrote json.dumps(row): `"ppl_mean": Infinity`, which strict readers refuse."""
    from tallysim import run
    with contextlib.ExitStack() as held, warnings.catch_warnings():    # closed as run._Lanes closes it
        rec = run._Recorder([0, 1], tmp_path, chunk=2, bar=None, resume=None)
        held.callback(rec.close_file)
        warnings.simplefilter("ignore", RuntimeWarning)                 # numpy's std of inf and NaN
        rec.rows(1, [{**TEXT_ROW, "train_loss": 1.0}, {**TEXT_ROW, "ppl_mean": 50.0, "train_loss": math.nan}])
    line = (tmp_path / "metrics.jsonl").read_text().strip()
    row = _strict_loads(line)
    assert row["ppl_mean"] == "Infinity" and row["per_seed"]["ppl_mean"] == ["Infinity", 50.0]
    assert row["ppl_global"] is None                                  # null stays "not computed"
    from tallysim.results import metrics
    back = metrics.read_rows(tmp_path)[0]
    assert back["ppl_mean"] == math.inf and back["per_seed"]["ppl_mean"] == [math.inf, 50.0]
    assert math.isnan(back["per_seed"]["train_loss"][1])


def test_a_sweeps_done_json_is_strict_too(tmp_path):
    from tallysim import config, sweep
    rec = {"name": "r"}
    cfg = config.validate(config.apply_overrides(config.Config(), ["rounds=1"]))
    sweep._done(tmp_path, rec, None, cfg, [], {**TEXT_ROW, "seeds": 1, "acc_ensemble": 0.5}, 1.0, lambda m: None)
    assert _strict_loads((tmp_path / "done.json").read_text())["last"]["ppl_mean"] == "Infinity"


@pytest.mark.parametrize("spelling", ["new", "old"])
def test_every_reader_reads_inf_back_from_either_spelling(spelling, tmp_path, capsys):
    """New files hold "Infinity" (a string), files written before hold the bare token: both read as inf,
    by read_run, read_rows (the Python API), table, plot and pareto."""
    from tallysim import cli
    from tallysim import fields
    from tallysim.results import metrics, pareto
    from tallysim.results.runs import read_rows
    dump = metrics.dumps_row if spelling == "new" else json.dumps
    rows = [TEXT_ROW, {**TEXT_ROW, "round": 2, "ppl_mean": 40.0}]
    bad = _write_run(tmp_path / "s" / "diverged", [dump({**r, "ppl_mean": math.inf}) for r in rows])
    good = _write_run(tmp_path / "s" / "fine", [dump(r) for r in rows])
    assert ('"Infinity"' in (bad / "metrics.jsonl").read_text()) == (spelling == "new")
    assert [r["ppl_mean"] for r in metrics.read_run(bad)[1]] == [math.inf, math.inf]
    assert [r["ppl_mean"] for r in read_rows(tmp_path / "s") if r["run"] == "diverged"] == [math.inf, math.inf]
    assert cli.main(["table", str(tmp_path / "s"), "--metric", "ppl_mean"]) == 0
    out = capsys.readouterr().out
    assert "inf" in out.lower() and "40" in out, out
    # plot: the diverged run's perplexity is inf everywhere, so alone it is nothing to draw, as before
    assert cli.main(["plot", str(bad), "--out", str(tmp_path / "p.png"), "--metric", "ppl"]) == 2
    assert "not finite at any evaluation" in capsys.readouterr().err
    assert cli.main(["plot", str(bad), str(good), "--out", str(tmp_path / "p.png"), "--metric", "ppl"]) == 0
    # pareto: its frontier keeps the highest value at each cost, so a perplexity is refused (lower is better)
    with pytest.raises(fields.ConfigError, match="better lower"):
        pareto.collect([tmp_path / "s"], metric="ppl_mean", log=lambda m: None)


# ------------------------------------------------------------------- pareto reads through read_runs

def test_pareto_skips_corrupt_runs_through_read_runs_with_its_own_note(tmp_path, monkeypatch):
    """pareto.collect had its own find_runs/read_run skip loop beside metrics.read_runs (table's and
    read_rows'): one loop now, pareto's note unchanged, and no runs at all still [] (its caller words it)."""
    from tallysim.results import metrics, pareto
    good = _write_run(tmp_path / "t" / "good", [metrics.dumps_row({**TEXT_ROW, "ppl_mean": 9.0, "round": r})
                                                 for r in (1, 2)])
    bad = _write_run(tmp_path / "t" / "bad", ["{torn"])
    calls = []
    real = metrics.read_runs
    monkeypatch.setattr(metrics, "read_runs", lambda *a, **k: calls.append(a) or real(*a, **k))
    notes = []
    points = pareto.collect([tmp_path / "t"], log=notes.append)
    assert len(calls) == 1 and [p["dir"] for p in points] == [str(good)]
    assert notes == [f"pareto: skipping {bad}: {bad / 'metrics.jsonl'} line 1 is not valid JSON (corrupt or torn "
                     "by a crash); remove that line or rerun"], notes
    empty = tmp_path / "empty"
    empty.mkdir()
    assert pareto.collect([empty], log=notes.append) == [] and pareto.collect([bad], log=notes.append) == []


# ------------------------------------------------------------------- distill.gate on text: real positions only

def _gate_round(protocol: str, gate: float):
    """One round of `protocol` on test_text_vote's table model (3 peers, T = 4 positions, C = 5, padded
    windows in the pool) with distill.gate=`gate`: (info, the round's probe windows, the peers' params)."""
    import jax
    from test_text_vote import _setup
    from tallysim.protocols import make as make_protocol
    from tallysim.protocols.base import draw_probes
    from tallysim.protocols.round_helpers import round_keys
    ctx, one, _, x, _ = _setup(protocol, **{"distill.gate": gate})
    proto = make_protocol(ctx)
    state = jax.jit(proto.init)(jax.random.PRNGKey(0), one)
    root = jax.random.PRNGKey(3)
    _, info = jax.jit(lambda s: proto.round(s, one, root, 1))(state)
    rows = np.asarray(draw_probes(ctx, one, round_keys(root, 1, ctx.cfg.probe.resample).probe))
    return info, x[np.asarray(one.pool_Q)[rows]], state.params


def _np_agreements(params, x_M):
    """(mean winning share over every position, over the positions whose input is not PAD) in numpy."""
    import jax
    from test_text_vote import P, _np_logits
    votes = np.stack([_np_logits(jax.tree.map(lambda a: a[i], params), x_M).argmax(-1) for i in range(P)])
    share = (votes[..., None] == np.arange(5)).sum(0).max(-1) / P           # [M, T]
    real = x_M != 0
    return share.mean(), share[real].mean()





@pytest.mark.parametrize("protocol", ["tally", "softlabel", "cfd"])
def test_the_gates_agreement_on_text_counts_only_real_positions(protocol):
    """distill.gate read the mean winning share over every probe position, PAD ones included, although
    the peers never train on those (tasks.message_mask): the gate now reads the real positions' mean
    (info gate_agreement); the rows' `agreement` stays every position's."""
    info, x_M, params = _gate_round(protocol, 0.01)
    every, real = _np_agreements(params, x_M)
    assert (x_M == 0).any() and (x_M != 0).any()            # the round's probes hold a padded window
    assert abs(every - real) > 1e-3                          # the test can fail: the two differ
    assert float(info["agreement"]) == pytest.approx(every, abs=1e-6)
    assert float(info["gate_agreement"]) == pytest.approx(real, abs=1e-6)


def test_the_gate_decides_on_the_real_positions():
    info, x_M, params = _gate_round("tally", 0.01)
    every, real = _np_agreements(params, x_M)
    gate = (every + real) / 2                                # between the two: only the real one decides
    info, _, _ = _gate_round("tally", gate)
    assert float(info["distill_factor"]) == float(real >= gate) != float(every >= gate)


def test_an_image_round_has_no_separate_gate_agreement():
    """Images: the gate reads the rows' agreement, the program as before (no gate_agreement output)."""
    from tallysim.protocols.base import gate_agreement, text_agreement
    from tallysim.sim import tasks
    share = np.array([1.0, 0.5, 0.25], np.float32)
    assert text_agreement(tasks.CLASSIFICATION, np.zeros((3, 2)), share) == {}
    assert gate_agreement({"agreement": 0.5}) == 0.5


# ------------------------------------------------------------------- the traced per-example peak

# Per example, 28x28x1 inputs and 10 classes: the float32 input, then the values each layer outputs in
# the model's dtype (conv, relu, pool; dense, relu; the float32 logits), counted by hand from models.py.
ANALYTIC_LAYERS = {
    "mlp": [200, 200, 200, 200],                                          # dense, relu, dense, relu
    "lenet": [28 * 28 * 6] * 2 + [14 * 14 * 6] + [10 * 10 * 16] * 2 + [5 * 5 * 16] + [120] * 2 + [84] * 2,
    "cnn": [28 * 28 * 32] * 2 + [14 * 14 * 32] + [14 * 14 * 64] * 2 + [7 * 7 * 64] + [512] * 2,
}


def _per_example(name: str, extra=()):
    import jax
    import jax.numpy as jnp
    from tallysim import config as config_
    from tallysim.sim import activations
    from tallysim.sim.models import make_model
    m = make_model(config_.apply_overrides(config_.Config(), [f"model.name={name}", *extra]).model, 10)
    params = jax.eval_shape(m.init, jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1), jnp.float32))
    return activations.per_example(m.apply, params, (28, 28, 1))


@pytest.mark.parametrize("name", sorted(ANALYTIC_LAYERS))
@pytest.mark.parametrize("extra", [(), ("model.dtype=bfloat16",), ("model.conv=xla",)], ids=["f32", "bf16", "xla"])
def test_the_traced_peak_per_example_is_near_the_analytic_activations(name, extra):
    """peak was batch 2 minus batch 1 of the traced walk: with bfloat16 the parameters' casts decided
    where the peak was at those batches, and a CNN's came out at 10 KB an example (its conv layers alone
    hold 170 KB): chunks and eval batches sized as if its forward pass were free."""
    size = 2 if extra == ("model.dtype=bfloat16",) else 4
    layers = ANALYTIC_LAYERS[name]
    analytic = 4 * 28 * 28 + size * sum(layers) + 4 * 10
    floor = 4 * 28 * 28 + size * max(layers)                    # the input and the largest layer, both held
    fact = _per_example(name, extra)
    assert fact.peak > 0 and fact.saved > 0
    assert floor <= fact.peak <= 5 * analytic, (fact.peak, floor, analytic)
    assert fact.peak >= analytic / 2, (fact.peak, analytic)
    assert fact.saved >= size * max(layers)


def test_float32_per_example_facts_are_as_before():
    """Every model's program grows linearly with the batch, so the wider span gives batch 2 minus batch 1
    exactly where that was sound: the chunk, eval batch and lane sizes of float32 runs do not move."""
    assert tuple(_per_example("cnn")[:2]) == (2115280, 1257536)          # tests/test_leftovers4.py's CNN
    assert tuple(_per_example("mlp")[:2]) == (8016, 6336)
    assert tuple(_per_example("lenet")[:2]) == (396896, 159936)


# ------------------------------------------------------------------- the exchange splits a peer's probes

def test_split_probes_is_the_unsplit_forward_pass():
    import jax
    import jax.numpy as jnp
    from tallysim.sim import exchange
    w = jax.random.normal(jax.random.PRNGKey(0), (3, 6, 5))              # 3 "peers", 6 features, 5 classes
    x = jax.random.normal(jax.random.PRNGKey(1), (23, 6))
    predict = jax.jit(lambda xb: jnp.tanh(xb)[None, :, :, None] * w[:, None])     # [c, m, 6, 5], no dot
    whole = predict(x)
    for m in (1, 4, 7, 22, 23, 40, None):
        got = jax.jit(lambda xm, m=m: exchange.split_probes(predict, xm, m))(x)
        assert got.shape == (3, 23, 6, 5)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(whole))     # each probe's own values, in order


def test_probe_chunk_splits_only_what_one_peer_cannot_hold():
    from tallysim import sizing
    peak, example = 1_257_536, 3136                     # fig12's CNN on 28x28x1 (activations.per_example)
    # one CNN over 1,000 probes: 1.9 GB of forward pass (1.5 x 1,000 x 1.25 MB) against the 256 MiB budget
    assert sizing.exchange_hidden_bytes(peak, example, 40, 1000) > 1.8e9
    m = sizing.probe_chunk(1000, 1000, 10, peak, example, 40)
    assert 100 <= m < 1000
    assert 4 * 1000 * 10 + sizing.exchange_hidden_bytes(peak, example, 40, m) <= sizing.CHUNK_BYTES
    assert 4 * 1000 * 10 + sizing.exchange_hidden_bytes(peak, example, 40, m + 1) > sizing.CHUNK_BYTES
    assert sizing.probe_chunk(1000, 1000, 10, peak, example, 40, lanes=2) < m       # lanes share the budget
    # the demo's MLPs (and any exchange whose single peer fits): every probe at once, as before
    assert sizing.probe_chunk(1000, 1000, 10, 6336, 3136, 40) == 1000
    # logits that fill the budget alone still leave the forward pass half of it
    assert sizing.probe_chunk(1000, 1000, sizing.CHUNK_BYTES // 4000, peak, example, 40) >= 50


# tally slow: covered fast by tests/test_leftovers5.py::test_a_split_exchange_sends_the_unsplit_votes_and_soft_labels
# [softlabel]. Both stream the same logits_fn (protocols/base._exchange_sums, the probe split inside
# predict_probes; 64 probes' totals stay far below the 4 MB budget, so tally takes no blocked vote); the
# split touches only the logits, and softlabel's soft sums see every change the vote's argmax sees and
# more (logits x 1.5 in split_probes: softlabel and cfd fail, tally passes).
@pytest.mark.parametrize("protocol", [pytest.param("tally", marks=pytest.mark.slow), "softlabel", "cfd"])
def test_a_split_exchange_sends_the_unsplit_votes_and_soft_labels(protocol, monkeypatch, fusion_emitters):
    """A LeNet round whose budget holds one peer's logits but not its forward pass over the 64 probes: the
    probes go through a slice at a time (64 = 3 x 17 + 13: the last slice padded), and the targets the
    peers train on, the bits and the trained parameters equal those of the unsplit exchange (same peer
    chunk), bit for bit."""
    import jax
    import tallysim
    from tallysim import config as config_, sizing
    from tallysim.protocols import distill, probe_round
    from tallysim.sim import exchange
    from conftest import TINY, spy_probes
    cfg = config_.apply_overrides(config_.Config(), [t for t in TINY if not t.startswith("model.width")] + [
        f"protocol.name={protocol}", "model.name=lenet", "data.input_shape=[28,28,1]", "rounds=1",
        "warmup_epochs=0", "local_steps=1"])
    monkeypatch.setattr(sizing, "CHUNK_BYTES", 4_000_000)     # LeNet: about 240 KB a probe, 15 MB for 64
    monkeypatch.setattr(exchange, "peer_chunk", lambda *a, **k: 1)        # the same peer chunk in both runs
    splits = []
    real = exchange.probe_chunk
    monkeypatch.setattr(exchange, "probe_chunk", lambda *a, **k: splits.append(real(*a, **k)) or splits[-1])
    spied = spy_probes(monkeypatch, probe_round if protocol == "cfd" else distill)
    split = tallysim.drive(cfg)
    split.step()
    assert splits and splits[-1] == 17, splits
    monkeypatch.setattr(exchange, "probe_chunk", lambda probes, *a, **k: probes)       # every probe at once
    whole = tallysim.drive(cfg)
    whole.step()
    assert len(spied) == 2
    (x_a, target_a, weight_a), (x_b, target_b, weight_b) = spied
    np.testing.assert_array_equal(x_a, x_b)
    np.testing.assert_array_equal(weight_a, weight_b)
    assert split.bits() == whole.bits()
    if protocol == "softlabel":
        # 32-bit soft labels: XLA:CPU's matmuls block their reductions by the batch's size, so a slice of
        # 17 probes rounds a logit's last bit differently from all 64 at once (as a peer chunk's float
        # sums differ in summation order): the same labels to float32 rounding, the same argmax
        print("softlabel: max |split - whole| of the targets", float(np.abs(target_a - target_b).max()))
        np.testing.assert_allclose(target_a, target_b, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(target_a.argmax(-1), target_b.argmax(-1))
        return
    np.testing.assert_array_equal(target_a, target_b)          # the votes (cfd: the quantised labels)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 split.state.params, whole.state.params)
