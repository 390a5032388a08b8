"""Small leftovers (leftovers19, issue 35's "Smaller" list): a resume at a seed chunk's end names the
chunk that compiles, not the finished one's "400/400"; the refusal of a resume under other JAX random
settings names both the environment variable and the jax.config.update form; sizing.py and
bench/throughput.py, split by job, keep every name where it was."""
import pytest

from tallysim import checkpoint, progress, progress_base, progress_lines
from conftest import tiny

CHUNKS = [(0, 2, 400), (2, 4, 400)]         # seeds=4, seed_chunk=2, rounds=400 (test_leftovers_dec17b's)


# ----------------------------------------------------------------------------- a resume at a chunk's end

def test_a_chunk_end_is_the_next_chunks_round_0_while_it_compiles():
    assert progress_base.chunk_place(400, CHUNKS) == "seeds 1-2 of 4, round 400/400"     # just done: its last
    assert progress_base.chunk_place(400, CHUNKS, coming=True) == "seeds 3-4 of 4, round 0/400"
    assert progress_base.chunk_place(0, CHUNKS, coming=True) == "seeds 1-2 of 4, round 0/400"
    assert progress_base.chunk_place(542, CHUNKS, coming=True) == "seeds 3-4 of 4, round 142/400"
    assert progress_base.chunk_place(800, CHUNKS, coming=True) == "seeds 3-4 of 4, round 400/400"   # the last
    assert progress_base.chunk_place(2, [(0, 2, 2), (2, 3, 2)], "seeds", True) == "seed 3 of 3, round 0/2"


def test_the_lines_of_a_resume_at_a_chunks_end(capsys):
    """A resume at a chunk's end (run._run_chunk's marker: the next chunk at round 0) said "seeds 1-2 of 4,
    round 400/400  compiling (resumed)" while seeds 3-4 compiled: a hang in the finished chunk's last round."""
    bar = progress_lines.RoundLines(800, initial=400, chunks=CHUNKS)
    bar._compiling()                    # the ticker's line while a compile outlasts the interval
    bar.update(2, 10)
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "seeds 3-4 of 4, round 0/400  compiling (resumed)", lines
    assert lines[1].startswith("seeds 3-4 of 4, round 0/400  compiling  elapsed "), lines
    assert lines[-1].startswith("seeds 3-4 of 4, round 2/400  "), lines


def test_the_bar_of_a_resume_at_a_chunks_end(monkeypatch):
    monkeypatch.setenv(progress.MODE_ENV, "bars")
    bar = progress.round_bar(800, True, initial=400, chunks=CHUNKS)
    try:
        assert bar.bar.desc.startswith("seeds 3-4 of 4, round 0/400 (compiling)"), bar.bar.desc
        bar.update(1, 10)
        assert bar.bar.desc.startswith("seeds 3-4 of 4, round 1/400"), bar.bar.desc
    finally:
        bar.close()
    one = progress.round_bar(400, True, chunks=[(0, 4, 400)])      # one chunk: as before
    try:
        assert one.bar.desc.startswith("round (compiling)"), one.bar.desc
    finally:
        one.close()


class Crash(Exception):
    pass


@pytest.mark.slow       # 7.6 s (2-core CPU, loaded); the fast tests above cover the same progress code
def test_a_run_resumed_at_a_chunks_end_names_the_next_chunk(tmp_path, monkeypatch, capsys):
    """Through run.run: test_checkpoint_never's config (its compiled programs), stopped right after the
    marker that its first chunk is done, resumed with progress lines; stopped again once its bar is up.
    The reproduction: run._run_all gives the bar initial=2 (chunk 1's rounds) for the marker's round 0."""
    from tallysim import run as run_mod
    cfg = tiny("protocol.name=fedavg", "rounds=2", "seeds=3", "seed_chunk=2", "eval_every=1")
    out = tmp_path / "run"
    real_save = checkpoint.save

    def save(out_dir, state, meta):
        real_save(out_dir, state, meta)
        if state is None:               # the marker between two chunks
            raise Crash(meta)
    with monkeypatch.context() as m:
        m.setattr(checkpoint, "save", save)
        with pytest.raises(Crash):
            run_mod.run(cfg, str(out), progress=False, checkpoint_every=1)
    monkeypatch.setenv(progress.MODE_ENV, "lines")
    real_bar = run_mod.progress_bars.round_bar

    def round_bar(*a, **k):
        real_bar(*a, **k).close()
        raise Crash
    monkeypatch.setattr(run_mod.progress_bars, "round_bar", round_bar)
    capsys.readouterr()
    with pytest.raises(Crash):
        run_mod.run(cfg, str(out), progress=True, resume=True)
    err = capsys.readouterr().err
    assert "seed 3 of 3, round 0/2  compiling (resumed)" in err, err
    assert "round 2/2" not in err, err


