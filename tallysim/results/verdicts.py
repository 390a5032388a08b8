"""Every paired-seed verdict the docs state, recomputed from the committed per-seed CSVs in docs/figures/
with paired_stats (the statistics of `tallysim compare`), read by seed_csv.py (as compare reads a
FILE.csv:COLUMN=VALUE side): no run, only the files. `table()` is
docs/verdicts.md's table, byte for byte (tests/test_verdicts_dec26h.py); `python -m
tallysim.results.verdicts` prints it and the counts.

Why: the docs counted seeds ("above in every seed", "turns", "beats"); with 2 or 3 seeds that count is
often noise (3 of 3 happens 1 time in 4 with no difference). Each entry says what the docs said, as a
direction, so the table can say whether the 95% interval supports it.
"""
from __future__ import annotations

from pathlib import Path

from tallysim.config import ConfigError
from tallysim.results import paired_stats as ps
from tallysim.results import accuracy_check, seed_csv

FIG = Path(__file__).resolve().parents[2] / "docs" / "figures"
P, S2 = "_paired_seeds.csv", "_seed2.csv"      # the paired re-runs, and their third seed where one was run
DECIMAL_NOISE = 1e-9     # far below the CSVs' printed 1e-6 (or 1e-4), far above float64's noise on them


def _src(stem: str, group: str, panel: str, rnd=None, model=None, extra=(), base=None) -> tuple:
    return ((base or stem + P,) + tuple(extra), group, panel, rnd, model)


# (setting, A, B, what the docs said: "above" / "below" / "level" for A - B, or "not above" (a one-sided claim:
# the CNN's tally against local training, which an interval holding 0 supports), the docs' words, source A, source B)
def _fig2(stem, alpha, extra=()):
    return lambda g: _src(stem, g, f"alpha={alpha}", extra=extra)


SPECS = []


def _add(setting, a, b, said, words, src_a, src_b):
    SPECS.append((setting, a, b, said, words, src_a, src_b))


MLP5 = ("fig2_small_mlp_seeds2to4.csv",)     # the MLP control's seeds 2-4 (seeds53), beside the paired 0-1
for alpha, said, words in (("0.1", "above", "above (+0.061)"), ("0.5", "above", "above (+0.104)"),
                           ("100", "level", "level (+0.005)")):
    f = _fig2("fig2_small_mlp", alpha, MLP5)
    _add(f"Fashion-MNIST MLP control, alpha {alpha}", "tally", "local", said, words, f("tally"), f("local"))
LENET5 = ("fig2_lenet_seeds2to4.csv",)   # seeds 2-4 (seeds56): as CNN5 (below), replacing fig2_lenet_seed2.csv
for alpha, said, words in (("0.1", "level", "turns: level (3 seeds: above in 2 of 3)"),
                           ("0.5", "above", "holds: above (+0.130 / +0.098)"),
                           ("100", "above", "a small gain (+0.006 / +0.010)")):
    f = _fig2("fig2_lenet", alpha, LENET5)
    _add(f"LeNet, alpha {alpha}", "tally", "local", said, words, f("tally"), f("local"))
for alpha in ("0.1", "0.5", "100"):
    f = _fig2("fig2_lenet", alpha, LENET5)
    _add(f"LeNet, alpha {alpha}", "softlabel", "local", "above", "above in every seed", f("softlabel (mean)"), f("local"))
    _add(f"LeNet, alpha {alpha}", "softlabel", "tally", "above", "(a) holds in every seed", f("softlabel (mean)"), f("tally"))
# the CNN's seeds 2-4 from a program of their own (seeds55), beside the paired 0-1; at alpha 100 they replace
# fig2_cnn_seed2.csv's lone seed 2 (tally and local only), which a seed 2 in two files would contradict
CNN5 = ("fig2_cnn_seeds2to4.csv",)
for alpha, said, words in (("0.1", "not above", "holds: not above (-0.046 / -0.007)"),
                           ("100", "above", "turns: above local in 3 of 3 seeds (+0.025)")):
    f = _fig2("fig2_cnn", alpha, CNN5)
    _add(f"CNN, alpha {alpha}", "tally", "local", said, words, f("tally"), f("local"))
    _add(f"CNN, alpha {alpha}", "softlabel", "tally", "above", "(a) holds in every seed", f("softlabel (mean)"), f("tally"))

