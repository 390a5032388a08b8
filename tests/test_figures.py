"""Figure configs: every shipped figure validates at full and smoke size; a tiny figure runs end to end
and resumes; unknown figures fail in one line."""
import csv
import json
import pathlib

import pytest

from tallysim import cli, config
from tallysim import figures
from tallysim.config import ConfigError


@pytest.mark.parametrize("name", list(figures.FIGURES))
@pytest.mark.parametrize("smoke", [False, True])
def test_shipped_figure_configs_validate(name, smoke):
    spec = config.read_file(figures.FIGURES[name])
    assert spec["kind"] in figures.KINDS and "smoke" in spec
    if spec["kind"] == "speed":
        _check_speed_grid(spec, smoke)
        return
    plans = figures.group_plans(spec, smoke, figures.EXPERIMENTS)
    assert plans and all(runs for _, runs in plans.values())
    for cfg, runs in plans.values():
        if smoke:
            assert cfg.rounds <= 3 and cfg.peers <= 6 and len(runs) <= 4
        assert cfg.data.name in ("fashion_mnist", "synthetic", "shakespeare", "shakespeare_words")   # fig11: text


SPEED_KEYS = {"model", "peers", "dtype", "steps", "batch", "loop_max", "impls", "max_peers"}   # figures.speed_rows reads these


def _check_speed_grid(spec, smoke):
    """A speed figure (fig7) runs no sweep, so group_plans never sees it: check its benchmark grid
    against what the benchmark accepts; a key speed_rows does not read would be silently ignored."""
    from tallysim import validation
    from tallysim.bench import throughput
    grid = {**spec["base"], **(spec["smoke"].get("base", {}) if smoke else {})}
    assert set(grid) <= SPEED_KEYS, set(grid) - SPEED_KEYS
    listed = lambda v: v if isinstance(v, list) else [v]          # noqa: E731
    assert set(listed(grid["model"])) <= set(validation.CHOICES["model.name"])
    assert set(listed(grid.get("dtype", "float32"))) <= {"float32", "bfloat16"}
    assert set(grid.get("impls", throughput.IMPLS)) <= set(throughput.IMPLS)
    sizes = listed(grid["peers"]) + [grid.get("steps", 20), grid.get("batch", 32), grid.get("loop_max", 100)]
    assert all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes), sizes
    if smoke:
        assert max(listed(grid["peers"])) <= 10 and grid.get("steps", 20) <= 5


@pytest.mark.parametrize("i", range(1, 7))
def test_cifar_variants_validate(i):
    path = figures.EXPERIMENTS / "cifar" / f"fig{i}.json"
    spec = config.read_file(str(path))
    for smoke in (False, True):
        plans = figures.group_plans(spec, smoke, path.parent)
        assert all(cfg.data.name.startswith("cifar") for cfg, _ in plans.values())


def test_fig5_includes_the_pareto_operating_points_in_three_panels():
    spec = config.read_file(figures.FIGURES["fig5"])
    plans = figures.group_plans(spec, False, figures.EXPERIMENTS)
    cfg, runs = plans["bridge"]
    assert cfg.protocol.name == "bridge" and len(runs) == 3 * 16     # 3 panels x density x vote_at x gate x ramp
    assert plans["fedavg"][0].protocol.name == "fedavg" and len(plans["fedavg"][1]) == 3 * 2
    partitions = {}
    for name, ov in runs:
        panel = figures.panel_of(name)
        partitions.setdefault(panel, set()).add(tuple(o for o in ov if o.startswith("partition.")))
    assert partitions == {"dir0.1": {("partition.kind=dirichlet", "partition.alpha=0.1", "partition.cap=false")},
                          "dir0.5": {("partition.kind=dirichlet", "partition.alpha=0.5", "partition.cap=false")},
                          "iid": {("partition.kind=iid",)}}
    cfgs = [c for c in __import__("tallysim").sweep.configs(cfg, runs)]
    assert {c.bridge.vote_at for c in cfgs} == {"start", "merge"}
    assert {(c.distill.ramp_rounds, c.distill.gate) for c in cfgs} == {(0, 0), (5, 0), (0, 0.5), (5, 0.5)}
    assert {c.partition.kind for c in cfgs} == {"dirichlet", "iid"}


