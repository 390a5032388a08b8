"""Tasks: what an example is, what its loss and accuracy count, and what a probe message is.

Shape letters (glossary: tallysim/sim/__init__.py): B batch, C classes (the vocabulary for text),
M probes, c peers per chunk, P peers; `T` inside a text example is its positions (the sequence
length; the glossary's T counts scan steps, so text shapes spell it `pos`: `tokens_Bxpos`).

A run has one task, named by its dataset (`Dataset.task`, carried as `Spec.task`):

  classification  x [B, h, w, ch] (or [B, D]), y [B] int: one label per example; the loss is the
                  cross-entropy averaged over the batch's real (unmasked) examples; accuracy counts
                  every test example; a probe carries one message (one vote, one distribution).
  next_token      x [B, pos] int token ids, y [B, pos] the next token at every position: the loss is
                  the cross-entropy averaged over non-PAD target positions of the real sequences;
                  accuracy counts positions whose target is not PAD, OOV, BOS or EOS (TensorFlow
                  Federated's `accuracy_without_out_of_vocab_or_end_of_sentence` convention, as Reddi
                  et al. 2021 report; predicting OOV is counted wrong); a probe carries one message
                  per position: pos votes of ceil(log2 C) bits, or pos distributions of C values.

Local training, evaluation and the probe exchange ask the task (`of(spec)`), never the dataset's
name: the probe exchange flattens [c, M, pos, C] logits to [c, M * pos, C] "messages" so that the
vote, the soft aggregate, chunking, faults and privacy noise act per message exactly as they act per
probe for images, and `unflatten` gives the peers [M, pos] targets to train on. A new task (e.g.
multi-label) is one more class here.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from tallysim.sizing import IMAGE_MODELS, TEXT_MODELS  # noqa: F401 - tasks.X, as before (file_shapes.py holds them)

# Token ids shared with tallysim/data/text.py (PAD, BOS, EOS, OOV)
PAD, BOS, EOS, OOV = 0, 1, 2, 3
FIRST_WORD = 4          # the lowest id of a real token: vote.ties=lowest_word breaks ties away from the ids below
TASKS = ("classification", "next_token")


class Classification(NamedTuple):
    name: str = "classification"
    positions: int = 1                     # messages per probe

    def private_weights(self, y_B, mask_B):
        """Weights of the per-example loss: the real examples."""
        return mask_B.astype(jnp.float32)

    def scored(self, y):
        """Targets counted by accuracy (padding of the test walk is -1)."""
        return y >= 0

    def messages(self, logits_cxMxC):
        return logits_cxMxC

    def message_labels(self, y_M):
        return y_M

    def unflatten(self, a, probes: int):
        return a

    def message_mask(self, x_M):
        """Which messages of the probes are text to train on: every probe (None: no mask, so the
        program is the one built before text existed)."""
        return None

    def scored_messages(self, y_M):
        """Which messages the probe diagnostics score: every probe (None: the program as before)."""
        return None

    def models(self):
        from tallysim.config import plugin_models
        return IMAGE_MODELS + plugin_models()    # a plugin's model: its [B, C] logits checked on shapes


class NextToken(NamedTuple):
    name: str = "next_token"
    positions: int = 80                    # pos: the sequence length

    def private_weights(self, y_Bxpos, mask_B):
        return (mask_B[:, None] & (y_Bxpos != PAD)).astype(jnp.float32)

    def scored(self, y):
        return (y != PAD) & (y != OOV) & (y != BOS) & (y != EOS) & (y >= 0)

    def messages(self, logits_cxMxposxC):
        c, M, pos, C = logits_cxMxposxC.shape
        return logits_cxMxposxC.reshape(c, M * pos, C)

    def message_labels(self, y_Mxpos):
        return y_Mxpos.reshape(-1)

    def unflatten(self, a, probes: int):
        """[M * pos, ...] -> [M, pos, ...]."""
        return a.reshape((probes, self.positions) + a.shape[1:])

    def message_mask(self, x_Mxpos):
        """[M * pos] float 0/1: the probe positions whose input is not PAD (the padding of a client's
        last window). Their votes or soft labels are sent and counted, as every position's, but carry
        nothing, so the peers do not train on them (weight 0), as local training skips PAD targets.
        Read from the probe's own tokens, not its hidden next tokens (feddf's rule, protocols/feddf.py):
        the position whose input is a stream's last token (its target PAD) is kept."""
        return (x_Mxpos != PAD).reshape(-1).astype(jnp.float32)

    def scored_messages(self, y_M):
        """[M * pos] float 0/1: the probe positions the diagnostics (vote_acc, softavg_acc,
        consensus_acc) score, those test accuracy scores (`scored`: not PAD, OOV, BOS or EOS). Scored
        over every position, the vote's accuracy counted padding and the specials as misses: at the
        comma floor on words it read 0.0859 where the same vote scored as accuracy is 0.0934 (docs/text.md)."""
        return self.scored(self.message_labels(y_M)).astype(jnp.float32)

    def models(self):
        from tallysim.config import plugin_models
        return TEXT_MODELS + plugin_models()     # a plugin's model: its [B, pos, C] logits checked on shapes


