"""Test-session settings.

XLA compiles the suite's programs with its cheap backend passes (optimisation level 0, no
expensive LLVM passes): most tests are dominated by compile time, which this cuts by about a
third (benchmarks/RESULTS.md, "Test suite time"); the programs compute the same functions, and
every comparison inside a test is between programs compiled alike. Set ``XLA_FLAGS`` yourself
to test with other flags (``CONSTRAINED_TESTS_FULL_OPT=1`` keeps XLA's defaults).
"""

import os

FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"

if "XLA_FLAGS" not in os.environ and os.environ.get("CONSTRAINED_TESTS_FULL_OPT") != "1":
    os.environ["XLA_FLAGS"] = FAST_COMPILE  # read when JAX starts its backend; subprocesses inherit it
