"""The suite's own hygiene: the data cache is always a temporary one, whatever $TALLYSIM_DATA says."""
import functools
import os
from pathlib import Path

from tallysim.data.cache import cache_dir


def test_cache_is_the_sessions_temporary_one(tmp_path_factory):
    assert cache_dir() == Path(os.environ["TALLYSIM_DATA"])
    assert cache_dir().is_relative_to(tmp_path_factory.getbasetemp())


def test_command_line_compile_cache_location(monkeypatch, tmp_path):
    import jax
    from tallysim import cli
    before = jax.config.jax_compilation_cache_dir
    try:
        monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
        monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", str(tmp_path / "xla"))
        cli.compile_cache()
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")
        monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", "")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
        cli.compile_cache()
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "home-cache" / "tallysim" / "xla")
        jax.config.update("jax_compilation_cache_dir", before)
        monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", "0")
        cli.compile_cache()
        assert jax.config.jax_compilation_cache_dir == before
        monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", str(tmp_path / "other"))
        monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax-own"))
        cli.compile_cache()                      # JAX's own variable wins: nothing changes
        assert jax.config.jax_compilation_cache_dir == before
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


# The layering: tallysim/sim/ holds the vmapped building blocks; they import each other and what lies
# beneath them (config, sizing, validation, data), never what is built on them.
BENEATH_SIM = {"tallysim.config", "tallysim.sizing", "tallysim.validation", "tallysim.data"}


def _parse(path: Path):
    """The file's syntax tree, parsed once per version of the file (the rules below walk every module
    several times; read-only)."""
    st = path.stat()
    return _parse_version(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=None)
def _parse_version(path: str, mtime_ns: int, size: int):
    import ast
    return ast.parse(Path(path).read_text(), path)


def _tallysim_imports(path: Path, package: str, modules=None):
    """(line, module) for every tallysim module `path` imports (ast.walk: imports inside functions too),
    relative imports resolved. `from package import name` imports the submodule package.name where one
    exists (in `modules`, the module names of the package; the real tallysim package's by default), else
    a name of the package's __init__: `from tallysim.results import metrics` is an arrow to metrics, not
    to the results package (which hid results/headline -> dead_peers -> headline).
    A submodule reached as an attribute of an imported package is an import of it too: tallysim's and
    tallysim.results' `__getattr__` import `tallysim.results.plot` on first use of `results.plot` (after
    `from tallysim import results`) or of `tallysim.results.plot` (after `import tallysim`), which no
    import statement names (a name the package's __init__ defines itself is its own, not the loader's:
    `data.partition` is the function data/__init__ imports; a local name that shadows an imported
    package anywhere in the file is read as the package: an extra arrow, never a missed one).
    A name a package's `__getattr__` hands out from its name table (tallysim/__init__.py's `_API`:
    `Config`, `drive`, ...) is an import of the module the table's branch imports (tallysim.api), in
    both spellings (`from tallysim import Config`; `tallysim.Config` after any `import tallysim...`): read
    as the package alone, `tallysim.Config` was no arrow at all, and `from tallysim import Config` one to
    the package's bottom layer where it imports the top (_lazy_names). `importlib.import_module("x.y")`
    with a literal name is an import of x.y (tallysim's `run`); one of a computed name is listed in
    DYNAMIC_IMPORTS. `modules`: module name -> file."""
    import ast
    if modules is None:
        modules = _modules()
    tree = _parse(path)
    tables = {}
    bound = {}                      # a name this file binds to a tallysim module -> that module

    def lazy(pkg: str) -> dict:
        if pkg not in tables:
            tables[pkg] = _lazy_names(modules[pkg], modules) if pkg in modules and modules[pkg].name == "__init__.py" else {}
        return tables[pkg]

    attributes = []                 # read once every binding is known (an import below its use binds too)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            attributes.append(node)
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
            for a in node.names:        # `import tallysim.results` binds tallysim; `as R` binds R to it
                bound[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, package)
            names = list(dict.fromkeys(f"{base}.{a.name}" if f"{base}.{a.name}" in modules
                                       else lazy(base).get(a.name, base) for a in node.names))
            for a in node.names:
                if f"{base}.{a.name}" in modules:
                    bound[a.asname or a.name] = f"{base}.{a.name}"
        elif (target := _literal_import(node)) is not None:
            names = [target]
        else:
            continue
        yield from ((node.lineno, n) for n in names if n == "tallysim" or n.startswith("tallysim."))
    for node in attributes:
        chain, n = [], node
        while isinstance(n, ast.Attribute):
            chain.append(n.attr)
            n = n.value
        if not chain or not isinstance(n, ast.Name) or n.id not in bound:
            continue
        reached = bound[n.id]
        for attr in reversed(chain):
            package_ = reached in modules and modules[reached].name == "__init__.py"
            if f"{reached}.{attr}" in modules and not (package_ and attr in _own_names(modules[reached])):
                reached = f"{reached}.{attr}"
                continue
            if package_ and attr in lazy(reached) and attr not in _own_names(modules[reached]):
                reached = lazy(reached)[attr]      # a name the package's __getattr__ hands out
            break
        if reached != bound[n.id] and reached.startswith("tallysim."):
            yield node.lineno, reached


