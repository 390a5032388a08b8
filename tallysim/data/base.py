"""The two types every data module shares: the error users see and the in-memory dataset."""
from __future__ import annotations

import math
import sys
import zlib
from dataclasses import dataclass

import numpy as np

from tallysim.config import ConfigError
from tallysim.fields import first_few


class DataError(ConfigError):
    """A user-fixable data problem. Subclasses ConfigError so the CLI prints it as one line and exits 2;
    the message always says what is wrong and what is allowed or how to fix it."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray   # [N, h, w, ch]; uint8 (raw 0..255) for image datasets, float32 for synthetic
    y_train: np.ndarray   # [N] int32
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    # text (data/text.py): the task, the client of each example, the vocabulary and client names
    task: str = "classification"
    clients_train: np.ndarray | None = None   # [N] int32 client id (partition.kind=natural)
    clients_test: np.ndarray | None = None    # [V] int32
    vocab: tuple | None = None
    client_names: tuple | None = None


def digest(*arrays: np.ndarray) -> str:
    """A checksum of a dataset's arrays (their dtypes, shapes and bytes): partition.json records the one a
    run trained on, and `--resume` refuses data that changed since (a data file replaced under the same
    name resumed on the new contents in silence, its first rounds trained on the old). CRC-32, not a
    cryptographic hash: it tells an edit from the same file, at about a GB a second (Fashion-MNIST: 50 ms)."""
    crc = 0
    for a in arrays:
        a = np.ascontiguousarray(a)
        crc = zlib.crc32(f"{a.dtype.str}{a.shape}".encode(), crc)
        crc = zlib.crc32(a.reshape(-1).view(np.uint8), crc)
    return f"crc32:{crc:08x}"


# Datasets tallysim generates from the config (synthetic.generate): their inputs' last bits come from the
# machine's BLAS (synthetic._render's tensordot), so their digest counts the inputs by shape (generated_digest)
GENERATED = ("synthetic",)


def generated_digest(labels: list, inputs: list) -> str:
    """digest of a generated dataset: its labels (integers, exact from numpy's seeded generator) and its
    inputs' shapes and dtypes, not their floats. Those are a function of the config, which `--resume`
    already compares; their bytes are not the same on every machine (OpenBLAS picks its sgemm kernel by
    CPU, and the kernels sum in other orders), so a run resumed on another machine (a preempted job
    rescheduled elsewhere) was refused as "data changed", with advice to restore a file it never read.
    "gen-crc32:" so that check_same_data does not compare it with a digest of another kind."""
    shapes = [np.asarray([*x.shape, np.dtype(x.dtype).itemsize], np.int64) for x in inputs]
    return "gen-" + digest(*labels, *shapes)


def digest_kind(d: str) -> str:
    """The kind of a recorded digest ("crc32", "gen-crc32"): two digests compare only within one kind."""
    return d.split(":", 1)[0]


F32_MAX = float(np.finfo(np.float32).max)


def _pixels(x: np.ndarray, split: str, where: str) -> np.ndarray:
    """The stored example array the simulator reads (sim/fed.py `to_input`): uint8 image bytes, which it
    scales to [-1, 1], or floating point, used as given. An integer array other than uint8 holding
    bytes (int64 0..255, as np.array of a list gives) becomes uint8, so it is scaled as the same
    pixels saved as uint8 are (as raw floats 0..255 it trained to chance); integers outside 0..255
    (16-bit images, signed pixels) are refused: as floats up to 65535 the first round's loss is NaN.
    Floats beyond float32's range would become infinities on the device."""
    if np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{split} images{where} are {x.dtype} integers in {lo}..{hi}; integer pixels are "
                            "read as bytes (0..255, scaled to [-1, 1]); allowed: integers in 0..255, or a "
                            f"floating-point array scaled as you mean it (e.g. x / {hi} for {x.dtype} images)")
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating) and x.dtype.itemsize > 4 and np.abs(x).max() > F32_MAX:
        raise DataError(f"{split} images{where} hold values up to {np.abs(x).max():.3g}, beyond float32's "
                        f"{F32_MAX:.3g} (the device computes in float32); allowed: finite float32 values "
                        "(scale the images, e.g. to [0, 1])")
    return x