# ----------------------------------------------------------------------------- the random generator's refusal

def test_the_random_refusal_names_the_environment_and_jax_config_update():
    """A notebook that set jax.config.update("jax_threefry_partitionable", ...) was told to set environment
    variables, which JAX, imported already, no longer reads."""
    from tallysim import code_identity
    now = code_identity.random_settings()
    was = {"prng_impl": "rbg", "threefry_partitionable": not now["threefry_partitionable"]}
    msg = code_identity.random_change({"random": was, "round": 3}, "x/checkpoint.npz")
    flag = str(was["threefry_partitionable"]).lower()
    assert f"allowed: resume with JAX_DEFAULT_PRNG_IMPL=rbg JAX_THREEFRY_PARTITIONABLE={flag} set in the " \
           "environment" in msg, msg
    assert ('jax.config.update("jax_default_prng_impl", "rbg"); jax.config.update("jax_threefry_partitionable", '
            f'{was["threefry_partitionable"]})') in msg, msg
    assert msg.endswith("or start again with --overwrite"), msg
    # a setting the checkpoint did not record is not named (it said JAX_THREEFRY_PARTITIONABLE=none)
    old = code_identity.random_change({"random": {"prng_impl": "rbg"}, "round": 3}, "x")
    assert "generator JAX_DEFAULT_PRNG_IMPL=rbg, and" in old and 'after jax.config.update("jax_default_prng_impl", ' \
           '"rbg"); or' in old, old
    assert code_identity.random_change({"random": now, "round": 3}, "x") == ""


def test_a_sweep_names_both_forms_too(tmp_path, monkeypatch):
    """sweep_resume.refuse_lost_checkpoints: its refusal is random_change's, as a sweep's line."""
    from tallysim import config, sweep_resume
    d = tmp_path / "seed=0"
    d.mkdir()
    (d / checkpoint.FILE).touch()       # read through read_meta, below: no run needed
    monkeypatch.setattr(checkpoint, "read_meta", lambda _: {"random": {"prng_impl": "rbg"}, "round": 1})
    with pytest.raises(config.ConfigError) as e:
        sweep_resume.refuse_lost_checkpoints([("seed=0", [])], [config.Config()], tmp_path, "done.json")
    msg = str(e.value)
    assert msg.startswith("sweep: ") and "JAX_DEFAULT_PRNG_IMPL=rbg set in the environment" in msg, msg
    assert 'jax.config.update("jax_default_prng_impl", "rbg")' in msg and msg.endswith("to run seed=0 again)"), msg


# ----------------------------------------------------------------------------- the two 400-line modules, split

def test_the_split_modules_names_are_where_they_were():
    """sizing.py and bench/throughput.py stood at the 400-line limit (test_hygiene): a run's shapes went to
    config_shapes.py, the table's text to bench/throughput_table.py; every caller's name is the moved
    object itself (one definition), and the names that tests monkeypatch on sizing stay its own."""
    from tallysim import config_shapes, sizing
    from tallysim.bench import flags, throughput, throughput_table
    for name in ("active_peers", "data_shape", "example_shape", "model_params", "models_bytes", "positions",
                 "trained_at_once"):
        assert getattr(sizing, name) is getattr(config_shapes, name), name
    for name in ("table", "header", "torch_available"):
        assert getattr(throughput, name) is getattr(throughput_table, name), name
    assert throughput.CONV_IMPLS is flags.CONV_IMPLS and throughput.REPEATS == flags.REPEATS == 3
    # CHUNK_BYTES is set on sizing by tests (test_lane_sizing), HINT_BYTES on storage_notes (test_population;
    # the run notes moved there with it): the functions that read each are its module's own, so a
    # monkeypatch of sizing.X (storage_notes.X) still reaches them
    from tallysim import storage_notes
    for name in ("peer_chunk", "eval_batch", "probe_chunk", "exchange_bytes"):
        assert getattr(sizing, name).__module__ == "tallysim.sizing", name
    for name in ("storage_hint", "cohort_note"):
        assert getattr(storage_notes, name).__module__ == "tallysim.storage_notes", name
