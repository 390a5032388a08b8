"""The documentation as a new user follows it, checked without running anything (seconds in all):
- every `tallysim ...` line of README.md and docs/ (code blocks and inline code) parses with the
  command's own parser; a `run` or `sweep` line's config validates (the path `run --print-config` takes:
  no JAX, no data), or is refused where the page shows the refusal; the figures and config files it
  names exist; `bench`'s comma lists name what bench knows;
- every `make` target the docs name exists, and every Makefile target is on `make help`;
- every inline `key=value` example is a field and a value it accepts; every `key` [default] is the
  declared default (config.md's prose read by its section headings);
- every pip extra and `TALLYSIM_*` variable named exists; the fedmix walk-through is examples/fedmix.py;
  a figure config path works outside the checkout, as getting-started promises."""
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tallysim import cli_parser, config, field_checks, protocols, validation
from tallysim.cli_commands import cmd_bench, cmd_figure, cmd_run, cmd_sweep, config_from_args, seed_list

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))

# `tallysim <subcommand>` as the docs write it: the installed command, the venv's, or `python -m`
COMMAND = re.compile(r"(?:(?:\.venv/bin/)?tallysim|python3? -m tallysim) (?=run\b|sweep\b|plot\b|table\b|pareto\b|"
                     r"figure\b|prepare\b|bench\b|--version\b)")
# A usage pattern or an elided command, not one to copy: `[--opt]`, `...`, `<dir>`, `figN`, `DIR`; a value
# written as a list (`data.input_shape=[8]`, population.md's first run) is a command, not a usage pattern
PLACEHOLDER = re.compile(r"(?<!=)\[|\.\.\.|<|>|`|\bfigN\b|(?:^|\s)[A-Z][A-Z_]+(?:\s|$)")


def _from_tallysim(text: str):
    """The command from its `tallysim` word on (environment assignments before it dropped), without a
    trailing `# comment`; None where the text holds no command."""
    m = COMMAND.search(text)
    if not m:
        return None
    cmd = text[m.start():]
    cmd = re.sub(r"\s+#.*$", "", cmd).strip()
    return re.sub(r"^(?:\.venv/bin/tallysim|python3? -m tallysim)", "tallysim", cmd)


def doc_commands():
    """(page:line, command, what the doc shows right after it) for every command line of the docs.
    The last is the next line of a code block when that is the command's own `tallysim: error: ...`, and
    "inline" for inline code (which may name an option of a command, as `run --resume`, rather than a
    whole command)."""
    found = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        name = page.relative_to(ROOT).as_posix()
        block = None
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.lstrip().startswith("```"):
                block = None if block is not None else line.strip()[3:]
                i += 1
                continue
            indented = block is None and re.match(r"    (?:\$ )?(?:tallysim|python3? -m tallysim) ", line)
            if block is not None or indented:                 # a fenced block, or an indented one
                start = i
                text = line
                while text.rstrip().endswith("\\") and i + 1 < len(lines):     # continued lines
                    i += 1
                    text = text.rstrip()[:-1] + " " + lines[i].strip()
                cmd = _from_tallysim(re.sub(r"^\$ ", "", text.strip()))
                first = text.strip()
                if cmd and (first.startswith(("tallysim", "python", ".venv", "$ ")) or "=" in first.split("tallysim")[0]):
                    after = lines[i + 1] if i + 1 < len(lines) else ""
                    found.append((f"{name}:{start + 1}", cmd, after if after.startswith("tallysim: error:") else ""))
            i += 1
        prose = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), "\n".join(lines), flags=re.S)
        for m in re.finditer(r"`([^`]+)`", prose):          # inline code, also where it wraps a line
            span = " ".join(m.group(1).split())
            head = span.split("tallysim")[0]
            if COMMAND.match(span) or (head and all("=" in w for w in head.split())):
                cmd = _from_tallysim(span)
                if cmd and len(cmd.split()) > 2:            # `tallysim plot` alone names the subcommand
                    found.append((f"{name}:{prose[:m.start()].count(chr(10)) + 1}", cmd, "inline"))
    return found


