"""Config fields are declared once (tallysim/config.py: type, Literal choices, `ints`/`floats` bounds,
default): validation refuses what the declaration does not allow, `run --help` lists every field from
it, and the documentation's config reference (docs/config.md, "What each field means") documents
exactly the declared fields with their defaults.
Nothing here loads data or compiles."""
import importlib
import re
from pathlib import Path

import pytest

from tallysim import cli, config, protocols, validation
from tallysim.config import Config, ConfigError

CONFIG_PAGE = Path(__file__).resolve().parent.parent / "docs" / "config.md"
SECTION = "## What each field means"
FREE_TEXT = {"data.name", "data.path", "probe.source", "log.tensorboard", "log.mlflow",
             "model.groups"}     # checked by name/path rules (model.groups: tallysim/model_groups.py), not a list


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
    """The tables validate() reads (validation.INT_RANGES, FLOAT_RANGES, CHOICES) against sources that
    are not derived from them: the protocol registry, the model builders, ranges the README documents;
    and every range in them is enforced by validate() just outside each finite end."""
    import math

    from tallysim import protocols
    from tallysim.sim import models
    assert validation.CHOICES["protocol.name"] == tuple(protocols.REGISTRY)
    assert set(validation.CHOICES["model.name"]) == set(models._BUILDERS)
    assert validation.INT_RANGES["peers"] == (1, config.INT_MAX)                  # README: 1..2147483647
    assert validation.FLOAT_RANGES["participation"] == (0.0, 1.0, False, True)    # README: (0, 1]
    refused = []
    for key, (lo, hi) in validation.INT_RANGES.items():
        refused += [(key, v) for v in (lo - 1, hi + 1) if abs(v) <= config.INT_MAX]
    for key, (lo, hi, lo_in, hi_in) in validation.FLOAT_RANGES.items():
        refused += [(key, lo if not lo_in else math.nextafter(lo, -math.inf))] if math.isfinite(lo) else []
        refused += [(key, hi if not hi_in else math.nextafter(hi, math.inf))] if math.isfinite(hi) else []
    assert len(refused) > len(validation.INT_RANGES)
    for key, value in refused:
        with pytest.raises(ConfigError, match=re.escape(key)):
            config.validate(config.with_values(Config(), {key: value}))


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


# ----------------------------------------------------------------------------- docs/config.md

def documented_fields() -> dict[str, str]:
    """Dotted key -> the bracketed default text, as docs/config.md's "What each field means" documents them:
    table rows "| `peers` [10] |", section paragraphs "**`data.*`**: `seed` [0] ...; `max_train`,
    `max_test` [none]", and single fields "**`fedprox.mu`** [0.01]". A protocol's own section
    (TRAITS.sections) is documented the same way in its module's docstring instead: one file."""
    text = CONFIG_PAGE.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + 1)
    body = text[start:end if end > 0 else len(text)]
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


def test_docs_document_every_field_once_with_its_default():
    documented = documented_fields()
    declared = config.declared()
    missing = sorted(set(declared) - set(documented))
    stale = sorted(set(documented) - set(declared))
    assert not missing, f"docs/config.md '{SECTION}' does not document {missing}"
    assert not stale, f"docs/config.md '{SECTION}' documents fields that do not exist: {stale}"
    wrong = {k: (documented[k], config.show_default(f.default)) for k, f in declared.items()
             if not _same_default(documented[k], f.default)}
    assert not wrong, f"docs/config.md defaults differ from config.py (docs, declared): {wrong}"


def test_docs_parser_notices_a_missing_and_a_stale_field(monkeypatch, tmp_path):
    text = CONFIG_PAGE.read_text()
    fake = tmp_path / "config.md"
    fake.write_text(text.replace("`period` [5];", "`period` [5]; `perod` [5];").replace("`width` [200]", "width"))
    monkeypatch.setitem(globals(), "CONFIG_PAGE", fake)
    found = documented_fields()
    assert "bridge.perod" in found and "model.width" not in found
    assert _same_default("0 = off", 0) and _same_default("none = local_epochs", None)
    assert not _same_default("6", 5) and not _same_default("0 = off", 1) and not _same_default("true", False)