def test_pareto_panels_and_every_round_points(tmp_path):
    """A two-panel pareto figure: one panel per partition, FedAvg's rounds read off one run."""
    spec = {"kind": "pareto", "title": "tiny pareto", "every_round": ["fedavg"], "overall": True,
            "panels": {"a": {"partition": {"kind": "iid"}}, "b": {"partition": {"kind": "dirichlet", "alpha": 0.5}}},
            "base": {"peers": 3, "rounds": 2, "eval_every": 1, "probe": {"per_round": 32, "pool_size": 100},
                     "data": {"name": "synthetic", "train_size": 600, "test_size": 100}, "model": {"width": 8}},
            "groups": {"fedavg": {"protocol": {"name": "fedavg"}}, "tally": {"protocol": {"name": "tally"}}},
            "smoke": {}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(spec))
    out = figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                              progress=False, log=lambda m: None)
    assert sorted(p.name for p in (tmp_path / "res" / "tiny" / "fedavg").iterdir() if p.is_dir()) == ["a", "b"]
    rows = (tmp_path / "fig" / "tiny.csv").read_text().splitlines()
    assert rows[0].startswith("panel,protocol,run")
    fedavg = [r for r in rows[1:] if ",fedavg," in r]
    assert sorted(r.split(",")[2] for r in fedavg) == ["a@r1", "a@r2", "b@r1", "b@r2"]   # one point per round
    assert sum(",tally," in r for r in rows) == 2                                         # final round only
    md = pathlib.Path(out["frontier"]).read_text()
    assert "## a" in md and "## b" in md
    overall = pathlib.Path(out["overall"]).read_text()              # the frontier over both protocols
    assert "## a: the frontier over all protocols" in overall and "## b: the frontier" in overall
    best = list(csv.DictReader(open(out["overall_csv"])))
    assert best and {r["panel"] for r in best} <= {"a", "b"}
    for r in best:                                                  # nothing in its panel dominates it
        assert not any(q["panel"] == r["panel"] and float(q["bits_per_peer"]) <= float(r["bits_per_peer"])
                       and float(q["accuracy"]) > float(r["accuracy"]) for q in best)


FIG9 = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "fig9.json"


def test_fig9_puts_every_protocol_on_one_plane():
    from tallysim import protocols
    spec = config.read_file(str(FIG9))
    assert set(spec["groups"]) == set(protocols.REGISTRY) and set(spec["every_round"]) == set(spec["groups"])
    assert list(spec["panels"]) == ["dir0.1", "dir0.5", "iid"] and spec["overall"]
    logs = []
    assert figures.dry_run(str(FIG9), log=logs.append) == 27
    assert "99 runs; 27 compiled programs" in logs[-1]         # fedct and topk_soft: 12 runs, 4 programs
    assert figures.dry_run(str(FIG9), smoke=True, log=lambda m: None) == 3      # CI: the three of smoke.only


def test_tiny_figure_end_to_end_and_resume(tmp_path):
    spec = {"kind": "final_vs", "x": "partition.alpha", "title": "tiny",
            "base": {"peers": 3, "rounds": 1, "seeds": 2, "probe": {"per_round": 32, "pool_size": 100},
                     "data": {"name": "synthetic", "train_size": 900, "test_size": 200},
                     "model": {"width": 16}, "partition": {"kind": "dirichlet", "min_size": 2}},
            "groups": {"tally": {"protocol": {"name": "tally"}}, "local": {"protocol": {"name": "local"}}},
            "sweep": {"partition.alpha": [0.5, 100]},
            "smoke": {"base": {}}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(spec))
    logs = []
    out = figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                              progress=False, log=logs.append)
    for k in ("png", "pdf", "csv"):
        assert (tmp_path / "fig" / f"tiny.{k}").stat().st_size > 100
    rows = (tmp_path / "fig" / "tiny.csv").read_text().splitlines()
    assert rows[0].startswith("group,partition.alpha,accuracy,accuracy_std") and len(rows) == 1 + 4
    logs.clear()
    figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                        progress=False, log=logs.append)
    assert sum("skip" in m for m in logs) == 4                      # resumed: nothing reran
    assert out["seconds"] >= 0