# Floating-point examples are used as given (sim/fed.py `to_input` scales only uint8 bytes). Magnitudes
# beyond this overflow a model's first layers within a round or two (1e36 pixels: NaN in round 1; raw
# 16-bit intensities up to 65535: NaN too); raw 0..255 bytes as floats, standardised or [0, 1] data
# stay well below it.
HUGE = 1e4


def _refuse_non_finite(x: np.ndarray, split: str, where: str) -> None:
    """NaN or infinite example values: every loss they touch is NaN, and the run stopped rounds later with
    a "loss is not finite" that named no example."""
    bad = ~np.isfinite(x)
    if bad.any():
        flat = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
        raise DataError(f"{split} images{where} hold {int(bad.sum()):,} NaN or infinite value(s) in {len(flat):,} "
                        f"example(s), the first in example {int(flat[0])}; allowed: finite numbers (drop or "
                        "repair those examples)")


def _warn_huge(x: np.ndarray, split: str, where: str) -> None:
    """Finite floats of huge magnitude (1e36) trained to NaN without a word on why; warned, not refused:
    they are the user's numbers, and a model may still cope with a large but deliberate scale."""
    if not np.issubdtype(x.dtype, np.floating) or x.size == 0:
        return
    big = max(float(x.max()), -float(x.min()))      # no |x| copy of a large dataset for the common case
    if big > HUGE:
        first = int(np.flatnonzero((np.abs(x) > HUGE).reshape(len(x), -1).any(axis=1))[0])
        print(f"tallysim: warning: {split} images{where} hold values up to {big:.3g} (first above {HUGE:,g} in "
              f"example {first}); floating-point examples are used as given, and magnitudes this large "
              "usually drive the loss to NaN within a few rounds; scale them (e.g. to [0, 1] or to mean 0, "
              "std 1)", file=sys.stderr)


def _refuse_untrained_test_labels(y_train: np.ndarray, y_test: np.ndarray, where: str) -> None:
    """Without a declared num_classes the classes are the labels seen; a test label no training example
    has made a class no peer ever trains on (its test examples always wrong, the accuracy capped below 1)
    and no word said: above every training label, or in a gap below it (IDX training labels all 200 with
    test labels 0..9 ran to accuracy 0.0). A dataset that means it declares num_classes (an .npz's)."""
    top = int(y_train.max())
    trained = np.bincount(y_train, minlength=top + 1) > 0
    beyond = (y_test > top) | ~trained[np.minimum(y_test, top)]
    if not beyond.any():
        return
    first = int(np.flatnonzero(beyond)[0])
    declare = ("a num_classes saved in the .npz that covers them (a class the training split lacks, kept on "
               "purpose; IDX files cannot declare one: save the four arrays and num_classes in an .npz)")
    if trained.all():           # every label up to the top is trained: the untrained ones lie above it
        raise DataError(f"test labels{where} reach {int(y_test.max())} (first in test example {first}, label "
                        f"{int(y_test[first])}), beyond the training labels 0..{top}: {int(beyond.sum()):,} test "
                        f"example(s) of classes no peer trains on; allowed: test labels in 0..{top}, or {declare}")
    missing = np.unique(y_test[beyond])
    seen = np.flatnonzero(trained)
    def some(a):
        return first_few([int(c) for c in a], 5, ", ...")
    raise DataError(f"test labels{where} include {len(missing):,} class(es) no training example has ({some(missing)}; "
                    f"first in test example {first}, label {int(y_test[first])}); the training labels are "
                    f"{len(seen):,} class(es): {some(seen)}: {int(beyond.sum()):,} test example(s) of classes no "
                    f"peer trains on; allowed: test labels the training split has, or {declare}")


