"""Test-session settings.

XLA compiles the suite's programs at backend optimisation level 1 (of 3): most tests are
dominated by compile time, which this cuts, while the few that train for long keep most of
their run-time speed (level 0 made them 2x slower; benchmarks/RESULTS.md, "Test suite
time"). The programs compute the same functions, and every comparison inside a test is
between programs compiled alike. Set ``XLA_FLAGS`` yourself
to test with other flags (``CONSTRAINED_TESTS_FULL_OPT=1`` keeps XLA's defaults).
"""

import os

FAST_COMPILE = "--xla_backend_optimization_level=1"

if "XLA_FLAGS" not in os.environ and os.environ.get("CONSTRAINED_TESTS_FULL_OPT") != "1":
    os.environ["XLA_FLAGS"] = FAST_COMPILE  # read when JAX starts its backend; subprocesses inherit it
