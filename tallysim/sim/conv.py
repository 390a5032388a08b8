"""Convolution as im2col (strided slices) + one matmul, a drop-in for `lax.conv_general_dilated` in `nn.Conv`.

Why: under `vmap` over peers, XLA's CPU backend turns a convolution into a grouped convolution that
runs at about a quarter of a per-peer loop (docs/howto/gpu.md, "Speed"), while patches + a batched matmul run at
about 1.5x the loop, vmapped or not. On accelerators the native convolution is faster (the grouped
convolution beat im2col 3x on an H200), so `model.conv=auto` picks im2col only on the CPU. Parameters
are nn.Conv's own (`kernel` [kh, kw, ch_in, ch_out], `bias`), so both paths initialise and train the
same model; they differ only by float summation order.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from tallysim.config import choices

CONVS = choices("model.conv")


def im2col_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count=1, precision=None, **kw):
    """NHWC input, HWIO kernel, NHWC output (what nn.Conv passes); anything else falls back."""
    dn = dimension_numbers
    if dn is not None and not isinstance(dn, lax.ConvDimensionNumbers):
        dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dn)
    plain = (dn is not None and lhs.ndim == 4 and feature_group_count == 1 and not kw
             and all(d == 1 for d in tuple(lhs_dilation or ()) + tuple(rhs_dilation or ()))
             and tuple(dn.lhs_spec) == (0, 3, 1, 2) and tuple(dn.rhs_spec) == (3, 2, 0, 1)
             and tuple(dn.out_spec) == (0, 3, 1, 2))
    if not plain:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision, **kw)
    kh, kw_, cin, cout = rhs.shape
    sh, sw = window_strides
    pads = lax.padtype_to_pads(lhs.shape[1:3], (kh, kw_), window_strides, padding) \
        if isinstance(padding, str) else padding
    x = jnp.pad(lhs, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw_) // sw + 1
    # Strided slices rather than lax.conv_general_dilated_patches: the latter is itself a convolution
    # (with a one-hot kernel), and its gradient was slower than the native convolution on the CPU.
    cols = [x[:, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw, :]
            for i in range(kh) for j in range(kw_)]
    patches = jnp.concatenate(cols, axis=-1)            # feature index = (i * kw + j) * ch_in + c
    return jnp.einsum("bhwk,ko->bhwo", patches, rhs.reshape(kh * kw_ * cin, cout), precision=precision)


def conv_fn(choice: str):
    """The `conv_general_dilated` nn.Conv should use for `model.conv`."""
    if choice == "im2col" or (choice == "auto" and jax.default_backend() == "cpu"):
        return im2col_conv
    return lax.conv_general_dilated