_ch = lambda g: _src("textclaim_chars5", g, "chars, 5 local epochs", extra=("textclaim_chars5" + S2,))  # noqa: E731
_add("characters, 5 local epochs", "tally (weight 0.1)", "local", "level", "level (above in 2 of 3)",
     _ch("tally (weight 0.1)"), _ch("local"))
_add("characters, 5 local epochs", "tally (weight 0.1)", "softlabel", "level",
     "turns: level (above in 2 of 3, +0.0035)", _ch("tally (weight 0.1)"), _ch("softlabel"))
_w = lambda g, rnd=None: _src("wordclaim", g, "words", rnd, extra=("wordclaim" + S2,))  # noqa: E731
_add("words, LSTM", "light vote (weight 0.1)", "local", "above", "holds: above in 3 of 3 seeds",
     _w("tally_light"), _w("local"))
_add("words, LSTM", "softlabel", "local", "above", "holds: above in 3 of 3 seeds", _w("softlabel"), _w("local"))
_add("words, LSTM", "light vote (weight 0.1)", "softlabel", "below", "below in 3 of 3 seeds, within the noise",
     _w("tally_light"), _w("softlabel"))
_add("words, LSTM", "tally (weight 1)", "local", "below", "holds: below (-0.0114 / -0.0102)",
     _src("wordclaim", "tally", "words"), _src("wordclaim", "local", "words"))
_ww = lambda g, rnd=None: _src("wordclaim_warm", g, "words", rnd, extra=("wordclaim_warm" + S2,))  # noqa: E731
_ww5 = lambda g: _src("wordclaim_warm", g, "words", extra=("wordclaim_warm" + S2, "wordclaim_warm_seeds3to4.csv"))  # noqa: E731
_add("words, LSTM, 4-epoch warm-up", "softlabel (warm-up)", "tally (warm-up)", "above",
     "holds: ahead in 3 of 3 seeds", _ww5("softlabel_warm"), _ww5("tally_warm"))
_add("words, LSTM, 4-epoch warm-up", "tally (warm-up)", "local, 8 epochs", "level",
     "level (2 of 3, mean -0.0022)", _ww("tally_warm"), _w("local"))
_add("words, LSTM, 4-epoch warm-up", "tally (warm-up)", "local, 12 epochs", "level",
     "level (2 of 3, mean +0.0031)", _ww("tally_warm"), _ww("local_12"))
T2 = ("wordtransformer" + S2,)     # seed 2 (seeds56) of the groups its rows read: local_12, tally_light, tally
_t = lambda g, rnd=None, more=(): _src("wordtransformer", g, "words", rnd, extra=more)  # noqa: E731
_add("words, transformer", "light vote (weight 0.1)", "local", "above", "turns: above in both seeds, within the noise",
     _t("tally_light", more=T2), _t("local_12", "8", T2))
_add("words, transformer", "tally (warm-up)", "local, 12 epochs", "above", "turns: above in both seeds",
     _t("tally_warm"), _t("local_12", "12"))
_add("words, transformer", "tally (warm-up)", "local, 8 epochs", "level", "level", _t("tally_warm"), _t("local_12", "8"))
_add("words, transformer", "softlabel (warm-up)", "tally (warm-up)", "level", "no longer ahead: one seed each way",
     _t("softlabel_warm"), _t("tally_warm"))
_add("words, transformer", "light vote (weight 0.1)", "softlabel", "below", "holds: below (-0.0029 / -0.0089)",
     _t("tally_light"), _t("softlabel"))
_add("words, transformer", "tally (weight 1)", "local", "below", "holds: below (-0.0105 / -0.0080)",
     _t("tally", more=T2), _t("local_12", "8", T2))
