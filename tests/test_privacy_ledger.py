"""The privacy ledger's cost and its resume: a round's event is turned into RDP orders (or a PLD) once,
not once per round (dp-accounting spends 0.3 s on one sampled Gaussian's RDP and 0.2 to 1.4 s building
a Gaussian's PLD, so 1,000 rounds spent minutes to hours in accounting), the epsilons stay dp-accounting's
own accountant stepped round by round, bit for bit, and a resumed ledger reports what the uninterrupted
one does, bit for bit."""
import dp_accounting as dpa
import pytest
from dp_accounting import pld as dpa_pld
from dp_accounting import rdp as dpa_rdp

from tallysim import privacy

REPLACE_ONE = dpa.NeighboringRelation.REPLACE_ONE

# (name, ledger factory, the dp-accounting accountant the ledger composes with, its one-round event)
CASES = {
    "rdp sampled": (lambda: privacy.PrivacyLedger(0.8, 40, 10, 1e-5),
                    lambda: dpa_rdp.RdpAccountant(neighboring_relation=REPLACE_ONE),
                    privacy.round_event(0.8, 40, 10), 1),
    "rdp full": (lambda: privacy.PrivacyLedger(0.8, 10, 10, 1e-5),
                 lambda: dpa_rdp.RdpAccountant(neighboring_relation=REPLACE_ONE),
                 privacy.round_event(0.8, 10, 10), 1),
    # privacy.py: z is already per replace-one sensitivity, so the PLD is read under ADD_OR_REMOVE_ONE
    "pld": (lambda: privacy.PrivacyLedger(2.0, 10, 10, 1e-5, "pld"),
            lambda: dpa_pld.PLDAccountant(neighboring_relation=dpa.NeighboringRelation.ADD_OR_REMOVE_ONE),
            dpa.GaussianDpEvent(2.0), 1),
    "xor": (lambda: privacy.XorLedger(0.3, 16, 3, 1e-5),
            lambda: dpa_rdp.RdpAccountant(neighboring_relation=REPLACE_ONE),
            privacy.xor_event(0.3, 16), 3),
}
ROUNDS = 7


@pytest.mark.parametrize("name", list(CASES))
def test_epsilon_is_dp_accountings_accountant_stepped_round_by_round_bit_for_bit(name):
    """What the ledger did before it cached the event (one compose per round, or per exchange for
    fedct's XOR every `period` rounds), with dp-accounting itself: equal, not approximately."""
    make, accountant, event, period = CASES[name]
    led, acc, got, want = make(), accountant(), [], []
    for r in range(1, ROUNDS + 1):
        led.step()
        if r % period == 0:
            acc.compose(event)
        got.append(led.epsilon())
        if r < period:
            want.append(0.0)                  # no exchange yet
        elif name == "xor":                   # never above the pure bound (privacy.XorLedger.epsilon)
            want.append(min(acc.get_epsilon(1e-5), privacy.xor_pure_epsilon(0.3, 16, r // period)))
        else:
            want.append(acc.get_epsilon(1e-5))
    assert got == want


@pytest.mark.parametrize("name", list(CASES))
def test_a_resumed_ledger_reports_the_uninterrupted_epsilon_bit_for_bit(name):
    """run.py restores a ledger from its round count (Ledger.restore: step(rounds) at once); the
    epsilon after resuming must be the uninterrupted run's. Before, PLD composed the restored rounds as
    one Gaussian of std z / sqrt(n) (dp-accounting's count) while the run composes them one at a time."""
    make = CASES[name][0]
    uninterrupted = make()
    for _ in range(ROUNDS):
        uninterrupted.step()
    half = make()
    half.step(4)
    resumed = make()
    resumed.step(half.state()["rounds"])          # Ledger.restore's call
    resumed.step(ROUNDS - 4)                      # then round by round
    assert resumed.epsilon() == uninterrupted.epsilon()
    again = type(uninterrupted).restore(uninterrupted.state(), *_args(name))
    assert again.epsilon() == uninterrupted.epsilon()


def _args(name):
    return {"rdp sampled": (0.8, 40, 10, 1e-5), "rdp full": (0.8, 10, 10, 1e-5),
            "pld": (2.0, 10, 10, 1e-5, "pld"), "xor": (0.3, 16, 3, 1e-5)}[name]


def test_a_rounds_event_is_converted_once_for_every_round_and_ledger(monkeypatch):
    """The expensive conversions (sampled Gaussian -> RDP orders, randomised response -> RDP orders,
    Gaussian -> PLD) run once per distinct event, however many rounds and however many ledgers (a
    run's seeds each keep one), so 1,000 rounds do not cost 1,000 conversions."""
    calls = {"wor": 0, "rr": 0, "pld": 0}

    def counting(key, fn):
        def wrapped(*a, **kw):
            calls[key] += 1
            return fn(*a, **kw)
        return wrapped
    from dp_accounting.pld import privacy_loss_distribution as pld_mod
    from dp_accounting.rdp import rdp_privacy_accountant as rdp_mod
    monkeypatch.setattr(rdp_mod, "_compute_rdp_sample_wor_gaussian",
                        counting("wor", rdp_mod._compute_rdp_sample_wor_gaussian))
    monkeypatch.setattr(rdp_mod, "_compute_randomized_response_rdp",
                        counting("rr", rdp_mod._compute_randomized_response_rdp))
    monkeypatch.setattr(pld_mod, "from_gaussian_mechanism", counting("pld", pld_mod.from_gaussian_mechanism))
    privacy.clear_caches()
    ledgers = [privacy.PrivacyLedger(1.3, 50, 5, 1e-5) for _ in range(3)]
    ledgers += [privacy.XorLedger(0.2, 8, 2, 1e-5) for _ in range(3)]
    ledgers += [privacy.PrivacyLedger(3.0, 5, 5, 1e-5, "pld") for _ in range(3)]
    for _ in range(20):
        for led in ledgers:
            led.step()
    eps = [led.epsilon() for led in ledgers]
    assert calls == {"wor": 1, "rr": 1, "pld": 1}
    assert eps[0] == eps[1] == eps[2] > 0 and eps[3] == eps[5] > 0 and eps[6] == eps[8] > 0


def test_a_crashed_and_resumed_private_run_writes_the_uninterrupted_epsilons(tmp_path, monkeypatch):
    """The same through run.py: a PLD-accounted tally run killed after round 3's row and resumed from
    its round-2 checkpoint writes every row of the uninterrupted run, epsilon included, bit for bit
    (it failed before the ledger restored its rounds one at a time)."""
    from conftest import tiny
    from test_resume import crash_then_resume
    cfg = tiny("protocol.name=tally", "rounds=5", "eval_every=1", "privacy.noise=20", "privacy.accountant=pld")
    ref, resumed = crash_then_resume(cfg, tmp_path, monkeypatch)
    assert [r["epsilon"] for r in resumed] == [r["epsilon"] for r in ref] and ref[-1]["epsilon"] > 0
    assert resumed == ref
