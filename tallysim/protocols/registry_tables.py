"""The protocol registry's tables (split from protocols/__init__.py, whose functions read and change them
in place and which imports them under their old names): the built-in protocols and the names newcomers
type for them, the plugins registered and loaded by name, the entry points skipped, and the counters and
memo config's caches watch. Below the registry, importing nothing of it."""
from __future__ import annotations


# Names a newcomer may type for a built-in (lower case, without "-" and "_"): the papers' names of the
# method a protocol implements (docs/running-protocols.md), offered as "did you mean ...?" when refused.
ALIASES = {"tallytrain": "tally", "fedmd": "softlabel", "dsfl": "softlabel", "qsgd": "fedpaq"}

REGISTRY = {                       # name -> "module:factory"; this order is the order users see
    "local": "local_only:make",
    "fedavg": "fedavg:make",
    "fedprox": "fedavg:make_fedprox",
    "feddf": "feddf:make",
    "softlabel": "softlabel:make",
    "tally": "tally:make",
    "bridge": "bridge:make",
    "fedavgm": "fedavgm:make",
    "fedadam": "fedadam:make",
    "fedyogi": "fedyogi:make",
    "topk_ef": "topk_ef:make",
    "randk": "randk:make",
    "fedpaq": "fedpaq:make",
    "signsgd": "signsgd:make",
    "scaffold": "scaffold:make",
    "fednova": "fednova:make",
    "cfd": "cfd:make",
    "selective_fd": "selective_fd:make",
    "fedct": "fedct:make",
    "topk_soft": "topk_soft:make",
}
ENTRY_POINTS = "tallysim.protocols"

# Plugins: name -> "absolute.module:factory", and which module of those was loaded by name
# (--plugin / "plugins"; an entry point's is found again without being recorded).
EXTERNAL: dict[str, str] = {}
LOADED: dict[str, str] = {}          # protocol name -> the plugin module config.json must name
GENERATION = [0]                     # bumped when plugins add protocols (config's declarations cache)
ENTRY_POINTS_READ = [False]
# Entry points are read once tallysim.config has finished importing (it calls `ready`): an entry-point
# module imports tallysim's protocol code, which imports config, so reading them while config's own
# module-level constants are computed would import config half-initialised. Until then the names are
# the built-ins' and the plugins loaded by name.
READY = [False]
# Entry points that cannot be used (their module fails to import, a name already taken, a malformed
# value): name -> the one-line reason. An installed package's broken entry point must not stop runs of
# the built-ins or of other plugins, so it is reported once on stderr and skipped; naming it fails.
BROKEN: dict[str, str] = {}
FROM_ENTRY_POINT: set = set()
# _usable()'s last (registry state, names, sections): Config.__getattr__ asks sections() at every field read
USABLE = [None, (), {}]
# Names a plugin's section may not take: the Config's own fields and sections, and the top-level keys
# a config file may hold besides them (schema.py adds the fields through `ready`).
RESERVED = {"plugins", "derived", "extends", "smoke", "sweep", "description", "resumed", "placement", "code"}
