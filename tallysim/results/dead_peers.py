"""Dead peers: a peer whose own test accuracy stays at or below the floor (always predicting the most
frequent test target, partition.json's `majority_acc`; chance, 1/C, for a run that recorded none) at
every evaluation after the first. The demo's seed 1 under tally: peer 0 (1,689 sneakers and 170 coats of
its 1,865 examples) diverged in round 1 at optim.lr=0.05 with momentum 0.9 and scored 0.1000 for all
15 rounds, which pulled the peer mean down by 0.029, and no line said so (docs/getting-started.md, "The
demo figure").

Read from the rows already written (each row's `acc_peers`, each seed's in a multi-seed row's `per_seed`),
never from the device: run.py warns once at a run's end, the summary line names them, `tallysim table`
and `Results` note them; while the run goes on, `Watch` reads each row as it is written and names a
peer at the floor at STREAK evaluations in a row after the first, once per run (run_recorders.Lanes). Only where the headline is the peers' mean (no server model): a FedAvg-type
run's `acc_peers` are the peers' models after local training, at the floor on one-class shards by
design, and a peer that diverges there makes the server's model non-finite, which stops the run. Where
every evaluated peer is at the floor the run's own floor note speaks (headline.floor_note), not this.
Imports nothing above results/ and no JAX.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple, Optional

from tallysim.config import ConfigError, parse_groups
from tallysim.fields import first_few
from tallysim.results.headline import FLOOR_MARGIN, headline_key, is_number

SHOWN = 6           # peers a line names; the rest are counted


class Dead(NamedTuple):
    """The dead peers of one run: `names` ("peer 0", or "seed 1 peer 0" with several seeds), of `peers`
    evaluated peers (times seeds); `floor` the floor they sat at; `rounds` the evaluated rounds after the
    first (first, last); `mean`/`without` the final peer mean with and without them (over seeds)."""
    names: list
    peers: int
    floor: float
    rounds: tuple
    mean: float
    without: Optional[float]
    partial: bool = False       # participation < 1: a peer never drawn into a cohort never trained
    seeds: int = 1              # `peers` counts every seed's: 20 peers x 3 seeds are 60
    total: Optional[int] = None  # eval_peers below peers: the run's peers, of which `peers` were evaluated
    evaluations: int = 0        # evaluations after the first read (0: not known)


def floor_of(majority: dict, classes=None) -> Optional[float]:
    """The floor an evaluated peer must pass: `majority_acc` where the run recorded it (never below
    chance: the most frequent class holds at least 1/C of the test set), else 1/`classes`, else None."""
    acc = majority.get("majority_acc") if isinstance(majority, dict) else None
    if is_number(acc) and math.isfinite(acc):
        return float(acc)
    return 1.0 / classes if is_number(classes) and classes >= 2 else None


def _per_seed(row: dict) -> Optional[list]:
    """Each seed's acc_peers list of a row ([one list] for a one-seed row), None where it has none."""
    per = row.get("per_seed")
    lists = per.get("acc_peers") if isinstance(per, dict) and "seeds" in row else [row.get("acc_peers")]
    if not isinstance(lists, list) or not lists or not all(isinstance(a, list) and a for a in lists):
        return None
    return lists


def _low(a, floor: float) -> bool:
    return not is_number(a) or not math.isfinite(a) or a <= floor + FLOOR_MARGIN


def evaluated(config) -> Optional[int]:
    """The run's peer count where eval_peers evaluates fewer of them (config.json's dict), else None: a
    dead-peer line said "1 of 5 peers" of a run of 20 peers with eval_peers=5, as if it had five."""
    if isinstance(config, dict) and is_number(config.get("eval_peers")) and is_number(config.get("peers")) \
            and config["eval_peers"] < config["peers"]:
        return int(config["peers"])
    return None


