"""`model.conv=pallas`: im2col patches, then the matmul as a Pallas kernel with a Pallas backward pass.

Why: vmapped over peers, every peer's convolution has its own kernel, so XLA makes one grouped
convolution of the P peers, and on a GPU the grouped convolution's backward pass is XLA's / cuDNN's
weak spot (jax#13800; issue 35, section 2). Here the convolution is the `im2col` formulation's patches
(XLA strided slices, the same as `conv.im2col_conv`) times the kernel as a matrix, and that matmul and
both of its gradients (input: dC @ W^T, weight: A^T @ dC) are Pallas kernels (`custom_vjp`): no
grouped convolution is left, forward or backward. Under `vmap` (peers, lanes) `pallas_call`'s batching
rule adds a grid axis per vmapped axis, so P peers are one kernel launch of P x tiles programs, each
peer multiplying by its own kernel.

The kernel: a blocked matmul, one program per (BM x BN) output tile, looping over the contraction in
BK chunks; inputs in the model's dtype (bfloat16 in the benchmarks), products accumulated in float32
(`pl.dot`), the tile stored in the input's dtype, as XLA's convolution returns it. GPU lowering is
Triton (`compiler_params=pallas.triton.CompilerParams`): JAX 0.10's default for a `pallas_call` on a
GPU is Mosaic GPU, whose `pallas_call` path is deprecated and whose matmuls need Hopper-specific code
(WGMMA, TMA, swizzled shared memory); Triton's blocked `pl.dot` runs on Ampere and Hopper alike.
Triton needs every loaded or stored block to have a power-of-two size, so the patch matrix is padded
to multiples of BM rows and BK columns and the kernel's output columns to a power of two (>= 16, what
a Triton dot needs), and the padding sliced off after (its gradient: zeros, by autodiff of pad/slice).

On a CPU there is no Pallas compiler: `interpret=True` runs the same kernel body through Pallas's
interpreter (exact same arithmetic, slowly); tests/test_conv_pallas.py checks values and gradients
against `im2col` that way. `conv.conv_fn` refuses `pallas` off a GPU unless TALLYSIM_PALLAS_INTERPRET=1.
Unmeasured on a GPU (docs/gpu.md): `benchmarks/gpu.sh` part `conv` times it beside xla / im2col / nchw.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from tallysim.data.cache import env_flag     # one reading of every on/off variable (fields.env_flag)

BM = 64          # output tile rows (patch rows: examples x output pixels)
BN = 64          # output tile columns, at most (fewer where the padded width is smaller)
BK = 32          # contraction chunk per loop step
MIN_DIM = 16     # a Triton dot's smallest operand dimension
NUM_WARPS = 4
NUM_STAGES = 2
INTERPRET_ENV = "TALLYSIM_PALLAS_INTERPRET"   # "1": run the kernels in Pallas's interpreter (any backend)


def interpret_requested() -> bool:
    return env_flag(INTERPRET_ENV)


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _pow2_at_least(n: int, floor: int = MIN_DIM) -> int:
    p = floor
    while p < n:
        p *= 2
    return p


def _kernel(a_ref, b_ref, o_ref, *, trans_a: bool, trans_b: bool, bk: int, nk: int, precision):
    """One output tile: sum over the contraction's BK chunks of op(a) @ op(b), in float32."""
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as plt     # Triton's dot: transposed operands read in place
    bm, bn = o_ref.shape

    def step(k, acc):
        chunk = pl.ds(pl.multiple_of(k * bk, bk), bk)
        a = a_ref[chunk, :] if trans_a else a_ref[:, chunk]
        b = b_ref[:, chunk] if trans_b else b_ref[chunk, :]
        return acc + plt.dot(a, b, trans_a=trans_a, trans_b=trans_b, precision=precision)

    acc = lax.fori_loop(0, nk, step, jnp.zeros((bm, bn), jnp.float32))
    o_ref[...] = acc.astype(o_ref.dtype)


def _matmul(a, b, *, trans_a: bool, trans_b: bool, bm: int, bn: int, bk: int, out_dtype, precision,
            interpret: bool):
    """op(a) @ op(b), op = transpose where asked (read transposed in the kernel, never copied). Every
    dimension must already be a multiple of its tile (the callers pad once)."""
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as plt
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    n = b.shape[0] if trans_b else b.shape[1]
    assert (b.shape[1] if trans_b else b.shape[0]) == k and m % bm == 0 and n % bn == 0 and k % bk == 0, \
        (a.shape, b.shape, trans_a, trans_b, bm, bn, bk)
    a_spec = (pl.BlockSpec((k, bm), lambda i, j: (0, i)) if trans_a
              else pl.BlockSpec((bm, k), lambda i, j: (i, 0)))
    b_spec = (pl.BlockSpec((bn, k), lambda i, j: (j, 0)) if trans_b
              else pl.BlockSpec((k, bn), lambda i, j: (0, j)))
    kernel = functools.partial(_kernel, trans_a=trans_a, trans_b=trans_b, bk=bk, nk=k // bk,
                               precision=precision)
    return pl.pallas_call(
        kernel, out_shape=jax.ShapeDtypeStruct((m, n), out_dtype), grid=(m // bm, n // bn),
        in_specs=[a_spec, b_spec], out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)),
        compiler_params=plt.CompilerParams(num_warps=NUM_WARPS, num_stages=NUM_STAGES),
        interpret=interpret, name="tallysim_peer_matmul")(a, b)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _padded_matmul(a, w, precision, interpret):
    """a [Mp, Kp] @ w [Kp, Np], every dimension a multiple of its tile; gradients by two more kernels."""
    return _forward(a, w, precision, interpret)


def _forward(a, w, precision, interpret):
    Np = w.shape[1]
    return _matmul(a, w, trans_a=False, trans_b=False, bm=BM, bn=min(BN, Np), bk=BK, out_dtype=a.dtype,
                   precision=precision, interpret=interpret)


def _fwd(a, w, precision, interpret):
    return _forward(a, w, precision, interpret), (a, w)


def _bwd(precision, interpret, res, g):
    a, w = res
    Np = w.shape[1]
    g = g.astype(a.dtype)
    # input gradient dA [Mp, Kp] = g [Mp, Np] @ w^T: contraction over the (small) output channels
    da = _matmul(g, w, trans_a=False, trans_b=True, bm=BM, bn=BK, bk=min(BK, Np), out_dtype=a.dtype,
                 precision=precision, interpret=interpret)
    # weight gradient dW [Kp, Np] = a^T @ g: contraction over every example's every output pixel
    dw = _matmul(a, g, trans_a=True, trans_b=False, bm=BK, bn=min(BN, Np), bk=BM, out_dtype=w.dtype,
                 precision=precision, interpret=interpret)
    return da, dw


_padded_matmul.defvjp(_fwd, _bwd)


def peer_matmul(a, w, precision=None, interpret: bool = False):
    """a [M, K] @ w [K, N] -> [M, N] in a's dtype (float32 accumulation), through the Pallas kernels:
    padded to the tiles, multiplied, sliced back. Vmap it for peers; each keeps its own w."""
    (M, K), N = a.shape, w.shape[1]
    Mp, Kp, Np = _round_up(M, BM), _round_up(K, BK), _pow2_at_least(N)
    if Np > BN:
        Np = _round_up(N, BN)
    a_p = jnp.pad(a, ((0, Mp - M), (0, Kp - K)))
    w_p = jnp.pad(w, ((0, Kp - K), (0, Np - N)))
    return _padded_matmul(a_p, w_p, precision, bool(interpret))[:M, :N]
