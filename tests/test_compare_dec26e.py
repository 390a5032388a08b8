"""`tallysim compare` (results/compare.py, compare_text.py, paired_stats.py): paired-seed comparisons.

The statistics against an independent derivation (scipy.stats: t.ppf, t.interval, sem, binomtest; numpy
for the mean), the pairing and every refusal on hand-made run directories (no compile), and end to end on a
real tiny sweep (tally and local training, 3 seeds, synthetic data; marked slow)."""
import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tallysim import cli
from tallysim.config import ConfigError
from tallysim.results import compare as cmp
from tallysim.results import paired_stats as ps

ROOT = Path(__file__).resolve().parent.parent
stats = pytest.importorskip("scipy.stats")


# ---- the statistics, against scipy ------------------------------------------------------------------------

def test_t_quantile_is_scipys():
    for df in [1, 2, 3, 4, 5, 7, 10, 19, 30, 60, 200, 5000]:
        for p in (0.9, 0.975, 0.995):
            assert ps.t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-9), (p, df)


def test_sign_test_is_binomtests_two_sided_p():
    for n in range(1, 26):
        for k in range(n + 1):
            want = stats.binomtest(k, n, 0.5, alternative="two-sided").pvalue
            assert ps.sign_test_p(k, n - k) == pytest.approx(want, rel=1e-12), (k, n)
    assert ps.sign_test_p(0, 0) == 1.0          # every seed tied: no evidence either way
    assert ps.sign_test_p(3, 0) == 0.25 and ps.sign_test_p(5, 0) == 0.0625 and ps.sign_test_p(6, 0) < 0.05


def test_summary_is_scipys_mean_sem_and_t_interval():
    rng = np.random.default_rng(0)
    for n in range(2, 12):
        for shift in (-0.05, 0.0, 0.02, 0.3):
            d = list(rng.normal(shift, 0.03, n))
            s = ps.summarize(d)
            lo, hi = stats.t.interval(0.95, n - 1, loc=np.mean(d), scale=stats.sem(d))
            assert s["mean"] == pytest.approx(np.mean(d), abs=1e-15)
            assert s["se"] == pytest.approx(stats.sem(d), rel=1e-12)
            assert (s["ci_low"], s["ci_high"]) == pytest.approx((lo, hi), rel=1e-9, abs=1e-12)
            want = "A above B" if lo > 0 else "A below B" if hi < 0 else "level within noise"
            assert s["verdict"] == want
            up, down = int(np.sum(np.array(d) > 0)), int(np.sum(np.array(d) < 0))
            assert (s["above"], s["below"], s["tied"]) == (up, down, n - up - down)
            assert s["sign_p"] == pytest.approx(stats.binomtest(up, up + down, 0.5).pvalue if up + down else 1.0)


def test_verdict_rule_cases():
    assert ps.summarize([0.1, 0.11, 0.09])["verdict"] == "A above B"
    assert ps.summarize([-0.1, -0.11, -0.09])["verdict"] == "A below B"
    # the docs' LeNet alpha 0.1 row: "above in 2 of 3 seeds: within noise"
    assert ps.summarize([0.074, -0.077, 0.044])["verdict"] == "level within noise"
    one = ps.summarize([0.3])
    assert one["verdict"] == "level within noise" and one["ci_low"] is None and one["se"] is None
    zero = ps.summarize([0.0, 0.0])
    assert zero["verdict"] == "level within noise" and zero["tied"] == 2 and zero["sign_p"] == 1.0


# ---- hand-made run directories ------------------------------------------------------------------------------

