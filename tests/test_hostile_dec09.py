"""Hostile review of 2026-12-09, weighted to what the earlier four attacked least: resuming and the run
directory (foreign entries, a lost config.json, a killed writer's temporary file, two writers in one
process, TensorBoard's folder inside the run), knobs of the fault models their kind never reads, plugins
whose own code raises, and the Python API given a dict. Each case failed before its fix (a traceback, a
silent loss, a misleading line); the controls (`ok`) pass both. Refusals come before anything compiles
(`no_compile`); the few tests that run something run the conftest's tiny `checkpointed` run or a plugin's
factory."""
import json
import shutil
import sys
import threading
from pathlib import Path

import pytest

import tallysim
from tallysim import checkpoint, cli, config, outdir, run, tracking, validation  # noqa: F401 (before jit is patched)
from tallysim.config import ConfigError
from conftest import TINY, one_line, tiny

PLUGIN = Path(__file__).resolve().parent.parent / "examples" / "fedmix.py"


def _copy(checkpointed, tmp_path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(checkpointed, d)
    return d


# ----------------------------------------------------------------------------- resume and the run directory

@pytest.mark.parametrize("entry, expected", [
    # a notes file: was "--resume: DIR is not a tallysim run directory", of the user's own interrupted run
    ("notes.txt", r"--resume: .*run holds entries a run does not write \(notes.txt: .*\); move them out of the "
                  r"run directory, then resume \(--resume\)"),
    ("tb/", r"holds entries a run does not write \(tb/"),            # a TensorBoard folder put there
    ("metrics link", r"holds entries a run does not write \(metrics.jsonl:"),
])
def test_resume_of_a_run_holding_a_foreign_entry_says_which(entry, expected, checkpointed, tmp_path, capsys,
                                                           no_compile):
    d = _copy(checkpointed, tmp_path)
    if entry == "notes.txt":
        (d / entry).write_text("my notes\n")
    elif entry == "tb/":
        (d / "tb").mkdir()
    else:
        (d / "metrics.jsonl").rename(tmp_path / "elsewhere.jsonl")
        (d / "metrics.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    for argv in (["run", "--out", str(d), "--resume"],
                 ["run", "--config", str(d / "config.json"), "--out", str(d), "--resume"]):
        assert __import__("re").search(expected, one_line(capsys, argv))
    with pytest.raises(ConfigError, match=r"tallysim.run\(resume=True\): .*holds entries .*\(resume=True\)"):
        tallysim.run(tiny(), out=str(d), resume=True)


def test_resume_of_a_directory_tallysim_never_wrote_still_says_so(tmp_path, capsys, no_compile):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")                 # ok: no marker, no config: not a run
    line = one_line(capsys, ["run", "--out", str(tmp_path / "mine"), "--resume"])
    assert "is not a tallysim run directory" in line


@pytest.mark.parametrize("damage, expected", [
    ("delete", r"config.json is missing; it is the run's own config"),       # "config file ... does not exist"
    ("garble", r"config.json cannot be read \(.*not valid JSON.*\); it is the run's own config"),
])
@pytest.mark.parametrize("with_config", [False, True])
def test_resume_without_its_config_json_says_what_to_do(damage, expected, with_config, checkpointed, tmp_path,
                                                        capsys, no_compile):
    d = _copy(checkpointed, tmp_path)
    given = tmp_path / "given.json"
    shutil.copy(d / "config.json", given)
    if damage == "delete":
        (d / "config.json").unlink()
    else:
        (d / "config.json").write_text("{not json")
    argv = ["run", "--out", str(d), "--resume"] + (["--config", str(given)] if with_config else [])
    line = one_line(capsys, argv)
    assert __import__("re").search(expected, line) and "start the run again with --overwrite" in line, line


def test_a_finished_resume_removes_the_half_checkpoint_a_killed_writer_left(checkpointed, tmp_path):
    """kill -9 during a checkpoint write leaves `.checkpoint.npz.<8>.tmp` (the size of the run's state);
    the resumed run finished and kept it in the run directory for good."""
    d = _copy(checkpointed, tmp_path)
    stale = d / ".checkpoint.npz.k1ll3d99.tmp"
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")
    mine = d.parent / ".checkpoint.npz.k1ll3d99.tmp"            # ok: outside the run directory, not touched
    mine.write_bytes(b"x")
    run.run(tiny(*("protocol.name=local", "rounds=3", "eval_every=1")), str(d), progress=False, resume=True)
    assert not stale.exists() and mine.exists()
    assert sorted(p.name for p in d.iterdir()) == sorted([".tallysim-run", ".tallysim-lock", "config.json",
                                                          "partition.json", "metrics.jsonl"])


def test_two_threads_cannot_write_one_run_directory(tmp_path, monkeypatch):
    """flock is per process: a second `tallysim.run(..., overwrite=True)` from another thread of the same
    notebook replaced the first run's files while it ran (its rows were lost, two runs' rows interleaved)."""
    out = tmp_path / "same"
    started, release, seen = threading.Event(), threading.Event(), {}

    def first():
        with outdir.exclusive(str(out)):
            outdir.claim(str(out), overwrite=False)
            (out / "metrics.jsonl").write_text('{"round": 1}\n')
            started.set()
            release.wait(10)

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(10)
    try:
        for overwrite in (True, False):
            with pytest.raises(ConfigError, match=r"is being written by another tallysim process \(or another "
                                                  r"thread of this one"):
                with outdir.exclusive(str(out)):
                    outdir.claim(str(out), overwrite=overwrite)
        seen["rows"] = (out / "metrics.jsonl").read_text()
    finally:
        release.set()
        t.join()
    assert seen["rows"] == '{"round": 1}\n'
    with outdir.exclusive(str(out)):                   # ok: free again once the first has finished
        outdir.claim(str(out), overwrite=True)


@pytest.mark.parametrize("where", ["out", "out/tb"])
def test_tensorboard_inside_the_run_directory_is_refused_before_compiling(where, tmp_path, capsys, no_compile):
    """Its event folder in the run directory stopped the finished run being replaced and an interrupted one
    being resumed ("holds files tallysim did not write")."""
    out = tmp_path / "out"
    tb = tmp_path / where
    line = one_line(capsys, ["run", *TINY, f"log.tensorboard={tb}", "--out", str(out)])
    assert f"log.tensorboard={tb} is inside the run directory {out}" in line and not out.exists()
    with pytest.raises(ConfigError, match="is inside the run directory"):
        tallysim.run(tiny(f"log.tensorboard={tb}"), out=str(out))
    tracking.check_out(tiny(f"log.tensorboard={tmp_path / 'tb'}"), str(out))        # ok: beside it


# ----------------------------------------------------------------------------- fault knobs

@pytest.mark.parametrize("items, expected", [
    (["faults.kind=label_flip", "faults.fraction=0.5", "faults.target=5"],        # ran; label_flip reads no target
     r"faults.target=5 is not read with faults.kind='label_flip' \(only with faults.kind=confident_wrong\)"),
    (["faults.fraction=0.3"], r"faults.fraction=0.3 is not read with faults.kind='none'"),   # no faulty peer
    (["faults.redraw=true"], r"faults.redraw=True is not read with faults.kind='none'"),
    (["protocol.name=fedavg", "faults.kind=sign_flip", "faults.fraction=0.5", "faults.sigma=5"],
     r"faults.sigma=5.0 is not read with faults.kind='sign_flip' \(only with faults.kind=gaussian\)"),
    (["protocol.name=fedavg", "faults.kind=gaussian", "faults.fraction=0.5", "faults.z=2"],
     r"faults.z=2.0 is not read with faults.kind='gaussian'"),
    (["faults.kind=dropout", "faults.fraction=0.5", "faults.examples=3"],
     r"faults.examples=3 is not read with faults.kind='dropout' \(only with faults.kind=under_trained\)"),
    (["faults.kind=label_flip", "faults.fraction=0.5", "faults.drop_prob=0.5"], r"faults.drop_prob=0.5 is not read"),
])
def test_a_fault_knob_its_kind_never_reads_is_refused(items, expected, tmp_path, capsys, no_compile):
    line = one_line(capsys, ["run", *TINY, *items, "--out", str(tmp_path / "o")])
    assert __import__("re").search(expected, line), line


@pytest.mark.parametrize("items", [
    ["protocol.name=fedavg", "faults.kind=sign_flip", "faults.fraction=0.5", "faults.scale=2"],
    ["protocol.name=fedavg", "faults.kind=confident_wrong", "faults.fraction=0.5", "faults.scale=3"],
    ["faults.kind=confident_wrong", "faults.fraction=0.5", "faults.target=3"],
    ["faults.kind=under_trained", "faults.fraction=0.5", "faults.examples=3", "faults.steps=1"],
    ["faults.kind=dropout", "faults.fraction=0.5", "faults.drop_prob=0.5", "faults.redraw=true"],
    ["protocol.name=fedavg", "faults.kind=ipm", "faults.fraction=0.25", "faults.eps=0.5"],
])
def test_fault_knobs_their_kind_reads_still_run(items):                           # ok
    validation.check_read(config.validate(tiny(*items)))


# ----------------------------------------------------------------------------- plugins
# (conftest.registry_restored: the protocols a test's plugin registers are gone after it)

@pytest.mark.parametrize("name, edit, what", [
    ("fmfactory", ("    lspec = ctx.local_spec()\n", "    raise ValueError('factory broke')\n"),
     "its factory raised ValueError: factory broke"),                              # a traceback from build
    ("fminit", ("    def init(key, data):\n", "    def init(key, data):\n        raise RuntimeError('init broke')\n"),
     r"init\(key, data\) raised RuntimeError: init broke"),                      # a traceback through JAX
    ("fmround", ("        keys = round_keys(root, r)\n", "        keys = round_keys(root, r)\n        {}['x']\n"),
     r"round\(state, data, key, r\) raised KeyError: 'x'"),
])
def test_a_plugin_whose_own_code_raises_is_one_line_naming_where(name, edit, what, tmp_path, monkeypatch, capsys,
                                                                 registry_restored):
    src = PLUGIN.read_text()
    assert edit[0] in src
    text = src.replace(edit[0], edit[1]).replace('"fedmix"', f'"{name}"').replace("fedmix.mix", f"{name}.mix")
    module = f"{name}_plugin_dec09"
    (tmp_path / f"{module}.py").write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip() == edit[1].splitlines()[-1].strip())
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code = cli.main(["run", "--plugin", module, *[t for t in TINY if not t.startswith("probe")],
                         f"protocol.name={name}", "--quiet", "--out", str(tmp_path / "o")])
    except SystemExit as e:
        code = e.code
    finally:
        sys.modules.pop(module, None)
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert code == 2 and len(err) == 1, err
    assert __import__("re").search(rf"protocol '{name}' \(plugin '{module}'\): {what} \(at .*{module}.py:{line}\); "
                                   "the plugin's own code failed", err[0]), err[0]


