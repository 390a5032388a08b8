"""Small leftovers (leftovers18): `table` and `read_rows` leave empty the partition fields a run's
partition.kind never reads; the summary line's "1 rounds"; the refusal of a --resume under another
seed_chunk says first how to continue; the progress of a run in seed chunks names the chunk and the round
within it. None of these compiles a program."""
import json

import pytest

from tallysim import config, progress, progress_base, progress_lines, resume_diff
from tallysim.config import ConfigError
from tallysim.results import headline
from conftest import tiny


# ----------------------------------------------------------------------------- table: unread partition fields

PANELS = {"dir0.05": ["partition.kind=dirichlet", "partition.alpha=0.05",        # niid_matched_bits.json's
                      "partition.cap=false", "partition.min_size=0"],
          "dir100": ["partition.kind=dirichlet", "partition.alpha=100"],
          "one_class": ["partition.kind=label_quantity", "partition.k=1"],
          "iid": ["partition.kind=iid"]}


def _runs(tmp_path):
    base = ["peers=10", "rounds=1"]
    for name, items in PANELS.items():
        d = tmp_path / name
        d.mkdir()
        cfg = config.apply_overrides(config.Config(), base + items)
        (d / "config.json").write_text(json.dumps(config.to_dict(cfg)))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "acc_mean": 0.5, "bits_per_peer": 8.0}) + "\n")


def test_table_leaves_empty_the_partition_fields_a_kind_never_reads(tmp_path):
    """A sweep over partition.kind (niid_matched_bits.json's panels) showed `partition.k` 2 on the Dirichlet
    runs and `partition.alpha` 0.5 on the one-class run: settings of splits that never draw them."""
    from tallysim.results.table import table_rows
    _runs(tmp_path)
    columns, rows = table_rows([tmp_path])
    by = {r["run"]: r for r in rows}
    assert {"partition.kind", "partition.alpha", "partition.k"} <= set(columns)
    assert {n: by[n]["partition.alpha"] for n in PANELS} == {"dir0.05": 0.05, "dir100": 100, "one_class": None,
                                                             "iid": None}
    assert {n: by[n]["partition.k"] for n in PANELS} == {"dir0.05": None, "dir100": None, "one_class": 1,
                                                         "iid": None}
    # cap and min_size are the Dirichlet kind's alone (config_reads.MODE_READS, the rule runs are refused by)
    assert [by[n]["partition.cap"] for n in PANELS] == [False, True, None, None]
    assert [by[n]["partition.min_size"] for n in PANELS] == [0, config.Config().partition.min_size, None, None]


def test_read_rows_leaves_them_empty_too(tmp_path):
    from tallysim.results.runs import read_rows
    _runs(tmp_path)
    rows = {r["run"]: r for r in read_rows([tmp_path])}
    assert rows["one_class"]["partition.alpha"] is None and rows["dir100"]["partition.k"] is None
    assert rows["one_class"]["partition.k"] == 1 and rows["dir100"]["partition.alpha"] == 100


def test_a_config_json_without_the_mode_keeps_the_value():
    """An older config.json without partition.kind: nothing says the field went unread."""
    from tallysim.results.table import unread_blank
    flat = {"protocol.name": "tally", "partition.alpha": 0.5}
    assert unread_blank(flat, ["partition.alpha"])["partition.alpha"] == 0.5


# ----------------------------------------------------------------------------- summary: 1 round

def test_the_summary_line_says_1_round_and_1_peer():
    cfg = config.apply_overrides(config.Config(), ["rounds=1", "peers=1", "protocol.name=local"])
    last = {"acc_global": None, "acc_mean": 0.5, "acc_ensemble": 0.5, "bits_per_peer": 0.0, "wall_s": 1.0}
    assert headline.summary_line(cfg, last).startswith("local: 1 round, 1 peer on "), \
        headline.summary_line(cfg, last)
    more = config.apply_overrides(cfg, ["rounds=2", "peers=3"])
    assert headline.summary_line(more, last).startswith("local: 2 rounds, 3 peers on ")


# ----------------------------------------------------------------------------- --resume under another seed_chunk

def _as_saved(cfg):
    return json.loads(json.dumps(config.to_dict(config.validate(cfg))))


