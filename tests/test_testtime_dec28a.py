"""The suite's compile settings (tests/conftest.py): XLA:CPU generates each program's machine code in one
piece (xla_cpu_parallel_codegen_split_count=1), in this process and in the subprocesses tests start, and a
test that compiles as users do (test_xla_hang's reproducer) drops it with the older fusion emitters.

Fails without conftest's SINGLE_CODEGEN (checked by removing it from TEST_ONLY_FLAGS): 7-9% more CPU per
tiny run for the suite, nothing else visible."""
import os
import subprocess
import sys

import pytest

import conftest

TEST_SETTINGS = os.environ.get("TALLYSIM_TEST_OPTIMIZE") != "1" and conftest._jaxlib_minor() == (0, 10)
pytestmark = pytest.mark.skipif(not TEST_SETTINGS, reason="the suite's XLA flags are set for jaxlib 0.10 only")


def test_programs_are_generated_in_one_piece_here_and_in_subprocesses():
    flags = os.environ.get("XLA_FLAGS", "").split()
    assert conftest.SINGLE_CODEGEN in flags and conftest.LEGACY_EMITTERS in flags, flags
    assert conftest.SINGLE_CODEGEN in conftest.TEST_ONLY_FLAGS
    out = subprocess.run([sys.executable, "-c", "import os; print(os.environ['XLA_FLAGS'])"],
                         capture_output=True, text=True, timeout=60)
    assert conftest.SINGLE_CODEGEN in out.stdout.split(), out


def test_a_flag_the_user_set_is_kept():
    """A flag is appended only where XLA_FLAGS does not name it: a user's split count or emitters win."""
    mine = "--xla_cpu_parallel_codegen_split_count=8"
    assert conftest.with_test_flags(mine).split() == [mine, conftest.LEGACY_EMITTERS]
    assert conftest.with_test_flags("xla_cpu_use_fusion_emitters=true").split() == [
        "xla_cpu_use_fusion_emitters=true", conftest.SINGLE_CODEGEN]
    assert conftest.with_test_flags("").split() == list(conftest.TEST_ONLY_FLAGS)
