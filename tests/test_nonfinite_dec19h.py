"""A run stopped on a non-finite loss names its peers with model.groups and says which model is not finite
under client_storage=auto (leftovers23): `nonfinite_peers` read only parameters stacked [Z, P, ...] and
returned None for a group's tuple of trees and for a run holding no client model, so the stop named no
peer there. Arrays made by hand: what the stop reads, without training anything to diverge."""
from types import SimpleNamespace

import jax.numpy as jnp

from tallysim import nonfinite_stop
from tallysim.sim import peers


def _tree(z, p, bad=()):
    """An MLP-like tree [Z, P, ...] with NaN at (lane, peer) for each of `bad`."""
    t = {"w": jnp.ones((z, p, 3, 2)), "b": jnp.zeros((z, p, 2))}
    for lane, peer in bad:
        t["w"] = t["w"].at[lane, peer, 1, 0].set(jnp.nan)
    return t


def _ctx(n, groups=(), cohort=False, protocol="fedavg"):
    return SimpleNamespace(spec=SimpleNamespace(peers=n), cohort=cohort,
                           cfg=SimpleNamespace(protocol=SimpleNamespace(name=protocol)),
                           model_groups=tuple(SimpleNamespace(name=g, lo=lo, hi=hi) for g, lo, hi in groups))


def test_groups_name_the_peer_and_its_group():
    # model.groups=phone:3:...;server:2:...: one tree per group, [Z, peers of the group, ...]
    params = (_tree(2, 3), _tree(2, 2, bad=[(1, 1)]))
    assert peers.nonfinite_peers(params, 1, 5, ((0, 3), (3, 5))) == [4]        # the server group's 2nd peer
    assert peers.nonfinite_peers(params, 0, 5, ((0, 3), (3, 5))) == []
    assert peers.nonfinite_peers(params, 1, 5) is None                         # not read as one stacked tree
    state = SimpleNamespace(params=params, server=None)
    ctx = _ctx(5, [("phone", 0, 3), ("server", 3, 5)])
    assert nonfinite_stop.diverged_peers(state, 1, ctx) == "; not finite: the parameters of peer 4 (1 of 5; group server: 1 of 2)"
    two = SimpleNamespace(params=(_tree(1, 3, bad=[(0, 0)]), _tree(1, 2, bad=[(0, 0)])), server=None)
    assert nonfinite_stop.diverged_peers(two, 0, ctx) == ("; not finite: the parameters of peers 0, 3 (2 of 5; group phone: "
                                                "1 of 3; group server: 1 of 2)")
    assert nonfinite_stop.diverged_peers(state, 0, ctx) == ""                          # none to name: nothing said


def test_a_server_model_alone_says_whether_it_is_finite():
    # client_storage=auto: no client model outlives its round (params None), the server's [Z, ...]
    server = {"w": jnp.ones((2, 3, 2)).at[1, 0, 0].set(jnp.inf), "b": jnp.zeros((2, 2))}
    assert peers.nonfinite_model(server, 1) is True and peers.nonfinite_model(server, 0) is False
    assert peers.nonfinite_model(None, 0) is None
    ctx = _ctx(4, cohort=True)
    auto = SimpleNamespace(params=None, server=server)
    assert nonfinite_stop.diverged_peers(auto, 1, ctx) == ("; not finite: the server model's parameters (client_storage=auto "
                                                 "keeps no client's model)")
    assert nonfinite_stop.diverged_peers(auto, 0, ctx).startswith("; the server model's parameters are finite (client_storage=auto")
    ctx = _ctx(4)
    # stacked peers with a server (FedAvg): the peers first; the server only where no peer is to blame
    stacked = SimpleNamespace(params=_tree(2, 4), server=server)
    assert nonfinite_stop.diverged_peers(stacked, 1, ctx) == "; not finite: the server model's parameters (every peer's are finite)"
    assert nonfinite_stop.diverged_peers(stacked, 0, ctx) == ""
    # nothing to read (a plugin's state): said, with why (test_leftovers_dec20a: it said nothing)
    assert nonfinite_stop.diverged_peers(SimpleNamespace(params=None, server=None), 0, ctx) == (
        "; no model can be named: protocol fedavg's state holds no parameters per peer, and it holds no server model")
