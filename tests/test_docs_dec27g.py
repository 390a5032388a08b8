"""docs55: what the Start-here sections and the front pages tell a newcomer, checked without running
anything (pure text, well under a second):
- the `python experiments/X.py` / `benchmarks/...py` commands of README.md and docs/ (scale.md's Start
  here gives its first commands so) name a script that exists, and every `--option` they pass is one the
  script reads; tests/test_doc_commands.py checks only `tallysim ...` lines;
- README.md and docs/index.md state `make test`'s count and time as getting-started.md's latest
  measurement, and getting-started's Makefile table leads with the same (it led with a time 1,900 tests
  old);
- niid-bench.md, the page left without a Start here, opens with its finding (why one would repeat it);
- every link to a heading (`page.md#anchor`, `#anchor`) of README.md and docs/ finds its heading."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
# `python experiments/x.py --opt v`, `.venv/bin/python benchmarks/a/b.py ...`, over `\` continued lines,
# up to a comment, a backtick, `;` or a pipe; `[--seed 1]` (an optional part) counts as given
SCRIPT = re.compile(r"(?:python3?|\.venv/bin/python)\s+((?:experiments|benchmarks)/[\w/]+\.py)"
                    r"((?:[ \t]+(?!#)[^\s`;|&#]+|[ \t]*\\\n[ \t]*)*)")
# inline `wordclaim.py --smoke tally seed=0`: a script of experiments/ named alone
BARE = re.compile(r"`(\w+\.py)((?: [^`]*)?)`")


def _script_commands():
    found = []
    for page in PAGES:
        text = page.read_text()
        name = page.relative_to(ROOT).as_posix()
        for m in SCRIPT.finditer(text):
            found.append((f"{name}:{text[:m.start()].count(chr(10)) + 1}", m.group(1), m.group(2)))
        for m in BARE.finditer(text):
            if (ROOT / "experiments" / m.group(1)).is_file():
                found.append((f"{name}:{text[:m.start()].count(chr(10)) + 1}", f"experiments/{m.group(1)}",
                              m.group(2)))
    return found


COMMANDS = _script_commands()


def test_the_docs_hold_script_commands():
    where = {c[0].split(":")[0] for c in COMMANDS}
    assert len(COMMANDS) >= 20, len(COMMANDS)
    for page in ("docs/scale.md", "docs/text.md", "docs/niid-bench.md", "docs/performance.md"):
        assert page in where, page
    assert any(c[1] == "experiments/scale_probe_exchange.py" and "--peers" in c[2] for c in COMMANDS)
    assert any(c[1] == "experiments/wordclaim.py" and "--smoke" in c[2] for c in COMMANDS)      # the bare form


@pytest.mark.parametrize("where, script, args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_documented_script_exists_and_reads_its_options(where, script, args):
    path = ROOT / script
    assert path.is_file(), f"{where}: {script} does not exist"
    source = path.read_text()
    unread = [o for o in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", args)
              if f'"{o}"' not in source and f"'{o}'" not in source and f'"{o}=' not in source]
    assert not unread, f"{where}: {script} reads no {unread}"


# ---- make test's count and time on the front pages


def _latest_make_test() -> tuple[str, str]:
    """getting-started.md's first `make test` time and its test count, from the times table."""
    row = next(line for line in (ROOT / "docs" / "getting-started.md").read_text().splitlines()
               if line.startswith("| `make test` (a fresh clone"))
    m = re.search(r"\| (\d+:\d\d) \([^)]*?([\d,]+) tests", row)
    return m.group(1), m.group(2)


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_front_pages_give_make_tests_latest_count_and_time(page):
    time, count = _latest_make_test()
    text = " ".join((ROOT / page).read_text().split())
    assert f"`make test` runs {count} tests in {time}" in text, (page, count, time)
    assert "getting-started.md#two-commands" in text


def test_getting_starteds_makefile_table_leads_with_the_latest_time():
    time, count = _latest_make_test()
    table = (ROOT / "docs" / "getting-started.md").read_text().split("## Makefile")[1]
    row = next(line for line in table.splitlines() if line.startswith("| `make test` |"))
    first = re.search(r"(\d+:\d\d)[^|]*?with ([\d,]+) tests", row)
    assert first and first.groups() == (time, count), (first and first.groups(), time, count)


def test_the_page_without_a_start_here_opens_with_its_finding():
    """niid-bench.md has no Start here: its first paragraphs already say what ran, the numbers and the
    finding, and its commands are its Reproduce block; a Start here would repeat them."""
    text = (ROOT / "docs" / "niid-bench.md").read_text()
    assert "\n## Start here" not in text
    opening = text.split("\n## ", 1)[0]
    assert "**Finding.**" in opening and "0.67" in opening and "0.100" in opening
    assert "\n## Reproduce" in text and "niid_bench_torch.py" in text.split("\n## Reproduce")[1]


# ---- anchors: the Start-here sections link into their pages by heading; `make docs` (mkdocs --strict)
# checks them only where mkdocs is installed (tests/test_docs.py skips without it), so a renamed heading
# passed every local test


def _slug(heading: str) -> str:
    """Python-Markdown's toc slug of a heading as these pages write them (code, links and bold as text)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.replace("`", "")).replace("**", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip().lower())


def _anchors(page: Path) -> set[str]:
    """Its headings' ids; a repeated slug gets `_1`, `_2`, ... as the toc extension numbers them."""
    seen: dict[str, int] = {}
    for m in re.finditer(r"^#{1,6} (.*)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.S), re.M):
        s = _slug(m.group(1).strip())
        seen[s] = seen.get(s, -1) + 1
    return {f"{s}_{i}" if i else s for s, n in seen.items() for i in range(n + 1)}


def test_every_link_to_a_heading_finds_it():
    checked, broken = 0, []
    for page in PAGES:
        text = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), page.read_text(), flags=re.S)
        for m in re.finditer(r"\]\(([^)\s#]*)#([^)\s]+)\)", text):
            target = (page.parent / m.group(1)) if m.group(1) else page
            if target.suffix != ".md" or not target.is_file():
                continue
            checked += 1
            if m.group(2) not in _anchors(target):
                broken.append(f"{page.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}: #{m.group(2)}")
    assert checked >= 100, checked
    assert not broken, broken


def test_the_slug_is_the_tocs():
    assert _slug("Stateless clients: `client_storage=auto`") == "stateless-clients-client_storageauto"
    assert _slug("The accountant (`tallysim/privacy.py`)") == "the-accountant-tallysimprivacypy"
    assert _slug("Fig. 2 with LeNet") == "fig-2-with-lenet"