def find(rows: list, floor: Optional[float], sampled: bool = False, partial: bool = False,
         total: Optional[int] = None, groups: tuple = ()) -> Optional[Dead]:
    """The dead peers of a run's rows (round order), None where there are none or nothing can tell:
    fewer than two evaluations, no floor, a server model's headline, rows without per-peer accuracies
    (client_storage=auto) or of different lengths, or every peer of every seed at the floor (the run's
    floor note; one seed wholly at the floor beside seeds that learnt is named: no note speaks for it).
    `sampled`: eval_sample=random, where a position in acc_peers is not the peer's index; `total`: the run's
    peers where eval_peers evaluated fewer (`evaluated`). `groups`: the model groups' (name, peers) in
    order, so a peer is named with its group ("peer 10 of group server"): in a run of several
    architectures which model sat at the floor is the first question (it was a peer number); not under
    `sampled`, where a position is not the peer's index."""
    if floor is None or len(rows) < 2 or headline_key(rows[-1]) != "acc_mean":
        return None
    table = [_per_seed(r) for r in rows[1:]]
    if any(t is None for t in table) or len({(len(t), len(t[0])) for t in table}) != 1 \
            or any(len(a) != len(table[0][0]) for t in table for a in t):
        return None
    seeds = rows[-1].get("seeds") if isinstance(rows[-1].get("seeds"), list) else [None]
    if len(seeds) != len(table[0]):
        return None
    names, means, withouts = [], [], []
    who = "evaluated peer #" if sampled else "peer "
    for s, seed in enumerate(seeds):
        n = len(table[0][s])
        dead = [p for p in range(n) if all(_low(t[s][p], floor) for t in table)]
        names += [_peer_name(seed, who, p, seed is not None, "" if sampled else _group_of(p, groups)) for p in dead]
        last = [a if is_number(a) and math.isfinite(a) else 0.0 for a in table[-1][s]]
        means.append(sum(last) / n)
        if len(dead) < n:
            withouts.append(sum(a for p, a in enumerate(last) if p not in dead) / (n - len(dead)))
    if not names or len(names) == len(seeds) * len(table[0][0]):
        # none; or the whole run at the floor, every peer of every seed: headline.floor_note's case (its
        # mean is at the floor too). A one-seed run was let through to it, a multi-seed one named all
        return None
    return Dead(names, len(seeds) * len(table[0][0]), floor, (rows[1]["round"], rows[-1]["round"]),
                sum(means) / len(means), sum(withouts) / len(withouts) if withouts else None, partial, len(seeds),
                total, len(rows) - 1)


def of_peers(evaluated: int, seeds: int = 1, total: Optional[int] = None) -> str:
    """"20 peers", "20 peers x 3 seeds", or with eval_peers below peers "5 evaluated peers: eval_peers=5
    of 20": the count a dead-peer line says its peers are of."""
    if total is None:
        return f"{evaluated} peers" + (f" x {seeds} seeds" if seeds > 1 else "")
    return (f"{evaluated} evaluated peers" + (f" x {seeds} seeds" if seeds > 1 else "") +
            f": eval_peers={evaluated} of {total}")


def _listed(names: list) -> str:
    """The first SHOWN names, then how many more: every dead-peer line lists them so."""
    return first_few(names, SHOWN)


def _peer_name(seed, who: str, p: int, seeds: bool, group: str = "") -> str:
    """ "peer 0", "evaluated peer #0", "seed 1 peer 0 of group server" (`seeds`: the run has several)."""
    return (f"seed {seed} " if seeds else "") + f"{who}{p}{group}"


def _group_of(peer: int, groups: tuple) -> str:
    """" of group NAME": the group that owns global peer index `peer` (groups own contiguous ranges in order)."""
    start = 0
    for name, count in groups:
        if peer < start + count:
            return f" of group {name}"
        start += count
    return ""


def _of(k: int, dead: Dead, count: str) -> str:
    """"3 of 10 peers"; over several seeds the peer-seeds counted first, "11 of 20: 10 peers x 2 seeds", where
    "11 of 10 peers x 2 seeds" read as more peers at the floor than the run has."""
    return f"{k} of {dead.peers}: {count}" if dead.seeds > 1 else f"{k} of {count}"


def _named(dead: Dead) -> str:
    return f"{_listed(dead.names)} ({_of(len(dead.names), dead, of_peers(dead.peers // dead.seeds, dead.seeds, dead.total))})"


def _rounds(dead: Dead) -> str:
    a, b = dead.rounds
    return f"round {a}" if a == b else f"rounds {a}-{b}"


def _means(dead: Dead) -> str:
    if dead.without is None:
        return ""
    return f"; the peer mean {dead.mean:.4f} counts {'it' if len(dead.names) == 1 else 'them'}, {dead.without:.4f} without"


