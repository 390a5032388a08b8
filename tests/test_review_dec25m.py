"""review30: findings in the day's merges (46a912e..main), one test per fix."""
from tallysim import sweep
from tallysim.figures import selection
from tallysim.figures.plans import Plans
from conftest import tiny


def test_a_selection_counts_a_run_stopped_on_a_non_finite_loss_as_final(tmp_path):
    # figonly46 drew a figure chosen by --only/--panel only once no run was missing, counting each run without
    # done.json; leftovers42 made a NaN-stopped run final (the sweep skips it, the full figure leaves it out),
    # so a figure with one was never drawn by a selection: "still missing runs: g (1)", run again, skipped again
    base, root = tiny("rounds=1", "protocol.name=local"), tmp_path / "fig"
    runs = [("a", []), ("b", ["optim.lr=1e30"])]                     # one program, as leftovers_dec25k's; b diverges
    recs = sweep.run_sweep(base, runs[:2], root / "g", progress=False, log=lambda m: None)
    assert [(r["status"], r.get("diverged")) for r in recs] == [("done", None), ("failed", True)]
    full = runs + [("c", ["seed=3"])]                                 # c never ran: still missing
    plans = Plans({"g": (base, full)}, {"g": sweep.configs(base, full)}, {})
    assert selection.missing(plans, root) == {"g": 1}
    (root / "g" / "c").mkdir()
    (root / "g" / "c" / "done.json").write_text("{}")
    assert selection.missing(plans, root) == {}


def test_a_run_skipped_as_diverged_has_its_data_checked_no_more(tmp_path, monkeypatch):
    # the sweep skips it (leftovers42) and so loads none of its data, but run_sweep, `sweep --dry-run` and a
    # figure still checked that data before anything ran: data moved since refused the whole sweep
    from tallysim.data import loading
    base, out = tiny("rounds=1", "protocol.name=local"), tmp_path / "root" / "g"
    runs = [("a", []), ("b", ["optim.lr=1e30"])]
    sweep.run_sweep(base, runs, out, progress=False, log=lambda m: None)     # a done, b diverged
    cfgs = sweep.configs(base, runs)
    assert sweep.unfinished(runs, cfgs, out) == []
    (out / "a" / "done.json").unlink()                                        # a to run again: checked
    assert sweep.unfinished(runs, cfgs, out) == [cfgs[0]]
    checked = []
    monkeypatch.setattr(loading, "check_datasets", lambda c: checked.append([x.optim.lr for x in c]))
    plans = Plans({"g": (base, runs)}, {"g": cfgs}, {})
    plans.check_data(tmp_path / "elsewhere")            # nothing there: both runs will run, both checked
    plans.check_data(tmp_path / "root")                 # the figure's own folder: b is skipped, not checked
    assert checked == [[cfgs[0].optim.lr, 1e30], [cfgs[0].optim.lr]]
    # a config.json that cannot be read is no evidence of the same config (config_diff reads it as no
    # difference): the run is not skipped as diverged but runs again
    from tallysim import sweep_plan
    assert sweep_plan.diverged_before(out / "b", cfgs[1])
    (out / "b" / "config.json").write_text('{"peers": 4')
    assert sweep_plan.diverged_before(out / "b", cfgs[1]) is None