def test_a_resume_under_another_seed_chunk_says_how_to_continue_first():
    """"resume with the same config or use --overwrite" read as a way on; --overwrite discards the run."""
    was = _as_saved(tiny("seeds=4", "seed_chunk=2", "rounds=400"))
    now = _as_saved(tiny("seeds=4", "seed_chunk=1", "rounds=400"))
    meta = {"lo": 2, "chunk": 2, "round": 142}          # the second chunk, at its round 142
    with pytest.raises(ConfigError) as e:
        resume_diff.refuse_diff(was, now, "the config x/checkpoint.npz was computed under", False, meta)
    msg = str(e.value)
    assert msg.startswith("--resume: "), msg
    cont = msg.index("resuming with seed_chunk=2")
    assert "continues the run" in msg[cont:] and cont < msg.index("--overwrite"), msg
    assert "--overwrite starts it again and discards its 542 rounds" in msg, msg     # 400 + 142
    # an automatic chunk (seed_chunk unset) is named as typed
    auto = _as_saved(tiny("seeds=4", "rounds=400"))
    with pytest.raises(ConfigError, match=r"resuming with seed_chunk=none continues the run"):
        resume_diff.refuse_diff(auto, now, "x", False, meta)


def test_other_differences_keep_their_refusal():
    was = _as_saved(tiny("optim.lr=0.05"))
    now = _as_saved(tiny("optim.lr=0.5"))
    with pytest.raises(ConfigError, match=r"resume with the same config or use --overwrite$"):
        resume_diff.refuse_diff(was, now, "x", False, {"lo": 0, "chunk": 1, "round": 1})


# ----------------------------------------------------------------------------- progress of seed chunks

def test_the_chunk_and_its_round_are_named():
    chunks = [(0, 2, 400), (2, 4, 400)]
    assert progress_base.chunk_place(342, chunks) == "seeds 1-2 of 4, round 342/400"
    assert progress_base.chunk_place(400, chunks) == "seeds 1-2 of 4, round 400/400"     # its last, not 0/400
    assert progress_base.chunk_place(542, chunks) == "seeds 3-4 of 4, round 142/400"
    assert progress_base.chunk_place(3, [(0, 1, 2), (1, 2, 2)], "lanes") == "lane 2 of 2, round 1/2"


def test_progress_lines_of_a_run_in_seed_chunks(capsys):
    """rounds=400 in two chunks read "round 542/800": past the run's rounds, in no chunk named."""
    bar = progress_lines.RoundLines(800, initial=540, chunks=[(0, 2, 400), (2, 4, 400)])
    bar.update(2, 10)
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "seeds 3-4 of 4, round 140/400  compiling (resumed)", lines
    assert lines[-1].startswith("seeds 3-4 of 4, round 142/400  "), lines
    one = progress_lines.RoundLines(400, chunks=[(0, 4, 400)])     # one chunk: as before
    one.close()
    assert capsys.readouterr().err.strip() == "round 0/400  compiling"


def test_the_bar_of_a_run_in_seed_chunks(monkeypatch):
    monkeypatch.setenv(progress.MODE_ENV, "bars")
    bar = progress.round_bar(800, True, initial=0, chunks=[(0, 2, 400), (2, 4, 400)])
    try:
        bar.update(1, 10)
        bar.update(500, 10)
        assert bar.bar.desc.startswith("seeds 3-4 of 4, round 101/400")
    finally:
        bar.close()


def test_a_run_in_seed_chunks_gives_the_bar_its_chunks(monkeypatch):
    from tallysim import run as run_mod
    seen = {}

    class Seen(Exception):
        pass

    def round_bar(total, enabled, labels=None, initial=0, unit="examples", chunks=None, noun="seeds"):
        seen.update(total=total, chunks=chunks, noun=noun)
        raise Seen
    monkeypatch.setattr(run_mod.progress_bars, "round_bar", round_bar)
    with pytest.raises(Seen):
        run_mod.run(tiny("seeds=3", "seed_chunk=2", "rounds=2", "warmup_epochs=0"), None)
    assert seen == {"total": 4, "chunks": [(0, 2, 2), (2, 3, 2)], "noun": "seeds"}


def test_check_resume_gives_the_refusal_its_rounds(checkpointed, tmp_path):
    """Through checkpoint.check_resume on a real checkpoint (conftest's, shared: one tiny run, round 1)."""
    import shutil
    from tallysim import checkpoint, outdir
    d = tmp_path / "run"
    shutil.copytree(checkpointed, d)
    cfg = config.apply_overrides(outdir.run_config(d, "--resume", outdir.CLI), ["seed_chunk=1"])
    with pytest.raises(ConfigError, match=r"resuming with seed_chunk=none continues the run; --overwrite "
                                          r"starts it again and discards its 1 round$"):
        checkpoint.check_resume(cfg, str(d))
