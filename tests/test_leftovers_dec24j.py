"""leftovers37: topk_soft with k = C sends softlabel's quantised vector (every class at cfd's levels,
nothing spread), so at topk_soft.value_bits <= 12 on shakespeare_words (C = 10,004) an untrained peer's
near-uniform distribution went out as zeros, in silence, where softlabel and cfd warned; now it warns too
(soft_rounding.py). Nothing here compiles."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from tallysim import cli, run, sweep  # noqa: F401  (imported before no_compile patches jax.jit)
from tallysim import config, soft_rounding, validation
from tallysim.protocols import topk_soft


# ----------------------------------------------------------------------------- 1. topk_soft at k = C

@pytest.mark.parametrize("bits", range(1, 17))
def test_the_uniform_zero_threshold_by_numpy_is_the_one_topk_soft_warns_by(bits):
    """An independent float32 computation of the quantiser round(p (2^b - 1)) / (2^b - 1) on a uniform
    target, as topk_soft.quantise computes it: 1/C is sent as 0 exactly from C = 2 (2^b - 1)."""
    q = np.float32(2 ** bits - 1)
    C = np.arange(2, 2 * (2 ** bits - 1) + 2)
    zero = np.round((np.float32(1) / C.astype(np.float32)) * q) / q == 0
    assert C[zero].min() == soft_rounding.cfd_uniform_zero_from(bits) == C[-2]     # the first C at 0
    assert zero[C >= C[-2]].all() and not zero[C < C[-2]].any()


@pytest.mark.parametrize("bits", [8])
def test_topk_soft_at_k_equal_c_sends_a_uniform_target_as_zeros_from_that_threshold(bits):
    Z = soft_rounding.cfd_uniform_zero_from(bits)
    for C, zeros in ((Z - 1, False), (Z, True)):
        sent = np.asarray(topk_soft.message(jnp.full((C,), 1 / C, jnp.float32), C, bits))
        assert bool(sent.sum() == 0) == zeros, (C, sent.sum())
    # k < C spreads what was not sent evenly: the mass arrives (the case the warning leaves out)
    sent = np.asarray(topk_soft.message(jnp.full((Z,), 1 / Z, jnp.float32), Z - 1, bits))
    assert sent.sum() == pytest.approx(1) and sent[-1] == pytest.approx(1)


WORDS_TOPK = ["data.name=shakespeare_words", "model.name=lstm", "partition.kind=natural", "protocol.name=topk_soft"]


def _warned(items) -> list[str]:
    cfg = config.apply_overrides(config.Config(), items)
    return [w for w in validation.warnings(config.validate(cfg)) if w.startswith("topk_soft")]


def test_topk_soft_every_class_on_words_warns_that_a_uniform_target_is_sent_as_zeros():
    (line,) = _warned(WORDS_TOPK + ["topk_soft.k=10004"])                  # value_bits defaults to 8
    assert line.startswith("topk_soft.value_bits=8 at topk_soft.k=10004 (every class, no index sent) with the "
                           "10,004 classes of shakespeare_words: each probability is sent rounded to "
                           "multiples of 1/255")
    assert "at or below 1/510 arrives as 0" in line and "only below C = 510" in line
    assert line.endswith("topk_soft.value_bits=13 or more (0..16 uniform levels) or 32 keeps it")
    (twelve,) = _warned(WORDS_TOPK + ["topk_soft.k=10004", "topk_soft.value_bits=12"])   # 8,190 <= 10,004
    assert "rounded to multiples of 1/4,095" in twelve and "only below C = 8,190" in twelve
    assert _warned(WORDS_TOPK + ["topk_soft.k=10004", "topk_soft.value_bits=13"]) == []   # 16,382 > 10,004
    assert _warned(WORDS_TOPK + ["topk_soft.k=10004", "topk_soft.value_bits=32"]) == []
    assert _warned(WORDS_TOPK + ["topk_soft.k=10003"]) == []                # the rest is spread: no zeros
    assert _warned(WORDS_TOPK) == []                                        # k = 1
    syn = ["data.name=synthetic", "protocol.name=topk_soft"]
    assert _warned(syn + ["data.num_classes=509", "topk_soft.k=509"]) == []
    (edge,) = _warned(syn + ["data.num_classes=510", "topk_soft.k=510"])
    assert edge.startswith("topk_soft.value_bits=8 at topk_soft.k=510 ")
    # topk_soft reads its own value_bits, not comm.soft_bits: no comm.soft_bits line for it
    cfg = config.apply_overrides(config.Config(), WORDS_TOPK + ["topk_soft.k=10004", "comm.soft_bits=8"])
    assert not [w for w in validation.warnings(config.validate(cfg)) if w.startswith("comm.soft_bits")]


def test_a_sweep_warns_once_naming_its_topk_soft_runs_that_send_zeros(capsys, tmp_path, no_compile):
    assert cli.main(["sweep", "--dry-run", "--out", str(tmp_path / "s"), *WORDS_TOPK, "topk_soft.k=10004",
                     "topk_soft.value_bits=16,8"]) == 0
    err = capsys.readouterr().err
    assert err.count("tallysim: warning: sweep run topk_soft.value_bits=8: topk_soft.value_bits=8 at "
                     "topk_soft.k=10004") == 1
    assert "topk_soft.value_bits=16:" not in err


# ----------------------------------------------------------------------------- 2. the lazy loader's imports

def test_the_cycle_rule_sees_a_submodule_the_lazy_loaders_import(tmp_path):
    """tallysim.results' __getattr__ (and tallysim's) import a submodule on first use of `results.b`, which
    no import statement names: a cycle through it was invisible to test_hygiene's cycle check. Planted
    here with the real loaders, in both spellings (`from tallysim import results` then `results.b.X`;
    `import tallysim` then `tallysim.results.d.Y`); a name the package's __init__ defines itself
    (`results.helper`, though a submodule helper.py exists) stays the package's."""
    from test_hygiene import PACKAGE, _cycles, _graph
    pkg = tmp_path / "tallysim"
    (pkg / "results").mkdir(parents=True)
    (pkg / "__init__.py").write_text((PACKAGE / "__init__.py").read_text())
    (pkg / "results" / "__init__.py").write_text((PACKAGE / "results" / "__init__.py").read_text()
                                                 + "\n\ndef helper():\n    pass\n")
    (pkg / "results" / "a.py").write_text("from tallysim import results\n\n\ndef f():\n    return results.b.X\n")
    (pkg / "results" / "b.py").write_text("import tallysim.results.a\nX = 1\n")
    (pkg / "results" / "c.py").write_text("import tallysim\n\n\ndef g():\n    return tallysim.results.d.Y\n")
    (pkg / "results" / "d.py").write_text("from tallysim.results import c\nY = 2\n")
    (pkg / "results" / "e.py").write_text("from .. import results as R\n\nZ = R.helper()\n")
    (pkg / "results" / "helper.py").write_text("from tallysim.results import e\n")
    graph = _graph(pkg)
    assert graph["tallysim.results.a"] == {"tallysim.results": 1, "tallysim.results.b": 5}
    assert graph["tallysim.results.c"] == {"tallysim": 1, "tallysim.results.d": 5, "tallysim.results": 5}
    assert graph["tallysim.results.e"] == {"tallysim.results": 1}
    assert sorted(_cycles(graph)) == [["tallysim.results.a", "tallysim.results.b"],
                                      ["tallysim.results.c", "tallysim.results.d"]]
