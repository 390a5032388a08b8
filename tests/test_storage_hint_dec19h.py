"""storage_notes.storage_hint sizes the top-level model (models_bytes), not model.groups' own (estimate2 found
it). It never meets a grouped run (leftovers23): the hint is for a protocol whose clients keep nothing
between rounds, and every protocol that takes groups keeps each client's own model, so it returns before
reading a model. Pinned here: a stateless protocol joining the groups must make the hint size each group."""
import pytest

from conftest import tiny
from tallysim import model_groups, protocols, storage_notes, validation
from tallysim.config import ConfigError

GROUPS = "model.groups=a:2:mlp,width=16;b:2:mlp,width=64"


def test_no_protocol_that_takes_groups_is_stateless():
    stateless = [n for n in protocols.names() if not protocols.traits(n).client_state]
    assert stateless and not set(stateless) & set(model_groups.GROUP_PROTOCOLS), stateless
    for name in model_groups.GROUP_PROTOCOLS:        # so the hint returns before models_bytes
        assert storage_notes.storage_hint(tiny(f"protocol.name={name}", GROUPS, "participation=0.5")) is None, name
    with pytest.raises(ConfigError, match="does not work with model.groups"):   # and the stateless are refused
        validation.validate(tiny("protocol.name=fedavg", GROUPS))
