"""privacy.* (and fedct's XOR mechanism) checked against the run before anything loads: noise only where a
protocol's messages take it (its traits' `privacy`), in the settings the accountant is exact for (a clipped
mean or sum, one vote per peer, the star topology, fixed-size sampling for PLD), never on rounds that release
nothing, never too small to draw in float32. Split from config_rules.py, whose check_rules runs `check`;
the ledger itself is privacy.py's.
"""
from __future__ import annotations

from tallysim import protocols
from tallysim.schema import Config, ConfigError


def check(cfg: Config) -> None:
    """privacy.* only where it protects something, and only in settings the accountant is exact for."""
    pv, traits = cfg.privacy, protocols.traits(cfg.protocol.name)
    with_privacy = [n for n in protocols.names() if protocols.traits(n).privacy not in ("", "xor")]
    if traits.privacy == "xor":          # fedct: the XOR mechanism (fedct.xor_epsilon), not privacy.noise
        if pv.noise > 0:
            raise ConfigError(f"privacy.noise={pv.noise} with protocol.name={cfg.protocol.name}: its privacy is "
                              "the XOR mechanism on the one-hot votes; allowed: fedct.xor_epsilon > 0 with "
                              "privacy.noise=0")
        if pv.accountant == "pld" and cfg.fedct.xor_epsilon > 0:
            raise ConfigError("privacy.accountant=pld with fedct.xor_epsilon: dp-accounting's PLD accountant "
                              "does not compose randomised response (it reports one response's epsilon for "
                              "any count); allowed: privacy.accountant=rdp")
    _nothing_released(cfg, traits)
    if pv.noise == 0:
        if pv.threshold > 0 or pv.threshold_noise > 0:
            raise ConfigError("privacy.threshold / privacy.threshold_noise need privacy.noise > 0 (the "
                              "GNMax noise on the votes); allowed: set privacy.noise, or leave both at 0")
        return
    _tiny_noise(cfg, traits.privacy)
    if not traits.privacy:
        raise ConfigError(f"privacy.noise={pv.noise} is not implemented for protocol.name="
                          f"{cfg.protocol.name} (its messages would go unprotected while epsilon is "
                          f"reported); allowed: {', '.join(with_privacy)}, or privacy.noise=0")
    if (pv.threshold > 0 or pv.threshold_noise > 0) and traits.privacy != "votes":
        raise ConfigError(f"privacy.threshold is Confident-GNMax's, for votes; protocol.name="
                          f"{cfg.protocol.name} sends soft labels; allowed: privacy.threshold=0")
    if pv.threshold_noise > 0 and pv.threshold == 0:
        raise ConfigError("privacy.threshold_noise needs privacy.threshold > 0 (Confident-GNMax's T)")
    if pv.threshold > 0 and pv.threshold_noise == 0:
        raise ConfigError("privacy.threshold needs privacy.threshold_noise > 0: a noiseless threshold "
                          "check on the top count is not private")
    if traits.privacy == "params" and (cfg.fedavg.aggregate != "mean" or cfg.fedavg.pre != "none"):
        raise ConfigError(f"privacy.noise with fedavg.aggregate={cfg.fedavg.aggregate}, fedavg.pre={cfg.fedavg.pre}: "
                          "DP-FedAvg's noise is calibrated to the clipped mean; allowed: fedavg.aggregate=mean, "
                          "fedavg.pre=none")
    if traits.privacy == "sum" and cfg.softlabel.aggregate in ("median", "trimmed"):
        raise ConfigError(f"privacy.noise with softlabel.aggregate={cfg.softlabel.aggregate}: the noise is "
                          "calibrated to a clipped sum; allowed: softlabel.aggregate=mean or era")
    if cfg.vote.weighting != "none":
        raise ConfigError(f"privacy.noise with vote.weighting={cfg.vote.weighting}: the noise is calibrated to "
                          "one vote per peer; allowed: vote.weighting=none")
    if cfg.comm.topology == "allgather":
        raise ConfigError("privacy.noise with comm.topology=allgather: every peer would see the others' "
                          "messages without noise; allowed: comm.topology=star")
    if pv.accountant == "pld" and cfg.participation < 1:
        raise ConfigError(f"privacy.accountant=pld with participation={cfg.participation}: dp-accounting's "
                          "PLD accountant has no fixed-size participation sampling; allowed: "
                          "privacy.accountant=rdp, or participation=1")


def _nothing_released(cfg: Config, traits) -> None:
    """distill.weight=0 sends nothing (protocols.base.exchanging: 0 bits), yet the ledger charged every
    round: a tally run at privacy.noise=1 reported epsilon 202 for a run that released no message."""
    xor = traits.privacy == "xor" and cfg.fedct.xor_epsilon > 0
    if traits.distill and cfg.distill.weight == 0 and (cfg.privacy.noise > 0 or xor):
        knob = f"fedct.xor_epsilon={cfg.fedct.xor_epsilon:g}" if xor else f"privacy.noise={cfg.privacy.noise:g}"
        raise ConfigError(f"{knob} with distill.weight=0: protocol.name={cfg.protocol.name} sends no message "
                          "then (0 bits), so the epsilon reported would count rounds that release nothing; "
                          f"allowed: distill.weight > 0, or {knob.split('=')[0]}=0")


def _tiny_noise(cfg: Config, mechanism: str) -> None:
    """Positive noise so small that the device draws none (float32) or the accountant overflows
    (privacy.MIN_NOISE says why); the std drawn for soft labels and DP-FedAvg is noise * clip."""
    from tallysim.privacy import MIN_NOISE
    pv = cfg.privacy
    for key, value in (("privacy.noise", pv.noise), ("privacy.threshold_noise", pv.threshold_noise)):
        if 0 < value < MIN_NOISE:
            raise ConfigError(f"{key}={value:g} is too small to draw in float32 or to account (epsilon "
                              f"overflows); allowed: {key}=0 (off) or >= {MIN_NOISE:g}")
    if mechanism in ("sum", "params") and pv.noise * pv.clip < MIN_NOISE:
        raise ConfigError(f"privacy.noise * privacy.clip={pv.noise * pv.clip:g} (the noise std) is too small "
                          f"to draw in float32; allowed: privacy.noise * privacy.clip >= {MIN_NOISE:g}")
