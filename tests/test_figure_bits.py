"""The figures' per-probe bits under participation < 1: one vote costs L = ceil(log2 C) bits per
probe for each peer that sends it, whatever the fraction of peers that took part."""
import json

import pytest
from conftest import tiny

from tallysim import config
from tallysim.figures import plots


@pytest.mark.parametrize("participation", [1.0, 0.5])
def test_classes_figure_bits_per_probe_is_per_sending_peer(tmp_path, participation):
    P, M = 4, 64
    A = max(1, round(participation * P))
    runs = []
    for C in (4, 10, 100):
        L = {4: 2, 10: 4, 100: 7}[C]
        d = tmp_path / f"c{C}"
        d.mkdir()
        cfg = tiny(f"data.num_classes={C}", f"peers={P}", f"participation={participation}",
                   f"probe.per_round={M}", "protocol.name=tally")
        (d / "config.json").write_text(json.dumps(config.to_dict(cfg)))
        (d / "partition.json").write_text(json.dumps({"class_counts": [[1] * C] * P}))
        rows = [{"round": r, "bits_up": r * A * M * L, "bits_down": r * A * M * L,
                 "bits_per_peer": 2 * r * A * M * L / P, "acc_mean": 0.2 * r, "acc_global": None}
                for r in (1, 2, 3)]
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        runs.append(({"data.num_classes": str(C)}, str(d)))
    plots.classes({"x": "data.num_classes", "target": 0.35}, {"tally": runs}, tmp_path / "fig" / "f", "t")
    table = (tmp_path / "fig" / "f.csv").read_text().splitlines()
    head = table[0].split(",")
    got = {int(r.split(",")[head.index("classes")]): float(r.split(",")[head.index("bits_per_probe_up")])
           for r in table[1:]}
    assert got == {4: 2.0, 10: 4.0, 100: 7.0}
    # bits per peer to the target (0.4 at round 2) stays the ledger's: cumulative up+down / P
    to_target = {int(r.split(",")[head.index("classes")]): float(r.split(",")[head.index("bits_per_peer_to_target")])
                 for r in table[1:]}
    assert to_target == {C: 2 * 2 * A * M * L / P for C, L in ((4, 2), (10, 4), (100, 7))}
