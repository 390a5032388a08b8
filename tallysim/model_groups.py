"""Model groups (`model.groups`, issue 34): peers with different architectures in one run.

A run declares its groups as one string, so that `key=value`, JSON files, config.json and sweeps carry
it like any other field:

    model.groups="NAME:PEERS[:MODEL][,FIELD=VALUE...][;NAME:PEERS...]"
    model.groups="phone:6:mlp,width=64;server:2:lenet,optim.lr=0.02"

Each group is a name (letters, digits, `_`, `-`), its peer count and its own fields: a model.* field
(`name`, `width`, `dtype`, ...; a bare first word is model.name) or one of GROUP_OPTIM. A field it does
not set takes the run's (`model.*`, `optim.*`). A JSON config may also write the groups as a list of
objects, `[{"name": "phone", "peers": 6, "model": {"name": "mlp", "width": 64}, "optim": {"lr": 0.02}}]`,
which reads as the same string (config.py; config.json records the string).

The peer counts must sum to `peers` (refused otherwise, in one line): `peers` stays the run's one
peer count, which partitions, seeds and faults read. Group g owns the contiguous global peer range
[lo, hi) in declaration order. None (the default): no groups, today's run exactly.
No JAX here: validation and `run --help` read this module.
"""
from __future__ import annotations

import math
import re
from dataclasses import fields, replace
from typing import NamedTuple

from tallysim.fields import ConfigError, did_you_mean
from tallysim.schema import Config, ModelConfig, declared

GROUP_OPTIM = ("optim.name", "optim.lr", "optim.momentum", "optim.weight_decay")
# the protocols whose peers exchange only predictions (parameter averaging across architectures has no
# meaning; FedAvg-family protocols would need one model per group and are refused, see docs/groups.md)
GROUP_PROTOCOLS = ("local", "tally", "softlabel", "cfd", "selective_fd", "fedct", "topk_soft")
NAME = re.compile(r"[A-Za-z0-9_-]{1,40}$")
SYNTAX = "NAME:PEERS[:MODEL][,FIELD=VALUE...] joined by ';', e.g. phone:6:mlp,width=64;server:2:lenet"


class Group(NamedTuple):
    name: str
    peers: int
    values: tuple       # ((dotted key, typed value), ...): the group's own model.* / optim.* fields


def group_keys() -> tuple:
    """The dotted keys a group may set: every model.* field but groups, and GROUP_OPTIM."""
    return tuple(f"model.{f.name}" for f in fields(ModelConfig) if f.name != "groups") + GROUP_OPTIM


def settable() -> list:
    """group_keys() as a group writes them (`hidden`, `optim.lr`): the list its refusals show and the
    names a near miss is matched against (`hiden` -> hidden)."""
    return [k.removeprefix("model.") for k in group_keys()]


def near(written: str) -> str:
    """"; did you mean hidden?" for a group field's near miss; an optimizer field without its section
    (`lr=0.02`, what `width=64` beside it suggests) is optim.lr."""
    if f"optim.{written}" in settable():
        return f"; did you mean optim.{written}?"
    return did_you_mean(written, settable())


KIND = {bool: "true or false", int: "an integer", float: "a number"}


def _typed(key: str, text: str, where: str):
    """A group's FIELD=VALUE read as `key=value` on the command line reads it: `width=٣` (another script's
    digits, which int() takes) ran width 3 where `model.width=٣` is refused, and `width=abc` was "'abc' is
    not int", without what is allowed."""
    spec = declared()[key]
    try:
        if spec.type in (int, float) and not text.isascii():
            raise ValueError
        if spec.type is bool:
            return {"true": True, "false": False}[text.lower()]
        return spec.type(text) if spec.type in (int, float) else text
    except (ValueError, KeyError):
        digits = " in ASCII digits 0-9" if spec.type in (int, float) and not text.isascii() else ""
        raise ConfigError(f"{where}: {key}={text!r}: expected {KIND.get(spec.type, spec.type.__name__)}{digits}"
                          f", e.g. {key.removeprefix('model.')}={_example(spec)}") from None


def _example(spec) -> str:
    return _text(spec.default) if spec.default is not None else {int: "8", float: "0.1", bool: "true"}.get(spec.type, "")


