"""Which config fields a table of runs shows as columns: the fields whose values differ between the runs
(`swept_fields`; an older run's missing field read as its default, `with_defaults`), and, per run, the
swept fields it does not read blanked (`unread_blank`). `tallysim table` and `tallysim plot`'s legend
labels both read them; split from table.py by job (the rows and their rendering stay there).
"""
from __future__ import annotations

import json

from tallysim.config import ConfigError

# Config entries that say where or how a run was written, not what ran: never a swept column.
NOT_SWEPT = ("derived", "placement", "resumed", "log.", "plugins", "code.")


def setting(v) -> str:
    """A config value as a setting, for telling settings apart: JSON text, with a whole float as its int (a
    hand-edited `1.0` beside `1` is one setting, not two); strings and bools stay themselves (true is not 1,
    "1" is not 1)."""
    if isinstance(v, float) and not isinstance(v, bool) and v.is_integer() and abs(v) < 2 ** 63:
        v = int(v)
    return json.dumps(v)


def flatten(d: dict, prefix: str = "") -> dict:
    """{"optim": {"lr": 0.1}} -> {"optim.lr": 0.1}; lists become their JSON text (hashable, printable)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list) else v
    return out


def swept_fields(cfgs: list[dict]) -> list[str]:
    """The flattened config fields that take more than one value across `cfgs` (a field missing from
    a run counts as a value of its own), protocol.name first, then in the order they first appear.
    A field some run derived from its protocol (config.json's `derived`, e.g. warmup_epochs) differs
    because the protocol does: it is left out, as the protocol column already says it. So is a field of
    a protocol's own section (softlabel.*, bridge.*) that only the runs of that protocol hold, all with
    one value: tally beside softlabel is no sweep over softlabel.trim (a value swept among them stays)."""
    from tallysim import protocols
    owned = tuple(f"{s}." for s in protocols.sections())
    # a run with no config.json (copied without it, or deleted) holds no value of any field: counted as
    # "unset" beside the others, every one of ~100 fields read as swept and the table grew that wide
    flat = [flatten(c) for c in cfgs if c]
    derived = {k for c in cfgs for k in (c.get("derived") or []) if isinstance(k, str)}
    keys = list(dict.fromkeys(k for f in flat for k in f))
    keys = [k for k in keys if k not in derived and not any(k == s or k.startswith(s) for s in NOT_SWEPT)]
    keys.sort(key=lambda k: k != "protocol.name")          # stable: the rest keep config order
    flat = [with_defaults(f, keys) for f in flat]

    def varies(k: str) -> bool:
        values = {setting(f.get(k, "<unset>")) for f in flat}
        if k.startswith(owned) and '"<unset>"' in values:
            values.discard('"<unset>"')          # absent only where another protocol ran
        return len(values) > 1
    return [k for k in keys if varies(k)]


def in_axis_order(swept: list[str], run_dirs: list) -> list[str]:
    """`swept` with the axes of the sweep the runs come from first, in the order the user gave them (its
    sweep.json's `axes`), then the other varying fields as swept_fields ordered them: config order put
    `tallysim sweep seed=0,1 optim.lr=0.01,0.1`'s lr before seed. Only where every run is a run directory
    of one sweep directory holding a sweep.json that names its axes; hand-made runs keep swept_fields' order."""
    from pathlib import Path
    from tallysim.results import metrics
    parents = {Path(d).resolve().parent for d in run_dirs}
    if len(parents) != 1:
        return swept
    try:
        axes = metrics.sweep_axis_keys(metrics.read_sweep(parents.pop()))
    except (ConfigError, OSError):       # no sweep.json (hand-made runs side by side), or unreadable
        return swept
    first = [k for k in dict.fromkeys(axes) if k in swept]
    return first + [k for k in swept if k not in first]


def with_defaults(flat: dict, keys: list) -> dict:
    """`flat` with each of `keys` it lacks set to the field's declared default, as config.json writes it:
    an older run's config.json lacks the fields added since, and beside newer runs holding the default
    each read as swept, its cell blank. Only where the default is known: a field tallysim declares, not
    of a protocol's own section (absent there where another protocol ran: swept_fields' rule)."""
    from tallysim import config, protocols
    declared, owned = config.declared(), tuple(f"{s}." for s in protocols.sections())
    missing = [k for k in keys if k not in flat and k in declared and not k.startswith(owned)]
    if not missing:
        return flat
    return {**flat, **flatten({k: json.loads(json.dumps(declared[k].default)) for k in missing})}


def unread_blank(flat: dict, swept: list) -> dict:
    """The run's flattened config with the swept fields it does not read set to None (an empty cell):
    `comm.soft_bits` 32 beside tally and FedAvg read as a setting those runs used, in a table comparing
    them with softlabel at 8 bits. Two rules: a field its protocol does not read (only the fields some
    protocol declares it reads, protocols.reads, can be told apart; a protocol not loaded in this process,
    a plugin, keeps every value), and a field its mode does not read (config.MODE_READS, the rule runs
    are refused by: `partition.k` on a Dirichlet run and `partition.alpha` on a label_quantity run read
    as settings of a split that never draws them, in a sweep over partition.kind)."""
    from tallysim import protocols
    from tallysim.config import MODE_READS, MODEL_READS, SYNTHETIC_READS
    name = flat.get("protocol.name")
    unread = {k for k in swept if k in MODE_READS and _mode_unread(flat, k, *MODE_READS[k])}
    # the synthetic generator's fields on another dataset, a model field its model does not read (each
    # group has its own model: kept with model.groups): a table of Shakespeare runs beside synthetic ones
    # showed data.input_shape [28, 28, 1] and model.width 200 for the LSTM (userjourney7)
    data = flat.get("data.name")
    if isinstance(data, str) and data.lower() != "synthetic":
        unread |= {k for k in swept if k in SYNTHETIC_READS}
    if isinstance(flat.get("model.name"), str) and not flat.get("model.groups"):
        unread |= {k for k in swept if k in MODEL_READS and flat["model.name"] not in MODEL_READS[k]}
    elif isinstance(flat.get("model.name"), str) and isinstance(flat["model.groups"], str):   # a hand-edited 5: kept
        unread |= _unread_with_groups(flat, swept)
    try:
        # probe.per_round is every protocol's field (the pool is carved for all), but only those that
        # exchange on probes draw it: FedAvg's row read "1000", the default, beside tally's 32 (userjourney4)
        unused = {"probe.per_round"} if not protocols.traits(name).distill else set()
        unread |= {k for k in swept
                   if k != "protocol.name" and (k in unused or not protocols.reads(name, k))}
    except ConfigError:
        pass
    return {**flat, **dict.fromkeys(unread)}


def _unread_with_groups(flat: dict, swept: list) -> set:
    """The run-level model.* fields no group reads (config_reads' rule for a single run): a group that sets
    a field keeps its own, and the others read it only where their model does. A grouped MLP + LeNet run
    beside an LSTM run showed model.hidden 256 and layers 2 as its settings."""
    from tallysim.config import MODEL_READS, parse_groups
    try:
        groups = parse_groups(flat["model.groups"])
    except ConfigError:
        return set()            # a config.json this tallysim cannot read: every value kept
    own = [dict(g.values) for g in groups]
    models = [v.get("model.name", flat["model.name"]) for v in own]
    return {k for k in swept if k.startswith("model.") and k != "model.groups"
            and all(k in v or (k in MODEL_READS and m not in MODEL_READS[k]) for v, m in zip(own, models))}


def _mode_unread(flat: dict, key: str, mode: str, values: tuple) -> bool:
    """`key` is not read under this run's value of `mode` (a mode absent from an older config.json: read)."""
    if mode not in flat:
        return False
    if key == "optim.momentum" and flat.get("model.groups"):
        return False        # each group may set optim.name itself (config_reads._unread_modes)
    return flat[mode] not in values
