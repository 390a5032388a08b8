"""Leftovers of 2026-12-06: FedNova's momentum normaliser with a carried buffer (refused), a field written
both dotted and nested in one mapping (refused), the seed-overlap warning from every entrance that runs
several configurations, the one path-type check (tallysim.run's `out` let bytes through), and what a
search for asserts and swallowed exceptions found (a plugin's field bounds, tfds's unreadable local copy).
Each case failed before its fix; the controls (`ok`) pass both. Nothing here compiles: a refusal runs
under `no_compile`, and the sweep and group tests stop the grouped program before it is built."""
import re

import numpy as np
import pytest

from tallysim import cli, config, validation  # noqa: F401  (imported before jit is patched)
from tallysim.config import ConfigError
from conftest import TINY, one_line, tiny

# ----------------------------------------------------------------------------- 1. FedNova's carried momentum

NOVA = ["protocol.name=fednova", "optim.momentum=0.9"]


def test_fednova_refuses_momentum_with_a_carried_buffer(tmp_path, capsys, no_compile):
    """It ran, normalising last round's momentum as if it were this round's gradients."""
    line = one_line(capsys, ["run", *TINY, *NOVA, "optim.reset_each_round=false", "--out", str(tmp_path / "o")])
    assert ("optim.reset_each_round=false with optim.momentum=0.9 is not allowed with protocol.name=fednova: "
            "its momentum normaliser a_i counts this round's gradients from a zero buffer") in line, line
    assert "allowed: optim.reset_each_round=true, or optim.momentum=0" in line, line
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match="optim.reset_each_round=false with optim.momentum=0.9"):
        config.validate(tiny(*NOVA, "optim.reset_each_round=false"))


@pytest.mark.parametrize("items", [                                                                      # ok
    NOVA, [*NOVA, "optim.reset_each_round=true"], ["protocol.name=fednova", "optim.momentum=0",
                                                   "optim.reset_each_round=false"],
    ["protocol.name=fednova", "optim.name=adam", "optim.momentum=0", "optim.reset_each_round=false"],
    ["protocol.name=fedavg", "optim.momentum=0.9", "optim.reset_each_round=false"],
])
def test_fednova_and_others_still_accept_the_rest(items):
    config.validate(tiny(*items))


def test_the_carried_buffer_is_an_offset_no_normaliser_scales():
    """The refusal's reason, against optax's SGD: with zero gradients tau steps from a buffer v move the
    model by lr rho (1 - rho^tau) / (1 - rho) v, whatever a_i divides it by afterwards."""
    import optax
    lr, rho, tau = 0.05, 0.9, 7
    tx = optax.sgd(lr, momentum=rho)
    v = np.array([1.0, -2.0, 0.5], np.float32)
    state = tx.init(np.zeros(3, np.float32))
    state = (state[0]._replace(trace=v),) + tuple(state[1:])
    moved = np.zeros(3, np.float32)
    for _ in range(tau):
        upd, state = tx.update(np.zeros(3, np.float32), state)
        moved += np.asarray(upd)
    np.testing.assert_allclose(-moved, lr * rho * (1 - rho ** tau) / (1 - rho) * v, rtol=1e-5)

# ----------------------------------------------------------------------------- 2. a field dotted and nested


@pytest.mark.parametrize("d, first, second", [
    ({"optim.lr": 0.1, "optim": {"lr": 0.2}}, "0.1", "0.2"),
    ({"optim": {"lr": 0.2}, "optim.lr": 0.1}, "0.2", "0.1"),
    ({"protocol": {"name": "fedavg"}, "protocol.name": "tally"}, "'fedavg'", "'tally'"),
])
def test_from_dict_refuses_a_field_written_dotted_and_nested(d, first, second):
    """The later spelling won in silence (config files refused it since hostile6; from_dict did not)."""
    key = "optim.lr" if "optim.lr" in d else "protocol.name"
    with pytest.raises(ConfigError) as e:
        config.from_dict(d, where="my dict")
    assert str(e.value) == (f"my dict: {key} is given twice ({first} and {second}), dotted and inside its "
                            "section; give each field once")


