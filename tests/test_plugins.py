"""Protocols outside the package (tallysim/protocols/__init__.py): examples/fedmix.py, loaded as a
plugin, runs in a grouped sweep over its own hyperparameter and on 8 virtual devices with the numbers
of one device; the file it writes finds the plugin again; a plugin that cannot load, or takes a name
already taken, is one line. The runs happen in subprocesses: a loaded plugin stays registered for the
process, and 8 devices need XLA_FLAGS before JAX starts."""
import json
import os
import re
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from conftest import TINY

from tallysim import protocols
from tallysim.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _env(**extra):
    path = os.pathsep.join([str(ROOT), str(EXAMPLES), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, JAX_PLATFORMS="cpu", **extra)


def test_a_plugin_that_cannot_load_is_one_line(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"plugin 'no_such_module_here' cannot be imported \(ModuleNotFoundError"):
        protocols.load_plugin("no_such_module_here")
    with pytest.raises(ConfigError, match="plugin 'json' defines no PROTOCOLS"):
        protocols.load_plugin("json")
    (tmp_path / "clash_plugin.py").write_text('PROTOCOLS = {"fedavg": "make"}\n\ndef make(ctx):\n    pass\n')
    (tmp_path / "broken_plugin.py").write_text("import numpy\nraise RuntimeError('the plugin broke')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"plugin 'clash_plugin': protocol.name='fedavg' is already taken"):
        protocols.load_plugin("clash_plugin")
    with pytest.raises(ConfigError, match=r"cannot be imported \(RuntimeError: the plugin broke\)"):
        protocols.load_plugin("broken_plugin")
    assert "fedavg" in protocols.names() and protocols.factory("fedavg").__module__ == "tallysim.protocols.fedavg"
    out = subprocess.run([sys.executable, "-m", "tallysim", "run", "--plugin", "no_such_module_here", "--out",
                          str(tmp_path / "r")], capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "no_such_module_here" in out.stderr


def test_run_help_lists_a_plugins_fields():
    out = subprocess.run([sys.executable, "-m", "tallysim", "run", "--plugin", "fedmix", "--help"], capture_output=True,
                         text=True, env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if x.split()[:1] == ["fedmix.mix"])
    assert line.split()[1] == "0.5" and line.rstrip().endswith("(0, 1]"), line
    assert "fedmix" in next(x for x in out.stdout.splitlines() if x.split()[:1] == ["protocol.name"])


def test_an_entry_point_plugin_is_found_without_being_named(tmp_path):
    # a distribution's entry point in the group tallysim.protocols, as `pip install` would write it
    dist = tmp_path / "fedmix_dist-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fedmix-dist\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tallysim.protocols]\nfedmix = fedmix:make\n")
    script = textwrap.dedent("""
        import sys
        from tallysim import config
        cfg = config.validate(config.apply_overrides(config.Config(), ["protocol.name=fedmix", "fedmix.mix=0.25"]))
        assert cfg.fedmix.mix == 0.25 and "plugins" not in config.to_dict(cfg)
        assert "jax" not in sys.modules or "fedmix" in sys.modules
        print("ok")
    """)
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


SWEEP = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from tallysim import cli, config
    from tallysim.results.metrics import read_rows
    out, tiny = Path(sys.argv[1]), sys.argv[2:]
    for devices in (1, 8):
        rc = cli.main(["sweep", "--plugin", "fedmix", "--progress", "lines", "--out", str(out / f"d{devices}"), *tiny,
                       "protocol.name=fedmix", "fedmix.mix=0.5,1", "peers=8", f"devices={devices}", "rounds=2"])
        assert rc == 0, rc
    rc = cli.main(["run", "--quiet", "--out", str(out / "fedavg"), *tiny, "protocol.name=fedavg", "peers=8",
                   "devices=1", "rounds=2"])
    assert rc == 0, rc
    rows = {}
    for d in sorted(out.glob("d*/*/")):
        rows[str(d.relative_to(out))] = [{k: v for k, v in r.items() if k != "wall_s"} for r in read_rows(d)]
    rows["fedavg"] = [{k: v for k, v in r.items() if k != "wall_s"} for r in read_rows(out / "fedavg")]
    print(json.dumps(rows))
""")


def test_example_plugin_in_a_grouped_sweep_on_one_and_eight_devices(tmp_path):
    from conftest import assert_rows_close
    out = subprocess.run([sys.executable, "-c", SWEEP, str(tmp_path), *TINY], capture_output=True, text=True,
                         env=_env(XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8"), timeout=900, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert out.stdout.count("2 runs as one program") == 2, out.stdout[-3000:]   # grouped over fedmix.mix
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    names = sorted(k.split("/", 1)[1] for k in rows if k.startswith("d1/"))
    assert len(names) == 2 and names == sorted(k.split("/", 1)[1] for k in rows if k.startswith("d8/"))
    close = ("acc_mean", "acc_min", "acc_max", "acc_global", "acc_ensemble", "train_loss")
    exact = ("round", "bits_up", "bits_down", "bits_per_peer")
    for name in names:                       # 8 devices (peers sharded, rounds_P too): one device's numbers
        assert_rows_close(rows[f"d1/{name}"], rows[f"d8/{name}"], name, exact, close)
    full = next(n for n in names if n.endswith("=1"))
    half = next(n for n in names if n.endswith("=0.5"))
    assert_rows_close(rows["fedavg"], rows[f"d1/{full}"], "mix=1 is FedAvg", exact, close)
    assert rows[f"d1/{half}"][-1]["acc_global"] != rows[f"d1/{full}"][-1]["acc_global"]
    assert rows[f"d8/{half}"][-1]["fedmix_min_rounds"] == 2 and "fedmix_min_rounds" not in rows["fedavg"][-1]
    run_dir = tmp_path / "d8" / half
    doc = json.loads((run_dir / "config.json").read_text())
    assert doc["plugins"] == ["fedmix"] and doc["fedmix"] == {"mix": 0.5}
    # the plugin's source as it ran (sweep_plan.plugin_edits: a sweep run again after an edit says so)
    assert doc["code"]["plugins"] == {"fedmix": f"crc32:{zlib.crc32((EXAMPLES / 'fedmix.py').read_bytes()):08x}"}
    assert "sharded over 8 devices" in doc["placement"], doc["placement"]
    # the run's own config.json, read in a fresh process without --plugin (as --resume reads it)
    check = ("import sys; from tallysim import config; c = config.validate(config.load_file(sys.argv[1])); "
             "assert c.protocol.name == 'fedmix' and c.fedmix.mix == 0.5; print('ok')")
    again = subprocess.run([sys.executable, "-c", check, str(run_dir / "config.json")], capture_output=True,
                           text=True, env=_env(), timeout=120)
    assert again.stdout.strip() == "ok", again.stderr[-2000:]


SHARP = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from tallysim import cli
    from tallysim.results.metrics import read_rows
    out, tiny = Path(sys.argv[1]), sys.argv[2:]
    assert cli.main(["sweep", "--plugin", "softsharp", "--progress", "lines", "--out", str(out / "sharp"), *tiny,
                     "protocol.name=softsharp", "softsharp.tau=0.5,1", "rounds=1"]) == 0
    assert cli.main(["run", "--quiet", "--out", str(out / "soft"), *tiny, "protocol.name=softlabel", "rounds=1"]) == 0
    rows = {d.name: read_rows(d) for d in (out / "sharp").iterdir() if d.is_dir()}
    rows["softlabel"] = read_rows(out / "soft")
    import numpy as np, softsharp
    t = np.array([[0.5, 0.3, 0.2, 0.0]], np.float32)
    want = t ** 2 / (t ** 2).sum()                       # tau=0.5: squared, renormalised; zeros stay
    np.testing.assert_allclose(np.asarray(softsharp.sharpen(t, 0.5)), want, rtol=1e-5, atol=1e-7)
    print(json.dumps(rows))
""")


def test_distillation_example_plugin_runs_and_tau_1_is_softlabel(tmp_path):
    """examples/softsharp.py, the distillation-type example (issue 30): one tiny round of a grouped
    sweep over its own knob; tau=1 gives softlabel's numbers and bits, tau=0.5 trains differently."""
    from conftest import assert_rows_close
    out = subprocess.run([sys.executable, "-c", SHARP, str(tmp_path), *TINY], capture_output=True, text=True,
                         env=_env(), timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "2 runs as one program" in out.stdout, out.stdout[-2000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    one, half = rows["softsharp.tau=1"], rows["softsharp.tau=0.5"]
    assert_rows_close(rows["softlabel"], one, "tau=1 is softlabel", ("round", "bits_up", "bits_down", "bits_per_peer"),
                      ("acc_mean", "acc_min", "acc_max", "acc_ensemble", "train_loss", "vote_acc", "softavg_acc"))
    assert half[-1]["bits_per_peer"] == one[-1]["bits_per_peer"] > 0
    assert half[-1]["train_loss"] != one[-1]["train_loss"]


# ----------------------------------------------------------------------------- hostile plugins (issue 30)
# Each is one line naming the plugin and what is expected, never a traceback; nothing is registered.

HOSTILE = {
    "exits": ("import sys\nsys.exit(0)\n", r"'exits' cannot be imported \(SystemExit: 0\)"),
    "rewrites": ("from tallysim import protocols\nprotocols.REGISTRY['fedavg'] = 'local_only:make'\n"
                 "PROTOCOLS = {'rw': 'make'}\ndef make(ctx):\n    pass\n",
                 r"plugin 'rewrites' changed tallysim.protocols.REGISTRY \(fedavg\)"),
    "rebinds": ("from tallysim import protocols\nprotocols.REGISTRY = {'fedavg': 'local_only:make'}\n"
                "PROTOCOLS = {'rb': 'make'}\ndef make(ctx):\n    pass\n",
                r"plugin 'rebinds' changed tallysim.protocols.REGISTRY"),
    "dict_traits": ("PROTOCOLS = {'dt': 'make'}\nTRAITS = {'fedavg_family': True}\ndef make(ctx):\n    pass\n",
                    r"plugin 'dict_traits': TRAITS is dict .*expected tallysim.protocols.Traits"),
}
SECTION = ("from dataclasses import dataclass\nfrom tallysim.protocols import Traits\nfrom tallysim.fields import floats\n"
           "PROTOCOLS = {{'{name}': 'make'}}\nTRAITS = Traits(sections={{'{section}': 'Sec'}})\n"
           "@dataclass(frozen={frozen})\nclass Sec:\n    x: {ann} = {default}\ndef make(ctx):\n    pass\n")
for i, (section, frozen, ann, default, match) in enumerate([
        ("optim", True, "float", "floats(0.1, '(0, 1]')", r"names 'optim', which is a built-in config section or field"),
        ("peers", True, "float", "floats(0.1, '(0, 1]')", r"names 'peers', which is a built-in config section or field"),
        ("plugins", True, "float", "floats(0.1, '(0, 1]')", r"names 'plugins', which is a built-in"),
        ("fedavgm", True, "float", "floats(0.1, '(0, 1]')", r"names 'fedavgm', which is protocol fedavgm's section"),
        ("mine", True, "float", "0.1", r"mine.x is a number without bounds; declare it with tallysim.fields.floats"),
        ("mine", True, "list", "None", r"mine.x is annotated .*list"),
        ("mine", False, "float", "floats(0.1, '(0, 1]')", r"is not a frozen dataclass")]):
    HOSTILE[f"section_{i}"] = (SECTION.format(name=f"s{i}", section=section, frozen=frozen, ann=ann, default=default),
                               match)


@pytest.mark.parametrize("module", sorted(HOSTILE))
def test_a_hostile_plugin_is_refused_in_one_line_at_load(module, tmp_path, monkeypatch):
    source, match = HOSTILE[module]
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    before, names = dict(protocols.REGISTRY), protocols.names()
    with pytest.raises(ConfigError, match=match) as e:
        protocols.load_plugin(module)
    assert "\n" not in str(e.value)
    assert protocols.REGISTRY == before and protocols.names() == names       # restored, nothing registered
    assert protocols.factory("fedavg").__module__ == "tallysim.protocols.fedavg"


BAD_ROUNDS = textwrap.dedent("""
    import jax
    from tallysim.protocols import local_only
    from tallysim import protocols
    PROTOCOLS = {"no_info": "no_info", "reshaped": "reshaped", "bad_cost": "bad_cost", "not_protocol": "not_protocol",
                 "rewrites_late": "rewrites_late"}

    def no_info(ctx):
        p = local_only.make(ctx)
        return p._replace(round=lambda s, d, k, r: (p.round(s, d, k, r)[0], {}))

    def reshaped(ctx):
        p = local_only.make(ctx)
        def round_fn(s, d, k, r):
            s, info = p.round(s, d, k, r)
            return s._replace(params=jax.tree.map(lambda a: a[:1], s.params)), info
        return p._replace(round=round_fn)

    def bad_cost(ctx):
        def cost(info):
            raise KeyError("bits")
        return local_only.make(ctx)._replace(cost=cost)

    def not_protocol(ctx):
        return {"init": None}

    def rewrites_late(ctx):
        protocols.REGISTRY["fedavg"] = "local_only:make"
        return local_only.make(ctx)
""")


def test_a_plugins_round_info_and_cost_are_checked_in_one_line(tmp_path):
    # one process for the four (a loaded plugin stays registered); refused while the round is traced
    (tmp_path / "bad_rounds.py").write_text(BAD_ROUNDS)
    script = textwrap.dedent("""
        import sys
        from tallysim import cli
        for name in ("no_info", "reshaped", "bad_cost", "not_protocol", "rewrites_late"):
            rc = cli.main(["run", "--quiet", "--plugin", "bad_rounds", "--out", sys.argv[1] + "/" + name,
                           f"protocol.name={name}", *sys.argv[2:], "rounds=1"])
            print("rc", rc, file=sys.stderr)
        from tallysim import protocols
        assert protocols.REGISTRY["fedavg"] == "fedavg:make", protocols.REGISTRY    # restored
    """)
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path), *TINY], capture_output=True, text=True,
                         env=_env(), timeout=600, cwd=tmp_path)
    lines = [x for x in out.stderr.splitlines() if x.startswith(("tallysim: error", "rc"))]
    assert out.returncode == 0 and len(lines) == 10 and lines[1::2] == ["rc 2"] * 5, out.stderr[-3000:]
    for line, want in zip(lines[::2], ["round's info lacks train_loss, steps_real, steps_computed; expected scalars",
                                       r"round returned a state unlike the one it was given \(.*\(4, 32\) float32 "
                                       r"became \(1, 32\)",
                                       "cost\\(info\\) raised KeyError: 'bits'; expected .*RoundBits",
                                       "its factory returned dict; expected .*Protocol"]):
        assert re.search(r"protocol '\w+' \(plugin 'bad_rounds'\): " + want, line), line
    assert re.search(r"protocol 'rewrites_late''s factory \(bad_rounds:rewrites_late\) changed "
                     r"tallysim.protocols.REGISTRY \(fedavg\)", lines[8]), lines[8]