def warning(dead: Dead, name: str = "") -> str:
    """The line on stderr at the run's end (run.py), once."""
    one = len(dead.names) == 1
    # a 3-round text run's small LSTMs, still learning (perplexity 59 of a uniform 80), sat below the space's
    # floor at rounds 2-3 and were told they "learnt nothing, most likely diverged": two evaluations cannot
    # tell a slow start from a blow-up, so say so where fewer than the mid-run watch's STREAK were read
    head = (f"tallysim: warning: {name + ': ' if name else ''}{_named(dead)} stayed at or below the floor "
            f"{dead.floor:.4f} (always predicting the most frequent test target) at every evaluation after the "
            f"first ({_rounds(dead)}): ")
    never = "never drawn into a round (participation < 1), " if dead.partial else ""
    if 0 < dead.evaluations < STREAK:
        k = dead.evaluations
        return (head + f"{k} evaluation{'s' * (k > 1)} cannot tell a peer still learning (a small model's first "
                f"rounds often sit below the floor) from one that diverged (the loss blew up; a smaller optim.lr "
                f"or optim.momentum prevents it), {never}or one predicting one class whatever it is shown: "
                f"more rounds tell{_means(dead)} (docs/getting-started.md, \"The demo figure\")")
    return (head + f"{'it' if one else 'they'} learnt nothing, most likely diverged in the first "
            f"rounds (the loss blew up; a smaller optim.lr or optim.momentum prevents it), "
            f"{never}or "
            f"{'predicts' if one else 'predict'} one class whatever {'it is' if one else 'they are'} shown"
            f"{_means(dead)} (docs/getting-started.md, \"The demo figure\")")