COMMANDS = doc_commands()
CHECKED = [c for c in COMMANDS if not PLACEHOLDER.search(c[1])]


def test_the_docs_hold_the_commands_this_file_checks():
    """The extraction finds the commands (so a change to how pages write them cannot empty the test)."""
    where = {c[0].split(":")[0] for c in CHECKED}
    assert len(CHECKED) >= 40, len(CHECKED)
    for page in ("docs/getting-started.md", "docs/sweeps.md", "docs/tracking.md", "docs/groups.md",
                 "docs/text.md", "docs/write-a-protocol.md", "docs/howto/resume.md", "docs/population.md",
                 "docs/privacy.md", "docs/robustness.md"):
        assert page in where, page
    assert any("model.groups=" in c[1] for c in CHECKED)                # the quoted, continued line of groups.md


START_HERE = ("text.md", "figures.md", "matched-bits.md", "groups.md", "population.md", "privacy.md",
              "robustness.md", "scale.md")


@pytest.mark.parametrize("page", START_HERE)
def test_the_start_here_commands_are_checked(page):
    """A Start here gives a newcomer's first commands: each `tallysim ...` of it is among the commands
    the test below parses and validates, not passed over as a usage pattern (but one eliding its options
    with `...`, population.md's `run ... --print-config`, or figures.md's `figure figN`, names a usage,
    not a command to copy). Where
    they are `make` targets (figures.md, matched-bits.md) the make-target tests check them; scale.md's are
    experiments/ scripts (tests/test_docs_dec27g.py checks those)."""
    head, rest = (ROOT / "docs" / page).read_text().split("\n## Start here", 1)
    first = head.count("\n") + 2
    last = first + rest.split("\n## ", 1)[0].count("\n")
    ours = [c for c in COMMANDS if c[0].split(":")[0] == f"docs/{page}" and first <= int(c[0].split(":")[1]) <= last]
    usage = re.compile(r"\.\.\.|\bfigN\b")                 # `run ... --print-config`, `figure figN`
    assert all(c in CHECKED or usage.search(c[1]) for c in ours), [c for c in ours if c not in CHECKED]
    section = rest.split("\n## ", 1)[0]
    assert [c for c in ours if c in CHECKED] or "`make " in section or "experiments/" in section, page


def _args(cmd: str, capsys, inline: bool):
    """The parsed arguments; None for `--help` and `--version` (they print and exit with code 0), and for
    inline code that names an option without the arguments its command requires (`plot --metric ppl`)."""
    argv = shlex.split(cmd)[1:]
    try:
        return cli_parser.parse(argv)
    except SystemExit as e:
        err = capsys.readouterr().err
        assert e.code == 0 or (inline and "arguments are required" in err), f"does not parse: {cmd}: {err}"
        return None


def _check_bench_lists(args, where: str) -> None:
    """`bench`'s comma lists name models, dtypes, implementations and convolutions it knows (argparse
    takes them as text; bench refuses a wrong one only when it runs)."""
    from tallysim.bench import throughput
    known = {"model": set(config.declared()["model.name"].choices), "dtype": {"float32", "bfloat16"},
             "impl": set(throughput.IMPLS), "conv": set(config.declared()["model.conv"].choices),
             "protocols": set(protocols.names())}
    for option, allowed in known.items():
        for value in (getattr(args, option, None) or "").split(","):
            assert not value or value in allowed, (where, f"--{option} {value}", sorted(allowed))
    for option in ("peers", "devices"):
        for value in (getattr(args, option, None) or "").split(","):
            assert not value or value.isdigit(), (where, f"--{option} {value}")


def _line(where: str) -> str:
    page, line = where.rsplit(":", 1)
    return (ROOT / page).read_text().splitlines()[int(line) - 1]


def _validate_run(args, inline: bool) -> None:
    if args.out is None and not args.print_config and not inline:   # inline: `run --resume` names an option
        raise config.ConfigError("run needs --out DIR (the directory the run writes), or --print-config")
    cfg = config_from_args(args)
    try:
        validation.check_read(config.validate(cfg))
    except config.ConfigError as e:               # an optional extra (log.mlflow): the page says to install it
        if "which is not installed; pip install" not in str(e):
            raise


