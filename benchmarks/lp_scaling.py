"""PASPO's interval LPs at N = 7 .. 100 entities, with peers, in one run (issue 22).

    python -m benchmarks.lp_scaling                               # N = 7 20 50 100
    python -m benchmarks.lp_scaling --sizes 20 50 --points 32 --peers highs linrax mpax

For each ``PASPO-synth-N`` the inputs are ``--points`` uniform points of the polytope (rejection
from Dirichlet(1)); for every point and entity ``i < N - 1`` the interval of ``a_i`` given
``a_<i`` (PASPO Eq. 3): ``2 (N - 1)`` LPs per point. Solvers, all on the same LPs:

* ``ours``: the policy's LP path (``paspo_jax.bounds.LPBounds``: dual simplex in float32,
  remaining-mass coordinates, warm start from the Chebyshev centre's bases), all intervals of
  all points in one jitted program (``paspo_jax.debias.lp_chain_bounds``);
* ``highs``: scipy's HiGHS dual simplex (the original's solver), one LP at a time in float64,
  as the original did (2(N-1) LPs per action); also the reference for the errors;
* ``linrax`` (PyPI ``linrax``, a JAX simplex) and ``mpax`` (PyPI ``mpax``, the first-order
  PDHG solver ``r2HPDHG``, tolerance 1e-4 by default), vmapped over all LPs, if installed.

Columns: intervals/s (wall time of a jitted call after a warm-up call; compile time apart),
``max |err|``: largest difference of an interval end from HiGHS's, ``violations``: intervals
reaching more than 1e-6 outside HiGHS's (an action sampled there would be infeasible), and
failures (NaN / not optimal). Print ``uptime``'s load with the numbers: the CPU is shared.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import envs_jax
from benchmarks import harness
from paspo_jax.bounds import make_bounds_fn, static_polytope
from paspo_jax.debias import lp_chain_bounds


def load():
    return os.getloadavg()[0]


def problems(n_entities, points, seed=0):
    env, params = envs_jax.make(f"PASPO-synth-{n_entities}")
    A, b = (np.asarray(x, np.float64) for x in env.exact_constraints)
    poly = static_polytope(env, params, fast_path=False)
    pts = np.asarray(poly.sample_uniform(jax.random.PRNGKey(seed), points, method="rejection"), np.float64)
    return env, params, poly, A, b, pts


def highs_chain(A, b, pts):
    """(lo, hi) (K, n-1) by serial HiGHS, 2 LPs per interval; seconds."""
    from scipy.optimize import linprog

    K, n = pts.shape
    lo, hi = np.full((K, n - 1), np.nan), np.full((K, n - 1), np.nan)
    t0 = time.perf_counter()
    for k in range(K):
        for i in range(n - 1):
            bounds = [(pts[k, j], pts[k, j]) for j in range(i)] + [(0.0, 1.0)] * (n - i)
            c = np.zeros(n)
            c[i] = 1.0
            for sign, out in ((1.0, lo), (-1.0, hi)):
                r = linprog(sign * c, A_ub=A, b_ub=b, A_eq=np.ones((1, n)), b_eq=[1.0], bounds=bounds, method="highs-ds")
                if r.status == 0:
                    out[k, i] = r.x[i]
    return lo, hi, time.perf_counter() - t0


def _all_lps(A, b, pts):
    """Every LP as rows of (c, l, u): objective sign, variable bounds with the prefix fixed."""
    K, n = pts.shape
    i = np.tile(np.arange(n - 1), K)
    p = np.repeat(pts, n - 1, axis=0)
    fixed = np.arange(n)[None, :] < i[:, None]
    lower, upper = np.where(fixed, p, 0.0), np.where(fixed, p, 1.0)
    c = (np.arange(n)[None, :] == i[:, None]).astype(np.float64)
    return np.concatenate([c, -c]), np.concatenate([lower, lower]), np.concatenate([upper, upper]), i


def _split(x, K, n):
    """x (2 K (n-1), n) argmin/argmax rows -> (lo, hi) (K, n-1) at each LP's entity."""
    m = K * (n - 1)
    i = np.tile(np.arange(n - 1), K)
    return x[:m][np.arange(m), i].reshape(K, n - 1), x[m:][np.arange(m), i].reshape(K, n - 1)


def linrax_chain(A, b, pts, dtype):
    import linrax

    K, n = pts.shape
    c, lower, upper, _ = _all_lps(A, b, pts)
    A_ub = jnp.asarray(np.concatenate([A, np.eye(n), -np.eye(n)]), dtype)

    def one(c, lo, up):
        step, sol = linrax.linprog(c, A_ub=A_ub, b_ub=jnp.concatenate([jnp.asarray(b, dtype), up, -lo]),
                                   A_eq=jnp.ones((1, n), dtype), b_eq=jnp.ones((1,), dtype))
        return step.x if hasattr(step, "x") else sol.x

    f = jax.jit(jax.vmap(one))
    args = tuple(jnp.asarray(x, dtype) for x in (c, lower, upper))
    return _timed(f, args, K, n)


