"""Hostile review of 2026-12-07, weighted to what a researcher does day to day: the Python API from a
notebook, runs and sweeps stopped by a signal or a full disk, results files changed while a run writes
them, config files as editors save them, JAX's environment variables, and plugins edited in a notebook.
Each case failed before its fix (a traceback, a silent loss, a misleading line); the controls (`ok`)
pass both. Nothing here compiles (`no_compile`) and nothing starts a process but one CLI refusal."""
import contextlib
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

import tallysim
from tallysim import atomic, cli, config, jax_check, outdir, run, startup, sweep  # noqa: F401 (before jit is patched)
from tallysim.config import ConfigError
from tallysim.metrics_file import MetricsFile
from conftest import TINY, cli_line, tiny


# ----------------------------------------------------------------------------- the Python API

def test_drive_refuses_a_field_nothing_reads_as_run_does(no_compile):
    """drive() built and compiled model.hidden=64 with the MLP (which never reads it); run refused it."""
    with pytest.raises(ConfigError, match=r"model.hidden=64 is not read by model.name=mlp"):
        tallysim.drive(tiny("model.hidden=64"))
    with pytest.raises(ConfigError, match=r"fedprox.mu=0.5 is not read by protocol.name=fedavg"):
        tallysim.drive(tiny("protocol.name=fedavg", "fedprox.mu=0.5"))
    with pytest.raises(AssertionError, match="compiled before refusing"):        # ok: read fields build
        tallysim.drive(tiny("protocol.name=fedprox", "fedprox.mu=0.5"))


@pytest.mark.parametrize("key, value, plain", [
    ("peers", np.int64(4), 4), ("seed", np.int32(3), 3), ("optim.lr", np.float32(0.5), 0.5),
    ("partition.cap", np.bool_(True), True), ("data.input_shape", [8, 8, 1], (8, 8, 1)),
    ("data.input_shape", [np.int64(8), 8, 1], (8, 8, 1)),
])
def test_replace_takes_numpy_scalars_and_a_shape_list(key, value, plain):
    """Refused as `peers=np.int64(4) has the wrong type (int64); expected an integer` and `data.input_shape=
    [28, 28, 1] ... expected a list of positive integers like [28, 28, 1]`."""
    cfg = config.validate(tiny().replace(**{key: value}))
    got = config.get_field(cfg, key)
    assert got == plain and type(got) is type(plain)
    json.dumps(config.to_dict(cfg))                       # config.json can hold it


def test_a_numpy_scalar_given_to_config_itself_says_how_to_pass_it():
    with pytest.raises(ConfigError, match=r"peers=np.int64\(4\) has the wrong type \(numpy int64\); expected an "
                                          r"integer \(a Python value: int\(x\)"):
        config.validate(tallysim.Config(peers=np.int64(4)))


