"""The documentation site (mkdocs.yml, docs/): its config reference is generated from the field
declarations (tallysim/config_reference.py, through mkdocs_hooks.py), and every page is in the nav.
CI builds the site itself with `make docs` (mkdocs build --strict)."""
import importlib.util
import re
import types
from pathlib import Path

import pytest

from tallysim import config, config_reference, protocols

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _table_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `([\w.]+)` \| `([^`]*)` \| (.*?) \| (.*) \| ([\w, ]+) \|$", line)
        if m:
            rows[m.group(1)] = [m.group(2), m.group(3), m.group(4), m.group(5)]
    return rows


def test_reference_lists_every_declared_field_with_its_default_and_allowed_values():
    rows = _table_rows(config_reference.markdown())
    declared = config.declared()
    assert list(rows) == list(declared)                      # every field, once, in declaration order
    for key, spec in declared.items():
        default, allowed, _, read_by = rows[key]
        assert default.split(" (derived)")[0] == config.show_default(spec.default), key
        assert allowed.replace("\\|", "|") == config.show_allowed(spec), key
        readers = [n for n in protocols.names() if protocols.reads(n, key)]
        assert read_by == ("every protocol" if len(readers) == len(protocols.names()) else ", ".join(readers)), key
    assert rows["peers"][3] == "every protocol"
    assert rows["distill.temperature"][3] == "softlabel, cfd, selective_fd, topk_soft"   # not tally (issue: a
    assert rows["fedprox.mu"][3] == "fedprox"                                         # sweep that did nothing)
    assert rows["fedavg.aggregate"][2] == ("mean: shard-size weighted; median, trimmed, krum, multikrum, cclip "
                                           "unweighted; geomed shard-size weighted")   # its comment
    assert rows["partition.min_size"][2] == "dirichlet: redraw until every peer holds this many"
    assert "(derived)" in rows["init.shared"][0]
    assert "&lt;run directory's name&gt;" in rows["log.tensorboard"][2]       # no stray HTML


def test_the_reference_follows_a_new_declaration(monkeypatch):
    before = config_reference.markdown()
    monkeypatch.setattr(config_reference, "_comments", lambda cls: {})
    assert "| `peers` | `10` | 1..2147483647 |  | every protocol |" in config_reference.markdown() != before


def test_the_hook_fills_the_config_page_and_leaves_others_alone():
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "mkdocs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = types.SimpleNamespace(file=types.SimpleNamespace(src_uri="config.md"))
    text = (DOCS / "config.md").read_text()
    assert config_reference.MARKER in text
    filled = hooks.on_page_markdown(text, page, None, None)
    assert config_reference.MARKER not in filled and "| `bridge.period` | `5` |" in filled
    other = types.SimpleNamespace(file=types.SimpleNamespace(src_uri="index.md"))
    assert hooks.on_page_markdown(config_reference.MARKER, other, None, None) == config_reference.MARKER
    with pytest.raises(ValueError, match="lost its"):
        hooks.on_page_markdown("no marker", page, None, None)


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = set(re.findall(r":\s+([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if not p.match("figures/*.md")}
    assert nav == pages, (sorted(pages - nav), sorted(nav - pages))


def test_pages_the_issue_asks_for_say_what_they_are_about():
    concepts = (DOCS / "concepts.md").read_text()
    assert all(h in concepts for h in ("## Peers as one pytree", "## Lanes", "## The bits ledger"))
    protocols = (DOCS / "protocols.md").read_text()
    for name in config.PROTOCOLS:                          # every protocol with its bit cost
        assert f"### `{name}`" in protocols, name
    assert "--tensorboard DIR" in (DOCS / "tracking.md").read_text()


def test_the_demo_table_is_the_shipped_figure_s_data():
    """docs/demo.png is drawn by `tallysim plot` from the demo's runs, which writes docs/demo.csv beside it
    (copied with it); the numbers the docs quote must be that CSV's final rows, so the picture, its data
    and the table cannot drift apart (issue 27)."""
    import csv
    rows = list(csv.DictReader(open(DOCS / "demo.csv")))
    last = {}
    for r in rows:
        last[r["protocol"]] = r                                      # rows are in round order per run
    table = (DOCS / "getting-started.md").read_text()
    for proto in ("tally", "softlabel", "fedavg"):
        m = re.search(rf"\| `{proto}` \| ([0-9.]+) \(([^;)]*)[^|]*\| ([0-9.]+) \|", table)
        assert m, proto
        r = last[proto]
        assert float(m.group(1)) == round(float(r["value"]), 3), (proto, m.group(1), r["value"])
        which = {"acc_global": "server model", "acc_mean": "peer mean"}[r["metric"]]
        assert m.group(2).startswith(which), (proto, m.group(2), which)
        mb = float(r["bits_per_peer"]) / 8e6
        assert float(m.group(3)) == float(f"{mb:.2g}") or abs(float(m.group(3)) - mb) < 0.05 * mb, (proto, mb)


def _md_links(text: str) -> list[str]:
    """Relative link targets of a markdown page (not http(s), mailto or a bare #anchor)."""
    links = re.findall(r"\]\(([^)\s]+)\)", re.sub(r"```.*?```", "", text, flags=re.S))
    return [t for t in links if not re.match(r"[a-z]+:|#", t)]


def test_no_page_links_outside_the_site_and_pages_open_from_disk():
    """The built site holds docs/ only: a link such as ../examples/fedmix.py is a dead link in site/
    (issue 30). And site/index.html opened from disk must reach pages, not directory listings."""
    for page in DOCS.rglob("*.md"):
        for target in _md_links(page.read_text()):
            dest = (page.parent / target.split("#")[0]).resolve()
            assert DOCS.resolve() in dest.parents, (page.name, target)
            assert dest.exists(), (page.name, target)
    assert re.search(r"^use_directory_urls:\s*false\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    recipe = re.search(r"^docs:.*\n\t(.*)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert "--strict" in recipe and "--quiet" not in recipe and "-q " not in recipe   # --quiet hid warnings


def test_the_site_builds_strict_and_its_links_are_files(tmp_path):
    """`mkdocs build --strict` (no --quiet) passes, and every internal link of index.html names a file
    of the site (so it works through file://). Needs the docs extra; skipped without it."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    import os
    import subprocess
    import sys
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "WARNING" not in p.stderr, p.stderr[-2000:]
    site = tmp_path / "site"
    hrefs = re.findall(r'href="([^"#]+)', (site / "index.html").read_text())
    internal = [h for h in hrefs if not re.match(r"[a-z]+:|//", h)]
    assert any(h.endswith("api.html") for h in internal), internal
    for h in internal:
        assert (site / h).is_file(), h                  # not a directory: file:// shows it as a listing


def _resolve(dotted: str):
    """The object a dotted name names: its longest importable prefix, then attributes (an AttributeError
    or ImportError when it names nothing)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ImportError:
            if i == 1:
                raise
    for attr in parts[i:]:
        obj = getattr(obj, attr)
    return obj


def test_the_api_page_documents_the_public_api():
    """docs/api.md is about what `import tallysim` offers (tallysim.run -> Results, drive, load_plugin,
    Config.replace), not internals such as tallysim.run.run returning a dict (issue 30); every
    `::: name` it renders exists."""
    import importlib
    import tallysim
    text = (DOCS / "api.md").read_text()
    refs = re.findall(r"^::: ([\w.]+)", text, re.M)
    for name in ("tallysim.api.run", "tallysim.results.runs.Results", "tallysim.api.drive",
                 "tallysim.api.load_plugin", "tallysim.schema.Config"):
        assert name in refs, name
    assert "tallysim.run.run" not in refs and "members: [replace]" in text
    for ref in refs:
        _resolve(ref)
    for name in tallysim.__all__:                 # the table names each public name
        assert f"`tallysim.{name}" in text or name in ("__version__", "Driver"), name
    assert tallysim.api.drive.__doc__ and tallysim.schema.Config.replace.__doc__


