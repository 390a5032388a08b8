"""Rows of a random draw without the rest of it: `uniform_rows(key, shape, row0, rows)` is
`jax.random.uniform(key, shape)[row0:row0 + rows]` bit for bit, `normal_rows` and `randint_rows` the
same of `jax.random.normal` and `jax.random.randint`, holding only the rows asked for.

Why: the vote's random tie scores (vote.ties=random), GNMax's noise (privacy.noise) and
confident_wrong's wrong classes (faults.py) are drawn over every message at once; the blocked vote (exchange.blocked_tally) holds one block's
messages, and must draw for them what the all-probes vote draws, or a run past the budget would vote
differently from the same run on a bigger machine. JAX's threefry generator (with its default
`jax_threefry_partitionable`) makes element i of a draw of any shape a function of the key and the
flat index i alone (jax._src.random.threefry2x32._threefry_random_bits_partitionable: threefry2x32 of
the 64-bit index as two uint32 words, the two outputs xor-ed); the rows' counters are computed here,
and the bits turned into floats as jax.random.uniform / normal do. tests/test_blockedvote_dec16.py
compares them with JAX's own draws, and so does every process once, before its first blocked draw
(`reproduces`: a few draws of 15 elements): a JAX whose draws differ from these formulas (another
version's counter layout or float conversion) is then said once and sliced as below, where it voted
otherwise than the all-probes run in silence. Where the generator is another one (jax_default_prng_impl,
a typed key of another impl, or partitionable off), the whole draw is made and sliced: still exact, no
longer O(rows). The memory estimate counts the O(rows) path: which generator draws is JAX's process
setting (JAX_DEFAULT_PRNG_IMPL, jax_threefry_partitionable), not the run's config, and whether a JAX's
draws differ is known only once it has drawn; so the first whole draw of each shape warns with the
bytes it adds (`_whole`).
"""
from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p


def counter_based() -> bool:
    """Whether element i of a draw depends on (key, i) alone (the default threefry generator) and this
    JAX's draws are the ones computed here (`reproduces`)."""
    impl = jax.config.jax_default_prng_impl
    return bool(jax.config.jax_threefry_partitionable) and impl == "threefry2x32" and reproduces(jax.__version__, impl)


def _fast(key) -> bool:
    """counter_based, for this key: a typed key carries its own generator (rbg, philox, ...), which the
    default's being threefry says nothing of (its draws were computed as threefry's, and differed)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and str(jax.random.key_impl(key)) != "threefry2x32":
        return False
    return counter_based()


@functools.lru_cache(maxsize=None)
def reproduces(version: str, impl: str) -> bool:
    """Whether this JAX's uniform, normal and randint draws are those the formulas below compute, checked
    on a small draw once a process (per JAX version and generator; eagerly, also when called while a
    program is traced). A JAX that changed them is said once, and its draws sliced from whole ones."""
    def pairs(key):       # (ours, JAX's) of each kind of draw, in one small program (4.8 s op by op)
        return ((_uniform_fast(key, 2, 2, (3,), 0.0, 1.0), jax.random.uniform(key, (5, 3))[2:4]),
                (_randint_fast(key, 3, 2, (), 1, 70_000), jax.random.randint(key, (7,), 1, 70_000)[3:5]),
                (_normal_fast(key, 1, 3, (3,)), jax.random.normal(key, (5, 3))[1:4]))
    with jax.ensure_compile_time_eval():       # concrete inside a trace too
        (u, u_jax), (i, i_jax), (n, n_jax) = jax.device_get(jax.jit(pairs)(jax.random.PRNGKey(0x5EED)))
    # erf_inv's last bit may differ between two programs (XLA's emitters): the formula is what is checked
    same = np.array_equal(u, u_jax) and np.array_equal(i, i_jax) and np.allclose(n, n_jax, rtol=1e-6, atol=0)
    if not same:
        warnings.warn(f"tallysim: JAX {version}'s random draws ({impl}) are not the ones sim/row_draws.py "
                      "computes for a block of probes; the blocked vote draws each whole [messages, classes] "
                      "draw and slices it (the same votes, more memory than the estimate counts)", stacklevel=2)
    return same


def _raw(key) -> jax.Array:
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def _bits(key, row0, rows: int, tail: tuple) -> jax.Array:
    """uint32 bits [rows, *tail] of a draw's rows row0.. (row0 traced): threefry2x32 of each element's
    64-bit flat index (row0 + i) * prod(tail) + j, as (high, low) uint32 words."""
    width = math.prod(tail)
    k = _raw(key)
    # (row0 * width) as 64 bits, from 16-bit halves of row0 so no product overflows uint32 unseen
    r = jnp.asarray(row0, jnp.uint32)
    w_hi, w_lo = np.uint32(width >> 16), np.uint32(width & 0xFFFF)
    r_hi, r_lo = r >> 16, r & 0xFFFF
    # row0 * width = r_hi*w_hi * 2^32 + (r_hi*w_lo + r_lo*w_hi) * 2^16 + r_lo*w_lo
    mid = r_hi * w_lo + r_lo * w_hi                  # < 2^33: carry it by halves
    mid_lo, mid_hi = mid & 0xFFFF, mid >> 16
    mid_carry = (r_hi * w_lo > mid).astype(jnp.uint32)      # the sum wrapped past 2^32
    lo0 = r_lo * w_lo
    lo = lo0 + (mid_lo << 16)
    hi = r_hi * w_hi + mid_hi + (mid_carry << 16) + (lo < lo0).astype(jnp.uint32)
    local = jnp.arange(rows * width, dtype=jnp.uint32).reshape((rows,) + tuple(tail))    # < 2^32: one block
    lo_i = lo + local
    hi_i = hi + (lo_i < lo).astype(jnp.uint32)
    b1, b2 = threefry2x32_p.bind(k[0], k[1], hi_i, lo_i)
    return b1 ^ b2


def _floats(bits, minval, maxval) -> jax.Array:
    """jax.random.uniform's float32 from 32 random bits: the top 23 as the mantissa of [1, 2), less 1."""
    f = jax.lax.bitcast_convert_type((bits >> np.uint32(9)) | np.array(1.0, np.float32).view(np.uint32),
                                     jnp.float32) - np.float32(1.0)
    minval, maxval = np.float32(minval), np.float32(maxval)
    return jax.lax.max(minval, f * (maxval - minval) + minval)