def _from_base(node, package: str) -> str:
    """The module a `from X import ...` statement imports from, a relative one resolved in `package`."""
    base = node.module or ""
    if node.level:
        parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        base = f"{parent}.{base}" if base else parent
    return base


def _literal_import(node):
    """The module `importlib.import_module("a.b")` (or `import_module("a.b")`) names, or None: not such a
    call, or a computed name (DYNAMIC_IMPORTS lists those)."""
    import ast
    if not isinstance(node, ast.Call) or not node.args:
        return None
    f = node.func
    if (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)) != "import_module":
        return None
    arg = node.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def _lazy_names(init: Path, modules: dict) -> dict:
    """name -> module, for the names a package __init__'s `__getattr__` hands out by its name table: a
    branch `if name in TABLE:` (TABLE a tuple of names assigned at the top level, or written in place) or
    `if name == "x":` whose body imports a module of the package (an import statement, or a literal
    importlib.import_module) hands each of its names out of that module. tallysim/__init__.py: `_API`'s
    names (Config, Results, drive, ...) from tallysim.api, `run` from tallysim.run."""
    import ast
    tree = _parse(init)
    package = next(m for m, p in modules.items() if p == init)

    def strings(node) -> list:
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return []
    tables = {t.id: strings(st.value) for st in tree.body if isinstance(st, ast.Assign)
              for t in st.targets if isinstance(t, ast.Name)}
    out = {}
    for fn in tree.body:
        if not (isinstance(fn, ast.FunctionDef) and fn.name == "__getattr__"):
            continue
        for branch in ast.walk(fn):
            if not (isinstance(branch, ast.If) and isinstance(branch.test, ast.Compare)
                    and len(branch.test.ops) == 1):
                continue
            op, right = branch.test.ops[0], branch.test.comparators[0]
            if isinstance(op, ast.Eq) and isinstance(right, ast.Constant) and isinstance(right.value, str):
                names = [right.value]
            elif isinstance(op, ast.In):
                names = tables.get(right.id, []) if isinstance(right, ast.Name) else strings(right)
            else:
                continue
            targets = []
            for node in (n for st in branch.body for n in ast.walk(st)):
                if isinstance(node, ast.ImportFrom):
                    base = _from_base(node, package)
                    targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
                elif isinstance(node, ast.Import):
                    targets += [a.name for a in node.names]
                elif (t := _literal_import(node)) is not None:
                    targets.append(t)
            targets = [t for t in targets if t in modules and t != package]
            for name in names:
                if targets:
                    out.setdefault(name, targets[0])
    return out


def _own_names(init: Path) -> set:
    """The names a package's __init__ binds at its top level (functions, classes, assignments, imports):
    found there, `package.name` never reaches its `__getattr__`."""
    st = init.stat()
    return _own_names_version(str(init), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=None)
def _own_names_version(init: str, mtime_ns: int, size: int) -> frozenset:
    import ast
    init = Path(init)
    out, todo = set(), list(_parse(init).body)
    while todo:
        st = todo.pop()
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(st.name)
        elif isinstance(st, (ast.Import, ast.ImportFrom)):
            out.update(a.asname or a.name.split(".")[0] for a in st.names)
        elif isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in (st.targets if isinstance(st, ast.Assign) else [st.target]):
                out.update(x.id for x in ast.walk(t) if isinstance(x, ast.Name))
        else:                           # if / try / with at the top level: their bodies bind there too
            todo += [c for c in ast.iter_child_nodes(st) if isinstance(c, ast.stmt)]
    return frozenset(out)


def test_sim_imports_nothing_above_it():
    sim = Path(__file__).resolve().parent.parent / "tallysim" / "sim"
    files = sorted(sim.rglob("*.py"))
    assert len(files) > 10, files
    bad = []
    for f in files:
        package = "tallysim.sim" + "".join("." + p for p in f.parent.relative_to(sim).parts)
        for line, name in _tallysim_imports(f, package):
            ok = (name == "tallysim.sim" or name.startswith("tallysim.sim.")
                  or any(name == b or name.startswith(b + ".") for b in BENEATH_SIM))
            if not ok:
                bad.append(f"{f.relative_to(sim.parent.parent)}:{line} imports {name}")
    assert not bad, "tallysim/sim/ imports from above it:\n" + "\n".join(bad)


