"""`tallysim bench --population`: FedAvg over 10^4, 10^5 and 10^6 synthetic clients with a cohort of
10 to 100 per round (issue 33): peak resident memory and seconds per round, with the server model alone
(`client_storage=auto`) and, where it fits, every client stacked (`client_storage=stacked`, the storage
before issue 33).

Each point runs in a subprocess of its own, so `ru_maxrss` (the process's peak resident set) is that
point's alone. A point builds the run (synthetic data, IID shards of `--examples` examples per client,
the MLP of width 32 on 8 inputs), compiles the lane-vmapped round scan that `run` uses, runs it once
untimed, then times 10 rounds (`run`'s `rounds`; the median of 3). The yardstick is the memory of 10 clients
(P = A = 10, the same shards and model) plus the population's data (`data_bytes`: the FedData arrays),
the issue's target being within 1.5x of it; and the seconds per round should not grow with P. `draw_s`
times the round's cohort draw alone. `--set` adds config items to every
point but the 10-client yardstick (e.g. `faults.kind=dropout,faults.fraction=0.1,faults.redraw=true`:
the faults' cost per round; `info_bytes` is what one round's info adds to the scan's stacked output).
`--cohort-draw` says which draws run with the server model alone
(the config's `cohort_draw`, sim/cohort.py): `sort`, the rule of earlier versions (the first A of a
permutation of all P clients, drawn in O(P): its 2 x P random keys remain), and `sequential`, the same
distribution from A random integers, independent of P; the stacked storage runs with the first of them.
docs/population.md holds a measured table and its conditions.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

POPULATIONS = (10_000, 100_000, 1_000_000)
COHORTS = (10, 100)
STACKED_MAX = 100_000        # the largest P timed with stacked storage (10^6 stacked: ~7 GB of state)
DRAWS = ("sort", "sequential")     # cohort_draw values timed with client_storage=auto


def items(peers: int, active: int, storage: str, examples: int, cohort_draw: str = "sort") -> list[str]:
    return ["protocol.name=fedavg", "data.name=synthetic", "data.input_shape=[8]", "data.num_classes=10",
            f"data.train_size={peers * examples + 1000}", "probe.pool_size=1000", "data.test_size=1000",
            "partition.kind=iid", "model.name=mlp", "model.width=32", f"peers={peers}",
            f"participation={active / peers!r}", f"client_storage={storage}", "batch_size=8", "devices=1",
            "local_epochs=1", "eval_every=1000000"] + ([f"cohort_draw={cohort_draw}"] if active < peers else [])


def point(peers: int, active: int, storage: str, examples: int = 24, rounds: int = 10,
          cohort_draw: str = "sort", extra: tuple = ()) -> dict:
    """One measurement in this process (call it in a fresh one: see `measure`). `extra`: more config
    items (`--set`, e.g. faults.kind=dropout), after the bench's own."""
    import jax
    import jax.numpy as jnp

    from tallysim import config, programs
    from tallysim.build import build
    from tallysim.sim import mesh
    cfg = config.apply_overrides(config.Config(), items(peers, active, storage, examples, cohort_draw) + [f"rounds={rounds + 1}"]
                                 + list(extra))
    t = time.perf_counter()
    b = build(cfg)
    build_s = time.perf_counter() - t
    data_bytes = sum(a.nbytes for a in jax.tree.leaves(b.fed))
    placement = mesh.plan(1, 1, cfg.peers)
    state = programs.initial_state(b, placement)
    data_c, values, _, k_rounds, _, _ = programs.chunk_inputs(b, 0, 1, placement)
    _, scan = programs.round_programs(b)
    t = time.perf_counter()
    state, info = scan(state, data_c, k_rounds, jnp.arange(1, 2, dtype=jnp.int32), values)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t
    rs = jnp.arange(2, rounds + 2, dtype=jnp.int32)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        state, info = scan(state, data_c, k_rounds, rs, values)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t)
    state_bytes = sum(a.nbytes for a in jax.tree.leaves(state))
    info_bytes = sum(a.nbytes for a in jax.tree.leaves(info)) // rounds     # what a round's info adds to a scan
    with open("/proc/self/status") as f:          # resident now, after the rounds (the peak may be the build's)
        rss_now = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    return dict(peers=peers, active=b.ctx.spec.active, storage=storage, cohort_draw=cfg.cohort_draw,
                cohort=b.ctx.cohort, examples=examples,
                round_s=sorted(times)[1] / rounds, compile_s=round(compile_s, 2), build_s=round(build_s, 2),
                peak_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,   # Linux: KiB
                rss_rounds=rss_now,
                data_bytes=data_bytes, state_bytes=state_bytes, info_bytes=info_bytes, extra=list(extra),
                loss=float(info["train_loss"][-1, 0]))