CLASSIFICATION = Classification()


def make(name: str, input_shape: tuple = ()):
    if name == "classification":
        return CLASSIFICATION
    if name == "next_token":
        return NextToken(positions=int(input_shape[0]))
    raise ValueError(f"task {name!r}; allowed: {', '.join(TASKS)}")


def of(spec):
    """The task of a run from its static facts (fed.Spec)."""
    return make(getattr(spec, "task", "classification"), spec.input_shape)


# Protocols and options that cannot run on next-token prediction yet, and why (one line each).
TEXT_REFUSED: dict = {}


# The conv models' smallest image side: LeNet's SAME conv, pool, VALID 5x5 conv and pool leave
# (h // 2 - 4) // 2 rows, none below 12; the CNN's two SAME convs and pools h // 4, none below 4;
# ResNet8's strided SAME convs and global pool keep at least one. Below that the flattened features
# are empty (a ZeroDivisionError in the initializer); a shape that is not [h, w, ch] a ValueError.
CONV_MIN_SIDE = {"lenet": 12, "cnn": 4, "resnet8": 1}


def check_shape(cfg, example_shape: tuple, group: str = "") -> None:
    """A conv model (model.name, or a group's) needs [h, w, ch] examples at least CONV_MIN_SIDE on a side:
    one line naming the shape and what is allowed, before the model is initialised."""
    from tallysim.config import ConfigError
    model, shape = cfg.model.name, tuple(int(d) for d in example_shape)
    least = CONV_MIN_SIDE.get(model)
    if least is None:
        return
    who = f"{'group ' + group + ': ' if group else ''}model.name={model}"
    data = f"data.name={cfg.data.name}"
    if len(shape) != 3:
        how = " (data.input_shape=HxWxC)" if cfg.data.name == "synthetic" else ""
        raise ConfigError(f"{who} convolves images of shape [h, w, ch], and the examples of {data} have shape "
                          f"{list(shape)}; allowed for them: model.name=mlp (any shape), or [h, w, ch] examples{how}")
    if min(shape[:2]) < least:
        fits = [m for m, side in CONV_MIN_SIDE.items() if min(shape[:2]) >= side]
        raise ConfigError(f"{who} needs images of at least {least}x{least}, and those of {data} are "
                          f"{shape[0]}x{shape[1]} (its pools would leave no features); allowed for them: mlp"
                          f"{''.join(', ' + m for m in fits)}, or larger images")


def check(cfg, task, group: str = "", model: bool = True) -> None:
    """One-line refusals of what a task cannot run (ConfigError); `group` names a model group's model (an mlp
    group on text said "model.name=mlp does not fit" of a run whose model.name was lstm). `model=False`:
    not the run's model.name (model.groups: each group's model is checked instead, and a run whose every
    group names a text model was refused for the default model.name=mlp no peer runs)."""
    from tallysim.config import ConfigError
    name = cfg.model.name
    if model and name not in task.models():
        kind = "text (token sequences)" if task.name == "next_token" else "images (classification)"
        raise ConfigError(f"{'group ' + group + ': ' if group else ''}model.name={name} does not fit {cfg.data.name}, whose examples are {kind}; "
                          f"allowed for it: {', '.join(task.models())}")
    if task.name != "next_token":
        from tallysim.validation import ties_on_text
        ties_on_text(cfg, False)
        return
    why = TEXT_REFUSED.get(cfg.protocol.name)
    if why:
        raise ConfigError(f"protocol.name={cfg.protocol.name} does not run on next-token prediction "
                          f"({cfg.data.name}): {why}; use tally, softlabel, cfd, selective_fd, bridge, feddf or the FedAvg family")
    if cfg.vote.weighting == "history":
        raise ConfigError(f"vote.weighting=history does not run on next-token prediction ({cfg.data.name}) "
                          "yet; allowed there: vote.weighting=none (every vote counts once)")
    if cfg.protocol.name == "bridge" and getattr(getattr(cfg, "bridge", None), "vote_at", None) == "merge":
        raise ConfigError("bridge.vote_at=merge does not run on next-token prediction yet; use the default")
