"""userjourney16: a researcher writes a confidence-vote plugin from docs/write-a-protocol.md, sweeps it beside
tally and softlabel (Dirichlet 0.1, 3 paired seeds), kills the sweep with `kill -9` midway and runs the same
command again. What the user hit, each checked without compiling:
- the run killed midway (23 of 30 rounds, before its first checkpoint) started again from round 1 with no word:
  only `--dry-run` said so; the sweep now says it before its first run, with the rounds lost and the flag;
- `tallysim compare` on the killed run said it "is not finished ... allowed: finished runs" and not how to
  finish it;
- softlabel over tally's 95% interval printed as [-0.0000, +0.4053] beside "level within noise" (its low end was
  -2.1e-05): an end within 0.00005 of 0 now shows its sign;
- a threshold sweep's dead-peer line said "(11 of 10 peers x 2 seeds)": now "(11 of 20: 10 peers x 2 seeds)";
- notebooks/quickstart.ipynb's "about 5 minutes on a 2-core CPU" took 7:14 at load average 10."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tallysim import config, outdir, sweep_plan, sweep_records
from tallysim.config import ConfigError
from tallysim.results import compare

CFG = config.apply_overrides(config.Config(), ["rounds=30", "seeds=3"])


def _run(d: Path, last: int, cfg=CFG, checkpoint: bool = False, done: bool = False, error: str = "") -> Path:
    """A run directory as a sweep leaves it: its config.json and rows up to round `last`."""
    outdir.claim(d, False)
    (d / "config.json").write_text(json.dumps(config.to_dict(cfg)))
    rows = [{"round": r, "acc_mean": 0.5, "bits_per_peer": 1.0 * r, "seeds_counted": 3} for r in range(1, last + 1)]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if checkpoint:
        (d / "checkpoint.npz").write_bytes(b"")
    if done:
        (d / "done.json").write_text("{}")
    if error:
        (d / "error.txt").write_text(error)
    return d


def _said(out: Path, names: list[str], cfg=CFG) -> list[str]:
    lines: list[str] = []
    sweep_records.say_again([(n, []) for n in names], [cfg] * len(names), out, lines.append)
    return lines


def test_a_sweep_says_which_killed_run_starts_again_from_round_1_and_loses_its_rounds(tmp_path):
    _run(tmp_path / "protocol.name=tally", 30, done=True)
    _run(tmp_path / "protocol.name=softlabel", 23)
    assert _said(tmp_path, ["protocol.name=tally", "protocol.name=softlabel", "protocol.name=confvote"]) == [
        "  note: protocol.name=softlabel stopped after round 23 of 30 before its first checkpoint, and runs again "
        "from round 1: its rows are replaced and those rounds computed again (--checkpoint-every K saves a "
        "checkpoint every K rounds; without it a run alone saves one every 5 minutes, runs that share a program "
        "none)"]


def test_the_note_names_a_killed_runs_other_config_and_leaves_the_others_alone(tmp_path):
    _run(tmp_path / "old", 4, cfg=config.apply_overrides(CFG, ["optim.lr=0.01"]))
    (line,) = _said(tmp_path, ["old"])
    assert line.startswith("  note: old stopped after round 4 of 30 before its first checkpoint, and runs again from "
                           "round 1: its rows, of another config (optim.lr=0.01->0.05), are replaced")
    _run(tmp_path / "resumable", 4, checkpoint=True)       # continues from its checkpoint: nothing lost
    _run(tmp_path / "compiling", 0)                        # killed while compiling: no round to lose
    _run(tmp_path / "nan", 2, error="round 2, seed 0: the training loss is nan; ...")   # its own line
    assert _said(tmp_path, ["resumable", "compiling", "nan"]) == []


def test_the_dry_run_and_the_sweep_agree_on_a_killed_run(tmp_path):
    d = _run(tmp_path / "r", 5)
    assert sweep_plan.state(d, CFG).startswith("will run again from round 1 (it stopped before its first checkpoint")
    assert sweep_plan.restart_line(d, CFG).startswith("  note: r stopped after round 5 of 30")


@pytest.mark.parametrize("setup, hint", [
    (lambda d: _run(d / "sweep" / "a", 23), "run the sweep (or figure) command that wrote {parent} again: it "
                                             "continues the run"),
    (lambda d: _run(d / "a", 23, checkpoint=True), "`tallysim run --out {run} --resume` continues it"),
    (lambda d: _run(d / "a", 23), "it saved no checkpoint: run it again (`tallysim run ... --out {run} "
                                  "--overwrite`)"),
    (lambda d: _run(d / "a", 3, error="boom"), "{run}/error.txt says why it failed"),
])
def test_compare_of_an_unfinished_run_says_how_to_finish_it(tmp_path, setup, hint):
    a = setup(tmp_path)
    if a.parent.name == "sweep":
        (a.parent / "sweep.json").write_text(json.dumps({"runs": []}))
    b = _run(tmp_path / "b", 30, done=True)
    with pytest.raises(ConfigError) as e:
        compare.compare(a, b)
    assert "is not finished" in str(e.value)
    assert hint.format(run=a, parent=a.parent) in str(e.value)


@pytest.mark.parametrize("low, shown", [(-2.1411736483928356e-05, "[-2.1e-05, +0.4053]"), (3e-06, "[+3e-06, +0.4053]"),
                                        (0.0, "[+0.0000, +0.4053]"), (-0.0123, "[-0.0123, +0.4053]")])
def test_an_interval_end_near_0_shows_its_sign(low, shown):
    # softlabel over tally, Dirichlet 0.1, 3 seeds: the low end -2.1e-05 printed "-0.0000", "level within noise"
    from tallysim.results import compare_text
    assert compare_text._interval({"ci_low": low, "ci_high": 0.4052881735162691}) == shown


def test_the_quickstart_notebook_times_its_full_run_as_getting_started_does():
    # it said "about 5 minutes on a 2-core CPU": 7:14 with nbclient at load average 10, with no load named;
    # getting-started's `make demo` row (the same three runs) gives the idle time
    import re
    root = Path(__file__).resolve().parents[1]
    nb = json.loads((root / "notebooks" / "quickstart.ipynb").read_text())
    intro = " ".join("".join(nb["cells"][0]["source"]).split())
    row = next(x for x in (root / "docs" / "getting-started.md").read_text().splitlines() if "`make demo` after" in x)
    idle = re.search(r"\| (about [\d.]+ minutes) \|", row).group(1)
    assert f"takes {idle} on an idle 2-core CPU" in intro
    assert re.search(r"\d+:\d\d measured with nbclient at load average \d+", intro)


def test_a_dead_peer_count_over_seeds_counts_the_peer_seeds_first():
    # a 3-lane confvote sweep at 2 rounds, 2 seeds: "... and 5 more (11 of 10 peers x 2 seeds) stayed at or below
    # the floor", and "(11 of 10 x 2 seeds)" in the summary line: more peers at the floor than the run has
    from tallysim.results import dead_peers
    names = [f"seed {s} peer {p}" for s, p in [(0, 0), (0, 2), (0, 3), (0, 5), (0, 6), (0, 9), (1, 0), (1, 2), (1, 3),
                                             (1, 5), (1, 8)]]
    dead = dead_peers.Dead(names, 20, 0.135, (2, 2), 0.1495, 0.2027, False, 2, None, 1)
    assert "and 5 more (11 of 20: 10 peers x 2 seeds) stayed at or below" in dead_peers.warning(dead, "a")
    assert dead_peers.clause(dead).endswith("and 5 more (11 of 20: 10 x 2 seeds), at the floor all run")
    one = dead_peers.Dead(names[:3], 10, 0.135, (2, 2), 0.1495, 0.2027, False, 1, None, 1)
    assert "(3 of 10 peers) stayed" in dead_peers.warning(one)
