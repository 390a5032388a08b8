"""Small leftovers (leftovers20): abbreviated long options refused, not read as the option they start."""
import pytest

from conftest import one_line


# ----------------------------------------------------------------------------- 1. no abbreviated options

@pytest.mark.parametrize("argv, typed", [
    (["bench", "--population", "--cohort", "100"], "--cohort"),     # was --cohort-draw: "unknown draw '100'"
    (["run", "--checkpoint", "2"], "--checkpoint"),                  # was --checkpoint-every
    (["run", "--overw", "--print-config"], "--overw"),               # was --overwrite
])
def test_an_abbreviated_option_is_unknown(argv, typed, capsys):
    line = one_line(capsys, argv)
    assert f"unrecognized arguments: {typed}" in line, line


def test_the_bench_ref_parser_refuses_abbreviations(capsys):
    from tallysim.bench import ref
    with pytest.raises(SystemExit) as e:
        ref.main(["--step", "1"])
    assert e.value.code == 2 and "unrecognized arguments: --step" in capsys.readouterr().err
