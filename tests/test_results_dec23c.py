"""headline33: headline.py split by job (no_learning.py), run_accuracy refusing a misspelt metric name,
a diverged seed's NaN accuracy read and marked, the seeds_nonfinite tracker scalar. All pure Python on
hand-made rows: no model, nothing compiled."""
import pytest

from tallysim.config import ConfigError
from tallysim.results import headline, metrics, no_learning

ROWS = [{"round": 1, "acc_mean": 0.5, "acc_global": 0.6, "bits_per_peer": 3.0},
        {"round": 2, "acc_mean": 0.7, "acc_global": 0.65, "bits_per_peer": 6.0}]


# ----------------------------------------------------------------------------- 1. the split

def test_the_no_learning_warnings_stay_importable_where_they_were():
    # run.py, table, the CLI and the tests import them from headline (and metrics): the same objects
    for name in ("collapse_warning", "at_floor", "floor_note", "FLOOR_MARGIN", "MIN_COLLAPSE_ROUNDS"):
        assert getattr(headline, name) is getattr(no_learning, name), name
    assert metrics.collapse_warning is no_learning.collapse_warning
    from tallysim.fields import is_number
    assert headline.is_number is metrics.is_number is is_number
    assert not is_number(True) and is_number(0.5) and is_number(3)


# ----------------------------------------------------------------------------- 2. run_accuracy's name

def test_run_accuracy_refuses_a_misspelt_metric_naming_close_keys():
    with pytest.raises(ConfigError, match=r"metric 'acc_globl' is no key of these rows nor one a run writes; "
                                          r"allowed: auto, ppl or a key of the rows .*did you mean acc_global"):
        headline.run_accuracy(ROWS, "final", "acc_globl")           # was None
    with pytest.raises(ConfigError, match="did you mean auto"):
        metrics.run_accuracy(ROWS, "best", "accuracy")             # the alias, as final_best offers it
    with pytest.raises(ConfigError, match=r"run_accuracy\(name=3\): expected a column name"):
        headline.run_accuracy(ROWS, "final", 3)
    assert headline.run_accuracy(ROWS, "final", "acc_global") == 0.65
    # keys a run writes, though these rows lack them: still None, as table's runs without the column
    assert headline.run_accuracy(ROWS, "best", "vote_acc") is None
    assert headline.run_accuracy(ROWS, "best", "acc_mean@phone") is None
    # the internal path (table, pareto) still reads a column only some runs have, unchecked
    assert headline.column_final_best(ROWS, "my_score") == (None, None)


# ----------------------------------------------------------------------------- 3. a diverged seed's accuracy

def _seed_rows(rnd, accs):
    """The aggregate of three seeds' rows at round `rnd` (seed_mean.aggregate, as run.py writes them)."""
    from tallysim.results.seed_mean import aggregate
    return aggregate([{"round": rnd, "acc_mean": a, "acc_global": None, "bits_per_peer": 100 * rnd, "wall_s": 1.0}
                      for a in accs], [0, 1, 2])


def _write(d, rows):
    import json
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": rows[-1]["round"],
                                               "seeds": 3, "peers": 4}))
    (d / "metrics.jsonl").write_text("".join(metrics.dumps_row(r) + "\n" for r in rows))   # NaN as "NaN"
    return d