@pytest.mark.parametrize("call, expected", [
    (lambda c, o: tallysim.run(c, out=o, resum=True), r"tallysim.run\(resum=...\): no such argument"),
    (lambda c, o: config.apply_overrides(c, "peers=4"), r"expected a list of key=value strings, e.g. \['peers=4'\]"),
])
def test_api_misuse_is_one_line(call, expected, tmp_path, no_compile):
    """A misspelt keyword was a TypeError from the internal run() (after the config checks); a string
    for the list of overrides was read letter by letter ("malformed override 'p'")."""
    with pytest.raises(ConfigError, match=expected):
        call(tiny(), str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("items, expected", [
    (["PEERS=4"], "unknown config key 'PEERS'; did you mean peers?"),             # no suggestion was made
    (["Optim.LR=0.1"], "did you mean optim.lr?"),
    (["optim.lr=0.1,0.2"], "optim.lr='0.1,0.2': expected a number (several values are a sweep: tallysim sweep "
                           "optim.lr=0.1,0.2)"),
])
def test_override_slips_say_what_was_meant(items, expected):
    with pytest.raises(ConfigError) as e:
        tiny(*items)
    assert expected in str(e.value), str(e.value)


@pytest.mark.parametrize("state, expected", [
    ("none", r"tallysim.run\(resume=True\) needs out=, the run directory to continue"),   # made a temp dir
    ("empty", r"tallysim.run\(resume=True\): .* is not a tallysim run directory"),
    ("stopped", r"has no checkpoint.npz to resume from .*start it again with overwrite=True \(checkpoint_every=N"),
    ("finished", r"is a finished run .*tallysim.Results.read\("),
])
def test_resume_from_python_is_refused_in_pythons_words(state, expected, tmp_path, no_compile):
    """Said "--resume: ...", "start it again with --overwrite (--checkpoint-every N ...)"; with no out, a
    new temporary directory was made and then called "not a tallysim run directory"."""
    out = None
    if state != "none":
        out = tmp_path / "r"
        out.mkdir()
    if state in ("stopped", "finished"):
        outdir.claim(out, True)
        (out / "config.json").write_text('{"rounds": 2}')
        (out / "metrics.jsonl").write_text('{"round": 1}\n' + ('{"round": 2}\n' if state == "finished" else ""))
    before = set(os.listdir(tempfile.gettempdir()))
    with pytest.raises(ConfigError, match=expected):
        tallysim.run(tiny(), out=out, resume=True)
    assert set(os.listdir(tempfile.gettempdir())) <= before


@pytest.fixture
def x64():
    import jax
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


@pytest.mark.parametrize("call", [lambda o: tallysim.run(tiny(), out=o), lambda o: tallysim.drive(tiny())],
                         ids=["run", "drive"])
def test_64_bit_mode_is_refused_before_anything_is_written(call, tmp_path, x64, no_compile):
    """jax_enable_x64 on in a notebook: a dtype error inside the first round's program, after the output
    directory was claimed and the data loaded."""
    with pytest.raises(ConfigError, match="JAX's 64-bit mode is on"):
        call(str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_a_backend_jax_cannot_start_is_one_line(monkeypatch):
    """JAX_PLATFORMS=cuda on a CPU machine: an AssertionError in jax.process_index; =garbage a RuntimeError."""
    import jax

    def no_backend():
        raise RuntimeError("Unable to initialize backend 'cuda': no CUDA devices")
    monkeypatch.setattr(jax, "devices", no_backend)
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    with pytest.raises(ConfigError, match=r"JAX cannot start a backend \(Unable to initialize backend 'cuda'.*"
                                          r"check JAX_PLATFORMS.*JAX_PLATFORMS='cuda'"):
        jax_check.backend()


def test_a_jax_variable_jax_cannot_read_is_one_line(tmp_path):
    """JAX_ENABLE_X64=maybe: a ValueError traceback from JAX's import (the only process this file starts)."""
    env = {**os.environ, "JAX_ENABLE_X64": "maybe", "PYTHONPATH": os.getcwd()}
    p = subprocess.run([sys.executable, "-m", "tallysim", "run", *TINY, "--out", str(tmp_path / "o"), "--quiet"],
                       env=env, capture_output=True, text=True, timeout=120)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) == 1, (p.returncode, err)
    assert "JAX cannot start: invalid truth value 'maybe' for environment 'JAX_ENABLE_X64'" in err[0], err


@pytest.mark.parametrize("var", ["TALLYSIM_COMPILE_CACHE", "JAX_COMPILATION_CACHE_DIR"])
@pytest.mark.parametrize("below", [False, True])
def test_a_compile_cache_that_is_a_file_is_refused(var, below, tmp_path, monkeypatch):
    """Was a JAX warning at every compile, and nothing cached."""
    (tmp_path / "f").write_text("x")
    where = tmp_path / "f" / "xla" if below else tmp_path / "f"
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)     # the suite's own cache (conftest)
    monkeypatch.setenv(var, str(where))
    with pytest.raises(ConfigError, match=rf"{var}=.*: {tmp_path / 'f'} is a file; allowed: a directory"):
        startup.compile_cache()


# ----------------------------------------------------------------------------- nothing a user started is lost

@pytest.mark.parametrize("signum, code, word", [(signal.SIGTERM, 143, "stopped by SIGTERM"),
                                                (signal.SIGHUP, 129, "stopped by SIGHUP")])
