"""A federated-learning researcher's first hour with the docs (userjourney11): what went wrong when it
was followed as written. Each test fails on the code before its fix."""
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIG = ROOT / "docs" / "figures"


@pytest.fixture(scope="module")
def redraw():
    return runpy.run_path(str(ROOT / "experiments" / "redraw_pareto.py"))["main"]


@pytest.mark.parametrize("config, csv_name, said", [
    ("class_pool.json", "absent.csv", "cannot read the CSV"),                       # was FileNotFoundError
    ("class_pool.json", "fig4.csv", "is not a pareto figure's CSV"),                # was KeyError
    ("class_pol.json", "class_pool.csv", "does not exist; did you mean"),
    # another pareto figure's CSV, same columns: it drew class_1000's points as class_pool.png
    ("class_pool.json", "class_1000.csv", "holds groups local, softlabel_8bit_10p"),
])
def test_redraw_pareto_refuses_a_wrong_file_in_one_line(redraw, config, csv_name, said, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        redraw([str(ROOT / "experiments" / config), str(FIG / csv_name), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and said in err[-1] and err[-1].startswith("python experiments/redraw_pareto.py: error:")
    assert not any(tmp_path.iterdir())                          # nothing drawn


@pytest.mark.parametrize("key, said", [
    ("num_peers", "did you mean peers?"),                   # was: see docs/config.md or tallysim run --help
    ("n_rounds", "did you mean rounds?"),
    ("dirichlet_alpha", "did you mean partition.alpha?"),
    ("optim.learning_rate", "allowed in optim: name, lr, momentum, weight_decay, reset_each_round"),
    ("peer", "did you mean peers?"),                        # unchanged
])
def test_a_first_guess_at_a_field_name_is_answered_with_the_field(key, said):
    from tallysim import config
    with pytest.raises(config.ConfigError) as e:
        config.apply_overrides(config.Config(), [f"{key}=1"])
    assert str(e.value) == f"unknown config key '{key}'; {said}"
