"""tallysim data layer: datasets (synthetic, local files, prepared tfds caches), peer partitions and
the probe-pool split. Importing this package never imports TensorFlow; only `prepare` uses tfds."""
from .base import GENERATED, Dataset, DataError, digest, digest_kind, generated_digest
from .cache import cache_dir
from .loading import load
from .partition import class_counts, natural_clients, partition, split_probe_pool
from .population import Ragged, ragged
from .prepare import prepare

__all__ = ["DataError", "Dataset", "GENERATED", "digest", "digest_kind", "generated_digest", "cache_dir", "load", "prepare", "partition", "natural_clients", "class_counts",
           "split_probe_pool", "Ragged", "ragged"]
