"""What a new user stumbled on following README.md, docs/ (in mkdocs.yml's order), the --help texts,
`make help` and the notebooks from a scratch directory (the user-journey pass of 2026-12-06):

- a compile of a minute or two (docs/text.md's first LSTM run: 112 s on the shared CPU) showed a bar
  frozen at 00:00, or one `compiling` line in a log: it looked hung (progress_base.CompileTicker);
- `tallysim figure fig2-lenet` (as `make fig2-lenet` and figures.md name it) answered "did you mean
  fig2?": a shipped figure config run by path is named, with the command;
- docs/config.md's "What each field means" left 16 protocol-specific fields to the generated table
  (no meaning); every declared field is in the prose now, with its declared default;
- `make help`'s ARGS line left out fig2-lenet, which passes ARGS on."""
import re
import time
from pathlib import Path

import pytest

from conftest import wait_for
import test_doc_commands
from tallysim import config, figures, progress, progress_lines
from tallysim.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("progress_env_unset")     # conftest: defaults, not the shell's


# ----------------------------------------------------------------------------- a long compile is not a hang

def test_a_log_says_every_interval_that_it_is_still_compiling_and_stops_once_compiled(monkeypatch, capsys):
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.2")
    lines = progress_lines.RoundLines(5)
    said = []

    def compiling():
        said.extend(capsys.readouterr().err.splitlines())
        return len([x for x in said if "compiling  elapsed" in x]) >= 2
    try:
        assert wait_for(compiling), said
        assert said[0] == "round 0/5  compiling", said
        assert re.fullmatch(r"round 0/5  compiling  elapsed \d+s", said[1]), said
        lines.row({"acc_global": None, "acc_mean": 0.5, "bits_per_peer": 8e3})
        lines.update(1, 10)                 # compiled: the ticking stops
        time.sleep(0.2)
        capsys.readouterr()
        time.sleep(0.6)                     # three intervals: nothing more about compiling
        assert "compiling" not in capsys.readouterr().err
    finally:
        lines.close()


def test_no_compile_ticks_with_interval_0_or_after_close(monkeypatch, capsys):
    monkeypatch.setenv(progress.INTERVAL_ENV, "0")          # a line every stretch of rounds: no timer
    progress_lines.RoundLines(3).close()
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.1")
    lines = progress_lines.RoundLines(3)
    lines.close()                           # a run that stopped while compiling
    time.sleep(0.4)
    assert capsys.readouterr().err.strip().splitlines() == ["round 0/3  compiling"] * 2


def test_a_terminal_bar_s_clock_runs_while_compiling(capsys):
    with progress.forced("bars"):
        bar = progress.round_bar(3, True)
        try:
            assert wait_for(lambda: "[00:01<" in capsys.readouterr().err, timeout=5.0)
            bar.update(3, 5)
        finally:
            bar.close()


# ----------------------------------------------------------------------------- figure names

@pytest.mark.parametrize("name, stem", [("fig2-lenet", "fig2_lenet"), ("fig2_lenet", "fig2_lenet"),
                                        ("matched-bits", "matched_bits"), ("fig2_small_mlp", "fig2_small_mlp")])
def test_a_shipped_figure_config_named_without_its_path_names_the_path(name, stem):
    with pytest.raises(ConfigError) as e:
        figures.resolve(name)
    assert f"tallysim figure experiments/{stem}.json" in str(e.value), e.value
    assert "did you mean fig2?" not in str(e.value)
    assert figures.resolve(f"experiments/{stem}.json")[0] == stem      # the advice works


def test_a_name_that_is_no_figure_config_gets_no_path():
    for name, near in (("demo", None), ("quick", None), ("fig13", "did you mean")):   # run configs, no figure
        with pytest.raises(ConfigError) as e:
            figures.resolve(name)
        assert "experiments/" not in str(e.value), e.value
        assert near is None or near in str(e.value)


def test_figure_help_names_a_figure_config_by_path(capsys):
    from tallysim import cli
    with pytest.raises(SystemExit):
        cli.main(["figure", "--help"])
    out = capsys.readouterr().out
    assert "experiments/fig2_lenet.json" in out
    assert "default: results" in out and "default: figures" in out     # where a figure's files went