def test_unknown_figure_is_a_one_line_error(capsys):
    assert cli.main(["figure", "fig99"]) == 2
    assert "allowed: fig1" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        figures.resolve("nope")


def test_figure_whose_runs_all_failed_fails_loudly(tmp_path, capsys):
    # Data that passes the checks before any run starts (an .npz that exists) but cannot be read: every
    # run fails as it loads. (An unprepared data.name is refused before any run folder: leftovers40.)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not an npz archive")
    spec = {"kind": "curves", "title": "doomed",
            "base": {"peers": 2, "rounds": 1, "data": {"name": "files", "path": str(broken)}},
            "groups": {"tally": {"protocol": {"name": "tally"}}, "fedavg": {"protocol": {"name": "fedavg"}}}}
    path = tmp_path / "doomed.json"
    path.write_text(json.dumps(spec))
    args = ["figure", str(path), "--results", str(tmp_path / "res"), "--out", str(tmp_path / "fig"), "--quiet"]
    with pytest.raises(figures.FigureError, match=r"doomed: all 2 runs failed, nothing to draw; the first: "
                       r".*broken\.npz"):
        figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                            progress=False, log=lambda m: None)
    capsys.readouterr()
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tallysim: error: doomed: all 2 runs failed"), err
    assert "error.txt" in err[0]
    assert not list((tmp_path / "fig").glob("doomed*.png"))              # no empty plot drawn


def test_experiments_resolve_as_package_data(tmp_path, monkeypatch):
    # tallysim installed (a wheel: no setup.py beside the package): the installed package's copy
    from importlib.resources import files
    import tallysim
    monkeypatch.setattr(tallysim, "__file__", str(tmp_path / "site-packages" / "tallysim" / "__init__.py"))
    d = figures.experiments_dir()
    assert (d / "fig1.json").is_file() and (d / "pareto" / "bridge.json").is_file()
    assert d == pathlib.Path(str(files("tallysim.experiments")))


def test_experiments_of_a_checkout_are_its_own(tmp_path, monkeypatch):
    """tallysim imported from a checkout reads that checkout's experiments/, even where
    `tallysim.experiments` resolves elsewhere: another checkout's editable install in the same environment
    (a git worktree or clone on PYTHONPATH) made `figure fig1` and the tests read that other tree's configs
    (userjourney13: /work/main's from a worktree)."""
    import importlib.resources
    (tmp_path / "fig1.json").write_text("{}")
    monkeypatch.setattr(importlib.resources, "files", lambda name: tmp_path)     # the other tree's copy
    d = figures.experiments_dir()
    assert d == pathlib.Path(figures.__file__).resolve().parents[2] / "experiments" != tmp_path
    assert (d.parent / "setup.py").is_file() and (d / "fig1.json").is_file()


def test_experiments_dir_falls_back_to_the_checkout(monkeypatch):
    # A bare source tree on PYTHONPATH (no tallysim.experiments package): the checkout's experiments/,
    # found from the tallysim package wherever the figures module sits (tallysim/figures/ since issue 31).
    import importlib.resources

    def missing(name):
        raise ModuleNotFoundError(name)
    monkeypatch.setattr(importlib.resources, "files", missing)
    d = figures.experiments_dir()
    assert d == pathlib.Path(figures.__file__).resolve().parents[2] / "experiments"
    assert (d / "fig1.json").is_file() and (d / "pareto" / "bridge.json").is_file()


def test_fig8_fractions_share_programs():
    # faults.fraction is per-lane (lanes.py): per group one fault-free program (both fault kinds' fraction
    # 0, both partitions) and one per fault kind, instead of one per (kind, fraction).
    logs = []
    assert figures.dry_run("fig8", log=logs.append) == 6 * 3
    assert "144 runs; 18 compiled programs" in logs[-1]
    assert figures.dry_run("fig8", grouped=False, log=lambda m: None) == 144
    assert figures.dry_run("fig8", smoke=True, log=lambda m: None) == 1


