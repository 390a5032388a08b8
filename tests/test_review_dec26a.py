"""review31: findings in the last session's merges (46a912e..d77a2ff), one test per fix or per check that no
test made (each mutation of the code it covers survived the day's tests). Nothing here compiles: the sweep
directories are written by hand, as test_hostile_dec07's _finished_sweep writes them."""
import json

from tallysim import cli, config, outdir, sweep, sweep_plan
from conftest import TINY, tiny

DIVERGED_LINE = "round 1, seed 1: the training loss is nan; the run stopped (try a smaller optim.lr)"


def _sweep_with_a_diverged_run(tmp_path, done: bool = True):
    """`seed=0,1` written by hand: seed=0 finished (or, `done=False`, never ran), seed=1 stopped on a
    non-finite loss under this very config (no checkpoint, error.txt says so). Returns (out, runs, cfgs)."""
    out = tmp_path / "s"
    runs = sweep.expand({}, ["seed=0,1"])
    cfgs = sweep.configs(tiny(), runs)
    for (name, _), cfg in zip(runs, cfgs):
        if name == "seed=0" and not done:
            continue
        d = outdir.claim(out / name, False)
        (d / "config.json").write_text(json.dumps(sweep._jsonable(config.to_dict(config.validate(cfg).resolved()))))
        (d / "metrics.jsonl").write_text('{"round": 1}\n')
        if name == "seed=0":
            (d / "metrics.jsonl").write_text('{"round": 1}\n{"round": 2}\n')
            (d / "done.json").write_text("{}")
        else:
            (d / "error.txt").write_text(DIVERGED_LINE + "\n")
    (out / "sweep.json").write_text(json.dumps({"runs": []}))
    return out, runs, cfgs


# ----------------------------------------------------------------------------- 1. sweep --dry-run's closing line

