"""The privacy ledger: epsilon at `privacy.delta`, cumulative over rounds, beside the bits ledger.

Unit protected: **one peer** (user-level privacy). Neighbouring runs differ in one peer's whole
dataset replaced by anything (dp-accounting's REPLACE_ONE), the relation under which fixed-size
participation sampling (A of P peers per round, what tallysim draws) has a tight RDP bound
(SampledWithoutReplacementDpEvent, Wang, Balle and Kasiviswanathan 2019). Per round, by mechanism
(sim/dp.py), as a Gaussian mechanism of noise multiplier z (std / L2 sensitivity):
- `votes` (GNMax on M probes): replacing a peer moves one count down and one up on each probe, L2
  sensitivity sqrt(2 M) over the round's histograms: z = sigma / sqrt(2 M). Confident-GNMax's threshold
  check adds max-count noise sigma1 with sensitivity sqrt(M); both Gaussian, so they compose into one
  with 1/z^2 = 2M/sigma^2 + M/sigma1^2. This is the data-independent bound: every probe is paid for,
  answered or not (Papernot et al. 2018's smaller data-dependent bound is not computed).
- `sum` (clipped soft labels): clip S, noise z S. Each message is non-negative (probabilities, scaled
  down), so replacing one message a by another b moves the sum by ||a - b|| <= sqrt(||a||^2 + ||b||^2)
  <= sqrt(2) S (a.b >= 0), reached by two messages of norm S on disjoint classes: z_event = z / sqrt(2).
- `params` (DP-FedAvg, McMahan et al. 2018: clipped model updates, of either sign): replacing one
  moves the sum by up to 2 S (u and -u): z_event = z / 2.
- `xor` (fedct's XOR mechanism, protocols/fedct.py): not Gaussian. Each bit of a peer's one-hot votes
  [M, C] is flipped with q = 1 / (1 + e^theta) (`fedct.xor_epsilon` = theta): binary randomised response,
  e^theta-DP per bit. Replacing a peer changes at most 2 bits per row, 2M in all, so one exchange is the
  composition of 2M randomised responses (pure epsilon 2 M theta; at delta > 0 less), composed once per
  exchange round (every `fedct.period` rounds) with the RDP accountant under REPLACE_ONE (dp-accounting
  accounts randomised response under replacement only; its PLD accountant does not compose it, and
  its RDP accountant has no sampling for it: every exchange is charged in full, participation or not).
The accountant is Google's dp-accounting (RDP by default; PLD, tighter, only when every peer takes part
in every round: dp-accounting's PLD accountant has no fixed-size sampling). A round's RDP orders are
dp-accounting's, converted once per event (not once per round: `_event_rdp`), and composed round by
round as its RDP accountant's compose() does (orders added), so those epsilons are its accountant's bit
for bit (tests/test_privacy_ledger.py). Under `pld` the rounds are Gaussians without sampling, whose
composition is exactly one Gaussian: its epsilon is read from that Gaussian's hockey-stick divergence in
closed form (`composed_gaussian_epsilon`), the exact value that dp-accounting's discretised PLD
accountant bounds from above (1e-9 to 6e-8 below it at 3 to 1,000 rounds; tested against it).
"""
from __future__ import annotations

import contextlib
import functools
import math
import sys
from typing import Optional

ACCOUNTANTS = ("rdp", "pld")
# The smallest positive privacy.noise / threshold_noise (and noise * clip) validation accepts: the noise
# is drawn in float32 on the device, where values below ~1.2e-38 are subnormal or 0 (no noise at all
# while epsilon is reported), and 1 / z^2 overflows float64 in the accountant near z = 1e-154 (RDP then
# reports inf, or 0 under sampling). 1e-30 keeps both far away while any useful noise passes.
MIN_NOISE = 1e-30
# Sensitivity of one round's sum over one peer's replaced message, in units of the clip S (docstring).
SENSITIVITY = {"sum": math.sqrt(2.0), "params": 2.0}