def faults_runs(root: pathlib.Path) -> dict:
    """Run directories of the faults figure: two aggregators, two attacks, three faulty fractions."""
    data = {}
    for group, server in (("tally", False), ("fedavg (median)", True)):
        data[group] = []
        for kind in ("confident_wrong", "under_trained"):
            for f, a in ((0, 0.8), (0.2, 0.77), (0.4, 0.6)):
                d = root / group / f"{kind}-{f}"
                d.mkdir(parents=True)
                (d / "config.json").write_text(json.dumps({"partition": {"alpha": 0.5}, "peers": 5}))
                row = {"round": 2, "bits_per_peer": 10.0, "acc_mean": 0.1, "acc_mean_honest": None if server else a,
                       "acc_global": a if server else None, "vote_acc": a, "softavg_acc": a - 0.1,
                       "vote_acc_honest": a, "softavg_acc_honest": a, "faulty": int(f * 5)}
                (d / "metrics.jsonl").write_text(json.dumps(row) + "\n")
                data[group].append(({"faults.kind": kind, "partition.kind": "dirichlet",
                                     "faults.fraction": str(f)}, d))
    return data


FAULTS_SPEC = {"x": "faults.fraction", "facets": ["faults.kind", "partition.kind"], "within": 0.05}


def test_the_robustness_figure_writes_the_files_every_kind_writes(tmp_path):
    # every figure kind saves through figures/drawing.py (robustness.py had its own copy of the saving)
    from tallysim.figures import plots
    data = faults_runs(tmp_path)
    for _, d in (r for runs in data.values() for r in runs):        # a run's config.json has its faults
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "faults": {"kind": "none", "fraction": 0.0}}))
    paths = plots.draw("robustness", {}, data, tmp_path / "out" / "rb", "test")
    assert list(paths) == ["png", "pdf", "csv", "table"]          # the order <tag>.json records them in
    assert all(pathlib.Path(p).is_file() for p in paths.values()) and paths["table"].endswith("rb_table.md")
    assert "| tally |" in pathlib.Path(paths["table"]).read_text()


def test_faults_figure_table_from_runs(tmp_path):
    from tallysim.figures import faults_plot, plots
    assert faults_plot.tolerated([(0.0, 0.80), (0.1, 0.78), (0.2, 0.74), (0.3, 0.79)], 0.05) == 0.1
    assert faults_plot.tolerated([(0.2, 0.70), (0.0, 0.71)], 0.05) == 0.2
    paths = plots.draw("faults", FAULTS_SPEC, faults_runs(tmp_path), tmp_path / "out" / "f8", "test")
    table = pathlib.Path(paths["table"]).read_text()
    assert "| confident_wrong, dirichlet 0.5 | tally | 0.800 | 0.770 | 0.600 | 0.2 |" in table
    assert "| under_trained, dirichlet 0.5 | fedavg (median) | 0.800 | 0.770 | 0.600 | 0.2 |" in table
    csv_rows = pathlib.Path(paths["csv"]).read_text().splitlines()
    assert len(csv_rows) == 1 + 12 and (tmp_path / "out" / "f8.png").stat().st_size > 1000


