"""What a researcher stumbled on extending tallysim past the quick start (docs/write-a-protocol.md, privacy,
robustness, niid-bench, matched-bits, sweeps, groups, tracking, the how-tos, notebooks, api; the user-journey
pass of 2026-12-06), writing a plugin protocol from the docs alone, then sweeping, tabling and plotting it:

- write-a-protocol.md stopped at loading the plugin: nothing said how to get a table and a plot of it
  beside tally. The obvious one sweep, `protocol.name=tally,fedmix fedmix.mix=0.25,1`, ran tally once per
  value of fedmix.mix (the same run twice) without a word: `tallysim sweep` warns now, naming two runs
  that repeat, and the page shows the way that works (each protocol into its own folder of one directory);
- `tallysim figure experiments/matched_bits.json --smoke` ran fedct and its tally on 64 probes where its
  smoke.groups set 200 (the whole smoke pool, as the full figure's groups use the whole pool): smoke.base
  was merged over smoke.groups. A group's smoke fields win now."""
from pathlib import Path

import pytest

from tallysim import cli, config, figures, sweep
from tallysim.sweep_axes import expand, repeated_runs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SMALL = ["data.name=synthetic", "peers=4", "rounds=1", "probe.per_round=16"]


def _warning(axes: list[str]):
    runs = expand({}, SMALL + axes)
    return repeated_runs(runs, sweep.command_configs(config.Config(), runs))


# ----------------------------------------------------------------------------- a sweep that repeats a run

def test_a_protocol_crossed_with_another_protocol_s_knob_is_warned_about_naming_two_repeating_runs():
    line = _warning(["protocol.name=tally,fedprox", "fedprox.mu=0.01,0.1,0.5"])
    assert line is not None
    assert "protocol.name=tally__fedprox.mu=0.01 and protocol.name=tally__fedprox.mu=0.1" in line, line
    assert "protocol.name=tally does not read fedprox.mu" in line and "(2 run(s)" in line, line
    assert "tallysim table DIR" in line, line


def test_the_axis_at_its_default_value_counts_as_the_same_run_too():
    # fedprox.mu's default is 0.01: tally's run at the default and at 0.1 are the same experiment all the same
    assert _warning(["protocol.name=tally,fedprox", "fedprox.mu=0.01,0.1"]) is not None


@pytest.mark.parametrize("axes", [["protocol.name=tally,softlabel", "partition.alpha=0.1,0.5"],
                                  ["protocol.name=fedprox", "fedprox.mu=0.01,0.1"],
                                  ["protocol.name=tally,softlabel", "distill.weight=0.5,1"]])
def test_a_sweep_whose_runs_all_read_their_axes_is_not_warned_about(axes):
    assert _warning(axes) is None


@pytest.mark.parametrize("name", ["bridge", "bridge_novote", "distill", "fedavg", "feddf", "fedprox"])
def test_no_shipped_pareto_sweep_repeats_a_run(name):
    path = ROOT / "experiments" / "pareto" / f"{name}.json"
    runs = expand(config.read_file(str(path)).get("sweep") or {}, [])
    assert repeated_runs(runs, sweep.command_configs(config.load_file(str(path), sweep_base=True), runs)) is None


