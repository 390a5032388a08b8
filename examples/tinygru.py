"""A sequence-model plugin for the text tasks: your own flax model on Shakespeare (docs/howto/own-model.md).

    PYTHONPATH=examples tallysim run --plugin tinygru model.name=tinygru data.name=shakespeare ... --out runs/gru
    tallysim.load_plugin("tinygru")                  # in Python, with examples/ on sys.path

On a text dataset (data.name=shakespeare, shakespeare_words) tallysim calls the factory with the
vocabulary's size C (80 characters, or 10,004 words) and the module it returns must map token ids [B, pos]
to next-token logits [B, pos, C]: one distribution at every position, which local training scores against
the next token (PAD targets weigh nothing) and tally turns into one vote of ceil(log2 C) bits per position.
The ids arrive as float32 holding integers (every model gets float32 inputs): cast them to int32 before
the embedding. The RNN runs left to right, so position t sees tokens 0..t only, as next-token prediction
needs (a bidirectional layer would see the answer). Checked on shapes before anything compiles: an image
model named on a text dataset, or this one on images, is refused in one line.
"""
import flax.linen as nn
import jax.numpy as jnp


class TinyGRU(nn.Module):
    vocab: int
    embed: int = 8
    hidden: int = 64
    dtype: jnp.dtype = jnp.float32      # the compute dtype; the parameters stay float32

    @nn.compact
    def __call__(self, tokens):
        ids = tokens.astype(jnp.int32)                                  # float32 ids -> int32
        h = nn.Embed(self.vocab, self.embed, dtype=self.dtype)(ids)     # [B, pos, embed]
        h = nn.RNN(nn.GRUCell(self.hidden, dtype=self.dtype))(h)        # [B, pos, hidden], causal
        return nn.Dense(self.vocab, dtype=self.dtype)(h).astype(jnp.float32)    # [B, pos, C]


def tiny_gru(num_classes, dtype=jnp.float32):
    return TinyGRU(vocab=num_classes, dtype=dtype)


MODELS = {"tinygru": "tiny_gru"}
# For the memory estimate (the refusal of a size no machine could hold): the bytes a training step keeps
# per position of a window besides the logits and their gradient, which tallysim counts itself. Measured
# as docs/howto/own-model.md says: XLA:CPU's gradient step keeps 2,651 (80 characters) and 2,657 (10,004
# words) at float32; a little under, as the estimate is a lower bound. Left out, the logits alone count.
POSITION_BYTES = {"tinygru": 2_600}
