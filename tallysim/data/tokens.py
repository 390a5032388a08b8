"""Text as tokens, whatever the corpus: the four special ids, a speech's units (characters, or words:
lower-cased runs of letters with inner apostrophes, and single punctuation marks), LEAF's per-client
temporal train/test cut, the vocabulary from the training streams, ids and back, and TFF's windows of
T + 1 tokens (docs/text.md). Split from data/text.py, which reads Shakespeare into clients and caches
them, and re-exports these names (`text.windows`, `text.PAD`, ...).
"""
from __future__ import annotations

import collections
import re

import numpy as np

PAD, BOS, EOS, OOV = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<oov>")
TRAIN_FRACTION = 0.8       # LEAF's per-client temporal split


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*|[^\sa-z]")


def words(speech: str) -> list[str]:
    return _WORD.findall(speech.lower())


TOKENS = ("char", "word")


def _check_tokens(tokens, where: str) -> None:
    # anything but "char" was read as words: `tokens="chars"` built a word vocabulary, silently
    if tokens not in TOKENS:
        raise ValueError(f"{where}: tokens={tokens!r}; allowed: {', '.join(TOKENS)}")


def units(speech: str, tokens: str) -> list[str]:
    _check_tokens(tokens, "units")
    return list(speech) if tokens == "char" else words(speech)


def temporal_split(stream: list, fraction: float = TRAIN_FRACTION) -> tuple[list, list]:
    # 1.5 put every token in train and none in test, -0.2 cut at -k (stream[:-k]): both silently
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ValueError(f"temporal_split: fraction={fraction!r}; allowed: a number in [0, 1] (the share of each "
                         f"client's tokens that trains; LEAF's {TRAIN_FRACTION})")
    cut = int(np.floor(fraction * len(stream)))
    return stream[:cut], stream[cut:]


def build_vocab(train_streams: list[list], tokens: str, size: int | None) -> list[str]:
    """SPECIALS + the units of the training streams (chars: all, sorted; words: the `size` most
    frequent, ties by first use)."""
    _check_tokens(tokens, "build_vocab")
    if tokens != "char" and size is not None and size < 1:   # -1 silently dropped the last word, 0 kept none
        raise ValueError(f"build_vocab: size={size!r}; allowed: None (every word) or >= 1 words beside the "
                         f"{len(SPECIALS)} specials")
    counts = collections.Counter()
    for s in train_streams:
        counts.update(u for u in s if not isinstance(u, int))
    if tokens == "char":
        kept = sorted(counts)
    else:
        first = {}
        for s in train_streams:
            for u in s:
                if not isinstance(u, int):
                    first.setdefault(u, len(first))
        kept = sorted(counts, key=lambda u: (-counts[u], first[u]))[:size]
    return list(SPECIALS) + kept


def encode(stream: list, vocab: list[str]) -> np.ndarray:
    """Units (str) and special ids (int) -> int32 ids; unknown units -> OOV."""
    index = {u: i for i, u in enumerate(vocab)}
    return np.array([u if isinstance(u, int) else index.get(u, OOV) for u in stream], np.int32)


def decode(ids, vocab: list[str], tokens: str = "char") -> str:
    """ids -> text; specials written as <pad> <bos> <eos> <oov>."""
    _check_tokens(tokens, "decode")
    ids = [int(i) for i in ids]
    bad = [i for i in ids if not 0 <= i < len(vocab)]
    if bad:     # -1 (a "none" marker) read vocab[-1], the last word, silently; len(vocab) an IndexError
        raise ValueError(f"decode: id {bad[0]} is outside the vocabulary; allowed: 0..{len(vocab) - 1}")
    parts = [vocab[i] for i in ids]
    return "".join(parts) if tokens == "char" else " ".join(parts)


def windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """TFF's split_target: windows of T+1 ids with stride T, the last padded with PAD; -> (x [n, T],
    y [n, T]), y the next id at every position. A stream of <= 1 id gives no window."""
    # 0 divided by zero, -1 gave no windows, True (an int to isinstance) gave windows of one token
    if not isinstance(seq_len, (int, np.integer)) or isinstance(seq_len, (bool, np.bool_)) or seq_len < 1:
        raise ValueError(f"windows: seq_len={seq_len!r}; allowed: an integer >= 1 (tokens per sequence)")
    if len(ids) <= 1:
        z = np.zeros((0, seq_len), np.int32)
        return z, z
    n = -(-(len(ids) - 1) // seq_len)
    buf = np.full(n * seq_len + 1, PAD, np.int32)
    buf[:len(ids)] = ids
    starts = np.arange(n) * seq_len
    w = buf[starts[:, None] + np.arange(seq_len + 1)[None, :]]
    return w[:, :-1], w[:, 1:]


def stream_of(speeches: list[str], tokens: str) -> list:
    out = []
    for s in speeches:
        out.append(BOS)
        out.extend(units(s, tokens))
        out.append(EOS)
    return out