def test_sim_rule_catches_an_upward_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from tallysim import run, config\nfrom .. import protocols\nimport tallysim.cli\n"
                 "from tallysim.sim import vote\nfrom . import lanes\n")
    got = [n for _, n in _tallysim_imports(f, "tallysim.sim")]
    assert got == ["tallysim.run", "tallysim.config", "tallysim.protocols", "tallysim.cli",
                   "tallysim.sim.vote", "tallysim.sim.lanes"]


def test_results_metrics_imports_nothing_above_it():
    # run.py, sweep.py and cli.py import tallysim.results.metrics; it imports none of them (nor the
    # drawing modules beside it, nor JAX), so the metrics schema has no upward arrow. The same holds for
    # the modules whose names it re-exports (the headline numbers, the row writer, the file readers) and
    # dead_peers.py, which its summary_line uses.
    import ast
    import subprocess
    import sys
    import tallysim.results.metrics as m
    names = set()
    for module in ("metrics", "headline", "no_learning", "seed_mean", "rows", "figure_files", "run_dir",
                   "dead_peers"):
        tree = ast.parse((Path(m.__file__).parent / f"{module}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.add(node.module or "")
                names.update(f"{node.module}.{a.name}" for a in node.names)
    banned = ("tallysim.run", "tallysim.sweep", "tallysim.cli", "tallysim.results.plot",
              "tallysim.results.pareto", "tallysim.figures", "jax")
    assert not [n for n in names if any(n == b or n.startswith(b + ".") for b in banned)], names
    # io: save_figure draws into memory for atomic.py (io is loaded with the interpreter itself)
    assert {n.split(".")[0] for n in names} <= {"__future__", "io", "json", "math", "os", "pathlib", "time",
                                                "typing", "numpy", "tallysim", "matplotlib"}, names
    code = ("import sys, tallysim.results.metrics\n"
            "bad = [m for m in ('jax', 'tallysim.run', 'tallysim.sweep', 'tallysim.cli', 'matplotlib') "
            "if m in sys.modules]\nassert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(m.__file__).resolve().parents[2])})
    assert out.returncode == 0, out.stderr


# ----------------------------------------------------------------------------- layering
# Every module of the package sits in a layer; it imports (at the top or inside a function) only its
# own layer and those below. Lowest first; "tallysim.protocols." is every protocol module, the registry
# itself (tallysim.protocols) sits near the bottom so that config and validation stay free of JAX.
LAYERS = [
    ["tallysim", "tallysim.fields", "tallysim.key_suggest", "tallysim.code_identity"],
    ["tallysim.protocols", "tallysim.protocols.declaration", "tallysim.protocols.plugin_import",
     "tallysim.protocols.plugin_models", "tallysim.protocols.registry_tables",
     "tallysim.plugin_rules", "tallysim.sizing", "tallysim.size_limits", "tallysim.storage_notes", "tallysim.forward_bytes", "tallysim.probe_blocks", "tallysim.plugin_params",
     "tallysim.privacy", "tallysim.file_shapes", "tallysim.config_shapes"],
    ["tallysim.schema_sections"],
    ["tallysim.schema"],
    ["tallysim.schema_text"],
    ["tallysim.model_groups"],
    ["tallysim.field_checks"],
    ["tallysim.validation", "tallysim.robust_checks", "tallysim.privacy_checks", "tallysim.probe_source_checks", "tallysim.config_rules", "tallysim.config_reads", "tallysim.sweep_section",
     "tallysim.work_estimate", "tallysim.soft_rounding"],
    ["tallysim.config", "tallysim.config_files"],
    ["tallysim.data", "tallysim.results", "tallysim.results.metrics", "tallysim.results.headline", "tallysim.results.no_learning", "tallysim.results.seed_mean", "tallysim.results.figure_files", "tallysim.results.run_dir", "tallysim.results.dead_peers", "tallysim.outdir", "tallysim.out_path", "tallysim.existing_run", "tallysim.run_lock", "tallysim.checkpoint", "tallysim.checkpoint_file", "tallysim.resume", "tallysim.resume_diff", "tallysim.atomic",
     "tallysim.api_arguments", "tallysim.jax_check", "tallysim.metrics_file", "tallysim.clean", "tallysim.data_read",
     "tallysim.venv_owner"],
    ["tallysim.results.plot", "tallysim.results.pareto", "tallysim.results.runs", "tallysim.progress",
     "tallysim.progress_base", "tallysim.progress_rounds", "tallysim.progress_lines", "tallysim.config_reference"],
    ["tallysim.tracking"],
    ["tallysim.sim"],
    ["tallysim.protocols."],
    ["tallysim.build", "tallysim.build_data", "tallysim.lane_memory", "tallysim.programs"],
    ["tallysim.run", "tallysim.run_files", "tallysim.run_recorders", "tallysim.run_warnings", "tallysim.startup", "tallysim.nonfinite_stop",
     "tallysim.memory_retry"],
    ["tallysim.sweep", "tallysim.sweep_checks", "tallysim.sweep_command", "tallysim.sweep_arguments", "tallysim.sweep_axes", "tallysim.sweep_plan", "tallysim.sweep_data", "tallysim.sweep_resume", "tallysim.sweep_records", "tallysim.bench"],
    ["tallysim.figures"],
    ["tallysim.api", "tallysim.cli", "tallysim.cli_parser", "tallysim.cli_commands", "tallysim.__main__"],
]
PACKAGE = Path(__file__).resolve().parent.parent / "tallysim"


def _modules() -> dict:
    return _modules_of(PACKAGE)


def _layer(module: str):
    best = None
    for i, group in enumerate(LAYERS):
        for g in group:
            if module == g or (g.endswith(".") and module.startswith(g)) or (g != "tallysim" and module.startswith(g + ".")):
                if best is None or len(g) > best[1]:
                    best = (i, len(g))
    return None if best is None else best[0]


# Arrows the graph reads that the rules let pass, each with why: none may join without one. Each must
# still be in the code (test_every_dynamic_import_is_listed_with_why).
KNOWN_EDGES = {
    ("tallysim.protocols", "tallysim.config"):
        "load_plugin imports config (importlib.import_module, inside the function) unless config's import has "
        "already handed the registry the Config's own fields and built-in models a plugin section may not "
        "shadow (`ready`); the registry sits below config so that config and validation read it without JAX, "
        "so this one arrow runs upward, and only once config can finish importing",
}
# The imports of a computed name (importlib.import_module(name), getattr(module, name)): the graph cannot
# read where they go, so each module that makes one is listed with where they go and why it stays so.
DYNAMIC_IMPORTS = {
    "tallysim": "submodule(): any submodule on first use of `tallysim.x`, read where it is used (an attribute "
                "after `import tallysim`); getattr(api, name): the names of _API, read by _lazy_names",
    "tallysim.results": "its __getattr__ imports any submodule on first use of `results.x`: read where it is used",
    "tallysim.protocols": "factory(name): the module REGISTRY names for a protocol (a built-in's: "
                          "tallysim.protocols.<x>; a plugin's, outside tallysim), when a run builds it; a "
                          "protocol module imports the registry, which names its protocols as strings so that "
                          "it imports none of them (and no JAX) until one runs",
    "tallysim.protocols.plugin_import": "a plugin module, by the name a config or an entry point gives: outside tallysim",
    "tallysim.sim.models": "a plugin's model factory (its MODELS), built for a run: outside tallysim",
    "tallysim.plugin_params": "a plugin's model factory, traced for its parameter count: outside tallysim",
}


def _graph(package: Path = PACKAGE, known: dict = None) -> dict:
    """module -> {module it imports: first line}, for every module of `package`, less the `known` arrows
    (the real package's KNOWN_EDGES by default; none for another)."""
    if known is None:
        known = KNOWN_EDGES if package == PACKAGE else {}
    mods = _modules_of(package)
    graph = {}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        graph[m] = {}
        for line, name in _tallysim_imports(p, pkg, mods):
            target = next((t for t in (name, name.rsplit(".", 1)[0]) if t in mods), None)
            if target and target != m and (m, target) not in known:
                graph[m].setdefault(target, line)
    return graph


def _dynamic_imports(package: Path) -> dict:
    """module -> [line, ...] of its imports of a computed name: importlib.import_module(not a literal), and
    getattr(m, not a literal) where m is a module the file imports by name or import_module's result (a
    module passed in as an argument is not seen: plugin_import's checks of a plugin's tables)."""
    import ast
    out = {}
    for me, p in _modules_of(package).items():
        tree = _parse(p)
        modules = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.Import):
                modules.update(a.asname or a.name.split(".")[0] for a in n.names)
            elif isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("tallysim")):
                modules.update(a.asname or a.name for a in n.names)      # a tallysim name: a module or not
        for n in ast.walk(tree):
            if not isinstance(n, ast.Call) or not n.args:
                continue
            f = n.func
            called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            computed = len(n.args) > 1 and not isinstance(n.args[1], ast.Constant)
            on = n.args[0]
            if (called == "import_module" and _literal_import(n) is None) or (
                    called == "getattr" and computed and (isinstance(on, ast.Name) and on.id in modules
                                                          or isinstance(on, ast.Call) and _is_import_call(on))):
                out.setdefault(me, set()).add(n.lineno)
    return {m: sorted(lines) for m, lines in out.items()}


def _is_import_call(node) -> bool:
    import ast
    f = node.func
    return (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)) == "import_module"