# ----------------------------------------------------------------------------- the Python API

def test_run_given_a_dict_says_how_to_make_a_config(tmp_path, no_compile):
    with pytest.raises(ConfigError, match=r"expected a tallysim.Config, got dict; a dict of fields, nested as in "
                                          r"config.json, becomes one with tallysim.config.from_dict\(d\)"):
        tallysim.run({"peers": 4, "bogus": 1}, out=str(tmp_path / "o"))
    with pytest.raises(ConfigError, match=r"unknown config key 'peer' .*did you mean peers"):      # ok: as said
        config.from_dict({"peers": 4, "peer": 1})
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- make's OUT

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("target", ["figures-smoke", "clean", "fig1", "demo", "matched-bits"])
@pytest.mark.parametrize("out, expected", [
    ("my results", "OUT='my results' holds a space"),      # figures-smoke ran `rm -rf my results/smoke`: ./my gone
    ("", "OUT is empty; give the results directory"),       # figures-smoke ran `rm -rf /smoke`
])
def test_make_refuses_an_out_it_would_split_or_lose(target, out, expected):
    import subprocess
    got = subprocess.run(["make", "-n", target, f"OUT={out}"], cwd=ROOT, capture_output=True, text=True)
    assert got.returncode != 0 and expected in got.stderr and "rm -rf" not in got.stdout, (got.stdout, got.stderr)


