"""A figure config's runs, planned before any of them runs: its groups (with `include`, `sweep` axes and
the smoke version's changes) and panels, each group a sweep whose every configuration is validated, its
run count bounded and its devices counted. Split from figures/__init__.py, which re-exports these names."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from tallysim import config, outdir, sweep, sweep_axes, sweep_checks
from tallysim.config import ConfigError
from tallysim.model_groups import group_config
from tallysim.out_path import Given


class Plans(dict):
    """group_plans' answer: group name -> (base Config, [(run name, overrides)]), and `configs`: group name
    -> its runs' Configs as the plan validated them, in run order. make_figure (its compiles and its
    sweeps), dry_run and programs reuse them: each validated its groups' configs again (about 1 s more on
    experiments/robustness.json for counting its compiles alone)."""

    def __init__(self, plans: dict, configs: dict, axes: Optional[dict] = None):
        super().__init__(plans)
        self.configs = configs
        self.axes = axes or {}       # group name -> its sweep axes as sweep.json records them (table's order)

    def check_data(self, root: Path) -> None:
        """Each group's data (data.path, a misspelt data.name: data.loading.check_datasets) and folder before the first group runs, for the runs
        that will load data (sweep_checks.unfinished): not one finished in root/group (a figure re-drawn from results
        whose data has moved since), nor one the sweep skips as diverged; run_sweep's check came only as
        each group started, after the groups before it."""
        from tallysim.data import loading
        for g, (_, runs) in self.items():
            # and each folder still to be made, no stray whitespace (the group's, a run's: a panel of a single
            # base run names it), before the first group runs, in words naming it; see out_path.check_name
            outdir.check_name(g, "figure group", root)
            for name, _ in runs:
                outdir.check_name(name, f"figure group {g!r}: run", root / g)
            try:
                loading.check_datasets(sweep_checks.unfinished(runs, self.configs[g], root / g))
                # and each group's folder as its sweep checks it (a file or a folder of the user's where a run
                # goes, a damaged sweep.json): a later group's was refused only once the groups before it had
                # trained (hours at full size), and `figure --dry-run` passed it
                # named as the folder of group g under what was given to --results (root's parent), not as
                # the value given (out_path.Given)
                sweep_checks.checked_out(root / g, runs, self.configs[g], Given("--results", root.parent, f"group {g!r}"))
            except ConfigError as e:
                raise ConfigError(f"figure group {g!r}: {e}") from None


def group_plans(spec: dict, smoke: bool, base_dir: Path, start=None) -> Plans:
    """group name -> (base Config, [(run name, overrides)]), all validated before anything runs (the
    validated Configs: the answer's `configs`). `start` (the command line's startup.start_jax) is
    called once every config has validated, just before the devices are counted: the first thing that
    needs JAX. A plain plan checks the `smoke` section too (smoke_refusal): a stale key there showed only
    with --smoke, after the full figure had been run."""
    plans, checked, axes = _plan(spec, smoke, base_dir)
    if not smoke and isinstance(spec.get("smoke"), dict) and spec["smoke"]:
        smoke_refusal(spec, base_dir)
    if start is not None:
        start()
    for g, cfgs in checked.items():              # before the first one runs
        sweep_checks.check_devices(plans[g][1], cfgs)
        try:                                     # run_sweep's, for every group before the first group runs
            sweep.check_eval_peers(plans[g][1], cfgs)
        except ConfigError as e:
            raise ConfigError(f"figure group {g!r}: {e}") from None
    return Plans(plans, checked, axes)


def smoke_refusal(spec: dict, base_dir: Path) -> None:
    """The smoke version's plan checked as --smoke checks it (every config validated, eval_peers against
    peers; nothing compiled, no JAX), refused in words naming the `smoke` section: a key renamed in the
    config fields but not in `smoke` passed every plain run and --dry-run, and stopped only --smoke."""
    try:
        plans, checked, _ = _plan(spec, True, base_dir)
        for g, cfgs in checked.items():
            try:
                sweep.check_eval_peers(plans[g][1], cfgs)
            except ConfigError as e:
                raise ConfigError(f"figure group {g!r}: {e}") from None
    except ConfigError as e:
        raise ConfigError(f"the figure's `smoke` section (what --smoke runs; checked on every run of the "
                          f"figure, --smoke or not) does not validate: {e}") from None


def _plan(spec: dict, smoke: bool, base_dir: Path) -> tuple[dict, dict, dict]:
    """group_plans' plans, validated configs and each group's axes (sweep_axes.axis_texts), before JAX is
    started and the devices counted."""
    shrink = spec.get("smoke", {}) if smoke else {}
    for key in ("base", "sweep", "smoke"):
        if not isinstance(spec.get(key, {}), dict):
            raise ConfigError(f"a figure config's `{key}` must be an object, not {spec[key]!r:.40}")
    if isinstance(shrink, dict) and not isinstance(shrink.get("base", {}), dict):   # AttributeError 'items'
        raise ConfigError(f"a figure config's `smoke.base` must be an object of config fields, not "
                          f"{shrink['base']!r:.40}")
    groups = spec.get("groups", {})
    if not isinstance(groups, dict) or not isinstance(shrink, dict) \
            or not isinstance(shrink.get("groups", {}), dict):      # [] was falsy: the base alone, as "all"
        raise ConfigError("a figure config's `groups` (and `smoke.groups`) must be an object "
                          '{"group name": {config fields}}')
    groups = groups or {"all": {}}
    # smoke.groups shrinks the figure's groups; a name that is none of them (a typo, or a group renamed in
    # `groups` only) was added as a group of its own, run in the smoke version alone with the base config
    extra = [g for g in shrink.get("groups", {}) if g not in groups]
    if extra:
        raise ConfigError(f"a figure config's `smoke.groups` names {', '.join(map(repr, extra))}, not a group of "
                          f"its `groups`; allowed: {', '.join(groups)} (smoke.groups shrinks those; a new group "
                          "goes into `groups`)")
    groups = config.merge(groups, shrink.get("groups", {}))
    only = shrink.get("only")
    if only is not None:            # a smoke version may draw only some of the groups
        if not isinstance(only, list) or not only or any(g not in groups for g in only):
            raise ConfigError(f"a figure config's `smoke.only` must be a list of its group names "
                              f"({', '.join(groups)}), not {only!r:.60}")
        groups = {g: groups[g] for g in only}
    plans, total, group_axes, folded = {}, 0, {}, {}
    for gname, g in groups.items():
        outdir.check_name(gname, "figure group")      # results/<figure>/<group>/ stays inside --results
        if gname.casefold() in folded:      # "tally" and "Tally": one results/<figure>/<group>/ on macOS
            raise ConfigError(f"figure groups {folded[gname.casefold()]!r} and {gname!r} {sweep_axes.CASE_ONLY} "
                              "(results/<figure>/<group>/); allowed: group names that differ by more than case")
        folded[gname.casefold()] = gname
        if not isinstance(g, dict):
            raise ConfigError(f"figure group {gname!r} must be an object of config fields, not {g!r}")
        g = dict(g)
        for where, section in ((f"groups.{gname}.sweep", g.get("sweep", {})), ("smoke.sweep", shrink.get("sweep", {}))):
            if not isinstance(section, dict):       # a list: dict.update's "sequence element #0" traceback
                raise ConfigError(f"a figure config's `{where}` must be an object {{\"field\": [values]}}, "
                                  f"not {section!r:.40}")
        fields, axes = dict(spec.get("base", {})), {}
        if "include" in g:
            if not isinstance(g["include"], str) or not g["include"]:     # 5 or a list: a TypeError traceback
                raise ConfigError(f"figure group {gname!r}: \"include\"={g['include']!r:.60}; allowed: the path of "
                                  "one JSON config file, relative to the figure's file (e.g. \"pareto/tally.json\")")
            inc = _group_configs(gname, str(base_dir / g.pop("include")), None)
            for k in ("description", "smoke"):
                inc.pop(k, None)
            axes.update(inc.pop("sweep", {}))
            fields = config.merge(fields, inc)
        axes.update(spec.get("sweep", {}))
        axes.update(g.pop("sweep", {}))
        if smoke:
            axes.update(shrink.get("sweep", {}))
        # smoke.groups.<name> is the more specific: it wins over smoke.base (matched_bits' fedct groups set
        # probe.per_round to their whole smoke pool, which smoke.base's 64 used to replace)
        own = {k: v for k, v in shrink.get("groups", {}).get(gname, {}).items() if k not in ("sweep", "include")}
        # named: "config file: seeds='5' is a string" said neither the figure's file nor which group
        where = f"figure group {gname!r} (base, groups.{gname}{', smoke' if smoke else ''})"
        cfg = config.from_dict(config.merge(config.merge(config.merge(fields, g), shrink.get("base", {})), own),
                               where=where)
        runs = sweep.expand(axes, [])
        group_axes[gname] = sweep_axes.axis_texts(sweep_axes.merged(axes, []))
        total += len(runs) * max(1, len(panels(spec, smoke)))
        sweep.check_count(total, "figure")        # before any of its runs is validated
        plans[gname] = (cfg, with_panels(runs, panels(spec, smoke)))
    checked = {g: _group_configs(g, cfg, runs) for g, (cfg, runs) in plans.items()}   # every group validated, once
    if spec.get("kind") == "model_groups":
        # groups_plot draws each run's model groups (acc_mean@NAME): a run without model.groups drew
        # nothing, an empty panel after every run had run
        for g, cfgs in checked.items():
            if any(getattr(c, "model", None) and not c.model.groups for c in cfgs):
                raise ConfigError(f"figure group {g!r}: a kind=model_groups figure draws each run's model groups "
                                  "(acc_mean@NAME against bits_per_peer@NAME), and this group's runs set no "
                                  "model.groups; allowed: model.groups in `base` or in the group "
                                  "(e.g. \"phone:6:mlp;server:2:lenet\"), or another kind (curves)")
        _same_groups_as_local(checked)
        from tallysim.figures import groups_plot     # its local-baseline pairing, before the runs, not after
        groups_plot.check_plan(plans, checked, bool(panels(spec, smoke)))
    if spec.get("kind") == "vocab":
        _refuse_images(checked)
    return plans, checked, group_axes


def _same_groups_as_local(checked: dict) -> None:
    """groups_plot tables each group's gain over local training's group of the same name: a protocol's group
    `a` of CNNs beside local's `a` of MLPs was tabled as a gain over the MLPs, and a group local does not
    have drew no gain, in silence. Refused before any run where the figure has local runs at all."""
    local: dict = {}
    for cfgs in checked.values():
        for c in cfgs:
            if c.protocol.name == "local":
                for g in config.parse_groups(c.model.groups):
                    local.setdefault(g.name, set()).add(_group_model(c, g))
    if not local:
        return
    for name, cfgs in checked.items():
        for c in cfgs:
            for g in config.parse_groups(c.model.groups) if c.protocol.name != "local" else ():
                if _group_model(c, g) not in local.get(g.name, ()):
                    why = "has no such group" if g.name not in local else "runs another model or peer count in it"
                    raise ConfigError(f"figure group {name!r}: its model group {g.name} ({g.peers} peers of "
                                      f"{group_config(c, g).model.name}) is tabled against local training's group "
                                      f"{g.name}, and local training {why}; allowed: the same model.groups in "
                                      "every figure group (set it in `base`), or another kind (curves)")


def _group_model(cfg, g) -> tuple:
    """(peers, the group's model as its fields read) of model group g of a run's config."""
    m = group_config(cfg, g).model
    return g.peers, ", ".join(f"{k}={v}" for k, v in vars(m).items() if k != "groups")


def _refuse_images(checked: dict) -> None:
    """A kind=vocab figure (vocab_plot: next-token accuracy and perplexity per vocabulary, C read from the
    prepared text) of runs on images: it drew them on a "next-token test accuracy" axis, C tabled as "?",
    after every run had run. Refused before any run, naming the group; a dataset of files may be text."""
    from tallysim.file_shapes import KNOWN_SHAPES
    for g, cfgs in checked.items():
        images = sorted({c.data.name for c in cfgs if c.data.name == "synthetic" or c.data.name in KNOWN_SHAPES})
        if images:
            raise ConfigError(f"figure group {g!r}: a kind=vocab figure draws next-token accuracy and perplexity "
                              f"per vocabulary, and this group runs on {', '.join(images)} (images, no "
                              "vocabulary); allowed: data.name shakespeare or shakespeare_words (or text files "
                              "of your own), or kind=curves or classes for images")


def _group_configs(gname: str, cfg, runs):
    """sweep_checks.configs of a figure group's runs (an `include` file's contents with runs=None), its errors
    naming the group: "sweep run iid: rounds=0 is out of range" said neither the group nor that the
    value came from the figure's base (every group's), and a missing include not whose it was."""
    try:
        return config.read_file(cfg) if runs is None else sweep_checks.configs(cfg, runs)
    except ConfigError as e:
        raise ConfigError(f"figure group {gname!r}: {e}") from None


def panels(spec: dict, smoke: bool) -> dict:
    """panel name -> [key=value overrides] ({} when the figure has no panels)."""
    own = spec.get("smoke", {}).get("panels") if smoke else None
    if own is not None and not isinstance(own, dict):   # [] was falsy: the full figure's panels, in silence
        raise ConfigError('a figure config\'s `smoke.panels` must be an object {"panel name": {config fields}}')
    p = own or spec.get("panels") or {}
    if not isinstance(p, dict) or not all(isinstance(v, dict) for v in p.values()):
        raise ConfigError('a figure config\'s `panels` must be an object {"panel name": {config fields}}')
    out = {}
    for name, fields in p.items():
        outdir.check_name(name, "figure panel")
        if "__" in name:    # a run's panel is its directory's name up to the first "__" (panel_of)
            raise ConfigError(f"figure panel {name!r}: a panel's name may not hold '__', which ends it in its "
                              f"runs' directory names (they are <panel>__<run>: {name.split('__')[0]!r} would "
                              f"be read back as its panel); allowed: e.g. {name.replace('__', '_')!r}")
        # each value as a config file's body takes it: a list for one value ({"partition.kind": ["iid",
        # "dirichlet"]}) became the text '["iid", "dirichlet"]', refused as "is not known"
        flat = {k: config.json_axis_value(k, v, f"figure panel {name!r}") if k in config.field_keys() else v
                for k, v in _flat(fields).items()}
        out[name] = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in flat.items()]
    return out


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, prefix + k + ".") if isinstance(v, dict) else {prefix + k: v})
    return out


def with_panels(runs: list, panel_overrides: dict) -> list:
    """Every run once per panel, named `<panel>__<run>` (`<panel>` for a sweep's single `base` run)."""
    if not panel_overrides:
        return runs
    return [(p if name == "base" else f"{p}__{name}", ov + items)
            for p, ov in panel_overrides.items() for name, items in runs]
