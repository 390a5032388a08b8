"""Where each committed result file comes from (provenance58, 2026-12-08). 82 of the 89 CSVs under docs/ had no
`# ` header and no named commit: a reviewer could not tell which code and command made the numbers a page
quotes. docs/provenance.md is one table for every CSV and JSON result under docs/: the commit that last
changed it, what produced it ("command not recorded" where nothing committed says), the section describing it.
These check the table stays complete and true as files are re-measured. Pure text and git, no run."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGE = DOCS / "provenance.md"
NOT_RESULTS = "## Files under `docs/` that are not result files"
ROW = re.compile(r"^\| `([^`]+)` \| ([0-9a-f]{7,40}) \((\d{4}-\d\d-\d\d \d\d:\d\d)\) \| (.+) \| \[[^\]]+\]\(([^)#]+)#([^)]+)\) \|$")


def _data_files() -> set:
    return {str(p.relative_to(DOCS)) for p in DOCS.rglob("*") if p.suffix in (".csv", ".json") and p.is_file()}


@pytest.fixture(scope="module")
def page():
    text = PAGE.read_text()
    table, rest = text.split(NOT_RESULTS, 1) if NOT_RESULTS in text else (text, "")
    rows = {}
    for line in table.splitlines():
        if line.startswith("| `"):
            m = ROW.match(line)
            assert m, f"docs/provenance.md: a row not of the form file | commit (date) | produced by | [page](page#anchor): {line[:120]}"
            assert m.group(1) not in rows, f"{m.group(1)} has two rows"
            rows[m.group(1)] = m.groups()[1:]
    not_results = set(re.findall(r"^- `([^`]+)`", rest, re.M))
    return rows, not_results


def test_every_csv_and_json_under_docs_has_a_row_or_is_listed_as_not_a_result(page):
    rows, not_results = page
    files = _data_files()
    assert len(files) >= 95                     # 93 CSVs and 6 JSON results on 2026-12-08
    missing = sorted(files - set(rows) - not_results)
    assert not missing, f"result files under docs/ with no row in docs/provenance.md (nor listed as not results): {missing}"
    gone = sorted((set(rows) | not_results) - files)
    assert not gone, f"docs/provenance.md names files that are not under docs/: {gone}"
    assert not set(rows) & not_results, "a file both in the table and listed as not a result"


def _git_ok() -> bool:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return False
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "false"


@pytest.mark.skipif(not _git_ok(), reason="needs a full git checkout (the commits' history)")
def test_each_row_names_the_commit_that_last_changed_its_file_and_its_date(page):
    rows, _ = page
    # One `git log` over docs/ (newest first): a file's first appearance is its last change.
    log = subprocess.run(["git", "-C", str(ROOT), "log", "--format=@%H %ad", "--date=format:%Y-%m-%d %H:%M",
                          "--name-only", "--", "docs"], capture_output=True, text=True, check=True).stdout
    last, commit = {}, None
    for line in log.splitlines():
        if line.startswith("@"):
            commit = line[1:]
        elif line.startswith("docs/"):
            last.setdefault(line[len("docs/"):], commit)
    wrong = {}
    for name, (short, date, *_r) in rows.items():
        full, when = last[name].split(" ", 1)
        if not full.startswith(short) or when != date:
            wrong[name] = (f"{short} ({date})", f"{full[:7]} ({when})")
    assert not wrong, f"rows whose commit is not the file's last change (named, actual): {wrong}"


def test_every_config_and_script_a_row_names_exists(page):
    rows, _ = page
    named = {(name, p) for name, (_h, _d, cmd, *_r) in rows.items()
             for p in re.findall(r"experiments/[\w/]+\.(?:json|py)", cmd)}
    assert len(named) >= 80
    missing = sorted((n, p) for n, p in named if not (ROOT / p).is_file())
    assert not missing, f"rows naming a config or script that does not exist: {missing}"
    raw = {(name, j) for name, (_h, _d, cmd, *_r) in rows.items() for j in re.findall(r"`([\w.]+\.jsonl)`", cmd)}
    assert raw and not [r for r in raw if not (DOCS / "figures" / r[1]).is_file()], \
        f"rows naming JSON lines not in docs/figures/: {[r for r in raw if not (DOCS / 'figures' / r[1]).is_file()]}"
    # A row with no config, script or tallysim command must say so in the words the page defines.
    silent = [n for n, (_h, _d, cmd, *_r) in rows.items()
              if "experiments/" not in cmd and "tallysim" not in cmd and "command not recorded" not in cmd]
    assert not silent, f"rows that neither name what produced the file nor say 'command not recorded': {silent}"


def _slugs(md: str) -> set:
    from markdown.extensions.toc import slugify
    text = re.sub(r"^```.*?^```", "", md, flags=re.M | re.S)      # a `# comment` in a code block is no heading
    return {slugify(h, "-") for h in re.findall(r"^#{1,6} (.+?)\s*$", text, re.M)}


def test_each_row_links_a_section_that_exists(page):
    rows, _ = page
    cache: dict = {}
    bad = []
    for name, (_h, _d, _c, target, anchor) in rows.items():
        if target not in cache:
            cache[target] = _slugs((DOCS / target).read_text()) if (DOCS / target).is_file() else set()
        if anchor not in cache[target]:
            bad.append((name, f"{target}#{anchor}"))
    assert not bad, f"rows linking a page or section that does not exist: {bad}"


def test_the_page_is_linked_from_index_and_figures_and_in_the_nav():
    for src in ("index.md", "figures.md", "verdicts.md"):
        assert "(provenance.md)" in (DOCS / src).read_text(), f"docs/{src} does not link provenance.md"
    nav = (ROOT / "mkdocs.yml").read_text()
    assert re.search(r"^\s+- [^:\n]+: provenance\.md$", nav, re.M), "mkdocs.yml's nav does not list provenance.md"
