"""Issue 30, sections 4 and 5: sizes that used to hang, the typed API's wrong types, and config typos,
repeats and JSON strings, each refused in one line before anything is built or compiled."""
import dataclasses
import json
import subprocess
import sys

import pytest

from tallysim import cli, config, run, sizing  # noqa: F401 (run: imported before jit is patched)
from tallysim.config import Config, ConfigError




# ----------------------------------------------------------------------------- sizes that hung

LIMITED = [(key, [f"{key}={hi + 1}"]) for key, (hi, _) in sizing.LIMITS.items()] + [
    ("seeds", ["seeds=100000"]), ("data.num_classes", [f"data.num_classes={10**6}"]),
    ("rounds", [f"rounds={2**31 - 1}", f"eval_every={2**31 - 1}"])]


@pytest.mark.parametrize("key,items", LIMITED, ids=[" ".join(i) for _, i in LIMITED])
def test_sizes_that_hang_are_refused_with_the_limit_and_why(key, items, tmp_path, capsys, no_compile):
    assert cli.main(["run", "data.name=synthetic", *items, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    hi, why = sizing.LIMITS[key]
    assert err.count("\n") == 0 and f"{key}=" in err and f"more than {hi:,}" in err and why in err, err
    assert not (tmp_path / "r").exists()


BATCHES = [("protocol.name=tally", "distill.batch_size"), ("protocol.name=softlabel", "distill.batch_size"),
           ("protocol.name=feddf", "feddf.batch_size"), ("protocol.name=fedavg", "batch_size")]


@pytest.mark.parametrize("protocol,key", BATCHES, ids=[f"{p} {k}" for p, k in BATCHES])
def test_an_absurd_batch_is_refused_by_the_memory_estimate(protocol, key, tmp_path, capsys, no_compile):
    # distill.batch_size and feddf.batch_size escaped the estimate: an 8 TB allocation failed on the device
    assert cli.main(["run", "data.name=synthetic", protocol, f"{key}={2**31 - 1}", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "of memory" in err and key in err.rsplit("lower", 1)[1], err


def test_every_limit_is_the_declared_bound():
    for key, (hi, _) in sizing.LIMITS.items():
        assert config.declared()[key].range[1] == hi, key
        config.validate(config.apply_overrides(Config(), ["data.name=synthetic", f"{key}={hi}"])
                        if key not in ("seeds", "data.num_classes") else Config())   # the limit itself is allowed


# ----------------------------------------------------------------------------- the typed API

SECTIONS = [f.name for f in dataclasses.fields(Config) if dataclasses.is_dataclass(f.default_factory
                                                                                     if callable(f.default_factory) else None)]


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("value", ["fedavg", 3, None, ["a"]], ids=["str", "int", "none", "list"])
def test_a_section_given_a_scalar_is_refused_at_construction(section, value):
    want = rf"Config\({section}=.*\): {section} is a section, not \w+; expected \w+Config\(\.\.\.\) or a dict"
    with pytest.raises(ConfigError, match=want):
        Config(**{section: value})
    with pytest.raises(ConfigError, match=want):
        dataclasses.replace(Config(), **{section: value})
    with pytest.raises(ConfigError, match=want):
        Config().replace(**{section: value})
    with pytest.raises(ConfigError, match=rf"'nope' is not a {section}\.\* field; allowed: "):
        Config(**{section: {"nope": 1}})


def test_a_section_given_as_a_dict_or_itself_still_works():
    cfg = Config(protocol={"name": "fedavg"}, optim=config.OptimConfig(lr=0.1))
    assert cfg.protocol.name == "fedavg" and cfg.optim.lr == 0.1
    assert dataclasses.replace(cfg, optim={"name": "adam"}).optim.name == "adam"
    assert cfg.replace(optim=config.OptimConfig(name="adam")).optim == config.OptimConfig(name="adam")


@pytest.mark.parametrize("seed", [-1, 2**31, True, 1.0, "0"])
def test_drive_refuses_a_seed_the_seed_field_would(seed, no_compile):
    import tallysim
    with pytest.raises(ConfigError, match=rf"drive\(seed={seed!r}\): expected an integer in 0\.\.2147483647"):
        tallysim.drive(Config(), seed=seed)


# ----------------------------------------------------------------------------- keys, repeats, JSON types

NEAR = [("peer=4", "peers"), ("optim.lrr=0.1", "optim.lr"), ("optm.lr=0.1", "optim.lr"), ("lr=0.1", "optim.lr"),
        ("distil.weight=1", "distill.weight"), ("probe.per_rnd=5", "probe.per_round"), ("seeed=1", "seed"),
        ("fedavg.agregate=median", "fedavg.aggregate"), ("privacy.nosie=1", "privacy.noise")]


@pytest.mark.parametrize("item,near", NEAR, ids=[n[0] for n in NEAR])
def test_a_near_miss_key_gets_did_you_mean_everywhere(item, near, tmp_path, capsys, no_compile):
    key, value = item.split("=")
    assert cli.main(["run", item, "--out", str(tmp_path / "r")]) == 2            # the command line
    assert f"did you mean {near}" in capsys.readouterr().err
    head, _, tail = key.rpartition(".")
    doc = {head: {tail: json.loads(value) if value[0].isdigit() else value}} if head else {key: json.loads(value)}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    # a misspelt section in a file is named as such: 'optm' -> optim
    section = rf"|{head}' in .*c.json; did you mean .*{near.split('.')[0]}" if head else ""
    with pytest.raises(ConfigError, match=rf"unknown config key '({key}' in .*c.json; did you mean .*{near}{section})"):
        config.load_file(str(tmp_path / "c.json"))                                # a config file
    with pytest.raises(ConfigError, match=rf"did you mean .*{near}"):
        Config().replace(**{key: 1})                                              # the Python API


@pytest.mark.parametrize("argv", [["run", "peers=4", "peers=5"], ["run", "optim.lr=0.1", "rounds=2", "optim.lr=0.2"],
                                  ["run", "seed=0,1", "seeds=3"], ["sweep", "peers=4,5", "peers=6"]])
def test_a_key_repeated_on_the_command_line_is_refused(argv, tmp_path, capsys, no_compile):
    assert cli.main([*argv, "--out", str(tmp_path / "r")], repeats=False) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is given twice on the command line" in err, err
    assert not (tmp_path / "r").exists()


def test_the_real_command_line_refuses_a_repeat_and_python_keeps_last_wins(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tallysim", "run", "peer=3", "peers=4", "peers=5", "--print-config"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "tallysim: error: unknown config key 'peer'; did you mean peers?"], out.stderr
    out = subprocess.run([sys.executable, "-m", "tallysim", "run", "peers=4", "peers=5", "--print-config"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "peers is given twice on the command line ('peers=4' and 'peers=5')" in out.stderr
    # from Python a list extends a base, later items winning (tests' TINY + overrides), as apply_overrides
    assert config.apply_overrides(Config(), ["peers=4", "peers=5"]).peers == 5


@pytest.mark.parametrize("text", ['{"peers": 4, "peers": 5}', '{"optim": {"lr": 0.1, "lr": 0.2}}',
                                  '{"optim": {"lr": 0.1}, "optim": {"momentum": 0}}',
                                  '{"smoke": {"rounds": 1, "rounds": 2}}'])
def test_a_key_repeated_in_a_json_object_is_refused(text, tmp_path):
    (tmp_path / "c.json").write_text(text)
    with pytest.raises(ConfigError, match=r"c.json': the key '\w+' is given twice in one object"):
        config.load_file(str(tmp_path / "c.json"), smoke=True)


STRINGS = [({"peers": "4"}, "peers='4' is a string; expected an integer"),
           ({"optim": {"lr": "0.1"}}, "optim.lr='0.1' is a string; expected a number"),
           ({"probe": {"resample": "true"}}, "probe.resample='true' is a string; expected true or false"),
           ({"local_steps": "none"}, "local_steps='none' is a string; expected an integer or null"),
           ({"data": {"input_shape": "28x28x1"}}, "data.input_shape='28x28x1' is a string; expected"),
           ({"comm": {"soft_bits": "16"}}, "comm.soft_bits='16' is a string; expected an integer")]


@pytest.mark.parametrize("doc,expected", STRINGS, ids=[s[1].split("=")[0] for s in STRINGS])
def test_json_values_written_as_strings_are_refused(doc, expected, tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as e:
        config.load_file(str(tmp_path / "c.json"))
    assert expected in str(e.value) and "without quotes" in str(e.value), e.value


def test_print_config_prints_the_resolved_config_without_jax(tmp_path):
    script = ("import sys\nfrom tallysim import cli\nrc = cli.main(['run', '--print-config', *sys.argv[1:]])\n"
              "assert rc == 0 and 'jax' not in sys.modules, (rc, [m for m in sys.modules if m.startswith('jax')][:3])\n")
    out = subprocess.run([sys.executable, "-c", script, "protocol.name=fedavg", "peers=3", "--tensorboard",
                          str(tmp_path / "tb")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert doc["peers"] == 3 and doc["protocol"] == {"name": "fedavg"} and doc["init"]["shared"] is True
    assert doc["log"]["tensorboard"] == str(tmp_path / "tb") and "fedavg" in doc and not list(tmp_path.glob("*"))
    (tmp_path / "c.json").write_text(out.stdout)                # config.json's form: --config takes it back
    again = config.validate(config.load_file(str(tmp_path / "c.json")))
    assert json.loads(json.dumps(config.to_dict(again))) == doc


def test_run_without_out_or_print_config_is_one_line(capsys):
    assert cli.main(["run", "peers=3"]) == 2
    assert "run needs --out DIR" in capsys.readouterr().err