def test_tallysim_sweep_prints_the_warning_before_anything_runs(tmp_path, capsys):
    argv = ["sweep", *SMALL, "protocol.name=tally,fedprox", "fedprox.mu=0.01,0.1", "--out", str(tmp_path / "s"),
            "--dry-run"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "tallysim: warning: sweep runs protocol.name=tally__fedprox.mu=0.01 and" in err, err
    assert not (tmp_path / "s").exists()


def test_the_api_s_sweep_warns_too_and_once(tmp_path, capsys):
    """The warning was printed by `tallysim sweep` only: `tallysim.sweep.run_sweep` (the API's sweep) ran
    tally once per value in silence. Now run_sweep says it, before any directory is made, and the CLI's
    real sweep (which calls run_sweep) says it once, not twice."""
    from tallysim.config import ConfigError
    runs = expand({}, SMALL + ["protocol.name=tally,fedprox", "fedprox.mu=0.01,0.1"])
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")   # stops run_sweep after its checks, before anything compiles
    with pytest.raises((ConfigError, OSError)):
        sweep.run_sweep(config.Config(), runs, blocker, progress=False)
    assert capsys.readouterr().err.count("are the same experiment") == 1
    argv = ["sweep", *SMALL, "protocol.name=tally,fedprox", "fedprox.mu=0.01,0.1", "--out", str(blocker)]
    assert cli.main(argv) != 0
    assert capsys.readouterr().err.count("are the same experiment") == 1


def test_the_plugin_page_s_one_sweep_claim_holds_for_fedmix(monkeypatch, registry_restored):
    """write-a-protocol.md: one sweep `protocol.name=tally,fedmix fedmix.mix=0.25,1` runs tally twice, and
    tallysim sweep warns so; the page's way (a folder per protocol) is in its command block."""
    from tallysim import protocols
    monkeypatch.syspath_prepend(str(EXAMPLES))
    protocols.load_plugin("fedmix")
    line = _warning(["protocol.name=tally,fedmix", "fedmix.mix=0.25,1"])
    assert line and "protocol.name=tally does not read fedmix.mix" in line, line
    page = (ROOT / "docs" / "write-a-protocol.md").read_text()
    section = page.split("## Compare it with tally", 1)[1].split("\n## ", 1)[0]
    for command in ("--out runs/cmp/fedmix", "--out runs/cmp/tally", "tallysim table runs/cmp",
                    "tallysim plot runs/cmp/tally runs/cmp/fedmix/*/", "tallysim pareto runs/cmp"):
        assert command in section, command
    assert "`tallysim sweep` warns" in section


# ----------------------------------------------------------------------------- a figure's smoke groups

def test_a_group_s_smoke_fields_win_over_the_smoke_base():
    spec = config.read_file(str(ROOT / "experiments" / "matched_bits.json"))
    assert spec["smoke"]["base"]["probe"]["per_round"] == 64
    plans = figures.group_plans(spec, True, figures.EXPERIMENTS)
    per_round = {g: cfg.probe.per_round for g, (cfg, _) in plans.items()}
    for g in ("tally_fixed_pool", "fedct_b1", "fedct_b2", "fedct_xor_theta2", "fedct_xor_theta0.01"):
        assert per_round[g] == 200 == plans[g][0].probe.pool_size, (g, per_round[g])     # the whole smoke pool
    assert per_round["tally_4b"] == per_round["softlabel_8bit_80b"] == 64
    full = figures.group_plans(spec, False, figures.EXPERIMENTS)
    assert full["fedct_b1"][0].probe.per_round == 1000 and full["tally_4b"][0].probe.per_round == 500


# ----------------------------------------------------------------------------- a plugin's section not declared

def test_a_section_the_traits_do_not_declare_says_where_it_is_declared():
    """A plugin that defines its dataclass but leaves it out of TRAITS.sections failed in its factory with
    "Config has no field or section 'fedclip'" and no hint of where a section comes from."""
    with pytest.raises(AttributeError) as e:
        config.Config().fedclip
    assert "Config has no field or section 'fedclip'" in str(e.value)
    assert "TRAITS declares (sections={'fedclip': 'ItsDataclass'}" in str(e.value), e.value
    assert not hasattr(config.Config(), "fedclip")          # still an AttributeError: hasattr and getattr work


# ----------------------------------------------------------------------------- robustness.md's small run

def test_robustness_md_s_small_run_is_the_shipped_config_it_names(capsys):
    """robustness.md measured a small real-data run (78 runs, 34 programs) and gave no way to rerun it;
    experiments/robustness_small.json is that run (rerun: all 24 cells of the table again)."""
    page = (ROOT / "docs" / "robustness.md").read_text()
    assert "tallysim figure experiments/robustness_small.json" in page and "78 runs in 34 programs" in page
    spec = config.read_file(str(ROOT / "experiments" / "robustness_small.json"))
    base = spec["base"]
    assert (base["peers"], base["rounds"], base["seeds"], base["local_steps"], base["data"]["max_train"],
            base["probe"]["per_round"]) == (10, 5, 1, 5, 5000, 256)
    assert spec["sweep"] == {"faults.fraction": [0, 0.2, 0.4], "partition.alpha": [0.5]}
    table = page.split("## A small real-data run", 1)[1]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ") and "aggregator" not in line]
    assert rows == list(spec["groups"]), rows                    # the table's aggregators, in its order
    assert figures.dry_run(str(ROOT / "experiments" / "robustness_small.json"), log=print) == 34
    assert "robustness_small: 78 runs; 34 compiled programs" in capsys.readouterr().out


def test_robustness_json_s_notes_count_its_runs_and_programs():
    spec = config.read_file(str(ROOT / "experiments" / "robustness.json"))
    cells = len(spec["sweep"]["faults.fraction"]) * len(spec["sweep"]["partition.alpha"])
    attacks = [len(g["sweep"]["faults.kind"]) for g in spec["groups"].values()]
    runs, programs = sum(a * cells for a in attacks), sum(a + 1 for a in attacks)   # + the fault-free program
    assert f"{programs} programs, {runs} runs" in spec["notes"], spec["notes"]
    assert f"{runs} runs in {programs} programs" in (ROOT / "docs" / "robustness.md").read_text()


def test_a_float_field_without_an_upper_bound_is_written_as_the_page_says():
    """write-a-protocol.md showed only "(0, 1]"; a clip norm or a step size has no upper bound."""
    from tallysim import fields
    assert '`"(0, inf)"` for no upper bound' in (ROOT / "docs" / "write-a-protocol.md").read_text()
    fields.floats(1.0, "(0, inf)")                       # accepted
    with pytest.raises(ValueError, match="expected an interval"):
        fields.floats(1.0, "(0, )")


def test_fig10_s_table_heading_says_1_seed():
    from tallysim.figures import privacy_plot
    assert privacy_plot.epsilon_terms([{"seeds": 1}]).endswith("Setting: 1 seed")     # was "1 seeds"
    assert privacy_plot.epsilon_terms([{"seeds": 3}]).endswith("Setting: 3 seeds")
