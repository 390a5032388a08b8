"""userjourney8: a federated-learning researcher asks whether the vote still wins with peers of different
architectures in a cross-device population (model.groups with participation < 1), with a protocol of
their own written as a plugin, as docs/write-a-protocol.md describes.

Fast tests of what the journey hit; each fails without its fix. The grouped shapes are tests/test_groups.py's
GROUPED_STREAM "cohort" (two MLP groups of widths 16 and 8) on conftest's TINY: no new model shape.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TINY_NO_WARMUP, tiny

from tallysim import validation
from tallysim.config import ConfigError
from tallysim.results.headline import summary_line

ROOT = Path(__file__).resolve().parents[1]
COHORT = ["peers=5", "model.groups=a:3:mlp,width=16;b:2:mlp,width=8", "participation=0.6", "model.width=200"]


def _env():
    path = os.pathsep.join([str(ROOT), str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, JAX_PLATFORMS="cpu")


# A plugin is loaded in a child process: it registers protocols for the whole process.
PLUGIN_IN_GROUPS = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from tallysim import cli, validation
    from tallysim.config import ConfigError, apply_overrides, Config
    from tallysim.results.metrics import read_rows
    import tallysim
    out, tiny = Path(sys.argv[1]), sys.argv[2:]
    tallysim.load_plugin("gatedvote")               # a vote-type example whose round handles no groups
    try:
        validation.validate(apply_overrides(Config(), tiny + ["protocol.name=gatedvote"]))
        refused = ""
    except ConfigError as e:
        refused = str(e)
    assert cli.main(["run", "--quiet", "--plugin", "softsharp", "--out", str(out / "sharp"), *tiny,
                     "protocol.name=softsharp", "softsharp.tau=1"]) == 0
    assert cli.main(["run", "--quiet", "--out", str(out / "soft"), *tiny, "protocol.name=softlabel"]) == 0
    print(json.dumps({"refused": refused, "sharp": read_rows(out / "sharp"), "soft": read_rows(out / "soft")}))
""")