def test_sigterm_and_sighup_unwind_as_ctrl_c(signum, code, word, tmp_path, monkeypatch, capsys):
    """Python's default ended the process on the spot: no line, and a checkpoint being written left its
    `.checkpoint.npz.XXXXXXXX.tmp` behind. Now the temporary file goes and one line says how to go on."""
    out = tmp_path / "o"

    def killed_while_writing(cfg, out_dir, **kw):
        outdir.claim(out_dir, False)
        with atomic.writing(out / "checkpoint.npz") as f:
            f.write(b"half")
            os.kill(os.getpid(), signum)
            time.sleep(5)                      # the handler raises first
    monkeypatch.setattr(run, "run", killed_while_writing)
    before = signal.signal(signum, signal.SIG_DFL)    # as in a terminal (under nohup SIGHUP is ignored, and stays so)
    try:
        status, line = cli_line(capsys, ["run", *TINY, "--out", str(out), "--quiet"])
        assert signal.getsignal(signum) is signal.SIG_DFL          # restored after the command
    finally:
        signal.signal(signum, before)
    assert status == code and word in line and "metrics written so far are kept" in line, line
    assert "--resume cannot continue it: run it again with --overwrite" in line, line
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_signal_the_caller_ignores_stays_ignored():
    """nohup ignores SIGHUP so a run outlives its terminal: the command must not take that back."""
    from tallysim import cli
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        restore = cli.catch_termination()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        restore()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_an_interrupted_run_says_whether_resume_can_continue(tmp_path, monkeypatch, capsys):
    """"metrics written so far are kept" only: --resume then said it had nothing to resume from."""
    out = tmp_path / "o"

    def interrupted(cfg, out_dir, **kw):
        outdir.claim(out_dir, False)
        (out / "checkpoint.npz").write_bytes(b"")
        raise KeyboardInterrupt
    monkeypatch.setattr(run, "run", interrupted)
    status, line = cli_line(capsys, ["run", *TINY, "--out", str(out), "--quiet"])
    assert status == 130 and f"`tallysim run --out {out} --resume` continues from its last checkpoint" in line


def test_a_full_disk_before_the_first_checkpoint_does_not_promise_a_resume(tmp_path, monkeypatch, capsys,
                                                                            no_compile):
    """config.json could not be written: the line said "run --resume continues from its last checkpoint",
    and --resume then said "config file '.../config.json' does not exist"."""
    write = atomic.write_atomic

    def full(path, data):
        if str(path).endswith("config.json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write(path, data)
    monkeypatch.setattr(atomic, "write_atomic", full)
    out = tmp_path / "o"
    status, line = cli_line(capsys, ["run", *TINY, "--out", str(out), "--quiet"])
    assert status == 2 and "the disk is full writing" in line, line
    assert "--resume cannot continue it: then run it again with --overwrite" in line, line
    monkeypatch.setattr(atomic, "write_atomic", write)
    status, line = cli_line(capsys, ["run", "--out", str(out), "--resume", "--quiet"])
    assert status == 2 and "has no checkpoint.npz to resume from" in line, line


def _damage(path, how):
    if how == "emptied":
        path.write_bytes(b"")
    elif how == "deleted":
        path.unlink()
    elif how == "replaced":                 # an editor's save: a new file renamed over it
        (path.parent / "tmp").write_bytes(path.read_bytes())
        os.replace(path.parent / "tmp", path)
    else:
        with open(path, "ab") as f:
            f.write(b'{"round": 99}\n')


@pytest.mark.parametrize("how, said", [("emptied", "cut or extended"), ("deleted", "deleted"),
                                       ("replaced", "replaced"), ("appended", "cut or extended")])
@pytest.mark.parametrize("when", ["between rows", "after the last row"])
def test_a_metrics_file_changed_mid_run_is_written_again_whole(how, said, when, tmp_path, capsys):
    """Emptied mid-run, the next row went at the old offset (a run of NUL bytes: unreadable); deleted,
    every later row was lost; replaced, the rows after the save were. The run reported success each time."""
    path = tmp_path / "metrics.jsonl"
    f = MetricsFile(path)
    f.write(b'{"round": 1}')
    if when == "between rows":
        _damage(path, how)
        f.write(b'{"round": 2}')
    else:
        f.write(b'{"round": 2}')
        _damage(path, how)
    f.close()
    assert path.read_bytes() == b'{"round": 1}\n{"round": 2}\n'
    assert f"was {said} by another program during the run" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["emptied", "deleted", "replaced"])
