"""The programs `tallysim bench` builds for its `tallysim` and `vmap_ref` columns, captured and compared
(issue 35, section 1: why tallysim's CNN fell from 1.00x to 0.87x of plain vmap on an H200).

    PYTHONPATH=<checkout> python experiments/step_program.py [--model cnn] [--peers 100] [--compile]
                                                            [--json FILE] [--dump DIR]

Runs the checkout's own `bench.measure` (so the program is built through whatever API that commit
had) with the GPU's grouping (`step_groups.auto_groups(..., backend="gpu")`: all P equal peers in one
vmapped group, as on the H200; and `LocalSpec.lean`'s GPU default where the commit has it) and `conv="xla"`, but with every `Lowered.compile` intercepted: nothing
is timed, the lowered programs are kept. For each column it reports

  - a hash of the StableHLO (locations stripped) and its op counts,
  - the step body: the jaxpr equations inside the innermost loop that holds the convolutions
    (tallysim's `while_loop` over steps, vmap_ref's `scan`), counted by primitive, nested calls
    included, with the dtype of every conv / dot and of the loop carry,
  - with --compile, the same for XLA's optimised HLO (the CPU's; the GPU's needs a GPU).

Only reads the checkout; runs on a CPU in a minute (the CNN at P = 100 in bfloat16 is traced and
lowered, not run). Used to bisect the program over commits (each commit in its own worktree).
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import re
import sys
from pathlib import Path

import jax
from jax._src import stages

from tallysim.config import ConfigError

# Primitives the issue asks about: per-step work that a lean step would not have.
WATCH = ("gather", "dynamic_slice", "dynamic_update_slice", "convert_element_type", "random_bits",
         "random_split", "random_fold_in", "threefry2x32", "select_n", "scatter", "scatter-add",
         "argsort", "sort", "transpose", "copy", "mul", "iota", "concatenate", "pad")
LOOPS = ("while", "scan")


def _sub_jaxprs(eqn):
    """The jaxprs an equation calls (pjit, custom_jvp/vjp, cond branches, loop bodies)."""
    for v in eqn.params.values():
        for j in (v if isinstance(v, (tuple, list)) else (v,)):
            if hasattr(j, "eqns"):
                yield j
            elif hasattr(j, "jaxpr") and hasattr(j.jaxpr, "eqns"):
                yield j.jaxpr


def _has_conv_or_dot(jaxpr) -> bool:
    return any(e.primitive.name in ("conv_general_dilated", "dot_general") or
               any(_has_conv_or_dot(s) for s in _sub_jaxprs(e)) for e in jaxpr.eqns)


def step_loop(jaxpr):
    """The innermost loop equation whose body holds the network's convolutions / matmuls."""
    found = None
    for e in jaxpr.eqns:
        subs = list(_sub_jaxprs(e))
        if e.primitive.name in LOOPS and any(_has_conv_or_dot(s) for s in subs):
            inner = None
            for s in subs:
                inner = inner or step_loop(s)
            return inner or e
        for s in subs:
            found = found or step_loop(s)
    return found


def count_eqns(jaxpr, counts=None, dtypes=None):
    """Primitive counts over a jaxpr and everything it calls; conv/dot operand dtypes in `dtypes`."""
    counts = collections.Counter() if counts is None else counts
    dtypes = collections.Counter() if dtypes is None else dtypes
    for e in jaxpr.eqns:
        name = e.primitive.name
        subs = list(_sub_jaxprs(e))
        if name not in ("pjit", "jit", "closed_call", "custom_jvp_call", "custom_vjp_call", "remat",
                        "checkpoint") or not subs:
            counts[name] += 1
        if name in ("conv_general_dilated", "dot_general"):
            ins = ",".join(str(v.aval.dtype) for v in e.invars)
            dtypes[f"{name}({ins})->{e.outvars[0].aval.dtype}"] += 1
        if name == "convert_element_type":
            dtypes[f"convert {e.invars[0].aval.dtype}->{e.outvars[0].aval.dtype}"] += 1
        for s in subs:
            count_eqns(s, counts, dtypes)
    return counts, dtypes


