"""The near key of a refused config key: "; did you mean peers?" for a typo in a field, its section or both
(`peer`, `optim.lrr`, `optm.lr`, `lr`, `PEERS`), a section named bare (`partition=iid`: its fields), a config
file's own key given as a field (`plugins=a,b`), a field named inside a longer name (`num_peers`), else
where the fields are listed. Pure text over the keys it is given (schema.suggest gives every declared one);
split from schema.py.
"""
from __future__ import annotations

import difflib

# A config file's keys that are not fields (config_files.py, config.from_dict, sweep_section.py), with how
# each is written.
FILE_KEYS = {"plugins": '"plugins": ["my_protocols"], or --plugin MODULE', "extends": '"extends": "base.json"',
             "smoke": '"smoke": {fields}, applied by --smoke', "sweep": '"sweep": {"field": [values]}',
             "derived": "written by a run into its config.json"}


def near_key(key: str, keys: list, where: str = "") -> str:
    """"; did you mean ...?" for `key` among `keys` (every dotted field key), or what is allowed instead.
    `where`: " in FILE", said before it."""
    sections = sorted({k.rsplit(".", 1)[0] for k in keys if "." in k})
    if key in FILE_KEYS:      # `plugins=a,b`, a sweep axis "extends": "unknown config key", as if a typo
        return (f"{where}; {key} is a config file's own key, not a field: it goes at the top of a config file "
                f"({FILE_KEYS[key]}), never in a key=value item, a sweep axis or a section")
    if key in sections:       # `partition=iid`: a section takes its fields, named one by one
        fields_of = [k for k in keys if k.rsplit(".", 1)[0] == key]
        if len(fields_of) == 1:
            return f"{where}; did you mean {fields_of[0]}?"
        return f"{where}; {key} is a section: set its fields one by one, e.g. {fields_of[0]}=...; its fields: " \
               f"{', '.join(fields_of)}"
    last = key.rsplit(".", 1)[-1]
    near = [k for k in keys if k.lower() == key.lower()]              # `PEERS`, `Optim.LR`: no suggestion was made
    near += [k for k in keys if k.rsplit(".", 1)[-1] == last]         # the field, in another section
    near += difflib.get_close_matches(key, keys + sections, n=3, cutoff=0.75)
    if "." in key:            # a typo in the section, the field or both: match each part
        head, _, tail = key.rpartition(".")
        for s in difflib.get_close_matches(head, sections, n=2, cutoff=0.6) + [head]:
            fields_of = [k.rsplit(".", 1)[-1] for k in keys if k.rsplit(".", 1)[0] == s]
            near += [f"{s}.{f}" for f in difflib.get_close_matches(tail, fields_of, n=2, cutoff=0.6)]
    near = list(dict.fromkeys(n for n in near if n != key))[:4]
    if not near:              # nothing close: a field named inside a longer name (`num_peers`, `dirichlet_alpha`)
        words = set(key.lower().replace(".", "_").replace("-", "_").split("_"))
        near = sorted((k for k in keys if k.rsplit(".", 1)[-1] in words),
                      key=lambda k: k.split(".")[0] not in words)[:4]
    if near:
        return f"{where}; did you mean {' or '.join(near)}?"
    head = key.rpartition(".")[0]
    if head in sections:      # `optim.learning_rate`: the section's own fields are what is allowed
        return f"{where}; allowed in {head}: {', '.join(k[len(head) + 1:] for k in keys if k.rsplit('.', 1)[0] == head)}"
    return f"{where}; see docs/config.md or tallysim run --help"