def _cycles(graph: dict) -> list:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_and_no_upward_import():
    graph = _graph()
    unplaced = [m for m in graph if _layer(m) is None]
    assert not unplaced, f"put these modules in a layer of tests/test_hygiene.py's LAYERS: {unplaced}"
    assert not _cycles(graph), f"import cycles (imports inside functions count): {_cycles(graph)}"
    # tallysim/__init__.py's __getattr__ hands out the public API (tallysim.api's names, and tallysim.run) on
    # first use: the one facade that sits below what it names, and imports nothing when the package is imported.
    facade = {("tallysim", t) for t in _lazy_names(PACKAGE / "__init__.py", _modules()).values()}
    assert facade == {("tallysim", "tallysim.api"), ("tallysim", "tallysim.run")}, facade
    up = [f"{m} -> {t} (line {line})" for m, deps in graph.items() for t, line in deps.items()
          if _layer(t) > _layer(m) and (m, t) not in facade]
    assert not up, "imports up the layers:\n" + "\n".join(up)


# The same rule one level up: a folder of the package (tallysim/sim/, results/, figures/, ...) is one
# unit, so two folders, or a folder and a module beside it, never import each other, whichever of their
# modules does it (issue 31: results/ used to run figures through sweep while sweep read results/).
# One package __init__ is its own unit: tallysim/protocols/__init__.py is the registry, which imports
# no protocol module and sits below config, while the protocol modules beside it sit above sim/. The four
# modules split out of it (what a protocol declares; importing a plugin; a plugin's models; its tables)
# belong to its unit.
REGISTRY_UNIT = {"tallysim.protocols", "tallysim.protocols.declaration", "tallysim.protocols.plugin_import",
                 "tallysim.protocols.plugin_models", "tallysim.protocols.registry_tables"}