def test_a_runs_recorder_keeps_every_row_when_its_file_changes(how, tmp_path):
    """The same through the run's recorder (run._Recorder), as a run writes its rows."""
    with contextlib.ExitStack() as held:        # closed as run._Lanes closes it
        rec = run._Recorder([0], tmp_path, 1, None, None)
        held.callback(rec.close_file)
        rec.rows(1, [{"round": 1}])
        _damage(tmp_path / "metrics.jsonl", how)
        rec.rows(2, [{"round": 2}])
    assert (tmp_path / "metrics.jsonl").read_bytes() == b'{"round": 1}\n{"round": 2}\n'


def test_an_untouched_metrics_file_is_written_as_before(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    f = MetricsFile(path, [b'{"round": 1}'])                  # a resumed run's rows before its checkpoint
    f.write(b'{"round": 2}')
    f.close()
    assert path.read_bytes() == b'{"round": 1}\n{"round": 2}\n' and not capsys.readouterr().err


@pytest.mark.parametrize("rows, error, status", [(5, False, "incomplete"), (40, False, "done"),
                                                  (3, True, "failed")])
def test_results_say_whether_the_run_finished(rows, error, status, tmp_path):
    """Results.read of a run stopped at round 5 of 40 gave its rows and `last` with nothing to say so."""
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict(config.validate(tiny("rounds=40")))))
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"round": r, "bits_per_peer": 8.0 * r, "acc_mean": 0.5}) + "\n"
                                                    for r in range(1, rows + 1)))
    if error:
        (tmp_path / "error.txt").write_text("the loss is nan\n")
    assert tallysim.Results.read(tmp_path).status == status


def _run_dir(tmp_path):
    d = outdir.claim(tmp_path / "r", False)
    (d / "metrics.jsonl").write_text('{"round": 1}\n')
    (d / "config.json").write_text('{"rounds": 5}\n')
    (d / outdir.LOCK).touch()                           # as `run` leaves it (outdir.exclusive)
    return d


def test_a_run_being_written_is_not_called_stopped(tmp_path, capsys, no_compile):
    """Said "holds a run that stopped before its first checkpoint; pass --overwrite" of a running run."""
    d = _run_dir(tmp_path)
    fd = os.open(d / outdir.LOCK, os.O_RDONLY)           # another open file: as another process's lock
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        status, line = cli_line(capsys, ["run", *TINY, "--out", str(d), "--quiet"])
        assert status == 2 and "is being written by another tallysim process right now" in line, line
    finally:
        os.close(fd)
    status, line = cli_line(capsys, ["run", *TINY, "--out", str(d), "--quiet"])          # ok: not held
    assert "holds a run that stopped before its first checkpoint" in line, line


@pytest.mark.parametrize("dry", [[], ["--dry-run"]])
def test_a_sweep_into_a_run_directory_is_refused(dry, tmp_path, capsys, no_compile):
    """The sweep wrote its index and run directories into the run's own directory (and --dry-run, which
    checked no --out at all, listed the runs)."""
    d = _run_dir(tmp_path)
    status, line = cli_line(capsys, ["sweep", *TINY, "seed=0,1", "--out", str(d), *dry])
    assert status == 2 and "it is a `tallysim run` directory" in line, line
    assert sorted(p.name for p in d.iterdir()) == sorted([".tallysim-run", ".tallysim-lock", "metrics.jsonl",
                                                          "config.json"])


