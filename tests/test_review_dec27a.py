"""review33: an adversarial review of the last session's merges (d77a2ff..5a6f573): compare, compare_text,
paired_stats, verdicts, sweep_gaps, wait_note, sweep_plan.changed_since, check_flags, init_range, the
progress lines' ETA, draw_floor, the unwritable TALLYSIM_DATA check, per_seed_csv.

Each test was written against a hand-made mutation of the merged code that passed every test of its module
(named in the test's docstring), or against a bug it fixes (said so). Nothing here compiles."""
import json
from pathlib import Path

import numpy as np
import pytest

from tallysim.config import ConfigError
from tallysim.results import compare as cmp
from tallysim.results import compare_text
from tallysim.results import paired_stats as ps
from conftest import hand_run, watch_wait_note




# ---- paired_stats ------------------------------------------------------------------------------------------

def test_t_cdf_is_scipys_on_both_sides_and_near_zero():
    """t_cdf is public and its betainc has two branches (the continued fraction at x or, by symmetry, at
    1 - x); only the 0.975 quantile was checked, whose bisection never needs the second branch to be right
    (mutation: always the first branch, 'if x < 2', passed every test)."""
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 10, 30, 200, 5000):
        for t in (-4.0, -1.5, -0.2, -0.01, 0.0, 0.01, 0.05, 0.2, 0.7, 1.5, 4.0, 40.0):
            assert ps.t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), rel=1e-9, abs=1e-12), (t, df)
    for a, b, x in ((2.5, 0.5, 0.99), (100.0, 0.5, 0.999), (0.5, 0.5, 0.9), (3.0, 7.0, 0.8)):
        assert ps.betainc(a, b, x) == pytest.approx(__import__("scipy.special").special.betainc(a, b, x), rel=1e-9)


# ---- compare: --by's values, pairing and labels --------------------------------------------------------------

def test_by_a_bool_field_and_a_null_one_read_as_the_command_line_writes_them(tmp_path):
    """--by probe.resample=true,false and --by local_steps=null,5: a bool read as 'true' / 'false' (mutation:
    no bool branch, so a bool went to the number branch and float('true') matched nothing), and a null
    config value as 'null' / 'none' (mutation: only str(value) == text, 'None')."""
    root = tmp_path / "sw"
    root.mkdir()
    for flag, shift in ((True, (0.1, 0.12)), (False, (0.0, 0.0))):
        hand_run(root / f"r{flag}", "tally", {0: [0.5 + shift[0]], 1: [0.6 + shift[1]]}, cfg={"probe": {"resample": flag}})
    p, = cmp.compare(root, by="probe.resample=true,false")
    assert p["diffs"] == pytest.approx([0.1, 0.12])
    root = tmp_path / "sw2"
    root.mkdir()
    hand_run(root / "none", "tally", {0: [0.7], 1: [0.8]}, cfg={"local_steps": None})
    hand_run(root / "five", "tally", {0: [0.6], 1: [0.75]}, cfg={"local_steps": 5})
    for by in ("local_steps=null,5", "local_steps=none,5"):
        p, = cmp.compare(root, by=by)
        assert p["diffs"] == pytest.approx([0.1, 0.05]), by


def test_by_is_refused_by_its_words_before_any_directory_is_read(tmp_path):
    """--by seed=0,1 and --by protocol.name=tally,tally are refused by what they say, whatever the
    directories (mutations: no seed-field refusal, which paired nothing and said 'no run has seed=1'; no
    equal-values refusal, which said the directory does not exist)."""
    gone = tmp_path / "nothing here"
    with pytest.raises(ConfigError, match="the seeds are what a comparison pairs"):
        cmp.compare(gone, by="seed=0,1")
    with pytest.raises(ConfigError, match="seeds are what"):
        cmp.compare(gone, by=" seeds =3,5")
    with pytest.raises(ConfigError, match="two different values"):
        cmp.compare(gone, by="protocol.name=tally, tally")


