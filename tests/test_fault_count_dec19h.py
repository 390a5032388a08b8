"""faults.fraction read one way (leftovers23): the run counts floor(fraction * P) with the fraction as
the decimal written (sim/faults.count), validation's "no faulty peer" warning read the float product, and
the robust rules' checks had their own copy of the exact reading. Now all three call
config_shapes.faulty_peers. Where the float product falls below the integer (0.7 x 90 = 62.999...) or
reaches it while the decimal does not (0.3333333333333333 x 3 = 1.0 in floats, 0.9999999999999999 as
written), the readings differed: a third of 3 peers ran with no faulty peer and no warning."""
from conftest import tiny
from tallysim import robust_checks, validation
from tallysim.config_shapes import faulty_peers
from tallysim.sim import faults


def _cfg(fraction, peers, kind="label_flip", *more):
    return tiny("protocol.name=fedavg", f"peers={peers}", f"faults.kind={kind}", f"faults.fraction={fraction}", *more)


def test_the_fraction_is_read_as_written_everywhere():
    # the brief's 0.3 x 10, 0.7 x 10, 0.1 x 30 agree in floats too (3.0, 7.0, 3.0000000000000004); these
    # do not: the float product below the integer
    for fraction, peers, want in [(0.3, 10, 3), (0.7, 10, 7), (0.1, 30, 3), (0.7, 90, 63), (0.58, 50, 29),
                                  (0.29, 100, 29), (0.57, 100, 57)]:
        cfg = _cfg(fraction, peers)
        assert faulty_peers(cfg) == faults.count(cfg, peers) == want, (fraction, peers)
        assert robust_checks.counts(cfg)[2] == min(want, robust_checks.counts(cfg)[1])
    assert int(0.7 * 90) == 62 and int(0.29 * 100) == 28          # what the float product gave


def test_validation_warns_where_the_run_has_no_faulty_peer():
    third = _cfg(1 / 3, 3)          # 0.3333333333333333: 1.0 as a float product, 0.99... as written
    assert 1 / 3 * 3 == 1.0 and faults.count(third, 3) == 0 and not faults.enabled(third, 3)
    assert any("is no faulty peer" in w for w in validation.warnings(third)), validation.warnings(third)
    assert not any("is no faulty peer" in w for w in validation.warnings(_cfg(0.34, 3)))
