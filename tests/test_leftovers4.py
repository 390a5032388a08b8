"""Leftovers noticed by the Dec 5 helpers: read_rows skips a corrupt run as `table` does, the Makefile's
figure targets pass ARGS through, a figure named twice runs once, the probe exchange's chunk counts the
forward pass over its probes (as evaluation's batch does)."""
from __future__ import annotations

import argparse
import subprocess
import warnings
from pathlib import Path

import pytest

from tallysim import figures, sizing
from tallysim.config import ConfigError
from tallysim.results.runs import read_rows

ROOT = Path(__file__).resolve().parent.parent

from test_userpath import sweep, _row, _write_run  # noqa: E402,F401 - the four-run sweep fixture


# ------------------------------------------------------------------- read_rows and a corrupt run

def _tear(sweep_dir):
    bad = sweep_dir / "protocol.name=tally__partition.alpha=1.0" / "metrics.jsonl"
    bad.write_text(bad.read_text() + '{"round": 3, "bits_\n')     # a corrupt line (a last one without its
    # newline is a row being written: read_rows reads the rows before it, tests/test_hostile_dec19e.py)
    return bad


def test_read_rows_skips_a_corrupt_run_with_one_warning_naming_it(sweep):
    _tear(sweep)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = read_rows(sweep)
    assert len(rows) == 6                                         # the 3 readable runs x 2 evaluations
    assert "protocol.name=tally__partition.alpha=1.0" not in {r["run"] for r in rows}
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1, msgs
    assert "skipping run protocol.name=tally__partition.alpha=1.0" in msgs[0] and "not valid JSON" in msgs[0]


def test_read_rows_strict_raises_on_a_corrupt_run(sweep):
    _tear(sweep)
    with pytest.raises(ConfigError, match="line 3 is not valid JSON"):
        read_rows(sweep, strict=True)