def test_a_b_setting_without_partner_is_named_and_labels_name_only_what_varies(tmp_path):
    """A B-side setting with no A partner is said to be left out (mutation: that note dropped), and a
    pair's label names the fields that vary between the pairs only: one pair of softlabel at 8 bits
    against tally (which reads no soft_bits) is unlabelled (mutation: every swept field in the label)."""
    root = tmp_path / "sw"
    root.mkdir()
    hand_run(root / "t", "tally", {0: [0.7], 1: [0.8]}, cfg={"comm": {"soft_bits": 32}})
    hand_run(root / "s8", "softlabel", {0: [0.6], 1: [0.75]}, cfg={"comm": {"soft_bits": 8}})
    p, = cmp.compare(root, by="protocol.name=softlabel,tally")
    assert p["pair"] == "" and "| pair |" not in cmp.compare(root, by="protocol.name=softlabel,tally").text()
    hand_run(root / "t_a03", "tally", {0: [0.7], 1: [0.8]}, cfg={"partition": {"kind": "dirichlet", "alpha": 0.3}})
    c = cmp.compare(root, by="protocol.name=softlabel,tally")
    assert len(c) == 1
    assert any("a run with protocol.name=tally (t_a03) has no run with protocol.name=softlabel" in n
               for n in c.notes), c.notes


def test_compare_a_b_with_by_pools_both_directories(tmp_path):
    """compare(a, b, by=...) reads the runs under both a and b (mutation: b dropped; the A side's runs under
    a then had no partner and compare refused)."""
    hand_run(tmp_path / "one" / "t", "tally", {0: [0.7], 1: [0.8]})
    hand_run(tmp_path / "two" / "l", "local", {0: [0.6], 1: [0.75]})
    p, = cmp.compare(tmp_path / "one", tmp_path / "two", by="protocol.name=tally,local")
    assert p["diffs"] == pytest.approx([0.1, 0.05])


def test_metric_ppl_is_the_headline_models_perplexity(tmp_path):
    """--metric ppl on a text run whose rows hold ppl_global (a server model) and ppl_mean: the headline
    model's, ppl_global (mutation: no ppl branch, 'ppl' itself: 'no value of ppl')."""
    extra = {"acc_global": 0.3, "ppl_mean": 99.0}
    a = hand_run(tmp_path / "a", "fedavg", {0: [310.0], 1: [320.0]}, key="ppl_global", row_extra=extra)
    b = hand_run(tmp_path / "b", "tally", {0: [300.0], 1: [305.0]}, key="ppl_global", row_extra=extra)
    p, = c = cmp.compare(a, b, metric="ppl")
    assert p["metric_a"] == "ppl_global" and p["diffs"] == pytest.approx([10.0, 15.0])


def test_big_values_print_six_significant_digits(tmp_path):
    """A perplexity of 1,127.4: the markdown prints 1127.4 and its difference +1e+03-sized values with 6
    significant digits, not 4 decimals (mutation: always 4 decimals)."""
    a = hand_run(tmp_path / "a", "tally", {0: [1127.4321], 1: [2345.6789]}, key="ppl_mean")
    b = hand_run(tmp_path / "b", "local", {0: [100.0], 1: [110.0]}, key="ppl_mean")
    text = cmp.compare(a, b, metric="ppl_mean").text()
    assert "| 0 | 1127.43 | 100.0000 | +1027.43 |" in text and "| 1 | 2345.68 | 110.0000 | +2235.68 |" in text, text


def test_float32_rounding_is_scaled_by_the_largest_value(tmp_path):
    """The 'flat' tolerance is the float32 rounding of the largest value: A near 0.5-0.7 against B near 0.001
    (a rounding of ~3e-8 in A, which the smallest value's 2**-21 * 0.001 = 5e-10 would call a real spread;
    mutation: min instead of max, and two seeds ahead by one count were 'A above B' again)."""
    a = [float(np.float32(x)) for x in (0.5013, 0.7013)]
    b = [float(np.float32(x)) for x in (0.0013, 0.2013)]
    d = [x - y for x, y in zip(a, b)]
    assert d[0] != d[1] and abs(d[0] - d[1]) < 2.0 ** -21 * 0.7
    p, = cmp.compare(hand_run(tmp_path / "a", "tally", {0: [a[0]], 1: [a[1]]}),
                     hand_run(tmp_path / "b", "local", {0: [b[0]], 1: [b[1]]}))
    assert p["flat"] and p["verdict"] == ps.LEVEL_WORD


