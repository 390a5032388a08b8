"""The figure make targets as a new user reads them (2026-12-07, userjourney13): `make help`, the Makefile's
comments, getting-started's Makefile table and figures.md's table say how many runs, compiled programs and
seeds a target runs, and how to run its few-minute version.
- `make help` said fig-participation was "24 runs x 2 seeds" (and the Makefile "24 runs in 24 programs") after
  `local + warm-up` made it 30 runs in 30 programs, as the docs said; each count is now checked against
  the figure's own plan (figures.group_plans and lanes.group, as `figure --dry-run` counts; nothing runs).
- No page showed a figure target's quick form (`make fig1 ARGS=--smoke`), only the matched-bits targets';
  figures.md and `make help` now show it, and every target's figure has a smoke section that validates.
A few seconds in all (configs read and grouped, nothing compiled)."""
import re
import subprocess
from pathlib import Path

import pytest

from tallysim import figures

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = (ROOT / "Makefile").read_text()


def _figure_targets() -> dict[str, list[str]]:
    """Makefile target -> the experiment files its recipe gives `tallysim figure` (the targets beyond fig1-fig12)."""
    found = {}
    for m in re.finditer(r"^([a-z][\w-]*):[^=\n]*\n\t[^\n]*tallysim figure ((?:experiments/\S+\.json ?)+)", MAKEFILE, re.M):
        found[m.group(1)] = m.group(2).split()
    return found


def _plan(files: list[str]) -> dict:
    """Runs, compiled programs and seeds of the figures' full-size runs, as `figure --dry-run` counts them."""
    from tallysim.sim import lanes
    runs = programs = 0
    seeds = set()
    for f in files:
        _, path, spec, _, _ = figures.preflight(str(ROOT / f), False, None, None)
        plans = figures.group_plans(spec, False, path.parent)
        for gname, (_, group_runs) in plans.items():
            runs += len(group_runs)
            if group_runs:
                programs += len(lanes.group(plans.configs[gname]))
                seeds |= {c.seeds for c in plans.configs[gname]}
    return {"runs": runs, "programs": programs, "seeds": seeds}


def _claims(text: str) -> dict:
    """The counts a sentence about a target gives: `N runs`, `N runs in M programs`, `S seeds`."""
    num = lambda s: int(s.replace(",", ""))                                         # noqa: E731
    return {"runs": {num(n) for n in re.findall(r"(\d[\d,]*) (?:[A-Z][\w-]* )?runs\b", text)},
            "programs": {num(n) for n in re.findall(r"runs in (\d[\d,]*) (?:compiled )?programs", text)},
            "seeds": {num(n) for n in re.findall(r"(\d+) seeds", text)}}


def _texts(target: str) -> dict[str, str]:
    """Where a target's counts are written: its `make help` line, the Makefile comment above its rule, its row
    in getting-started's Makefile table and in figures.md's table."""
    out = {}
    helpline = re.search(rf'@echo "make {re.escape(target)} - (.*)"$', MAKEFILE, re.M)
    out["make help"] = helpline.group(1) if helpline else ""
    above = MAKEFILE.split(f"\n{target}:")[0].rsplit("\n\n", 1)[-1]
    out["Makefile comment"] = " ".join(ln.lstrip("# ") for ln in above.splitlines() if ln.startswith("#"))
    for page in ("getting-started.md", "figures.md"):
        rows = [ln for ln in (ROOT / "docs" / page).read_text().splitlines() if ln.startswith(f"| `make {target}` |")]
        out[page] = rows[0] if rows else ""
    return out


TARGETS = _figure_targets()


def test_the_figure_targets_are_found():
    assert {"matched-bits", "niid-matched-bits", "class-pool", "class-1000", "class-1000-momentum0", "fig2-lenet",
            "fig-participation"} <= set(TARGETS), sorted(TARGETS)
    assert TARGETS["fig-participation"] == ["experiments/fig_participation.json",
                                            "experiments/fig_participation_alpha01.json"]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_count_written_for_a_figure_target_is_its_plans(target):
    plan = _plan(TARGETS[target])
    texts = _texts(target)
    assert texts["make help"] and texts["figures.md"] and texts["getting-started.md"], texts
    wrong = []
    for where, text in texts.items():
        said = _claims(text)
        for key in ("runs", "programs"):
            if said[key] and said[key] != {plan[key]}:
                wrong.append(f"{where}: {sorted(said[key])} {key}, the plan has {plan[key]}")
        if said["seeds"] and not said["seeds"] <= plan["seeds"]:
            wrong.append(f"{where}: {sorted(said['seeds'])} seeds, the plan has {sorted(plan['seeds'])}")
    assert not wrong, wrong
    # the counts are said somewhere a user looks first, not only in a comment
    assert _claims(texts["make help"])["runs"] or _claims(texts["figures.md"])["runs"], texts


def test_figures_page_and_make_help_show_the_quick_form_of_every_figure_target():
    """`ARGS=--smoke` is how a figure target runs its few-minute version: shown on `make help` and in figures.md's
    paragraph after its table, which names every figure target and what the smoke writes; every target's figure
    has a smoke section that validates (as `figure --smoke --dry-run` checks it; nothing runs)."""
    help_text = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout
    assert "make fig1 ARGS=--smoke" in help_text, help_text
    page = (ROOT / "docs" / "figures.md").read_text()
    quick = " ".join(page.split("**The quick form of every target.**")[1].split("\n\n")[0].split())
    assert "`make fig1 ARGS=--smoke`" in quick and "`figures/fig1-smoke.png`" in quick, quick
    missing = [t for t in TARGETS if not re.search(rf"`(?:make )?{re.escape(t)}(?: ARGS=--smoke)?`", quick)]
    assert not missing, missing
    for files in [["fig1"], *TARGETS.values()]:
        for f in files:
            figures.preflight(str(ROOT / f) if f.startswith("experiments/") else f, True, None, None)


def test_a_figure_names_a_group_of_one_run_in_the_singular(tmp_path, monkeypatch):
    """The figures notebook printed `fig1-smoke: group local (1 runs)` for each of fig1's one-run groups. The
    line is logged before the group's sweep starts; the sweep is stopped there (nothing compiles)."""
    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(figures.sweep, "run_sweep", stop)
    lines = []
    with pytest.raises(Stop):
        figures.make_figure("fig1", smoke=True, results=str(tmp_path / "r"), out=str(tmp_path / "f"),
                            progress=False, log=lines.append)
    assert lines and lines[-1].startswith("fig1-smoke: group ") and lines[-1].endswith(" (1 run)"), lines