_mb = lambda g, panel: _src("class_matched_bits", g, panel)  # noqa: E731
for panel, name in (("dir0.1", "Dirichlet 0.1"), ("iid", "IID")):
    said = "above" if panel == "dir0.1" else "below"
    _add(f"C = 100 matched bits, {name}", "tally", "local", said, f"{said} in every seed",
         _mb("c100_tally_800p", panel), _mb("c100_local", panel))
    _add(f"C = 100 matched bits, {name}", "tally", "softlabel 7 probes", said, f"{said} in every seed",
         _mb("c100_tally_800p", panel), _mb("c100_softlabel_8bit_7p", panel))
_add("C = 100 matched bits, Dirichlet 0.1", "tally", "topk_soft", "above", "above in every seed",
     _mb("c100_tally_800p", "dir0.1"), _mb("c100_topk_k1_b7_400p", "dir0.1"))
_add("C = 100 matched bits, Dirichlet 0.1", "tally", "softlabel 800 probes", "above", "beats soft labels on its own 800 probes",
     _mb("c100_tally_800p", "dir0.1"), _mb("c100_softlabel_8bit_800p", "dir0.1"))
for g, name in (("c100_softlabel_8bit_7p", "softlabel 7 probes"), ("c100_topk_k1_b7_400p", "topk_soft"),
                ("c100_softlabel_8bit_800p", "softlabel 800 probes")):
    _add("C = 100 matched bits, Dirichlet 0.1", name, "local", "level", "within 0.03 of local (tally the only one well above)",
         _mb(g, "dir0.1"), _mb("c100_local", "dir0.1"))
C10_MORE = ("class_matched_bits_c10_seeds3to4.csv",)      # seeds 3-4 of this row's two groups (seeds55)
_add("C = 10 matched bits, Dirichlet 0.1", "softlabel 40 probes", "tally", "above", "above in every seed (+0.161)",
     _src("class_matched_bits", "c10_softlabel_8bit_40p", "dir0.1", extra=C10_MORE),
     _src("class_matched_bits", "c10_tally_800p", "dir0.1", extra=C10_MORE))
_add("C = 10 matched bits, Dirichlet 0.1", "topk_soft", "tally", "above", "above in every seed (+0.047)",
     _mb("c10_topk_k1_b6_320p", "dir0.1"), _mb("c10_tally_800p", "dir0.1"))
_add("C = 10 matched bits, Dirichlet 0.1", "tally", "local", "above", "above in every seed (+0.335)",
     _mb("c10_tally_800p", "dir0.1"), _mb("c10_local", "dir0.1"))
_add("C = 10, Dirichlet 0.1, tally's pool 3,200", "softlabel 40 probes", "tally", "level",
     "ahead in every seed; level by compare", _mb("c10_softlabel_8bit_40p", "dir0.1"),
     _src("class_c10_pool3200", "c10_tally_800p_pool3200", "dir0.1"))
_pool = lambda g, panel: _src("class_pool", g, panel)  # noqa: E731
for panel, name in (("iid", "IID"), ("dir0.5", "Dirichlet 0.5"), ("dir0.1", "Dirichlet 0.1")):
    _add(f"C = 100, pool 3,200, {name}", "tally", "local", "above", "above in every seed",
         _pool("tally_800p_pool3200", panel), _pool("local_pool3200", panel))
    _add(f"C = 100, pool 3,200, {name}", "tally", "softlabel 7 probes", "above", "above in every seed",
         _pool("tally_800p_pool3200", panel), _pool("softlabel_8bit_7p_pool3200", panel))
for panel, name in (("dir0.5", "Dirichlet 0.5"), ("dir0.1", "Dirichlet 0.1")):
    _add(f"C = 100, pool 1,000, {name}", "tally", "softlabel 7 probes", "above", "above in every seed",
         _pool("tally_800p_pool1000", panel), _pool("softlabel_8bit_7p_pool1000", panel))


def _k(stem, g, panel, extra=()):
    """C = 1000: local training was not re-run (no warm-up); its seeds are in the unpaired file."""
    return _src(stem, g, panel, "10", base=stem + ("_seeds.csv" if g == "local" else P), extra=extra)