def test_read_rows_with_every_run_corrupt_says_so(tmp_path):
    d = _write_run(tmp_path / "one", [_row(1, 0.5, 100)], {"peers": 4})
    (d / "metrics.jsonl").write_text("{torn\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError, match="no readable run .* 1 run directory found could not be read"):
            read_rows(tmp_path)


# ------------------------------------------------------------------- make's figure targets and ARGS

@pytest.mark.parametrize("target, command", [("fig1", "tallysim figure fig1"),
                                             ("robustness", "tallysim figure robustness"),
                                             ("matched-bits", "tallysim figure experiments/matched_bits.json"),
                                             ("fig2-lenet", "tallysim figure experiments/fig2_lenet.json"),
                                             ("fig-participation", "tallysim figure experiments/fig_participation.json")])
def test_make_figure_targets_pass_args_through(target, command):
    out = subprocess.run(["make", "-n", target, "ARGS=--dry-run --one-at-a-time"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if command in ln)
    assert line.endswith("--progress lines --dry-run --one-at-a-time"), line
    plain = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert next(ln for ln in plain.splitlines() if command in ln).rstrip().endswith("--progress lines")


@pytest.mark.parametrize("args", ["--progress lines", "--one-at-a-time --progress=lines"])
def test_make_figure_targets_drop_quiet_for_progress(args):
    # `--quiet --progress lines` is refused as a contradiction, so docs/figures.md's
    # `make fig8 ARGS="--one-at-a-time --progress lines"` failed before the Makefile dropped --quiet here.
    out = subprocess.run(["make", "-n", "fig8", f"ARGS={args}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if "tallysim figure fig8" in ln)
    assert "--quiet" not in line and line.rstrip().endswith(args), line


def test_make_figure_targets_show_progress_lines_unless_args_chooses():
    """A figure target runs for minutes to hours: its default is plain progress lines, since `--quiet`
    now silences the per-run lines too (it printed nothing until the figure was written); ARGS=--quiet
    still silences it, without a contradicting --progress."""
    def line(*extra):
        out = subprocess.run(["make", "-n", "fig8", *extra], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
        return next(ln for ln in out.splitlines() if "tallysim figure fig8" in ln).rstrip()
    assert line().endswith("--progress lines")
    assert line("ARGS=--quiet").endswith("--quiet") and "--progress" not in line("ARGS=--quiet")
    assert line("ARGS=--progress bars").endswith("--progress bars")
    assert line("ARGS=--progress bars").count("--progress") == 1


def test_make_help_names_args():
    out = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "ARGS=" in out


# ------------------------------------------------------------------- a figure named twice

def _main_names(monkeypatch, names) -> list[str]:
    ran = []
    monkeypatch.setattr(figures, "make_figure", lambda n, **kw: ran.append(n))
    args = argparse.Namespace(figure=names, smoke=False, results="r", out="o", quiet=True, dry_run=False)
    assert figures.main(args) == 0
    return ran


def test_a_figure_named_as_name_and_as_file_runs_once(monkeypatch):
    path = str(Path(figures.FIGURES["fig1"]))
    assert _main_names(monkeypatch, ["fig1", path, "fig2", "fig1"]) == ["fig1", "fig2"]
    rel = Path(path).relative_to(Path.cwd()) if Path(path).is_relative_to(Path.cwd()) else Path(path)
    assert _main_names(monkeypatch, [str(rel), "fig1"]) == [str(rel)]


def test_unknown_names_stay_for_preflight_to_refuse():
    assert figures.unique_figures(["fig1", "nosuch", "nosuch"]) == ["fig1", "nosuch"]


# ------------------------------------------------------------------- the exchange chunk counts the forward pass

def _cnn_fact():
    """fig12's CNN on 28x28x1 images, traced (nothing compiled): (peak, input) bytes per example."""
    import jax
    import jax.numpy as jnp
    from tallysim import config as config_
    from tallysim.sim import activations
    from tallysim.sim.models import make_model
    m = make_model(config_.apply_overrides(config_.Config(), ["model.name=cnn"]).model, 10)
    params = jax.eval_shape(m.init, jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1), jnp.float32))
    fact = activations.per_example(m.apply, params, (28, 28, 1))
    return fact.peak, fact.input


def test_fig12_cnn_chunk_counts_its_forward_pass_over_1000_probes():
    peak, example = _cnn_fact()
    assert sizing.peer_chunk(10, 1000, 10) == 10                 # the logits alone: all 10 CNNs at once
    hidden = sizing.exchange_hidden_bytes(peak, example, 4 * 10, 1000)
    assert 10 * hidden > 10e9                                    # what that chunk's forward pass held
    assert sizing.peer_chunk(10, 1000, 10, hidden=hidden) == 1    # now: one CNN at a time
    # the same per-example count evaluation's batch uses, without the server's extra model
    assert hidden == int(sizing.FORWARD_SLACK * 1000 * sizing.forward_hidden(peak, example, 40))
    assert sizing.eval_hidden_bytes([(1, peak)], example, 40) == int(1.5 * 2 * sizing.forward_hidden(peak, example, 40))


def test_an_mlp_chunk_is_unchanged():
    """The demo's shape (20 MLP peers, 10 classes): its forward pass is small beside the budget."""
    assert sizing.peer_chunk(20, 1000, 10, hidden=sizing.exchange_hidden_bytes(4 * 1200, 4 * 784, 40, 1000)) == 20


@pytest.mark.parametrize("protocol, own", [
    ("tally", []),
    ("selective_fd", ["selective_fd.client_threshold=0", "selective_fd.server_threshold=0"]),  # all shared
])
def test_the_round_streams_by_the_model_chunk_and_votes_do_not_change(monkeypatch, fusion_emitters, protocol, own):
    """A LeNet round whose budget fits all 4 peers' logits but not their forward passes: the exchange
    streams fewer peers a chunk, and the round (votes, targets, bits, parameters) is the one of all 4
    peers at once (tally: bit for bit; selective_fd's float sums differ only in summation order)."""
    import jax
    import numpy as np
    import tallysim
    from tallysim import config as config_
    from tallysim.sim import exchange
    from conftest import TINY
    cfg = config_.apply_overrides(config_.Config(), [t for t in TINY if not t.startswith("model.width")] + [
        f"protocol.name={protocol}", "model.name=lenet", "data.input_shape=[28,28,1]", "rounds=1",
        "warmup_epochs=0", "local_steps=1", *own])
    monkeypatch.setattr(sizing, "CHUNK_BYTES", 4 * 64 * 10 * 4 * 4)      # the 4 peers' logits 4 times over
    seen = []
    real = exchange.peer_chunk
    monkeypatch.setattr(exchange, "peer_chunk", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    d = tallysim.drive(cfg)
    d.step()
    assert seen and seen[-1] < 4 and real(4, 64, 10) == 4, seen    # chunked by the forward pass now
    whole = tallysim.drive(cfg)
    monkeypatch.setattr(exchange, "peer_chunk", lambda peers, *a, **k: peers)      # every peer at once
    whole.step()
    assert d.bits() == whole.bits()
    same = np.testing.assert_array_equal if protocol == "tally" else (
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6))
    jax.tree.map(lambda a, b: same(np.asarray(a), np.asarray(b)), d.state.params, whole.state.params)