def parse(text) -> tuple[Group, ...]:
    """The groups of a model.groups string (None: no groups); a malformed one is refused in one line."""
    if text is None:
        return ()
    if not text.strip():
        raise ConfigError(f"model.groups={text!r} is empty; expected {SYNTAX}, or none (one model for every peer)")
    out = []
    for part in text.split(";"):
        where = f"model.groups={text!r}"
        head = part.strip().split(":", 2)
        if len(head) == 2 and "," in head[1]:     # NAME:PEERS,FIELD=VALUE: SYNTAX without its optional MODEL
            head = [head[0], *head[1].split(",", 1)]      # was refused as "not NAME:PEERS[:FIELDS]"
        # ASCII digits only: str.isdigit() passes '²' (int() then raised a ValueError traceback) and
        # int() reads '٣' as 3, a count the user did not write in the syntax's digits
        if len(head) >= 2 and re.fullmatch(r"[A-Za-z0-9_-]{41,}", head[0].strip()):   # was "not NAME:PEERS"
            raise ConfigError(f"{where}: group name {head[0].strip()[:50]!r}... is {len(head[0].strip())} characters; "
                              "allowed: at most 40 (letters, digits, '_', '-')")
        if len(head) >= 2 and head[0].strip() and not NAME.match(head[0].strip()) \
                and re.fullmatch(r"[0-9]+", head[1].strip()):       # was "is not NAME:PEERS", which it is
            raise ConfigError(f"{where}: group name {head[0].strip()!r} is not a plain name; allowed: 1..40 ASCII "
                              "letters, digits, '_', '-' (it names the group's columns, acc_mean@NAME)")
        if len(head) < 2 or not NAME.match(head[0].strip()) or not re.fullmatch(r"[0-9]+", head[1].strip()):
            raise ConfigError(f"{where}: group {part.strip()!r} is not NAME:PEERS with an optional :MODEL and "
                              f",FIELD=VALUE items; expected {SYNTAX}")
        name, peers = head[0].strip(), int(head[1])
        values = {}
        for i, item in enumerate(x.strip() for x in (head[2].split(",") if len(head) > 2 else []) if x.strip()):
            key, eq, val = item.partition("=")
            if not eq and i == 0:
                key, val = "name", item          # a bare first word: the model's name
            elif not eq or not key.strip():     # `a:2:mlp,=3` was "group a sets ; a group may set ..."
                raise ConfigError(f"{where}: {item!r} in group {name} is not FIELD=VALUE; expected {SYNTAX}")
            written = key = key.strip()
            key = key if key.startswith("optim.") else f"model.{key.removeprefix('model.')}"
            if ":" in key:      # `a:2:mlp:width=16` was "group a sets model.mlp:width"
                raise ConfigError(f"{where}: {item!r} in group {name}: a group's fields follow its model after "
                                  f"commas, not colons (a:2:mlp,width=16); expected {SYNTAX}")
            if key not in group_keys():     # named as written: `tally.target=vote` was "sets model.tally.target"
                raise ConfigError(f"{where}: group {name} sets {written}; a group may set "
                                  f"{', '.join(settable())}{near(written)}")
            if key in values:                   # later silently won, as a key=value twice once did
                raise ConfigError(f"{where}: group {name} sets {key} twice; give each field once")
            values[key] = _typed(key, val.strip(), where)
        out.append(Group(name, peers, tuple(values.items())))
    return tuple(out)


def from_json(v, where: str) -> str:
    """A JSON list of group objects as the model.groups string (a string is kept as it is)."""
    if v is None or isinstance(v, str):
        return v
    if not isinstance(v, list) or not all(isinstance(g, dict) for g in v):
        raise ConfigError(f"{where}: model.groups must be a string ({SYNTAX}) or a list of objects "
                          '{"name": ..., "peers": ..., "model": {...}, "optim": {...}}')
    if not v:       # was "model.groups='' is empty", a string never written
        raise ConfigError(f"{where}: model.groups=[] is an empty list; allowed: a list of group objects "
                          '{"name": ..., "peers": ...}, or null (one model for every peer)')
    parts = []
    for g in v:
        unknown = sorted(set(g) - {"name", "peers", "model", "optim"})
        if unknown:
            raise ConfigError(f"{where}: model.groups entry {g!r:.80}: {', '.join(map(str, unknown))} is not a key "
                              "of a group; allowed keys are name, peers, model (an object of model.* fields), optim "
                              "(an object of optim.* fields)")
        for k, eg in (("model", '{"name": "mlp", "width": 64}'), ("optim", '{"lr": 0.02}')):
            if not isinstance(g.get(k, {}), dict):    # "model": "mlp", as the string's :MODEL, was told the
                # allowed keys, model among them
                raise ConfigError(f"{where}: model.groups entry {g!r:.80}: \"{k}\"={g[k]!r} is not an object; "
                                  f"allowed: an object of {k}.* fields, e.g. \"{k}\": {eg}")
        g = _whole_numbers(g)
        _check_entry(g, where)
        items = [f"{k}={_text(x)}" for k, x in g.get("model", {}).items()]
        items += [f"optim.{k}={_text(x)}" for k, x in g.get("optim", {}).items()]
        parts.append(f"{g.get('name')}:{g.get('peers')}" + (":" + ",".join(items) if items else ""))
    return ";".join(parts)