def mpax_chain(A, b, pts, dtype, eps=1e-4):
    from mpax import create_lp, r2HPDHG

    K, n = pts.shape
    c, lower, upper, _ = _all_lps(A, b, pts)
    solver = r2HPDHG(eps_abs=eps, eps_rel=eps, verbose=False, jit=False)
    G, h = jnp.asarray(-A, dtype), jnp.asarray(-b, dtype)  # mpax: G x >= h

    def one(c, lo, up):
        lp = create_lp(c, jnp.ones((1, n), dtype), jnp.ones((1,), dtype), G, h, lo, up, use_sparse_matrix=False)
        return solver.optimize(lp).primal_solution

    f = jax.jit(jax.vmap(one))
    args = tuple(jnp.asarray(x, dtype) for x in (c, lower, upper))
    return _timed(f, args, K, n)


def _timed(f, args, K, n):
    t0 = time.perf_counter()
    jax.block_until_ready(f(*args))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    x = np.asarray(jax.block_until_ready(f(*args)), np.float64)
    lo, hi = _split(x, K, n)
    return lo, hi, time.perf_counter() - t0, compile_s


def ours_chain(env, params, poly, pts):
    bounds_fn = make_bounds_fn(env, params, "lp", poly=poly)
    A, b = (jnp.asarray(v, jnp.float32) for v in env.constraints(None, params))
    P = jnp.asarray(pts, jnp.float32)
    f = lambda: jax.block_until_ready(lp_chain_bounds(bounds_fn, A, b, P, chunk=len(pts)))
    t0 = time.perf_counter()
    f()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lo, hi, ok = f()
    run_s = time.perf_counter() - t0
    lo, hi = (np.where(np.asarray(ok), np.asarray(x, np.float64), np.nan) for x in (lo, hi))
    return lo, hi, run_s, compile_s


def errors(lo, hi, ref_lo, ref_hi, tol=1e-6):
    fail = ~(np.isfinite(lo) & np.isfinite(hi))
    ok = ~fail & np.isfinite(ref_lo) & np.isfinite(ref_hi)
    err = np.max(np.abs(np.stack([lo - ref_lo, hi - ref_hi]))[:, ok]) if ok.any() else np.nan
    viol = np.sum(ok & ((lo < ref_lo - tol) | (hi > ref_hi + tol)))
    return float(err), int(viol), int(fail.sum())


COLUMNS = {"N": "N", "solver": "solver", "intervals_per_s": "intervals/s", "ms_per_action": "ms per action (2(N-1) LPs)",
           "max_err": "max |err| vs HiGHS", "violations": "violations", "failures": "failures", "compile_s": "compile s",
           "load": "load (1 min)"}
FORMATS = {"intervals_per_s": ",.0f", "ms_per_action": ".2f", "max_err": ".1e", "compile_s": ".0f", "load": ".1f"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="*", type=int, default=[7, 20, 50, 100])
    p.add_argument("--points", type=int, default=64, help="uniform points per N (ours and the JAX peers)")
    p.add_argument("--highs-points", type=int, default=8, help="points HiGHS solves (the error reference)")
    p.add_argument("--peers", nargs="*", default=["highs", "linrax", "mpax"])
    args = p.parse_args(argv)
    run = harness.Run("lp_scaling", vars(args), COLUMNS, FORMATS,
                      notes="wall time of one jitted call after a warm-up call; errors on the first --highs-points points")
    print(harness.header_line(run.header), flush=True)
    for n in args.sizes:
        env, params, poly, A, b, pts = problems(n, args.points)
        ref_pts = pts[: args.highs_points]
        ref_lo, ref_hi, highs_s = highs_chain(A, b, ref_pts)
        K = args.highs_points

        def report(name, count, seconds, compile_s, lo, hi):
            err, viol, fail = errors(lo, hi, ref_lo, ref_hi)
            row = dict(N=n, solver=name, intervals_per_s=count * (n - 1) / seconds, ms_per_action=1e3 * seconds / count,
                       max_err=err, violations=f"{viol}/{lo.size}", failures=fail, compile_s=compile_s, load=load())
            run.add(**row)
            print(f"  N={n:3d} {name:36s} {row['intervals_per_s']:10.0f} intervals/s  {row['ms_per_action']:9.2f} ms/action  "
                  f"err {err:.1e}  violations {viol}/{lo.size}  failures {fail}  compile {compile_s:.0f} s  "
                  f"load {row['load']:.1f}", flush=True)

        if "highs" in args.peers:
            report("HiGHS serial (float64)", len(ref_pts), highs_s, 0.0, ref_lo, ref_hi)
        lo, hi, s, c = ours_chain(env, params, poly, pts)
        report("ours (float32 dual simplex, warm)", len(pts), s, c, lo[:K], hi[:K])
        for name, fn in (("linrax", linrax_chain), ("mpax", mpax_chain)):
            if name not in args.peers:
                continue
            try:
                lo, hi, s, c = fn(A, b, pts, jnp.float32)
            except Exception as e:  # a peer that fails is reported, not fatal
                print(f"  N={n} {name}: failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
                continue
            report(f"{name} (float32)", len(pts), s, c, lo[:K], hi[:K])
    run.finish()


if __name__ == "__main__":
    main()
