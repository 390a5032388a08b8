"""Config fields are declared once (tallysim/config.py: type, Literal choices, `ints`/`floats` bounds,
default): validation refuses what the declaration does not allow, `run --help` lists every field from
it, and README.md's "Config fields" documents exactly the declared fields with their defaults.
Nothing here loads data or compiles."""
import importlib
import re
from pathlib import Path

import pytest

from tallysim import cli, config, protocols, validation
from tallysim.config import Config, ConfigError

README = Path(__file__).resolve().parent.parent / "README.md"
FREE_TEXT = {"data.name", "data.path", "probe.source"}     # checked by name/path rules, not a list


def test_every_field_declares_its_allowed_values():
    for key, f in config.declared().items():
        if f.type in (int, float) and not f.choices:
            assert f.range is not None, f"{key}: declare bounds with ints(...) or floats(...)"
        if f.type is str:
            assert f.choices or key in FREE_TEXT, f"{key}: a str field needs Literal[...] choices"
        if f.default is not None and f.choices:
            assert f.default in f.choices, key
        if f.default is not None and f.range:
            lo, hi = f.range[:2]
            assert lo <= f.default <= hi, key
    assert config.PROTOCOLS == config.choices("protocol.name") and "tally" in config.PROTOCOLS


def _outside(f):
    """A value just outside a field's declared range (below it)."""
    if f.type is int:
        return f.range[0] - 1
    lo, _, lo_in, _ = f.range
    return lo - 0.5 if lo_in else lo


@pytest.mark.parametrize("key", sorted(k for k, f in config.declared().items() if f.range or f.choices))
def test_validation_refuses_what_the_declaration_does_not_allow(key):
    f = config.declared()[key]
    bad = "no_such_value" if f.type is str else 12345 if f.choices else _outside(f)
    with pytest.raises(ConfigError, match=re.escape(key)):
        config.validate(config.with_values(Config(), {key: bad}))
    if f.range and f.type is int and f.range[1] < config.INT_MAX:
        with pytest.raises(ConfigError, match=re.escape(key)):
            config.validate(config.with_values(Config(), {key: f.range[1] + 1}))
    if f.choices:
        for value in f.choices:          # every declared choice passes the choice check
            try:
                config.validate(config.with_values(Config(), {key: value}))
            except ConfigError as e:     # a cross-field rule (e.g. under_trained needs faults.examples)
                assert "is not known" not in str(e), e


def test_validation_views_are_the_declarations():
    d = config.declared()
    assert validation.CHOICES == {k: f.choices for k, f in d.items() if f.choices}
    assert set(validation.INT_RANGES) | set(validation.FLOAT_RANGES) == {k for k, f in d.items() if f.range}


def test_run_help_lists_every_field_with_default_and_allowed_values(capsys):
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["run", "--help"])
    text = capsys.readouterr().out
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ") and line.split()}
    for key, f in config.declared().items():
        assert key in lines, f"run --help does not list {key}"
        line = lines[key]
        assert line.split()[1] == config.show_default(f.default), line
        assert line.rstrip().endswith(config.show_allowed(f)), line
    assert "1..2147483647" in lines["peers"] and "mlp|lenet|cnn|resnet8" in lines["model.name"]
    assert "(derived)" in lines["init.shared"] and "(0, 1]" in lines["participation"]


# ----------------------------------------------------------------------------- README

def readme_fields() -> dict[str, str]:
    """Dotted key -> the bracketed default text, as README.md's "Config fields" documents them:
    table rows "| `peers` [10] |", section paragraphs "**`data.*`**: `seed` [0] ...; `max_train`,
    `max_test` [none]", and single fields "**`fedprox.mu`** [0.01]". A protocol's own section
    (TRAITS.sections) is documented the same way in its module's docstring instead: one file."""
    text = README.read_text()
    start = text.index("## Config fields")
    body = text[start:text.index("\n## ", start + 1)]
    for name in protocols.names():
        if protocols.traits(name).sections:
            body += "\n" + (importlib.import_module(protocols.factory(name).__module__).__doc__ or "")
    return _fields_in(body)


def _fields_in(body: str) -> dict[str, str]:
    out, section = {}, ""
    token = re.compile(r"\*\*`([\w.]+)\.\*`\*\*"                       # a section: **`data.*`**
                       r"|\*\*`([\w.]+)`\*\*\s+\[([^\]]*)\]"             # one field: **`fedprox.mu`** [0.01]
                       r"|((?:`\w+`,\s+)*`\w+`)\s+\[([^\]]*)\]"            # fields: `max_train`, `max_test` [none]
                       r"|\n\*\*Top level\*\*")
    for m in token.finditer(body):
        if m.group(1):
            section = m.group(1) + "."
        elif m.group(2):
            out[m.group(2)] = m.group(3)
        elif m.group(4):
            for name in re.findall(r"`(\w+)`", m.group(4)):
                out[section + name] = m.group(5)
        else:
            section = ""
    return out


def _same_default(text: str, default) -> bool:
    text = text.split(" = ")[0].strip()        # "[none = local_epochs]", "[0 = off]": value = meaning
    if default is None:
        return text.startswith("none")
    if isinstance(default, bool):
        return text == str(default).lower()
    if isinstance(default, tuple):
        return text == "x".join(map(str, default))
    if isinstance(default, (int, float)):
        try:
            return float(text) == default
        except ValueError:
            return False
    return text == default


def test_readme_documents_every_field_once_with_its_default():
    documented = readme_fields()
    declared = config.declared()
    missing = sorted(set(declared) - set(documented))
    stale = sorted(set(documented) - set(declared))
    assert not missing, f"README.md 'Config fields' does not document {missing}"
    assert not stale, f"README.md 'Config fields' documents fields that do not exist: {stale}"
    wrong = {k: (documented[k], config.show_default(f.default)) for k, f in declared.items()
             if not _same_default(documented[k], f.default)}
    assert not wrong, f"README.md defaults differ from config.py (README, declared): {wrong}"


def test_readme_parser_notices_a_missing_and_a_stale_field(monkeypatch, tmp_path):
    text = README.read_text()
    fake = tmp_path / "README.md"
    fake.write_text(text.replace("`period` [5];", "`period` [5]; `perod` [5];").replace("`width` [200]", "width"))
    monkeypatch.setitem(globals(), "README", fake)
    found = readme_fields()
    assert "bridge.perod" in found and "model.width" not in found
    assert _same_default("0 = off", 0) and _same_default("none = local_epochs", None)
    assert not _same_default("6", 5) and not _same_default("0 = off", 1) and not _same_default("true", False)