def test_the_differ_note_names_six_fields_then_counts(tmp_path):
    """'A and B differ in:' names six fields, then '; N more' (mutation: five named)."""
    extra = {"optim": {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.001}, "peers": 8, "rounds_between": 1,
             "partition": {"kind": "dirichlet", "alpha": 0.3}}
    a = hand_run(tmp_path / "a", "tally", {0: [0.7], 1: [0.8]}, cfg={**extra, "eval_every": 2})
    b = hand_run(tmp_path / "b", "local", {0: [0.6], 1: [0.75]})
    note = next(n for n in cmp.compare(a, b).notes if n.startswith("A and B differ in"))
    named = note.split(": ", 1)[1].split("; ")
    assert len([x for x in named if "more" not in x]) == 6 and named[-1].endswith("more"), note


def test_the_header_names_each_sides_metric_where_they_differ(tmp_path):
    """A's acc_global against B's acc_mean: the markdown's metric line names both (mutation: A's alone)."""
    a = hand_run(tmp_path / "a", "fedavg", {0: [0.7], 1: [0.8]}, key="acc_global")
    b = hand_run(tmp_path / "b", "local", {0: [0.6], 1: [0.75]})
    assert "metric: acc_global (A) / acc_mean (B) at the final evaluation (round 1)" in cmp.compare(a, b).text()


# ---- experiments/per_seed_csv.py (no test ran it) -----------------------------------------------------------

