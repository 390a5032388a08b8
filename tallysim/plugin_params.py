"""A plugin model's exact parameter count for the memory estimate (sizing.model_params): `jax.eval_shape` of
its init on one example, traced only (nothing compiled or allocated). The estimate stood at 100,000 + 128 C
parameters for every plugin model, up to 4x off (tinyconv: 101,280 counted for its 23,626 on Fashion-MNIST's
shape). JAX is imported here only for a plugin's model, whose own module has imported it already; sizing
stays JAX-free for the built-ins.
"""
from __future__ import annotations

import functools
import importlib
import math

from tallysim import protocols


def plugin_model_params(name: str, shape: tuple, classes: int) -> int | None:
    """Plugin model `name`'s parameters on examples of `shape` with `classes` classes; None for a built-in, or
    where its code fails: the run's own shape checks (sim/models.init_shapes) then say what is wrong, in
    one line, on the loaded data's real shape."""
    target = protocols.model_target(name)
    return None if target is None else _traced_params(target, tuple(shape), int(classes))


@functools.lru_cache(maxsize=64)      # validate() runs once per run of a sweep: trace each model once
def _traced_params(target: tuple, shape: tuple, classes: int) -> int | None:
    try:
        import jax
        import jax.numpy as jnp
        model = getattr(importlib.import_module(target[0]), target[1])(classes)
        variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, *shape), jnp.float32)))
        params = variables["params"] if "params" in variables else variables
        return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params))) or None
    except (Exception, SystemExit):     # noqa: BLE001 - the user's code (a sys.exit() in its factory ended
        # --print-config with its status and no word): init_shapes reports it on the real data
        return None
