"""The suite's own hygiene: the data cache is always a temporary one, whatever $TALLYSIM_DATA says."""
import os
from pathlib import Path

from tallysim.data.cache import cache_dir


def test_cache_is_the_sessions_temporary_one(tmp_path_factory):
    assert cache_dir() == Path(os.environ["TALLYSIM_DATA"])
    assert cache_dir().is_relative_to(tmp_path_factory.getbasetemp())
