"""leftovers58: a vote's diagnostic rule where the protocol does not read vote.* (topk_soft), `tallysim plot`
naming its .csv, and the Makefile's refusal to reinstall into another checkout's venv."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import jax
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import tiny_no_warmup  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def topk_soft_run():
    """A built topk_soft run (4 untrained peers with their own inits: many tied votes on 64 probes)."""
    from tallysim import build
    b = build.build(tiny_no_warmup("protocol.name=topk_soft", "rounds=1"))
    state = b.ctx.init_state(jax.random.PRNGKey(0), b.one, False)
    return b.ctx, state, b.one


def _exchange(ctx, state, data, ties, seed):
    from tallysim.protocols import base, topk_soft
    from tallysim.protocols.round_helpers import round_keys
    # as a sweep's topk_soft run has them (a single run refuses the fields: config_reads)
    vote_, cfg = copy.copy(ctx.cfg.vote), copy.copy(ctx.cfg)
    object.__setattr__(vote_, "ties", ties)
    object.__setattr__(vote_, "min_margin", 0.5)
    object.__setattr__(cfg, "vote", vote_)
    run = copy.copy(ctx)
    object.__setattr__(run, "cfg", cfg)
    keys = round_keys(jax.random.PRNGKey(0), 0)._replace(tie=jax.random.PRNGKey(seed))
    _, info = base.probe_exchange(run, state, data, keys, None, False,
                                  sent_fn=lambda p: topk_soft.message(p, 1, 8),
                                  target_fn=lambda t: topk_soft.message(t, 1, 8))
    return float(info["vote_acc"]), float(info["tied"])


def test_topk_soft_vote_acc_breaks_ties_by_its_own_rule_whatever_a_sweep_sets_vote_ties(topk_soft_run):
    # A sweep keeps vote.ties in every run where some run reads it: `protocol.name=tally,topk_soft
    # vote.ties=random` broke the ties of topk_soft's vote_acc at random (its training and bits untouched).
    # topk_soft reads no vote.* field: its vote is the plurality, lowest class on a tie (its docstring).
    # kills: base.probe_exchange's tally reading cfg.vote.ties (and min_margin) for a protocol that does
    # not read them
    ctx, state, data = topk_soft_run
    lowest, tied = _exchange(ctx, state, data, "lowest", 0)
    assert tied > 0.2, tied                          # enough ties for a random break to move vote_acc
    assert [_exchange(ctx, state, data, "random", s)[0] for s in range(4)] == [lowest] * 4


def test_vote_rule_keeps_each_field_where_the_protocol_reads_it():
    from types import SimpleNamespace
    from tallysim import config
    from tallysim.protocols.probe_targets import vote_rule
    items = ["vote.ties=random", "vote.min_agreement=0.5", "vote.min_margin=0.25"]
    expect = {"tally": ("random", 0.5, 0.25), "bridge": ("random", 0.5, 0.25), "fedct": ("random", 0.5, 0.25),
              "softlabel": ("random", 0.0, 0.0), "topk_soft": ("lowest", 0.0, 0.0), "cfd": ("lowest", 0.0, 0.0)}
    for name, want in expect.items():
        cfg = config.apply_overrides(config.Config(), [f"protocol.name={name}", *items])
        ctx = SimpleNamespace(cfg=cfg, hp=lambda key, cfg=cfg: getattr(cfg.vote, key.split(".")[1]))
        assert tuple(vote_rule(ctx)) == want, name


def test_plot_prints_the_csv_it_writes_beside_the_image(tmp_path, capsys):
    # `tallysim plot` printed the .png alone; the .csv beside it (every point drawn) went unnamed, where
    # pareto prints every file it writes, one a line. kills: cli_commands.cmd_plot printing the image only
    from conftest import hand_run
    from tallysim import cli
    d = hand_run(tmp_path / "a", "tally", {0: [0.3, 0.4]})
    out = tmp_path / "fig" / "p.png"
    assert cli.main(["plot", str(d), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [str(out), str(out.with_suffix(".csv"))]
    assert out.is_file() and out.with_suffix(".csv").is_file()


# ----------------------------------------------------------------------------- the Makefile's VENV

def _fake_venv(root: Path, source) -> Path:
    """A venv-shaped folder whose tallysim is installed editable from `source` (None: no tallysim), its
    stamp older than pyproject.toml (so make would reinstall)."""
    import json
    import os
    site = root / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    if source is not None:
        meta = site / "tallysim-0.1.0.dist-info"
        meta.mkdir()
        (meta / "direct_url.json").write_text(json.dumps({"dir_info": {"editable": True},
                                                          "url": Path(source).resolve().as_uri()}))
    (root / ".installed").touch()
    os.utime(root / ".installed", (0, 0))
    return root


def _make(tmp_path: Path, target: str, venv) -> "subprocess.CompletedProcess":
    """`make TARGET VENV=venv` in this checkout for real, its PY a stand-in that runs venv_owner.py with the
    real Python and only says what else it was asked (`RAN ...`, exit 1), so nothing is ever installed."""
    import subprocess
    py = tmp_path / "py"
    py.write_text(f'#!/bin/sh\nif [ "$1" = tallysim/venv_owner.py ]; then exec {sys.executable} "$@"; fi\n'
                  'echo "RAN $*"; exit 1\n')
    py.chmod(0o755)
    args = ["make", "--no-print-directory", target, f"PY={py}"] + ([] if venv is None else [f"VENV={venv}"])
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("target", ["data", "docs"])
def test_make_refuses_to_reinstall_into_a_venv_another_checkout_installed_editable(tmp_path, target):
    # `make demo VENV=/other/project/.venv` from a fresh clone re-ran `pip install -e .` there (the clone's
    # pyproject.toml is newer than that venv's stamp) and re-pointed the other checkout's editable install
    # at the clone, in silence. kills: the Makefile's VENV_GUARD (the stamp rule installing first)
    other = tmp_path / "other"
    other.mkdir()
    venv = _fake_venv(tmp_path / "venv", other)
    p = _make(tmp_path, target, venv)
    assert p.returncode != 0 and "RAN" not in p.stdout, (p.stdout, p.stderr)
    line = [x for x in p.stderr.splitlines() if x.startswith("make: VENV=")]
    assert line and f"installed editable from {other.resolve()}" in line[0] and str(ROOT) in line[0], p.stderr
    assert "leave VENV unset" in line[0]


@pytest.mark.parametrize("source", [None, ROOT])
def test_make_still_installs_into_a_venv_without_tallysim_or_with_this_checkouts(tmp_path, source):
    p = _make(tmp_path, "data", _fake_venv(tmp_path / "venv", source))
    assert f"RAN -m venv {tmp_path / 'venv'}" in p.stdout.splitlines(), (p.stdout, p.stderr)   # the check passed
    assert "make: VENV=" not in p.stderr


def test_make_with_its_own_venv_runs_no_check():
    # the default .venv (and .ci/run, which uses it) is installed as before: no venv_owner.py line
    import subprocess
    for venv in ([], ["VENV=.venv"], [f"VENV={ROOT / '.venv'}"]):
        out = subprocess.run(["make", "-n", "--no-print-directory", "-B", "demo", "docs", *venv], cwd=ROOT,
                             capture_output=True, text=True, timeout=60).stdout
        assert "venv_owner" not in out and "pip install -q -e '.[dev]'" in out, out
