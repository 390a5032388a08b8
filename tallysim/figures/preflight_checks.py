"""What a figure checks before it runs anything (split from figures/__init__.py, which re-exports these
names): its arguments, its --results and --out folders, its config's kind and smoke section, the file names
it will write, and a figure config those would replace. Shared by make_figure, dry_run, programs and main."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from tallysim import atomic, config, outdir
from tallysim.config import ConfigError
from tallysim.fields import is_path
from tallysim.sweep_section import figure_keys
from tallysim.figures.spec_keys import check_spec_keys
from tallysim.figures.plans import panels
from tallysim.figures.shipped import resolve


KINDS = ("curves", "final_vs", "classes", "mechanism", "pareto", "speed", "faults", "privacy", "robustness", "vocab",
         "model_groups")


# The file names a figure writes after its tag (`<tag>_table.md`, a panel's `<tag>_<panel>_frontier.csv`):
# before anything runs, the longest is checked against NAME_MAX and none may be a symbolic link.
_SUFFIXES = (".png", ".pdf", ".csv", ".json", "_table.md", "_frontier.md", "_frontier.csv", "_points.csv",
             "_overall.md", "_overall.csv")
_PANEL_SUFFIXES = ("_frontier.md", "_frontier.csv", "_points.csv")
NAME_MAX = 255                   # bytes of one file name on common file systems


def output_names(tag: str, panel_names) -> list[str]:
    """Every file name a figure may write into its --out (not every kind writes every one)."""
    return [f"{tag}{s}" for s in _SUFFIXES] + [f"{tag}_{p}{s}" for p in panel_names for s in _PANEL_SUFFIXES]


def check_output_names(tag: str, panel_names) -> None:
    longest = max(output_names(tag, panel_names), key=lambda n: len(n.encode()))
    if len(longest.encode()) > NAME_MAX:
        raise ConfigError(f"figure {tag[:40]!r}...: it would write {longest[:40]!r}... of "
                          f"{len(longest.encode())} bytes; allowed: file names of at most {NAME_MAX} bytes, so "
                          "rename the figure file (or its panels) shorter")


def preflight(name_or_path: str, smoke: bool, results: Optional[str], out: Optional[str]) -> tuple:
    """(name, path, spec, kind, tag) after the checks a figure makes before it runs anything, shared by
    `make_figure` and `dry_run` (a dry run passed an unknown kind, an --out that is a file and a link at an
    output path, which the real run refused), and a --smoke of a config with no smoke section."""
    smoke = config.plain_value(smoke)   # np.True_ as config.load_file takes it
    if not isinstance(smoke, bool):     # make_figure("fig1", smoke="no") ran the smoke version ("no" is truthy)
        raise ConfigError(f"smoke={smoke!r}: expected True or False")
    for flag, value in (("figure", name_or_path), ("--results", results), ("--out", out)):
        if value is not None and not is_path(value):
            # make_figure("fig1", results=b"runs") from a notebook: a TypeError from inside pathlib (hostile19)
            raise ConfigError(f"{flag.lstrip('-')}={value!r:.60} is {type(value).__name__}, not a path; allowed: a str or "
                              "pathlib.Path" + (" (a figure's name, e.g. 'fig1', or its config file)"
                                                if flag == "figure" else " (a directory)"))
    for flag, value in (("--results", results), ("--out", out)):
        if isinstance(value, str) and not value.strip():     # "$RESULTS" unset: the runs and figures went into .
            raise ConfigError(f"{flag} is empty (an unset shell variable?); allowed: a directory, or . for this one")
        if value is not None and Path(value).is_symlink() and not Path(value).exists():
            # passed as absent: --out failed when the figure was drawn, after every run; --results at its first mkdir
            raise ConfigError(f"{flag} {value} is a symbolic link to {os.readlink(value)}, which does not exist; "
                              f"allowed: the real directory, or another {flag}")
        if value is not None:           # "results\n" read from a file: refused as run's and sweep's --out are
            outdir.destination(value, flag)
            # under a file (--out /dev/null/x): the dry run passed what the real run's mkdir then refused
            if (under := next((q for q in Path(value).parents if q.exists() and not q.is_dir()), None)) is not None:
                raise ConfigError(f"{flag} {value}: {under} is a file, not a directory; allowed: a directory")
    name, path = resolve(name_or_path)
    spec = config.read_file(str(path))
    kind = spec.get("kind")
    if not figure_keys(spec):      # demo.json, quick.json
        raise ConfigError(f"{path} is a run's config (it has no `kind`, `base` or `groups`), not a figure's; "
                          f"run it with `tallysim run --config {path}` (or sweep it), or give a figure config "
                          f"(fig1 ... fig12, robustness, or a file with a `kind`: {', '.join(KINDS)})")
    if "kind" not in spec:  # said "kind=None is not known": a key the file lacks, not a value it holds
        raise ConfigError(f"{path} has no `kind` (a figure config's {', '.join(f'`{k}`' for k in figure_keys(spec))} "
                          f"without one); allowed: \"kind\": one of {', '.join(KINDS)}")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(f"{path}: kind={kind!r} is not known; allowed: {', '.join(KINDS)}")
    check_spec_keys(spec, path, kind)
    if smoke and "smoke" not in spec:
        raise ConfigError(f"--smoke draws the `smoke` section of {path}, which has none (nor a file it extends); "
                          "allowed: add a smoke section, or leave out --smoke")
    if smoke and not _sets_anything(spec["smoke"]):    # as with none: the full-size figure, under the -smoke name
        raise ConfigError(f"--smoke draws the `smoke` section of {path}, which is empty (it changes nothing: the "
                          "full-size figure would run under the -smoke name); allowed: smoke fields in it "
                          '(e.g. "smoke": {"base": {"rounds": 2}}), or leave out --smoke')
    tag = name + ("-smoke" if smoke else "")
    panel_names = panels(spec, smoke) if kind == "pareto" else {}
    check_output_names(tag, panel_names)
    if results is not None and Path(results).exists() and not Path(results).is_dir():
        raise ConfigError(f"--results {results} is a file; the figure's runs go into a directory")
    if results is not None:
        outdir.refuse_inside_run(Path(results) / "group", results, "--results")
        if out is not None and Path(results).resolve() in (Path(out).resolve(), *Path(out).resolve().parents):
            raise ConfigError(f"--out {out} is --results {results} or inside it: figures there are files `tallysim clean` "
                              "refuses to remove with the runs; allowed: an --out outside --results (default: figures)")
    if out is not None:
        out_dir = Path(out)
        if out_dir.exists() and not out_dir.is_dir():
            raise ConfigError(f"--out {out} is a file; figures go into a directory")
        # A link among the outputs is refused at the start, not after the runs (the writes refuse it too).
        atomic.refuse_symlinks(out_dir / n for n in output_names(tag, panel_names))
        _refuse_replacing_a_config(out_dir / f"{tag}.json", path)
    return name, path, spec, kind, tag


def _sets_anything(section) -> bool:
    """Whether a smoke section holds a value anywhere: `{}`, `{"base": {}}`, `{"groups": {"t": {}}}` change nothing."""
    return not isinstance(section, dict) or any(_sets_anything(v) for v in section.values())


def _refuse_replacing_a_config(record: Path, path: Path) -> None:
    """A figure writes OUT/<name>.json (the files it wrote, the seconds): `tallysim figure figs/x.json --out
    figs` replaced the user's figure config with it, after the runs. A config there (this figure's file,
    or any file with a figure's keys or an `extends`: a base it reads) is refused before anything runs."""
    if not record.is_file():
        return
    same = record.resolve() == Path(path).resolve()
    try:
        doc = json.loads(record.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        doc = None
    if same or (isinstance(doc, dict) and (figure_keys(doc) or "extends" in doc)):
        raise ConfigError(f"--out {record.parent}: the figure writes {record} (the files it wrote and the seconds), "
                          f"which {'is the figure config being run' if same else 'holds a config'}, and would replace "
                          "it; allowed: another --out (the default: figures)")
