"""house49: a figure group's folder is named in refusals through the flag the user gave (out_path.Given,
passed down outdir.check_sweep_dir / check / refuse_inside_run), not by rewriting the sweep's "--out" words
with a regex afterwards (figures/plans._in_results_words, gone)."""
import json

import pytest

from conftest import one_line
from tallysim import outdir
from tallysim.config import ConfigError
from conftest import TINY_FIGURE

FIGURE = TINY_FIGURE


def test_a_results_path_with_a_space_is_named_whole(tmp_path, capsys, no_compile):
    # the regex took "--out PATH" up to the first space: with --results "my res", the line said "the folder
    # .../my of group 'fedavg' (under --results ...) res/tiny/fedavg: ..." (the path cut in two)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(FIGURE))
    res = tmp_path / "my res"
    res.mkdir()
    (res / "tiny").write_text("a file where the figure's folder goes")
    line = one_line(capsys, ["figure", str(path), "--results", str(res), "--out", str(tmp_path / "fig"), "--dry-run"])
    assert line == (f"tallysim: error: figure group 'fedavg': the folder {res / 'tiny' / 'fedavg'} of group 'fedavg' "
                    f"(under --results {res}): {res / 'tiny'} is a file, not a directory"), line


@pytest.mark.parametrize("flag, another", [("--out", "choose another --out"), ("--results", "choose another --results")])
def test_check_sweep_dir_names_the_flag_it_is_given(tmp_path, flag, another):
    # a sweep's own folder says --out, as before; a caller whose user gave another flag passes its name
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / outdir.MARKER).write_text('{"written_by": "tallysim"}\n')      # a `tallysim run` folder
    with pytest.raises(ConfigError) as e:
        outdir.check_sweep_dir(tmp_path / "sw", {}, "done.json", "sweep.json", flag)
    assert str(e.value).endswith(f"per configuration); {another}"), e.value
    with pytest.raises(ConfigError, match=f"^{flag} {tmp_path / 'f' / 'x'}: {tmp_path / 'f'} is a file"):
        (tmp_path / "f").write_text("a file")
        outdir.check_sweep_dir(tmp_path / "f" / "x", {}, "done.json", "sweep.json", flag)


def test_a_folder_below_the_value_given_is_named_as_such():
    given = outdir.Given("--results", "RES", "group 'g'")
    assert given.named("RES/fig/g") == "the folder RES/fig/g of group 'g' (under --results RES)"
    assert given.another("RES/fig/g") == "another --results than RES (the runs of group 'g' go in RES/fig/g)"
    assert outdir.given("--out").named("D") == "--out D" and outdir.given("out").another("D") == "another out"