K1000_MORE = ("class_1000_dir05_seeds3to4.csv",)      # seeds 3-4 of tally and one probe at Dirichlet 0.5 (seeds55)


for m, stem in (("0.9", "class_1000"), ("0", "class_1000_momentum0")):
    k = lambda g, panel, stem=stem: _k(stem, g, panel)  # noqa: E731
    s = f"C = 1000, momentum {m}"
    if m == "0.9":
        _add(f"{s}, IID", "tally", "local", "below", "neither beats local: below in every seed",
             k("tally_800p", "iid"), k("local", "iid"))
        _add(f"{s}, IID", "softlabel 1 probe", "local", "below", "below in every seed",
             k("softlabel_8bit_1p", "iid"), k("local", "iid"))
        _add(f"{s}, IID", "tally", "softlabel 1 probe", "level", "split, level on the mean",
             k("tally_800p", "iid"), k("softlabel_8bit_1p", "iid"))
        for panel in ("dir0.5", "dir0.1"):
            more = K1000_MORE if panel == "dir0.5" else ()
            _add(f"{s}, Dirichlet {panel[3:]}", "tally", "softlabel 1 probe", "above",
                 "tally ahead" + (" (every seed)" if panel == "dir0.5" else ""),
                 _k(stem, "tally_800p", panel, more), _k(stem, "softlabel_8bit_1p", panel, more))
        _add(f"{s}, Dirichlet 0.5", "tally", "local", "below", "below local", k("tally_800p", "dir0.5"),
             k("local", "dir0.5"))
    else:
        for panel, name in (("iid", "IID"), ("dir0.5", "Dirichlet 0.5"), ("dir0.1", "Dirichlet 0.1")):
            _add(f"{s}, {name}", "softlabel 1 probe", "tally", "above", "one probe beats the vote in every seed",
                 k("softlabel_8bit_1p", panel), k("tally_800p", panel))
        for panel, name, said in (("iid", "IID", "above"), ("dir0.5", "Dirichlet 0.5", "level"),
                                  ("dir0.1", "Dirichlet 0.1", "below")):
            _add(f"{s}, {name}", "tally", "local", said, said, k("tally_800p", panel), k("local", panel))
_add("non-IID, Dirichlet 0.05", "vote.min_agreement=0.5", "local", "below", "below in every seed",
     _src("niid_minagree", "minagree0.5_444p", "dir0.05"), _src("niid_minagree", "local", "dir0.05"))
_add("non-IID matched bits, Dirichlet 0.5, 20 seeds", "softlabel 25 probes", "tally", "level",
     "level (0.742 against 0.740)", _src("", "softlabel_8bit_25p", "dir0.5", base="niid_seeds20.csv"),
     _src("", "tally_500p", "dir0.5", base="niid_seeds20.csv"))
for alpha, panel in (("0.1", "alpha01"), ("1", "alpha1")):
    for model in ("mlp", "lenet", "cnn"):
        f = lambda g, model=model, panel=panel: _src("fig12_reduced", g, panel, model=model)  # noqa: E731
        _add(f"fig12 reduced, {model} group, alpha {alpha}", "tally", "local", "above",
             "gains under tally" + (" (the CNN's loss turns: +0.087)" if (model, alpha) == ("cnn", "1") else ""),
             f("tally"), f("local"))