def _why(key) -> str:
    """Why `key`'s rows are not computed (not _fast(key)), in the words of its setting."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and str(jax.random.key_impl(key)) != "threefry2x32":
        return f"a key of generator {jax.random.key_impl(key)}"
    if jax.config.jax_default_prng_impl != "threefry2x32":
        return f"JAX_DEFAULT_PRNG_IMPL={jax.config.jax_default_prng_impl}"
    if not jax.config.jax_threefry_partitionable:
        return "jax_threefry_partitionable off"
    return f"JAX {jax.__version__}'s draws are not the ones row_draws computes"


@functools.lru_cache(maxsize=None)
def _whole(kind: str, shape: tuple, rows: int, why: str) -> None:
    """Said once per draw (kind, shape): the bytes the whole draw adds beyond the estimate's block of
    rows, the draw and its padded copy (4 bytes an element each; randint's two draws of 32 bits, one
    more copy), at trace time, where the shape is known."""
    n, width = math.prod(shape), math.prod(shape[1:])
    extra = 4 * (n * (3 if kind == "randint" else 2) + rows * width)
    warnings.warn(f"tallysim: the blocked vote draws its {kind} draw of shape {list(shape)} whole and slices "
                  f"each block's {rows} rows from it ({why}): about {extra:,} bytes ({extra / 1e6:,.1f} MB) "
                  "more device memory than the memory estimate counts (the same votes)", stacklevel=3)


def uniform_rows(key, shape: tuple, row0, rows: int, minval=0.0, maxval=1.0) -> jax.Array:
    """jax.random.uniform(key, shape, float32, minval, maxval)[row0:row0 + rows] (row0 traced; rows
    past shape[0] are drawn as if the draw went on: the caller's padding)."""
    if _fast(key):
        return _uniform_fast(key, row0, rows, tuple(shape[1:]), minval, maxval)
    _whole("uniform", tuple(shape), rows, _why(key))
    full = jax.random.uniform(key, tuple(shape), jnp.float32, minval, maxval)     # the same draw, sliced
    padded = jnp.concatenate([full, jnp.zeros((rows,) + tuple(shape[1:]), jnp.float32)])   # no clamped start
    return jax.lax.dynamic_slice_in_dim(padded, row0, rows)


def normal_rows(key, shape: tuple, row0, rows: int) -> jax.Array:
    """jax.random.normal(key, shape, float32)[row0:row0 + rows], as uniform_rows."""
    if _fast(key):
        return _normal_fast(key, row0, rows, tuple(shape[1:]))
    _whole("normal", tuple(shape), rows, _why(key))
    full = jax.random.normal(key, tuple(shape), jnp.float32)
    padded = jnp.concatenate([full, jnp.zeros((rows,) + tuple(shape[1:]), jnp.float32)])
    return jax.lax.dynamic_slice_in_dim(padded, row0, rows)


def randint_rows(key, shape: tuple, row0, rows: int, minval: int, maxval: int) -> jax.Array:
    """jax.random.randint(key, shape, minval, maxval) (int32, static bounds in int32's range)
    [row0:row0 + rows], as uniform_rows: two draws of 32 bits from the key's split, the high one
    times 2^32 mod the span plus the low one, mod the span (jax._src.random.core._randint)."""
    if _fast(key):
        return _randint_fast(key, row0, rows, tuple(shape[1:]), minval, maxval)
    _whole("randint", tuple(shape), rows, _why(key))
    full = jax.random.randint(key, tuple(shape), minval, maxval)
    padded = jnp.concatenate([full, jnp.zeros((rows,) + tuple(shape[1:]), full.dtype)])
    return jax.lax.dynamic_slice_in_dim(padded, row0, rows)


def _uniform_fast(key, row0, rows: int, tail: tuple, minval, maxval) -> jax.Array:
    return _floats(_bits(key, row0, rows, tail), minval, maxval)


def _normal_fast(key, row0, rows: int, tail: tuple) -> jax.Array:
    """jax.random.normal's float32: sqrt(2) erf_inv of a uniform draw on (-1, 1)."""
    lo = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)
    return np.float32(np.sqrt(2)) * jax.lax.erf_inv(_uniform_fast(key, row0, rows, tail, lo, 1.0))


def _randint_fast(key, row0, rows: int, tail: tuple, minval: int, maxval: int) -> jax.Array:
    k1, k2 = jax.random.split(key)
    higher, lower = _bits(k1, row0, rows, tail), _bits(k2, row0, rows, tail)
    span = np.uint32(max(maxval - minval, 1))
    half = 2 ** 16 % int(span)
    multiplier = np.uint32((half * half) % 2 ** 32 % int(span))       # squared in uint32, as JAX does
    offset = ((higher % span) * multiplier + lower % span) % span
    return np.int32(minval) + offset.astype(jnp.int32)
