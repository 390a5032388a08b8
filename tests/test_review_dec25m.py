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
