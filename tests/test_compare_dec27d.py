"""compare51: `tallysim compare` over several pairs is family-wise (Bonferroni's t-interval, Holm's sign-test p,
the verdict from them; --per-pair for each pair's own 95%), and compare reads committed per-seed CSVs
(`FILE.csv:COLUMN=VALUE:...`, `FILE.csv --by COLUMN=VA,VB`) with seed_csv.py, the reader verdicts.py uses.

The quantiles against an independent derivation in numpy (the t distribution's CDF as an integral over the
angle theta, t = sqrt(df) tan(theta): P(|T| < t) is the share of the integral of cos(theta)^(df - 1) on
[0, pi/2] below theta), and scipy's t.ppf where the venv has scipy; Holm's adjustment against its
step-down definition. Nothing compiles: hand-made CSVs and run directories, and the committed CSVs."""
import csv
import functools
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tallysim import cli
from tallysim.config import ConfigError
from tallysim.results import compare as cmp
from tallysim.results import paired_stats as ps
from tallysim.results import verdicts

ROOT = Path(__file__).resolve().parent.parent
FIG = ROOT / "docs" / "figures"


# ---- the adjustments, derived independently ------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _angle_integral(df: int) -> tuple:
    theta = np.linspace(0.0, np.pi / 2, 400_001)
    f = np.cos(theta) ** (df - 1)
    h = theta[1] - theta[0]
    cum = np.concatenate([[0.0], np.cumsum((f[:-1] + f[1:]) * h / 2)])       # trapezoid running integral
    simpson_total = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return theta, f, h, cum * (simpson_total / cum[-1]), simpson_total


def _t_quantile_numpy(p: float, df: int) -> float:
    """The p quantile (p > 1/2) of Student's t: P(|T| < q) = 2p - 1, with P(|T| < sqrt(df) tan(theta)) the
    normalised integral of cos^(df-1) from 0 to theta (a fine grid's running integral, then the last step
    solved on the integrand taken as linear)."""
    theta, f, h, cum, total = _angle_integral(df)
    target = (2 * p - 1) * total
    i = int(np.searchsorted(cum, target))
    # the last step, solved on the integrand as linear between grid points
    a, fa, fb = cum[i - 1], f[i - 1], f[i]
    lo, hi = 0.0, 1.0
    for _ in range(60):
        x = (lo + hi) / 2
        if a + h * (fa * x + (fb - fa) * x * x / 2) < target:
            lo = x
        else:
            hi = x
    return math.sqrt(df) * math.tan(theta[i - 1] + h * (lo + hi) / 2)


@pytest.mark.parametrize("m", [1, 2, 3, 6, 20, 100])
def test_bonferroni_quantile_against_numpy_and_scipy(m):
    assert ps.quantile(m) == pytest.approx(1 - 0.05 / (2 * m), abs=1e-15)
    for df in (1, 2, 4, 9, 30):
        got = ps.t_quantile(ps.quantile(m), df)
        assert got == pytest.approx(_t_quantile_numpy(1 - 0.05 / (2 * m), df), rel=2e-6), (m, df)
    try:
        from scipy import stats
    except ImportError:
        return
    for df in (1, 2, 4, 9, 30, 200):
        assert ps.t_quantile(ps.quantile(m), df) == pytest.approx(stats.t.ppf(1 - 0.05 / (2 * m), df), rel=1e-9)


def test_the_numpy_derivation_knows_known_quantiles():
    """df = 1 is Cauchy (tan(pi (p - 1/2))); t(0.975, 2) = 4.302652729..., t(0.975, 4) = 2.776445105..."""
    assert _t_quantile_numpy(0.99875, 1) == pytest.approx(math.tan(math.pi * 0.49875), rel=1e-7)
    assert _t_quantile_numpy(0.975, 2) == pytest.approx(4.302652729911275, rel=1e-7)
    assert _t_quantile_numpy(0.975, 4) == pytest.approx(2.7764451051977987, rel=1e-7)


def _holm_rejects(p: list, alpha: float) -> set:
    """Holm's step-down procedure: in increasing p, reject while p_(k) <= alpha / (m - k + 1)."""
    m, out = len(p), set()
    for k, i in enumerate(sorted(range(m), key=lambda j: p[j])):
        if p[i] > alpha / (m - k):
            break
        out.add(i)
    return out


