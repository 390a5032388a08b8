"""Leftovers the last closing note listed (leftovers17): vote_acc / softavg_acc with nothing scored, the
memory estimate's kept results of faults and Confident-GNMax, figures.ipynb's progress without ipywidgets,
an all-skipped sweep re-run's data digests, a moved relative .npz path on resume, the shipped figure
tables' bit format and `table --metric` with a name it cannot show. Each test names what the input did
before its fix; tiny inputs, no training except where a run is the thing tested."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from test_hostile_dec16 import _npz                     # a 5-class .npz of 120 6x6 images, arrays replaceable
from test_leftovers_dec16b import _write_run            # a run directory of config.json and metrics.jsonl rows


BASE = {"protocol": {"name": "tally"}, "rounds": 2, "seeds": 2}


# ------------------------------------------------------------------ 1. vote_acc / softavg_acc, nothing scored

def test_vote_and_softavg_acc_with_nothing_scored_are_nan():
    """A text round whose probe positions are all PAD/OOV/BOS/EOS scored nothing: vote_acc and softavg_acc
    read 0.0 (every answer wrong) where consensus_acc read NaN. Now the one rule (vote.scored_mean) gives
    NaN to all three, the blocked vote's too (it calls the same function); images (no mask) unchanged."""
    import jax.numpy as jnp
    from tallysim.sim import vote
    hit = jnp.array([1.0, 0.0, 1.0, 1.0])
    assert math.isnan(float(vote.scored_mean(hit, jnp.zeros(4))))
    assert float(vote.scored_mean(hit, jnp.array([1.0, 1.0, 0.0, 0.0]))) == pytest.approx(0.5)
    assert float(vote.scored_mean(hit)) == pytest.approx(0.75)
    logits = jnp.array([[[2.0, 0.0, 0.0]] * 4, [[0.0, 2.0, 0.0]] * 4, [[2.0, 0.0, 0.0]] * 4])   # [A, M, C]
    y = jnp.array([0, 0, 1, 2], jnp.int32)
    sums = vote.chunk_sums(logits, jnp.ones((3,), bool), y)
    winner, share = jnp.zeros(4, jnp.int32), jnp.full((4,), 2 / 3)
    out = vote.finish_diagnostics(sums, 3, y, winner, share, scored_M=jnp.zeros(4))
    assert math.isnan(float(out["vote_acc"])) and math.isnan(float(out["softavg_acc"])), out
    assert float(out["agreement"]) == pytest.approx(2 / 3)      # over every message, as before
    out = vote.finish_diagnostics(sums, 3, y, winner, share, scored_M=jnp.array([1.0, 1.0, 0.0, 0.0]))
    assert (float(out["vote_acc"]), float(out["softavg_acc"])) == (1.0, 1.0), out


def test_null_vote_acc_rounds_are_skipped_by_figures_and_pareto(tmp_path, capsys):
    """Its readers: the mechanism figure's band raised a TypeError (None - std) on a two-seed run with one
    null round, and `pareto --which best --metric vote_acc` skipped the run as having "no 'vote_acc' values" for its null last round."""
    from tallysim.figures import plots
    from tallysim.results import pareto, table
    rows = [{"round": r, "acc_mean": 0.5, "acc_mean_std": 0.01, "acc_global": None, "bits_per_peer": 100 * r,
             "vote_acc": v, "softavg_acc": v, "wrong_confidence": 0.4, "wrong_confidence_std": 0.02,
             "agreement": 0.9, **({} if v is None else {"vote_acc_std": 0.05, "softavg_acc_std": 0.05})}
            for r, v in ((1, 0.6), (2, None))]
    d = _write_run(tmp_path / "sw" / "partition.alpha=0.5", rows, {**BASE, "partition": {"alpha": 0.5}})
    paths = plots.mechanism({}, {"tally": [({"partition.alpha": "0.5"}, d)]}, tmp_path / "mech", "t")
    drawn = list(csv.DictReader(open(paths["csv"])))
    assert [r["vote_acc"] for r in drawn] == ["0.6", ""], drawn
    (row,) = table.table_rows([d], "vote_acc")[1]
    assert (row["final vote_acc"], row["best vote_acc"]) == (None, 0.6), row
    logged = []
    (p,) = pareto.collect([tmp_path / "sw"], which="best", metric="vote_acc", log=logged.append)
    assert (p["accuracy"], p["accuracy_final"]) == (0.6, None), p
    assert pareto.collect([tmp_path / "sw"], which="final", metric="vote_acc", log=logged.append) == []
    assert "last round's 'vote_acc' is null" in logged[-1] and "which=best reads its best round" in logged[-1], logged
    pareto.write_tables([p], [p], str(tmp_path / "pf.png"), "best", "vote_acc")      # "" for the null final