def _run(d: Path, proto: str, acc: dict, *, bits=1024, rounds=2, done_rounds=None, extra=None, cfg=None,
         first_seed=None) -> Path:
    """A run directory as tallysim writes one: config.json, and metrics.jsonl with rows 1..done_rounds;
    `acc` {seed: [acc at round 1, round 2, ...]} (several seeds: the mean row with per_seed)."""
    d.mkdir(parents=True)
    seeds = sorted(acc)
    c = {"protocol": {"name": proto}, "rounds": rounds, "seed": seeds[0] if first_seed is None else first_seed,
         "seeds": len(seeds), "peers": 4, **(cfg or {})}
    (d / "config.json").write_text(json.dumps(c))
    rows = []
    for r in range(1, (done_rounds or rounds) + 1):
        vals = [acc[s][r - 1] for s in seeds]
        row = {"round": r, "bits_per_peer": bits * r, "acc_mean": float(np.mean(vals)), "acc_global": None}
        if extra:
            row.update({k: v[r - 1] for k, v in extra.items()})
        if len(seeds) > 1:
            row.update({"seeds": seeds, "acc_mean_std": float(np.std(vals)), "per_seed": {"acc_mean": vals}})
        rows.append(json.dumps(row))
    (d / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    return d


A3 = {0: [0.5, 0.80], 1: [0.6, 0.82], 2: [0.9, 0.84]}
B3 = {0: [0.4, 0.70], 1: [0.5, 0.71], 2: [0.6, 0.75]}


def test_known_numbers_and_markdown(tmp_path):
    a, b = _run(tmp_path / "a", "tally", A3), _run(tmp_path / "b", "local", B3, bits=0)
    c = cmp.compare(a, b)
    p, = c
    assert p["seeds"] == [0, 1, 2] and p["diffs"] == pytest.approx([0.10, 0.11, 0.09])
    assert p["mean"] == pytest.approx(0.10) and p["se"] == pytest.approx(0.01 / math.sqrt(3))
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert (p["ci_low"], p["ci_high"]) == pytest.approx((0.10 - half, 0.10 + half))
    assert p["verdict"] == "A above B" and p["sign_p"] == 0.25
    text = c.text()
    for want in ("| 0 | 0.8000 | 0.7000 | +0.1000 |", "| 3 | +0.1000 | 0.0058 | [+0.0752, +0.1248] | 3 / 0 / 0 | 0.25 | "
                 "A above B |", "95% Student-t interval", "metric: acc_mean at the final evaluation (round 2)",
                 "not matched bits: A 2048 bits per peer, B 0 bits per peer", "protocol.name (tally / local)"):
        assert want in text, want
    assert not any("final evaluation is round" in n for n in c.notes)
    longer = _run(tmp_path / "longer", "local", {s: v + [0.9] for s, v in B3.items()}, rounds=3)
    assert "A's final evaluation is round 2, B's round 3" in cmp.compare(a, longer).text()
    best = cmp.compare(a, b, at="best")[0]          # each seed's own best round: seed 2's is round 1 (0.9)
    assert best["a_values"] == [0.80, 0.82, 0.9] and best["b_values"] == [0.70, 0.71, 0.75]


def test_a_run_against_itself_is_level(tmp_path):
    a = _run(tmp_path / "a", "tally", A3)
    p, = c = cmp.compare(a, a)
    assert p["diffs"] == [0.0, 0.0, 0.0] and p["mean"] == 0.0 and p["verdict"] == "level within noise"
    assert p["tied"] == 3 and p["sign_p"] == 1.0 and "same run directory" in c.text()
    assert not any("not matched bits" in n for n in c.notes)


def test_one_seed_says_no_interval(tmp_path):
    a = _run(tmp_path / "a", "tally", {4: [0.5, 0.8]})
    b = _run(tmp_path / "b", "local", {4: [0.5, 0.6]})
    p, = c = cmp.compare(a, b)
    assert p["seeds"] == [4] and p["verdict"] == "level within noise"
    assert "| 1 | +0.2000 |  | one seed: no interval | 1 / 0 / 0 | 1 | level within noise |" in c.text()


def test_unmatched_seeds_are_dropped_and_named_or_refused(tmp_path):
    a = _run(tmp_path / "a", "tally", A3)
    b = _run(tmp_path / "b", "local", {1: [0.5, 0.71], 2: [0.6, 0.75], 3: [0.6, 0.6]})
    p, = c = cmp.compare(a, b)
    assert p["seeds"] == [1, 2] and p["dropped"] == [0, 3]
    assert "seeds dropped (not in both A and B): 0 (only in A), 3 (only in B)" in c.text()
    far = _run(tmp_path / "far", "local", {7: [0.5, 0.5], 8: [0.5, 0.5]})
    with pytest.raises(ConfigError, match=r"A's seeds \[0, 1, 2\] and B's \[7, 8\] have none in common"):
        cmp.compare(a, far)


def test_unfinished_and_absent_metric_and_bad_arguments_are_refused(tmp_path):
    a = _run(tmp_path / "a", "tally", A3, extra={"vote_acc": [0.3, 0.4]})
    b = _run(tmp_path / "b", "local", B3)
    half = _run(tmp_path / "half", "local", B3, rounds=2, done_rounds=1)
    with pytest.raises(ConfigError, match=r"B .*half is not finished \(incomplete: round 1 of 2\)"):
        cmp.compare(a, half)
    with pytest.raises(ConfigError, match=r"B .*: no value of 'vote_acc' in any row"):
        cmp.compare(a, b, metric="vote_acc")
    with pytest.raises(ConfigError, match="not a column of any run"):
        cmp.compare(a, b, metric="acc_nope")
    with pytest.raises(ConfigError, match="--at 'last' is not known; allowed: final"):
        cmp.compare(a, b, at="last")
    with pytest.raises(ConfigError, match="does not exist"):
        cmp.compare(a, tmp_path / "missing")
    for by in ("protocol.name", "protocol.name=tally", "protocol.name=tally,tally", "seed=0,1"):
        with pytest.raises(ConfigError, match="--by"):
            cmp.compare(tmp_path, by=by)
    assert cmp.compare(a, b, metric="acc_mean")[0]["verdict"] == "A above B"


def _sweep(root: Path) -> Path:
    """A sweep's --out by hand: tally and local at two alphas; local's alpha 0.5 as two one-seed runs
    (a seed axis), pooled into one side; an fedavg run with no partner."""
    root.mkdir()
    (root / "sweep.json").write_text(json.dumps({"runs": [], "axes": []}))
    # per-seed shifts that differ (review32: one shift at every seed is a zero-width interval, "flat")
    for alpha, shift in ((0.1, (0.1, 0.11, 0.09)), (0.5, (-0.01, -0.011, -0.009))):
        part = {"partition": {"kind": "dirichlet", "alpha": alpha}}
        _run(root / f"tally_{alpha}", "tally", {s: [v[0], v[1] + shift[s]] for s, v in B3.items()}, cfg=part)
        if alpha == 0.1:
            _run(root / f"local_{alpha}", "local", B3, bits=0, cfg=part)
        else:
            for s, v in B3.items():
                _run(root / f"local_{alpha}_s{s}", "local", {s: v}, bits=0, cfg=part)
    _run(root / "fedavg_0.1", "fedavg", B3, cfg={"partition": {"kind": "dirichlet", "alpha": 0.3}})
    return root


def test_by_pairs_runs_differing_only_in_the_field(tmp_path):
    root = _sweep(tmp_path / "sw")
    c = cmp.compare(root, by="protocol.name=tally,local")
    assert [p["pair"] for p in c] == ["partition.alpha=0.1", "partition.alpha=0.5"]
    assert [p["verdict"] for p in c] == ["A above B", "A below B"]
    assert c[1]["seeds"] == [0, 1, 2] and c[1]["diffs"] == pytest.approx([-0.01, -0.011, -0.009])
    assert c[1]["b"].count("local_0.5_s") == 3          # the one-seed runs pooled
    assert c.a_name == "protocol.name=tally" and "| partition.alpha=0.5 | 3 | -0.0100 |" in c.text()
    with pytest.raises(ConfigError, match="no run has protocol.name=fedprox; the runs' values: fedavg, local, tally"):
        cmp.compare(root, by="protocol.name=tally,fedprox")
    with pytest.raises(ConfigError, match="did you mean protocol.name"):
        cmp.compare(root, by="protocl.name=tally,local")
    with pytest.raises(ConfigError, match="no run with protocol.name=fedavg has a partner with protocol.name=local"):
        cmp.compare(root, by="protocol.name=fedavg,local")      # alpha 0.3: no local run there
    c = cmp.compare(root, by="partition.alpha=0.1,0.5")            # tally with tally, local with local
    assert {p["pair"]: p["verdict"] for p in c} == {"protocol.name=tally": "A above B",
                                                    "protocol.name=local": "level within noise"}
    assert [p["mean"] for p in c if p["pair"] == "protocol.name=local"] == [0.0]


def test_cli_markdown_csv_out_and_refusals(tmp_path, capsys):
    root = _sweep(tmp_path / "sw")
    assert cli.main(["compare", str(root), "--by", "protocol.name=tally,local", "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["pair"], r["seed"]) for r in rows][:4] == [("partition.alpha=0.1", "0"), ("partition.alpha=0.1", "1"),
                                                          ("partition.alpha=0.1", "2"), ("partition.alpha=0.1", "mean")]
    mean = rows[3]
    assert float(mean["diff"]) == pytest.approx(0.1) and mean["verdict"] == "A above B" and mean["n"] == "3"
    # two pairs: family-wise (compare51), Bonferroni's quantile 1 - 0.05/4 and Holm's p (0.25 and 0.25 -> 0.5)
    assert float(mean["ci_low"]) == pytest.approx(0.1 - stats.t.ppf(1 - 0.05 / 4, 2) * 0.01 / math.sqrt(3))
    assert float(mean["sign_p"]) == 0.5 and mean["family"] == "2"
    assert "compare: partition.alpha=0.1: not matched bits" in err        # the notes: on stderr with CSV
    target = tmp_path / "out" / "c.md"
    assert cli.main(["compare", str(root / "tally_0.1"), str(root / "local_0.1"), "--out", str(target)]) == 0
    assert "| 3 | +0.1000 |" in target.read_text() and capsys.readouterr().out.strip() == str(target)
    assert cli.main(["compare", str(root)]) == 2
    assert "a sweep directory alone; allowed: --by FIELD=VALUE_A,VALUE_B" in capsys.readouterr().err
    assert cli.main(["compare", str(root), "--by", "protocol.name=tally"]) == 2
    assert "expected one field and two different values" in capsys.readouterr().err
    assert cli.main(["compare", str(root / "tally_0.1"), str(root / "local_0.1"), "--out", str(tmp_path / "c.xlsx")]) == 2
    assert "not .xlsx" in capsys.readouterr().err
    assert cli.main(["compare", str(root / "tally_0.1"), str(root)]) == 2
    assert "B " in capsys.readouterr().err


def test_compare_imports_no_jax(tmp_path):
    """The comparison reads config.json and metrics.jsonl only: no JAX, no data set, nothing compiled."""
    a, b = _run(tmp_path / "a", "tally", A3), _run(tmp_path / "b", "local", B3)
    code = (f"import sys, tallysim; c = tallysim.compare({str(a)!r}, {str(b)!r}); "
            "print(c[0]['verdict'], 'jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert out.stdout.split() == ["A", "above", "B", "False"], out.stderr


# ---- end to end: a real tiny sweep ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """tally and local training, 3 seeds each, synthetic data at the suite's tiny size: one sweep, two
    programs (one per protocol), every seed a lane."""
    from conftest import TINY_NO_WARMUP
    out = tmp_path_factory.mktemp("cmp") / "sw"
    assert cli.main(["sweep", *TINY_NO_WARMUP, "protocol.name=tally,local", "seeds=3", "--out", str(out),
                     "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_real_runs_compare_as_their_per_seed_rows_say(real_sweep, capsys):
    tally, local = real_sweep / "protocol.name=tally", real_sweep / "protocol.name=local"
    last = {d: json.loads((d / "metrics.jsonl").read_text().splitlines()[-1]) for d in (tally, local)}
    assert last[tally]["seeds"] == last[local]["seeds"] == [0, 1, 2]
    a, b = np.array(last[tally]["per_seed"]["acc_mean"]), np.array(last[local]["per_seed"]["acc_mean"])
    d = a - b
    p, = cmp.compare(tally, local)
    assert p["seeds"] == [0, 1, 2] and p["metric_a"] == p["metric_b"] == "acc_mean"
    assert p["a_values"] == list(a) and p["b_values"] == list(b) and p["diffs"] == pytest.approx(list(d), abs=1e-15)
    lo, hi = stats.t.interval(0.95, 2, loc=d.mean(), scale=stats.sem(d))
    assert (p["mean"], p["se"], p["ci_low"], p["ci_high"]) == pytest.approx((d.mean(), stats.sem(d), lo, hi))
    assert p["sign_p"] == pytest.approx(stats.binomtest(int((d > 0).sum()), int((d != 0).sum()), 0.5).pvalue)
    assert p["verdict"] == ("A above B" if lo > 0 else "A below B" if hi < 0 else "level within noise")
    by, = cmp.compare(real_sweep, by="protocol.name=tally,local")      # the sweep's pair is the same pair
    assert {k: by[k] for k in ("diffs", "mean", "ci_low", "verdict")} == {k: p[k] for k in ("diffs", "mean", "ci_low", "verdict")}
    same, = cmp.compare(tally, tally, at="best")
    assert same["diffs"] == [0.0] * 3 and same["verdict"] == "level within noise"
    assert cli.main(["compare", str(real_sweep), "--by", "protocol.name=local,tally"]) == 0
    text = capsys.readouterr().out
    assert f"| 3 | {-d.mean():+.4f} |" in text and "not matched bits: A 0 bits per peer" in text


def test_the_c10_pool3200_note_is_its_per_seed_csvs():
    """docs/matched-bits.md's compare note on soft labels' lead over tally at C = 10 (pool of 3,200): the
    numbers are paired_stats over the committed per-seed CSVs (what the re-run reproduced to the sixth
    decimal); fails on a number typed by hand or a verdict against the interval."""
    fig = ROOT / "docs" / "figures"
    soft = {int(r["seed"]): float(r["acc_mean"]) for r in csv.DictReader(open(fig / "class_matched_bits_paired_seeds.csv"))
            if r["group"] == "c10_softlabel_8bit_40p" and r["panel"] == "dir0.1"}
    tally = {int(r["seed"]): float(r["acc_mean"]) for r in csv.DictReader(open(fig / "class_c10_pool3200_paired_seeds.csv"))}
    s = ps.summarize([soft[k] - tally[k] for k in (0, 1, 2)])
    want = (f"soft labels minus tally {s['mean']:+.3f}, standard error {s['se']:.3f}, 95% t-interval "
            f"[{s['ci_low']:+.3f}, {s['ci_high']:+.3f}], {s['above']} of 3 seeds above, sign test p {s['sign_p']:.2g}: "
            f"**{s['verdict']}")
    assert want in " ".join((ROOT / "docs" / "matched-bits.md").read_text().split()), want
    row = f"but within the noise: `tallysim compare` gives a 95% t-interval of [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}]"
    assert s["verdict"] == "level within noise" and row in (ROOT / "docs" / "figures.md").read_text(), row


def test_a_seed_without_a_value_is_dropped_and_named(tmp_path):
    """A seed whose value is null (nothing kept that round) or, in a mean over seeds, NaN (diverged) leaves
    the pair: its difference would be no number, and the others' statistics stand."""
    a = _run(tmp_path / "a", "tally", A3)
    b = _run(tmp_path / "b", "local", B3)
    rows = [json.loads(x) for x in (b / "metrics.jsonl").read_text().splitlines()]
    rows[-1]["per_seed"]["acc_mean"][1] = None
    rows[-1]["seeds_counted"] = {"acc_mean": 2}
    (b / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    p, = c = cmp.compare(a, b)
    assert p["seeds"] == [0, 2] and p["dropped"] == [1] and p["n"] == 2
    assert "seeds dropped (no finite value, e.g. diverged): 1 (B)" in c.text()


def test_the_fields_that_differ_blank_what_a_run_does_not_read(tmp_path):
    a = _run(tmp_path / "a", "softlabel", A3, cfg={"comm": {"soft_bits": 8}})
    b = _run(tmp_path / "b", "tally", B3, cfg={"comm": {"soft_bits": 32}})
    assert "A and B differ in: protocol.name (softlabel / tally); comm.soft_bits (8 / None)" in cmp.compare(a, b).notes