def test_a_dry_run_does_not_count_a_run_it_skips_as_diverged_as_one_to_run(tmp_path, capsys, no_compile):
    # each run's line said "failed before, skipped" and the compile count 0, but the closing line counted it
    # "to run" (DONE alone: the one place d77a2ff's sweep_plan.final did not reach): "2 runs (1 done, 1 to
    # run); 0 compiled programs"
    out, runs, _ = _sweep_with_a_diverged_run(tmp_path)
    assert cli.main(["sweep", *TINY, "seed=0,1", "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "failed before, skipped" in lines[1], lines
    assert lines[-1] == "2 runs (1 done, 1 skipped as diverged before, 0 to run); 0 compiled programs", lines


# ----------------------------------------------------------------------------- 2. what makes a NaN-stopped run final

def test_a_diverged_run_is_final_only_unchanged_unresumable_and_ours(tmp_path):
    # mutations of sweep_plan.diverged_before that each survived the day's tests: without its checkpoint
    # test, its run-directory test or its plugin test, a run the sweep must run (resume from a checkpoint an
    # older tallysim kept, a folder it did not write, a run of a plugin edited since) was skipped as final
    out, runs, cfgs = _sweep_with_a_diverged_run(tmp_path)
    d, cfg = out / "seed=1", cfgs[1]
    assert sweep_plan.diverged_before(d, cfg) == DIVERGED_LINE and sweep_plan.final(d, cfg)
    (d / "checkpoint.npz").write_bytes(b"")       # a lone run stopped so before leftovers40 kept it: resumed
    assert sweep_plan.diverged_before(d, cfg) is None and not sweep_plan.final(d, cfg)
    (d / "checkpoint.npz").unlink()
    (d / outdir.MARKER).unlink()                  # not a folder tallysim wrote: never taken for a run of it
    assert sweep_plan.diverged_before(d, cfg) is None
    outdir.mark(d)
    assert sweep_plan.diverged_before(d, cfg) == DIVERGED_LINE
    doc = json.loads((d / "config.json").read_text())
    doc["code"] = {"plugins": {"json": "crc32:00000000"}}      # a plugin whose source differs from the one it ran
    (d / "config.json").write_text(json.dumps(doc))
    assert sweep_plan.config_diff(d, cfg) == []               # `code` is the run's record, not a field
    assert sweep_plan.diverged_before(d, cfg) is None


def test_a_diverged_run_is_not_grouped_with_the_runs_to_do_nor_compiles(tmp_path):
    # sweep_plan.plan and compiles with DONE for `final` (mutations that survived): seed=1, skipped as diverged,
    # went into seed=0's program and ran again into the same NaN; its batch counted a compile in the ETA
    out, runs, cfgs = _sweep_with_a_diverged_run(tmp_path, done=False)
    dirs = [out / name for name, _ in runs]
    assert sweep_plan.plan(cfgs, dirs, grouped=True) == [[0], [1]]
    assert sweep_plan.compiles(cfgs, dirs, [[0], [1]], cached=False) == [1, 0]
    (dirs[1] / "error.txt").write_text("ValueError: something else\n")      # not diverged: it runs, grouped
    assert sweep_plan.plan(cfgs, dirs, grouped=True) == [[0, 1]]


def test_a_run_skipped_as_diverged_is_not_in_the_bars_rate(tmp_path, no_compile):
    # sweep.py's `bar.done(skipped=bool(line))` as `skipped=False` survived: the run skipped at once (no
    # compile, no round) counted in the rate, and the ETA of the runs after it promised their time too short
    out, runs, cfgs = _sweep_with_a_diverged_run(tmp_path)

    class Bar:
        told = []

        def batch_starts(self, compiles):
            pass

        def done(self, n=1, skipped=False):
            self.told.append((n, skipped))
    records = sweep.run_sweep(tiny(), runs, out, progress=True, log=lambda m: None, runs_bar=Bar())
    assert [(r["status"], r.get("diverged")) for r in records] == [("done_before", None), ("failed", True)]
    assert Bar.told == [(1, True), (1, True)]


# ----------------------------------------------------------------------------- 3. a figure selection's edges

def test_a_selections_read_back_drops_progress_but_keeps_notes_and_results():
    # figures.selection.ReadBack.note as `pass` survived: a note about a run in the second pass (its config.json
    # differs, its plugin changed, data changed since) was dropped with the skip lines
    from tallysim.figures import selection
    from tallysim.progress_base import QuietLog, result, say
    said = []
    back = selection.ReadBack(said.append)
    back("[1/2] skip a (done)")
    say(back, "  note: its config.json differs", "a")
    result(back, "fig: wrote fig.png")
    assert said == ["  note: its config.json differs", "fig: wrote fig.png"]


def test_panel_on_a_figure_without_panels_says_it_has_none():
    # the refusal's first branch (`if False:` survived): a figure without panels said "--panel x: not a
    # panel of this figure; allowed: " and named nothing
    import pytest
    from tallysim.config import ConfigError
    from tallysim.figures import selection
    from tallysim.figures.plans import Plans
    plans = Plans({"g": (tiny(), [("a", [])])}, {"g": [tiny()]}, {})
    with pytest.raises(ConfigError, match="this figure has no panels; allowed: leave out --panel"):
        selection.select(plans, {}, None, "x", "tag")


# ----------------------------------------------------------------------------- 4. an out path's new folders

def test_every_new_folder_of_an_out_path_is_checked_not_only_the_last(tmp_path):
    # out_path._plain_new_names stopping after the last component survived: `--out "runs /a"` made "runs "
    import pytest
    from tallysim import out_path
    from tallysim.config import ConfigError
    with pytest.raises(ConfigError, match="the directory 'runs ' it would create"):
        out_path.destination(str(tmp_path / "runs " / "a"))
    (tmp_path / "runs ").mkdir()            # made so before: only the file system checks it
    assert out_path.destination(str(tmp_path / "runs " / "a")) == tmp_path / "runs " / "a"
    assert not (tmp_path / "runs " / "a").exists()


# ----------------------------------------------------------------------------- 5. model_groups: refused before the runs

def _groups_figure(tmp_path, tally_sweep: dict, panels: bool = False):
    """A model_groups figure whose local group sweeps local_epochs=1,2 of its own (leftovers42's case)."""
    spec = {"kind": "model_groups", "title": "mg",
            "base": {"peers": 2, "rounds": 1, "model": {"groups": "a:1:mlp;b:1:mlp"},
                     "data": {"name": "synthetic", "train_size": 600, "test_size": 100},
                     "probe": {"per_round": 16}},
            "groups": {"local": {"protocol": {"name": "local"}, "sweep": {"local_epochs": [1, 2]}},
                       "tally": {"protocol": {"name": "tally"}, "sweep": tally_sweep}}}
    if panels:
        spec["panels"] = {"iid": {"partition": {"kind": "iid"}}, "skew": {"partition": {"alpha": 0.5}}}
    path = tmp_path / "mg.json"
    path.write_text(json.dumps(spec))
    return spec, path


def test_a_model_groups_local_axis_the_protocol_does_not_sweep_is_refused_before_any_run(tmp_path, capsys, no_compile):
    # leftovers42 refused it in groups_plot.local_baselines, while drawing: after every run of the figure had
    # run (hours at fig12's size); the plan says it before anything runs, in the same words
    import pytest
    from tallysim import figures
    from tallysim.config import ConfigError
    spec, path = _groups_figure(tmp_path, {})
    with pytest.raises(ConfigError) as e:
        figures.group_plans(spec, False, tmp_path)
    assert "model_groups figure: local training sweeps local_epochs of its own (local local_epochs=1, local " \
           "local_epochs=2), so 'tally' has no local run of its value to gain over" in str(e.value), e.value
    res = tmp_path / "res"
    assert cli.main(["figure", str(path), "--results", str(res), "--out", str(tmp_path / "f")]) == 2
    assert "so 'tally' has no local run" in capsys.readouterr().err and not res.exists()
    spec, _ = _groups_figure(tmp_path, {}, panels=True)          # per panel, named
    with pytest.raises(ConfigError, match="model_groups figure, panel iid: local training sweeps local_epochs"):
        figures.group_plans(spec, False, tmp_path)
    # the same values swept in the protocol's group (each run paired with the local run of its value): planned
    spec, _ = _groups_figure(tmp_path, {"local_epochs": [1, 2]}, panels=True)
    assert sorted(figures.group_plans(spec, False, tmp_path)) == ["local", "tally"]
    spec, _ = _groups_figure(tmp_path, {"local_epochs": [2]})     # a value local has: planned too
    figures.group_plans(spec, False, tmp_path)
    spec, _ = _groups_figure(tmp_path, {"local_epochs": [3]})     # one it does not: refused
    with pytest.raises(ConfigError, match="'tally local_epochs=3'|'tally' has no local run"):
        figures.group_plans(spec, False, tmp_path)


def test_cohort_draw_sequential_at_full_participation_with_model_groups_says_so():
    # config_rules' `active < cfg.peers` in the whole-groups refusal (without it survived): at participation=1
    # every peer is active, and that is the refusal to give, not "every model group is active whole"
    import pytest
    from tallysim import validation
    from tallysim.config import ConfigError
    with pytest.raises(ConfigError) as e:
        validation.single_run(tiny("protocol.name=tally", "rounds=1", "peers=2", "model.groups=a:1:mlp;b:1:mlp",
                                   "participation=1", "cohort_draw=sequential"))
    assert str(e.value).startswith("cohort_draw=sequential draws a cohort, but participation=1.0 makes all 2 "
                                   "peers active every round"), e.value


def test_a_sweep_run_name_with_stray_whitespace_is_refused_before_any_run(tmp_path, no_compile):
    # leftovers42 refused such a folder in out_path.destination, which a sweep reaches for a run only as the run
    # starts: the runs before it ran, then it "FAILED: --out '.../a '" and the sweep's failure record made the
    # very folder 'a ' (with error.txt) the check is there to keep from being made
    import pytest
    from tallysim.config import ConfigError
    out = tmp_path / "sw"
    with pytest.raises(ConfigError) as e:
        sweep.run_sweep(tiny(), [("b", []), ("a ", [])], out, progress=False, log=lambda m: None)
    assert str(e.value).startswith("sweep run 'a ': its directory, still to be created, would start or end with "
                                   "whitespace"), e.value
    assert not out.exists()
    (out / "a ").mkdir(parents=True)           # made so before: only the file system checks it
    assert outdir.check_name("a ", "sweep run", out) == "a "


def test_a_figure_group_or_run_folder_with_stray_whitespace_is_refused_before_any_group_runs(tmp_path, capsys,
                                                                                            no_compile):
    # a group "tally " was refused as "--out '<results>/<figure>/tally ': ..." (no --out was given); a panel
    # "p " of a sweep's single base run (its folder is the panel's name) only as its group's sweep started,
    # after the groups before it had run
    spec = {"kind": "curves", "title": "ws", "base": {"peers": 2, "rounds": 1, "protocol": {"name": "local"},
                                                      "data": {"name": "synthetic", "train_size": 600, "test_size": 100}},
            "groups": {"a": {}, "tally ": {}}}
    path, res = tmp_path / "ws.json", tmp_path / "res"
    path.write_text(json.dumps(spec))
    args = ["figure", str(path), "--results", str(res), "--out", str(tmp_path / "f")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "figure group 'tally ': its directory, still to be created, would start or end with whitespace" in err, err
    assert not res.exists()
    spec["groups"] = {"a": {}, "b": {}}
    spec["panels"], spec["kind"] = {"p": {"seed": 1}, "q ": {"seed": 2}}, "pareto"
    path.write_text(json.dumps(spec))
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "figure group 'a': run 'q ': its directory, still to be created" in err, err
    assert not res.exists()
