"""The shipped figure configs: where `experiments/` is (checkout, wheel or editable install), the
figure names (`fig1` ... and `robustness`) and how a name or path a user gives becomes one file."""
from __future__ import annotations

from pathlib import Path

from tallysim import config, outdir
from tallysim.config import ConfigError
from tallysim.fields import did_you_mean


def experiments_dir() -> Path:
    """The shipped experiment configs: package data `tallysim.experiments` (the repository's top-level
    `experiments/`, mapped into the package by setup.py), in a wheel or an editable install alike; a
    bare source tree on PYTHONPATH falls back to the checkout's `experiments/`. tallysim imported from a
    checkout (its setup.py and experiments/ beside the package) reads that checkout's configs first: with
    another checkout's editable install in the same environment (a clone or git worktree on PYTHONPATH),
    `tallysim.experiments` resolved through that install's finder to the other checkout's files, so
    `figure fig1` and the tests read configs this tree does not hold."""
    import tallysim
    checkout = Path(tallysim.__file__).resolve().parents[1]
    if (checkout / "setup.py").is_file() and (checkout / "experiments" / "fig1.json").is_file():
        return checkout / "experiments"
    try:
        from importlib.resources import files
        d = Path(str(files("tallysim.experiments")))
        if d.is_dir():
            return d
    except (ImportError, TypeError):   # ModuleNotFoundError: not installed, only the source tree
        pass
    return checkout / "experiments"


EXPERIMENTS = experiments_dir()


def shipped_config(path: str) -> tuple[str, bool]:
    """(path to read, whether it is the shipped copy) for a `--config` path: the path itself when it
    exists; else, for a relative path, the config of that name in the shipped experiments (a leading
    `experiments/` dropped), so `run --config experiments/demo.json` works from a wheel as from a
    checkout. A path found nowhere comes back as given: reading it then fails naming it."""
    p = Path(path)
    if p.exists() or p.is_absolute() or not p.parts:
        return path, False
    parts = p.parts[1:] if p.parts[0] == "experiments" else p.parts
    if not parts or ".." in parts:
        return path, False
    shipped = EXPERIMENTS.joinpath(*parts)
    return (str(shipped), True) if shipped.is_file() else (path, False)
# every shipped `figN.json`, in numeric order (a new figure is one file; fig5_reduced is run by path),
# and the Byzantine study (docs/robustness.md)
FIGURES = {**{p.stem: str(p) for p in sorted(EXPERIMENTS.glob("fig*.json"), key=lambda p: (len(p.stem), p.stem))
              if p.stem[3:].isdigit()},
           "robustness": str(EXPERIMENTS / "robustness.json")}


def resolve(name_or_path: str) -> tuple[str, Path]:
    if name_or_path in FIGURES:
        return name_or_path, Path(FIGURES[name_or_path])
    p = Path(name_or_path)
    if not p.exists():
        found, shipped = shipped_config(name_or_path)     # experiments/fig5_reduced.json from a wheel
        if not shipped:
            raise ConfigError(f"figure {name_or_path!r} not found; allowed: {', '.join(FIGURES)} or a "
                              f"path to a figure config{_shipped_figure_hint(name_or_path)}")
        import sys
        print(f"tallysim: note: {name_or_path} is not here; using the shipped copy {found}", file=sys.stderr)
        p = Path(found)
    # the stem names RESULTS/<stem>/ and OUT/<stem>.png: one plain name (a file `...json` has stem '..')
    outdir.check_name(p.stem, f"figure file {p.name!r}: its name")
    return p.stem, p


def check_named(name: str) -> None:
    """A `key=value` where a figure is named: `tallysim figure` reads no overrides (a sweep's would
    change every group's runs and their results directory's meaning)."""
    if "=" in name and not Path(name).exists():
        key = name.split("=", 1)[0]
        raise ConfigError(f"figure {name!r}: `tallysim figure` takes no key=value overrides; allowed: figure names "
                          f"(fig1 ... fig12, robustness, all) and figure config files; to change {key}, write a "
                          f"figure config with \"extends\": \"<the figure's file>\" and {key} in its `base` "
                          "(experiments/fig2_lenet.json extends fig2.json so)")


def _shipped_figure_hint(name: str) -> str:
    """The not-found line's end: a shipped figure config named as a make target or the docs call it
    (`fig2-lenet`, `matched-bits`; run by path, `figure all` leaves them out) is the path to give."""
    stem = Path(name).name.removesuffix(".json").replace("-", "_")
    try:
        if stem and "kind" in config.read_file(str(EXPERIMENTS / f"{stem}.json")):
            return f"; experiments/{stem}.json is a shipped figure config, run by its path: tallysim figure experiments/{stem}.json"
    except (ValueError, OSError):       # no such file (ConfigError), or not a config
        pass
    return did_you_mean(name, FIGURES)


def unique_figures(names) -> list[str]:
    """`names` with each figure once, in first-named order: a figure named twice, as a name and as its
    file (`fig1 experiments/fig1.json`) or as two paths to one file, ran (and wrote) twice. Compared by
    the file each name reads (resolve's rule, without its note); a name that is no file stays, for
    preflight to refuse."""
    seen, out = set(), []
    for n in names:
        path = FIGURES[n] if n in FIGURES else shipped_config(n)[0]
        key = str(Path(path).resolve()) if Path(path).is_file() else n
        if key not in seen:
            seen.add(key)
            out.append(n)
    _one_file_per_stem(out)
    return out


def _one_file_per_stem(names: list[str]) -> None:
    """Two different files of one name (`a/x.json b/x.json`, or `fig1` and a user's `mine/fig1.json`) share
    RESULTS/<stem>/ and OUT/<stem>.*: the second skipped the first's finished runs as its own (a note
    said their configs differ), drew them, and replaced the first's figure. Refused before either runs."""
    by_stem: dict[str, str] = {}
    for n in names:
        path = FIGURES[n] if n in FIGURES else shipped_config(n)[0]
        stem = Path(path).stem
        if stem in by_stem:
            raise ConfigError(f"figures {by_stem[stem]} and {n} are two files of one name, {stem!r}: both would run "
                              f"into RESULTS/{stem}/ and draw OUT/{stem}.*, the second over the first; allowed: "
                              "one of them per command (each with its own --results and --out), or a file renamed")
        by_stem[stem] = n