def test_holm_adjusted_p_is_the_step_down_procedure():
    assert ps.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert ps.holm([0.25]) == [0.25] and ps.holm([0.6, 0.7]) == [1.0, 1.0]
    rng = np.random.default_rng(1)
    for m in (1, 2, 3, 5, 20):
        for _ in range(50):
            p = list(rng.choice([0.0625, 0.03125, 0.25, 0.5, 1.0, 0.002], m)) if m < 5 else list(rng.uniform(0, 0.2, m))
            adj = ps.holm(p)
            assert all(a >= x for a, x in zip(adj, p)) and max(adj) <= 1.0
            for alpha in (0.01, 0.05, 0.1, 0.2):
                assert {i for i, a in enumerate(adj) if a <= alpha} == _holm_rejects(p, alpha), (p, alpha)


# ---- family-wise over a CSV's pairs -------------------------------------------------------------------------

def _csv(path: Path, rows: list, header: str = "group,panel,seed,round,acc_mean") -> Path:
    path.write_text("# made by a test\n" + header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def _twenty(tmp_path) -> Path:
    """20 panels, 3 seeds each; panel p0's differences 0.05, 0.06, 0.07 (its own 95% interval above 0, the
    family-wise one not), p1's a large clear gain, the rest noise around 0."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(20):
        d = [0.05, 0.06, 0.07] if k == 0 else [0.3, 0.31, 0.29] if k == 1 else list(rng.normal(0, 0.02, 3))
        for s in range(3):
            rows += [("tally", f"p{k}", s, 20, 0.5 + d[s]), ("local", f"p{k}", s, 20, 0.5)]
            rows += [("tally", f"p{k}", s, 10, 0.1), ("local", f"p{k}", s, 10, 0.1)]    # an earlier round
    return _csv(tmp_path / "twenty_seeds.csv", rows)


def test_family_wise_over_twenty_pairs_and_per_pair(tmp_path):
    f = _twenty(tmp_path)
    c = cmp.compare(str(f), by="group=tally,local")
    assert c.family == 20 and len(c) == 20 and [p["pair"] for p in c][:2] == ["panel=p0", "panel=p1"]
    p0, p1 = c[0], c[1]
    q20, q1 = ps.t_quantile(1 - 0.05 / 40, 2), ps.t_quantile(0.975, 2)
    assert p0["mean"] == pytest.approx(0.06) and p0["se"] == pytest.approx(0.01 / math.sqrt(3))
    assert (p0["ci_low"], p0["ci_high"]) == pytest.approx((0.06 - q20 * p0["se"], 0.06 + q20 * p0["se"]))
    assert (p0["ci_low_per_pair"], p0["ci_high_per_pair"]) == pytest.approx((0.06 - q1 * p0["se"], 0.06 + q1 * p0["se"]))
    assert p0["verdict_per_pair"] == "A above B" and p0["verdict"] == "level within noise"   # the chance "above"
    assert p1["verdict"] == "A above B"                                                     # a real gain stays
    assert p0["sign_p_per_pair"] == 0.25 and [p["sign_p"] for p in c] == pytest.approx(ps.holm([p["sign_p_per_pair"] for p in c]))
    text = c.text()
    assert "family-wise 95% over 20 pairs" in text and "1 - 0.05/(2 x 20) = 0.99875" in text
    assert "| family-wise 95% t-interval (20 pairs) |" in text and "| sign test p (Holm) |" in text
    assert "- panel=p0: level within noise over the 20 pairs; its own 95% interval alone says A above B (--per-pair)" in text
    own = cmp.compare(str(f), by="group=tally,local", per_pair=True)
    assert own.family == 1 and own[0]["verdict"] == "A above B" and own[0]["sign_p"] == 0.25
    assert (own[0]["ci_low"], own[0]["ci_high"]) == (p0["ci_low_per_pair"], p0["ci_high_per_pair"])
    assert "family-wise 95%" not in own.text() and "ci_low_per_pair" not in own[0]
    assert "per-pair 95% over 20 pairs (--per-pair): each interval and sign test is its pair's own" in own.text()


def test_cli_per_pair_flag_and_csv_family_column(tmp_path, capsys):
    f = _twenty(tmp_path)
    assert cli.main(["compare", str(f), "--by", "group=tally,local", "--format", "csv"]) == 0
    rows = [r for r in csv.DictReader(io.StringIO(capsys.readouterr().out)) if r["seed"] == "mean"]
    assert rows[0]["verdict"] == "level within noise" and {r["family"] for r in rows} == {"20"}
    assert cli.main(["compare", str(f), "--by", "group=tally,local", "--format", "csv", "--per-pair"]) == 0
    rows = [r for r in csv.DictReader(io.StringIO(capsys.readouterr().out)) if r["seed"] == "mean"]
    assert rows[0]["verdict"] == "A above B" and {r["family"] for r in rows} == {"1"}


def test_flat_differences_take_holms_sign_test(tmp_path):
    """Every seed's difference the same (s.e. 0): the verdict is the sign test's, over two pairs Holm's."""
    rows = []
    for panel in ("a", "b"):
        for s in range(6):
            rows += [("tally", panel, s, 5, 0.75), ("local", panel, s, 5, 0.5)]
    f = _csv(tmp_path / "flat_seeds.csv", rows)
    one = cmp.compare(f"{f}:panel=a:group=tally", f"{f}:panel=a:group=local")
    assert one[0]["sign_p"] == 0.03125 and one[0]["verdict"] == "A above B"
    two = cmp.compare(str(f), by="group=tally,local")
    assert [p["sign_p"] for p in two] == [0.0625, 0.0625] and {p["verdict"] for p in two} == {"level within noise"}
    assert {p["verdict"] for p in cmp.compare(str(f), by="group=tally,local", per_pair=True)} == {"A above B"}


def test_run_directories_by_field_are_family_wise(tmp_path):
    """The run-directory path (a sweep's --out) takes the same correction; one pair (A B) none."""
    def run(d, proto, alpha, acc):
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"protocol": {"name": proto}, "rounds": 1, "seed": 0, "seeds": 3,
                                                   "peers": 4, "partition": {"kind": "dirichlet", "alpha": alpha}}))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 0, "acc_mean": float(np.mean(acc)),
                                                     "seeds": [0, 1, 2], "per_seed": {"acc_mean": acc}}) + "\n")
    for alpha, d in ((0.1, [0.05, 0.06, 0.07]), (0.5, [0.01, -0.02, 0.0])):
        run(tmp_path / f"t{alpha}", "tally", alpha, [0.5 + x for x in d])
        run(tmp_path / f"l{alpha}", "local", alpha, [0.5, 0.5, 0.5])
    c = cmp.compare(tmp_path, by="protocol.name=tally,local")
    assert c.family == 2 and c[0]["verdict"] == "A above B" and c[0]["verdict_per_pair"] == "A above B"
    half = c[0]["ci_high"] - c[0]["mean"]
    assert half == pytest.approx(ps.t_quantile(1 - 0.05 / 4, 2) * c[0]["se"])
    single = cmp.compare(tmp_path / "t0.1", tmp_path / "l0.1")
    assert single.family == 1 and single[0]["ci_high"] - single[0]["mean"] == pytest.approx(ps.t_quantile(0.975, 2) * single[0]["se"])
    with pytest.raises(ConfigError, match="expected True or False"):
        cmp.compare(tmp_path, by="protocol.name=tally,local", per_pair="no")
    import tallysim
    assert tallysim.compare(str(tmp_path), by="protocol.name=tally,local", per_pair=True).family == 1


