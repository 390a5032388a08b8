"""storage_notes' run notes at the edges of `participation`: fed.build's A = max(1, round(participation * P)),
so a participation just below 1 can still make every peer active (no cohort is drawn)."""
from tallysim import config, sizing, storage_notes


def cfg_of(items):
    return config.apply_overrides(config.Config(), items)


def test_no_storage_note_when_rounding_makes_every_peer_active():
    # participation 0.9996 of 1,000 peers: A = round(999.6) = 1,000, every peer every round; stacked
    # holds 1,000 models and auto would hold 1,001: the note would advise a change that costs more
    items = ["protocol.name=fedavg", "peers=1000", "participation=0.9996", "model.width=400"]
    assert sizing.active_peers(cfg_of(items)) == 1000
    stacked, cohort = sizing.models_bytes(cfg_of(items))
    assert stacked >= storage_notes.HINT_BYTES and cohort > stacked
    assert storage_notes.storage_hint(cfg_of(items)) is None
    assert storage_notes.storage_hint(cfg_of(items[:2] + ["participation=0.5", items[3]]))      # a real cohort



def test_the_per_client_records_estimate_is_what_a_build_holds():
    """estimate_bytes is a lower bound (validation refuses only what cannot fit): its per-client partition
    records are what the build keeps per seed, int32 [P, C] class counts (partition.json) and the
    device's int32 offset and count and bool faulty flag per client, not 8 bytes a number."""
    from conftest import tiny
    from tallysim import build
    cfg = tiny("peers=40", "seeds=2", "partition.kind=population", "partition.mean_size=3",
               "partition.reuse=true")
    b = build.build(cfg)
    held = (sum(c.nbytes for c in b.class_counts)
            + sum(a.nbytes for a in (b.fed.offset_P, b.fed.count_P, b.fed.faulty_P)))
    records = dict((what, n) for what, n, _ in sizing.estimate_bytes(cfg))["the per-client partition records"]
    assert records == held