def _whole_numbers(g: dict) -> dict:
    """An integer written 2.0 (a JSON writer's float) as 2, as the config's own integer fields take it: a group's
    "peers": 2.0 was "allowed: an integer" where the run's "peers": 4.0 was taken, and "width": 8.0 became the
    text width=8.0, then "expected an integer"."""
    def whole(key, x):
        spec = declared().get(key)
        return int(x) if isinstance(x, float) and x.is_integer() and (spec is None or spec.type is int) else x
    out = dict(g)
    if "peers" in g:
        out["peers"] = whole("peers", g["peers"])
    for section in ("model", "optim"):
        if isinstance(g.get(section), dict):
            out[section] = {k: whole(f"{section}.{k}", x) for k, x in g[section].items()}
    return out


def _check_entry(g: dict, where: str) -> None:
    """One JSON group object, before it becomes text: a missing name became a group named None, and a
    string value carrying the syntax (`"lr": "0.1,width=9"`) set another field unseen."""
    if not isinstance(g.get("name"), str) or not NAME.match(g["name"]):
        raise ConfigError(f"{where}: model.groups entry {g!r:.80}: \"name\"={g.get('name')!r}; allowed: a plain "
                          "name of letters, digits, '_' and '-'")
    if not isinstance(g.get("peers"), int) or isinstance(g.get("peers"), bool):
        raise ConfigError(f"{where}: model.groups entry {g['name']}: \"peers\"={g.get('peers')!r}; allowed: an integer")
    if g["peers"] < 1:      # -2 became the text a:-2, refused as "not NAME:PEERS", a syntax never written
        raise ConfigError(f"{where}: model.groups entry {g['name']}: \"peers\"={g['peers']}; allowed: an integer >= 1")
    for section in ("model", "optim"):
        for k, x in g.get(section, {}).items():
            key = f"{section}.{k}"
            spec = declared().get(key)
            number = spec is not None and spec.type in (int, float)
            if key not in group_keys():     # `"groups": "x:1"` was "allowed: a JSON value of the field's type"
                raise ConfigError(f"{where}: model.groups entry {g['name']}: {key}; a group may set "
                                  f"{', '.join(settable())}{near(key.removeprefix('model.'))}")
            if number and (isinstance(x, bool) or (isinstance(x, float) and not math.isfinite(x))
                           or (spec.type is int and isinstance(x, float))):
                # 1e400 (JSON's Infinity) was "model.groups='a:2:width=inf;b:2': model.width='inf' is not int",
                # naming neither the file nor what it holds; `true` became the text `true`
                raise ConfigError(f"{where}: model.groups entry {g['name']}: {key}={x!r}; allowed: a finite JSON "
                                  f"{'integer' if spec.type is int else 'number'}")
            if not isinstance(x, (str, int, float)) or (isinstance(x, str) and (number or any(c in x for c in ",;:="))):
                raise ConfigError(f"{where}: model.groups entry {g['name']}: {key}={x!r}; allowed: a JSON "
                                  f"{'number' if number else 'value'} of the field's type")


def _text(x) -> str:
    return str(x).lower() if isinstance(x, bool) else str(x)


def group_config(cfg: Config, g: Group) -> Config:
    """The config of group g's peers as a run of their own: its fields over the run's, no groups."""
    model = {k.removeprefix("model."): v for k, v in g.values if k.startswith("model.")}
    optim = {k.removeprefix("optim."): v for k, v in g.values if k.startswith("optim.")}
    return replace(cfg, peers=g.peers, model=replace(cfg.model, groups=None, **model),
                   optim=replace(cfg.optim, **optim))


def active_counts(cfg: Config, groups: tuple) -> list[int]:
    """Peers per round of each group: max(1, round(participation * P_g)), so every group takes part
    in every round with a static count (their sum may differ from round(participation * P))."""
    return [max(1, int(round(cfg.participation * g.peers))) for g in groups]


