"""The Byzantine-robust rules' assumptions (fedavg.aggregate, fedavg.pre; protocols/fedavg.py and
sim/robust.py; the trimmed means of fedavg and softlabel), checked before anything loads: called by
validation.validate (refusals) and validation.warnings. No JAX here: the counts below repeat, in Python, how fedavg.py and sim/robust.py
take A, n and f.
"""
from __future__ import annotations


from tallysim import protocols
from tallysim.config_shapes import active_peers, decimal_floor, faulty_peers
from tallysim.schema import Config, ConfigError


def counts(cfg: Config) -> tuple:
    """(active peers A, models n the robust rule receives: A, or ceil(A / fedavg.bucket) buckets,
    the f it assumes, as protocols/fedavg.py and sim/robust.py take them: fedavg.f, else the faulty
    count floor(faults.fraction * P) capped at A, then at n)."""
    a, active = cfg.fedavg, active_peers(cfg)   # as sim/fed.py counts them
    n = -(-active // a.bucket) if a.pre == "bucketing" else active
    faulty = faulty_peers(cfg) if cfg.faults.kind != "none" else 0
    return active, n, min(a.f if a.f is not None else faulty, active, n)


def check(cfg: Config) -> None:
    """fedavg.f, m and bucket against the active peers and each rule's assumption (robust aggregation,
    protocols/fedavg.py). Settings under which the rule cannot do what it is for are refused; an f that
    comes from the faults and exceeds what the rule tolerates is a measurement past its breakdown point
    (docs/robustness.md's fraction 0.45), so `warnings` only says so. Each refusal is one line naming
    the rule's assumption and what is allowed."""
    if not protocols.traits(cfg.protocol.name).fedavg_family:
        return
    a = cfg.fedavg
    active, n, f = counts(cfg)
    if a.f is not None and a.f >= active:
        raise ConfigError(f"fedavg.f={a.f} assumes at least as many Byzantine peers as the {active} active "
                          f"ones; allowed: 0..{active - 1} (or none: the run's faulty count)")
    if a.m is not None and a.m > n:
        raise ConfigError(f"fedavg.m={a.m} averages more models than the {n} " + (
            "buckets hold" if n < active else "active peers send") + f"; allowed: 1..{n} (or none: n - f)")
    robust = a.aggregate != "mean"
    if robust and a.pre == "bucketing" and active >= 2 and a.bucket >= active:
        raise ConfigError(f"fedavg.bucket={a.bucket} puts the {active} active peers' models in one bucket, so "
                          f"fedavg.aggregate={a.aggregate} returns their mean (bucketing, Karimireddy et al. 2022, "
                          f"needs several buckets); allowed: fedavg.bucket 1..{active - 1}")
    if a.aggregate not in ("krum", "multikrum"):
        return
    of = f"{n} buckets of the {active} active peers" if a.pre == "bucketing" else f"{n} active peers"
    if n <= 2:
        raise ConfigError(f"fedavg.aggregate={a.aggregate} with {of}: Krum (Blanchard et al. 2017) assumes "
                          "n > 2f + 2 models, at least 3 (of 2 it picks by index); allowed: " + (
                              f"fedavg.bucket 1..{(active - 1) // 2}" if active >= 3 else "3 or more active peers"))
    if a.f is not None and n <= 2 * a.f + 2:
        raise ConfigError(f"fedavg.f={a.f} with {of}: Krum (Blanchard et al. 2017) assumes n > 2f + 2; "
                          f"allowed: fedavg.f 0..{(n - 3) // 2}")
    if a.aggregate == "multikrum" and a.m is None and n - f <= 0:
        raise ConfigError(f"fedavg.aggregate=multikrum averages m = n - f models, none with every one of the "
                          f"{of} faulty (faults.fraction={cfg.faults.fraction}); allowed: fedavg.m 1..{n}, or a "
                          "faults.fraction that leaves an honest peer")


def trim_warnings(cfg: Config) -> list[str]:
    """One line per trimmed mean whose trim cuts no value: floor(trim x n) = 0 of the n rows it takes
    (fedavg: the models or buckets, counts(); softlabel: the active peers' messages; sim/vote.trim_count),
    so it is the plain unweighted mean. Allowed, as trim=0 is (a sweep may hold it), but said."""
    active, n, _ = counts(cfg)
    out = []
    for section, rows in (("fedavg", n), ("softlabel", active)):
        s = getattr(cfg, section)
        if s.aggregate != "trimmed" or s.trim == 0 or not protocols.reads(cfg.protocol.name, f"{section}.trim"):
            continue
        if decimal_floor(s.trim, rows) == 0:       # sim/vote.trim_count's count
            what = "peers' messages" if section == "softlabel" else "buckets" if cfg.fedavg.pre == "bucketing" else "models"
            cut = (f"a trim of 1/{rows} or more cuts one from each end" if rows > 2 else
                   f"no trim below 0.5 cuts one of {rows}")
            out.append(f"{section}.trim={s.trim:g} trims 0 of {rows} {what} (floor(trim x {rows}) = 0): "
                       f"{section}.aggregate=trimmed is their unweighted mean; {cut}")
    for section, rows in (("fedavg", n), ("softlabel", active)):
        # the median of 2 rows is their mean (sim/vote.coordinate_stat: the two middle values averaged):
        # peers=2 (or a cohort of 2) ran softlabel.aggregate=median as the plain mean in silence, while
        # the trimmed mean of 2 said so just above
        if getattr(cfg, section).aggregate == "median" and rows == 2 and \
                protocols.reads(cfg.protocol.name, f"{section}.aggregate"):
            what = "peers' messages" if section == "softlabel" else "buckets" if cfg.fedavg.pre == "bucketing" else "models"
            out.append(f"{section}.aggregate=median of {rows} {what} is their unweighted mean (the two middle "
                       "values averaged), robust to nothing; a median needs 3 or more")
    return out


def warnings(cfg: Config) -> list[str]:
    """One line when f, read from the faults, is past Krum's assumption (allowed: a measurement), and
    one per trimmed mean that trims nothing or median of two (trim_warnings)."""
    a = cfg.fedavg
    if not protocols.traits(cfg.protocol.name).fedavg_family or a.aggregate not in ("krum", "multikrum"):
        return trim_warnings(cfg)
    _, n, f = counts(cfg)
    if a.f is None and n <= 2 * f + 2:
        return [f"fedavg.aggregate={a.aggregate} with f={f} faulty of n={n} models: past Krum's assumption "
                "n > 2f + 2 (Blanchard et al. 2017), so it guarantees nothing here"]
    return trim_warnings(cfg)