def _validate_sweep(args) -> None:
    from tallysim import sweep
    base = config.load_file(args.config, smoke=args.smoke, sweep_base=True) if args.config else config.Config()
    section = config.read_file(args.config).get("sweep") if args.config else None
    sweep.command_configs(base, sweep.expand(section or {}, args.axes))      # as `tallysim sweep` checks them


@pytest.mark.parametrize("where, cmd, error", CHECKED, ids=[f"{c[0]}" for c in CHECKED])
def test_every_documented_command_parses_and_its_config_validates(where, cmd, error, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)                           # the docs' paths (experiments/...) are the checkout's
    args = _args(cmd, capsys, inline=error == "inline")
    if args is None:
        return
    if getattr(args, "plugin", None):                 # a plugin's fields need the plugin: parsing is the check
        assert all((ROOT / "examples" / f"{m}.py").is_file() for m in args.plugin), cmd
        return
    if args.fn is cmd_figure:
        from tallysim.figures import FIGURES
        for name in args.figure:
            assert name in FIGURES or name == "all" or (ROOT / name).is_file(), (where, name)
        return
    if getattr(args, "config", None):
        if args.config.startswith("my"):              # my.json: the reader's own file
            return
        assert (ROOT / args.config).is_file(), (where, args.config)
    if args.fn is cmd_run and args.resume and not args.config and not args.overrides:
        return                                        # the run directory's own config.json
    if args.fn is cmd_bench:
        _check_bench_lists(args, where)
        return
    if args.fn is cmd_run:
        check = lambda: _validate_run(args, inline=error == "inline")     # noqa: E731
    elif args.fn is cmd_sweep:
        check = lambda: _validate_sweep(args)                            # noqa: E731
    else:
        return
    if error.startswith("tallysim: error:") or (error == "inline" and "refus" in _line(where)):
        # the page shows (or names) this command's refusal
        with pytest.raises(config.ConfigError):
            check()
    else:
        check()


# ---- make targets


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*)\s*:(?!=)", text, re.M))
    targets |= set(re.search(r"^FIGS := (.*)$", text, re.M).group(1).split())
    return targets


def _doc_make_targets() -> dict[str, str]:
    """`make X` in code (inline or blocks) of README.md, docs/ and `make help` -> where."""
    out = {}
    for page in PAGES:
        block = False
        for i, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                block = not block
                continue
            for span in [line] if block else re.findall(r"`([^`]+)`", line):
                for t in re.findall(r"(?:^|[\s(])make ([a-z][a-z0-9-]*)(?![\w-])", span):   # not figN
                    out.setdefault(t, f"{page.relative_to(ROOT)}:{i}")
    return out


def test_every_make_target_the_docs_name_exists():
    targets = _makefile_targets()
    named = _doc_make_targets()
    assert {"demo", "test", "docs", "fig12", "matched-bits"} <= set(named), sorted(named)
    missing = {t: w for t, w in named.items() if t not in targets}
    assert not missing, missing


def test_every_make_target_is_in_make_help():
    """`make help` is the one list a user sees without reading the Makefile: every target but help itself
    is on it (the fig targets as `fig1 ... fig12`)."""
    help_text = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                               timeout=30).stdout
    shown = set(re.findall(r"make ([a-z][\w-]*)", help_text))
    if "make fig1 ... fig12" in help_text:
        shown |= {f"fig{i}" for i in range(1, 13)}
    shown |= set(re.findall(r"; make ([a-z][\w-]*)", help_text))
    missing = _makefile_targets() - shown - {"help"}
    assert not missing, sorted(missing)


def test_getting_started_names_every_figure_target():
    """Its Makefile table once said `make fig1 ... make fig10` and "all ten" after fig11 and fig12 came."""
    table = (ROOT / "docs" / "getting-started.md").read_text().split("## Makefile")[1]
    n = len([t for t in _makefile_targets() if re.fullmatch(r"fig\d+", t)])
    assert f"`make fig{n}`" in table and "all ten" not in table
    for t in sorted(_makefile_targets() - {"help"}):
        if not re.fullmatch(r"fig\d+", t):
            assert f"`make {t}`" in table, t