# ------------------------------------------------------------------ 2. the blocked vote's kept results

def test_the_estimate_counts_what_faults_and_confident_gnmax_keep_of_each_message():
    """Past the budget the blocked vote keeps 16 bytes of each message, and with faults the honest peers'
    two hits and count (6 more), with Confident-GNMax whether it answered (4 more): the estimate counted 16
    for all (its docstring said so), below what the program holds. 200,000 probes of 1,000 classes."""
    from tallysim import config, sizing
    items = ["protocol.name=tally", "data.name=synthetic", "data.num_classes=1000", "peers=4",
             "probe.per_round=200000", "probe.pool_size=200000", "data.train_size=400000"]

    def outputs(*more):
        cfg = config.apply_overrides(config.Config(), items + list(more))
        return dict((w, b) for w, b, _ in sizing.estimate_bytes(cfg))["the probe outputs"]
    plain = outputs()
    faulty = ["faults.kind=confident_wrong", "faults.fraction=0.25"]
    confident = ["privacy.noise=2.0", "privacy.threshold=3", "privacy.threshold_noise=1"]
    assert outputs(*faulty) == plain + 6 * 200_000
    assert outputs(*confident) == plain + 4 * 200_000
    assert outputs(*faulty, *confident) == plain + 10 * 200_000
    assert outputs("privacy.noise=2.0") == plain            # GNMax alone keeps nothing more a message
    # the seeds-per-program sizing (build.lane_shapes passes kept) counts them too
    shapes = dict(num_params=1000, peers=4, active=4, input_shape=(8,), batch_size=8, probe_batch=8,
                  probes=200_000, classes=1000, soft=False, blocked=True)
    assert sizing.per_seed_bytes(**shapes, kept=26) == sizing.per_seed_bytes(**shapes) + 10 * 200_000


def test_a_whole_draw_fallback_says_the_bytes_it_adds(monkeypatch):
    """Where the rows cannot be computed (another generator, a JAX whose draws differ) the whole draw is
    made and sliced; the warning said only "more memory than the estimate counts". It now names the draw,
    why, and the bytes: [7, 5] float32 and its padded copy, 4 * (2 * 35 + 3 * 5) = 340."""
    import jax
    from tallysim.sim import row_draws
    row_draws._whole.cache_clear()
    monkeypatch.setattr(row_draws, "counter_based", lambda: False)
    with pytest.warns(UserWarning, match=r"uniform draw of shape \[7, 5\] whole .*about 340 bytes"):
        jax.jit(lambda r: row_draws.uniform_rows(jax.random.PRNGKey(1), (7, 5), r, 3))(2)
    with pytest.warns(UserWarning, match=r"a key of generator .*rbg"):
        jax.jit(lambda r: row_draws.normal_rows(jax.random.key(1, impl="rbg"), (7, 5), r, 3))(2)
    row_draws._whole.cache_clear()


# ------------------------------------------------------------------ 3. progress in a kernel without ipywidgets

