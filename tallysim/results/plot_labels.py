"""What a curves figure says in words: each run's legend entry (the protocol, then the fields that tell
runs of one protocol apart), a --label or --title checked as matplotlib will draw it, the title the runs
share, and the y axis's label naming the model each accuracy is of (split from plot.py, which imports
them; pareto checks its labels here too)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from tallysim.config import ConfigError
from tallysim.results import metrics

WHICH_ACCURACY = {"acc_global": "server model", "acc_mean": "peer mean"}


def _short_keys(keys: list[str]) -> dict:
    """A dotted field -> its last part where that is unambiguous among `keys` (`partition.alpha` ->
    `alpha`), else the whole key: legends stay short without two fields reading alike."""
    # `model.name` read "name=lstm" beside "per_round=1": a `.name` field is its section (`model=lstm`)
    last = [k.rsplit(".", 1)[0] if k.endswith(".name") else k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _dir_rest(name: str, proto: str) -> str:
    """A run directory's name without the protocol in it, token by token (a sweep's
    `protocol.name=tally` part, or a `tally_` prefix), never as a substring of other text."""
    parts = [x for x in name.split("__") if x != f"protocol.name={proto}"]
    rest = "__".join(parts)
    for sep in ("_", "-", "."):
        if rest.startswith(proto + sep):
            rest = rest[len(proto) + 1:]
    return rest if rest and rest != proto else ""


def check_text(flag: str, text: str) -> str:
    """A legend entry or title the user wrote, as matplotlib will draw it: an empty legend entry is left
    out of the legend in silence (so, below, is one starting with `_`), and `$...$` is parsed as
    mathtext when the figure is saved, where a malformed one (`$\\frac$`, `$$`) was a traceback after the
    runs were read. A dollar meant literally is written `\\$`."""
    if not text and "label" in flag:       # --label (a legend entry; labels= or label= from Python), not --title
        raise ConfigError(f"{flag} '' is empty, and matplotlib leaves an empty entry out of the legend; allowed: "
                          "a non-empty name")
    from matplotlib import cbook, mathtext
    if cbook.is_math_text(text):
        try:
            mathtext.MathTextParser("path").parse(text)
        except ValueError as e:
            why = " ".join(str(e).split())[:120]
            raise ConfigError(f"{flag} {text!r} is not valid matplotlib mathtext between its $ signs ({why}); "
                              "allowed: valid $...$, or \\$ for a literal dollar sign") from None
    return text


def run_labels(cfgs: list[dict], run_dirs, labels: Optional[list] = None, flag: str = "--label") -> list[str]:
    """The legend entries: `labels` when given (one per run); else the protocol name, and where
    several runs share a protocol, the config fields that tell them apart (`tally (alpha=0.1)`, from
    their config.json, so a sweep's `k=v__k2=v2` names are not picked apart); runs whose configs are
    identical fall back to their directory's name without the protocol (runs/tally_a01 -> `tally (a01)`)."""
    from tallysim.results.swept import flatten, swept_fields, unread_blank, with_defaults
    if labels is not None:
        if len(labels) != len(cfgs):
            raise ConfigError(f"{flag} given {len(labels)} times for {len(cfgs)} runs; give one per run, in "
                              "the order of the run directories")
        return [check_text(flag, str(x)) for x in labels]
    protos = [c.get("protocol", {}).get("name", Path(d).name) for c, d in zip(cfgs, run_dirs)]
    out = []
    for p, cfg, d in zip(protos, cfgs, run_dirs):
        same = [c for c, q in zip(cfgs, protos) if q == p]
        if len(same) == 1:
            out.append(p)
            continue
        keys = [k for k in swept_fields(same) if k != "seed"] or swept_fields(same)
        flat, short = with_defaults(flatten(cfg), keys), _short_keys(keys)
        # a field this run does not read (model.hidden on an MLP beside an LSTM, the synthetic sizes on
        # Shakespeare) is no setting of it: as the table blanks it, the legend leaves it out (mixed image
        # and text tally runs were labelled with every field of both, too wide for the figure)
        blank = unread_blank(flat, keys)
        rest = ", ".join(f"{short[k]}={flat.get(k)}" for k in keys if blank.get(k) is not None or flat.get(k) is None)
        rest = rest or _dir_rest(Path(d).name, p) or Path(d).parent.name
        out.append(f"{p} ({rest})")
    # a sweep's `seed` axis: runs alike but for their seed read as one label, then as their long directory
    # names (`[chars/protocol.name=tally__probe.per_round=1__model.name=lstm__seed=0]`): name the seed
    seeds = [flatten(c).get("seed") for c in cfgs]
    out = [(f"{x[:-1]}, seed={s})" if x.endswith(")") else f"{x} (seed={s})")
           if out.count(x) > 1 and len({t for y, t in zip(out, seeds) if y == x}) > 1 else x
           for x, s in zip(out, seeds)]
    if len(set(out)) < len(out):             # still alike (same config and names): the directories
        out = [f"{x} [{Path(d).parent.name}/{Path(d).name}]" if out.count(x) > 1 else x
               for x, d in zip(out, run_dirs)]
    return out


def default_title(cfgs: list[dict]) -> str:
    """What the runs share: dataset, partition and peers (when they all agree)."""
    def same(get):
        vals = {str(get(c)) for c in cfgs}
        return vals.pop() if len(vals) == 1 else None
    data = same(lambda c: c.get("data", {}).get("name"))
    part = same(lambda c: (lambda p: f"Dirichlet {p.get('alpha')}" if p.get("kind") == "dirichlet"
                           else p.get("kind"))(c.get("partition", {})))
    peers = same(lambda c: c.get("peers"))
    # a cohort and model groups change what the curves mean (a cross-device run of two architectures was
    # titled as 12 peers all active with one model): said when every run shares them
    cohort = same(lambda c: c.get("participation", 1.0))
    cohort = cohort and float(cohort) < 1 and f"participation {float(cohort):g}"
    groups = same(lambda c: c.get("model", {}).get("groups"))
    groups = groups not in (None, "None") and "groups " + "/".join(g.split(":")[0] for g in groups.split(";"))
    bits = [x for x in (data, part, peers and f"{peers} peers", cohort, groups) if x]
    return ", ".join(bits) if bits else "test accuracy vs communication"


def y_label(rows_per_run: list[list[dict]], metric: str) -> str:
    if metric == "ppl":                 # the headline model's perplexity (next-token runs)
        which = sorted({WHICH_ACCURACY[metrics.headline_key(rows[-1])] for rows in rows_per_run if rows})
        return "test perplexity" + (f" ({' / '.join(which)})" if which else "")
    if metric != "auto":
        return metric
    which = sorted({WHICH_ACCURACY[metrics.headline_key(rows[-1])] for rows in rows_per_run if rows})
    return "test accuracy" + (f" ({' / '.join(which)})" if which else "")