# ---- the config page's prose defaults


def _prose_defaults() -> dict[str, list[str]]:
    """`field` [default] in docs/config.md's "What each field means": the key (by its section's heading,
    **`data.*`**, or a field heading such as **`fedprox.mu`** [0.01]) -> the defaults the prose gives."""
    text = (ROOT / "docs" / "config.md").read_text().split("## What each field means", 1)[1]
    declared = config.declared()
    found: dict[str, list[str]] = {}
    sections, single = [""], None
    heading = r"\*\*Top level\*\*|\*\*`[\w]+\.[\w*]+`\*\*(?:, \*\*`[\w]+\.[\w*]+`\*\*)*"
    for piece in re.split(f"({heading})", text):
        if re.fullmatch(heading, piece):
            heads = re.findall(r"`(\w+)\.([\w*]+)`", piece)
            sections = [s for s, f in heads if f == "*"] or [""]
            single = next((f"{s}.{f}" for s, f in heads if f != "*"), None)
            continue
        m = re.match(r"\s*\[([^\]]*)\]", piece)
        if single and m:
            found.setdefault(single, []).append(m.group(1))
        single = None
        for m in re.finditer(r"((?:`[\w.]+`(?:, )?)+)\s*\[([^\]]*)\](?!\()", piece):   # not a [link](...)
            for name in re.findall(r"`([\w.]+)`", m.group(1)):
                for section in sections:
                    key = name if "." in name or not section else f"{section}.{name}"
                    found.setdefault(key if key in declared or name not in declared else name, []).append(m.group(2))
    return found


def _same_default(prose: str, code: str, derived: bool = False) -> bool:
    """Does `[prose]` give the default `code` (show_default's text)? `1,000` is 1000, `0: off` is 0, and
    a default left to the protocol or another field (none in the code) may be described in words."""
    first = prose.strip().split()[0].rstrip(",;:") if prose.strip() else ""
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", first):
        first = first.replace(",", "")
    if first == code:
        return True
    literal = re.fullmatch(r"-?[\d.]+(e[+-]?\d+)?|true|false|none", first)
    if code == "none" and (not literal or derived):
        return True
    try:
        return float(first) == float(code)
    except ValueError:
        return False


def test_the_config_pages_prose_gives_the_declared_defaults():
    """The generated tables are checked in tests/test_docs.py; the prose beside them ("What each field
    means", `field` [default]) was written by hand: each default it gives is the declared one, and each
    field it names exists."""
    declared = config.declared()
    found = _prose_defaults()
    assert len(found) >= 100, len(found)
    for key, defaults in found.items():
        assert key in declared, f"docs/config.md names {key}, which is not a config field"
        for d in defaults:
            assert _same_default(d, config.show_default(declared[key].default)), (key, d)
    shared = [k for k in declared if k.split(".")[0] in ("", "data", "partition", "model", "optim", "probe",
                                                         "vote", "distill", "comm", "faults", "privacy", "log")
              or "." not in k]
    assert not [k for k in shared if k not in found], [k for k in shared if k not in found]


def test_every_extra_the_docs_name_exists():
    """`pip install 'tallysim[text]'`, `.[tf]`, ...: each extra a page or the Makefile names is declared."""
    import tomllib
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = set()
    for text in [p.read_text() for p in PAGES] + [(ROOT / "Makefile").read_text()]:
        for group in re.findall(r"(?:tallysim|\.)\[([a-z0-9_,-]+)\]", text):
            named |= set(group.split(","))
    assert {"text", "tensorboard", "mlflow", "tf", "dev", "docs"} <= named, sorted(named)
    assert named <= extras, sorted(named - extras)


def test_every_page_gives_the_declared_default_where_it_gives_one():
    """`key` [default] anywhere in README.md or docs/ (protocols.md writes its knobs so): the declared
    default, or words for one derived from the protocol or another field. (config.md names fields
    relative to its section headings: the test above reads it.)"""
    declared = config.declared()
    wrong = []
    for page in PAGES:
        if page.name == "config.md":
            continue
        text = page.read_text()
        for m in re.finditer(r"`([\w.]+)`\s*\[([^\]]*)\](?!\()", text):
            key, given = m.groups()
            if key in declared and not _same_default(given, config.show_default(declared[key].default),
                                                      derived=key in config.DERIVED):
                wrong.append(f"{page.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}: {key} [{given}]")
    assert not wrong, wrong