def _unit(module: str) -> str:
    parts = module.split(".")
    if module in REGISTRY_UNIT:
        return "tallysim.protocols"
    if len(parts) < 2 or not (PACKAGE / parts[1]).is_dir():
        return module
    return ".".join(parts[:2]) + "/"


def _folder_graph(graph: dict) -> dict:
    out = {}
    for m, deps in graph.items():
        out.setdefault(_unit(m), {})
        for t, line in deps.items():
            if _unit(t) != _unit(m):
                out[_unit(m)].setdefault(_unit(t), f"{m} line {line}")
    return out


def test_every_dynamic_import_is_listed_with_why():
    found = _dynamic_imports(PACKAGE)
    new = sorted(set(found) - set(DYNAMIC_IMPORTS))
    assert not new, (f"imports of a computed name, which the cycle check cannot follow: {[(m, found[m]) for m in new]}; "
                     "import the module by name, or list it in tests/test_hygiene.py's DYNAMIC_IMPORTS with where it "
                     "goes and why")
    gone = sorted(set(DYNAMIC_IMPORTS) - set(found))
    assert not gone, f"remove from DYNAMIC_IMPORTS (no computed import left there): {gone}"
    mods = _modules()
    read = {m: {n for _, n in _tallysim_imports(mods[m], m if mods[m].name == "__init__.py" else m.rsplit(".", 1)[0], mods)}
            for m in {m for m, _ in KNOWN_EDGES}}
    stale = sorted(e for e in KNOWN_EDGES if e[1] not in read[e[0]])
    assert not stale, f"remove from KNOWN_EDGES (the code no longer imports it): {stale}"


def test_the_dynamic_rule_sees_both_forms_and_lets_literal_names_through(tmp_path):
    pkg = tmp_path / "tallysim"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import importlib\n\n\ndef f(m, n):\n    return importlib.import_module(m)\n")
    (pkg / "b.py").write_text("from tallysim import a\n\n\ndef g(n):\n    return getattr(a, n), getattr(a, 'f')\n")
    (pkg / "c.py").write_text("import importlib\n\n\ndef h(n):\n    return getattr(importlib.import_module('x'), n)\n")
    (pkg / "d.py").write_text("import importlib\nimport os\n\nX = importlib.import_module('tallysim.a'), "
                              "getattr(os, 'O_CLOEXEC', 0)\n\n\ndef k(obj, n):\n    return getattr(obj, n)\n")
    assert _dynamic_imports(pkg) == {"tallysim.a": [5], "tallysim.b": [5], "tallysim.c": [5]}
    assert _graph(pkg)["tallysim.d"] == {"tallysim.a": 4}       # a literal name is an arrow like an import


