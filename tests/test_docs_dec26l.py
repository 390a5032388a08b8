"""The "Start here" sections at the top of the user-facing pages (docs54: text.md, figures.md,
matched-bits.md; docs55: groups.md, population.md, privacy.md, robustness.md, scale.md): short, first on
the page, and every number in them one the page already states further down (or, for figures.md's
counts, the verdicts table's own count), so a summary cannot drift from the measured sections it points
to; the verdicts.md rows they cite are about the setting they name, and a row that does not hold is
called what it is where it is cited. Pure text."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NUMBER = re.compile(r"(?<![\w.#])\d[\d,]*(?:\.\d+)?")
ROW = re.compile(r"#(\d+)(?:-#(\d+))?")
# page -> the verdicts.md settings its Start here may cite (None: any, figures.md summarises them all;
# an empty tuple: the page states no paired-seed verdict, and its Start here says so)
START_PAGES = {"text.md": ("characters", "words"), "figures.md": None,
               "matched-bits.md": ("non-IID matched bits", "C = 10"), "groups.md": ("fig12 reduced",),
               "population.md": (), "privacy.md": (), "robustness.md": (), "scale.md": ()}
# the status a cited row that does not hold must be called by, in the bullet that cites it
STATUS_WORDS = {"level within noise": "level within noise", "above, not level": "above",
                "below, not level": "below"}


def _start(page: str) -> tuple[str, str]:
    text = (DOCS / page).read_text()
    head, rest = text.split("\n## Start here", 1)
    section, after = rest.split("\n## ", 1)
    return section, " ".join((head + "\n## " + after).split())


@pytest.mark.parametrize("page", START_PAGES)
def test_start_here_is_first_and_short(page):
    text = (DOCS / page).read_text()
    section, _ = _start(page)
    assert text.index("\n## Start here") < text.index("\n## ", 1) + 1, "Start here is the page's first section"
    assert len([ln for ln in section.splitlines() if ln.strip()]) <= 40, len(section.splitlines())
    assert "](verdicts.md" in section, "points to the interval verdicts"


@pytest.mark.parametrize("page", START_PAGES)
def test_every_number_in_start_here_is_stated_below(page):
    section, rest = _start(page)
    plain = ROW.sub("", re.sub(r"\]\([^)]*\)", "]", section))          # links' anchors and #N rows are not numbers
    plain = re.sub(r"`[^`]*=[^`]*`", "", plain)                         # settings (key=value) are checked as commands
    missing = [n for n in NUMBER.findall(plain) if n.rstrip(".,") not in rest]
    assert not missing, f"{page}: Start here states numbers the page does not: {missing}"


def _cited(section: str):
    """(bullet, row number) for every #N and #N-#M a Start here cites; a bullet is a list item or a
    paragraph, wrapped lines joined."""
    for bullet in re.split(r"\n(?=- |\d+\. )|\n\n", section):
        for m in ROW.finditer(bullet):
            for i in range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1):
                yield " ".join(bullet.split()), i


@pytest.mark.parametrize("page", START_PAGES)
def test_every_cited_row_is_the_pages_setting_and_called_what_it_is(page):
    """Every #N a Start here cites is a verdicts.md row of one of the page's settings; one that does not
    hold (level within noise, or a level the interval tells apart) is called so in the bullet that cites
    it. A page that states no paired-seed verdict cites none, says so, and verdicts.md lists it."""
    from tallysim.results import verdicts as v
    rows = v.rows()
    section, _ = _start(page)
    settings = START_PAGES[page]
    cited = list(_cited(section))
    if settings == ():
        assert not cited, (page, cited)
        assert "holds no" in " ".join(section.split()), f"{page}: say that verdicts.md holds no row from it"
        listed = (DOCS / "verdicts.md").read_text().split("state no paired-seed verdict")[0][-400:]
        assert f"]({page})" in listed, f"verdicts.md does not list {page} among the pages with no verdict"
        return
    assert cited, page
    for bullet, i in cited:
        assert 1 <= i <= len(rows), (page, i)
        row = rows[i - 1]
        assert settings is None or row["setting"].startswith(settings), (page, i, row["setting"])
        if row["status"] != "holds":
            assert STATUS_WORDS[row["status"]] in bullet, (page, i, row["status"], bullet[:120])


def test_the_rows_start_here_cites_say_what_it_says():
    """text.md's #N are verdicts.md rows about the setting the sentence names."""
    from tallysim.results import verdicts as v
    rows = v.rows()
    section, _ = _start("text.md")
    for line in section.splitlines():
        for m in ROW.finditer(line):
            r = rows[int(m.group(1)) - 1]
            setting = r["setting"]
            if "Characters" in line:
                assert setting.startswith("characters"), (m.group(0), setting)
            elif "transformer" in line.split("(#")[0] and "LSTM" not in line:
                assert setting.startswith("words, transformer"), (m.group(0), setting)
            elif "LSTM" in line:
                assert setting.startswith("words, LSTM"), (m.group(0), setting)


def test_figures_start_here_counts_are_the_verdicts():
    from tallysim.results import verdicts as v
    c = v.counts(v.rows())
    section, _ = _start("figures.md")
    assert f"{c['checked']} checked, {c['holds']} hold" in " ".join(section.split()), c


@pytest.mark.parametrize("page, prefix", [(DOCS / "index.md", ""), (ROOT / "README.md", "docs/")])
def test_the_front_pages_lead_to_the_start_here_sections_verdicts_and_compare(page, prefix):
    """docs/index.md had no link to the language page at all, and neither front page reached groups,
    population, privacy, robustness or scale; both now reach each Start here, the verdicts page and the
    compare command that states its rule."""
    text = page.read_text()
    for target in [f"{p}#start-here" for p in START_PAGES] + ["verdicts.md", "cli.md"]:
        assert f"]({prefix}{target})" in text, (page.name, target)
    assert "`tallysim compare" in text, page.name


def test_matched_bits_start_here_cites_rows_of_its_own_experiments():
    from tallysim.results import verdicts as v
    rows = v.rows()
    section, _ = _start("matched-bits.md")
    where = {"Label skew": ("non-IID matched bits",), "The class count": ("C = 100 matched bits", "C = 10 matched bits"),
             "The probe pool": ("C = 100",), "C = 1000 (": ("C = 1000,",)}
    seen = 0
    for bullet in section.split("\n- ")[1:]:
        for start, settings in where.items():
            if bullet.startswith(start):
                for m in ROW.finditer(bullet):
                    for i in range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1):
                        assert rows[i - 1]["setting"].startswith(settings), (i, rows[i - 1]["setting"], start)
                        assert rows[i - 1]["status"] == "holds" or "level within noise" in bullet, i
                        seen += 1
    assert seen >= 12, seen