def test_fig10_table_says_what_epsilon_is_and_in_which_setting(tmp_path):
    """The privacy table's epsilon is per peer (user level), at the runs' delta, in the runs' setting;
    the heading says so, from the configs (issue 30), and the shipped table carries that heading."""
    import json
    from tallysim.figures import plots
    cfg = {"protocol": {"name": "tally"}, "peers": 20, "rounds": 15, "seeds": 2, "participation": 1.0,
           "data": {"name": "fashion_mnist"}, "model": {"name": "mlp"}, "probe": {"per_round": 500},
           "privacy": {"noise": 10, "delta": 1e-5, "accountant": "rdp"}}
    d = tmp_path / "a"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "metrics.jsonl").write_text(json.dumps({"round": 15, "bits_per_peer": 8.0, "acc_mean": 0.5,
                                                 "acc_global": None, "epsilon": 3.0, "wall_s": 1}) + "\n")
    plots.draw("privacy", {"facets": ["partition.alpha"]}, {"tally": [({"partition.alpha": "0.1"}, d)]},
               tmp_path / "fig10", "t")
    head = (tmp_path / "fig10_table.md").read_text().splitlines()[0]
    assert "epsilon per peer, user level" in head and "delta = 1e-05" in head, head
    assert "Setting: fashion_mnist, 20 peers, model mlp, 15 rounds, participation 1, 500 probes per round, " \
           "2 seeds" in head, head
    shipped = (pathlib.Path(__file__).parent.parent / "docs" / "figures" / "fig10_table.md").read_text()
    assert "epsilon per peer" in shipped.splitlines()[0] and "delta = 1e-05" in shipped.splitlines()[0]


def test_a_shipped_config_path_works_outside_a_checkout(tmp_path, monkeypatch, capsys):
    """`run --config experiments/demo.json` from a directory without experiments/ (as from a wheel)
    reads the installed copy, with a note; a path found nowhere is still one error line (issue 30)."""
    monkeypatch.chdir(tmp_path)
    assert figures.shipped_config("experiments/demo.json") == (str(figures.EXPERIMENTS / "demo.json"), True)
    assert figures.shipped_config("pareto/bridge.json")[1]
    assert figures.shipped_config("experiments/../../etc/passwd") == ("experiments/../../etc/passwd", False)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "demo.json").write_text('{"peers": 3}')
    assert figures.shipped_config("experiments/demo.json") == ("experiments/demo.json", False)  # the local file wins
    (tmp_path / "experiments" / "demo.json").unlink()
    assert cli.main(["sweep", "--config", "experiments/demo.json", "--dry-run", "--out", str(tmp_path / "s")]) == 0
    assert "using the shipped copy" in capsys.readouterr().err
    assert cli.main(["run", "--config", "experiments/nope.json", "--out", str(tmp_path / "r")]) == 2
    assert "nope.json" in capsys.readouterr().err


FIG11 = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "fig11.json"   # the checkout's copy


def test_fig11_text_vocabularies_validate_and_refusals():
    """fig11 (issue 32): both vocabularies as panels, every group valid on text at full and smoke size;
    cfd runs on text (per token); selective_fd and feddf run too but are not in the figure."""
    spec = config.read_file(str(FIG11))
    assert spec["kind"] == "vocab" and list(spec["panels"]) == ["chars", "words"]
    assert set(spec["groups"]) == {"tally", "softlabel", "cfd", "fedavg", "bridge"}
    assert spec["groups"]["softlabel"]["sweep"]["comm.soft_bits"] == [32, 8]
    for smoke in (False, True):
        plans = figures.group_plans(spec, smoke, FIG11.parent)
        for cfg, runs in plans.values():
            assert cfg.partition.kind == "natural" and cfg.model.name == "lstm"
            assert {n.split("__")[0] for n, _ in runs} == {"chars", "words"}
    from tallysim.sim import tasks
    cfg, _ = plans["tally"]
    tasks.check(cfg, tasks.make("next_token", (80,)))
    for name in ("cfd", "selective_fd", "feddf"):           # every protocol runs on text now
        tasks.check(config.apply_overrides(cfg, [f"protocol.name={name}"]), tasks.make("next_token", (80,)))
    with pytest.raises(ConfigError, match="vote.weighting=history does not run on next-token"):
        tasks.check(config.apply_overrides(cfg, ["vote.weighting=history"]), tasks.make("next_token", (80,)))


