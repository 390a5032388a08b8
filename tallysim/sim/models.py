"""Flax (linen) classifiers by name: mlp, lenet, cnn, resnet8.

Shape letters (glossary: tallysim/sim/__init__.py): B batch, C classes (the logits' width),
D features of a flattened example, h, w, ch an image's height, width and channels (spelled in lower
case: C is classes and W a model's parameters); P peers only where a caller vmaps over models.

Every module maps float32 `x_Bxhxwxch` (already normalised) to float32 `logits_BxC`. `cfg.dtype` is the
compute dtype only: parameters are always float32 (`param_dtype`) so averaging, sparse deltas and the
optimiser state stay exact, and logits are cast back to float32 so losses and votes are computed in full
precision. No module keeps mutable collections (no BatchNorm): the params pytree is the whole model
state, which is what lets peers be initialised with `jax.vmap(model.init)` and stacked.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from tallysim.config import MODELS, ConfigError, ModelConfig, choices, model_target, one_line
from tallysim.sim.conv import conv_fn
from tallysim.sim.initializers import kernel_init   # every Dense and Conv kernel below

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
PARAM_DTYPE = jnp.float32


def max_pool_2x2(x_Bxhxwxch: jax.Array) -> jax.Array:
    """2x2 max-pool, stride 2, floor semantics (odd h/w: the last row/column is dropped, as 'VALID').

    Written as reshape + max rather than `nn.max_pool`: the latter's gradient is a select-and-scatter
    that benchmarks/README.md measured at ~20% of a vmapped CNN step; a reshape-max differentiates into
    cheap elementwise compare/select ops.
    """
    B, h, w, ch = x_Bxhxwxch.shape
    h2, w2 = h // 2, w // 2
    x = x_Bxhxwxch[:, : 2 * h2, : 2 * w2, :]  # crop so odd sizes pool like floor (7x7 -> 3x3)
    return x.reshape(B, h2, 2, w2, 2, ch).max(axis=(2, 4))


def _groups(channels: int, max_groups: int = 8) -> int:
    """Largest group count <= max_groups dividing `channels` (GroupNorm requires divisibility)."""
    for g in range(min(max_groups, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1


class MLP(nn.Module):
    num_classes: int
    width: int = 200
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_Bxhxwxch: jax.Array) -> jax.Array:
        x_BxD = x_Bxhxwxch.reshape(x_Bxhxwxch.shape[0], -1).astype(self.dtype)
        dense = lambda n: nn.Dense(n, dtype=self.dtype, param_dtype=PARAM_DTYPE, kernel_init=kernel_init)
        h = nn.relu(dense(self.width)(x_BxD))
        h = nn.relu(dense(self.width)(h))
        return dense(self.num_classes)(h).astype(jnp.float32)


class LeNet(nn.Module):
    """LeNet-5: the first conv is SAME (so 28x28 keeps its size), the second VALID as in the original,
    giving the classic 16x5x5 = 400 features on 28x28 inputs (32x32 -> 6x6x16)."""

    num_classes: int
    dtype: Any = jnp.float32
    conv: Callable = jax.lax.conv_general_dilated      # or conv.im2col_conv (same params)

    @nn.compact
    def __call__(self, x_Bxhxwxch: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=PARAM_DTYPE, kernel_init=kernel_init)
        ckw = dict(kw, conv_general_dilated=self.conv)
        x = x_Bxhxwxch.astype(self.dtype)
        x = max_pool_2x2(nn.relu(nn.Conv(6, (5, 5), padding="SAME", **ckw)(x)))
        x = max_pool_2x2(nn.relu(nn.Conv(16, (5, 5), padding="VALID", **ckw)(x)))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(120, **kw)(x))
        x = nn.relu(nn.Dense(84, **kw)(x))
        return nn.Dense(self.num_classes, **kw)(x).astype(jnp.float32)


class CNN(nn.Module):
    """The FedAvg paper's CNN (McMahan et al. 2017): two SAME 5x5 convs (32, 64) with 2x2 pools,
    dense 512, dense C. 28x28x1 -> 7x7x64 = 3136 features."""

    num_classes: int
    dtype: Any = jnp.float32
    conv: Callable = jax.lax.conv_general_dilated      # or conv.im2col_conv (same params)

    @nn.compact
    def __call__(self, x_Bxhxwxch: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=PARAM_DTYPE, kernel_init=kernel_init)
        ckw = dict(kw, conv_general_dilated=self.conv)
        x = x_Bxhxwxch.astype(self.dtype)
        x = max_pool_2x2(nn.relu(nn.Conv(32, (5, 5), padding="SAME", **ckw)(x)))
        x = max_pool_2x2(nn.relu(nn.Conv(64, (5, 5), padding="SAME", **ckw)(x)))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(512, **kw)(x))
        return nn.Dense(self.num_classes, **kw)(x).astype(jnp.float32)


class BasicBlock(nn.Module):
    """Two 3x3 convs with GroupNorm; projection shortcut (1x1 conv + GroupNorm) when shape changes."""

    channels: int
    stride: int = 1
    dtype: Any = jnp.float32
    conv: Callable = jax.lax.conv_general_dilated

    @nn.compact
    def __call__(self, x_Bxhxwxch: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=PARAM_DTYPE)
        # Convs feed a norm, so their bias would be cancelled by the mean subtraction: drop it.
        conv = lambda k, s: nn.Conv(self.channels, (k, k), strides=(s, s), padding="SAME", use_bias=False,
                                    conv_general_dilated=self.conv, kernel_init=kernel_init, **kw)
        norm = lambda: nn.GroupNorm(num_groups=_groups(self.channels), **kw)
        h = nn.relu(norm()(conv(3, self.stride)(x_Bxhxwxch)))
        h = norm()(conv(3, 1)(h))
        shortcut = x_Bxhxwxch
        if self.stride != 1 or x_Bxhxwxch.shape[-1] != self.channels:
            shortcut = norm()(conv(1, self.stride)(x_Bxhxwxch))
        return nn.relu(h + shortcut)


class ResNet8(nn.Module):
    """Stem conv 16 + three one-block stages (16, 32/2, 64/2) + global average pool + dense C.

    GroupNorm instead of BatchNorm: no batch statistics, so the model has no state besides params
    and its output for an example does not depend on the rest of the batch (probe logits are
    comparable across peers and batch sizes)."""

    num_classes: int
    dtype: Any = jnp.float32
    conv: Callable = jax.lax.conv_general_dilated      # or conv.im2col_conv (same params)

    @nn.compact
    def __call__(self, x_Bxhxwxch: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=PARAM_DTYPE)
        ckw = dict(kw, conv_general_dilated=self.conv, kernel_init=kernel_init)
        x = x_Bxhxwxch.astype(self.dtype)
        x = nn.Conv(16, (3, 3), padding="SAME", use_bias=False, **ckw)(x)
        x = nn.relu(nn.GroupNorm(num_groups=_groups(16), **kw)(x))
        for channels, stride in ((16, 1), (32, 2), (64, 2)):
            x = BasicBlock(channels, stride, dtype=self.dtype, conv=self.conv)(x)
        # Average in float32: a bf16 sum over h*w positions loses precision.
        x_Bxch = jnp.mean(x.astype(jnp.float32), axis=(1, 2)).astype(self.dtype)
        return nn.Dense(self.num_classes, kernel_init=kernel_init, **kw)(x_Bxch).astype(jnp.float32)


_BUILDERS: dict[str, Callable[[ModelConfig, int, Any], nn.Module]] = {
    "mlp": lambda cfg, k, dt: MLP(num_classes=k, width=cfg.width, dtype=dt),
    "lenet": lambda cfg, k, dt: LeNet(num_classes=k, dtype=dt, conv=conv_fn(cfg.conv, cfg.name)),
    "cnn": lambda cfg, k, dt: CNN(num_classes=k, dtype=dt, conv=conv_fn(cfg.conv, cfg.name)),
    "resnet8": lambda cfg, k, dt: ResNet8(num_classes=k, dtype=dt, conv=conv_fn(cfg.conv, cfg.name)),
    # text (sim/text_models.py): token ids [B, pos] -> logits [B, pos, C]
    "lstm": lambda cfg, k, dt: _text().LSTM(num_classes=k, embed=cfg.embed, hidden=cfg.hidden,
                                            layers=cfg.layers, dtype=dt),
    "transformer": lambda cfg, k, dt: _text().Transformer(num_classes=k, hidden=cfg.hidden, layers=cfg.layers,
                                                          heads=cfg.heads, dtype=dt),
}


def _text():
    from tallysim.sim import text_models
    return text_models
assert tuple(_BUILDERS) == tuple(MODELS)  # config.MODELS is the list users see in errors and the docs
assert tuple(DTYPES) == choices("model.dtype")


def make_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """Module mapping float32 `x_Bxhxwxch` to float32 `logits_BxC` (C = num_classes)."""
    if cfg.name not in _BUILDERS and model_target(cfg.name):
        return _plugin_model(cfg, int(num_classes))
    if cfg.name not in _BUILDERS:
        raise ConfigError(f"model.name: unknown model {cfg.name!r}; allowed: {', '.join(MODELS)}")
    if cfg.dtype not in DTYPES:
        raise ConfigError(f"model.dtype: unknown dtype {cfg.dtype!r}; allowed: {', '.join(DTYPES)}")
    if cfg.name == "transformer" and cfg.hidden % cfg.heads:
        raise ConfigError(f"model.heads={cfg.heads} must divide model.hidden={cfg.hidden} (transformer)")
    if cfg.name == "mlp" and cfg.width < 1:
        raise ConfigError(f"model.width: must be a positive integer, got {cfg.width!r}")
    return _BUILDERS[cfg.name](cfg, int(num_classes), DTYPES[cfg.dtype])


def _plugin_model(cfg: ModelConfig, k: int) -> nn.Module:
    """A plugin's model (MODELS = {"name": "factory"}, docs/howto/own-model.md): `factory(num_classes)`, or
    `factory(num_classes, dtype)` where it takes the compute dtype (num_classes: the vocabulary on a text
    dataset); whatever goes wrong is one line."""
    import importlib
    import inspect
    module, fn = model_target(cfg.name)
    where = f"model.name={cfg.name} (plugin {module}:{fn})"
    factory = getattr(importlib.import_module(module), fn)
    try:
        takes_dtype = "dtype" in inspect.signature(factory).parameters
    except (TypeError, ValueError):      # a builtin or C callable: no signature to read
        takes_dtype = False
    if not takes_dtype and cfg.dtype != "float32":
        raise ConfigError(f"{where} computes in its own dtype (its factory takes no dtype argument), and "
                          f"model.dtype={cfg.dtype}; allowed: model.dtype=float32, or a factory "
                          f"{fn}(num_classes, dtype)")
    try:
        model = factory(k, dtype=DTYPES[cfg.dtype]) if takes_dtype else factory(k)
    except (Exception, SystemExit) as e:    # noqa: BLE001 - the user's code: its error in one line, naming it
        # its first line: a message of several lines broke the one-line rule; SystemExit (a sys.exit() in the
        # factory) ended tallysim with the factory's status and not a word (as plugin_import catches it)
        raise ConfigError(f"{where}: {fn}({k}) raised {one_line(e)}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{where}: {fn}({k}) returned {type(model).__name__}; allowed: a flax.linen Module "
                          "mapping float32 examples [B, ...] to logits [B, num_classes] (text: token ids "
                          "[B, pos] to logits [B, pos, num_classes])")
    return model


def init_shapes(cfg: ModelConfig, model: nn.Module, dummy, num_classes: int, task=None, data_name: str = ""):
    """The model's variables as shapes (`eval_shape` of its init), a plugin model checked on them
    (check_plugin_model) against `task` (sim/tasks.py; classification where not given) and the dataset
    `data_name` it will see. A plugin model whose own code raises while it initialises was a traceback."""
    target = model_target(cfg.name)
    try:
        variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), dummy)
    except (Exception, SystemExit) as e:    # noqa: BLE001 - the user's code: its error in one line, naming the model
        if target is None:    # a built-in's failure is tallysim's: the traceback as it is
            raise
        raise ConfigError(f"model.name={cfg.name} (plugin {':'.join(target)}) raised "
                          f"{type(e).__name__} initialising on examples of shape {list(dummy.shape[1:])}: "
                          f"{str(e).splitlines()[0] if str(e) else ''} "
                          f"({_task_words(task, dummy.shape[1:], num_classes, data_name)})") from None
    if target is not None:
        check_plugin_model(cfg, model, variables, dummy, num_classes, task, data_name)
    return variables


def _task_words(task, example_shape, num_classes: int, data_name: str) -> str:
    """What the dataset's task hands a model and wants back, in the words of a refusal: an image model
    named on a text dataset (or a sequence model on images) fails on exactly this."""
    data = f"data.name={data_name}" if data_name else "the dataset"
    if getattr(task, "name", "classification") == "next_token":
        pos = int(example_shape[0])
        return (f"{data} is next-token prediction: token ids [B, {pos}] in (float32 holding integers: cast "
                f"them, x.astype(jnp.int32)), logits [B, {pos}, {num_classes}] out, a distribution over its "
                f"{num_classes} tokens at every position")
    return f"{data} is classification: examples {list(example_shape)} in, logits [B, {num_classes}] out"


def expected_logits(task, example_shape, batch: int, num_classes: int) -> tuple:
    """The logits' shape a model must return for `batch` examples of the task: [B, C], or [B, pos, C] for
    next-token prediction (every position votes: sim/tasks.py)."""
    if getattr(task, "name", "classification") == "next_token":
        return (batch, int(example_shape[0]), num_classes)
    return (batch, num_classes)


CHECK_BATCH = 2      # examples a plugin model is also checked on (eval_shape: shapes only, nothing runs)


def check_plugin_model(cfg: ModelConfig, model: nn.Module, variables, dummy, num_classes: int, task=None,
                       data_name: str = "") -> None:
    """What tallysim needs of a plugin model, checked on shapes before anything compiles: its whole state
    is its parameters (peers are `vmap(model.init)` and averaged; BatchNorm's batch_stats would be lost),
    and it maps [B, ...] examples to [B, C] logits, or token ids [B, pos] to [B, pos, C] on a text
    dataset (init_shapes calls it for a plugin's model only)."""
    where = f"model.name={cfg.name}"
    extra = sorted(set(variables) - {"params"})
    if extra:
        raise ConfigError(f"{where} keeps state besides its parameters ({', '.join(extra)}: BatchNorm's "
                          "batch_stats, say), which tallysim's stacked peers do not carry; allowed: a model whose "
                          "variables are only 'params' (GroupNorm or LayerNorm instead of BatchNorm)")
    leaves = jax.tree_util.tree_leaves_with_path(variables.get("params", {}))
    if not leaves:      # vmap over peers of no arrays: a traceback from inside vmap
        raise ConfigError(f"{where} has no parameters; allowed: a model with trainable parameters (each peer "
                          "trains its own copy, and peers share what they learnt)")
    fixed = [(jax.tree_util.keystr(p), leaf.dtype) for p, leaf in leaves if not jnp.issubdtype(leaf.dtype, jnp.floating)]
    if fixed:           # grad of an int32 parameter: a traceback from inside local training's step
        raise ConfigError(f"{where}: parameter {fixed[0][0]} is {fixed[0][1]}; allowed: floating-point parameters "
                          "(they are trained by gradient); keep integer constants out of self.param")
    try:
        out = jax.eval_shape(model.apply, variables, dummy)
    except (Exception, SystemExit) as e:    # noqa: BLE001 - the user's code
        raise ConfigError(f"{where} cannot be applied to examples of shape {list(dummy.shape[1:])}: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                          f"({_task_words(task, dummy.shape[1:], num_classes, data_name)})") from None
    want = expected_logits(task, dummy.shape[1:], dummy.shape[0], num_classes)
    if getattr(out, "shape", None) != want:
        shape = "[B, " + ", ".join(map(str, want[1:])) + "]"
        raise ConfigError(f"{where} returns {getattr(out, 'shape', type(out).__name__)} for {dummy.shape[0]} "
                          f"example(s); allowed: logits of shape {shape} "
                          f"({_task_words(task, dummy.shape[1:], num_classes, data_name)})")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        # int32, bool or complex logits passed the shape check and were optax's TypeError from inside the
        # jitted loss (softmax cross-entropy needs real floating-point logits)
        raise ConfigError(f"{where} returns logits of dtype {out.dtype}; allowed: floating-point logits "
                          "(float32, or bfloat16 / float16, which the loss takes as they are): scores per class, "
                          "not class ids (argmax) nor a cast to an integer, bool or complex type")
    # and on CHECK_BATCH examples: a model that keeps only the first example (`x[:1]`, a reshape to a batch
    # of one) returned the right shape for init's one example and was a traceback inside the jitted step
    many = jax.ShapeDtypeStruct((CHECK_BATCH,) + tuple(dummy.shape[1:]), dummy.dtype)
    try:
        got = getattr(jax.eval_shape(model.apply, variables, many), "shape", None)
    except (Exception, SystemExit) as e:    # noqa: BLE001 - the user's code
        got = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if got != (need := expected_logits(task, dummy.shape[1:], CHECK_BATCH, num_classes)):
        raise ConfigError(f"{where} returns {want} for {dummy.shape[0]} example but "
                          f"{got if isinstance(got, str) else tuple(got)} for {CHECK_BATCH}; allowed: {need} for "
                          f"{CHECK_BATCH}, logits whose first axis is the batch's (not sliced, reshaped or summed "
                          "over the batch: every example needs its own)")


def param_count(params) -> int:
    """Number of scalar parameters in a pytree (a stacked peer pytree counts every peer)."""
    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)))
