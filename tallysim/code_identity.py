"""Which tallysim code a run ran: its version, a CRC-32 of the package's source files and, where tallysim
runs from a git checkout, the commit and whether the package's files differ from it. config.json and the
checkpoint record it (`code`), so that `--resume` under other code says so (code_change, below):
`__version__` alone is a constant, and a run resumed after a fix or an edit mixed two codes in one
metrics.jsonl in silence.

"Other code" is another version or another source digest: a new commit that touched only docs is the same
code, and two dirty trees of one commit with different edits are not. The commit is read from .git's
files (HEAD, the ref it names, packed-refs; a worktree's `.git` file and its commondir), without running
git; only the dirty flag asks git (`git status`, without taking its index lock, 5 s at most). Nothing here
fails: no git, no checkout, an unreadable file is a field left out or None.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent          # tallysim/
HASH = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?$")  # SHA-1, or SHA-256 repositories
_REPOSITORY_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
                         "GIT_NAMESPACE")   # what `git -C` does not override (git_dirty)


@functools.lru_cache(maxsize=1)
def identity() -> dict:
    """{"version", "source"[, "commit", "dirty"]} of the code this process imported. Computed once a
    process: Python keeps running the modules it imported first, whatever the files hold later."""
    # the package is imported whenever this module is; `from tallysim import` would make an import cycle
    # (tallysim -> api -> run -> here), which tests/test_hygiene.py forbids
    out = {"version": sys.modules[__package__].__version__, "source": source_digest()}
    commit = git_commit(PACKAGE.parent)
    if commit:
        out["commit"] = commit
        out["dirty"] = git_dirty(PACKAGE.parent)
    return out


def source_digest(root: Path = PACKAGE) -> str | None:
    """A CRC-32 over the package's .py files, their paths and contents in sorted order ("crc32:..."): a
    few milliseconds for the whole package."""
    crc = 0
    try:
        for p in sorted(root.rglob("*.py")):
            crc = zlib.crc32(p.relative_to(root).as_posix().encode() + b"\0", crc)
            crc = zlib.crc32(p.read_bytes(), crc)
    except OSError:
        return None
    return f"crc32:{crc:08x}"


def _git_dir(repo: Path) -> Path | None:
    """The repository's git directory: `.git` itself, or where a worktree's `.git` file points."""
    dot = repo / ".git"
    if dot.is_dir():
        return dot
    if dot.is_file():
        text = dot.read_text(errors="replace").strip()
        if text.startswith("gitdir:"):
            d = Path(text[len("gitdir:"):].strip())
            return d if d.is_absolute() else (repo / d)
    return None


def git_commit(repo: Path) -> str | None:
    """The commit `repo`'s HEAD names, read from the git directory's files (no git run); None when `repo`
    is no checkout or its files cannot say."""
    try:
        gd = _git_dir(repo)
        if gd is None:
            return None
        common = gd
        if (gd / "commondir").is_file():       # a worktree: its refs live in the main repository's
            c = Path((gd / "commondir").read_text().strip())
            common = c if c.is_absolute() else gd / c
        head = (gd / "HEAD").read_text().strip()
        for _ in range(5):                     # a symbolic ref may name another (rare); no loops
            if HASH.match(head):
                return head
            if not head.startswith("ref:"):
                return None
            ref = head[4:].strip()
            for d in (gd, common):
                if (d / ref).is_file():
                    head = (d / ref).read_text().strip()
                    break
            else:
                return _packed(common, ref)
    except (OSError, ValueError):
        return None
    return None


def _packed(common: Path, ref: str) -> str | None:
    try:
        for line in (common / "packed-refs").read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref and HASH.match(parts[0]):
                return parts[0]
    except OSError:
        pass
    return None


def git_dirty(repo: Path) -> bool | None:
    """Whether the package's files differ from the commit (tracked changes and new files under tallysim/);
    None where git cannot say (not installed, too slow, an error)."""
    # without the variables that point git at another repository: a run started from a git hook or a
    # script of another project (GIT_DIR set) was told the files of that one's index, not this checkout's
    env = {k: v for k, v in os.environ.items() if k not in _REPOSITORY_VARIABLES}
    try:
        out = subprocess.run(["git", "--no-optional-locks", "-C", str(repo), "status", "--porcelain", "--",
                              PACKAGE.name], capture_output=True, text=True, timeout=5, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


# The checkpoint's `random` keys -> JAX's names for them: jax.config.update's; the environment variable is
# the same name in capitals, read when JAX is imported (a notebook that imported it sets them in Python).
RANDOM_SETTINGS = {"prng_impl": "jax_default_prng_impl", "threefry_partitionable": "jax_threefry_partitionable"}


def random_settings() -> dict:
    """JAX's random generator as this process has it: the settings every draw of a run (its data order,
    cohorts, ties, noise, faults) depends on besides the seed; the checkpoint records them, and a resume
    under others is refused (random_change, below). Read when asked: a test or a notebook may change
    them within a process. Imports JAX (a run has it imported already)."""
    import jax
    # None where this JAX has no such setting (a later JAX may drop or rename one): saving a checkpoint
    # and every resume raised AttributeError; random_change compares only what both sides know
    impl = getattr(jax.config, RANDOM_SETTINGS["prng_impl"], None)
    part = getattr(jax.config, RANDOM_SETTINGS["threefry_partitionable"], None)
    return {"prng_impl": None if impl is None else str(impl),
            "threefry_partitionable": None if part is None else bool(part)}


def as_env(s: dict) -> str:
    """`JAX_DEFAULT_PRNG_IMPL=threefry2x32 JAX_THREEFRY_PARTITIONABLE=true`: the settings `s` records."""
    return " ".join(f"{name.upper()}={str(s[k]).lower() if isinstance(s[k], bool) else s[k]}"
                    for k, name in RANDOM_SETTINGS.items() if s.get(k) is not None)


def as_updates(s: dict) -> str:
    """`jax.config.update("jax_default_prng_impl", "threefry2x32")` and so on: the same, as Python sets them."""
    return "; ".join(f'jax.config.update("{name}", {_py(s[k])})' for k, name in RANDOM_SETTINGS.items()
                     if s.get(k) is not None)


def _py(value) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)     # True, "rbg": as typed in Python


def describe(code: dict) -> str:
    """`tallysim 0.1.0, commit 2aedc14 with local changes, source crc32:...` as the warning names it."""
    if not isinstance(code, dict):
        return "unknown code"
    text = f"tallysim {code.get('version', '?')}"
    if code.get("commit"):
        dirty = {True: " with local changes", False: ""}.get(code.get("dirty"), " (local changes unknown)")
        text += f", commit {str(code['commit'])[:12]}{dirty}"
    return text + f", source {code.get('source') or 'unknown'}"


def changed(was, now: dict) -> bool:
    """Whether the code `was` (a checkpoint's `code`) is other than `now`: another version or source digest.
    A checkpoint without one (written before 2026-12-06) is not compared."""
    if not isinstance(was, dict):
        return False
    return any(was.get(k) is not None and now.get(k) is not None and was.get(k) != now.get(k)
               for k in ("version", "source"))


def random_change(meta: dict, where) -> str:
    """The refusal of a resume under another JAX random generator than the checkpoint's (`random`:
    random_settings; "" when the same, or a checkpoint from before 2026-12-06 without it).
    JAX_DEFAULT_PRNG_IMPL=rbg (or JAX_THREEFRY_PARTITIONABLE) set in one job script and not the next
    resumed in silence, the rounds after the checkpoint drawing from another generator than those before
    it. Refused, not warned: setting the variables back continues the run as it began."""
    was, now = meta.get("random"), random_settings()
    # only the settings both recorded: a checkpoint saved before a setting was recorded here (or under a
    # JAX without it) is not refused for lacking it, or every such checkpoint could never be resumed
    if not isinstance(was, dict) or all(was.get(k) == now[k] for k in now
                                        if was.get(k) is not None and now[k] is not None):
        return ""

    # the settings as the checkpoint recorded them (one it lacks is not named: "=None" restores nothing),
    # in both the forms a user sets them: the environment (a job script) and jax.config.update (a notebook,
    # where JAX is imported before any variable set then is read)
    return (f"--resume: {where} was computed with JAX's random generator {as_env(was)}, and this process has "
            f"{as_env(now)}: the rounds after {meta.get('round')} would draw other random numbers than those "
            f"before; allowed: resume with {as_env(was)} set in the environment (before JAX is imported) or, "
            f"in a notebook or script, after {as_updates(was)}; or start again with --overwrite")


def code_change(meta: dict) -> str:
    """The warning for a checkpoint computed under other tallysim code than this process runs, naming
    both ("" when the same, or when the checkpoint predates the record): warned, not refused, as an edited
    plugin is, since a bug fix is a good reason to resume; config.json's `resumed` entry keeps the new code."""
    was, now = meta.get("code"), identity()
    if not changed(was, now):
        return ""
    return (f"\ntallysim: warning: tallysim's code has changed since the checkpoint was saved (it was "
            f"{describe(was)}; now {describe(now)}): the rounds after "
            f"{meta['round']} run the new code, those before ran the old (to keep one code, check out the "
            "old one, or start again with --overwrite)")