# ---- committed per-seed CSVs -------------------------------------------------------------------------------

def _row(setting: str, a: str, b: str) -> dict:
    return next(r for r in verdicts.rows() if (r["setting"], r["a"], r["b"]) == (setting, a, b))


def test_csv_sides_give_docs_verdicts_numbers():
    """Fig. 2 at alpha 0.1 from one file, and C = 1000's tally (paired file) against local (the unpaired
    file) at round 10: compare's numbers are verdicts.py's, read by the same reader."""
    f = FIG / "fig2_seeds5.csv"
    c = cmp.compare(f"{f}:group=tally:panel=alpha=0.1", f"{f}:group=softlabel (mean):panel=alpha=0.1")
    want = _row("Fig. 2 (MLP, 20 peers), alpha 0.1", "tally", "softlabel")
    for k in ("n", "mean", "se", "ci_low", "ci_high", "sign_p", "verdict", "above", "below"):
        assert c[0][k] == want[k], k
    assert c[0]["seeds"] == [0, 1, 2, 3, 4] and c[0]["round"] == 20 and c.family == 1
    a = f"{FIG / 'class_1000_paired_seeds.csv'}:group=tally_800p:panel=iid:round=10"
    b = f"{FIG / 'class_1000_seeds.csv'}:group=local:panel=iid:round=10"
    c = cmp.compare(a, b)
    want = _row("C = 1000, momentum 0.9, IID", "tally", "local")
    assert (c[0]["mean"], c[0]["ci_low"], c[0]["verdict"]) == (want["mean"], want["ci_low"], want["verdict"])
    assert "not matched bits" in c.text()


