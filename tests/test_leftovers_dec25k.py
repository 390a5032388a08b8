"""leftovers42 (one section per item): an out path whose new directory names hold stray whitespace or
control characters, refused by every entry point; cohort_draw=sequential where every model group is
active whole; model_groups' gain over the local run of the same own-axis value; a sweep run again skips
a run stopped by a non-finite loss under its config."""
import os

import pytest

import tallysim
from tallysim import cli, figures, sweep
from tallysim.config import ConfigError
from conftest import TINY, tiny


# ----------------------------------------------------------------------------- 1. out paths

@pytest.mark.parametrize("name", ["runs\n", " runs ", "runs\t", "a\x1bb"])
def test_an_out_path_with_stray_whitespace_is_refused_everywhere(tmp_path, monkeypatch, capsys, name):
    """`out="runs\\n"` (a line read from a file) silently created a folder whose name is not the one seen."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="neither start nor end with whitespace") as e:
        tallysim.run(tiny("rounds=1"), out=name, progress=False)
    assert repr(name) in str(e.value)
    with pytest.raises(ConfigError, match="would create"):
        sweep.run_sweep(tiny("rounds=1"), [("a", [])], name, progress=False, log=lambda m: None)
    assert cli.main(["run", *TINY, "rounds=1", "--out", name, "--quiet"]) == 2
    assert cli.main(["sweep", *TINY, "rounds=1", "--out", f"sw/{name}", "--quiet"]) == 2
    for kw in ({"results": name}, {"out": name}):
        with pytest.raises(ConfigError, match="would create"):
            figures.make_figure("fig1", smoke=True, progress=False, **kw)
    assert os.listdir(tmp_path) == []                     # nothing created before the refusal
    err = capsys.readouterr().err
    assert err.count("tallysim: error: --out") == 2, err


def test_an_existing_oddly_named_directory_stays_usable(tmp_path):
    """Only the names still to be created are checked: a folder made so before can be read and resumed."""
    from tallysim import outdir
    (tmp_path / " old ").mkdir()
    assert outdir.destination(tmp_path / " old " / "new") == tmp_path / " old " / "new"
    with pytest.raises(ConfigError):
        outdir.destination(tmp_path / " old " / "new ")


# ----------------------------------------------------------------------------- 2. cohort rules with model.groups

def test_cohort_draw_sequential_where_every_model_group_is_whole_is_refused():
    # each group draws max(1, round(participation x P_g)) of its P_g (round_helpers.active_set): a:1;b:1 at 0.5
    # draws 1 of 1 twice, no cohort, where the run-wide A = 1 < 2 passed the check
    from tallysim import validation
    groups = ["protocol.name=tally", "rounds=1", "peers=2", "model.groups=a:1:mlp,width=16;b:1:mlp"]
    with pytest.raises(ConfigError) as e:
        validation.single_run(tiny(*groups, "participation=0.5", "cohort_draw=sequential"))
    assert str(e.value).startswith("cohort_draw=sequential draws a cohort, but at participation=0.5 every model "
                                   "group is active whole each round (a 1 of 1, b 1 of 1"), e.value
    validation.single_run(tiny(*groups, "participation=0.5"))                   # sort: no refusal
    # a group with a cohort (a 1 of 1, b 2 of 3): sequential draws b's
    validation.single_run(tiny("protocol.name=tally", "rounds=1", "model.groups=a:1:mlp,width=16;b:3:mlp",
                               "participation=0.5", "cohort_draw=sequential"))


# ----------------------------------------------------------------------------- 3. model_groups' local baseline

def _groups_runs(tmp_path, local_ov: list, tally_ov: list) -> dict:
    """Fake runs (files, no compile) of a model_groups figure: local runs of accuracy 0.1 x their
    local_epochs (0.1 when they sweep none), a tally run of 0.5 each."""
    from test_figaxes_dec25j import _run
    cfg = {"model": {"groups": "a:1:mlp;b:1:mlp"}}

    def run(name, ov, proto, acc):
        return ov, _run(tmp_path / name, {**cfg, "protocol": {"name": proto}}, **{
            "acc_mean": acc, "acc_mean@a": acc, "acc_mean@b": acc, "bits_per_peer@a": 8.0, "bits_per_peer@b": 8.0})
    return {"local": [run(f"l{i}", ov, "local", 0.1 * float(ov.get("local_epochs", 1))) for i, ov in enumerate(local_ov)],
            "tally": [run(f"t{i}", ov, "tally", 0.5) for i, ov in enumerate(tally_ov)]}


def test_model_groups_gain_is_over_the_local_run_of_the_same_own_axis_value(tmp_path):
    # local_epochs=1,2 in both groups: each tally run's gain was over the last local run (0.2): +0.3 twice
    pytest.importorskip("matplotlib")
    from tallysim.figures import plots
    eps = [{"local_epochs": "1"}, {"local_epochs": "2"}]
    paths = plots.draw("model_groups", {}, _groups_runs(tmp_path, eps, eps), tmp_path / "out" / "g", "t")
    table = open(paths["table"]).read()
    assert "|  | tally local_epochs=1 | a | 1 | 0.5000 | 8 | +0.4000 |" in table, table
    assert "|  | tally local_epochs=2 | a | 1 | 0.5000 | 8 | +0.3000 |" in table, table


def test_model_groups_refuses_a_local_axis_the_protocol_does_not_sweep(tmp_path):
    pytest.importorskip("matplotlib")
    from tallysim.figures import plots
    data = _groups_runs(tmp_path, [{"local_epochs": "1"}, {"local_epochs": "2"}], [{}])
    with pytest.raises(ConfigError) as e:
        plots.draw("model_groups", {}, data, tmp_path / "out" / "g", "t")
    assert str(e.value).startswith("model_groups figure: local training sweeps local_epochs of its own (local "
                                   "local_epochs=1, local local_epochs=2), so 'tally' has no local run"), e.value


# ----------------------------------------------------------------------------- 4. a sweep run again over a NaN-stopped run

def test_a_run_stopped_on_a_non_finite_loss_is_final_for_the_same_sweep(tmp_path, monkeypatch):
    # it keeps no checkpoint (leftovers40), and a sweep run again ran it from round 1 into the same NaN;
    # docs/sweeps.md already said "the same sweep run again skips it"
    from tallysim import run, sweep_plan
    base, out = tiny("rounds=1", "protocol.name=local"), tmp_path / "sw"
    runs = [("a", []), ("b", ["optim.lr=1e30"])]                     # one program; b diverges
    first = sweep.run_sweep(base, runs, out, progress=False, log=lambda m: None)
    assert [(r["status"], r.get("diverged")) for r in first] == [("done", None), ("failed", True)]
    line = (out / "b" / "error.txt").read_text().splitlines()[0]
    assert sweep_plan.state(out / "b", sweep.configs(base, runs)[1]).startswith(
        f"failed before, skipped: it stopped on a non-finite loss under this config ({line})")
    for name in ("run", "run_group"):
        monkeypatch.setattr(run, name, lambda *a, **k: pytest.fail("a run ran again"))
    said = []
    again = sweep.run_sweep(base, runs, out, progress=False, log=said.append)
    assert [(r["status"], r.get("diverged"), r.get("error")) for r in again] == [
        ("done_before", None, None), ("failed", True, line)]
    assert any(s.startswith("[2/2] skip b (failed before: it stopped on a non-finite loss") for s in said), said
    # another config (a smaller step in the base) is another experiment: it runs again
    assert sweep_plan.diverged_before(out / "b", sweep.configs(tiny("rounds=1", "protocol.name=local",
                                                                    "optim.momentum=0"), runs)[1]) is None
