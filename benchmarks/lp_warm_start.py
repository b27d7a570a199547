"""Warm starts for PASPO's interval LPs on long chains (``paspo_jax.lp.chain_warm_start``).

    python -m benchmarks.lp_warm_start                   # N = 20 50 100, 64 / 64 / 16 points
    python -m benchmarks.lp_warm_start --sizes 50 --points 64

For PASPO-synth-N (random polytope of N rows) and B uniform points of it, all 2 (N-1) interval
LPs of every point (``jax.vmap`` of ``lp.allocation_bounds(..., rescale=True)``, float32, as
the policy's LP path), once from the box basis and once warm-started from the optimal bases
at the polytope's Chebyshev centre. Prints wall time (median of ``--repeats`` calls after a
compiling warm-up call, ``benchmarks.harness.timeit``), mean / max pivots per entry (both
LPs) and the largest difference between the two answers; rows go to
``benchmarks/results/lp_warm_start-*.json``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import envs_jax
from benchmarks import harness
from paspo_jax import lp, polytope


def measure(n: int, points: int, repeats: int = 1):
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
        t = harness.timeit(f, P, idx, warmup=1, repeats=repeats)  # the warm-up call compiles
        wall, out = t.median_s, t.result
        k = np.asarray(nit(P, idx))  # pivots of both LPs of an entry
        rows[name] = (wall, k.mean(), k.max(), out)
    diff = max(float(jnp.max(jnp.abs(rows["box"][3][j] - rows["warm"][3][j]))) for j in (0, 1))
    return t_warm, rows, diff


COLUMNS = {"N": "N", "points": "points", "lps": "LPs", "start": "start", "wall_s": "wall s",
           "pivots_mean": "pivots per entry, both LPs (mean)", "pivots_max": "(max)", "max_abs_diff": "max abs diff",
           "warm_build_s": "warm start built in s"}
FORMATS = {"wall_s": ".2f", "pivots_mean": ".1f", "pivots_max": ".0f", "max_abs_diff": ".1e", "warm_build_s": ".1f"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="*", type=int, default=[20, 50, 100])
    p.add_argument("--points", nargs="*", type=int, default=None, help="points per size (default 64, 64, 16)")
    p.add_argument("--repeats", type=int, default=1, help="timed calls per row (median; after a warm-up call)")
    args = p.parse_args(argv)
    points = args.points or [16 if n >= 100 else 64 for n in args.sizes]
    if len(points) != len(args.sizes):
        p.error(f"--points needs one value per size ({len(args.sizes)}), got {len(points)}")
    run = harness.Run("lp_warm_start", vars(args), COLUMNS, FORMATS)
    print(harness.header_line(run.header), flush=True)
    for n, k in zip(args.sizes, points):
        t_warm, rows, diff = measure(n, k, args.repeats)
        for name, (wall, mean, mx, _) in rows.items():
            run.add(N=n, points=k, lps=2 * k * (n - 1), start=name, wall_s=wall, pivots_mean=float(mean),
                    pivots_max=float(mx), max_abs_diff=diff if name == "warm" else 0.0,
                    warm_build_s=t_warm if name == "warm" else None)
            print(f"  N {n}, {k} points, {name}: {wall:.2f} s", flush=True)
    run.finish()


if __name__ == "__main__":
    main()
