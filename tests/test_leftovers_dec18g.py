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
