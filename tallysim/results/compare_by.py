"""`tallysim compare --by FIELD=VA,VB` (compare.py): the runs under some directories (a sweep's --out) whose
FIELD is VA, each paired with the run that differs from it only in FIELD (and its seed), where it is VB."""
from __future__ import annotations

import json
from pathlib import Path

from tallysim.config import ConfigError
from tallysim.fields import did_you_mean, first_few
from tallysim.results import metrics
from tallysim.results.compare_pairs import SEED_FIELDS, Comparison, pair
from tallysim.results.compare_read import check_at, check_metric, finished
from tallysim.results.swept import flatten, setting, swept_fields, unread_blank, with_defaults


def parse_by(by: str) -> tuple[str, str, str]:
    """`FIELD=VA,VB` -> (FIELD, VA, VB), refused unless two different values of one field."""
    if not isinstance(by, str) or "=" not in by:
        raise ConfigError(f"--by {by!r}: expected FIELD=VALUE_A,VALUE_B (e.g. --by protocol.name=tally,local)")
    field, _, values = by.partition("=")
    parts = [v.strip() for v in values.split(",")]
    if not field.strip() or len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise ConfigError(f"--by {by!r}: expected one field and two different values, FIELD=VALUE_A,VALUE_B "
                          "(e.g. --by protocol.name=tally,local)")
    if field.strip() in SEED_FIELDS:
        raise ConfigError(f"--by {field.strip()}: the seeds are what a comparison pairs, not a side of it; allowed: "
                          "another field (e.g. protocol.name)")
    return field.strip(), parts[0], parts[1]


def _matches(value, text: str) -> bool:
    """A config value read as the command line writes it: 0.1 == "0.1", true == "true", "tally" == "tally"."""
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            return float(text) == value
        except ValueError:
            return False
    return str(value) == text or (value is None and text in ("null", "none"))


def compare_by(dirs, by: str, metric: str = "auto", at: str = "final", per_pair: bool = False) -> Comparison:
    """The runs under `dirs` whose `FIELD` is VALUE_A against those where it is VALUE_B (`by`), each paired
    with the run that differs from it only in FIELD (and its seed; a field a run does not read matches any);
    over several pairs the intervals are family-wise unless `per_pair` (compare_pairs.family)."""
    field, va, vb = parse_by(by)
    check_at(at)

    def skip(d, label, e):
        raise ConfigError(f"{d}: {e}")
    runs = [r for r in metrics.read_runs(dirs, skip) if r[2] or skip(r[0], r[1], f"no {metrics.CONFIG} to pair by")]
    flat = [flatten(cfg) for _, _, cfg, _ in runs]
    held = sorted({setting(f[field]) for f in flat if field in f})
    if not held:
        names = sorted({k for f in flat for k in f})
        raise ConfigError(f"--by {field}: no run under {', '.join(map(str, metrics.directories(dirs)))} has the "
                          f"field {field!r}{did_you_mean(field, names)}")
    sides = {}
    for want, role in ((va, "A"), (vb, "B")):
        sides[role] = [i for i, f in enumerate(flat) if field in f and _matches(f[field], want)]
        if not sides[role]:
            raise ConfigError(f"--by {field}={va},{vb}: no run has {field}={want}; the runs' values: "
                              f"{first_few([json.loads(h) for h in held], 8)}")
    if both := sorted(set(sides["A"]) & set(sides["B"])):     # 0.1,0.10: each run compared with itself
        raise ConfigError(f"--by {field}={va},{vb}: both values match the same runs ({runs[both[0]][0]}: {field}="
                          f"{json.dumps(flat[both[0]][field])}); allowed: two different values of {field}")
    for i in sides["A"] + sides["B"]:
        d, _, cfg, rows = runs[i]
        finished(Path(d), cfg, rows, "A" if i in sides["A"] else "B")
    check_metric(metric, [(d, cfg, rows) for d, _, cfg, rows in runs])
    cfgs = [runs[i][2] for i in sides["A"] + sides["B"]]
    ident = [k for k in swept_fields(cfgs) if k != field and k not in SEED_FIELDS]

    def key(i):
        f = with_defaults(flat[i], ident)
        return tuple(setting(f.get(k)) for k in ident)      # 1 and 1.0 one setting, true not 1

    def unread(i) -> set:   # the swept fields run i does not read (tally's comm.soft_bits): they match any value
        f = with_defaults(flat[i], ident)
        blank = unread_blank(dict(f), ident)
        return {j for j, k in enumerate(ident) if blank.get(k) is None and f.get(k) is not None}
    groups = {role: {} for role in sides}
    for role, idx in sides.items():
        for i in idx:
            groups[role].setdefault(key(i), []).append(i)
    notes, pairs, used = [], [], set()
    free = {role: {k: unread(idx[0]) for k, idx in g.items()} for role, g in groups.items()}
    matches = [(ka, kb) for ka in groups["A"] for kb in _partners(ka, groups, free)]
    merged = [tuple(y if j in free["A"][ka] else x for j, (x, y) in enumerate(zip(ka, kb))) for ka, kb in matches]
    varying = [j for j in range(len(ident)) if len({m[j] for m in merged}) > 1]
    for (ka, kb), m in zip(matches, merged):
        label = " ".join(f"{ident[j]}={json.loads(m[j])}" for j in varying)
        side = [(runs[i][0], runs[i][2], runs[i][3]) for i in groups["A"][ka]]
        other = [(runs[i][0], runs[i][2], runs[i][3]) for i in groups["B"][kb]]
        pairs.append(pair(side, other, metric, at, label, notes))
        used.add(kb)
    for k in groups["A"]:
        if not any(ka == k for ka, _ in matches):
            notes.append(f"a run with {field}={va} ({runs[groups['A'][k][0]][1]}) has no run with {field}={vb} "
                         f"that differs from it only in {field}; left out")
    for k in groups["B"]:
        if k not in used:
            notes.append(f"a run with {field}={vb} ({runs[groups['B'][k][0]][1]}) has no run with {field}={va} "
                         f"that differs from it only in {field}; left out")
    if not pairs:
        raise ConfigError(f"--by {field}={va},{vb}: no run with {field}={va} has a partner with {field}={vb} that "
                          f"differs from it only in {field} (the runs differ in {', '.join(ident) or 'nothing else'})")
    return Comparison(pairs, notes, f"{field}={va}", f"{field}={vb}", per_pair)


def _partners(ka: tuple, groups: dict, free: dict) -> list:
    """B's settings that A's setting `ka` pairs with: its own, and each that agrees in every field both read
    where one of the two has no setting of its own on the other side (softlabel at comm.soft_bits 8 against
    tally, which reads no soft_bits: refused as differing before; tally at 8 and 32 each still with its own)."""
    return [kb for kb in groups["B"] if kb == ka or (ka not in groups["B"] or kb not in groups["A"]) and all(
            x == y or j in free["A"][ka] or j in free["B"][kb] for j, (x, y) in enumerate(zip(ka, kb)))]