# the rest of matched-bits.md's C = 1000 per-seed list ("Re-measured with paired seeds"), after fig12 so the
# rows the docs cite by number keep theirs
for m, stem, panel, a, b, said, words in (
        ("0.9", "class_1000", "dir0.5", "softlabel_8bit_1p", "local", "below", "behind in every seed"),
        ("0.9", "class_1000", "dir0.1", "tally_800p", "local", "above", "a little above, every seed"),
        ("0.9", "class_1000", "dir0.1", "softlabel_8bit_1p", "local", "below", "behind in every seed"),
        ("0.9", "class_1000", "iid", "softlabel_8bit_10p", "local", "level", "at local training's level"),
        ("0.9", "class_1000", "dir0.5", "softlabel_8bit_10p", "local", "level", "at local training's level"),
        ("0.9", "class_1000", "dir0.1", "softlabel_8bit_10p", "local", "level", "at local training's level"),
        ("0", "class_1000_momentum0", "iid", "softlabel_8bit_1p", "local", "above", "above in every seed"),
        ("0", "class_1000_momentum0", "iid", "softlabel_8bit_10p", "local", "above", "above in every seed"),
        ("0", "class_1000_momentum0", "iid", "softlabel_8bit_10p", "softlabel_8bit_1p", "above",
         "ten probes above one in every seed"),
        ("0", "class_1000_momentum0", "dir0.5", "softlabel_8bit_1p", "local", "above", "above in every seed"),
        ("0", "class_1000_momentum0", "dir0.5", "softlabel_8bit_10p", "local", "above", "above in every seed"),
        ("0", "class_1000_momentum0", "dir0.1", "softlabel_8bit_1p", "local", "above", "ahead in every seed")):
    name = {"iid": "IID", "dir0.5": "Dirichlet 0.5", "dir0.1": "Dirichlet 0.1"}[panel]
    short = {"tally_800p": "tally", "softlabel_8bit_1p": "softlabel 1 probe", "softlabel_8bit_10p": "softlabel 10 probes",
             "local": "local"}
    _add(f"C = 1000, momentum {m}, {name}", short[a], short[b], said, words, _k(stem, a, panel), _k(stem, b, panel))

# soft labels in the MLP control and the CNN (figures.md, "Re-measured with paired seeds"), numbered last too
for stem, alphas, name in (("fig2_small_mlp", ("0.1", "0.5", "100"), "Fashion-MNIST MLP control"), ("fig2_cnn", ("0.1", "100"), "CNN")):
    for alpha in alphas:
        f = _fig2(stem, alpha, MLP5 if stem == "fig2_small_mlp" else CNN5)
        _add(f"{name}, alpha {alpha}", "softlabel", "local", "above", "above in every seed", f("softlabel (mean)"), f("local"))
        if stem == "fig2_small_mlp":
            _add(f"{name}, alpha {alpha}", "softlabel", "tally", "above", "above tally in every seed",
                 f("softlabel (mean)"), f("tally"))

# three verdicts that were not recomputable (tally's per-seed values never committed), run again with 5 paired
# seeds, every group of a row from one program (seeds53): numbered after everything above
for c, words in (("10", "matches soft labels (0.999 vs 0.999)"),
                 ("100", "matches soft labels (0.735 vs 0.742 at 32 bits, 0.740 at 8 bits)")):
    for soft in ("softlabel 32-bit", "softlabel 8-bit"):
        _add(f"Fig. 3, IID synthetic, C = {c}", "tally", soft, "level", words,
             _src("", "tally", f"C={c}", base="fig3_seeds5.csv"), _src("", soft, f"C={c}", base="fig3_seeds5.csv"))
for panel, name, lead in (("dir100", "Dirichlet 100", "0.011"), ("dir0.05", "Dirichlet 0.05", "0.146"),
                          ("one_class", "one class per peer", "0.309")):
    _add(f"non-IID matched bits, {name}", "softlabel 25 probes", "tally", "above", f"soft labels ahead by {lead}",
         _src("", "softlabel_8bit_25p", panel, base="niid_matched_bits_seeds5.csv"),
         _src("", "tally_500p", panel, base="niid_matched_bits_seeds5.csv"))
for alpha, t, sl in (("0.01", "0.170", "0.366"), ("0.05", "0.362", "0.600"), ("0.1", "0.527", "0.715"),
                     ("0.5", "0.752", "0.785"), ("1", "0.781", "0.802"), ("100", "0.794", "0.812")):
    _add(f"Fig. 2 (MLP, 20 peers), alpha {alpha}", "tally", "softlabel", "below", f"below soft labels ({t} against {sl})",
         _src("", "tally", f"alpha={alpha}", base="fig2_seeds5.csv"),
         _src("", "softlabel (mean)", f"alpha={alpha}", base="fig2_seeds5.csv"))

