"""Warm starts for PASPO's interval LPs on long chains (``paspo_jax.lp.chain_warm_start``).

    python -m benchmarks.lp_warm_start                   # N = 20 50 100, 64 / 64 / 16 points
    python -m benchmarks.lp_warm_start --sizes 50 --points 64

For PASPO-synth-N (random polytope of N rows) and B uniform points of it, all 2 (N-1) interval
LPs of every point (``jax.vmap`` of ``lp.allocation_bounds(..., rescale=True)``, float32, as
the policy's LP path), once from the box basis and once warm-started from the optimal bases
at the polytope's Chebyshev centre. Prints wall time (second call, compiled), mean / max
pivots per entry (both LPs) and the largest difference between the two answers.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import envs_jax
from paspo_jax import lp, polytope


def measure(n: int, points: int):
    env, params = envs_jax.make(f"PASPO-synth-{n}")
    A, b = params.A, params.b
    poly = polytope.Polytope(*env.exact_constraints, name=f"synth{n}", fast_path=False)
    P = jnp.asarray(poly.sample_uniform(jax.random.PRNGKey(0), points), jnp.float32)
    idx = jnp.arange(n - 1)
    t0 = time.perf_counter()
    warm = lp.chain_warm_start(A, b, jnp.asarray(poly.chebyshev_center()[0], jnp.float32))
    t_warm = time.perf_counter() - t0
    rows = {}
    for name, w in (("box", None), ("warm", warm)):
        f = jax.jit(jax.vmap(jax.vmap(lambda a, i: lp.allocation_bounds(A, b, a, i, rescale=True, warm=w), (None, 0)),
                             (0, None)))
        nit = jax.jit(jax.vmap(jax.vmap(lambda a, i: lp.allocation_lps(A, b, a, i, warm=w).nit, (None, 0)), (0, None)))
        jax.block_until_ready(f(P, idx))
        t0 = time.perf_counter()
        out = jax.block_until_ready(f(P, idx))
        wall = time.perf_counter() - t0
        k = np.asarray(nit(P, idx))  # pivots of both LPs of an entry
        rows[name] = (wall, k.mean(), k.max(), out)
    diff = max(float(jnp.max(jnp.abs(rows["box"][3][j] - rows["warm"][3][j]))) for j in (0, 1))
    return t_warm, rows, diff


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="*", type=int, default=[20, 50, 100])
    p.add_argument("--points", nargs="*", type=int, default=None, help="points per size (default 64, 64, 16)")
    args = p.parse_args(argv)
    points = args.points or [16 if n >= 100 else 64 for n in args.sizes]
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| N | points | LPs | start | wall s | pivots per entry, both LPs (mean) | (max) | max abs diff | warm start built in s |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for n, k in zip(args.sizes, points):
        t_warm, rows, diff = measure(n, k)
        for name, (wall, mean, mx, _) in rows.items():
            print(f"| {n} | {k} | {2 * k * (n - 1):,} | {name} | {wall:.2f} | {mean:.1f} | {mx:.0f} | "
                  f"{diff if name == 'warm' else 0.0:.1e} | {t_warm if name == 'warm' else float('nan'):.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
