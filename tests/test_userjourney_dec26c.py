"""What a federated-learning researcher stumbled on asking, from README.md and docs/ alone, whether
TallyTrain beats soft labels at matched bits on next-word prediction with LSTM and transformer peers in
one run (model groups), and how both compare to local training (userjourney15, 2026-12-07):

- tally at matched bits on words (5,716 probe windows a round, two model groups) ran its stretch of
  eval_every=2 rounds for 4+ minutes under load after `compiled in 349.0s`, with no line in the log and
  a frozen clock on a terminal: it looked hung, as a long compile did before CompileTicker. Each
  interval without a line now says `running  elapsed ...` (with the ETA once the rounds' pace is known),
  and the bar's clock keeps moving between stretches."""
import re
import time

import pytest

from conftest import wait_for
from tallysim import progress, progress_lines


pytestmark = pytest.mark.usefixtures("progress_env_unset")     # conftest: defaults, not the shell's


def test_a_log_says_a_long_stretch_of_rounds_is_still_running(monkeypatch, capsys):
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.2")
    lines = progress_lines.RoundLines(6)
    said = []

    def grab(pattern, n=1):
        def seen():
            said.extend(capsys.readouterr().err.splitlines())
            return len([x for x in said if re.fullmatch(pattern, x)]) >= n
        return seen
    try:
        lines.row({"acc_global": None, "acc_mean": 0.5, "bits_per_peer": 8e3})
        lines.update(2, 10)                 # the first stretch (compiled): said at once
        assert wait_for(grab(r"round 2/6  peers=0\.5000  MB/peer=0\.001  compiled in [\d.]+s")), said
        # no pace yet (the first stretch's time is the compile's): it says when the ETA comes
        assert wait_for(grab(r"round 2/6  running  elapsed \d+s  \(ETA after the next stretch of rounds\)")), said
        time.sleep(0.3)
        lines.update(2, 10)                 # the second stretch: a pace, so an ETA
        assert wait_for(grab(r"round 4/6  running  elapsed \d+s  ETA \d+s")), said
        assert not any("compiling" in x for x in said[1:]), said     # only the first line
        lines.update(2, 10)                 # the last: said, and no more `running` after it
        capsys.readouterr()
        time.sleep(0.6)
        assert "running" not in capsys.readouterr().err
    finally:
        lines.close()
    assert "running" not in capsys.readouterr().err      # close() stops the ticking


def test_a_running_line_does_not_hold_back_the_stretch_s_own_line(monkeypatch, capsys):
    """The heartbeat has its own clock: the accuracy line of a stretch that ends just after a `running`
    line is still said (at most one of each kind an interval)."""
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.2")
    lines = progress_lines.RoundLines(6)
    try:
        lines.row({"acc_global": None, "acc_mean": 0.5, "bits_per_peer": 8e3})
        lines.update(2, 10)
        assert wait_for(lambda: "running" in capsys.readouterr().err)
        lines.row({"acc_global": None, "acc_mean": 0.625, "bits_per_peer": 16e3})
        lines.update(2, 10)                 # just after the `running` line: its own line all the same
        assert re.search(r"round 4/6  peers=0\.6250", capsys.readouterr().err)
    finally:
        lines.close()


def test_a_terminal_bar_s_clock_runs_between_stretches(capsys):
    with progress.forced("bars"):
        bar = progress.round_bar(4, True)
        try:
            bar.update(1, 5)                # compiled; the second stretch takes a few seconds
            capsys.readouterr()
            assert wait_for(lambda: "[00:02<" in capsys.readouterr().err, timeout=6.0)
        finally:
            bar.close()


def test_the_distillation_plugin_snippet_says_where_its_names_come_from():
    """docs/write-a-protocol.md's softsharp snippet used Traits, softlabel, soft_label_loss, warmup_init,
    distill_round and Protocol without one import: a plugin written from the page had to open
    examples/softsharp.py to find them."""
    from pathlib import Path
    page = (Path(__file__).resolve().parent.parent / "docs" / "write-a-protocol.md").read_text()
    block = page.split("## A distillation-type plugin", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    imports = "\n".join(x for x in block.splitlines() if x.startswith(("from ", "import ")))
    names: dict = {}
    exec(imports, names)
    for name in ("Traits", "softlabel", "soft_label_loss", "warmup_init", "distill_round", "Protocol"):
        assert name in names, (name, imports)


# ----------------------------------------------------------------------------- model groups and the QR hang

def _grouped_init(key):
    """Context.init_state's model-groups path on a stand-in context: an LSTM group (peers 0-1) and a Dense
    group (peer 2), as model.groups=lstm:2:lstm;...:1:... builds them."""
    from types import SimpleNamespace

    import flax.linen as nn
    import optax

    from tallysim.protocols.context import Context
    from tallysim.sim.text_models import LSTM
    groups = [SimpleNamespace(model=LSTM(num_classes=20, embed=4, hidden=8, layers=1), lo=0, hi=2),
              SimpleNamespace(model=nn.Dense(4), lo=2, hi=3)]
    tx = SimpleNamespace(tx=optax.sgd(0.1))
    fake = SimpleNamespace(cohort=False, model_groups=groups, spec=SimpleNamespace(peers=3, input_shape=(6,)),
                           group_contexts=lambda: [(g, tx) for g in groups])
    return Context.init_state(fake, key, None, shared=False).params


def test_a_model_group_of_lstms_is_drawn_one_peer_at_a_time():
    """`model.groups=lstm:2:lstm,...;tf:2:transformer,...` on words hung in its init (gdb: both tf_XLAEigen
    threads in lapack_sgeqrf_ffi -> ParallelBatchMap -> BlockingCounter::Wait, CPU time constant for
    minutes): Context.init_state vmapped each group's init plainly, around peers.init_params' fix for the
    batched CPU QR. Now through peers.init_range: the same parameters to the bit, in a loop."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    key = jax.random.PRNGKey(5)
    lowered = jax.jit(_grouped_init).lower(key)
    got = lowered.compile()(key)
    from tallysim.sim.text_models import LSTM
    model = LSTM(num_classes=20, embed=4, hidden=8, layers=1)
    keys = jax.random.split(key, 3)
    want = jax.vmap(lambda k: model.init(k, jnp.zeros((1, 6), jnp.float32)))(keys[0:2])   # the old code's
    assert all(a.shape[0] == 2 and np.array_equal(a, b) for a, b in zip(jax.tree.leaves(got[0]), jax.tree.leaves(want)))
    assert jax.tree.leaves(got[1])[0].shape[0] == 1
    # each QR runs on one matrix (what hung was a batched one: num_batch_dims 1, the old vmap's)
    import re
    text = lowered.as_text()
    batch_dims = re.findall(r'lapack_sgeqrf_ffi.*?num_batch_dims = "(\d+)"', text)
    assert batch_dims and set(batch_dims) == {"0"}, batch_dims
