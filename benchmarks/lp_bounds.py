"""Throughput of PASPO's interval LPs: the full chain of 2(n-1) bounds per action.

    python -m benchmarks.lp_bounds            # batch 1, 64, 1024, 4096, 16384; 3 repeats
    python -m benchmarks.lp_bounds --quick    # batch 1, 1024; 1 repeat

For each reference polytope (synth7 611x7, compute9 5x9, portfolio13 5x13) and batch size
B, the inputs are B uniform points of the polytope (``Polytope.sample_uniform``, rejection from Dirichlet(1)) and
the output is, for each of them, the feasible interval of a_i given a_0..a_{i-1} for every
i < n - 1 (PASPO Eq. 3, what the log-probability of a stored action needs): 2(n-1) LPs per
action, float64, all exact (vertex) answers.  Rows:

* ``lp queue``: ``paspo_jax.lp.batch_allocation_bounds_chain`` (dual simplex, work queue,
  warm starts from reference bases; any constraints);
* ``lp vmap``: ``jax.vmap(paspo_jax.lp.allocation_bounds_chain)`` (plain vmapped while
  loops from the box basis: the batch runs as long as its slowest LP);
* ``fast``: ``jax.vmap(Polytope.bounds_chain)``, the static fast path (facets of the
  projections, computed once; build time printed);
* ``HiGHS``: scipy's HiGHS dual simplex (the original's solver) on the same LPs, one at a
  time in this process.

actions/s = B / (median wall time of one jitted call after a warm-up call); us per LP =
wall time / (2 (n-1) B).  ``max |diff|``: largest difference of the bounds from the LP
queue (LP paths) or from the vmapped LP (fast path).  Memory: XLA's buffer sizes for the
compiled call (arguments + outputs + temporaries, ``Compiled.memory_analysis()``), and the
process's peak RSS at the end. Rows go to ``benchmarks/results/lp_bounds-*.json``.
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from paspo_jax import lp
from paspo_jax.polytope import load_reference_polytope

NAMES = ("synth7", "compute9", "portfolio13")


def timed(fn, x, repeats):
    """(median seconds per call, outputs, memory MiB) of a jitted fn after a warm-up."""
    compiled = jax.jit(fn).lower(x).compile()
    mem = compiled.memory_analysis()
    mib = None
    if mem is not None:
        mib = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes) / 2**20
    t = harness.timeit(compiled, x, warmup=1, repeats=repeats)
    return t.median_s, t.result, mib


def highs_chain_seconds(P, X):
    """Serial scipy HiGHS (dual simplex) on the 2(n-1) LPs of each row of X."""
    from scipy.optimize import linprog

    n = P.n
    t = time.perf_counter()
    for a in X:
        for i in range(n - 1):
            bounds = [(a[j], a[j]) for j in range(i)] + [(0.0, 1.0)] * (n - i)
            c = np.zeros(n)
            c[i] = 1.0
            for sign in (1.0, -1.0):
                r = linprog(sign * c, A_ub=P.A, b_ub=P.b, A_eq=np.ones((1, n)), b_eq=[1.0], bounds=bounds, method="highs-ds")
                assert r.status == 0
    return (time.perf_counter() - t) / len(X)


COLUMNS = {"polytope": "polytope", "batch": "batch", "path": "path", "actions_per_s": "actions/s",
           "us_per_lp": "us per LP", "xla_mib": "XLA memory MiB", "max_abs_diff": "max abs diff"}
FORMATS = {"actions_per_s": ",.0f", "us_per_lp": ",.3f", "xla_mib": ".1f", "max_abs_diff": ".1e"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="batch 1 and 1024, one repeat")
    ap.add_argument("--polytopes", nargs="*", default=list(NAMES))
    ap.add_argument("--batches", nargs="*", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per row (default 3, quick 1)")
    ap.add_argument("--highs-actions", type=int, default=None, help="actions HiGHS solves (default 20, quick 5)")
    args = ap.parse_args()
    batches = args.batches or ([1, 1024] if args.quick else [1, 64, 1024, 4096, 16384])
    repeats = args.repeats or (1 if args.quick else 3)
    n_highs = args.highs_actions or (5 if args.quick else 20)
    run = harness.Run("lp_bounds", vars(args), COLUMNS, FORMATS)
    print(f"# {harness.header_line(run.header)}")
    print(f"# batches {batches}, median of {repeats} timed call(s) after a warm-up call\n")
    with jax.enable_x64(True):
        for name in args.polytopes:
            t = time.perf_counter()
            P = load_reference_polytope(name)
            build = time.perf_counter() - t
            n = P.n
            lps = 2 * (n - 1)
            print(f"{name}: {P.m} rows x {n} entities, {lps} LPs per action; fast path "
                  f"{sum(P.fast.rows_per_entity)} facet rows {P.fast.rows_per_entity}, built in {build:.1f} s "
                  f"(vertices, projections, Chebyshev LP incl. compilation)", flush=True)
            X_all = np.asarray(P.sample_uniform(jax.random.PRNGKey(1), max(batches), "rejection"), np.float64)
            highs = highs_chain_seconds(P, X_all[:n_highs])
            run.add(polytope=name, batch=None, path="HiGHS (serial)", actions_per_s=1.0 / highs,
                    us_per_lp=1e6 * highs / lps, xla_mib=None, max_abs_diff=None, highs_actions=n_highs)
            print(f"  HiGHS: {1 / highs:,.1f} actions/s ({1e6 * highs / lps:,.0f} us per LP)", flush=True)
            for B in batches:
                X = jnp.asarray(X_all[:B])
                queue = lambda X: lp.batch_allocation_bounds_chain(P.A, P.b, X)
                vmapped = jax.vmap(lambda a: lp.allocation_bounds_chain(P.A, P.b, a))
                fast = jax.vmap(P.bounds_chain)
                s_q, out_q, mem_q = timed(queue, X, repeats)
                ref = out_q
                for label, fn in (("lp queue", None), ("lp vmap", vmapped), ("fast", fast)):
                    if fn is None:
                        s, out, mem = s_q, out_q, mem_q
                    else:
                        if label == "lp vmap" and B > 4096:
                            continue  # minutes on 2 cores; the queue is the LP path to use
                        s, out, mem = timed(fn, X, repeats)
                    ok = bool(np.all(np.asarray(out[2])))
                    diff = float(max(np.max(np.abs(np.asarray(out[0]) - np.asarray(ref[0]))),
                                     np.max(np.abs(np.asarray(out[1]) - np.asarray(ref[1])))))
                    run.add(polytope=name, batch=B, path=label, actions_per_s=B / s, us_per_lp=1e6 * s / (lps * B),
                            xla_mib=mem, max_abs_diff=diff if ok else float("nan"), median_s=s)
                    print(f"  B={B:6d} {label:9s} {B / s:12,.0f} actions/s {1e6 * s / (lps * B):9.3f} us/LP "
                          f"mem {mem if mem is None else round(mem, 1)} MiB  max|diff| {diff:.1e}  all feasible {ok}",
                          flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run.notes = f"peak RSS of the process: {peak:.0f} MiB; median of {repeats} timed call(s) after a warm-up call"
    run.finish()


if __name__ == "__main__":
    main()