def test_csv_by_over_the_committed_fig2_seeds_is_family_wise():
    c = cmp.compare(str(FIG / "fig2_seeds5.csv"), by="group=tally,softlabel (mean)")
    assert [p["pair"] for p in c] == [f"panel=alpha={a}" for a in ("0.01", "0.05", "0.1", "0.5", "1", "100")]
    assert c.family == 6 and {p["verdict"] for p in c} == {"A below B"}    # the six hold family-wise too
    assert all(p["ci_high"] > p["ci_high_per_pair"] for p in c)


def test_csv_refusals(tmp_path):
    f = FIG / "fig2_seeds5.csv"
    with pytest.raises(ConfigError, match=r"fig2.csv has no `seed` column \(its columns: group, partition.alpha, "
                                          r"accuracy.*not a per-seed CSV; allowed"):
        cmp.compare(f"{FIG / 'fig2.csv'}:group=tally", f"{FIG / 'fig2.csv'}:group=local")
    with pytest.raises(ConfigError, match=r"no row has group=local; group's values there: softlabel \(mean\), tally"):
        cmp.compare(f"{f}:group=local", f"{f}:group=tally")
    with pytest.raises(ConfigError, match=r"no row has panel=alpha=7 \(with group=tally\); did you mean alpha=1 .*; panel's values there: alpha=0.01"):
        cmp.compare(f"{f}:group=tally:panel=alpha=7", f"{f}:group=tally")
    with pytest.raises(ConfigError, match=r"seed 0 has 6 rows at round 20 \(they differ in panel\); allowed: a selection "
                                          r"of one row per seed, e\.g\. .*fig2_seeds5.csv:group=tally:panel=alpha=0.01"):
        cmp.compare(f"{f}:group=tally", f"{f}:group=softlabel (mean)")
    with pytest.raises(ConfigError, match="no column 'grup'; did you mean group"):
        cmp.compare(f"{f}:grup=tally", f"{f}:group=tally")
    with pytest.raises(ConfigError, match="selector 'group' is not COLUMN=VALUE"):
        cmp.compare(f"{f}:group", f"{f}:group=tally")
    with pytest.raises(ConfigError, match="column 'group' selected twice"):
        cmp.compare(f"{f}:group=tally:group=local", f"{f}:group=tally")
    with pytest.raises(ConfigError, match="no such file; allowed: a per-seed CSV"):
        cmp.compare(f"{tmp_path / 'none.csv'}:group=a", f"{f}:group=tally")
    with pytest.raises(ConfigError, match="is not a per-seed CSV side and the other is"):
        cmp.compare(f"{f}:group=tally:panel=alpha=0.1", tmp_path)
    with pytest.raises(ConfigError, match=r"no column 'acc_global' of numbers to compare; allowed: --metric naming one "
                                          r"of its columns that holds numbers \(acc_mean\)"):
        cmp.compare(f"{f}:group=tally:panel=alpha=0.1", f"{f}:group=tally:panel=alpha=1", metric="acc_global")
    with pytest.raises(ConfigError, match="--by group: .*:group=tally already selects group=tally; allowed"):
        cmp.compare(f"{f}:group=tally", by="group=tally,local")
    with pytest.raises(ConfigError, match="--by grp: .* has no column 'grp'"):
        cmp.compare(str(f), by="grp=tally,local")
    bad = _csv(tmp_path / "bad_seeds.csv", [("tally", "a", "s0", 1, 0.5), ("local", "a", "s0", 1, 0.4)])
    with pytest.raises(ConfigError, match="a row's seed is 's0', not a whole number"):
        cmp.compare(f"{bad}:group=tally", f"{bad}:group=local")
    two = _csv(tmp_path / "apart_seeds.csv", [("tally", "a", 0, 1, 0.5), ("local", "b", 0, 1, 0.4)])
    with pytest.raises(ConfigError, match="no setting of panel .* has rows with both values"):
        cmp.compare(str(two), by="group=tally,local")
    with pytest.raises(ConfigError, match="one CSV side only"):
        cmp.compare([str(f), str(two)], by="group=tally,local")


