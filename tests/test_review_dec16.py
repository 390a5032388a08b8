"""review16 (2026-12-06) of the day's merges (blockedvote2, leftovers15, hostile11, userjourney5): each test
fails without its fix.

- sim/row_draws.py computed JAX's threefry draws from a formula that only the test suite compared with
  JAX's own draws: a JAX whose draws differ (another version's counter layout or float conversion) voted
  otherwise in a blocked run than in the all-probes run, in silence; and a typed key of another generator
  (jax.random.key(s, impl="rbg")) was drawn as threefry's, because only the default generator was asked.
  Now every process checks the formulas once against a small draw (row_draws.reproduces) and slices whole
  draws where they differ, and a typed key of another generator is sliced too.
- The one-class split's warning said "at most 4 of the 10 classes to any peer" of 4 one-class peers: read
  as each peer's share; it is the peers' together.
- code_identity's dirty flag ran `git status` with the caller's GIT_DIR (a run started from another
  project's git hook or script): that repository's index was read, and a clean checkout was recorded
  as having local changes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim.sim import row_draws

KEY = jax.random.PRNGKey(11)


@pytest.fixture
def fresh_check():
    """row_draws.reproduces asked again (its once-a-process answer cleared before and after)."""
    row_draws.reproduces.cache_clear()
    yield
    row_draws.reproduces.cache_clear()


def _draws_equal(key):
    u = jax.jit(lambda r: row_draws.uniform_rows(key, (6, 4), r, 2))(3)
    n = jax.jit(lambda r: row_draws.normal_rows(key, (6, 4), r, 2))(1)
    i = jax.jit(lambda r: row_draws.randint_rows(key, (9,), r, 3, 1, 50))(4)
    return (np.array_equal(np.asarray(u), np.asarray(jax.random.uniform(key, (6, 4))[3:5]))
            # erf_inv's last bit may differ between two programs (XLA's CPU emitters, as this suite sets them)
            and np.allclose(np.asarray(n), np.asarray(jax.random.normal(key, (6, 4))[1:3]), rtol=1e-6, atol=0)
            and np.array_equal(np.asarray(i), np.asarray(jax.random.randint(key, (9,), 1, 50)[4:7])))


def test_a_jax_whose_draws_differ_from_the_formulas_is_detected_and_sliced(monkeypatch, fresh_check):
    """A JAX that draws otherwise (here: one bit of every element's 32 flipped; another version's counter
    layout or output mixing would do the same) is what another version may do; the blocked vote must still draw what the all-probes vote
    draws. Without the once-a-process check, uniform_rows returned the formula's (other) numbers."""
    real = row_draws._bits

    def other_layout(key, row0, rows, tail):
        return real(key, row0, rows, tail) ^ np.uint32(1 << 20)       # one bit off: another JAX's draw
    monkeypatch.setattr(row_draws, "_bits", other_layout)
    with pytest.warns(UserWarning, match="random draws"):
        assert not row_draws.counter_based()
    assert _draws_equal(KEY)


def test_the_formulas_are_kept_where_this_jax_draws_them(fresh_check):
    """The check passes on this JAX (the O(rows) path stays), even when first asked inside a traced
    program, and the draws are JAX's own."""
    jax.jit(lambda r: row_draws.uniform_rows(KEY, (4, 3), r, 2))(1)      # first asked while tracing
    assert row_draws.reproduces.cache_info().currsize == 1
    assert row_draws.counter_based()
    assert _draws_equal(KEY)


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_a_typed_key_of_another_generator_is_drawn_as_its_own(impl):
    """jax.random.key(s, impl=...) carries its generator; the default's being threefry said nothing of
    it, and its rows were computed as threefry's (none equal)."""
    assert _draws_equal(jax.random.key(5, impl=impl))


def test_a_typed_threefry_key_keeps_the_formulas():
    assert _draws_equal(jax.random.key(5))


# -------------------------------------------------------------------------- the one-class split's warning

def test_the_unheld_classes_warning_counts_the_peers_together():
    """4 one-class peers of 10 classes: "gives at most 4 of the 10 classes to any peer" read as each peer's
    share (each holds one); it is the peers' together, and at least the other 6 are never trained on."""
    from tallysim import config, validation
    cfg = config.apply_overrides(config.Config(), ["data.name=synthetic", "data.num_classes=10", "peers=4",
                                                   "partition.kind=label_quantity", "partition.k=1"])
    line = next(w for w in validation.warnings(cfg) if "label_quantity" in w)
    assert "gives the peers together at most 4 of the 10 classes" in line, line
    assert "to any peer" not in line, line


# ------------------------------------------------------------------------------------ code_identity

@pytest.mark.skipif(__import__("shutil").which("git") is None, reason="git")
def test_the_dirty_flag_is_the_checkouts_own_whatever_git_dir_says(tmp_path, monkeypatch):
    """A run started from another project's git hook or script inherits its GIT_DIR, which `git -C` does
    not override: `git status` then read that repository's index, and a clean checkout of tallysim was
    recorded (and named on --resume) as having local changes."""
    import subprocess
    from tallysim import code_identity

    def git(*a, cwd):
        subprocess.run(["git", "-c", "user.email=r@t", "-c", "user.name=r", *a], cwd=cwd, check=True,
                       capture_output=True, env={k: v for k, v in __import__("os").environ.items()
                                                 if not k.startswith("GIT_")})
    repo, other = tmp_path / "checkout", tmp_path / "other"
    (repo / code_identity.PACKAGE.name).mkdir(parents=True)
    (repo / code_identity.PACKAGE.name / "x.py").write_text("x = 1\n")
    git("init", "-q", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-qm", "one", cwd=repo)
    other.mkdir()
    git("init", "-q", cwd=other)
    assert code_identity.git_dirty(repo) is False
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert code_identity.git_dirty(repo) is False        # was True: the other repository's view of the files