def _fig_run(d: Path, seeds: list, values: list, *, done=True, rounds=3, nonfinite=0):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": rounds, "seed": seeds[0],
                                               "seeds": len(seeds)}))
    rows = []
    for r in range(1, rounds + 1):
        row = {"round": r, "bits_per_peer": 8.0 * r, "acc_global": None,
               "acc_mean": float(np.nanmean(values)) if r == rounds else 0.3}
        if len(seeds) > 1:
            row.update({"seeds": seeds, "per_seed": {"acc_mean": values if r == rounds else [0.3] * len(seeds)}})
            if nonfinite and r == rounds:
                row["seeds_nonfinite"] = {"acc_mean": nonfinite}
                row["acc_mean"] = float("nan")
        rows.append(json.dumps(row))
    (d / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    if done:
        (d / "done.json").write_text("{}")


def _per_seed_csv():
    import importlib.util
    spec = importlib.util.spec_from_file_location("per_seed_csv", Path(__file__).resolve().parents[1]
                                                  / "experiments" / "per_seed_csv.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_per_seed_csv_writes_the_final_rows_the_verdicts_read(tmp_path, capsys):
    """Its rows: each group's finished run folders of the panel field, each seed's final acc_mean, the panel
    renamed (partition.alpha=0.1 -> alpha=0.1), --seeds keeping only those, --header lines first as '# '
    comments; an unfinished run left out and said; --panel panels takes the run folder's name."""
    psc = _per_seed_csv()
    fig = tmp_path / "fig"
    _fig_run(fig / "tally" / "partition.alpha=0.1", [0, 1, 2], [0.61, 0.62, 0.63])
    _fig_run(fig / "tally" / "partition.alpha=0.5", [0, 1, 2], [0.71, 0.72, 0.73], done=False)
    _fig_run(fig / "local" / "partition.alpha=0.1", [0, 1, 2], [0.51, 0.52, 0.53])
    _fig_run(fig / "local" / "other", [0, 1, 2], [0.9, 0.9, 0.9])
    assert psc.main([str(fig), "--seeds", "1,2", "--header", "made by hand"]) == 0
    out, err = capsys.readouterr()
    assert out == ("# made by hand\ngroup,panel,seed,round,acc_mean\nlocal,alpha=0.1,1,3,0.520000\n"
                   "local,alpha=0.1,2,3,0.530000\ntally,alpha=0.1,1,3,0.620000\ntally,alpha=0.1,2,3,0.630000\n"), out
    assert "partition.alpha=0.5 has not finished; left out" in err
    rows = psc.rows(fig, "", "", None)
    assert ("local", "other", 0, 3, 0.9) in rows and ("tally", "partition.alpha=0.1", 2, 3, 0.63) in rows
    with pytest.raises(psc.Refused, match="no finished run folder"):
        psc.rows(fig, "optim.lr", "lr", None)


def test_per_seed_csv_one_seed_runs_and_nonfinite_seeds(tmp_path):
    """Bugs: a one-seed run (its rows name no seeds, no per_seed) was a KeyError traceback; a diverged seed's
    NaN was written as 'nan', which verdicts.py read as a value: every statistic of its row NaN and the
    verdict 'level within noise' in silence. Now the one-seed run's seed is config.json's, and a non-finite
    seed is refused by name (main's fix: the verdicts need every seed's), unless --seeds leaves it out."""
    psc = _per_seed_csv()
    fig = tmp_path / "fig"
    _fig_run(fig / "tally" / "partition.alpha=0.1", [4], [0.61])
    _fig_run(fig / "local" / "partition.alpha=0.1", [0, 1, 2], [0.51, float("nan"), 0.53], nonfinite=1)
    with pytest.raises(psc.Refused, match="seed 1 has no finite acc_mean in its last row"):
        psc.rows(fig, "partition.alpha", "alpha", None)
    rows = psc.rows(fig, "partition.alpha", "alpha", {0, 2, 4})
    assert rows == [("local", "alpha=0.1", 0, 3, 0.51), ("local", "alpha=0.1", 2, 3, 0.53),
                    ("tally", "alpha=0.1", 4, 3, 0.61)]


def test_verdicts_refuse_a_nan_seed(tmp_path, monkeypatch):
    """A per-seed CSV holding 'nan' (per_seed_csv.py wrote a diverged seed so) made the verdict's mean,
    interval and everything NaN, and its status 'level within noise', in silence: now refused by name."""
    from tallysim.results import verdicts as v
    (tmp_path / "x.csv").write_text("# how\ngroup,panel,seed,round,acc_mean\ntally,p,0,3,0.5\ntally,p,1,3,nan\n"
                                    "tally,p,1,2,0.4\n")
    monkeypatch.setattr(v, "FIG", tmp_path)
    with pytest.raises(ValueError, match="x.csv: group=tally:panel=p, seed 1, round 3: acc_mean='nan' is not an accuracy; "
                                         r"allowed: a fraction in \[0, 1\] for every seed"):
        v._values((("x.csv",), "tally", "p", None, None))
    assert v._values((("x.csv",), "tally", "p", "2", None)) == {1: 0.4}


# ---- the progress lines' `running ... ETA` ---------------------------------------------------------------------

def test_a_running_lines_eta_is_the_rounds_left_at_the_pace_less_the_stretch_so_far(monkeypatch, capsys):
    """On a fake clock: compiled at 130 s (rounds 1-2), the second stretch (rounds 3-4) back at 170 s: 20 s a
    round, 6 rounds left = 120 s, 15 s of them spent at 185 s: 'ETA 1m45s'; nothing while a line was said
    within the interval; 0 s, not negative, past the expected end. The existing test matched 'ETA \\d+s' only
    (mutations that survived: the stretch's time not subtracted, the pace over the time to now, the rounds
    left counted from the compiled stretch, the heartbeat's own clock ignored)."""
    import time

    from tallysim import progress, progress_lines
    monkeypatch.setenv(progress.INTERVAL_ENV, "1000")       # the ticker thread stays quiet; the test ticks
    clock = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    lines = progress_lines.RoundLines(10)
    try:
        lines.interval = 10.0

        def tick(at):
            clock[0] = at
            capsys.readouterr()
            lines._running()
            return capsys.readouterr().err.strip()
        clock[0] = 130.0
        lines.update(2, 10)
        assert tick(135.0) == ""                                    # said 5 s ago
        assert tick(150.0) == "round 2/10  running  elapsed 50s  (ETA after the next stretch of rounds)"
        assert tick(155.0) == ""                                    # its own line 5 s ago
        clock[0] = 170.0
        lines.update(2, 10)
        assert tick(185.0) == "round 4/10  running  elapsed 1m25s  ETA 1m45s"
        assert tick(190.0) == ""
        assert tick(400.0) == "round 4/10  running  elapsed 5m00s  ETA 0s"
        lines.chunk_starts()        # a next seed chunk compiling: its own `compiling` lines, no `running`
        assert tick(500.0) == ""
    finally:
        lines.close()


# ---- sim/wait_note: on a fake clock -------------------------------------------------------------------------------



def test_the_wait_note_judges_each_period_by_its_own_cpu_time(monkeypatch, capsys):
    """A busy period then an idle one is stuck after 1200 s (mutations that survived: the CPU time counted
    from the start, so the busy period hid the hang for ever; 'after 600 s' for every later period); 6 CPU s
    in 600 s (1% of a core) is idle, the threshold being BUSY per wall second, not BUSY seconds a period;
    no '()' where the caller named no work."""
    assert watch_wait_note(monkeypatch, capsys, [500.0, 500.0]) == ""                     # working all along
    err = watch_wait_note(monkeypatch, capsys, [500.0, 0.0, 500.0])
    assert err.count("\n") == 1 and "after 1200 s (rounds 1-400) and the process used 0.0% of a core over the last 600 s" in err, err
    assert "after 600 s (rounds 1-400) and" in watch_wait_note(monkeypatch, capsys, [6.0])
    assert "after 600 s and the process used 0.0% of a core" in watch_wait_note(monkeypatch, capsys, [0.0], what="")
    assert "after 600 s; the device may still be computing" in watch_wait_note(monkeypatch, capsys, [500.0],
                                                                               what="", on_cpu=False)


# ---- partition_file.draw_floor ----------------------------------------------------------------------------------

class _Ax:
    def __init__(self):
        self.lines = []

    def axhline(self, y, **kw):
        self.lines.append((y, kw["label"]))


def _floored(d: Path, floor):
    d.mkdir(parents=True)
    if floor is not None:
        (d / "partition.json").write_text(json.dumps({"majority_acc": floor, "majority_class": 4}))
    return d


def test_draw_floor_only_for_an_accuracy_and_one_recorded_floor(tmp_path):
    """A std column is no accuracy to draw a floor under (mutation: the _std test dropped); runs with no
    partition.json have no floor (mutation: the None test dropped: axhline(None) and a format error)."""
    from tallysim.results import partition_file
    dirs = [_floored(tmp_path / "a", 0.0898), _floored(tmp_path / "b", 0.0898)]
    for metric, want in (("auto", 1), ("acc_mean", 1), ("acc_mean_std", 0), ("ppl", 0)):
        ax = _Ax()
        partition_file.draw_floor(ax, dirs, metric)
        assert len(ax.lines) == want, metric
    ax = _Ax()
    partition_file.draw_floor(ax, [_floored(tmp_path / "c", None), _floored(tmp_path / "d", None)], "auto")
    assert ax.lines == []


# ---- results/sweep_gaps ----------------------------------------------------------------------------------------

def _sweep_json(d: Path, runs: list) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "sweep.json").write_text(json.dumps({"runs": runs}))
    return d


def test_sweep_gaps_edges(tmp_path):
    """Mutations that survived: a run of no sweep named with parents=True (plot DIR) read its parent folder's
    other sweeps; a sweep named twice said twice; a listed entry without a name a KeyError; a done run whose
    metrics.jsonl is gone promised a rerun (the sweep keeps a done run); more than 4 names not cut short."""
    from tallysim.results import sweep_gaps
    sw = _sweep_json(tmp_path / "sw", [{"name": f"r{i}", "status": "pending"} for i in range(6)]
                     + [{"status": "pending"}])
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "metrics.jsonl").write_text("")
    assert sweep_gaps.notes([str(lone)], "plot", parents=True) == []
    [line] = sweep_gaps.notes([str(sw), str(sw), str(tmp_path)], "table")
    assert "6 of 6 runs" in line and ": r0, r1, r2, r3 and 2 more;" in line, line
    done = _sweep_json(tmp_path / "done", [{"name": "g", "status": "done_before"}, {"name": "h", "status": "done"}])
    [line] = sweep_gaps.notes([str(done)], "table")
    assert line.endswith("its metrics.jsonl is gone: g, h"), line
    assert sweep_gaps.notes([str(tmp_path / "nothing"), str(lone / "metrics.jsonl")], "table") == []