def test_progress_in_a_kernel_without_widgets_is_one_line_updated_in_place(monkeypatch, capsys):
    """figures.ipynb without ipywidgets: no widget, a stderr that is no terminal, so plain lines, printed
    one under another into the cell (3 runs of 1000 rounds: 20 lines here, one every 30 s of a real
    figure). Now one display line, shown once and updated in place; a next command gets its own."""
    pytest.importorskip("IPython")
    from IPython import display as ipd
    from tallysim import progress_base, progress_lines
    shown = []

    class Handle:
        def update(self, obj):
            shown[-1].append(obj.data)
    monkeypatch.setattr(ipd, "display", lambda obj, display_id=None: shown.append([obj.data]) or Handle())
    monkeypatch.setattr(progress_base, "in_kernel", lambda: True, raising=False)     # (before: none)
    t = [0.0]
    monkeypatch.setattr(progress_lines.time, "perf_counter", lambda: t[0])
    monkeypatch.setattr(progress_base.time, "perf_counter", lambda: t[0])
    for command in range(2):
        runs = progress_lines.RunsLines(3, "runs")
        for _ in range(3):
            bar = progress_lines.RoundLines(1000)
            for r in range(1000):
                t[0] += 20.0 if r == 0 else 0.125
                bar.row({"acc_global": None, "acc_mean": 0.5, "bits_per_peer": 8e3 * (r + 1)})
                bar.update(1, 640)
            bar.close()
            runs.done()
        runs.close()
    assert capsys.readouterr().err == ""
    assert len(shown) == 2, [s[:2] for s in shown]          # one line per command
    assert shown[0][0] == "round 0/1000  compiling", shown[0][:3]
    assert shown[0][-1].startswith("runs 3/3 (100%)"), shown[0][-1]
    assert len(shown[0]) > 100                               # updated about once a second of rounds


# ------------------------------------------------------------------ 4. an all-skipped sweep re-run's data

@pytest.fixture
def files_run(tmp_path, monkeypatch):
    """A data.name=files run's partition.json as `run` writes it (build, then run_files.write_partition;
    nothing compiled), from a relative data.path read in tmp_path/a."""
    from conftest import tiny_for
    from tallysim import build, config, run_files
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    _npz(tmp_path / "a" / "d.npz")
    items = ["data.name=files", "data.path=d.npz", "protocol.name=fedavg", "rounds=1", "probe.pool_size=20"]
    cfg = config.apply_overrides(config.Config(), tiny_for(items) + items)
    b = build.build(cfg)
    d = tmp_path / "sw" / "r"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(config.to_dict(cfg)))
    run_files.write_partition(b, 0, d)
    return cfg, b, d


def test_an_all_skipped_sweep_rerun_reuses_the_recorded_digest_of_unchanged_files(files_run, tmp_path):
    """Every run of a data setting skipped: the sweep loaded the dataset again (build.data_digest_now) only to
    compare digests, seconds on a large file. Now partition.json records the files as read (resolved path,
    size, times, inode) and, where they are still so, the recorded digest is the data's now: no load. A
    replaced file (same name, other contents) is loaded and its skipped run said, as before."""
    import os
    from tallysim import build, sweep_data
    cfg, b, d = files_run
    loads, said = [], []

    def digest_now(c):
        loads.append(1)
        return build.data_digest_now(c)
    rec = [{"status": "skipped", "dir": str(d), "name": "r"}]
    sweep_data.skipped_on_other_data(rec, [cfg], lambda m: said.append(m), digest_now)
    assert (loads, said) == ([], []), (loads, said)          # unchanged: nothing loaded, nothing to say
    read = json.loads((d / "partition.json").read_text())["data_read"]
    assert read["path"] == str((tmp_path / "a" / "d.npz").resolve()) and len(read["files"]) == 1, read
    st = os.stat("d.npz")
    os.utime("d.npz", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))     # touched: loaded, the same data
    sweep_data.skipped_on_other_data(rec, [cfg], lambda m: said.append(m), digest_now)
    assert (loads, said) == ([1], []), (loads, said)
    _npz("d.npz", y_test=np.array([1, 0] * 10))              # replaced, same name
    sweep_data.skipped_on_other_data(rec, [cfg], lambda m: said.append(m), digest_now)
    assert loads == [1, 1] and "trained on other data" in " ".join(said), said


