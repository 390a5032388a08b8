"""A run's seed chunks of equal width share their compiled programs (programs.chunk_programs): each chunk traced
init, round, scan and evaluation afresh before, so seed_chunk < seeds paid the trace once per chunk."""
import json

from conftest import tiny

from tallysim import run

SMALL = ["data.input_shape=8x8x1", "data.train_size=800", "model.width=8", "peers=4", "participation=0.5",
         "protocol.name=tally", "rounds=2", "eval_every=1", "seeds=3", "seed_chunk=1"]


class _Forgets(dict):
    """A Built.programs that keeps nothing: every chunk makes its programs afresh (the old behaviour)."""
    def __setitem__(self, key, value):
        pass


def _rows(tmp_path, name, fresh: bool):
    cfg = tiny(*SMALL)
    b = run.build(cfg)
    if fresh:
        b.programs = _Forgets()
    orig, traces = b.protocol.round, []

    def round_fn(state, data, root, r):       # runs once per trace of the round program
        traces.append(1)
        return orig(state, data, root, r)
    b.protocol = b.protocol._replace(round=round_fn)
    run.run(cfg, str(tmp_path / name), progress=False, built=b)
    rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("wall_s", None)
    return rows, len(traces)


def test_seed_chunks_of_one_width_trace_the_round_once_and_give_the_same_rows(tmp_path):
    shared, traces = _rows(tmp_path, "shared", fresh=False)
    fresh, fresh_traces = _rows(tmp_path, "fresh", fresh=True)
    assert fresh_traces == 3 * traces          # three chunks of one seed: three traces made afresh, one shared
    assert shared == fresh
