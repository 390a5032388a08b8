"""Text models: token ids [B, pos] -> next-token logits [B, pos, C] (C: the vocabulary).

Shape letters (glossary: tallysim/sim/__init__.py): B batch, C vocabulary (classes); `pos` positions
of a sequence, `e` the embedding width, `d` the model width.

- `lstm`: Reddi et al. 2021 ("Adaptive Federated Optimization", Shakespeare): an embedding of size
  `model.embed` (8), `model.layers` (2) LSTM layers of `model.hidden` (256) units, a dense layer to the
  vocabulary.
- `transformer`: a small causal pre-norm (pre-LayerNorm) decoder: learned token and position
  embeddings of width `model.hidden`, `model.layers` blocks of causal multi-head self-attention
  (`model.heads`) and a 4x GELU MLP, each behind a LayerNorm with a residual, a final LayerNorm, a
  dense layer to the vocabulary.

Inputs arrive as float32 (fed.to_input casts stored examples for every model) holding integer ids,
exact below 2^24; both models cast them back to int32. `model.dtype` is the compute dtype as for the
image models: parameters float32, logits float32.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from tallysim.sim.initializers import kernel_init   # flax's default, drawn flat: the same bits, a faster compile

PARAM_DTYPE = jnp.float32


class LSTM(nn.Module):
    num_classes: int
    embed: int = 8
    hidden: int = 256
    layers: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens_Bxpos):
        ids = tokens_Bxpos.astype(jnp.int32)
        h = nn.Embed(self.num_classes, self.embed, dtype=self.dtype, param_dtype=PARAM_DTYPE)(ids)
        for _ in range(self.layers):
            cell = nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype, param_dtype=PARAM_DTYPE)
            h = nn.RNN(cell)(h)
        return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=PARAM_DTYPE,
                        kernel_init=kernel_init)(h).astype(jnp.float32)


class Block(nn.Module):
    hidden: int
    heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, mask):
        kw = dict(dtype=self.dtype, param_dtype=PARAM_DTYPE)
        h = nn.LayerNorm(**kw)(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads, **kw)(h, h, mask=mask)
        h = nn.LayerNorm(**kw)(x)
        h = nn.Dense(4 * self.hidden, kernel_init=kernel_init, **kw)(h)
        return x + nn.Dense(self.hidden, kernel_init=kernel_init, **kw)(nn.gelu(h))


class Transformer(nn.Module):
    num_classes: int
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    max_len: int = 512
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens_Bxpos):
        kw = dict(dtype=self.dtype, param_dtype=PARAM_DTYPE)
        ids = tokens_Bxpos.astype(jnp.int32)
        pos = ids.shape[-1]
        x = nn.Embed(self.num_classes, self.hidden, **kw)(ids)
        x = x + nn.Embed(self.max_len, self.hidden, **kw)(jnp.arange(pos))[None]
        mask = nn.make_causal_mask(ids)
        for _ in range(self.layers):
            x = Block(self.hidden, self.heads, self.dtype)(x, mask)
        x = nn.LayerNorm(**kw)(x)
        return nn.Dense(self.num_classes, kernel_init=kernel_init, **kw)(x).astype(jnp.float32)
