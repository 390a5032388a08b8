"""Parameter initializers of the built-in models (sim/models.py, sim/text_models.py)."""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp


def kernel_init(key: jax.Array, shape: tuple, dtype: Any = jnp.float32) -> jax.Array:
    """flax's default kernel initializer (`lecun_normal`: a normal truncated at 2 standard deviations,
    variance 1 / fan_in, fan_in = every axis but the last), the same numbers to the bit, but drawn as one
    flat vector and reshaped. Why: XLA's CPU compiler spends 1-2 s of CPU on the threefry draw of an
    array whose last axis is 10 (a classifier's [h, 10] kernel), against 0.2 s for the same draw flat
    (docs/performance.md), in every program that initialises models; the draw's counters are the
    row-major element index either way, so the bits are the same (tests/test_models.py)."""
    fan_in = math.prod(shape[:-1])
    stddev = jnp.sqrt(jnp.array(1.0 / fan_in, dtype=dtype)) / jnp.array(.87962566103423978, dtype)
    return jax.random.truncated_normal(key, -2, 2, (math.prod(shape),), dtype).reshape(shape) * stddev
