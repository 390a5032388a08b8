"""Dead peers named mid-run (leftovers23): results/dead_peers.py named a peer at the floor only at the run's
end (run.py warn_dead), so a 400-round run learnt of a peer dead since round 2 after 400 rounds. Now
run_recorders.Lanes feeds each lane's row to dead_peers.Watch as it is written, and the first time a peer
has been at the floor at STREAK (3) evaluations in a row after the first, one line says so on stderr, once
per run; the end's warning still follows."""
from conftest import TINY
from tallysim import cli, run
from tallysim.results import dead_peers

from test_deadpeer_dec19a import _dead_peer_row, _rows


def _watch_lines(watch, rows, seeds=None):
    out = []
    for row in rows:
        for s, acc in enumerate([row["acc_peers"]] if seeds is None else row["per_seed"]["acc_peers"]):
            line = watch.see({**row, "acc_peers": acc}, None if seeds is None else seeds[s], "x")
            out.append((row["round"], line))
    return [(r, line) for r, line in out if line]


def test_the_watch_names_a_peer_after_three_evaluations_in_a_row_once():
    # peer 0 at the floor from round 2; peer 2 at it in rounds 2-3, recovered in 4: not named
    rows = _rows([[0.1, 0.6, 0.5, 0.6], [0.1, 0.7, 0.1, 0.6], [0.0998, 0.8, 0.1, 0.7],
                  [0.1, 0.8, 0.7, 0.7], [0.1, 0.8, 0.7, 0.7], [0.1, 0.8, 0.7, 0.7]])
    said = _watch_lines(dead_peers.Watch(0.1, first=1), rows)
    assert [r for r, _ in said] == [4], said                         # rounds 2, 3, 4; once, not again at 5, 6
    line = said[0][1]
    assert line.startswith("tallysim: warning: x: peer 0 (1 of 4 peers) at or below the floor 0.1000"), line
    assert "at the last 3 evaluations (rounds 2-4)" in line and "optim.lr" in line
    assert "never been drawn" not in line
    # round 1 is not read: a peer at the floor in rounds 1-3 only has two evaluations after the first
    assert not _watch_lines(dead_peers.Watch(0.1, first=1), rows[:3])
    # a streak broken once starts again
    broken = _rows([[0.5] * 2, [0.1, 0.5], [0.1, 0.5], [0.6, 0.5], [0.1, 0.5], [0.1, 0.5]])
    assert not _watch_lines(dead_peers.Watch(0.1, first=1), broken)
    assert [r for r, _ in _watch_lines(dead_peers.Watch(0.1, first=1, streak=2), broken)] == [3]
    # nothing to say: no floor, a server model's headline, every peer of a one-seed run at the floor
    assert not _watch_lines(dead_peers.Watch(None, first=1), rows)
    assert not _watch_lines(dead_peers.Watch(0.1, first=1), _rows([[0.1, 0.6]] * 5, server=True))
    assert not _watch_lines(dead_peers.Watch(0.1, first=1), _rows([[0.1, 0.1]] * 5))
    # participation < 1 and eval_sample=random say so
    partial = _watch_lines(dead_peers.Watch(0.1, first=1, sampled=True, partial=True), rows)[0][1]
    assert "evaluated peer #0 (1 of 4 peers)" in partial and "never been drawn into a round" in partial


def test_the_watch_reads_each_seed_on_its_own():
    # seed 1's peer 0 dead; the mean over seeds (0.3) would hide it
    multi = _rows([[[0.5, 0.6], [0.5, 0.6]]] + [[[0.5, 0.6], [0.1, 0.6]]] * 3, seeds=[0, 1])
    said = _watch_lines(dead_peers.Watch(0.1, first=1, seeds=2), multi, seeds=[0, 1])
    assert [r for r, _ in said] == [4] and "x: seed 1 peer 0 (1 of 2 peers of seed 1)" in said[0][1], said


def test_a_run_names_its_dead_peer_mid_run(tmp_path, capsys, monkeypatch):
    # test_deadpeer_dec19a's TINY local run (peer 1's rows at 0.0), 5 rounds: named at round 4, before
    # the run's last row, then the end's warning
    monkeypatch.setattr(run, "lane_row", _dead_peer_row(run.lane_row))
    seen = []
    real = dead_peers.Watch.see

    def see(self, row, seed=None, name=""):
        line = real(self, row, seed, name)
        seen.append((row["round"], line is not None))
        return line
    monkeypatch.setattr(dead_peers.Watch, "see", see)
    out = tmp_path / "local"
    assert cli.main(["run", *TINY, "protocol.name=local", "rounds=5", "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    mid = "local: peer 1 (1 of 4 peers) at or below the floor"
    assert err.count(mid) == 1 and "at the last 3 evaluations (rounds 2-4)" in err, err
    assert seen == [(1, False), (2, False), (3, False), (4, True), (5, False)], seen
    assert err.index(mid) < err.index("peer 1 (1 of 4 peers) stayed at or below the floor")   # then the end's


def test_the_bar_writes_the_line_above_itself(capsys):
    # under a tqdm bar the line goes through tqdm.write (a plain print mid-bar tore the bar's line)
    from tallysim import progress
    bar = progress.RoundBar(5)
    bar.note("tallysim: warning: x: peer 1")
    bar.close()
    assert "tallysim: warning: x: peer 1\n" in capsys.readouterr().err