def round_noise_multiplier(mechanism: str, *, sigma: float = 0.0, probes: int = 0, sigma1: float = 0.0,
                           noise_multiplier: float = 0.0) -> float:
    """z of the one Gaussian mechanism a round amounts to, for one peer (0: no privacy)."""
    if mechanism == "votes":
        if sigma <= 0:
            return 0.0
        inv = 2 * probes / sigma ** 2 + (probes / sigma1 ** 2 if sigma1 > 0 else 0.0)
        return 1 / math.sqrt(inv)
    if mechanism in SENSITIVITY:      # clipped soft-label sums, DP-FedAvg's clipped update sum
        return noise_multiplier / SENSITIVITY[mechanism]
    raise ValueError(f"mechanism {mechanism!r}; allowed: votes, sum, params")


def ledger_for(cfg, mechanism: str, probes: int, active: int) -> Optional["PrivacyLedger"]:
    """The privacy ledger of one configuration (None when privacy.noise is 0: nothing is reported)."""
    pv = cfg.privacy
    if mechanism == "xor":
        theta = cfg.fedct.xor_epsilon
        return XorLedger(theta, probes, cfg.fedct.period, pv.delta) if theta > 0 else None
    if pv.noise == 0 or not mechanism:
        return None
    z = round_noise_multiplier(mechanism, sigma=pv.noise, probes=probes, sigma1=pv.threshold_noise,
                               noise_multiplier=pv.noise)
    return PrivacyLedger(z, cfg.peers, active, pv.delta, pv.accountant)


def round_event(z: float, peers: int, active: int):
    import dp_accounting as dpa
    g = dpa.GaussianDpEvent(z)
    return g if active >= peers else dpa.SampledWithoutReplacementDpEvent(peers, active, g)


# A ledger composes the same event every round, so what dp-accounting derives from it is derived once
# per process and event, not once per round and seed: its RDP orders (0.3 s for one sampled Gaussian,
# 24 ms for fedct's randomised responses, measured). Adding these round by round is what dp-accounting's
# RDP accountant does with each compose(event), so those epsilons are its bit for bit
# (tests/test_privacy_ledger.py).


@functools.lru_cache(maxsize=None)
def _event_rdp(event):
    """One event's RDP at dp-accounting's default orders, under REPLACE_ONE (read-only)."""
    import dp_accounting as dpa
    from dp_accounting import rdp
    with _quiet():
        acc = rdp.RdpAccountant(neighboring_relation=dpa.NeighboringRelation.REPLACE_ONE).compose(event)
    out = acc.rdp
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=None)
def _rdp_orders():
    from dp_accounting import rdp
    return rdp.RdpAccountant().orders


# Under `pld` every round is the same Gaussian mechanism of sensitivity 1 and std z, with no sampling
# (validation refuses pld with partial participation), and n such rounds compose *exactly* into one
# Gaussian mechanism of std z / sqrt(n): each round's privacy loss is N(m, 2m), m = 1 / (2 z^2), so n
# rounds' is N(n m, 2 n m), that Gaussian's loss (Dong, Roth and Su 2019: mu-GDP with mu = sqrt(n) / z).
# Its epsilon at delta is therefore read from the exact hockey-stick divergence of that Gaussian
# (Balle and Wang, ICML 2018, Theorem 8):
#     delta(eps) = Phi(mu/2 - eps/mu) - e^eps Phi(-mu/2 - eps/mu),
# which dp-accounting's PLD accountant approximates from above by discretising each round's loss on a
# 1e-4 grid and convolving the grids round by round. That convolution grows with every round (1,000
# rounds at z = 1: 627 to 1,036 s); the closed form costs about a
# millisecond at any round, depends on the round count alone (a resumed run reports the uninterrupted
# run's epsilon by construction), and lowers the epsilons by 1e-9 to 6e-8 relative (z = 1, 3 to 1,000
# rounds; the grid's rounding was the pessimistic slack; docs/privacy.md lists old and new values).
# Written with eps = mu^2/2 + mu t, delta(t) = Phi(-t) - exp(-t^2/2) erfcx((mu + t)/sqrt 2) / 2: no
# exp(eps) to overflow, no difference of huge exponents, at any mu. It is evaluated as A (1 - B/A) in
# logs plus a bound on that difference's rounding error, the root is taken at delta (1 - _PLD_SLACK)
# and rounded up: the reported epsilon's delta is below privacy.delta despite float rounding, and the
# epsilon within 1e-7 of the exact one (tests/test_privacy_ledger.py checks both at 60 digits, from
# z = 1e-30 to 1e6 and delta = 1e-300 to 0.999).
_PLD_SLACK = 1e-9


