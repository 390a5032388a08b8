"""A reviewer checking tallysim's published numbers from the README and docs/ alone (userjourney17,
2026-12-08). Every verdict of docs/verdicts.md is recomputed from per-seed CSVs in docs/figures/, but 21 of
the 32 files it reads had no word of where they came from: no `# ` header (the files from seeds53 on have
one), and no commit in the docs. These check that each file the table reads now names its commit, in its
own header or in the provenance table (verdicts.md's "Where each per-seed file comes from", since provenance58
docs/provenance.md's one table for every result file under docs/), and that the commit named is the one that
last changed the file (a CSV re-measured later must update its row). Pure text and git, no run."""
from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tallysim.results import verdicts as v

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "provenance.md"
HASH = re.compile(r"\b[0-9a-f]{7,40}\b")


@pytest.fixture(scope="module")
def files_read():
    """Every file verdicts.rows() reads, found by watching its one reader rather than by a list kept here."""
    seen: set = set()
    orig = v._values

    def watch(src):
        seen.update(src[0])
        return orig(src)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(v, "_values", watch)
        v.rows()
    return sorted(seen)


@pytest.fixture(scope="module")
def table():
    """docs/provenance.md's table, its docs/figures/ rows: file name -> the commit it names."""
    out: dict = {}
    for line in PAGE.read_text().splitlines() if PAGE.is_file() else []:
        m = re.match(r"\| `figures/([^`/]+\.csv)` \| ([0-9a-f]{7,40}) ", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _header(name: str) -> list:
    lines = (v.FIG / name).read_text().splitlines()
    return [ln for ln in lines[:8] if ln.startswith("#")]


def test_every_file_the_verdicts_read_names_its_commit(files_read, table):
    assert len(files_read) >= 30          # the table's 107 rows read 32 files today
    missing = [n for n in files_read
               if n not in table and not any(HASH.search(ln) for ln in _header(n))]
    assert not missing, f"per-seed CSVs with no commit in a `# ` header nor in verdicts.md's table: {missing}"


def test_the_table_lists_only_files_that_exist(table):
    assert table, f"{PAGE} has no provenance table"
    for name in table:
        assert (v.FIG / name).is_file(), name


def _git_ok() -> bool:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return False
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "false"


@pytest.mark.skipif(not _git_ok(), reason="needs a full git checkout (the commits' history)")
def test_each_commit_named_last_changed_its_file(table):
    wrong = {}
    for name, short in table.items():
        full = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%H", "--", f"docs/figures/{name}"],
                              capture_output=True, text=True, check=True).stdout.strip()
        if not full.startswith(short):
            wrong[name] = (short, full[:9])
    assert not wrong, f"the commit named is not the file's last change (named, actual): {wrong}"


# The files the pages' first commands are compared with (README's demo, getting-started's quick start, text.md's
# first run, the MLP control a reviewer reruns first): each page names the commit that last changed the file, in the
# sentence that names the file, so "which code made these digits" has an answer without git archaeology.
NAMED = (("getting-started.md", "docs/demo.csv", "demo.csv"), ("getting-started.md", "docs/quick.csv", "quick.csv"),
         ("text.md", "docs/figures/text_first_run.csv", "text_first_run.csv"),
         ("figures.md", "docs/figures/fig2_small_mlp.csv", "fig2_small_mlp.csv`"),
         ("figures.md", "docs/figures/fig2_small_mlp_rerun.csv", "fig2_small_mlp_rerun.csv"))


@pytest.mark.parametrize("page,path,mention", NAMED, ids=[n[1] for n in NAMED])
def test_first_command_files_name_their_commit_where_the_page_names_them(page, path, mention):
    text = " ".join((ROOT / "docs" / page).read_text().split())
    near = [text[max(0, i - 200):i + 200] for i in (m.start() for m in re.finditer(re.escape(mention), text))]
    named = {h for chunk in near for h in re.findall(r"committed (?:as `[^`]+` )?in ([0-9a-f]{7,40})", chunk)}
    assert named, f"docs/{page} names {path} without the commit that made it"
    if _git_ok():
        full = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%H", "--", path],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert any(full.startswith(h) for h in named), (path, named, full[:9])


def test_getting_started_sends_the_mlp_control_rerun_to_the_file_it_reproduces():
    """getting-started's "Checking the paper's claims yourself" told a reviewer to compare `tallysim figure
    experiments/fig2_small_mlp.json` with figures.md's MLP control table, which is from before seeds paired the
    protocols: the command gives fig2_small_mlp_rerun.csv byte for byte (rerun 2026-12-08), and tally at alpha
    0.1 came out 0.405 against the table's 0.416. The row names the rerun file and its numbers."""
    text = (ROOT / "docs" / "getting-started.md").read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("| `tallysim figure experiments/fig2_small_mlp.json`"))
    assert "`docs/figures/fig2_small_mlp_rerun.csv`" in row
    with open(v.FIG / "fig2_small_mlp_rerun.csv", newline="") as f:
        acc = {(r["group"], float(r["partition.alpha"])): float(r["accuracy"]) for r in csv.DictReader(f)}
    for group, said in (("tally", "tally"), ("softlabel (mean)", "soft labels (mean)")):
        want = " / ".join(f"{acc[(group, a)]:.3f}" for a in (0.1, 0.5, 100.0))
        assert f"{said} {want}" in row, (said, want)


def test_the_20_seed_file_has_its_config_and_it_is_niid_matched_bits_at_alpha_05():
    """niid_seeds20.csv (verdicts.md #66) came from "a figure config of the two groups at alpha 0.5 with seeds: 20,
    eval_every: 20" that was never committed. experiments/niid_seeds20.json is it: the matched-bits figure's
    base, its dir0.5 panel and its two groups, with only seeds and eval_every changed."""
    import json
    exp = ROOT / "experiments"
    mine, src = (json.loads((exp / n).read_text()) for n in ("niid_seeds20.json", "niid_matched_bits.json"))
    assert mine["base"] == {**src["base"], "seeds": 20, "eval_every": 20}
    assert mine["panels"] == {"dir0.5": src["panels"]["dir0.5"]}
    assert mine["groups"] == {g: src["groups"][g] for g in ("tally_500p", "softlabel_8bit_25p")}
    row = next(ln for ln in PAGE.read_text().splitlines() if ln.startswith("| `figures/niid_seeds20.csv`"))
    assert "`experiments/niid_seeds20.json`" in row
