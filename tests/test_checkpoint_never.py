"""--checkpoint-every 0 means never: not even the marker between two seed chunks (run._run_chunk)."""
import pytest

from tallysim import checkpoint, run
from conftest import tiny
from test_resume import Crash, crash_after_row


def test_checkpoint_every_zero_writes_no_checkpoint_between_seed_chunks(tmp_path, monkeypatch):
    cfg = tiny("protocol.name=fedavg", "rounds=2", "seeds=3", "seed_chunk=2", "eval_every=1")
    out = tmp_path / "run"
    saved = []
    real = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda *a, **k: (saved.append(a[2]), real(*a, **k)))
    with monkeypatch.context() as m:
        crash_after_row(m, 1)              # rows aggregate over every seed: round 1's row needs chunk 2
        with pytest.raises(Crash):
            run.run(cfg, str(out), progress=False, checkpoint_every=0)
    assert saved == [] and not (out / checkpoint.FILE).exists()