def test_fig11_table_prints_the_soft_hard_ratio_per_token(tmp_path, monkeypatch):
    from tallysim.figures import plots, vocab_plot
    monkeypatch.setattr(vocab_plot, "vocab_size", {"shakespeare": 80, "shakespeare_words": 10004}.get)
    data = {}
    for group, soft in (("tally", 32), ("softlabel", 8), ("cfd", 32)):
        for panel, ds in (("chars", "shakespeare"), ("words", "shakespeare_words")):
            d = tmp_path / group / (panel + "__x")
            d.mkdir(parents=True)
            (d / "config.json").write_text(json.dumps({"protocol": {"name": group}, "data": {"name": ds},
                                                       "comm": {"soft_bits": soft}, "cfd": {"bits": 4}}))
            (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 100.0, "acc_mean": 0.25,
                                                         "acc_global": None, "ppl_mean": 12.345, "wall_s": 1}) + "\n")
            data.setdefault(group, []).append(({"data.name": ds}, d))
    out = plots.draw("vocab", {"panels": {"chars": {}, "words": {}}}, data, tmp_path / "fig11", "t")
    table = pathlib.Path(out["table"]).read_text()
    assert "| chars | shakespeare | 80 | tally | 1 | 0.2500 | 12.35 | 100 | 7 | 366 (32-bit soft / vote) |" in table
    assert "| words | shakespeare_words | 10004 | softlabel 8 bits | 1 | 0.2500 | 12.35 | 100 | 80032 | 5,717 |" in table
    # cfd: C * cfd.bits per token (4 bits here: 40,016 at C = 10,004; 2,858 times a 14-bit vote)
    assert "| words | shakespeare_words | 10004 | cfd 4 bits | 1 | 0.2500 | 12.35 | 100 | 40016 | 2,858 |" in table
    assert pathlib.Path(out["png"]).stat().st_size > 100


FIG12 = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "fig12.json"


def test_fig12_model_groups_validate_at_both_sizes():
    """fig12 (issue 34): MLP, LeNet and CNN groups in one run, tally / softlabel / local, two alphas."""
    from tallysim import model_groups
    spec = config.read_file(str(FIG12))
    assert spec["kind"] == "model_groups" and set(spec["groups"]) == {"local", "tally", "softlabel", "fedct", "topk_soft"}
    for smoke in (False, True):
        for cfg, runs in figures.group_plans(spec, smoke, FIG12.parent).values():
            groups = model_groups.parse(cfg.model.groups)
            assert [dict(g.values)["model.name"] for g in groups] == ["mlp", "lenet", "cnn"]
            assert sum(g.peers for g in groups) == cfg.peers
            assert {n.split("__")[0] for n, _ in runs} == {"alpha01", "alpha1"}


def test_fig12_table_gives_each_group_its_gain_over_local(tmp_path):
    from tallysim.figures import plots
    groups = "mlp:2:mlp;cnn:2:cnn"
    data = {}
    for protocol, accs, bits in (("local", (0.5, 0.6), 0), ("tally", (0.55, 0.58), 512)):
        for panel in ("alpha01", "alpha1"):
            d = tmp_path / protocol / (panel + "__x")
            d.mkdir(parents=True)
            (d / "config.json").write_text(json.dumps({"protocol": {"name": protocol}, "model": {"groups": groups}}))
            row = {"round": 1, "bits_per_peer": bits, "acc_mean": 0.5, "acc_global": None, "wall_s": 1,
                   "acc_mean@mlp": accs[0], "acc_mean@cnn": accs[1], "bits_per_peer@mlp": bits,
                   "bits_per_peer@cnn": bits}
            (d / "metrics.jsonl").write_text(json.dumps(row) + "\n")
            data.setdefault(protocol, []).append(({}, d))
    out = plots.draw("model_groups", {"panels": {"alpha01": {}, "alpha1": {}}}, data, tmp_path / "fig12", "t")
    table = pathlib.Path(out["table"]).read_text()
    assert "| alpha01 | tally | mlp | 1 | 0.5500 | 512 | +0.0500 |" in table       # gains from the others
    assert "| alpha1 | tally | cnn | 1 | 0.5800 | 512 | -0.0200 |" in table        # loses
    assert "| alpha1 | local | cnn | 1 | 0.6000 | 0 | - |" in table
    assert pathlib.Path(out["png"]).stat().st_size > 100