def clause(dead: Optional[Dead]) -> str:
    """The summary line's words for them, inside its parenthesis ("" for none):
    `; 0.6821 without peer 0, at the floor all run`."""
    if dead is None:
        return ""
    k = len(dead.names)
    count = (f"{dead.peers // dead.seeds}{f' x {dead.seeds} seeds' if dead.seeds > 1 else ''}" if dead.total is None
             else of_peers(dead.peers // dead.seeds, dead.seeds, dead.total))
    names = _listed(dead.names) + (f" ({_of(k, dead, count)})" if k > 1 or dead.total is not None else "")
    return (f"; {names} at the floor all run" if dead.without is None else
            f"; {dead.without:.4f} without {names}, at the floor all run")


def note(dead: Dead, label: str) -> str:
    """`tallysim table`'s note for one run."""
    return (f"table: {label}: {_named(dead)} at or below the floor {dead.floor:.4f} + {FLOOR_MARGIN:g} at every "
            f"evaluation after the first ({_rounds(dead)}){_means(dead)}")


STREAK = 3          # evaluations after the first in a row at the floor before a peer is named mid-run


class Watch:
    """Names peers at the floor while the run goes on (run_recorders.Lanes), once per run: the first time a
    peer has been at or below it at STREAK evaluations in a row after the first. `warning` comes only at
    the run's end, and a 400-round run learnt late of a peer dead since round 2. Fed each lane's row as
    it is written (its acc_peers, already on the host), with its seed; nothing read from the device.
    `first`: the run's first evaluated round (every peer starts near the floor: not read); `seeds`: the
    run's seed count (names say "seed 1 peer 0" with several); as `find`, a server model's headline is
    not read and a one-seed run with every peer at the floor is the floor note's case. `groups`: the model
    groups' (name, peers), each peer named with its group as `find` names it (not under `sampled`)."""

    def __init__(self, floor: Optional[float], first: int, seeds: int = 1, sampled: bool = False,
                 partial: bool = False, streak: int = STREAK, total: Optional[int] = None, groups: tuple = ()):
        self.floor, self.first, self.seeds, self.streak = floor, first, seeds, streak
        self.total = total          # eval_peers below peers: the run's peers (`evaluated`)
        self.who = "evaluated peer #" if sampled else "peer "
        # the end-of-run line said "peer 10 of group server", the mid-run one "peer 10" of the same peer
        self.groups = () if sampled else tuple(groups)
        self.partial = partial
        self.low: dict = {}         # seed -> per peer, its evaluations in a row at the floor
        self.rounds: dict = {}      # seed -> the rounds evaluated after the first
        self.said = floor is None

    def see(self, row: dict, seed=None, name: str = "") -> Optional[str]:
        """The warning line the first time this row completes a streak, else None."""
        acc = row.get("acc_peers")
        if self.said or row.get("round", 0) <= self.first or headline_key(row) != "acc_mean" \
                or not isinstance(acc, list) or not acc:
            return None
        low = self.low.setdefault(seed, [0] * len(acc))
        seen = self.rounds.get(seed)
        if len(low) != len(acc) or (seen and row["round"] <= seen[-1]):    # a round seen (run._retry_point
            return None                                 # recomputes a chunk's rounds): counted once
        low[:] = [k + 1 if _low(a, self.floor) else 0 for k, a in zip(low, acc)]
        rounds = self.rounds.setdefault(seed, [])
        rounds.append(row["round"])
        dead = [p for p, k in enumerate(low) if k >= self.streak]
        if not dead or (len(dead) == len(acc) and self.seeds == 1):
            return None
        self.said = True
        names = [_peer_name(seed, self.who, p, self.seeds > 1, _group_of(p, self.groups)) for p in dead]
        one = len(dead) == 1
        return (f"tallysim: warning: {name + ': ' if name else ''}{_listed(names)} ({len(dead)} of {of_peers(len(acc), total=self.total)}"
                f"{f' of seed {seed}' if self.seeds > 1 else ''}) at or below the floor {self.floor:.4f} "
                f"(always predicting the most frequent test target) at the last {self.streak} evaluations "
                f"(rounds {rounds[-self.streak]}-{rounds[-1]}): {'it has' if one else 'they have'} most likely "
                f"diverged (a smaller optim.lr or optim.momentum prevents it)"
                f"{', or never been drawn into a round (participation < 1)' if self.partial else ''}; "
                f"the run goes on, and says at its end whether {'it' if one else 'they'} stayed there")


    def replay(self, written: list, pending: dict, seeds: list) -> None:
        """A resumed run's history, read silently (run_recorders.Lanes): the rows written before its
        checkpoint (each seed's acc_peers in a multi-seed row's per_seed) and the per-seed rows waiting
        for a later seed chunk (`pending`, round -> rows in `seeds` order). A resumed run watched afresh
        named a peer said before the stop a second time, or a streak begun before it 3 evaluations late."""
        seen = []
        for row in written:
            # a row edited by hand (or of an older version) without an integer `round`: not read (it was a
            # KeyError, or a TypeError from sorting "2" among ints, and the resume stopped with a traceback)
            lists = _per_seed(row) if isinstance(row, dict) and type(row.get("round")) is int else None
            seen += [(row["round"], s, {**row, "acc_peers": a}) for s, a in zip(seeds, lists or [])]
        for r, rows in pending.items():
            seen += [(int(r), s, row) for s, row in zip(seeds, rows) if isinstance(row, dict)]
        for _, s, row in sorted(seen, key=lambda e: e[0]):     # stable: each seed's rows in round order
            self.see(row, s)           # keyed by the seed, as Lanes.rows feeds it


def of_run(run_dir, rows: Optional[list] = None, config: Optional[dict] = None) -> Optional[Dead]:
    """`find` for a run directory: its rows (read here unless given), partition.json's floor (1/C from
    its `classes` for a run before majority_acc was recorded) and config.json's eval sample; None where
    any of them cannot be read. Reads nothing more where the last row has no per-peer accuracies or a
    server model's headline (a `table` of a FedAvg sweep, a population's stateless clients)."""
    # run_dir.py's readers, not metrics.py's re-exports: metrics.summary_line uses this module
    from tallysim.results import partition_file, run_dir as files
    d = Path(run_dir)
    try:
        rows = files.read_rows(d) if rows is None else rows
        if len(rows) < 2 or headline_key(rows[-1]) != "acc_mean" or _per_seed(rows[-1]) is None:
            return None
        floor = floor_of(partition_file.majority(d))
        if floor is None:           # a run before majority_acc: chance from its classes
            part = files.read_partition(d)
            floor = floor_of({}, part.get("classes") if isinstance(part, dict) else None)
        config = files.read_config(d) if config is None else config
    except (ConfigError, OSError, ValueError):
        return None
    sampled = isinstance(config, dict) and config.get("eval_sample") == "random" and evaluated(config) is not None
    partial = isinstance(config, dict) and is_number(config.get("participation")) and config["participation"] < 1
    try:
        model = config.get("model") if isinstance(config, dict) else None
        groups = tuple((g.name, g.peers) for g in parse_groups(model.get("groups") if isinstance(model, dict) else None))
    except (ConfigError, AttributeError, TypeError):    # a config.json edited by hand: the peers unnamed
        groups = ()
    return find(rows, floor, sampled, partial, evaluated(config), groups)