def test_a_plugin_that_declares_model_groups_runs_in_groups_and_one_that_does_not_is_told_how(tmp_path):
    """The journey's plugin (softlabel's distill_round with another loss, as examples/softsharp.py) was
    refused in any group: "protocol.name=... does not work with model.groups yet; ... (parameter averaging
    across architectures is not defined)", which it does not do, and nothing said how a plugin could run
    groups. Now TRAITS(model_groups=True) declares it; softsharp does, and at tau=1 in a cohort of two
    architectures it is softlabel's grouped run number for number; a plugin without it is told the trait."""
    from conftest import assert_rows_close
    # without TINY's model.width=32, which no group reads (each sets its own width): refused
    tiny_items = [t for t in TINY_NO_WARMUP if t != "model.width=32"] + COHORT + ["rounds=1"]
    out = subprocess.run([sys.executable, "-c", PLUGIN_IN_GROUPS, str(tmp_path), *tiny_items],
                         capture_output=True, text=True, env=_env(), timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert "model_groups=True" in got["refused"] and "parameter averaging" not in got["refused"], got["refused"]
    assert_rows_close(got["soft"], got["sharp"], "softsharp tau=1 in groups is softlabel",
                      ("round", "bits_up", "bits_down", "bits_per_peer", "bits_up@a", "bits_up@b"),
                      ("acc_mean", "acc_mean@a", "acc_mean@b", "acc_ensemble", "train_loss"))


@pytest.mark.parametrize("protocol", ["fedavg", "bridge"])
def test_parameter_averaging_protocols_are_still_refused_for_averaging(protocol):
    """The new advice is for prediction exchangers only: FedAvg averages and the bridge merges parameters."""
    with pytest.raises(ConfigError, match="parameter averaging across architectures is not defined"):
        validation.validate(tiny(f"protocol.name={protocol}", *COHORT))


def test_the_summary_line_of_a_grouped_cohort_gives_mb_per_active_client():
    """A cross-device run with model.groups printed only "MB per peer", a share of every client's, while a
    one-model run beside it gave the MB per active client too. Groups draw A_g = round(0.6 * P_g): 2 of 3
    and 1 of 2, so 3 of 5 a round (not round(0.6 * 5) = 3 by luck: 0.5 below shows the sum)."""
    last = {"round": 2, "bits_per_peer": 1000.0, "wall_s": 1.0, "acc_mean": 0.5, "acc_global": None,
            "acc_ensemble": 0.5}
    line = summary_line(tiny("protocol.name=tally", *COHORT), last)
    assert f"({1000 * 5 / 3 / 2 / 8e6:.4g} MB per active client and round, 3 of 5 a round)" in line, line
    # participation 0.5: groups of 3 and 2 draw round(1.5) = 2 and 1 (half to even): 3, where the
    # one-model count round(2.5) = 2 would be wrong
    half = tiny("protocol.name=tally", *COHORT, "participation=0.5")
    assert "3 of 5 a round" in summary_line(half, last), summary_line(half, last)
    every = tiny("protocol.name=tally", *COHORT, "participation=0.9")   # 3 of 3 and 2 of 2: nothing to add
    assert "active client" not in summary_line(every, last)


def test_prepare_help_says_where_the_data_goes(capsys):
    """`tallysim prepare --help` named neither the cache nor Debian's files (only `tallysim --help` did):
    the journey's first step, preparing Fashion-MNIST, had to guess where it went."""
    from tallysim import cli
    with pytest.raises(SystemExit):
        cli.main(["prepare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "~/.cache/tallysim" in text and "$TALLYSIM_DATA" in text and "Debian" in text, text


def test_the_plot_title_says_cohort_and_groups():
    """`tallysim plot` of the journey's runs (12 peers, 6 a round, a phone and a server group) was titled
    "fashion_mnist, Dirichlet 0.5, 12 peers", as a one-model run with every peer active."""
    from tallysim.results import plot
    cfg = {"data": {"name": "fashion_mnist"}, "partition": {"kind": "dirichlet", "alpha": 0.5}, "peers": 12,
           "participation": 0.5, "model": {"groups": "phone:8:mlp,width=32;server:4:lenet,optim.lr=0.02"}}
    assert plot.default_title([cfg, cfg]) == ("fashion_mnist, Dirichlet 0.5, 12 peers, participation 0.5, "
                                              "groups phone/server")
    one = {**cfg, "participation": 1.0, "model": {"groups": None}}
    assert plot.default_title([one]) == "fashion_mnist, Dirichlet 0.5, 12 peers"
    assert plot.default_title([cfg, one]) == "fashion_mnist, Dirichlet 0.5, 12 peers"   # they differ: not said


def test_a_dead_peer_of_a_grouped_run_is_named_with_its_group():
    """The journey's tally run warned "peer 10 (1 of 12 peers) stayed at or below the floor": in a run of
    MLP phones (peers 0-7) and LeNet servers (8-11) which architecture it was took reading the groups'
    order. Rows as a run writes them (two evaluations, per-peer accuracies), the config as config.json."""
    from tallysim.results import dead_peers
    acc = [0.3] * 10 + [0.1, 0.3]
    rows = [{"round": r, "acc_mean": sum(acc) / 12, "acc_global": None, "acc_peers": acc} for r in (1, 2, 3)]
    config = {"peers": 12, "participation": 0.5, "model": {"groups": "phone:8:name=mlp,width=32;server:4:name=lenet"}}
    dead = dead_peers.find(rows, 0.1, groups=(("phone", 8), ("server", 4)))
    assert dead.names == ["peer 10 of group server"], dead.names
    assert "peer 10 of group server (1 of 12 peers)" in dead_peers.warning(dead)
    assert dead_peers.find(rows, 0.1).names == ["peer 10"]                      # no groups: as before
    import json, tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:       # of_run reads the groups from config.json's string
        Path(d, "partition.json").write_text(json.dumps({"majority_acc": 0.1, "classes": 10}))
        got = dead_peers.of_run(d, rows, config)
    assert got is not None and got.names == ["peer 10 of group server"], got
