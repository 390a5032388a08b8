"""review25 (dec21k): an independent review of 2026-12-07's merges (resume28, leftovers29, hostile17,
leftovers28). Each test here failed before its fix."""
from __future__ import annotations

import pytest

from tallysim import outdir
from tallysim.config import ConfigError


def test_a_runs_out_holding_only_a_run_file_name_does_not_advise_overwrite(tmp_path):
    # hostile17 stopped advising --overwrite for a sweep's folder and a folder of one's own files, which
    # --overwrite then refused; a folder holding only names a run writes (the user's own config.json, the
    # config the run is started from) was still told "pass --overwrite to replace it", then refused as
    # "not a tallysim run directory (no .tallysim-run)"
    d = tmp_path / "exp"
    d.mkdir()
    (d / "config.json").write_text('{"rounds": 2}\n')
    with pytest.raises(ConfigError) as e:
        outdir.check(d, False)
    assert "is not empty: it holds config.json, but it is not a tallysim run directory" in str(e.value)
    assert "--overwrite does not replace" in str(e.value) and "pass --overwrite" not in str(e.value)
    with pytest.raises(ConfigError, match="not a tallysim run directory"):     # what the advice led to
        outdir.check(d, True)
    with pytest.raises(ConfigError, match="which overwrite=True does not replace"):
        outdir.check(d, False, words=outdir.PYTHON)
