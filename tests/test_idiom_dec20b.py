"""Code-health helpers of the dec20b session: one "first N, then M more" list (fields.first_few)."""
from tallysim.fields import first_few


def test_first_few_lists_all_up_to_n_then_counts_the_rest():
    assert first_few([], 3) == ""
    assert first_few(["a", "b", "c"], 3) == "a, b, c"
    assert first_few(["a", "b", "c", "d"], 3) == "a, b, c and 1 more"
    assert first_few(range(10), 6) == "0, 1, 2, 3, 4, 5 and 4 more"      # items as str (run.py's peer numbers)


def test_first_few_takes_another_tail():
    assert first_few(list("abcd"), 3, ", ... ({} more)") == "a, b, c, ... (1 more)"     # results/table.py's
    assert first_few(list("abc"), 3, ", ... ({} more)") == "a, b, c"
    assert first_few(list("abcdef"), 4, ", ...") == "a, b, c, d, ..."


# ----------------------------------------------------------------------------- a plugin text model's activations
# The static memory estimate (sizing.example_bytes, what validation refuses by) counted a plugin's sequence
# model at 8 bytes a position (two float32 copies of the window's token ids), whatever its vocabulary and
# size: XLA:CPU's gradient step keeps 263 KB an example for examples/tinygru.py on characters, the estimate
# said 640 bytes. Now its logits and their gradient (8 x C a position) and what its plugin declares in
# POSITION_BYTES. Config-only: the one trace is plugin_params' eval_shape of its init.

import sys                                           # noqa: E402
from pathlib import Path                             # noqa: E402

import pytest                                        # noqa: E402

from tallysim import config, protocols, sizing, validation      # noqa: E402
from tallysim.config import ConfigError              # noqa: E402
from tallysim.config_shapes import text_activation_bytes, trained_at_once     # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHARS = ["data.name=shakespeare", "partition.kind=natural", "peers=4", "protocol.name=fedavg", "batch_size=16"]


@pytest.fixture
def plugins(tmp_path, monkeypatch, registry_restored):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("dec20b_seq", "dec20b_bad"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def _acts(*items) -> int:
    cfg = config.apply_overrides(config.Config(), list(items))
    return {what: b for what, b, _ in validation.estimate_parts(cfg)}["the activations"]


def test_a_plugin_text_models_activations_are_its_logits_and_its_declared_bytes(plugins):
    protocols.load_plugin("tinygru")             # POSITION_BYTES = {"tinygru": 2_600}
    assert protocols.position_bytes("tinygru") == 2_600
    cfg = config.apply_overrides(config.Config(), [*CHARS, "model.name=tinygru"])
    per_example = 80 * (4 * 2 * 80 + 2_600)          # 80 positions: 80 logits and their gradient, the GRU's
    assert _acts(*CHARS, "model.name=tinygru") == trained_at_once(cfg) * 16 * per_example
    assert per_example > 400 * 8 * 80                # was 8 bytes a position: 640 an example
    # a model its plugin declares nothing for: the logits and their gradient alone (a lower bound)
    (plugins / "dec20b_seq.py").write_text("MODELS = {'dec20b_seq': 'f'}\n\ndef f(k):\n    return None\n")
    protocols.load_plugin("dec20b_seq")
    model = config.apply_overrides(config.Config(), ["model.name=dec20b_seq"]).model
    assert sizing.example_bytes(model, 20, 10_004, 20) == 20 * 4 * 2 * 10_004


def test_the_built_in_text_estimate_is_unchanged():
    for name, hidden, value in (("lstm", 64, 504_320), ("transformer", 32, 80 * (640 + 4 * (4 * 32 + 2 * (17 * 32 + 2 * 4 * 80))))):
        model = config.apply_overrides(config.Config(), [f"model.name={name}", f"model.hidden={hidden}"]).model
        assert sizing.example_bytes(model, 80, 80, 80) == text_activation_bytes(name, model, 80, 80) == value


@pytest.mark.parametrize("declared, said", [
    ("[2600]", "POSITION_BYTES is list"), ("{'other': 10}", "POSITION_BYTES names 'other', which its MODELS does not list"),
    ("{'dec20b_bad': -1}", "POSITION_BYTES gives 'dec20b_bad' -1"), ("{'dec20b_bad': True}", "gives 'dec20b_bad' True"),
    ("{'dec20b_bad': 2.5}", "gives 'dec20b_bad' 2.5")])
def test_a_wrong_position_bytes_is_one_line_and_registers_nothing(plugins, declared, said):
    (plugins / "dec20b_bad.py").write_text(f"MODELS = {{'dec20b_bad': 'f'}}\nPOSITION_BYTES = {declared}\n\n"
                                           "def f(k):\n    return None\n")
    with pytest.raises(ConfigError, match=r"^plugin 'dec20b_bad': .*; allowed: POSITION_BYTES = .*a whole number "
                                          r">= 0 for each of the models this module's MODELS lists \(dec20b_bad\)") as e:
        protocols.load_plugin("dec20b_bad")
    assert said in str(e.value)
    assert protocols.model_target("dec20b_bad") is None and "dec20b_bad" not in protocols._POSITION_BYTES


@pytest.mark.slow
@pytest.mark.parametrize("C, pos", [(80, 80), (10_004, 20)])
def test_tinygrus_estimate_is_within_0_9_to_1_of_xlas_compiled_step(plugins, C, pos):
    """XLA:CPU's temporaries of tinygru's cross-entropy gradient step per example (batch 24 minus batch 8,
    over 16, as tests/test_text_estimate_dec19d.py measures the built-ins): 263,296 and 1,653,776 bytes
    (2026-12-07), the estimate 0.98 and 0.999 of them. Slow (2 compiles, 7-15 s on the shared CPU); the fast
    twin: test_a_plugin_text_models_activations_are_its_logits_and_its_declared_bytes."""
    import jax
    import jax.numpy as jnp
    import optax
    protocols.load_plugin("tinygru")
    from tinygru import tiny_gru
    model = tiny_gru(C)

    def temp(batch):
        x = jnp.zeros((batch, pos), jnp.float32)
        params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x[:1])

        def loss(p, x, y):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()
        step = jax.jit(jax.grad(loss)).lower(params, x, jnp.zeros((batch, pos), jnp.int32)).compile()
        return step.memory_analysis().temp_size_in_bytes
    measured = (temp(24) - temp(8)) / 16
    est = text_activation_bytes("tinygru", None, pos, C)
    assert 0.9 * measured <= est <= measured, (est, measured)