def _gaussian_log_terms(mu: float, t: float) -> tuple:
    """(ln A, ln B) of delta = A - B at eps = mu^2/2 + mu t: A = Phi(-t), B = e^eps Phi(-mu/2 - eps/mu)."""
    from scipy import special
    log_b = -0.5 * t * t + math.log(0.5 * special.erfcx((mu + t) / math.sqrt(2.0)))
    return float(special.log_ndtr(-t)), log_b


def _gaussian_delta(mu: float, t: float) -> float:
    """delta at eps = mu^2/2 + mu t, plus a bound on its rounding error: A - B loses the digits they
    share when B is close to A (a tiny mu at a tiny delta), so the bound grows with A / delta there."""
    log_a, log_b = _gaussian_log_terms(mu, t)
    a = math.exp(log_a)
    rounding = 8 * sys.float_info.epsilon * (abs(log_a) + abs(log_b) + 1) * a
    return -a * math.expm1(min(log_b - log_a, 0.0)) + rounding


@functools.lru_cache(maxsize=4096)     # (z, rounds, delta): the seeds' ledgers step in lockstep
def composed_gaussian_epsilon(z: float, rounds: int, delta: float) -> float:
    """The epsilon at `delta` of `rounds` Gaussian mechanisms of sensitivity 1 and std z (no sampling):
    the exact value (one Gaussian of std z / sqrt(rounds)), rounded up."""
    from scipy import optimize
    mu = math.sqrt(rounds) / z
    mu = math.nextafter(math.nextafter(mu, math.inf), math.inf)      # sqrt and / round: err upwards
    target = delta * (1 - _PLD_SLACK)
    gap = lambda t: _gaussian_delta(mu, t) - target                   # noqa: E731 - decreasing in t
    t0 = -mu / 2                                                       # eps = 0
    if gap(t0) <= 0:
        return 0.0
    hi = max(t0, 0.0) + 1.0
    while gap(hi) > 0:             # delta(t) <= Phi(-t): t = 40 is enough for any delta > 1e-308
        hi = 2 * hi
    t = optimize.brentq(gap, t0, hi, xtol=1e-15, rtol=1e-15, maxiter=500)     # t0 may be -1e30
    step = 1e-15 * max(1.0, abs(t))
    while gap(t) > 0:              # brentq may stop on either side of the root: take the safe side
        t, step = t + step, 2 * step
    eps = 0.5 * mu * mu + mu * t
    return max(0.0, math.nextafter(math.nextafter(eps, math.inf), math.inf))


def clear_caches() -> None:
    """Forget every derived event and epsilon (tests count the conversions)."""
    _event_rdp.cache_clear()
    composed_gaussian_epsilon.cache_clear()