def test_csv_seeds_dropped_best_and_no_round_column(tmp_path):
    f = _csv(tmp_path / "s.csv", [("x", 0, 0.5), ("x", 1, 0.6), ("x", 2, "nan"), ("y", 0, 0.4), ("y", 1, 0.4),
                                  ("y", 2, 0.3), ("y", 3, 0.2)], header="group,seed,loss")
    c = cmp.compare(f"{f}:group=x", f"{f}:group=y", metric="loss")
    assert c[0]["seeds"] == [0, 1] and c[0]["round"] is None
    text = c.text()
    assert "metric: loss at the final evaluation\n" in text
    assert "seeds dropped (not in both A and B): 3 (only in B)" in text and "2 (A)" in text
    g = _csv(tmp_path / "r.csv", [("x", 0, 1, 0.9), ("x", 0, 2, 0.7), ("y", 0, 1, 0.5), ("y", 0, 2, 0.6)],
             header="group,seed,round,loss")
    assert cmp.compare(f"{g}:group=x", f"{g}:group=y", metric="loss", at="best")[0]["diffs"] == pytest.approx([0.2])
    assert cmp.compare(f"{g}:group=x", f"{g}:group=y", metric="loss")[0]["diffs"] == pytest.approx([0.1])


def test_cli_csv_sides_and_one_side_refused(tmp_path, capsys):
    f = FIG / "fig2_seeds5.csv"
    assert cli.main(["compare", f"{f}:group=tally:panel=alpha=100", f"{f}:group=softlabel (mean):panel=alpha=100"]) == 0
    assert "| 5 | -0.0190 |" in capsys.readouterr().out
    assert cli.main(["compare", f"{f}:group=tally"]) != 0
    assert "one per-seed CSV side; allowed: two sides A B" in capsys.readouterr().err


# ---- the docs ----------------------------------------------------------------------------------------------

def test_docs_state_the_adjustment_and_the_family_count():
    cli_md = (ROOT / "docs" / "cli.md").read_text()
    q = ps.t_quantile(ps.quantile(20), 2)
    assert f"over 20 pairs with\n  3 seeds {q:.1f} standard errors each side instead of 4.3" in cli_md
    assert "--per-pair" in cli_md and "FILE.csv:COLUMN=VALUE" in cli_md
    page = " ".join((ROOT / "docs" / "verdicts.md").read_text().split())
    assert verdicts.family() in page          # the one-family count, recomputed
    assert "19 of the 77 directions" in verdicts.family()


def test_the_compare_commands_the_docs_show_run(capsys):
    """verdicts.md and cli.md show two compare commands on the committed CSVs: they run and say what the
    pages say (row #102's numbers; Fig. 2's six pairs hold family-wise)."""
    import shlex
    import re
    text = (ROOT / "docs" / "verdicts.md").read_text()
    cmds = re.findall(r"`(tallysim compare docs/figures/[^`]+)`", " ".join(text.split()))
    assert len(cmds) == 2
    for cmd in cmds:
        args = shlex.split(cmd)[1:]
        assert cli.main([str(ROOT / a) if a.startswith("docs/") else a for a in args]) == 0
        out = capsys.readouterr().out
        if "--by" in args:
            assert out.count("| A below B |") == 6 and "family-wise 95% over 6 pairs" in out
        else:
            r = verdicts.rows()[101]
            assert r["setting"] == "Fig. 2 (MLP, 20 peers), alpha 0.1"
            assert f"| {r['n']} | {r['mean']:+.4f} | {r['se']:.4f} | [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] |" in out
