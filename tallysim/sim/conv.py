"""Convolution formulations, each a drop-in for `lax.conv_general_dilated` in `nn.Conv` (`model.conv`).

  xla     XLA's native convolution in nn.Conv's layout (NHWC input, HWIO kernel).
  im2col  strided slices + one matmul (`im2col_conv`). Why: under `vmap` over peers, XLA's CPU backend
          turns a convolution into a grouped convolution that runs at about a quarter of a per-peer
          loop (docs/howto/gpu.md, "Speed"), while patches + a batched matmul run at about 1.5x the
          loop, vmapped or not. On an H200 the native convolution was faster (im2col 0.80x, docs/gpu.md).
  nchw    the native convolution in the NCHW / OIHW layout (`nchw_conv`): the input and kernel are
          transposed in, the output back, so the grouped convolution XLA makes of P vmapped peers has
          its features, not its pixels, outermost: another layout for cuDNN to pick kernels for
          (issue 35, section 2). Only a measurement on the device says whether it is faster.
  pallas  im2col's patches times the kernel as Pallas kernels, forward and both gradients
          (`pallas_conv`, sim/conv_pallas.py): no grouped convolution at all, so none of cuDNN's weak
          grouped backward pass (jax#13800). GPU only (Triton); on a CPU refused unless
          TALLYSIM_PALLAS_INTERPRET=1 (Pallas's interpreter). Unmeasured on a GPU so far.

`model.conv=auto` picks per (device kind, model) from `AUTO_CONV`, a table of measurements: im2col on
the CPU, xla everywhere else until a lease measures otherwise (`benchmarks/gpu.sh` part `conv` prints
the entries to paste; `auto` picks pallas only where a row names it). Parameters are nn.Conv's own (`kernel` [kh, kw, ch_in, ch_out], `bias`) for every
formulation, so all initialise and train the same model; they differ only by float summation order.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from jax import lax

from tallysim.config import ConfigError, choices

CONVS = choices("model.conv")

# model.conv=auto: (device-kind substring, model name or "*", formulation); the first row whose
# substring occurs in the device's kind (case-insensitive; a CPU's kind is "cpu") and whose model
# matches wins. A device no row names gets AUTO_DEFAULT. Add rows only from a measurement on that
# device (benchmarks/gpu.sh, part conv), and say where it is recorded (docs/gpu.md).
AUTO_CONV: tuple[tuple[str, str, str], ...] = (
    ("cpu", "*", "im2col"),         # docs/howto/gpu.md "Speed": the grouped convolution is ~4x slower there
)
AUTO_DEFAULT = "xla"                # H200, 2026-11-27: native 638k vs im2col 509k samples/s (CNN, bf16, P = 100)


def _nhwc_hwio(dimension_numbers, lhs, rhs):
    """nn.Conv's own call: NHWC input, HWIO kernel, NHWC output (anything else falls back to lax)."""
    dn = dimension_numbers
    if dn is not None and not isinstance(dn, lax.ConvDimensionNumbers):
        dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dn)
    return (dn is not None and lhs.ndim == 4 and tuple(dn.lhs_spec) == (0, 3, 1, 2)
            and tuple(dn.rhs_spec) == (3, 2, 0, 1) and tuple(dn.out_spec) == (0, 3, 1, 2))


def _plain(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count, kw) -> bool:
    """nn.Conv's plain call (NHWC / HWIO, no groups, no dilation): what the matmul formulations handle."""
    return (_nhwc_hwio(dimension_numbers, lhs, rhs) and feature_group_count == 1 and not kw
            and all(d == 1 for d in tuple(lhs_dilation or ()) + tuple(rhs_dilation or ())))


def _patches(lhs, kernel_shape, window_strides, padding):
    """The im2col matrix, [B, Ho, Wo, kh * kw * ch_in] (feature index = (i * kw + j) * ch_in + c)."""
    kh, kw_, cin, cout = kernel_shape
    sh, sw = window_strides
    pads = lax.padtype_to_pads(lhs.shape[1:3], (kh, kw_), window_strides, padding) \
        if isinstance(padding, str) else padding
    x = jnp.pad(lhs, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw_) // sw + 1
    # Strided slices rather than lax.conv_general_dilated_patches: the latter is itself a convolution
    # (with a one-hot kernel), and its gradient was slower than the native convolution on the CPU.
    cols = [x[:, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw, :]
            for i in range(kh) for j in range(kw_)]
    return jnp.concatenate(cols, axis=-1)


