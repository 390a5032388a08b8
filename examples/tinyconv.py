"""A model plugin: your own flax model under a model.name of its own (docs/howto/own-model.md).

    PYTHONPATH=examples tallysim run --plugin tinyconv model.name=tinyconv ... --out runs/tinyconv
    tallysim.load_plugin("tinyconv")                 # in Python, with examples/ on sys.path

tallysim calls the factory named in MODELS with the dataset's number of classes (and, where the factory
takes one, `dtype=`: the compute dtype model.dtype picks), and uses the module it returns for every peer:
`vmap(model.init)` stacks one copy per peer, `model.apply(variables, x)` maps float32 examples [B, ...]
(pixels already scaled to [-1, 1]; [h, w] images get a channel axis, [h, w, 1]) to logits [B, C].
Its only state must be its parameters: use LayerNorm or GroupNorm, not BatchNorm (refused in one line).
"""
import flax.linen as nn
import jax.numpy as jnp


class TinyConv(nn.Module):
    num_classes: int
    dtype: jnp.dtype = jnp.float32      # the compute dtype; the parameters stay float32

    @nn.compact
    def __call__(self, x):
        x = x.astype(self.dtype)
        if x.ndim == 2:                  # [B, D] examples (a flat dataset): one row of pixels
            x = x[:, None, :, None]
        x = nn.relu(nn.Conv(16, (3, 3), strides=2, dtype=self.dtype)(x))
        x = nn.relu(nn.Conv(32, (3, 3), strides=2, dtype=self.dtype)(x))
        x = nn.LayerNorm(dtype=self.dtype)(x.reshape(x.shape[0], -1))
        return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)


def tiny_conv(num_classes, dtype=jnp.float32):
    return TinyConv(num_classes=num_classes, dtype=dtype)


MODELS = {"tinyconv": "tiny_conv"}