def test_no_import_cycle_between_folders():
    cycles = _cycles(_folder_graph(_graph()))
    assert not cycles, f"folders (and the modules beside them) that import each other: {cycles}"


def test_the_folder_rule_catches_a_cycle_through_two_modules():
    # results/metrics.py -> sweep.py -> results/... is no module cycle, but a folder one
    graph = {"tallysim.results.plot": {"tallysim.sweep": 1}, "tallysim.sweep": {"tallysim.results.metrics": 1},
             "tallysim.results.metrics": {}}
    assert not _cycles(graph)
    assert _cycles(_folder_graph(graph)) == [["tallysim.results/", "tallysim.sweep"]]


def test_the_cycle_rule_sees_from_package_import_submodule(tmp_path):
    # `from tallysim.results import b` imports the module tallysim.results.b: read as the package alone,
    # it hid results/headline -> results/dead_peers (inside summary_line) -> metrics -> headline. Planted
    # here in both spellings (absolute inside a function, relative at the top); a name that is no module
    # (defined in the package's __init__) stays an arrow to the package.
    pkg = tmp_path / "tallysim"
    (pkg / "results").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "results" / "__init__.py").write_text("def helper(): pass\n")
    (pkg / "results" / "a.py").write_text("from tallysim.results.b import X\n")
    (pkg / "results" / "b.py").write_text("X = 1\n\ndef f():\n    from tallysim.results import a, helper\n")
    (pkg / "results" / "c.py").write_text("from . import b\nfrom .. import results\n")
    graph = _graph(pkg)
    assert graph["tallysim.results.b"] == {"tallysim.results.a": 4, "tallysim.results": 4}
    assert graph["tallysim.results.c"] == {"tallysim.results.b": 1, "tallysim.results": 2}
    assert _cycles(graph) == [["tallysim.results.a", "tallysim.results.b"]]


def test_the_layering_rule_catches_a_cycle_and_an_upward_import():
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert _layer("tallysim.config") < _layer("tallysim.sim.lanes") < _layer("tallysim.protocols.fedavg")
    assert _layer("tallysim.protocols") < _layer("tallysim.config")      # the jax-free registry


# Small modules (docs/layout.md): none over 400 lines. An exception would be named here, to be split
# when the work on it allows; a module may leave this set, never join it. Empty since schema.py,
# validation.py and protocols/base.py were split; the mechanism and its test stay.
MAX_LINES = 400
OVER_MAX_LINES: set = set()


def _too_long(package: Path, exceptions: set) -> list:
    out = []
    for p in sorted(package.rglob("*.py")):
        name = p.relative_to(package).as_posix()
        n = len(p.read_text().splitlines())
        if n > MAX_LINES and name not in exceptions:
            out.append(f"tallysim/{name} has {n} lines")
    return out


def _stale(package: Path, exceptions: set) -> list:
    """The listed exceptions that are no longer over the limit (or no longer exist): take them off."""
    return sorted(name for name in exceptions if not (package / name).is_file()
                  or len((package / name).read_text().splitlines()) <= MAX_LINES)


def test_every_module_at_most_400_lines():
    too_long = _too_long(PACKAGE, OVER_MAX_LINES)
    assert not too_long, (f"over {MAX_LINES} lines: {too_long}; split a job into a module of its own "
                          "(move a name and re-export it where it was imported from)")
    assert not _stale(PACKAGE, OVER_MAX_LINES), f"remove from OVER_MAX_LINES: {_stale(PACKAGE, OVER_MAX_LINES)}"