# ----------------------------------------------------------------------------- config.md and make help

def test_the_config_page_explains_every_declared_field_with_its_default():
    """test_doc_commands checks the prose defaults it finds and requires the shared sections; a user who
    sets `cfd.labels` or `fedct.period` reads config.md too: every field is in its prose."""
    found = test_doc_commands._prose_defaults()
    declared = config.declared()
    missing = [k for k in declared if k not in found]
    assert not missing, missing
    for key in ("cfd.labels", "fedct.period", "topk_soft.value_bits", "fedavgm.beta"):
        assert all(test_doc_commands._same_default(d, config.show_default(declared[key].default))
                   for d in found[key]), (key, found[key])


def test_make_help_s_args_line_names_every_target_that_passes_args():
    makefile = (ROOT / "Makefile").read_text()
    passing = set()
    for m in re.finditer(r"^([\w-]+):[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.M):
        if "$(ARGS)" in m.group(2) and "tallysim figure" in m.group(2):
            passing.add(m.group(1))
    assert {"fig2-lenet", "matched-bits", "robustness"} <= passing, passing
    args_line = next(x for x in makefile.splitlines() if "ARGS=...  more tallysim figure options" in x)
    named = set(re.findall(r"[\w-]+", args_line.split("options for", 1)[1].split("(")[0]))
    figs = {t for t in passing if re.fullmatch(r"fig\d+", t)}
    assert passing - figs - {"figures"} <= named, sorted(passing - figs - named)


# ----------------------------------------------------------------------------- run with a sweep's list

@pytest.mark.parametrize("item", ["protocol.name=tally,softlabel", "partition.kind=iid,dirichlet"])
def test_a_run_given_a_list_of_choices_is_told_it_is_a_sweep(item, capsys):
    """`run peers=4,8` already said "several values are a sweep"; a choice field said only "not known;
    did you mean softlabel or tally?", of two values that are both allowed."""
    from tallysim import cli
    assert cli.main(["run", item, "--print-config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tallysim: error: {item.replace('=', '=' + chr(39), 1)}' is not known: a run takes one value; " \
                  f"several values are a sweep: tallysim sweep {item} --out DIR", err


def test_a_list_with_an_unknown_choice_is_still_not_known(capsys):
    from tallysim import cli
    assert cli.main(["run", "protocol.name=tally,tallly", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "allowed: local" in err and "sweep" not in err, err


# ----------------------------------------------------------------------------- Fig. 4's numbers

def test_fig4_s_paragraph_is_its_committed_csv():
    """`tallysim figure fig4` at the shipped lr 0.05 diverged at alpha 0.05 (round 2, seed 1) and drew
    two of its three panels, while figures.md quoted all three from the runs of 2026-11-27; the figure
    is rerun at lr 0.02 (fig2's), and the paragraph's numbers are the CSV's last rows."""
    import csv
    rows = list(csv.DictReader(open(ROOT / "docs" / "figures" / "fig4.csv")))
    last = {}
    for r in rows:
        if int(r["round"]) >= int(last.get(r["partition.alpha"], {"round": 0})["round"]):
            last[r["partition.alpha"]] = r
    assert set(last) == {"0.05", "0.5", "100"}, sorted(last)             # every panel drawn
    text = re.sub(r"\s+", " ", (ROOT / "docs" / "figures.md").read_text())
    para = text.split("**Fig. 4**", 1)[1].split("![fig4]", 1)[0]
    quoted = re.search(r"\(([\d.]+) vs ([\d.]+) at alpha 0\.05, ([\d.]+) vs ([\d.]+) at 0\.5, ([\d.]+) vs ([\d.]+) at 100\)",
                       para).groups()
    want = [f"{float(last[a][k]):.3f}" for a in ("0.05", "0.5", "100") for k in ("vote_acc", "softavg_acc")]
    assert list(quoted) == want, (quoted, want)
    assert f"mean max probability {float(last['0.05']['wrong_confidence']):.2f} at alpha 0.05" in para
    assert f"agreeing ({float(last['0.05']['agreement']):.2f})" in para
    spec = config.read_file(str(ROOT / "experiments" / "fig4.json"))
    assert spec["base"]["optim"]["lr"] == 0.02