def test_a_seeds_nan_accuracy_is_read_and_marked_not_the_run_refused(tmp_path):
    # No tallysim writer makes this row today (a NaN loss stops the run before its row; NaN logits argmax
    # to a class, a finite accuracy), but a mean over seeds holding one is aggregate's, marked as a
    # perplexity's is: read_rows refused the whole run ("acc_mean=nan must be a finite number")
    import math
    from tallysim.results import runs, table
    d = _write(tmp_path / "runs" / "gone", [_seed_rows(1, (0.5, 0.5, 0.6)), _seed_rows(2, (0.6, math.nan, 0.7))])
    rows = metrics.read_rows(d)
    last = rows[-1]
    assert math.isnan(last["acc_mean"]) and last["seeds_nonfinite"] == {"acc_mean": 1}
    assert math.isnan(last["per_seed"]["acc_mean"][1])
    # final and best leave NaN out, as of every column: no final, the best the finite round's
    assert metrics.final_best(rows) == (None, pytest.approx(1.6 / 3))
    assert headline.seed_marks(last) == {"seeds_counted": "", "seeds_nonfinite": "1 of 3 seeds diverged"}
    said = []
    table.table_rows([tmp_path / "runs"], log=said.append)
    assert any("a seed diverged" in m and "gone: final: 1 of 3 seeds diverged" in m for m in said), said
    assert "acc_mean nan (1 of 3 seeds diverged) @ 200 bits" in repr(runs.Results.read(d))
    # unmarked (one seed's row, or a hand edit) it is still refused, saying what is allowed
    bare = {**last}
    del bare["seeds_nonfinite"]
    with pytest.raises(ConfigError, match=r"line 2: acc_mean=nan must be a finite number \(or, in a mean over "
                                          r"seeds, NaN or inf where seeds_nonfinite names acc_mean"):
        metrics.read_rows(_write(tmp_path / "bare", [rows[0], bare]))
    with pytest.raises(ConfigError, match="acc_mean=nan must be a finite number"):    # another key's mark
        metrics.read_rows(_write(tmp_path / "other", [rows[0], {**last, "seeds_nonfinite": {"ppl_mean": 1}}]))


# ----------------------------------------------------------------------------- 4. the tracker's count

# A tracking backend that keeps what it is given (no TensorBoard or MLflow needed): partialseeds' fake.
from test_partialseeds_dec21d import _Writer  # noqa: E402


def _ppl_row(rnd, ppl):
    """Three seeds' text row: `ppl` each seed's perplexity (inf: the seed diverged)."""
    from tallysim.results.seed_mean import aggregate
    return aggregate([{"round": rnd, "acc_mean": 0.5, "ppl_mean": p, "bits_per_peer": 100 * rnd, "wall_s": 1.0}
                      for p in ppl], [0, 1, 2])


def test_a_tracker_logs_how_many_seeds_diverged_from_the_first_such_row_on():
    import math
    from tallysim import tracking
    inf = math.inf
    rows = [_ppl_row(1, (9, 9, 9)), _ppl_row(2, (8, inf, 8)), _ppl_row(3, (7, 7, 7)), _ppl_row(4, (inf, inf, 7))]
    w = _Writer()
    t = tracking.RunTracker(tracking.Config(), None, [w])
    for r in rows:
        t.row(r)
    got = {step: s.get("seeds_nonfinite/ppl_mean") for step, s in w.rows}
    # nothing before the first diverged seed; then every row, 0 where every seed is finite again
    assert got == {1: None, 2: 1.0, 3: 0.0, 4: 2.0}
    assert "ppl_mean" not in w.rows[1][1] and w.rows[2][1]["ppl_mean"] == 7.0     # the mean: finite only, as before
    assert not [k for _, s in w.rows for k in s if k.startswith("seeds_nonfinite/") and k != "seeds_nonfinite/ppl_mean"]
    # a resumed tracker learns the key from the rows before the checkpoint, as an uninterrupted one did
    w2 = _Writer()
    t2 = tracking.RunTracker(tracking.Config(), None, [w2])
    t2.resumed(rows[:2], log=False)
    t2.row(rows[2])
    assert w2.rows == [(3, w.rows[2][1])]
    assert tracking.seeds_nonfinite({"round": 1, "ppl_mean": 9.0}, set()) == {}    # one seed: no count


# ----------------------------------------------------------------------------- 5. one free-port helper

def test_the_two_process_tests_share_one_free_port_helper():
    # test_devices, test_hostile and test_startup each kept a copy of it; conftest.free_port is the one
    import socket
    from pathlib import Path
    from conftest import free_port
    here = Path(__file__).resolve().parent
    copies = [p.name for p in sorted(here.glob("*.py"))
              if p.name not in ("conftest.py", Path(__file__).name) and ('.bind(("127.0.0.1", 0))' in p.read_text() or "def _free_port" in p.read_text())]
    assert copies == [], f"use conftest.free_port: {copies}"
    port = free_port()
    with socket.socket() as s:      # free, as the coordinator will bind it
        s.bind(("127.0.0.1", port))