# partial participation 0.1 (seeds55): not recomputable before (fig_participation.csv holds means and stds), run
# again with 5 paired seeds, each group one program of seeds 0-4; numbered after everything above
for base, name, t, sl in (("fig_participation_seeds5.csv", "Dirichlet 0.5", "0.532", "0.539"),
                          ("fig_participation_alpha01_seeds5.csv", "Dirichlet 0.1", "0.283", "0.307")):
    _add(f"partial participation 0.1, {name}", "tally", "softlabel", "below",
         f"below soft labels in every seed ({t} against {sl})", _src("", "tally", "participation=0.1", base=base),
         _src("", "softlabel", "participation=0.1", base=base))

# verdicts the docs state whose per-seed values are in no committed CSV (only means and stds): none left
NOT_RECOMPUTABLE = ()


def _whole_file(path, cols: list, rows: list) -> None:
    """A committed file as per_seed_csv.py writes it: a file emptied, or its header's columns renamed or
    swapped (a BOM's `\ufeffgroup` alike), matched no group, and its seeds left every verdict in silence."""
    if cols[:2] != ["group", "panel"] or "acc_mean" not in cols or not rows:
        raise ValueError(f"verdicts: {path}: " + (f"its header {','.join(cols)!r:.80} is not per_seed_csv.py's "
                         "(group,panel,...,seed,round,acc_mean)" if rows or cols[:2] != ["group", "panel"]
                         else "holds no rows under its header (emptied?)"))


def _values(src: tuple) -> dict:
    """{seed: acc_mean} of one side, its files joined as compare's `+` joins them (seed_csv.merged_values: a
    seed two files hold kept where they agree, refused where they differ), every value a fraction in [0, 1]
    (accuracy_check.REFUSE: a verdict stands on every seed its files hold, a diverged seed's nan too)."""
    files, group, panel, rnd, model = src
    where = {"group": group, "panel": panel, **({} if model is None else {"model": model})}
    try:
        parts = seed_csv.read_selected([FIG / name for name in files], where, check=_whole_file)
    except ConfigError as e:            # a lone file without the group, or none of several: say which side
        raise ConfigError(f"verdicts: {group!r} / {panel!r}: {e}") from None
    out, _, _ = seed_csv.merged_values([(p, rows) for p, _, rows in parts], "acc_mean", rnd=rnd, where=where,
                                       mode=accuracy_check.REFUSE)
    return out


def rows() -> list:
    """One dict per verdict: the setting, A, B, seeds, paired_stats' numbers, the docs' words and status."""
    out = []
    for setting, a, b, said, words, src_a, src_b in SPECS:
        va, vb = _values(src_a), _values(src_b)
        if set(va) != set(vb):          # a seed on one side only would drop out unseen
            raise ValueError(f"verdicts: {setting}, {a} - {b}: seeds differ, {sorted(va)} against {sorted(vb)}")
        seeds = sorted(va)
        # the CSVs' decimals (0.775537 - 0.754450 against 0.706364 - 0.685277) differ in float64 by ~1e-16:
        # equal to the file's digits, so 'flat' (the sign test's verdict), not a 1e-16-wide interval's
        s = ps.summarize([va[k] - vb[k] for k in seeds], DECIMAL_NOISE)
        got = {ps.ABOVE: "above", ps.BELOW: "below"}.get(s["verdict"], "level")
        if said == "not above":         # one-sided: level or below supports it, only "above" goes against
            status = "flips sign" if got == "above" else "holds"
        else:
            status = ("holds" if got == said else "flips sign" if {got, said} == {"above", "below"}
                      else "level within noise" if got == "level" else f"{got}, not level")
        out.append(dict(s, setting=setting, a=a, b=b, said=said, words=words, status=status, seeds=seeds,
                        diffs=[va[k] - vb[k] for k in seeds]))
    return out


def _iv(r) -> str:
    return ps.NO_INTERVAL if r["ci_low"] is None else f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"