def _finished_sweep(tmp_path):
    """A sweep `seed=0,1` whose two runs finished (written by hand: nothing compiles)."""
    out = tmp_path / "s"
    runs = sweep.expand({}, ["seed=0,1"])
    for (name, _), cfg in zip(runs, sweep.configs(tiny(), runs)):
        d = outdir.claim(out / name, False)
        (d / "config.json").write_text(json.dumps(sweep._jsonable(config.to_dict(config.validate(cfg).resolved()))))
        (d / "metrics.jsonl").write_text('{"round": 1}\n{"round": 2}\n')
        (d / "done.json").write_text("{}")
    (out / "sweep.json").write_text(json.dumps({"runs": []}))
    return out


def test_a_finished_sweep_run_whose_rows_were_lost_is_not_skipped_in_silence(tmp_path, capsys, no_compile):
    """Its metrics.jsonl emptied after it finished: the sweep skipped it as done, and `table` said incomplete."""
    out = _finished_sweep(tmp_path)
    assert cli.main(["sweep", *TINY, "seed=0,1", "--out", str(out), "--quiet"]) == 0      # ok: both skipped
    assert "note" not in "".join(capsys.readouterr())
    (out / "seed=1" / "metrics.jsonl").write_text("")
    assert cli.main(["sweep", *TINY, "seed=0,1", "--out", str(out), "--quiet"]) == 0
    said = capsys.readouterr().err                   # under --quiet a note is one stderr line naming its run
    assert "tallysim: seed=1: note: its metrics.jsonl no longer holds the finished run's rows" in said \
        and "seed=1/done.json" in said