# ---- sweep_plan.changed_since and its readers ------------------------------------------------------------------

def test_changed_since_says_the_config_first_then_plugins_then_code(tmp_path, monkeypatch):
    """The three-way test behind the skip notes, the dry run's state and a NaN-stopped run's again_why, with
    its inputs faked: the config's keys first, four of them named (mutations: plugins first; one key), a
    plugin's note in the dry run's state and in a kept run's skip note (mutations: both notes dropped); a
    run that did not stop on a NaN has no again line even where something changed (mutation: its test
    dropped, every changed run got 'stopped on a non-finite loss before')."""
    from tallysim import sweep_plan, sweep_records
    monkeypatch.setattr(sweep_plan, "config_diff", lambda d, c: ["a", "b", "c", "d", "e"])
    monkeypatch.setattr(sweep_plan, "plugin_edits", lambda d: ["p.py"])
    monkeypatch.setattr(sweep_plan, "tallysim_change", lambda d: "tallysim's code has changed")
    assert sweep_plan.changed_since(tmp_path, None) == ("config", "a, b, c, d, ...")
    monkeypatch.setattr(sweep_plan, "config_diff", lambda d, c: [])
    assert sweep_plan.changed_since(tmp_path, None) == ("plugin", "p.py")
    d = tmp_path / "r"
    d.mkdir()
    (d / "done.json").write_text("{}")
    assert sweep_plan.state(d, None) == "done; skipped, though plugin p.py has changed since it ran"
    said = []
    sweep_records.skip_done(d, {}, None, said.append, "[1/1]")
    assert said[1] == f"  note: plugin p.py has changed since this run finished (its rows are the old code's); " \
                      f"delete {d / 'done.json'} to rerun it", said
    assert sweep_plan.again_line(tmp_path / "never ran", None) == ""