def im2col_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count=1, precision=None, **kw):
    """NHWC input, HWIO kernel, NHWC output (what nn.Conv passes); anything else falls back."""
    if not _plain(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count, kw):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision, **kw)
    kh, kw_, cin, cout = rhs.shape
    patches = _patches(lhs, rhs.shape, window_strides, padding)
    return jnp.einsum("bhwk,ko->bhwo", patches, rhs.reshape(kh * kw_ * cin, cout), precision=precision)


def pallas_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count=1, precision=None, interpret=None, **kw):
    """im2col's patches times the kernel through Pallas kernels, forward and backward
    (sim/conv_pallas.py). `interpret` None: Pallas's interpreter only where TALLYSIM_PALLAS_INTERPRET=1.
    Calls not in nn.Conv's plain layout fall back to lax unchanged."""
    from tallysim.sim import conv_pallas
    if not _plain(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count, kw):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision, **kw)
    kh, kw_, cin, cout = rhs.shape
    patches = _patches(lhs, rhs.shape, window_strides, padding)
    b, ho, wo, k = patches.shape
    interpret = conv_pallas.interpret_requested() if interpret is None else interpret
    out = conv_pallas.peer_matmul(patches.reshape(b * ho * wo, k), rhs.reshape(k, cout),
                                  precision=precision, interpret=interpret)
    return out.reshape(b, ho, wo, cout)


def nchw_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
              dimension_numbers=None, feature_group_count=1, precision=None, **kw):
    """The same convolution computed in NCHW / OIHW: transpose in, convolve, transpose the output back
    to NHWC. Exact layout changes around one native convolution, so the result is XLA's convolution's
    (up to the summation order the other layout's kernel uses); the gradient transposes back the same
    way. Calls not in nn.Conv's NHWC / HWIO layout fall back to lax unchanged."""
    if not _nhwc_hwio(dimension_numbers, lhs, rhs):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision, **kw)
    out = lax.conv_general_dilated(jnp.transpose(lhs, (0, 3, 1, 2)), jnp.transpose(rhs, (3, 2, 0, 1)),
                                   window_strides, padding, lhs_dilation, rhs_dilation,
                                   ("NCHW", "OIHW", "NCHW"), feature_group_count, precision=precision, **kw)
    return jnp.transpose(out, (0, 2, 3, 1))


FORMULATIONS = {"xla": lax.conv_general_dilated, "im2col": im2col_conv, "nchw": nchw_conv, "pallas": pallas_conv}


def device_kind(device=None) -> str:
    """The device's kind as JAX names it ("cpu", "NVIDIA H200", "TPU v5 lite", ...)."""
    d = device or jax.devices()[0]
    return getattr(d, "device_kind", "") or d.platform


def auto_choice(model: str = "*", kind: Optional[str] = None) -> str:
    """What `model.conv=auto` is for `model` on a device of `kind` (default: this process's first)."""
    kind = (device_kind() if kind is None else kind).lower()
    for sub, name, choice in AUTO_CONV:
        if sub.lower() in kind and name in ("*", model):
            return choice
    return AUTO_DEFAULT


def check_usable(choice: str, backend: Optional[str] = None) -> None:
    """One line, before any data loads, where `choice` cannot run on this backend: `pallas` compiles
    its kernels through Triton, which only a GPU has; on anything else only Pallas's interpreter runs
    them (exact, but orders of magnitude slower), so it is refused unless the user asks for the
    interpreter by name (TALLYSIM_PALLAS_INTERPRET=1, for checking the kernels)."""
    from tallysim.sim import conv_pallas
    if choice != "pallas" or conv_pallas.interpret_requested():
        return
    backend = jax.default_backend() if backend is None else backend
    if backend != "gpu":
        raise ConfigError(f"model.conv=pallas needs a GPU (its kernels compile through Triton) but this run's "
                          f"JAX backend is {backend}; allowed here: {', '.join(c for c in CONVS if c != 'pallas')} "
                          f"(auto picks im2col on a CPU), or {conv_pallas.INTERPRET_ENV}=1 to run the Pallas "
                          f"kernels in Pallas's interpreter (slow; for checking them)")


def conv_fn(choice: str, model: str = "*"):
    """The `conv_general_dilated` nn.Conv should use for `model.conv` (auto: `auto_choice(model)`)."""
    if choice == "auto":
        choice = auto_choice(model)
    if choice not in FORMULATIONS:
        raise ValueError(f"model.conv={choice!r} is not a convolution; allowed: {', '.join(CONVS)}")
    check_usable(choice)
    return FORMULATIONS[choice]