def checked(name: str, x_train, y_train, x_test, y_test, num_classes=None, where: str = "") -> Dataset:
    """Normalise layouts (channel axis, int32 labels) and reject inconsistent arrays early, so that a bad
    file fails here with its path rather than as a shape error deep inside a jitted step."""
    where = f" in {where}" if where else ""
    xs, ys = [], []
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{split} images{where} have dtype {x.dtype}; allowed: integer (e.g. uint8 "
                            "pixels) or floating-point arrays")
        if not 2 <= x.ndim <= 5:
            raise DataError(f"{split} images{where} have shape {x.shape}; allowed: [N, D], [N, h, w] or "
                            "[N, h, w, ch]")
        if x.ndim == 3:                      # [N, h, w] grey images -> add the channel axis models expect
            x = x[..., None]
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
            raise DataError(f"{split} labels{where} have shape {y.shape}; allowed: [N] integer class ids "
                            "(not one-hot)")
        y = y.reshape(-1)
        if len(y) == 0:
            raise DataError(f"the {split} split{where} has no examples; a dataset needs at least one "
                            "training and one test example")
        if math.prod(x.shape[1:]) == 0:          # a model of no inputs divides by zero at init
            raise DataError(f"{split} images{where} have shape {x.shape}, no values per example; allowed: "
                            "at least one value per example")
        if np.issubdtype(x.dtype, np.floating):
            _refuse_non_finite(x, split, where)
        if len(x) != len(y):
            raise DataError(f"{split} images and labels disagree{where}: {len(x)} images vs {len(y)} "
                            "labels; each image needs exactly one label")
        x = _pixels(x, split, where)      # after the count: its min/max of no images was a numpy traceback
        numeric = y.dtype != bool and (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating))
        if not numeric:     # strings or objects: their min() was a numpy traceback inside this very message
            first = y[0].item() if hasattr(y[0], "item") else y[0]
            raise DataError(f"{split} labels{where} must be non-negative integers 0..C-1 (got dtype {y.dtype}, "
                            f"first label {first!r}); allowed: integer class ids (class names/strings numbered "
                            "0..C-1 first)")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= 2**31 - 1:
            raise DataError(f"{split} labels{where} must be non-negative integers 0..C-1 "
                            f"(got dtype {y.dtype}, min {y.min()}, max {y.max()})")
        xs.append(x)
        ys.append(y.astype(np.int32))
    if (xs[0].dtype == np.uint8) != (xs[1].dtype == np.uint8):   # one split scaled, the other not
        raise DataError(f"train images are {xs[0].dtype} and test images {xs[1].dtype}{where}: integer pixels are "
                        "scaled from 0..255 to [-1, 1] and floating-point ones used as given, so the model would "
                        "be tested on other numbers than it trained on; allowed: both splits integer pixels "
                        "in 0..255, or both floating-point")
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise DataError(f"train and test images have different shapes{where}: {xs[0].shape[1:]} vs "
                        f"{xs[1].shape[1:]}; both splits must share one example shape")
    seen = max((int(y.max()) + 1 for y in ys if len(y)), default=0)
    declared = num_classes is not None
    num_classes = seen if num_classes is None else int(num_classes)
    for split, y in (("train", ys[0]), ("test", ys[1])):
        if int(y.max()) >= num_classes:
            raise DataError(f"{split} labels{where} reach {int(y.max())} but num_classes={num_classes}; "
                            f"allowed: labels in 0..{num_classes - 1}")
    from tallysim.sizing import LIMITS
    most = LIMITS["data.num_classes"][0]
    if num_classes > most:        # the one-hot layers and the host's per-class loops: a hang, not a run
        raise DataError(f"dataset{where} has {num_classes:,} classes (labels reach {seen - 1:,}"
                        f"{', num_classes given' if num_classes > seen else ''}); allowed: at most {most:,} "
                        "classes, labels 0..C-1 (renumber sparse class ids to 0..C-1)")
    if not declared:    # after the class limit: it counts the training labels per class (labels of 2e9: 16 GB)
        _refuse_untrained_test_labels(ys[0], ys[1], where)
    for split, x in (("train", xs[0]), ("test", xs[1])):
        _warn_huge(x, split, where)
    if num_classes < 2:
        raise DataError(f"dataset{where} has {num_classes} class(es); a classification task needs >= 2")
    return Dataset(name, xs[0], ys[0], xs[1], ys[1], num_classes)