def test_make_with_a_plain_out_is_unchanged():                                     # ok
    import subprocess
    got = subprocess.run(["make", "-n", "figures-smoke", "OUT=res"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert "-m tallysim.clean res/smoke" in got and "--results res/smoke" in got     # clean.py: only tallysim's


# ----------------------------------------------------------------------------- derived outputs and run directories

@pytest.mark.parametrize("argv, expected", [
    # the run's rows replaced by a markdown table, and no word said
    (["table", "{run}", "--out", "{run}/metrics.jsonl"], "--out {run}/metrics.jsonl is inside the tallysim run "
                                                         "directory {run}, .*would replace its metrics.jsonl"),
    (["table", "{run}", "--out", "{run}/notes.md"], "--out {run}/notes.md is inside the tallysim run directory"),
    (["plot", "{run}", "--out", "{run}/mine.png"], "--out {run}/mine.png is inside"),
    (["pareto", "{run}", "--out", "{run}/p.png"], "--out {run}/p.png is inside"),
    (["figure", "fig1", "--dry-run", "--out", "{run}"], "--out {run}/fig1.png is inside"),
    (["bench", "--json", "{run}/partition.json"], "--json {run}/partition.json is inside .*replace its partition.json"),
])
def test_a_derived_output_into_a_run_directory_is_refused(argv, expected, checkpointed, tmp_path, capsys,
                                                          no_compile):
    d = _copy(checkpointed, tmp_path)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    line = one_line(capsys, [a.format(run=d) for a in argv])
    assert __import__("re").search(expected.format(run=d), line), line
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_a_table_over_a_sweeps_index_is_refused(tmp_path, capsys):
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": []}))
    line = one_line(capsys, ["table", str(tmp_path), "--out", str(tmp_path / "sweep.json")])
    assert "is a sweep's index (its list of runs)" in line


def test_derived_outputs_beside_a_run_still_write(checkpointed, tmp_path, capsys):                # ok
    d = _copy(checkpointed, tmp_path)
    assert cli.main(["table", str(d), "--out", str(tmp_path / "t.md")]) == 0 and (tmp_path / "t.md").is_file()
    from tallysim import atomic
    atomic.refuse_symlinks([d / "curve.png", d / "curve.csv"])        # Results.plot()'s own default


def test_results_plot_leaves_a_run_that_can_be_replaced(checkpointed, tmp_path, monkeypatch):
    """Results.plot() draws curve.png and curve.csv into the run directory; --overwrite (and so a notebook
    running the cell again with overwrite=True) then refused it: "holds files tallysim did not write"."""
    d = _copy(checkpointed, tmp_path)
    (d / "curve.png").write_bytes(b"\x89PNG")
    (d / "curve.csv").write_text("x\n")
    assert outdir.is_run_dir(d) and not outdir.foreign_entries(d)
    monkeypatch.chdir(tmp_path)
    outdir.claim(str(d), overwrite=True)
    assert not (d / "curve.png").exists() and not (d / "curve.csv").exists()


# ----------------------------------------------------------------------------- tallysim bench at its edges

@pytest.mark.parametrize("argv, expected", [
    # measured the MLP as if --conv were not there (no row says which convolution ran)
    (["--model", "mlp", "--conv", "xla"], r"bench --conv is read only by the conv models \(lenet, cnn, resnet8\), "
                                          r"and --model mlp has none"),
    (["--json", ""], r"bench --json '' is empty"),                     # `--json "$OUT"`, OUT unset: no JSON, silently
    # timed the 10-client yardstick first, then failed every point in its subprocess
    (["--population", "--peers", "100000000000"], r"bench --population --peers 100,000,000,000: peers=100000000000 "
                                                  r"is out of range; allowed: 1..2147483647"),
])
def test_bench_flags_at_their_edges_are_one_line_before_measuring(argv, expected, capsys, no_compile, no_measure):
    line = one_line(capsys, ["bench", *argv])
    assert __import__("re").search(expected, line), line


def test_bench_conv_with_a_conv_model_among_others_is_still_read():                     # ok
    from argparse import Namespace
    from tallysim.bench import flags
    flags.check(Namespace(model="mlp,cnn", conv="xla", peers=None))
    flags.check(Namespace(model=None, conv="xla", peers=None))        # the default grid has conv models


@pytest.mark.parametrize("items, expected", [
    (["peers=5"], r"^tallysim.run\(resume=True\): this config differs .*\(peers=4->5\); resume with the same config "
                  r"or use overwrite=True$"),
    (["rounds=2"], r"^tallysim.run\(resume=True\): this config differs .*\(rounds=3->2\)"),
    (["protocol.name=fedavg"], r"^tallysim.run\(resume=True\): .*computed by protocol 'local' .*start again with "
                               r"overwrite=True$"),
])
def test_resume_from_python_with_another_config_is_refused_in_pythons_words(items, expected, checkpointed, tmp_path,
                                                                           no_compile):
    """Named `--resume:` and `--overwrite`, flags a notebook does not have (resumable()'s own refusals
    were already in its words)."""
    d = _copy(checkpointed, tmp_path)
    with pytest.raises(ConfigError, match=expected):
        tallysim.run(tiny("protocol.name=local", "rounds=3", "eval_every=1", *items), out=str(d), resume=True)
    with pytest.raises(ConfigError, match=r"^--resume: "):                             # ok: the CLI's own words
        run.run(tiny("protocol.name=local", "rounds=3", "eval_every=1", *items), str(d), resume=True)


@pytest.mark.parametrize("argv", [
    ["run", *TINY, "--out", "{run}/sub"],                                  # ran, and runs/a could not resume
    ["sweep", *TINY[:-1], "model.width=16,32", "--out", "{run}/sw", "--dry-run"],
    ["figure", "fig1", "--smoke", "--results", "{run}/r", "--dry-run"],
])
def test_a_run_into_a_directory_inside_another_run_is_refused(argv, checkpointed, tmp_path, capsys, no_compile):
    d = _copy(checkpointed, tmp_path)
    line = one_line(capsys, [a.format(run=d) for a in argv])
    assert f"is inside the tallysim run directory {d}, which holds only the files a run writes" in line, line
    assert outdir.is_run_dir(d)                                             # still resumable
    with pytest.raises(ConfigError, match="is inside"):                     # however deep
        outdir.check(str(d / "deeper" / "still"), overwrite=False)


def test_a_run_beside_another_run_is_fine(checkpointed, tmp_path):                    # ok
    d = _copy(checkpointed, tmp_path)
    outdir.check(str(tmp_path / "other"), overwrite=False)
    outdir.check_sweep_dir(str(tmp_path / "sw"), {}, "done.json", "sweep.json")
    assert outdir.is_run_dir(d)


def test_resume_of_a_run_directory_it_cannot_write_says_so_before_loading(checkpointed, tmp_path, capsys,
                                                                         monkeypatch, no_compile):
    """An immutable (chattr +i) run directory: "DIR/.config.json.x.tmp: Operation not permitted" after the
    data had loaded; a read-only mount: "cannot be opened as a lock file; move it away"."""
    import errno
    import os
    d = _copy(checkpointed, tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p) == str(d) and mode & os.W_OK
                        else real_access(p, mode, **k))
    line = one_line(capsys, ["run", "--out", str(d), "--resume"])
    assert f"{d} is not writable (no write permission, a read-only mount or an immutable directory)" in line
    monkeypatch.setattr(os, "access", real_access)
    real_open = os.open

    def read_only(p, flags, *a, **k):
        if str(p).endswith(".tallysim-lock"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(p, flags, *a, **k)
    monkeypatch.setattr(os, "open", read_only)
    line = one_line(capsys, ["run", "--out", str(d), "--resume"])
    assert f"{d} is not writable (Read-only file system)" in line and "move it away" not in line


def test_an_overwrite_killed_while_clearing_the_old_run_can_be_overwritten_again(checkpointed, tmp_path,
                                                                                  monkeypatch):
    """--overwrite removes the old run's files one by one; a kill between two unlinks could leave the
    directory without its marker, and the next --overwrite refused it: "not a tallysim run directory"."""
    d = _copy(checkpointed, tmp_path)
    real, calls = Path.unlink, []

    def unlink(self, *a, **k):
        calls.append(self.name)
        if len(calls) == 4:                       # after the marker (base), the checkpoint and config.json
            raise KeyboardInterrupt
        return real(self, *a, **k)
    monkeypatch.setattr(Path, "unlink", unlink)
    listing = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: iter(sorted(listing(self))))   # the marker comes first
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        outdir.claim(str(d), overwrite=True)
    monkeypatch.setattr(Path, "unlink", real)
    assert outdir.is_run_dir(d)
    outdir.claim(str(d), overwrite=True)                      # was refused when the marker went first
    assert sorted(p.name for p in d.iterdir()) == [".tallysim-lock", ".tallysim-run"]
