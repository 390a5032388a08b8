"""build's full collection after the inputs go to the device (issue 33: the host copy of a 10^6-client
population freed at once) runs only where the inputs are large: in a long process every collection walks
every object it holds (0.2-1 s of CPU per build in a test worker), for nothing where the inputs are small."""
import gc

import pytest

from conftest import tiny
from tallysim import build


@pytest.mark.parametrize("threshold, collections", [(build.COLLECT_FROM_BYTES, 0), (0, 1)])
def test_the_build_collects_only_for_large_inputs(monkeypatch, threshold, collections):
    calls = []
    real = gc.collect
    monkeypatch.setattr(build.gc, "collect", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(build, "COLLECT_FROM_BYTES", threshold)
    b = build.build(tiny())                       # 1,600 synthetic examples: far below the threshold
    assert b.fed is not None
    assert len(calls) == collections, calls