def check(cfg: Config, declared: bool = False, averages: bool = True) -> None:
    """The groups' own rules: counts, names, and what groups cannot do yet, one line each. `declared`: the
    protocol's TRAITS say its round runs groups (a plugin's `model_groups=True`), as GROUP_PROTOCOLS' do;
    `averages`: it averages or merges parameters (the FedAvg family, the bridge): the refusal says that
    averaging across architectures is undefined; otherwise it says how a plugin declares groups."""
    groups = parse(cfg.model.groups)
    if not groups:
        return
    names = [g.name for g in groups]
    if len(set(names)) < len(names):
        raise ConfigError(f"model.groups names {', '.join(names)}: each group needs its own name")
    # a group of 0 peers is refused before this, as peers=0 of the group's own config (validation.py)
    total = sum(g.peers for g in groups)
    if total != cfg.peers:
        raise ConfigError(f"model.groups has {' + '.join(str(g.peers) for g in groups)} = {total} peers but "
                          f"peers={cfg.peers}; the group counts must sum to peers (set peers={total})")
    takes = declared or cfg.protocol.name in GROUP_PROTOCOLS
    if len(groups) == 1 and not takes:
        raise ConfigError(one_group_refusal(cfg, groups[0]))
    # groups of one architecture (a:2;b:2, or differing in optim.* only) were told "averaging across
    # architectures is not defined": defined there, and not run by groups (context.ModelGroup)
    one_model = len({group_config(cfg, g).model for g in groups}) == 1
    why = ("the groups share one architecture, but the FedAvg family takes no model.groups: leave model.groups "
           "unset to run one model for every peer" if one_model else
           "parameter averaging across architectures is not defined")
    if not one_model and not takes and not averages:
        # a plugin (or a built-in of another kind) that does not declare groups: "parameter averaging" was
        # said of a soft-label plugin built on distill_round, which averages nothing
        why = ("a plugin whose round exchanges predictions through distill_round or local_round declares "
               "TRAITS = Traits(..., model_groups=True) to run groups (docs/write-a-protocol.md)")
    refuse = [(not takes, f"protocol.name={cfg.protocol.name}",
               f"protocol.name {', '.join(GROUP_PROTOCOLS)} ({why})"),
              (cfg.devices is not None and cfg.devices > 1, f"devices={cfg.devices}", "devices=1 or unset "
               "on one device"),
              (cfg.faults.kind != "none", f"faults.kind={cfg.faults.kind}", "faults.kind=none"),
              (cfg.privacy.noise > 0, f"privacy.noise={cfg.privacy.noise}", "privacy.noise=0"),
              (cfg.participation_rule != "uniform", f"participation_rule={cfg.participation_rule}",
               "participation_rule=uniform (each group draws its own A_g)"),
              (cfg.eval_peers is not None, f"eval_peers={cfg.eval_peers}", "eval_peers=none (every peer)"),
              (cfg.vote.weighting != "none", f"vote.weighting={cfg.vote.weighting}", "vote.weighting=none"),
              (cfg.softlabel.aggregate in ("median", "trimmed"), f"softlabel.aggregate={cfg.softlabel.aggregate}",
               "softlabel.aggregate=mean or era")]
    for bad, what, allowed in refuse:
        if bad:
            raise ConfigError(f"{what} does not work with model.groups yet; allowed with groups: {allowed}")


def one_group_refusal(cfg: Config, g: Group) -> str:
    """A single group under a protocol that takes no groups (the FedAvg family): one group is one model for every peer, which
    the protocol runs without groups, so the line says how to write it that way. "averaging across
    architectures is not defined" was wrong there, with one architecture. It stays refused rather than
    rewritten into the ungrouped run: the FedAvg family does not take model groups (context.ModelGroup),
    and the run would record a model.groups it did not use, with @NAME columns no row has."""
    own = " ".join(f"{k}={_text(v)}" for k, v in g.values)
    return (f"model.groups={cfg.model.groups!r} is one group, and protocol.name={cfg.protocol.name} takes no "
            "model.groups: it runs one model for every peer (the parameter averaging needs one architecture), "
            "which is what one group is; "
            f"allowed: leave model.groups unset{' and set ' + own if own else ''} (the same peers and model), or "
            f"groups of several models with protocol.name {', '.join(GROUP_PROTOCOLS)}")
