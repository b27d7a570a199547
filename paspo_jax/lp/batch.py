"""Batched interval LPs (PASPO Eq. 3) and the polytope's support function, through the work
queue (``paspo_jax.lp.queue``) with reference-prefix warm starts.

Shapes: ``A`` (m, n) shared or (B, m, n) per problem, ``prefixes`` / ``actions`` (B, n); the
results carry a leading (B,) axis (chains: (B, n-1)). Same answers as ``jax.vmap`` of the
single-problem functions of ``paspo_jax.lp.intervals``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from paspo_jax.lp.intervals import AllocationLPs, _allocation_problem, _allocation_rows, _box_bases, \
    _check_allocation_inputs, _default_maxiter, _interval
from paspo_jax.lp.queue import _solve_queue
from paspo_jax.lp.simplex import _dtype_of, _dual_simplex, _start, _tolerances
from ppo_jax import linalg

def _reference_bases(G, g, E, e, prefix_ref, i, maxiter, tol):
    """Optimal bases of min/max a_i at a reference prefix, and their inverses: valid dual
    simplex starts for every prefix with the same ``i`` and constraints (``paspo_jax.lp.warm``)."""
    m, n = G.shape
    rows = _allocation_rows(G, g, E, e, prefix_ref, i)
    e_i = (jnp.arange(n) == i).astype(G.dtype)
    bmin, bmax = _box_bases(m, n, i)
    st = jax.vmap(lambda c, basis0: _dual_simplex(rows, c, basis0, maxiter, tol))(
        jnp.stack([e_i, -e_i]), jnp.stack([bmin, bmax])
    )
    # Any basis the dual simplex visits is dual feasible, even if the reference
    # LP itself ended infeasible.
    inv = lambda basis: linalg.inv(rows.basis_rows(basis)[0])
    return (st.basis[0], inv(st.basis[0])), (st.basis[1], inv(st.basis[1]))


@partial(jax.jit, static_argnames=("slots", "warm_start"))
def _batch_lps(A, b, prefixes, entity, *, maxiter, slots, warm_start: int):
    """Solve min/max a_{entity[k]} for every row k of ``prefixes`` through one queue.

    A: (m, n) shared or (K, m, n) per problem; prefixes: (K, n); entity: (K,) ints
    in ``range(n - 1)`` (with ``warm_start`` references are solved for every entity).
    Returns AllocationLPs with a leading (K,) axis.
    """
    dtype = _dtype_of(A, b, prefixes)
    A, b, prefixes = (jnp.asarray(v, dtype) for v in (A, b, prefixes))
    K, n = prefixes.shape
    m = A.shape[-2]
    tol = _tolerances(dtype)
    shared = A.ndim == 2
    G, g, E, e, bad = (jax.vmap(_allocation_problem, (0, 0, None)) if not shared else _allocation_problem)(A, b, dtype)
    if not shared:
        E, e = E[0], e[0]
    fixed = jnp.arange(n)[None, :] < entity[:, None]
    bad = bad | ~jnp.all(jnp.isfinite(jnp.where(fixed, prefixes, 0.0)), axis=-1)

    if shared and warm_start:
        # Reference prefixes: the batch mean (for a valid batch a feasible prefix, the
        # polytope being convex) and warm_start - 1 batch members spread over the
        # batch; each LP starts from the optimal basis of the nearest reference.
        clean = jnp.where(jnp.isfinite(prefixes), prefixes, 0.0)
        R = int(min(warm_start, K + 1))
        pick = jnp.asarray(np.linspace(0, K - 1, R - 1).astype(np.int32)) if R > 1 else jnp.zeros((0,), jnp.int32)
        ref_p = jnp.concatenate([jnp.mean(clean, axis=0)[None], clean[pick]])
        ref_i = jnp.arange(n - 1)
        refs = jax.vmap(jax.vmap(lambda p, i: _reference_bases(G, g, E, e, p, i, maxiter, tol), (None, 0)), (0, None))(ref_p, ref_i)
    else:
        refs = None

    def make_rows(d):
        prefix, i, k_env = d
        Gk, gk = (G, g) if shared else (G[k_env], g[k_env])
        return _allocation_rows(Gk, gk, E, e, prefix, i)

    def load(q):
        k = q // 2  # LP q: problem k, sense q % 2 (0 = min a_i, 1 = max a_i)
        return prefixes[k], entity[k], k

    def start(d, q):
        i, minimise = d[1], q % 2 == 0
        c = jnp.where(minimise, 1.0, -1.0).astype(dtype) * (jnp.arange(n) == i).astype(dtype)
        if refs is None:
            bmin, bmax = _box_bases(m, n, i)
            return _start(make_rows(d), c, jnp.where(minimise, bmin, bmax), None, maxiter)
        dist = jnp.sum(jnp.where(jnp.arange(n) < i, jnp.abs(ref_p - d[0]), 0.0), axis=1)
        nearest = jnp.argmin(dist)
        (bmin, Bimin), (bmax, Bimax) = jax.tree.map(lambda a: a[nearest, i], refs)
        return _start(make_rows(d), c, jnp.where(minimise, bmin, bmax), jnp.where(minimise, Bimin, Bimax), maxiter)

    st = _solve_queue(make_rows, load, start, 2 * K, slots, maxiter, tol)
    st_min = jax.tree.map(lambda a: a[0::2], st)
    st_max = jax.tree.map(lambda a: a[1::2], st)
    return _interval(st_min, st_max, entity, bad)


def batch_allocation_lps(A, b, prefixes, i, *, maxiter=None, slots=2048, warm_start: int = 4) -> AllocationLPs:
    """``allocation_lps`` for a batch of prefixes (B, n) at one entity ``i``."""
    prefixes = jnp.asarray(prefixes)
    _check_allocation_inputs(jnp.asarray(A), jnp.asarray(b), prefixes, i, batched=True)
    entity = jnp.broadcast_to(jnp.asarray(i, jnp.int32), prefixes.shape[:1])
    maxiter = _default_maxiter(*jnp.shape(A)[-2:]) if maxiter is None else maxiter
    return _batch_lps(A, b, prefixes, entity, maxiter=jnp.int32(maxiter), slots=slots, warm_start=warm_start)


def batch_allocation_bounds(A, b, prefixes, i, *, maxiter=None, slots=2048, warm_start: int = 4):
    """``allocation_bounds`` for a batch of prefixes, solved through a work queue.

    Args:
      A: (m, n) shared constraints, or (B, m, n) one set per prefix; b: (m,) or
        (B, m); prefixes: (B, n); i: entity index (int, may be traced).
      slots: LPs in flight at once (default 2048).
      warm_start: number of reference prefixes (the batch mean and members spread
        over the batch); every LP starts from the optimal basis of the nearest
        one (shared A only; 0 = every LP from the box basis).

    The PASPO policy and its de-bias fit use ``jax.vmap`` of ``allocation_bounds`` with
    a ``chain_warm_start`` instead.
    Returns:
      (a_min (B,), a_max (B,), feasible (B,)) as in ``allocation_bounds``.
    """
    r = batch_allocation_lps(A, b, prefixes, i, maxiter=maxiter, slots=slots, warm_start=warm_start)
    return r.a_min, r.a_max, (r.status_min == 0) & (r.status_max == 0)


def batch_allocation_bounds_chain(A, b, actions, *, maxiter=None, slots=2048, warm_start: int = 4):
    """``allocation_bounds_chain`` for a batch of allocations (B, n).

    All ``2 B (n-1)`` LPs go through one work queue.  Returns
    (a_min (B, n-1), a_max (B, n-1), feasible (B, n-1)).
    """
    actions = jnp.asarray(actions)
    A = jnp.asarray(A)
    _check_allocation_inputs(A, jnp.asarray(b), actions, None, batched=True)
    Bsz, n = actions.shape
    entity = jnp.tile(jnp.arange(n - 1, dtype=jnp.int32), Bsz)
    prefixes = jnp.repeat(actions, n - 1, axis=0)
    if A.ndim == 3:
        A, b = jnp.repeat(A, n - 1, axis=0), jnp.repeat(jnp.asarray(b), n - 1, axis=0)
    maxiter = _default_maxiter(*A.shape[-2:]) if maxiter is None else maxiter
    r = _batch_lps(A, b, prefixes, entity, maxiter=jnp.int32(maxiter), slots=slots, warm_start=warm_start)
    shape = lambda v: v.reshape(Bsz, n - 1)
    return shape(r.a_min), shape(r.a_max), shape((r.status_min == 0) & (r.status_max == 0))


def _support_start(m, n, c):
    """Dual feasible basis for ``max c @ a`` on the simplex: a_p = 1 at p = argmax c.

    Minimising ``-c @ a``: lower bounds for j != p (multipliers c_p - c_j >= 0) and
    the sum row in position p.
    """
    j = jnp.arange(n, dtype=jnp.int32)
    p = jnp.argmax(c)
    return jnp.where(j == p, m + 2 * n, m + n + j)


def batch_support(A, b, C, *, maxiter=None, slots=2048):
    """``max C[k] @ a`` over ``{A a <= b, sum(a) = 1, 0 <= a <= 1}`` for every row of C.

    A: (m, n), b: (m,), C: (K, n).  Solved through the work queue from the simplex
    vertex each direction prefers.  Returns (value (K,), argmax (K, n), status (K,))
    with scipy codes (value NaN unless status is 0).
    """
    dtype = _dtype_of(A, b, C)
    A, b, C = (jnp.asarray(v, dtype) for v in (A, b, C))
    maxiter = _default_maxiter(*A.shape) if maxiter is None else maxiter
    return _batch_support(A, b, C, jnp.int32(maxiter), slots)


@partial(jax.jit, static_argnums=4)
def _batch_support(A, b, C, maxiter, slots):
    dtype = A.dtype
    m, n = A.shape
    K = C.shape[0]
    tol = _tolerances(dtype)
    G, g, E, e, bad = _allocation_problem(A, b, dtype)
    rows = _allocation_rows(G, g, E, e, jnp.zeros(n, dtype), 0)
    make_rows = lambda d: rows
    load = lambda k: C[k]
    start = lambda c, k: _start(rows, -c, _support_start(m, n, c), None, maxiter)
    st = _solve_queue(make_rows, load, start, K, slots, maxiter, tol)
    status = jnp.where(bad, 4, st.status).astype(jnp.int32)
    value = jnp.where(status == 0, jnp.sum(C * st.x, axis=1), jnp.nan)
    return value, st.x, status