def test_a_run_the_other_copy_of_a_sweep_finished_is_done_in_the_index(tmp_path):
    """Two copies of one sweep (say, two jobs of one array): each found the other's run busy and recorded it
    "failed", and sweep.json, written last by the copy that ended last, said a finished run had failed."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "done.json").write_text("{}")
    (tmp_path / "b").mkdir()
    recs = [{"name": "a", "status": "failed", "busy": True, "error": "busy"},        # finished meanwhile
            {"name": "b", "status": "failed", "busy": True, "error": "busy"},        # ok: still running there
            {"name": "a", "status": "failed", "error": "nan"}]                       # ok: a failure of its own
    sweep._finished_elsewhere(tmp_path, recs, lambda line: None)
    assert [r["status"] for r in recs] == ["done", "failed", "failed"] and "error" not in recs[0]


def test_a_damaged_sweep_index_is_not_called_foreign(tmp_path, capsys, no_compile):
    """Said "its sweep.json was not written by tallysim"; deleting it is the way on (the runs are kept)."""
    out = _finished_sweep(tmp_path)
    (out / "sweep.json").write_text('{"runs": [{"na')
    status, line = cli_line(capsys, ["sweep", *TINY, "seed=0,1", "--out", str(out), "--quiet"])
    assert status == 2 and "its sweep.json is not a sweep index (damaged, or not tallysim's); if it is this " \
                           "sweep's, delete it" in line, line


# ----------------------------------------------------------------------------- config files

def _file(tmp_path, text, name="c.json"):
    (tmp_path / name).write_text(text, encoding="utf-8")
    return str(tmp_path / name)


def test_a_config_that_never_ends_is_refused_unread():
    """`--config /dev/zero` read until memory ran out."""
    with pytest.raises(ConfigError, match=r"config file '/dev/zero' is larger than 16 MiB"):
        config.load_file("/dev/zero")


def test_a_byte_order_mark_is_read_past(tmp_path):
    """Windows editors save one: "not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig)"."""
    assert config.load_file(_file(tmp_path, '\ufeff{"peers": 3}')).peers == 3


@pytest.mark.parametrize("doc, expected", [
    ({"data": {"input_shape": [8.0, 8.0, 1.0]}}, (8, 8, 1)),      # "[8.0, 8.0, 1.0] is a list; expected a list"
    ({"data": {"input_shape": [8, 8, 1]}}, (8, 8, 1)),            # ok
])
def test_a_shape_of_whole_floats_is_a_shape(doc, expected, tmp_path):
    assert config.load_file(_file(tmp_path, json.dumps(doc))).data.input_shape == expected


@pytest.mark.parametrize("text, expected", [
    ('{"extends": "/"}', r"\"extends\" '/' is not a file \(/ is a directory\)"),     # said "/ does not exist"
    ('{"optim": null}', r"optim must be an object of optim.\* fields, not null$"),     # "not null None"
    ('{"data": {"input_shape": [8.5, 8, 1]}}', r"data.input_shape=\[8.5, 8, 1\] is a list; expected a list"),
])
def test_config_file_messages_say_what_is_there(text, expected, tmp_path):
    with pytest.raises(ConfigError, match=expected):
        config.load_file(_file(tmp_path, text))


@pytest.mark.parametrize("values, expected", [
    ([2.0, 4.0], ["peers=2", "peers=4"]),      # "peers='2.0': expected an integer"; the body takes 2.0
    ([2, 4], ["peers=2", "peers=4"]),          # ok
])
def test_a_json_sweep_axis_takes_whole_floats_for_an_integer(values, expected):
    assert [n for n, _ in sweep.expand({"peers": values}, [])] == expected


def test_a_json_sweep_axis_repeating_a_whole_float_is_refused():
    # [2, 2.0] is one value twice: it ran once where two runs were asked for (now refused: leftovers32)
    with pytest.raises(ConfigError, match="lists 2 twice"):
        sweep.expand({"peers": [2, 2.0]}, [])


@pytest.mark.parametrize("values, expected", [
    ([float("nan")], r"sweep axis peers in the config file: peers=nan is a number; expected an integer"),
    ([2.5], r"peers=2.5 is a number; expected an integer"),
])
def test_a_json_sweep_axis_of_fractions_for_an_integer_says_so(values, expected):
    with pytest.raises(ConfigError, match=expected):
        sweep.expand({"peers": values}, [])


# ----------------------------------------------------------------------------- plugins from a notebook

@pytest.fixture
def registry_restored(registry_restored):
    """conftest's, and the notebook plugin's module forgotten too."""
    yield
    sys.modules.pop("nbplugin_dec07", None)


def test_loading_an_edited_plugin_again_says_the_old_code_runs(tmp_path, monkeypatch, capsys, registry_restored):
    """A notebook edits its plugin and loads it again: Python returned the module imported first, and the
    edit (here a second protocol) was silently not there."""
    from tallysim import protocols
    src = tmp_path / "nbplugin_dec07.py"
    src.write_text("def make(ctx): pass\nPROTOCOLS = {'nbproto_dec07': 'make'}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert tallysim.load_plugin("nbplugin_dec07") == ["nbproto_dec07"]
    assert tallysim.load_plugin("nbplugin_dec07") == ["nbproto_dec07"]           # ok: unchanged, quiet
    assert "warning" not in capsys.readouterr().err
    src.write_text("def make(ctx): pass\nPROTOCOLS = {'nbproto_dec07': 'make', 'nbproto2_dec07': 'make'}\n")
    later = time.time() + 5
    os.utime(src, (later, later))
    tallysim.load_plugin("nbplugin_dec07")
    assert "plugin 'nbplugin_dec07' was imported before and its file has changed since" in capsys.readouterr().err
    assert "nbproto2_dec07" not in protocols.names()         # still the first import, as the warning says


@pytest.mark.parametrize("bits, ok", [
    (dict(up=-5, down=0, active=4), False),        # ran: "-6.25e-07 MB per peer"
    (dict(up=1.5, down=0, active=4), False),       # ran: fractional bits
    (dict(up=8, down=float("nan"), active=4), False),
    (dict(up=8, down=0, active=4, up_total=-1), False),
    (dict(up=True, down=0, active=4), False),
    (dict(up=1024, down=0, active=4), True), (dict(up=np.int64(1024), down=1024.0, active=4, up_total=4096), True),
])
def test_a_plugins_cost_must_count_whole_bits(bits, ok):
    from tallysim.protocols import contract
    from tallysim.sim.comm import RoundBits
    cost = contract._checked_cost("protocol 'p' (plugin 'm')", lambda info: RoundBits(**bits))
    if ok:
        assert cost({}) == RoundBits(**bits)
    else:
        with pytest.raises(ConfigError, match=r"protocol 'p' \(plugin 'm'\): cost\(info\) returned RoundBits\(\w+="):
            cost({})