def test_tallysim_change_reads_the_last_resume_that_recorded_code(tmp_path):
    """The code that computed a run's last rounds is its last resume's with a `code` (mutations: the first
    resume's, which called a run resumed under this code 'changed'; a resume entry without `code` taken,
    a KeyError traceback)."""
    from tallysim import code_identity, sweep_plan
    now = code_identity.identity()
    old = {**now, "source": "crc32:00000000"}
    d = tmp_path / "r"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"code": old, "resumed": [{"round": 2, "code": old},
                                                                         {"round": 4, "code": now}, {"round": 6}]}))
    assert sweep_plan.tallysim_change(d) == ""
    (d / "config.json").write_text(json.dumps({"code": now, "resumed": [{"round": 2, "code": old}, {"round": 4}]}))
    assert sweep_plan.tallysim_change(d).startswith("tallysim's code has changed since it ran")


# ---- check_flags, make_figure's arguments ---------------------------------------------------------------------

def test_flags_are_bools_and_checkpoint_every_zero_is_never(tmp_path):
    """run_sweep(progress=1) or grouped="no" refused before anything is written, a numpy bool taken
    (mutations: ints taken; run_sweep's check dropped: no test called it since it moved); make_figure's
    checkpoint_every=0 means never, allowed (mutation: refused below 1)."""
    from tallysim import sweep
    from tallysim.figures import arguments
    from tallysim.sweep_arguments import check_flags
    with pytest.raises(ConfigError, match=r"run_sweep\(progress=1\): expected True or False"):
        check_flags("run_sweep", {"progress": 1})
    check_flags("make_figure", {"grouped": np.bool_(True), "progress": False})
    out = tmp_path / "sw"
    with pytest.raises(ConfigError, match=r"run_sweep\(grouped='no'\): expected True or False"):
        sweep.run_sweep(None, [("a", [])], out, grouped="no")
    assert not out.exists()
    arguments.check("results", "figures", print, 0, progress=True, grouped=False)
    with pytest.raises(ConfigError, match="checkpoint_every=-1"):
        arguments.check("results", "figures", print, -1, progress=True, grouped=False)


# ---- model groups drawn through peers.init_range -------------------------------------------------------------

def test_a_model_group_after_the_first_draws_its_own_peers_keys():
    """A group's peers lo..hi-1 get the one-model run's keys split(key, P)[lo:hi]: a Dense group (peer 0)
    then an LSTM group (peers 1-2, the QR path), then a Dense group (peer 3). The existing test had the LSTM group at lo = 0, where
    split(key, 2) and split(key, 3)[:2] agree, and checked the later group's shape only (mutations that
    survived: split(key, hi - lo) on either path; context through init_params of hi - lo peers)."""
    from types import SimpleNamespace

    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    from tallysim.protocols.context import Context
    from tallysim.sim.text_models import LSTM
    lstm = LSTM(num_classes=20, embed=4, hidden=8, layers=1)
    groups = [SimpleNamespace(model=nn.Dense(4), lo=0, hi=1), SimpleNamespace(model=lstm, lo=1, hi=3),
              SimpleNamespace(model=nn.Dense(3), lo=3, hi=4)]
    tx = SimpleNamespace(tx=optax.sgd(0.1))
    fake = SimpleNamespace(cohort=False, model_groups=groups, spec=SimpleNamespace(peers=4, input_shape=(6,)),
                           group_contexts=lambda: [(g, tx) for g in groups])
    key = jax.random.PRNGKey(5)
    got = jax.jit(lambda k: Context.init_state(fake, k, None, shared=False).params)(key)
    keys, x = jax.random.split(key, 4), jnp.zeros((1, 6), jnp.float32)
    for g, params in zip(groups, got):
        want = [g.model.init(k, x) for k in keys[g.lo:g.hi]]
        for i, w in enumerate(want):
            assert all(np.array_equal(a[i], b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(w))), (g.lo, i)


