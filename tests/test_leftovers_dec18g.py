"""Small leftovers (leftovers20): abbreviated long options refused, not read as the option they start."""
import pytest

from conftest import one_line


# ----------------------------------------------------------------------------- 1. no abbreviated options

@pytest.mark.parametrize("argv, typed", [
    (["bench", "--population", "--cohort", "100"], "--cohort"),     # was --cohort-draw: "unknown draw '100'"
    (["run", "--checkpoint", "2"], "--checkpoint"),                  # was --checkpoint-every
    (["run", "--overw", "--print-config"], "--overw"),               # was --overwrite
])
def test_an_abbreviated_option_is_unknown(argv, typed, capsys):
    line = one_line(capsys, argv)
    assert f"unrecognized arguments: {typed}" in line, line


def test_the_bench_ref_parser_refuses_abbreviations(capsys):
    from tallysim.bench import ref
    with pytest.raises(SystemExit) as e:
        ref.main(["--step", "1"])
    assert e.value.code == 2 and "unrecognized arguments: --step" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 2. a protocol's section in Config()

def test_the_constructor_takes_a_protocols_section_as_replace_does():
    """Config(tally={...}) was dataclass __init__'s TypeError ("unexpected keyword argument 'tally'"):
    tally's section is the protocol's own (Config.ext), not a dataclass field like protocol={...}."""
    import dataclasses
    from tallysim import Config
    from tallysim.fields import ConfigError
    cfg = Config(peers=3, tally={"target": "counts"})
    assert cfg == Config(peers=3).replace(tally={"target": "counts"}) and cfg.tally.target == "counts"
    assert dataclasses.replace(cfg, peers=4).tally.target == "counts"      # its copies keep it
    with pytest.raises(ConfigError, match="unknown config key 'bogus'"):
        Config(bogus=1)


# ----------------------------------------------------------------------------- 3. an underflowing number as typed

@pytest.mark.parametrize("item", ["participation=1e-400", "optim.lr=1e-400", "optim.lr=-2.5E-999"])
def test_a_number_that_underflows_is_refused_as_typed(item):
    """They read as 0.0 and were refused as "participation=0.0 must be in (0, 1]": not what was typed."""
    from tallysim import Config, config
    with pytest.raises(config.ConfigError) as e:
        config.apply_overrides(Config(), [item])
    assert str(e.value).startswith(f"{item} is smaller in size than the smallest float") and "0.0" in str(e.value)
    assert config.apply_overrides(Config(), ["faults.fraction=0e-400"]).faults.fraction == 0   # a zero stays one


# ----------------------------------------------------------------------------- 4. bench --population --set model.groups

def test_bench_population_refuses_model_groups_with_advice_it_accepts(capsys):
    """It advised "set peers=1", which --set refuses (peers is the bench's axis); the advised width runs."""
    from tallysim.bench import population
    line = one_line(capsys, ["bench", "--population", "--set", "model.groups=a:1"])
    assert "model.groups=a:1: the group counts would have to sum to every population" in line, line
    assert "peers=1" not in line and "e.g. model.width=64" in line, line
    assert population.parse_set("model.width=64") == ("model.width=64",)


# ----------------------------------------------------------------------------- 5. figure --out inside --results

@pytest.mark.parametrize("out", ["R", "R/figs", "R/../R/"])
def test_figure_out_inside_results_is_refused_up_front(out, tmp_path, monkeypatch):
    """The figures landed among the runs, and `tallysim clean R` then refused the whole folder."""
    from tallysim import figures
    from tallysim.config import ConfigError
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=rf"^--out {out} is --results R or inside it: .*allowed: an --out outside"):
        figures.preflight("fig1", True, "R", out)
    assert figures.preflight("fig1", True, "R", ".")[4] == "fig1-smoke"      # beside it is fine (and the default)
    assert not (tmp_path / "R").exists()


# ----------------------------------------------------------------------------- 6. a later seed chunk starting mid-run

CHUNKS = [(0, 2, 400), (2, 4, 400)]         # seeds=4, seed_chunk=2, rounds=400 (test_leftovers_dec18a's)


def test_the_lines_move_to_the_next_chunk_when_it_starts(capsys, monkeypatch):
    """run._run_chunk calls chunk_starts before each chunk: the first is a no-op (the bar said it compiles);
    at the second the lines said nothing until its first stretch came back, and the ticker, stopped,
    left "seeds 1-2 of 4, round 400/400" as the last word while seeds 3-4 compiled."""
    from tallysim import progress_lines
    monkeypatch.setenv("TALLYSIM_PROGRESS_INTERVAL", "0")
    bar = progress_lines.RoundLines(800, chunks=CHUNKS)
    bar.chunk_starts()                  # chunk 1: already announced
    bar.update(400, 10)                 # chunk 1 done (its only stretch: the compile)
    bar.chunk_starts()                  # chunk 2 starts
    bar.update(1, 10)                   # its first stretch: timed as its compile
    bar.update(1, 10)
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "seeds 1-2 of 4, round 0/400  compiling" and len(lines) == 5, lines
    assert lines[1].startswith("seeds 1-2 of 4, round 400/400  compiled in "), lines
    assert lines[2] == "seeds 3-4 of 4, round 0/400  compiling", lines
    assert lines[3].startswith("seeds 3-4 of 4, round 1/400  compiled in "), lines
    assert lines[4].startswith("seeds 3-4 of 4, round 2/400  ") and "s/round" in lines[4], lines


def test_the_bar_moves_to_the_next_chunk_when_it_starts(monkeypatch):
    from tallysim import progress
    monkeypatch.setenv(progress.MODE_ENV, "bars")
    bar = progress.round_bar(800, True, chunks=CHUNKS)
    try:
        bar.chunk_starts()
        assert bar.bar.desc.startswith("seeds 1-2 of 4, round 0/400 (compiling)"), bar.bar.desc
        bar.update(400, 10)
        assert bar.bar.desc.startswith("seeds 1-2 of 4, round 400/400"), bar.bar.desc
        bar.chunk_starts()
        assert bar.bar.desc.startswith("seeds 3-4 of 4, round 0/400 (compiling)"), bar.bar.desc
        assert bar.compile_s is None and bar.rate() is None        # its compile is not in the rate
        bar.update(1, 10)
        assert bar.bar.desc.startswith("seeds 3-4 of 4, round 1/400"), bar.bar.desc
        assert bar.compile_s is not None
    finally:
        bar.close()


def test_the_chunk_loop_tells_the_bar_each_chunk_starts():
    """The call itself, in run._run_chunk before the chunk's programs are built (the tests above: what it does)."""
    import inspect
    from tallysim import run
    src = inspect.getsource(run._run_chunk)
    assert src.index("bar.chunk_starts(") < src.index("_programs(b,")