def test_the_line_rule_catches_a_long_module_and_keeps_its_exceptions(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "short.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "sub" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "listed.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert _too_long(tmp_path, {"listed.py"}) == [f"tallysim/sub/long.py has {MAX_LINES + 1} lines"]
    # an exception that is gone, or was split below the limit, is reported so that it leaves the set
    assert _stale(tmp_path, {"listed.py", "sub/long.py", "short.py", "gone.py"}) == ["gone.py", "short.py"]


def test_config_and_run_each_under_400_lines():
    for name in ("config.py", "run.py"):
        n = len((PACKAGE / name).read_text().splitlines())
        assert n < 400, f"tallysim/{name} has {n} lines; move a job into a module of its own"


# ----------------------------------------------------------------------------- directions within a layer
# LAYERS orders the modules; some wrong-way imports it cannot see, because the target sits below (the
# house's rules, docs/layout.md "Layers"): results/ only reads and draws run directories, so it imports
# no simulation (sim/, data/, a protocol module, build, run); a protocol module builds its round from
# sim/ and the registry, never from results/, data/, build, run, sweep, cli, progress or tracking; data/
# reads only the configuration. A folder's modules import each other freely; besides that, only these.
ALLOWED_BESIDE_OWN = {
    # run_lock: a run's status reads whether another process writes it now (`running`), a probe only
    "tallysim.results": ("tallysim.config", "tallysim.fields", "tallysim.atomic", "tallysim.run_lock",
                         *sorted(REGISTRY_UNIT)),
    "tallysim.protocols.": ("tallysim.sim", "tallysim.config", "tallysim.fields", "tallysim.protocols"),
    # fields: the configuration's own base (no imports), whose message helpers every layer shares
    "tallysim.data": ("tallysim.config", "tallysim.fields", "tallysim.sizing", "tallysim.validation",
                      "tallysim.atomic", "tallysim.file_shapes"),
}


def _is(name: str, allowed: str) -> bool:
    """`name` is the module `allowed` or inside it; a registry module is only itself (the protocol
    modules beside tallysim/protocols/__init__.py are no part of the registry)."""
    return name == allowed or (allowed not in REGISTRY_UNIT and name.startswith(allowed + "."))


def _outside_allowed(graph: dict) -> list:
    bad = []
    for m, deps in sorted(graph.items()):
        for owner, allowed in ALLOWED_BESIDE_OWN.items():
            own = owner.rstrip(".")
            if owner.endswith("."):          # the protocol modules, not the registry beside them
                mine = m.startswith(owner) and m not in REGISTRY_UNIT
            else:
                mine = m == own or m.startswith(own + ".")
            if not mine:
                continue
            for t, line in sorted(deps.items(), key=lambda kv: kv[1]):
                if not (t == own or t.startswith(own + ".") or any(_is(t, a) for a in allowed)):
                    bad.append(f"{m} -> {t} (line {line})")
    return bad


def test_folders_import_only_what_their_job_needs():
    bad = _outside_allowed(_graph())
    assert not bad, ("wrong-way imports (results/ reads and draws, protocols build from sim/, data/ reads the "
                     "configuration; tests/test_hygiene.py ALLOWED_BESIDE_OWN):\n" + "\n".join(bad))


def test_the_direction_rules_catch_each_wrong_way_import():
    # each of these is an import the brief of the house forbids; LAYERS alone catches the upward ones
    graph = {"tallysim.results.plot": {"tallysim.sim.vote": 1, "tallysim.data.loading": 2,
                                       "tallysim.protocols.tally": 3, "tallysim.protocols": 4,
                                       "tallysim.results.metrics": 5, "tallysim.atomic": 6},
             "tallysim.protocols.tally": {"tallysim.results.rows": 7, "tallysim.cli": 8, "tallysim.data.partition": 9,
                                          "tallysim.progress": 10, "tallysim.sim.vote": 11,
                                          "tallysim.protocols.distill": 12, "tallysim.protocols": 13,
                                          "tallysim.config": 14},
             "tallysim.data.base": {"tallysim.sim.fed": 15, "tallysim.config": 16},
             "tallysim.protocols.declaration": {"tallysim.fields": 17}}
    assert _outside_allowed(graph) == [
        "tallysim.data.base -> tallysim.sim.fed (line 15)",
        "tallysim.protocols.tally -> tallysim.results.rows (line 7)", "tallysim.protocols.tally -> tallysim.cli (line 8)",
        "tallysim.protocols.tally -> tallysim.data.partition (line 9)",
        "tallysim.protocols.tally -> tallysim.progress (line 10)",
        "tallysim.results.plot -> tallysim.sim.vote (line 1)", "tallysim.results.plot -> tallysim.data.loading (line 2)",
        "tallysim.results.plot -> tallysim.protocols.tally (line 3)"]
    # and the upward ones through LAYERS: sweeps never import figures, nothing below imports the CLI
    for low, high in (("tallysim.sweep", "tallysim.figures"), ("tallysim.results.metrics", "tallysim.run"),
                      ("tallysim.protocols.fedavg", "tallysim.cli"), ("tallysim.sim.vote", "tallysim.protocols.tally")):
        assert _layer(low) < _layer(high), (low, high)


# A protocol's config section lives in its protocol's file (TRAITS.sections; the registry reads it from
# there, tallysim/protocols/declaration.py). schema_sections.py holds the sections several protocols (or
# none: data, model, optim, ...) read. A field there that the protocols of one module alone read belongs in
# that module's section; these were public keys before the rule and stay (renaming them would break every
# config that sets them). The set may shrink, never grow.
ONE_PROTOCOL_FIELDS_IN_SHARED_SECTIONS = {"vote.weighting", "vote.history", "comm.topology"}


def _shared_fields_one_module_reads() -> set:
    from tallysim import protocols, schema
    owned = set(protocols.sections())
    out = set()
    for key in schema.field_keys():
        if key.split(".")[0] in owned:
            continue
        modules = {protocols.REGISTRY[n].split(":")[0] for n in protocols.REGISTRY
                   if protocols.traits(n).reads_key(n, key)}
        if len(modules) == 1:
            out.add(key)
    return out


def test_a_protocols_own_config_lives_in_its_protocol_file():
    import dataclasses
    from tallysim import protocols
    from tallysim.protocols.declaration import section_class
    for name, target in protocols.REGISTRY.items():
        module = f"tallysim.protocols.{target.split(':')[0]}"
        path = PACKAGE / "protocols" / f"{target.split(':')[0]}.py"
        for section, cls in protocols.traits(name).sections.items():
            where, _, _ = section_class(str(path), cls)
            assert Path(where).parent == PACKAGE / "protocols", (name, section, where)
    # ... and none is declared among the shared ones (Config's own fields, schema_sections.py's classes)
    from tallysim import schema, schema_sections
    own = protocols.sections()
    assert not set(own) & {f.name for f in dataclasses.fields(schema.Config)}
    assert not {c.__name__ for c in own.values()} & set(vars(schema_sections)), sorted(own)
    grew = _shared_fields_one_module_reads() - ONE_PROTOCOL_FIELDS_IN_SHARED_SECTIONS
    assert not grew, (f"{sorted(grew)}: read by one protocol module only; declare them in that protocol's own "
                      "section (TRAITS.sections, docs/write-a-protocol.md), not in schema_sections.py")
    gone = ONE_PROTOCOL_FIELDS_IN_SHARED_SECTIONS - _shared_fields_one_module_reads()
    assert not gone, f"remove from ONE_PROTOCOL_FIELDS_IN_SHARED_SECTIONS: {sorted(gone)}"


# A module's `_name` is its own: another module that needs it names a public one (the six reaches left
# from earlier splits are gone: each name is public where it is shared, or the owner's public function
# is used), so none may come back.
def _private_reaches(package: Path) -> set:
    """`from tallysim.x import _name` and `x._name` (x an imported tallysim module) in another module."""
    import ast
    modules = set(_modules_of(package))
    out = set()
    for me, p in _modules_of(package).items():
        pkg = me if p.name == "__init__.py" else me.rsplit(".", 1)[0]
        tree = _parse(p)
        bound = {}
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    parent = pkg.rsplit(".", n.level - 1)[0] if n.level > 1 else pkg
                    base = f"{parent}.{base}" if base else parent
                for a in n.names:
                    if f"{base}.{a.name}" in modules:
                        bound[a.asname or a.name] = f"{base}.{a.name}"
                    elif a.name.startswith("_") and not a.name.startswith("__") and base in modules and base != me:
                        out.add(f"{me} -> {base}.{a.name}")
            elif isinstance(n, ast.Import):
                bound.update({a.asname: a.name for a in n.names if a.asname and a.name in modules})
        for n in ast.walk(tree):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in bound \
                    and n.attr.startswith("_") and not n.attr.startswith("__") and bound[n.value.id] != me:
                out.add(f"{me} -> {bound[n.value.id]}.{n.attr}")
    return out


def _modules_of(package: Path) -> dict:
    """module name -> file, for every module of `package` (a folder: tallysim, experiments)."""
    out = {}
    for p in package.rglob("*.py"):
        rel = p.relative_to(package.parent).with_suffix("")
        out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = p
    return out


def test_no_module_reaches_into_another_modules_private_names():
    # experiments/ too: its scripts share helpers (wordclaim.py reached textclaim.py's _spy)
    found = _private_reaches(PACKAGE) | _private_reaches(PACKAGE.parent / "experiments")
    assert not found, (f"{sorted(found)}: another module's _name; make it public (no underscore) where it is "
                       "defined, or keep it inside its module")


def test_the_private_rule_catches_both_forms(tmp_path):
    pkg = tmp_path / "tallysim"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def _hidden(): pass\n_x = 1\n")
    (pkg / "sub" / "b.py").write_text("from tallysim.a import _hidden\nfrom tallysim import a\ny = a._x\n"
                                      "from .. import a as aa\nz = aa.__name__\n")
    assert _private_reaches(pkg) == {"tallysim.sub.b -> tallysim.a._hidden", "tallysim.sub.b -> tallysim.a._x"}