def test_a_file_extending_another_may_still_respell_its_field(tmp_path):                             # ok
    """merge keeps the child's value whichever spelling each file uses, so from_dict sees the field once."""
    import json
    (tmp_path / "base.json").write_text(json.dumps({"optim": {"lr": 0.2, "momentum": 0.5}}))
    (tmp_path / "dotted.json").write_text(json.dumps({"extends": "base.json", "optim.lr": 0.1}))
    (tmp_path / "base2.json").write_text(json.dumps({"optim.lr": 0.2}))
    (tmp_path / "nested.json").write_text(json.dumps({"extends": "base2.json", "optim": {"lr": 0.1}}))
    for name in ("dotted.json", "nested.json"):
        cfg = config.load_file(str(tmp_path / name))
        assert cfg.optim.lr == 0.1, name
    assert config.load_file(str(tmp_path / "dotted.json")).optim.momentum == 0.5
    assert config.merge({"optim": {"lr": 0.2}}, {"optim.lr": 0.1}) == {"optim": {}, "optim.lr": 0.1}
    (tmp_path / "both.json").write_text('{"optim.lr": 0.1, "optim": {"lr": 0.2}}')
    with pytest.raises(ConfigError, match=r"both.json': optim.lr is given twice \(0.1 and 0.2\)"):
        config.load_file(str(tmp_path / "both.json"))

# ----------------------------------------------------------------------------- 3. overlapping seeds, every entrance

SHARED = "seed=0 (seeds 0..1) and seed=1 (seeds 1..2) share seed 1: each run covers seed..seed + seeds - 1"


def _warnings(err: str) -> list:
    return [line for line in err.splitlines() if line.startswith("tallysim: warning:")]


@pytest.fixture
def group_stops(monkeypatch):
    """The grouped program raises before anything is built: the sweep records its runs as failed."""
    from tallysim import run

    def stop(*a, **k):
        raise RuntimeError("stopped before building (test)")
    monkeypatch.setattr(run, "_run_group", stop)


def test_the_python_api_sweep_warns_of_shared_seeds(tmp_path, capsys, group_stops):
    """`tallysim sweep` warned; sweep.run_sweep, the same sweep from Python, said nothing."""
    from tallysim import sweep
    runs = sweep.expand({}, ["seed=0,1"])
    records = sweep.run_sweep(tiny("seeds=2"), runs, tmp_path / "s", progress=False, log=lambda _: None)
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert _warnings(capsys.readouterr().err) == [f"tallysim: warning: sweep runs {SHARED}, so their results are "
                                                  "not independent; sweep seed with seeds=1, or drop the seed axis "
                                                  "and set seeds=N (one run of N seeds, mean and std)"]


def test_a_grouped_run_warns_of_shared_seeds(tmp_path, capsys, group_stops):
    from tallysim import run
    cfgs = [config.validate(tiny("seeds=2", f"seed={s}")) for s in (0, 1)]
    with pytest.raises(RuntimeError, match="stopped before building"):
        run.run_group(cfgs, [tmp_path / "a", tmp_path / "b"], progress=False)
    assert _warnings(capsys.readouterr().err) == [
        "tallysim: warning: grouped runs a (seeds 0..1) and b (seeds 1..2) share seed 1: each run covers seed..seed "
        "+ seeds - 1, so their results are not independent; give each run seeds=1, or run one of them with "
        "seeds=N (mean and std)"]
    with pytest.raises(RuntimeError):                                                    # ok: seeds 0 and 2
        run.run_group([cfgs[0], config.validate(tiny("seeds=2", "seed=2"))], [tmp_path / "a", tmp_path / "c"])
    assert not _warnings(capsys.readouterr().err)


@pytest.mark.parametrize("dry", [True, False])
def test_tallysim_sweep_warns_once(dry, tmp_path, capsys, group_stops):                                 # ok
    """Its batches go through run.run_group, which is told the sweep has warned already."""
    code = cli.main(["sweep", *TINY, "seeds=2", "seed=0,1", "--out", str(tmp_path / "s"), "--quiet",
                     *(["--dry-run"] if dry else [])])
    assert code == (0 if dry else 1)
    got = _warnings(capsys.readouterr().err)
    assert len(got) == 1 and SHARED in got[0], got

# ----------------------------------------------------------------------------- 4. one path-type check


def test_the_path_type_check_is_written_once():
    """config's and results' readers each wrote `isinstance(p, (str, os.PathLike)) and not bytes`, and
    tallysim.run's `out` wrote it without the bytes."""
    import pathlib
    import tallysim as pkg
    root = pathlib.Path(pkg.__file__).parent
    check = re.compile(r"isinstance\([^)]*os\.PathLike")
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if check.search(p.read_text()))
    assert written == ["fields.py"], written


@pytest.mark.parametrize("p, ok", [("runs", True), (__import__("pathlib").Path("runs"), True), (b"runs", False),
                                   (123, False), (None, False), (["runs"], False)])
def test_is_path(p, ok):
    from tallysim import fields
    assert fields.is_path(p) is ok


