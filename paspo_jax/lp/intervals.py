"""PASPO's interval LPs (Winkel et al., NeurIPS 2024, Sec. 4, Eq. 3).

For entity ``i`` of an allocation ``a`` (n,), the feasible interval given the earlier entries::

    a_min_i = min a_i,   a_max_i = max a_i
    s.t.  A a <= b,  sum(a) = 1,  0 <= a <= 1,  a_j = prefix_j  (j < i)        (PASPO Eq. 3)

two LPs per entity, ``2 (n - 1)`` per action, solved by the dual simplex of
``paspo_jax.lp.simplex`` from the box basis (:func:`_box_bases`, valid for any ``A``) or a
warm start (``paspo_jax.lp.warm``). Every problem has the same shape whatever ``i`` is (fixed
entries are bound rows with free multipliers), so ``i`` may be traced.

Invariants: the interval is NaN and ``feasible`` False exactly when an LP did not end optimal
(infeasible prefix, iteration limit, NaN input); with ``vertices=True`` the two optimal
allocations are feasible completions of the prefix.

Example::

    >>> A, b = jnp.array([[1.0, 0.0, 0.0]]), jnp.array([0.5])     # a_0 <= 0.5
    >>> lo, hi, feasible = allocation_bounds(A, b, jnp.zeros(3), 0)
    >>> float(lo), float(hi), bool(feasible)
    (0.0, 0.5, True)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from paspo_jax.lp.simplex import _dtype_of, _dual_simplex, _is_concrete, _Rows, _Simplex, _tolerances, _unit_rows

class AllocationLPs(NamedTuple):
    """Both LPs of one entity, with diagnostics.

    a_min, a_max: the interval (NaN where that LP did not end optimal);
    x_min, x_max: (n,) the argmin / argmax allocations; status_min, status_max:
    scipy codes (0 optimal, 1 iteration limit, 2 infeasible prefix, 4 NaN input);
    nit: pivots of both LPs together.
    """

    a_min: jax.Array
    a_max: jax.Array
    x_min: jax.Array
    x_max: jax.Array
    status_min: jax.Array
    status_max: jax.Array
    nit: jax.Array


def _check_allocation_inputs(A, b, prefix, i=None, batched=False):
    what = "batch_allocation_bounds" if batched else "allocation_bounds"
    if A.ndim not in ((2, 3) if batched else (2,)):
        raise ValueError(f"{what}: A must be (m, n){' or (batch, m, n)' if batched else ''}, got shape {A.shape}")
    m, n = A.shape[-2:]
    if n < 2:
        raise ValueError(f"{what}: need n >= 2 entities, got A with shape {A.shape}")
    if b.shape != A.shape[:-1]:
        raise ValueError(f"{what}: b must have shape {A.shape[:-1]} to match A {A.shape}, got {b.shape}")
    want = ("batch", n) if batched else (n,)
    if prefix.ndim != len(want) or prefix.shape[-1] != n or (batched and A.ndim == 3 and A.shape[0] != prefix.shape[0]):
        raise ValueError(f"{what}: prefix/allocation must have shape {want} for A {A.shape}, got {prefix.shape}")
    if _is_concrete(A, b, prefix):
        for name, v in (("A", A), ("b", b), ("prefix", prefix)):
            if not np.all(np.isfinite(np.asarray(v))):
                raise ValueError(f"{what}: {name} contains NaN or inf")
    if i is not None and _is_concrete(i):
        iv = int(np.asarray(i))
        if not 0 <= iv < n - 1:
            raise ValueError(f"{what}: entity index i={iv} outside [0, {n - 2}] (the last entry is 1 - sum)")


def _allocation_problem(A, b, dtype):
    """Unit-norm rows of PASPO Eq. 3 shared by every prefix: (G, g, E, e, bad)."""
    A, b = jnp.asarray(A, dtype), jnp.asarray(b, dtype)
    n = A.shape[-1]
    # G depends on A alone (not on b): under vmap over right-hand sides (the rescaled prefixes
    # of ``allocation_bounds(rescale=True)``) G and every basis matrix stay unbatched.
    bad_A = ~jnp.all(jnp.isfinite(A))
    bad = bad_A | ~jnp.all(jnp.isfinite(b))
    G, _ = _unit_rows(jnp.where(bad_A, 0.0, A), b)
    _, g = _unit_rows(jnp.where(bad_A, 0.0, A), jnp.where(bad, 0.0, b))
    inv_sqrt_n = jnp.asarray(1.0 / np.sqrt(n), dtype)
    return G, g, jnp.full((1, n), inv_sqrt_n), inv_sqrt_n[None], bad


def _allocation_rows(G, g, E, e, prefix, i) -> _Rows:
    """Rows of {G a <= g, a_j = prefix_j (j < i), 0 <= a_j <= 1 (j >= i), sum a = 1}."""
    n = G.shape[-1]
    fixed = jnp.arange(n) < i
    p = jnp.where(jnp.isfinite(prefix), prefix, 0.0)
    return _Rows(G=G, g=g, u=jnp.where(fixed, p, 1.0), l=jnp.where(fixed, p, 0.0), E=E, e=e)


def _box_bases(m, n, i):
    """Dual feasible starting bases (basis_min, basis_max) for ``min/max a_i``.

    min a_i: a_i..a_{n-2} at their lower bound 0 and a_{n-1} takes the rest (the
    sum row in position n-1): multipliers (1 for a_i's bound, 0 otherwise).
    max a_i: a_{i+1}..a_{n-1} at 0 and a_i takes the rest (sum row in position i):
    multipliers 1.  The fixed entries a_j (j < i) sit on their (free) bound rows.
    They do not depend on A, so they work for any constraints.
    """
    j = jnp.arange(n, dtype=jnp.int32)
    fixed = j < i
    row_fix, row_lo, row_sum = m + j, m + n + j, m + 2 * n
    basis_min = jnp.where(fixed, row_fix, jnp.where(j == n - 1, row_sum, row_lo))
    basis_max = jnp.where(fixed, row_fix, jnp.where(j == i, row_sum, row_lo))
    return basis_min, basis_max


def _default_maxiter(m, n):
    return 4 * (m + 2 * n) + 50


def _interval(st_min: _Simplex, st_max: _Simplex, i, bad):
    status_min = jnp.where(bad, 4, st_min.status).astype(jnp.int32)
    status_max = jnp.where(bad, 4, st_max.status).astype(jnp.int32)
    take = lambda x: jnp.take_along_axis(x, jnp.broadcast_to(jnp.asarray(i)[..., None], x.shape[:-1] + (1,)), -1)[..., 0]
    a_min = jnp.where(status_min == 0, take(st_min.x), jnp.nan)
    a_max = jnp.where(status_max == 0, take(st_max.x), jnp.nan)
    return AllocationLPs(a_min, a_max, st_min.x, st_max.x, status_min, status_max, st_min.nit + st_max.nit)


def allocation_lps(A, b, prefix, i, *, maxiter: int | None = None, warm: "WarmStart | None" = None,
                   rescale: bool = False) -> AllocationLPs:
    """Both LPs of PASPO Eq. 3 for entity ``i``, with diagnostics (:class:`AllocationLPs`).

    A: (m, n), b: (m,), prefix: (n,) (entries ``>= i`` ignored), i: int scalar
    (may be traced).  The fixed entries ``a_j = prefix_j`` are bound rows with free
    multipliers, so every problem has the same shape whatever ``i`` is.  Each LP
    starts from the box basis (:func:`_box_bases`), or from ``warm`` (a
    :class:`WarmStart` of the same ``A``, from :func:`chain_warm_start`).  ``rescale``:
    solve in the coordinates of the remaining mass (:func:`allocation_bounds`); the
    interval and the vertices ``x_min``, ``x_max`` are returned in allocation
    coordinates either way.  Vmappable over all arguments.
    """
    if rescale:
        return _allocation_lps_rescaled(A, b, prefix, i, maxiter, warm)
    dtype = _dtype_of(A, b, prefix)
    A, b, prefix = (jnp.asarray(v, dtype) for v in (A, b, prefix))
    _check_allocation_inputs(A, b, prefix, i)
    m, n = A.shape
    maxiter = _default_maxiter(m, n) if maxiter is None else maxiter
    if warm is not None:
        warm = warm._check(m, n, dtype)
    return _allocation_lps(A, b, prefix, jnp.asarray(i, jnp.int32), jnp.int32(maxiter), warm)


@jax.jit
def _allocation_lps(A, b, prefix, i, maxiter, warm=None) -> AllocationLPs:
    dtype = A.dtype
    m, n = A.shape
    tol = _tolerances(dtype)
    G, g, E, e, bad = _allocation_problem(A, b, dtype)
    bad = bad | ~jnp.all(jnp.isfinite(jnp.where(jnp.arange(n) < i, prefix, 0.0)))
    rows = _allocation_rows(G, g, E, e, prefix, i)
    e_i = (jnp.arange(n) == i).astype(dtype)
    if warm is None:
        basis_min, basis_max = _box_bases(m, n, i)
        binv = None
    else:
        basis_min, basis_max = warm.basis_min[i], warm.basis_max[i]
        # Without stored inverses each LP inverts its starting basis (rows of G and of the
        # bounds: independent of the prefix, so unbatched under vmap over prefixes).
        binv = None if warm.binv_min is None else jnp.stack([warm.binv_min[i], warm.binv_max[i]])
    # min and max as a batch of two (one compiled loop).
    st = jax.vmap(lambda c, basis0, b0: _dual_simplex(rows, c, basis0, maxiter, tol, b0))(
        jnp.stack([e_i, -e_i]), jnp.stack([basis_min, basis_max]), binv
    )
    st_min, st_max = jax.tree.map(lambda a: a[0], st), jax.tree.map(lambda a: a[1], st)
    return _interval(st_min, st_max, i, bad)


def allocation_bounds(A, b, prefix, i, *, maxiter: int | None = None, rescale: bool = False,
                      warm: "WarmStart | None" = None, vertices: bool = False):
    """Feasible interval ``[min a_i, max a_i]`` of entity ``i`` given ``a_j = prefix_j`` (j < i)
    on ``{A a <= b, sum(a) = 1, 0 <= a <= 1}`` (PASPO Eq. 3).

    Args:
      A: (m, n); b: (m,); prefix: (n,) (entries ``j >= i`` ignored); i: int in ``[0, n-2]``
        (may be traced). Vmappable over all four.
      rescale: solve in the coordinates of the remaining mass ``r = 1 - sum(prefix_<i)``
        (``a = prefix_<i + r y``, ``y`` on the simplex, ``A y <= (b - A prefix_<i) / r``): the
        same interval, with float32 tolerances relative to ``r`` (``benchmarks/RESULTS_lp.md``,
        "Notes"); ``r <= 1e-7`` gives ``[0, 0]``.
      warm: a ``WarmStart`` of this ``A`` (``chain_warm_start``): same answers, fewer pivots.
      vertices: also return the two optimal allocations ``x_min, x_max`` (n,) (prefix fixed,
        ``a_i`` at either end): every convex combination is a feasible completion.
    Returns:
      ``(a_min, a_max, feasible[, x_min, x_max])``; ``feasible`` is False (and the bounds NaN)
      when the prefix has no completion or the solver failed (NaN input, iteration limit).
    """
    r = allocation_lps(A, b, prefix, i, maxiter=maxiter, warm=warm, rescale=rescale)
    out = (r.a_min, r.a_max, (r.status_min == 0) & (r.status_max == 0))
    return out + (r.x_min, r.x_max) if vertices else out


def _allocation_lps_rescaled(A, b, prefix, i, maxiter, warm=None) -> AllocationLPs:
    dtype = _dtype_of(A, b, prefix)
    A, b, prefix = (jnp.asarray(v, dtype) for v in (A, b, prefix))
    n = A.shape[-1]
    fixed = jnp.where(jnp.arange(n) < i, prefix, 0.0)
    mass = 1.0 - jnp.sum(fixed)
    empty = mass <= 1e-7
    scale = jnp.where(empty, 1.0, mass)
    lps = allocation_lps(A, (b - A @ fixed) / scale, jnp.zeros_like(prefix), i, maxiter=maxiter, warm=warm)
    to_a = lambda y: jnp.where(empty, fixed, fixed + scale * y)
    ok = lambda status: jnp.where(empty, 0, status).astype(status.dtype)
    return AllocationLPs(
        a_min=jnp.where(empty, 0.0, scale * lps.a_min), a_max=jnp.where(empty, 0.0, scale * lps.a_max),
        x_min=to_a(lps.x_min), x_max=to_a(lps.x_max), status_min=ok(lps.status_min), status_max=ok(lps.status_max),
        nit=lps.nit)


def allocation_bounds_chain(A, b, a, *, maxiter: int | None = None):
    """All ``n - 1`` intervals of one allocation ``a`` (n,) at once.

    Entry ``i`` is ``allocation_bounds(A, b, a, i)``: the interval of ``a_i`` given
    ``a_0..a_{i-1}`` (the log-probability of a stored action needs all of them).

    Returns:
      (a_min (n-1,), a_max (n-1,), feasible (n-1,) bool).
    """
    n = jnp.shape(A)[-1]
    return jax.vmap(lambda i: allocation_bounds(A, b, a, i, maxiter=maxiter))(jnp.arange(n - 1))