def test_every_key_value_example_in_the_docs_is_a_valid_override():
    """Inline `key=value` examples (`partition.alpha=0.1`, `faults.kind=dropout`, a sweep axis
    `peers=4,5`): each key is a config field and each value one it accepts. A word standing for a number
    (`seeds=N`, `privacy.threshold=T`) is a placeholder, not checked."""
    declared = config.declared()
    checked, wrong = 0, []
    for page in PAGES:
        for i, line in enumerate(page.read_text().splitlines(), 1):
            for span in re.findall(r"`([^`]+)`", line):
                tokens = span.split()
                if not tokens or not all(re.fullmatch(r"[\w.]+=\S+", x) and x.split("=")[0] in declared
                                         for x in tokens):
                    continue
                for token in tokens:
                    key, value = token.split("=", 1)
                    spec = declared[key]
                    values = [value] if key in ("model.groups", "seed") or "," not in value else value.split(",")
                    for v in values:
                        if spec.type in (int, float) and re.fullmatch(r"[A-Za-z_]\w*", v) and \
                                v not in ("none", "true", "false", "inf", "nan"):
                            continue                    # a placeholder for a number
                        item = seed_list([f"{key}={v}"]) if key == "seed" else [f"{key}={v}"]
                        try:
                            cfg = config.apply_overrides(config.Config(), item)
                            field_checks.check_types(cfg)          # the field alone: its type,
                            field_checks.check_ranges(cfg)         # range and choices
                            checked += 1
                        except config.ConfigError as e:
                            wrong.append(f"{page.relative_to(ROOT)}:{i}: {key}={v}: {e}")
    assert checked >= 150, checked
    assert not wrong, wrong


def test_the_walked_through_plugin_is_examples_fedmix():
    """write-a-protocol.md calls its fedmix blocks "a complete one, examples/fedmix.py": every code line
    of its first two Python blocks is a line of that file (comments aside), in the file's order."""
    def code(line: str) -> str:
        return re.sub(r"\s+#.*$", "", line).rstrip()
    source = [code(x) for x in (ROOT / "examples" / "fedmix.py").read_text().splitlines() if code(x).strip()]
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "write-a-protocol.md").read_text(), re.S)[:2]
    at = 0
    for block in blocks:
        for line in [code(x) for x in block.splitlines() if code(x).strip()]:
            assert line in source[at:], line
            at = source.index(line, at) + 1


def test_a_figure_config_path_works_outside_the_checkout(tmp_path, monkeypatch, capsys):
    """getting-started: "every command works from a wheel as from the checkout"; matched-bits.md runs
    `tallysim figure experiments/matched_bits.json`, which outside a checkout once said "not found"."""
    from tallysim import figures
    monkeypatch.chdir(tmp_path)
    name, path = figures.resolve("experiments/matched_bits.json")
    assert name == "matched_bits" and path.is_file() and path.parent == figures.EXPERIMENTS
    assert "using the shipped copy" in capsys.readouterr().err
    with pytest.raises(config.ConfigError, match="not found"):
        figures.resolve("experiments/no_such_figure.json")


def test_every_environment_variable_the_docs_name_is_read():
    """`TALLYSIM_...` variables a page tells the reader to set are read by the code (the package, its
    notebooks, tests, benchmarks or the Makefile), so none is a leftover of a removed switch."""
    named = set()
    for text in [p.read_text() for p in PAGES] + [(ROOT / "Makefile").read_text()]:
        named |= set(re.findall(r"\bTALLYSIM_[A-Z_]+\b", text))
    code = "\n".join(p.read_text(errors="ignore") for d in ("tallysim", "notebooks", "tests", "benchmarks")
                     for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".ipynb", ".sh")
                     and p.name != "test_doc_commands.py")
    assert len(named) >= 8, sorted(named)
    unread = sorted(v for v in named if v not in code)
    assert not unread, unread