def test_each_reader_refuses_bytes_with_its_own_message(tmp_path, no_compile):
    import tallysim
    from tallysim.results import metrics
    with pytest.raises(ConfigError, match=r"^config file b'x.json' is bytes; expected a path \(str or pathlib.Path\)"):
        config.load_file(b"x.json")
    with pytest.raises(ConfigError, match=r"^b'runs' is bytes, not a path; allowed: a run directory as a str"):
        metrics.directory(b"runs")
    with pytest.raises(ConfigError, match=r"^b'runs' is bytes; allowed: a directory \(str or pathlib.Path\)"):
        metrics.directories(b"runs")
    # tallysim.run(out=b"runs") passed its argument check and compiled
    with pytest.raises(ConfigError, match=r"^tallysim.run\(out=b'runs'\): expected a directory path"):
        tallysim.run(tiny(), out=b"runs", progress=False)

# ----------------------------------------------------------------------------- 5. what a plugin declares, under -O

PLUGIN = ("from dataclasses import dataclass\nfrom tallysim.protocols import Traits\n"
          "from tallysim.fields import floats, ints\nPROTOCOLS = {{'{name}': 'make'}}\n"
          "TRAITS = Traits(sections={{'{name}': 'Sec'}})\n@dataclass(frozen=True)\nclass Sec:\n    x: {ann} = {decl}\n"
          "def make(ctx):\n    pass\n")


@pytest.mark.parametrize("ann, decl, match", [
    # asserted (gone under python -O: "{0, 1}" was then an open interval), or not checked at all: every
    # run of every protocol was then refused with "lo12.x=0.5 is out of range" once the plugin loaded
    ("float", "floats(0.5, '{0, 1}')", r"floats\(0.5, '\{0, 1\}'\): expected an interval written as the errors show"),
    ("float", "floats(0.5, '[1, 0]')", r"with lo <= hi, holding the default"),
    ("float", "floats(2.0, '(0, 1]')", r"floats\(2.0, '\(0, 1\]'\)"),
    ("float", "floats(0.0, '(0, 1]')", r"floats\(0.0, '\(0, 1\]'\)"),
    ("int", "ints(0, 1, 10)", r"ints\(0, 1, 10\): the default must lie in lo..hi"),
    ("float", "floats(0.5, '[0, 1]', nonzero=True)", r"nonzero=True only means something for a lane field"),
])
def test_a_plugin_field_declared_out_of_its_own_bounds_is_one_line(ann, decl, match, tmp_path, monkeypatch,
                                                                    registry_restored):
    from tallysim import protocols
    name = f"lo12_{abs(hash(decl)) % 10**6}"
    (tmp_path / f"{name}.py").write_text(PLUGIN.format(name=name, ann=ann, decl=decl))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=match) as e:
        protocols.load_plugin(name)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("decl", ["floats(0.5, '[0, 1]')", "floats(1.0, '(0, 1]')", "floats(None, '(0, 1)')",
                                  "ints(3, 1, 10)", "ints(None)"])
def test_declarations_within_bounds_still_load(decl, tmp_path, monkeypatch, registry_restored):         # ok
    from tallysim import protocols
    name = f"lo12ok_{abs(hash(decl)) % 10**6}"
    ann = "Optional[float]" if "None" in decl and "floats" in decl else "Optional[int]" if "None" in decl else \
        "float" if "floats" in decl else "int"
    src = PLUGIN.format(name=name, ann=ann, decl=decl).replace("from dataclasses", "from typing import Optional\n"
                                                                  "from dataclasses")
    (tmp_path / f"{name}.py").write_text(src)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert name in protocols.load_plugin(name)


def test_a_local_tfds_copy_that_cannot_be_read_says_why(tmp_path, monkeypatch):
    """Without TensorFlow, tfds's local copy is read with numpy; the reason it failed was swallowed."""
    import importlib
    pytest.importorskip("tensorflow_datasets")
    prepare = importlib.import_module("tallysim.data.prepare")
    from tallysim.data.base import DataError
    monkeypatch.setattr(prepare, "_has", lambda module: module != "tensorflow")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)              # a folder, never generated
    with pytest.raises(DataError, match=r"TensorFlow is not importable, and tfds needs it to download and "
                                        r"generate 'mnist' \(tfds's local copy could not be read: KeyError: "):
        prepare._from_tfds_quiet("mnist")


def test_config_replace_refuses_a_field_written_dotted_and_nested():
    """Config.replace(**{"optim.lr": 0.1}, optim={"lr": 0.2}) took 0.2, and in the other order 0.1."""
    import tallysim
    with pytest.raises(ConfigError, match=r"^Config.replace: optim.lr is given twice \(0.1 and 0.2\), dotted and "
                                          r"inside its section; give each field once$"):
        tallysim.Config().replace(**{"optim.lr": 0.1}, optim={"lr": 0.2})
    assert tallysim.Config().replace(optim={"lr": 0.2}, **{"optim.momentum": 0.5}).optim.lr == 0.2      # ok