def test_the_metric_line_names_every_pairs_metric_and_round(tmp_path):
    """Bug: `--by` over runs of 2 and 4 rounds (the second pair with a server model: acc_global) printed
    'metric: acc_mean at the final evaluation (round 2)', the first pair's alone, above a table whose second
    pair compared acc_global at round 4."""
    root = tmp_path / "sw"
    root.mkdir()
    hand_run(root / "t2", "tally", {0: [0.5, 0.7], 1: [0.5, 0.8]})
    hand_run(root / "l2", "local", {0: [0.5, 0.6], 1: [0.5, 0.75]})
    hand_run(root / "t4", "tally", {0: [0.5, 0.7, 0.7, 0.9], 1: [0.5, 0.8, 0.8, 0.85]}, key="acc_global")
    hand_run(root / "l4", "local", {0: [0.5, 0.6, 0.6, 0.6], 1: [0.5, 0.75, 0.7, 0.7]}, key="acc_global")
    text = cmp.compare(root, by="protocol.name=tally,local").text()
    assert "metric: acc_mean or acc_global (by pair) at each pair's final evaluation (rounds 2, 4)\n" in text, text
    one = cmp.compare(root / "t2", root / "l2").text()
    assert "metric: acc_mean at the final evaluation (round 2)\n" in one
    assert "metric: acc_mean at each seed's best evaluation\n" in cmp.compare(root / "t2", root / "l2", at="best").text()


def test_compares_edges_a_caller_meets(tmp_path, capsys):
    """Mutations that survived: a run with an empty metrics.jsonl refused as 'not finished (round 0 of 1)'
    rather than holding no row; compare(out=...) writing nothing; the CLI's --out - and its count of
    directories; Comparison.text('html') rendering markdown; summarize([]) a ZeroDivisionError."""
    from tallysim import cli
    a = hand_run(tmp_path / "a", "tally", {0: [0.7], 1: [0.8]})
    b = hand_run(tmp_path / "b", "local", {0: [0.6], 1: [0.75]})
    empty = hand_run(tmp_path / "e", "local", {0: [0.6], 1: [0.75]})
    (empty / "metrics.jsonl").write_text("")
    with pytest.raises(ConfigError, match=r"B .*e: its metrics.jsonl holds no row yet; allowed: finished runs"):
        cmp.compare(a, empty)
    c = cmp.compare(a, b, out=tmp_path / "o" / "c.csv")
    assert (tmp_path / "o" / "c.csv").read_text() == c.text("csv")
    with pytest.raises(ConfigError, match="--format 'html' is not known; allowed: markdown, csv"):
        c.text("html")
    assert cli.main(["compare", str(a), str(b), "--out", "-"]) == 2
    assert "--out - would write a file named '-'" in capsys.readouterr().err
    assert cli.main(["compare", str(a), str(b), str(empty)]) == 2
    assert "compare: 3 directories given; allowed: two run directories A B" in capsys.readouterr().err
    assert cli.main(["compare", str(a)]) == 2
    assert "compare: 1 directory given" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no paired difference"):
        ps.summarize([])


def test_verdicts_call_differences_equal_in_the_csvs_digits_flat(tmp_path, monkeypatch):
    """Bug (latent: no committed row has it): two seeds each 0.021087 ahead, as the CSV's six decimals give
    them, differ in float64 by ~1e-16, and verdicts (tolerance 0) took the 1e-16-wide interval for 'above'
    from two seeds: review32's equal-differences bug, on the docs' path. Now flat: the sign test's verdict."""
    from tallysim.results import verdicts as v
    (tmp_path / "x.csv").write_text("group,panel,seed,round,acc_mean\ntally,p,0,3,0.775537\ntally,p,1,3,0.706364\n"
                                    "local,p,0,3,0.754450\nlocal,p,1,3,0.685277\n")
    monkeypatch.setattr(v, "FIG", tmp_path)
    monkeypatch.setattr(v, "SPECS", [("s", "tally", "local", "above", "above", (("x.csv",), "tally", "p", None, None),
                                      (("x.csv",), "local", "p", None, None))])
    r, = v.rows()
    assert r["flat"] and r["verdict"] == ps.LEVEL_WORD and r["status"] == "level within noise", r