def draw_s(peers: int, active: int, cohort_draw: str = "sort", repeats: int = 5) -> float:
    """Seconds of one round's cohort draw alone (participation_rule=uniform; sort: sim/cohort.uniform,
    the set of jax.random.permutation(key, P)[:A], drawn in O(P); sequential: uniform_sequential, from A
    random integers), the median of `repeats` after compiling."""
    import jax

    from tallysim.sim import cohort
    how = cohort.uniform_sequential if cohort_draw == "sequential" else cohort.uniform
    f = jax.jit(lambda k: how(k, peers, active))
    key = jax.random.PRNGKey(0)
    f(key).block_until_ready()
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        f(jax.random.fold_in(key, i)).block_until_ready()
        times.append(time.perf_counter() - t)
    return sorted(times)[repeats // 2]


def measure(peers: int, active: int, storage: str, examples: int, rounds: int, cohort_draw: str = "sort",
            extra: tuple = ()) -> dict:
    """`point` in a fresh Python process (its peak RSS is this point's alone)."""
    code = (f"import json; from tallysim.bench.population import point; "
            f"print(json.dumps(point({peers}, {active}, {storage!r}, {examples}, {rounds}, {cohort_draw!r}, "
            f"{tuple(extra)!r})))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode:
        return dict(peers=peers, active=active, storage=storage, cohort_draw=cohort_draw,
                    error=(p.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(p.stdout.strip().splitlines()[-1])


def run(populations=POPULATIONS, cohorts=COHORTS, examples: int = 24, rounds: int = 10,
        stacked_max: int = STACKED_MAX, log=print, draws=DRAWS, extra: tuple = ()) -> list[dict]:
    base = measure(10, 10, "auto", examples, rounds)
    log(f"  10 clients (all active): peak {base['peak_rss'] / 1e6:.0f} MB, {base['round_s'] * 1e3:.1f} ms/round")
    rows = []
    for P in populations:
        for A in cohorts:
            points = [("auto", d) for d in draws] + ([("stacked", draws[0])] if P <= stacked_max else [])
            for storage, how in points:
                r = measure(P, A, storage, examples, rounds, how, extra)
                r["draw_s"] = draw_s(P, A, how)
                if "error" not in r:
                    # the yardstick: 10 clients' process, plus this population's data beyond theirs
                    r["target_bytes"] = base["peak_rss"] + r["data_bytes"] - base["data_bytes"]
                    r["vs_target"] = round(r["peak_rss"] / r["target_bytes"], 3)
                    log(f"  P={P:,} A={A} {storage} {how}: peak {r['peak_rss'] / 1e6:,.0f} MB "
                        f"({r['vs_target']:.2f}x 10 clients + data), {r['round_s'] * 1e3:.1f} ms/round")
                else:
                    log(f"  P={P:,} A={A} {storage} {how}: failed: {r['error']}")
                rows.append(r)
    log(table(rows, base))
    return [dict(base, baseline=True)] + rows


def table(rows: list[dict], base: dict) -> str:
    extra = next((r["extra"] for r in rows if r.get("extra")), None)
    lines = [f"FedAvg population benchmark: MLP 8-32-32-10, {base['examples']} examples per client, batch 8, "
             f"1 local epoch{'; with ' + ' '.join(extra) if extra else ''}; 10 clients alone: "
             f"{base['peak_rss'] / 1e6:.0f} MB peak, {base['round_s'] * 1e3:.1f} ms/round",
             f"| {'clients P':>10} | {'per round A':>11} | {'storage':>8} | {'draw':>10} | {'peak RSS MB':>11} | "
             f"{'RSS in rounds MB':>16} | {'data MB':>8} | {'vs 10 + data':>12} | {'ms/round':>8} | "
             f"{'of which draw':>13} |",
             "|" + "---:|" * 10]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['peers']:>10,} | {r['active']:>11} | {r['storage']:>8} | "
                         f"{r.get('cohort_draw', 'sort'):>10} | failed: {r['error']} |")
            continue
        lines.append(f"| {r['peers']:>10,} | {r['active']:>11} | {r['storage']:>8} | "
                     f"{r.get('cohort_draw', 'sort'):>10} | {r['peak_rss'] / 1e6:>11,.0f} | "
                     f"{r.get('rss_rounds', float('nan')) / 1e6:>16,.0f} | {r['data_bytes'] / 1e6:>8,.0f} | {r['vs_target']:>11.2f}x | {r['round_s'] * 1e3:>8.1f} | "
                     f"{r.get('draw_s', float('nan')) * 1e3:>13.1f} |")
    return "\n".join(lines)


def parse_draws(text) -> tuple:
    """`--cohort-draw sort,sequential` -> ("sort", "sequential"); None: DRAWS. Unknown names: one line."""
    from tallysim.config import ConfigError
    from tallysim.sim import cohort
    if not text:
        return DRAWS
    draws = tuple(d.strip() for d in str(text).split(",") if d.strip())
    for d in draws:
        if d not in cohort.DRAWS:
            raise ConfigError(f"bench --cohort-draw: unknown draw {d!r}; allowed: a comma list of "
                              f"{', '.join(cohort.DRAWS)}")
    if not draws:
        raise ConfigError(f"bench --cohort-draw: empty; allowed: a comma list of {', '.join(cohort.DRAWS)}")
    return draws


def sizes(text) -> tuple:
    """`--peers 10000,100000` -> (10000, 100000); 0, abc or nothing is one line (0 measured the 10-client
    base first, abc was a ValueError traceback)."""
    from tallysim.config import ConfigError
    try:
        out = tuple(int(p) for p in str(text).split(","))
    except ValueError:
        out = ()
    if not out or min(out) < 1:
        raise ConfigError(f"bench --population --peers {text!r}: allowed a comma list of positive client "
                          "counts, e.g. 10000,100000,1000000")
    return out


def parse_set(text) -> tuple:
    """`--set faults.kind=dropout,faults.fraction=0.1` -> its items, checked as config items here (a bad
    one is refused in one line before any point runs)."""
    from tallysim import config, config_reads
    from tallysim.config import ConfigError
    extra = tuple(i.strip() for i in str(text or "").split(",") if i.strip())
    try:
        # a key twice was last-wins, and a field the bench's FedAvg does not read (tally.target=counts,
        # softlabel.*) was measured as if set: both refused, as `tallysim run` refuses them
        config.check_repeats(list(extra), "in --set")
        config_reads.check_read(config.validate(config.apply_overrides(config.Config(),
                                                                       items(1000, 10, "auto", 24) + list(extra))))
    except ConfigError as e:
        raise ConfigError(f"bench --population --set: {e}") from None
    return extra


def check_points(pops, examples: int, extra: tuple) -> None:
    """Every population's config checked before the first point is measured: `--peers 100000000000`
    measured the 10-client yardstick for a minute, then failed each of its points in a subprocess
    ("peers=100000000000 is out of range")."""
    from tallysim import config
    from tallysim.config import ConfigError
    for P in pops:
        # every point draws COHORTS' 10 and 100 clients a round: `--peers 50` passed this check (it read a
        # cohort of min(10, P)), measured the yardstick and the 10-client points, then failed each 100-client
        # point in its subprocess with "participation=2.0 must be in (0, 1]", a field the user never set
        if P < max(COHORTS):
            raise ConfigError(f"bench --population --peers {P:,}: every population is timed with "
                              f"{' and '.join(map(str, COHORTS))} clients a round, more than its {P:,} clients; "
                              f"allowed: populations of at least {max(COHORTS)} clients")
        try:
            config.validate(config.apply_overrides(config.Config(), items(P, min(10, P), "auto", examples) + list(extra)))
        except ConfigError as e:
            raise ConfigError(f"bench --population --peers {P:,}: {e}") from None


def main(args) -> int:
    from tallysim.bench import write_json
    pops = sizes(args.peers) if getattr(args, "peers", None) is not None else POPULATIONS
    check_points(pops, getattr(args, "examples", None) or 24, parse_set(getattr(args, "set", None)))
    rows = run(pops, examples=getattr(args, "examples", None) or 24,
               stacked_max=getattr(args, "stacked_max", None) or STACKED_MAX,
               log=lambda s: print(s, file=sys.stderr, flush=True),
               draws=parse_draws(getattr(args, "cohort_draw", None)), extra=parse_set(getattr(args, "set", None)))
    write_json(rows, getattr(args, "json", None))
    return 0
