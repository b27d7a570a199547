"""Benchmarks and fidelity runs, a package: run each as ``python -m benchmarks.NAME`` from the
repository root (no ``sys.path`` edits). Timing scripts use ``benchmarks.harness`` (warm-up,
``block_until_ready``, median of k, a machine header, JSON rows under
``benchmarks/results/``); ``python -m benchmarks.report FILE.json`` renders a saved run as
the markdown table quoted in ``benchmarks/RESULTS*.md``."""