class PrivacyLedger:
    """Composes one round's event per `step()`; `epsilon()` is the cumulative epsilon at delta."""

    def __init__(self, z: float, peers: int, active: int, delta: float, accountant: str = "rdp"):
        if accountant not in ACCOUNTANTS:
            raise ValueError(f"privacy.accountant={accountant!r}; allowed: {', '.join(ACCOUNTANTS)}")
        if accountant == "pld" and active < peers:
            raise ValueError(f"privacy.accountant=pld needs every peer in every round ({active} of {peers} "
                             "take part); allowed with partial participation: rdp")
        self.z, self.delta, self.rounds = z, delta, 0
        self.event = round_event(z, peers, active) if z > 0 else None
        self.accountant = accountant
        self._rdp = None          # the RDP orders of the rounds so far (rdp); None: none yet

    def step(self, count: int = 1) -> None:
        """`count` rounds, composed one at a time (a resumed ledger, restored with its round count in
        one call, then holds what the uninterrupted one does, bit for bit). Under pld a round is only
        counted: epsilon is a function of the round count (composed_gaussian_epsilon)."""
        if self.event is None or self.accountant == "pld":
            self.rounds += count
            return
        for _ in range(count):
            self.rounds += 1
            self._compose()

    def _compose(self) -> None:
        self._add_rdp(self.event)

    def _add_rdp(self, event) -> None:
        one = _event_rdp(event)
        self._rdp = one.copy() if self._rdp is None else self._rdp + one    # RdpAccountant: += 1 * rdp

    def _epsilon(self) -> float:
        from dp_accounting.rdp import rdp_privacy_accountant
        with _quiet():
            return float(rdp_privacy_accountant.compute_epsilon(_rdp_orders(), self._rdp, self.delta)[0])

    def epsilon(self) -> Optional[float]:
        """inf without noise; 0 before the first round."""
        if self.event is None:
            return math.inf if self.rounds else 0.0
        if self.accountant == "pld":
            return composed_gaussian_epsilon(self.z, self.rounds, self.delta) if self.rounds else 0.0
        if self._rdp is None:
            return 0.0
        return self._epsilon()

    def state(self) -> dict:          # a checkpoint keeps the rounds; the accountant is rebuilt from them
        return {"rounds": self.rounds}

    @classmethod
    def restore(cls, state: dict, *args, **kw) -> "PrivacyLedger":
        led = cls(*args, **kw)
        if state.get("rounds"):
            led.step(state["rounds"])
        return led


def xor_event(theta: float, messages: int):
    """One exchange of fedct's XOR mechanism for one peer: 2 * messages binary randomised responses, each
    keeping its bit with probability e^theta / (1 + e^theta) (dp-accounting's noise parameter p is the
    chance of a uniform bit: the flip probability is p / 2)."""
    import dp_accounting as dpa
    q = 1.0 / (1.0 + math.exp(theta))
    return dpa.SelfComposedDpEvent(dpa.RandomizedResponseDpEvent(2 * q, 2), 2 * messages)


def xor_pure_epsilon(theta: float, messages: int, exchanges: int = 1) -> float:
    """The pure (delta = 0) epsilon of `exchanges` exchanges: 2 M theta each (basic composition)."""
    return 2 * messages * theta * exchanges


class XorLedger(PrivacyLedger):
    """fedct's ledger: rounds are counted, an exchange (rounds period, 2 period, ...) is composed, with
    the RDP accountant (dp-accounting's PLD accountant ignores a randomised response's count)."""

    def __init__(self, theta: float, messages: int, period: int, delta: float):
        self.z, self.delta, self.rounds, self.period = 0.0, delta, 0, period
        self.theta, self.messages = theta, messages
        self.event = xor_event(theta, messages)
        self.accountant = "rdp"
        self._rdp = None

    def _compose(self) -> None:
        if self.rounds % self.period == 0:          # run.py's rounds count from 1; fedct exchanges there
            self._add_rdp(self.event)

    def epsilon(self) -> Optional[float]:
        if self._rdp is None:
            return 0.0
        # never above the pure bound (RDP's conversion can be, at few exchanges)
        return min(self._epsilon(), xor_pure_epsilon(self.theta, self.messages, self.rounds // self.period))


@contextlib.contextmanager
def _quiet():
    """dp-accounting logs an absl warning for every RDP order it cannot evaluate (they are skipped,
    which is right); a run's stderr is for its progress bar."""
    from absl import logging as absl_logging
    before = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(before)