def loop_report(jaxpr) -> dict:
    loop = step_loop(jaxpr)
    if loop is None:
        return {"error": "no loop holding a convolution or matmul"}
    if loop.primitive.name == "while":
        body = loop.params["body_jaxpr"].jaxpr
        cond = loop.params["cond_jaxpr"].jaxpr
        extra, _ = count_eqns(cond)
    else:
        body, extra = loop.params["jaxpr"].jaxpr, collections.Counter()
    counts, dtypes = count_eqns(body)
    carry = collections.Counter(f"{v.aval.dtype}{list(v.aval.shape)}" for v in body.invars)
    carry_bytes = sum(v.aval.size * v.aval.dtype.itemsize for v in body.invars)
    return {"loop": loop.primitive.name, "eqns": sum(counts.values()), "by_primitive": dict(sorted(counts.items())),
            "watched": {k: counts[k] for k in WATCH if counts[k]}, "dtypes": dict(sorted(dtypes.items())),
            "cond_eqns": dict(extra), "body_inputs": len(body.invars), "body_input_bytes": carry_bytes,
            "body_input_types": dict(sorted(carry.items()))}


def stablehlo_report(lowered) -> dict:
    text = lowered.as_text()
    text = re.sub(r"\s*loc\([^)]*\)", "", text)            # locations: not part of the program
    text = re.sub(r"#loc\d*\s*=.*\n", "", text)
    ops = collections.Counter(re.findall(r"=\s*\"?([a-z_]+\.[a-z_0-9.]+)", text))
    return {"sha256": hashlib.sha256(text.encode()).hexdigest()[:16], "chars": len(text),
            "ops": dict(sorted(ops.items())), "_text": text}