def test_a_broken_entry_point_does_not_stop_the_built_ins(tmp_path):
    # three installed packages' entry points: a module that fails on import, a name already taken, a
    # malformed value. A built-in still validates (one warning each on stderr); naming one is one line.
    for dist, line in (("broken", "broken_one = broken_ep:make"), ("clash", "fedavg = json:loads"),
                       ("malformed", "malformed_one = nocolon")):
        d = tmp_path / f"{dist}_dist-0.1.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\\nName: {dist}-dist\\nVersion: 0.1\\n")
        (d / "entry_points.txt").write_text(f"[tallysim.protocols]\n{line}\n")
    (tmp_path / "broken_ep.py").write_text("raise ImportError('a missing dependency')\n")
    script = textwrap.dedent("""
        from tallysim import config
        cfg = config.validate(config.apply_overrides(config.Config(), ["protocol.name=fedavg", "peers=3"]))
        assert cfg.protocol.name == "fedavg"
        print("ok")
        try:
            config.validate(config.apply_overrides(config.Config(), ["protocol.name=broken_one"]))
        except config.ConfigError as e:
            print("refused:", e)
    """)
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.splitlines()[0] == "ok", out.stderr[-2000:]
    assert re.search(r"refused: protocol.name='broken_one' cannot be used: plugin 'broken_ep' cannot be "
                     r"imported \(ImportError: a missing dependency\)", out.stdout), out.stdout
    warnings = out.stderr.strip().splitlines()
    assert len(warnings) == 3 and all(w.startswith("tallysim: warning: ") for w in warnings), out.stderr
    assert any("fedavg" in w and "already taken" in w for w in warnings), warnings
    assert any("malformed_one" in w and "module:factory" in w for w in warnings), warnings


def test_overwrite_refuses_an_unmarked_folder_before_importing_a_plugin(tmp_path, monkeypatch, capsys):
    from tallysim import cli
    (tmp_path / "loud_plugin.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\nPROTOCOLS = {{}}\n")
    (tmp_path / "loud.json").write_text('{"plugins": ["loud_plugin"]}')
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own")
    for argv in (["--plugin", "loud_plugin"], ["--config", str(tmp_path / "loud.json")]):
        assert cli.main(["run", *argv, "--out", str(mine), "--overwrite"]) == 2
        assert "refusing to replace" in capsys.readouterr().err
    assert not (tmp_path / "imported").exists() and (mine / "notes.txt").read_text() == "the user's own"