# ------------------------------------------------------------------ 5. a relative data.path on resume

def test_a_moved_relative_data_path_is_recorded_resolved_and_said_on_resume(files_run, tmp_path, monkeypatch):
    """`--resume data.path=d.npz` from another directory (the file moved with the job): config.json kept the
    relative path as given, which names another file from any other working directory, and the resume
    entry's data_path_was the old relative one; nothing said which files were read. Now both resolved
    (the one before from partition.json's record), and the resume says so; the same relative path from
    another directory is said too (its digest proves the same data, or check_same_data refuses)."""
    import shutil
    from tallysim import checkpoint, config
    cfg, b, d = files_run
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "d.npz", tmp_path / "b" / "d.npz")
    monkeypatch.chdir(tmp_path / "b")
    was, now = str((tmp_path / "a" / "d.npz").resolve()), str((tmp_path / "b" / "d.npz").resolve())
    meta = {"round": 1, "lo": 0, "code": None}
    moved = {**meta, checkpoint.MOVED: ["refusal", "../a/d.npz", "d.npz"]}
    checkpoint.note_resume(d, moved)
    doc = json.loads((d / "config.json").read_text())
    assert doc["data"]["path"] == now and doc["resumed"][-1]["data_path_was"] == was, doc
    notice = checkpoint.resume_notice(d, config.apply_overrides(cfg, ["data.path=d.npz"]), moved)
    assert f"read {was} before and reads {now} now" in notice and f"names {now}" in notice, notice
    assert f"read {was} before and reads {now} now" in checkpoint.resume_notice(d, cfg, meta)  # not moved


# ------------------------------------------------------------------ 7. table --metric: auto, absent, null

def test_table_says_what_its_metric_columns_hold(tmp_path, capsys):
    """`--metric auto` put the server model's acc_global (fedavg) and the peers' acc_mean (tally) in one
    `final` column with no word; a named metric some runs lack left their cells empty in silence; and a
    column null in every row (acc_global without a server model) was refused as "not a column", which
    reads as a typo. Now a note for the first two, and the refusal says the column is there, null."""
    from tallysim import cli
    from tallysim.config import ConfigError
    from tallysim.results import table
    row = {"round": 1, "acc_mean": 0.5, "bits_per_peer": 10}
    _write_run(tmp_path / "sw" / "a", [{**row, "acc_global": None, "vote_acc": 0.7}],
               {**BASE, "seeds": 1, "rounds": 1, "optim": {"lr": 0.1}})
    _write_run(tmp_path / "sw" / "b", [{**row, "acc_global": 0.8}],
               {**BASE, "seeds": 1, "rounds": 1, "protocol": {"name": "fedavg"}, "optim": {"lr": 0.2}})
    assert cli.main(["table", str(tmp_path / "sw")]) == 0
    err = capsys.readouterr().err
    assert "acc_mean (the peers' mean) in a; acc_global (the server model) in b" in err, err
    assert cli.main(["table", str(tmp_path / "sw"), "--metric", "vote_acc"]) == 0
    assert "no 'vote_acc' value in 1 of 2 runs (b)" in capsys.readouterr().err
    assert cli.main(["table", str(tmp_path / "sw"), "--metric", "acc_mean"]) == 0
    assert capsys.readouterr().err == ""                     # one column, every run: nothing to say
    _write_run(tmp_path / "sw" / "b", [{**row, "acc_global": None}], json.loads((tmp_path / "sw" / "b" /
                                                                                 "config.json").read_text()))
    with pytest.raises(ConfigError, match=r"'acc_global' has no value in any run's metrics.jsonl \(null in every "
                                          r"row: no server model"):
        table.table_rows([tmp_path / "sw"], "acc_global")
    with pytest.raises(ConfigError, match=r"'vote_ac' is not a column .*did you mean vote_acc"):
        table.table_rows([tmp_path / "sw"], "vote_ac")