HLO_OP = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*([\w\[\]{}, ()/:.\-]+?)\s+([a-z][\w\-]*)\(", re.M)


def hlo_computations(text: str) -> dict:
    """name -> body text of each computation in an HLO module's text."""
    comps, name, lines = {}, None, []
    for line in text.splitlines():
        m = re.match(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$", line)
        if m and not line.startswith(" "):
            name, lines = m.group(1), []
        elif line.startswith("}") and name:
            comps[name] = "\n".join(lines)
            name = None
        elif name:
            lines.append(line)
    return comps


def hlo_step_report(text: str) -> dict:
    """Op counts of the optimised HLO's step loop: the while body holding the convolutions / dots,
    with every fusion / call it makes (nested while loops counted as one op each)."""
    comps = hlo_computations(text)

    def called(body):
        return re.findall(r"(?:calls|to_apply|body|condition|branch_computations)=\{?%?([\w.\-]+)", body)

    def holds_conv(name, seen=()):
        body = comps.get(name, "")
        if re.search(r"\b(convolution|dot)\(", body):
            return True
        return any(holds_conv(c, seen + (name,)) for c in called(body) if c not in seen)

    bodies = [b for c in comps.values() for b in re.findall(r"\bwhile\(.*body=%?([\w.\-]+)", c)]
    conv_bodies = [b for b in bodies if holds_conv(b)]
    # innermost: a conv body that has no conv-holding while body of its own
    def inner(b):
        own = re.findall(r"\bwhile\(.*body=%?([\w.\-]+)", comps.get(b, ""))
        return not any(o in conv_bodies for o in own)
    step = [b for b in conv_bodies if inner(b)]
    if not step:
        return {"error": "no while body with a convolution or dot"}
    counts, seen = collections.Counter(), set()
    types = collections.Counter()

    def walk(name):
        if name in seen:
            return
        seen.add(name)
        body = comps.get(name, "")
        for m in HLO_OP.finditer(body):
            ty, op = m.group(1), m.group(2)
            if op in ("parameter", "get-tuple-element", "tuple", "constant", "bitcast"):
                continue
            counts[op] += 1
            if op in ("convolution", "dot", "convert", "gather", "dynamic-slice", "copy", "transpose"):
                types[f"{op} -> {ty.split('{')[0]}"] += 1
        for c in called(body):
            if not re.search(rf"while\(.*body=%?{re.escape(c)}\b", body):
                walk(c)
    walk(step[0])
    return {"body": step[0], "n_step_bodies": len(step), "ops": sum(counts.values()),
            "by_op": dict(sorted(counts.items())), "types": dict(sorted(types.items()))}


def capture(model="cnn", peers=100, steps=20, batch=32, dtype="bfloat16", conv="xla", do_compile=False,
            impls=("tallysim", "vmap_ref")):
    """{impl: report} for the programs this checkout's `bench` builds."""
    try:
        from tallysim.bench import throughput as bench
    except ImportError:                     # before the bench package split: one module
        import tallysim.bench as bench
    local = bench.local
    planner = getattr(bench, "step_groups", local)     # auto_groups moved to sim/step_groups.py
    orig_auto = planner.auto_groups
    planner.auto_groups = lambda *a, **k: orig_auto(*a, **dict(k, backend="gpu"))   # the GPU's grouping
    orig_lean = getattr(local, "use_lean", None)
    if orig_lean is not None:               # and the GPU's default step (LocalSpec.lean None = lean off the CPU)
        local.use_lean = lambda spec: True if spec.lean is None else spec.lean
    got = []
    orig_lower, orig_compile = stages.Traced.lower, stages.Lowered.compile
    jaxprs = {}

    def lower(self, *a, **k):
        out = orig_lower(self, *a, **k)
        jaxprs[id(out)] = self.jaxpr
        return out

    class Done:                              # stands in for the executable: `_timed` is stubbed
        def __call__(self, *a, **k):
            raise RuntimeError("not run")

    def compile_(self, *a, **k):
        got.append((self, jaxprs.get(id(self))))
        return Done()

    stages.Traced.lower, stages.Lowered.compile = lower, compile_
    orig_timed = bench._timed
    bench._timed = lambda *a, **k: 1.0
    import inspect
    kw = {}
    if "conv" in inspect.signature(bench.measure).parameters:
        kw["conv"] = conv
    else:                                    # a commit before `bench --conv`: force the choice in models
        models = sys.modules[bench.make_model.__module__]
        orig_conv_fn = getattr(models, "conv_fn", None)
        if orig_conv_fn is not None:
            models.conv_fn = lambda choice: orig_conv_fn(conv)
    try:
        bench.measure(model, peers, steps, batch, dtype, impls=list(impls), **kw)
    finally:
        stages.Traced.lower, stages.Lowered.compile, bench._timed = orig_lower, orig_compile, orig_timed
        planner.auto_groups = orig_auto
        if orig_lean is not None:
            local.use_lean = orig_lean
    out = {}
    for impl, (lowered, jaxpr) in zip(impls, got):
        rep = {"stablehlo": stablehlo_report(lowered)}
        if jaxpr is not None:
            rep["step_jaxpr"] = loop_report(jaxpr.jaxpr if hasattr(jaxpr, "jaxpr") else jaxpr)
            rep["_jaxpr"] = str(jaxpr)
        if do_compile:
            hlo = orig_compile(lowered).as_text()
            rep["step_hlo"] = hlo_step_report(hlo)
            rep["_hlo"] = hlo
        out[impl] = rep
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--peers", type=int, default=100)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--conv", default="xla")
    ap.add_argument("--impl", default="tallysim,vmap_ref")
    ap.add_argument("--compile", action="store_true", help="also XLA's optimised HLO (CPU)")
    ap.add_argument("--json", help="write the reports (without the program texts) here")
    ap.add_argument("--dump", help="write each program's StableHLO, jaxpr and HLO text into this folder")
    a = ap.parse_args(argv)
    if a.json and (Path(a.json).is_dir() or not Path(a.json).resolve().parent.is_dir()):
        ap.error(f"--json {a.json}: allowed: a file path in an existing folder")      # was a traceback after capturing
    try:        # --model foo, --impl foo, --dtype float16: bench's ConfigError, one line rather than a traceback
        out = capture(a.model, a.peers, a.steps, a.batch, a.dtype, a.conv, a.compile, a.impl.split(","))
    except ConfigError as e:
        ap.error(str(e))
    if a.dump:
        d = Path(a.dump)
        d.mkdir(parents=True, exist_ok=True)
        for impl, rep in out.items():
            (d / f"{impl}.stablehlo.mlir").write_text(rep["stablehlo"]["_text"])
            if "_jaxpr" in rep:
                (d / f"{impl}.jaxpr.txt").write_text(rep["_jaxpr"])
            if "_hlo" in rep:
                (d / f"{impl}.hlo.txt").write_text(rep["_hlo"])
    clean = {i: {k: ({kk: vv for kk, vv in v.items() if not kk.startswith("_")} if isinstance(v, dict) else v)
                 for k, v in r.items() if not k.startswith("_")} for i, r in out.items()}
    text = json.dumps(clean, indent=1)
    if a.json:
        Path(a.json).write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