def test_cli_usage_lines_name_every_option_of_every_subcommand():
    """docs/cli.md's usage block lacked --tensorboard, --plugin, --quiet, --metric, --title (issue 30):
    every option argparse knows for a subcommand must appear on that subcommand's usage lines."""
    import argparse
    from tallysim import cli
    block = re.search(r"```\n(tallysim run.*?)```", (DOCS / "cli.md").read_text(), re.S).group(1)
    usage: dict[str, str] = {}
    cmd = None
    for line in block.splitlines():
        m = re.match(r"tallysim (\w+)", line)
        if m:
            cmd = m.group(1)
        if cmd:
            usage[cmd] = usage.get(cmd, "") + " " + line
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) <= set(usage), sorted(set(sub.choices) - set(usage))
    for name, p in sub.choices.items():
        for action in p._actions:
            longs = [o for o in action.option_strings if o.startswith("--") and o != "--help"]
            if longs:
                assert any(re.search(rf"{re.escape(o)}\b", usage[name]) for o in longs), (name, longs)


def test_stale_docs_of_issue_30_are_current():
    from tallysim import cli
    sub = next(a for a in cli.parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    prepare = next(a.help for a in sub._choices_actions if a.dest == "prepare")
    assert "Debian" in prepare and "--path" in prepare          # TensorFlow only for a tfds download
    cli_md = (DOCS / "cli.md").read_text()
    assert "~/.cache/tallysim/xla" in cli_md and "TALLYSIM_COMPILE_CACHE=0" in cli_md   # the compile cache
    assert "standard deviation over the seeds" in cli_md                              # the summary's +-
    for page in ("figures.md", "getting-started.md"):
        fig10 = [x for x in (DOCS / page).read_text().splitlines() if x.startswith("| `make fig10`")]
        assert fig10 and all("not run" not in x and "560 s" in x for x in fig10), (page, fig10)


def test_quick_start_compares_like_with_like_on_the_quick_config():
    """The hand-run quick start compared a LeNet run with an MLP run (issue 30): its runs must differ
    in protocol.name and --out only, and experiments/quick.json must validate for each protocol."""
    text = (DOCS / "getting-started.md").read_text()
    block = re.search(r"## Quick start\n\n```bash\n(.*?)```", text, re.S).group(1)
    runs = [line.split() for line in block.splitlines() if re.search(r"tallysim run\b", line)]
    assert len(runs) >= 2
    rest = [sorted(w for w in r if not w.startswith(("protocol.name=", "runs/"))) for r in runs]
    assert all(r == rest[0] for r in rest), rest
    assert "experiments/quick.json" in rest[0]
    for proto in ("tally", "softlabel", "fedavg"):
        cfg = config.validate(config.apply_overrides(config.load_file(str(ROOT / "experiments" / "quick.json")),
                                                     [f"protocol.name={proto}"]))
        assert cfg.rounds == 10 and cfg.data.max_train <= 6000 and cfg.model.name == "mlp"


def test_the_state_shown_on_the_concepts_page_is_the_state():
    """docs/concepts.md draws sim/peers.py's State: the same fields in the same order."""
    from tallysim.sim import peers
    block = re.search(r"class State\(NamedTuple\):\n(.*?)```", (DOCS / "concepts.md").read_text(), re.S).group(1)
    assert re.findall(r"^\s+(\w+):", block, re.M) == list(peers.State._fields)


def test_every_environment_variable_tallysim_reads_is_in_the_cli_table():
    """docs/cli.md's "Environment variables" table is the one list; a TALLYSIM_* the code reads and the
    table leaves out (TALLYSIM_PROGRESS_INTERVAL and TALLYSIM_PALLAS_INTERPRET were only in prose) fails."""
    read = set()
    for path in (ROOT / "tallysim").rglob("*.py"):
        read |= set(re.findall(r"\bTALLYSIM_[A-Z][A-Z_]*[A-Z]\b", path.read_text()))
    table = (DOCS / "cli.md").read_text().split("### Environment variables")[1].split("\n### ")[0]
    listed = set(re.findall(r"`(TALLYSIM_[A-Z_]+)", table))
    assert read and not read - listed, sorted(read - listed)


def _layout_block() -> str:
    text = (DOCS / "layout.md").read_text()
    return text.split("## Layout", 1)[1].split("```", 2)[1]


def _unnamed_modules(block: str, package: Path) -> list:
    """The modules of `package` that the layout block names neither by path (sim/vote.py) nor by file
    name, the folders it does not name (tallysim/sim/), and the files it names that are not there. A
    protocol module of the registry is covered by "one module per protocol"."""
    registered = {f"{t.split(':')[0]}.py" for t in protocols.REGISTRY.values()}
    out = []
    for p in sorted(package.rglob("*.py")):
        rel = p.relative_to(package).as_posix()
        if p.name == "__init__.py":
            if p.parent != package and f"tallysim/{p.parent.relative_to(package).as_posix()}/" not in block:
                out.append(f"tallysim/{rel} (its folder)")
            continue
        if p.parent.name == "protocols" and p.name in registered:
            continue
        if not re.search(r"(?<![\w/])(tallysim/)?" + re.escape(rel) + r"\b", block) \
                and not re.search(r"(?<![\w.])" + re.escape(p.name) + r"\b", block):
            out.append(f"tallysim/{rel}")
    for name in sorted(set(re.findall(r"(?<![\w.])([\w/]+\.py)\b", block))):
        if not any(c.is_file() for c in (package.parent / name, package / name, package.parent / "examples" / name)) \
                and not list(package.rglob(Path(name).name)):
            out.append(f"{name} (named, but no such file)")
    return out


def test_the_layout_page_names_every_module():
    """docs/layout.md's Layout block is where a new contributor looks a module up: every module of the
    package is on it (it missed 34 of them on 2026-12-05: tracking.py, outdir.py, checkpoint.py, sim/robust.py...)."""
    missing = _unnamed_modules(_layout_block(), ROOT / "tallysim")
    assert not missing, f"name these in docs/layout.md's Layout, with what each does: {missing}"


def test_the_layout_check_finds_an_unnamed_module_and_a_stale_name(tmp_path):
    (tmp_path / "sim").mkdir()
    for f in ("sim/__init__.py", "sim/vote.py", "sim/newer.py", "run.py", "__init__.py"):
        (tmp_path / f).write_text("")
    block = "tallysim/sim/  blocks\n  sim/vote.py  the vote\ntallysim/run.py  runs\ntallysim/gone.py  was here\n"
    assert _unnamed_modules(block, tmp_path) == ["tallysim/sim/newer.py", "tallysim/gone.py (named, but no such file)"]


def _documented_calls():
    """(page, `tallysim.x.f(...)` text) of every call of the API the pages write out."""
    for page in sorted(DOCS.rglob("*.md")):
        for call in re.findall(r"`(tallysim\.[\w.]+\([^`]*\))`", page.read_text()):
            yield page.name, call


def _call_mismatch(call: str):
    """None when the call's arguments bind to the function's signature (as many positional arguments,
    keywords it has); else what is wrong. `...` stands for arguments left out."""
    import ast
    import inspect
    node = ast.parse(call.replace(", ...)", ")").replace("(...)", "()"), mode="eval").body
    path = ast.unparse(node.func).split(".")
    sig = inspect.signature(_resolve(".".join(path)))
    owner = _resolve(".".join(path[:-1]))
    args = list(node.args)
    if inspect.isclass(owner) and not isinstance(inspect.getattr_static(owner, path[-1]), (staticmethod, classmethod)):
        args.insert(0, "self")          # `tallysim.Results.plot()`: a method, written as its class's
    try:
        (sig.bind_partial if "..." in call else sig.bind)(*args, **{k.arg: k.value for k in node.keywords})
    except TypeError as e:
        return f"{call}: {e} (the code: {path[-1]}{sig})"
    return None


def test_every_api_call_the_pages_write_fits_its_signature():
    calls = list(_documented_calls())
    assert len(calls) > 15, calls
    wrong = [f"docs/{page}: {m}" for page, call in calls if (m := _call_mismatch(call))]
    assert not wrong, "\n".join(wrong)
    assert _call_mismatch("tallysim.drive(cfg, seeds=3)") and _call_mismatch("tallysim.read_rows(a, b, c)")
    assert _call_mismatch("tallysim.Results.plot()") is None and _call_mismatch("tallysim.Results.read(d)") is None
    assert _call_mismatch("tallysim.Results.plot(a, b, c, d, e)")
