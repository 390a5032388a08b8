"""The soft labels' quantisers against a uniform target: where a class count C makes 1/C round to 0
(softlabel's and selective_fd's comm.soft_bits, cfd's cfd.bits), so an untrained peer's near-uniform
distribution is sent as all zeros and the peers train on no soft target; the warning validation.warnings
and a sweep print (validation re-exports these names). Pure Python: the thresholds are stated, and the
tests pin them against the quantisers themselves."""
from __future__ import annotations

from tallysim import protocols, sizing
from tallysim.file_shapes import KNOWN_TEXT
from tallysim.schema import Config
from tallysim.sizing import KNOWN_SHAPES


# The smallest class count C whose uniform probability 1/C comm.soft_bits sends as 0 (vote.quantize_probs):
# 8 bits round to multiples of 1/255, so p <= 0.5/255 = 1/510 is 0 (half to even); 16 bits are float16,
# whose smallest subnormal is 2^-24, so p <= 2^-25 is 0, and 1/C in float32 is 2^-25 itself from C = 2^25 - 1.
# Pinned against quantize_probs (test_textleft_dec23b).
UNIFORM_ZERO_FROM = {8: 510, 16: 2 ** 25 - 1}
_GRID = {8: ("multiples of 1/255", "1/510"), 16: ("float16", "2^-25")}


def cfd_uniform_zero_from(bits: int) -> int:
    """The smallest C whose uniform 1/C cfd sends as level 0 at `bits` bits: levels round(p (2^b - 1))
    (protocols/cfd.quantise), so p <= 1 / (2 (2^b - 1)) is 0 (half to even): 510 at 8 bits, as
    comm.soft_bits=8. Pinned against cfd.quantise for every b (test_wordsoft_dec23k)."""
    return 2 * (2 ** bits - 1)


def soft_rounds_to_zero(cfg: Config) -> list[str]:
    """softlabel or selective_fd at comm.soft_bits 8 or 16, cfd (soft labels) at cfd.bits, or topk_soft
    with k = C at topk_soft.value_bits, where a uniform 1/C rounds to 0: on shakespeare_words (C = 10,004)
    at 8 bits every value of an untrained peer's near-uniform distribution is sent as 0, so the server's
    mean and the target the peers train on are all zeros (cfd renormalises an all-zero row to uniform: no
    target either; measured on the text tests' small config: all of round 1's target mass, docs/text.md),
    in silence."""
    name = cfg.data.name
    if cfg.protocol.name == "cfd":
        if cfg.cfd.labels != "soft":    # hard: count / A; one vote in A rounds to 0 from A = 2(2^b - 1) on
            return []
        field, bits = "cfd.bits", cfg.cfd.bits
        zero_from = cfd_uniform_zero_from(bits)
        grid, cut = f"multiples of 1/{2 ** bits - 1:,}", f"1/{zero_from:,}"
    elif cfg.protocol.name == "topk_soft":
        # k = C sends every class in class order, each at cfd's levels round(p (2^b - 1)) and nothing
        # spread (protocols/topk_soft.message): softlabel's vector, so value_bits=8 on words sent zeros. k < C
        # spreads 1 - sum(sent) evenly over the C - k classes not sent: the mass arrives, no all-zero target
        # (a uniform one comes back uniform over those C - k only, zero on the k sent).
        field, bits = "topk_soft.value_bits", cfg.topk_soft.value_bits
        if bits in (0, 32):             # 0 is refused with k = C; 32 is float32
            return []
        zero_from = cfd_uniform_zero_from(bits)
        grid, cut = f"multiples of 1/{2 ** bits - 1:,}", f"1/{zero_from:,}"
    else:
        field, bits = "comm.soft_bits", cfg.comm.soft_bits
        if bits == 32 or not protocols.reads(cfg.protocol.name, "comm.soft_bits"):
            return []
        zero_from = UNIFORM_ZERO_FROM[bits]
        grid, cut = _GRID[bits]
    told = name == "synthetic" or (cfg.data.path is None and (name in KNOWN_SHAPES or name in KNOWN_TEXT))
    C = sizing.data_shape(cfg)[1] if told else None     # data.name=files or data.path: only the data tells
    if C is None or C < zero_from:
        return []
    what = f"{field}={bits}"
    if field == "topk_soft.value_bits":
        if cfg.topk_soft.k != C:
            return []
        what += f" at topk_soft.k={cfg.topk_soft.k} (every class, no index sent)"
        enough = next(b for b in range(bits + 1, 17) if cfd_uniform_zero_from(b) > C)   # C <= 100,000 < 131,070
        keep = f"topk_soft.value_bits={enough} or more (0..16 uniform levels) or 32 keeps it"
    elif field == "cfd.bits":
        # C is at most 100,000 (data.num_classes' bound, the largest known vocabulary 10,004) < 131,070
        enough = next(b for b in range(bits + 1, 17) if cfd_uniform_zero_from(b) > C)
        keep = f"cfd.bits={enough} or more keeps it (cfd.bits is 1..16)"
    else:
        keep = ("comm.soft_bits=16 (float16: a uniform target survives up to C = 33,554,430) or 32"
                if bits == 8 else "comm.soft_bits=32") + " keeps it"
    return [f"{what} with the {C:,} classes of {name}: each probability is sent rounded to {grid}, "
            f"so a value at or below {cut} arrives as 0, and a near-uniform distribution (1/C = {1 / C:.2g}, "
            f"an untrained peer's) is sent and received as all zeros: the peers train on no soft target there "
            f"(a uniform target survives {bits} bits only below C = {zero_from:,}); {keep}"]