def _ways(r) -> str:
    return f"{r['above']} / {r['below']}" + (f" / {r['tied']} tied" if r["tied"] else "")


def table(rs=None) -> str:
    rs = rows() if rs is None else rs
    head = ("| # | setting | A - B | n | mean | 95% interval | seeds + / - | sign p | interval verdict | "
            "the docs said | by the interval |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {i} | {r['setting']} | {r['a']} - {r['b']} | {r['n']} | {r['mean']:+.4f} | {_iv(r)} | {_ways(r)} | "
        f"{r['sign_p']:.3g} | {r['verdict']} | {r['words']} | **{r['status']}** |\n" for i, r in enumerate(rs, 1))


def counts(rs=None) -> dict:
    rs = rows() if rs is None else rs
    c = {"checked": len(rs), "not recomputable": len(NOT_RECOMPUTABLE)}
    for r in rs:
        c[r["status"]] = c.get(r["status"], 0) + 1
    c["directional"] = sum(r["said"] != "level" for r in rs)
    c["directional holding"] = sum(r["said"] != "level" and r["status"] == "holds" for r in rs)
    return c


def note(r) -> str:
    """The one-line form the docs quote beside a verdict (docs/figures.md, text.md, matched-bits.md)."""
    iv = ps.NO_INTERVAL if r["ci_low"] is None else f"95% interval {_iv(r)}"
    return (f"{r['mean']:+.4f}, {iv}: {r['verdict']}; {r['above']} of {r['n']} seeds above, "
            f"{r['below']} below")


def summary(rs=None) -> str:
    """The counts sentence of docs/verdicts.md (pinned by the test, as the table is)."""
    rs = rows() if rs is None else rs
    c, d = counts(rs), [r for r in rs if r["said"] != "level"]
    levelled = sum(r["status"] == "level within noise" for r in d)
    flat = [r for r in rs if r["said"] == "level"]
    kept = sum(r["status"] == "holds" for r in flat)
    return (f"{c['checked']} verdicts checked; {c['holds']} hold by the interval. Of the {len(d)} that claim a "
            f"direction (above, below, not above, beats, turns, ahead), {c['directional holding']} hold and {levelled} are "
            f"level within noise; {c.get('flips sign', 0)} flips sign. Of the {len(flat)} that say level (or "
            f"within a margin), {kept} stay level and {len(flat) - kept} are not: the interval excludes 0. "
            + (f"{c['not recomputable']} more {'is' if c['not recomputable'] == 1 else 'are'} not recomputable from committed files."
             if c["not recomputable"] else "Every verdict is recomputable from committed files."))


def family(rs=None) -> str:
    """The rows read as one family (compare's family-wise rule over all of them: Bonferroni's interval, Holm's
    sign test): how many directions the per-row interval gives survive (docs/verdicts.md, pinned by a test)."""
    rs = rows() if rs is None else rs
    m = len(rs)
    # rows()' flat tolerance here too: a difference flat by the CSVs' digits is no direction in either reading
    fw = [ps.summarize(r["diffs"], DECIMAL_NOISE, m, q) for r, q in zip(rs, ps.holm([r["sign_p"] for r in rs]))]
    own = [r["verdict"] != ps.LEVEL_WORD for r in rs]
    kept = sum(o and f["verdict"] == r["verdict"] for o, f, r in zip(own, fw, rs))
    q = {n: ps.t_quantile(ps.quantile(m), n - 1) for n in (3, 5)}
    return (f"Read as one family of {m} (each interval Bonferroni's, the t quantile at 1 - 0.05/(2 x {m}): "
            f"{q[3]:.1f} standard errors each side with 3 seeds, {q[5]:.1f} with 5, against 4.3 and 2.8), {kept} of the "
            f"{sum(own)} directions the per-row intervals give keep theirs and {sum(own) - kept} become level within noise.")


if __name__ == "__main__":
    import sys
    try:
        rs = rows()
    except (ValueError, ConfigError) as e:     # an edited CSV: one line naming the file, not a traceback
        sys.exit(f"error: {e}")
    print(table(rs))
    print(summary(rs))
    print(family(rs))
