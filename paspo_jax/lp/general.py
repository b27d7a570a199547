"""``linprog``: general LPs through scipy's interface, on the dual simplex of ``paspo_jax.lp.simplex``.

``min c @ x s.t. A_ub x <= b_ub, A_eq x == b_eq, l <= x <= u`` with scipy's argument
conventions and status codes (0 optimal, 1 iteration limit, 2 infeasible, 3 unbounded,
4 numerical). Jittable and vmappable; tested against HiGHS in ``tests/test_lp.py``.

Example::

    >>> res = linprog(jnp.array([-1.0, -2.0]), A_ub=jnp.array([[1.0, 1.0]]), b_ub=jnp.array([1.0]))
    >>> int(res.status), res.x.tolist(), float(res.fun)
    (0, [0.0, 1.0], -2.0)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from paspo_jax.lp.simplex import LPResult, _dual_simplex, _is_concrete, _Rows, _tolerances, _unit_rows

def _as_bounds(bounds, n, dtype):
    """scipy's ``bounds`` -> (l, u) arrays with -inf/+inf for None.

    Accepted: None (all free); one ``(min, max)`` pair of scalars/None for all
    variables; a pair of arrays ``(l, u)`` of shape (n,) (an extension: vmappable);
    an (n, 2) array; a sequence of n ``(min, max)`` pairs.
    """
    if bounds is None:
        bounds = (None, None)

    def conv(v, default):
        if v is None:
            return jnp.full((n,), default, dtype)
        return jnp.broadcast_to(jnp.asarray(v, dtype), (n,))

    one_pair = isinstance(bounds, tuple) and len(bounds) == 2 and all(
        v is None or isinstance(v, (jax.Array, np.ndarray)) or np.ndim(v) == 0 for v in bounds
    )
    if one_pair:
        for v in bounds:
            if v is not None and np.ndim(v) > 0 and tuple(np.shape(v)) != (n,):
                raise ValueError(f"linprog: bounds arrays must have shape ({n},), got {np.shape(v)}")
        return conv(bounds[0], -jnp.inf), conv(bounds[1], jnp.inf)
    if isinstance(bounds, (jax.Array, np.ndarray)):
        if tuple(bounds.shape) != (n, 2):
            raise ValueError(f"linprog: bounds has shape {tuple(bounds.shape)}, expected ({n}, 2)")
        return jnp.asarray(bounds[:, 0], dtype), jnp.asarray(bounds[:, 1], dtype)
    bounds = list(bounds)
    if len(bounds) != n or any(len(p) != 2 for p in bounds):
        raise ValueError(f"linprog: bounds must be one (min, max) pair or {n} pairs, got {bounds!r}")
    lo = jnp.asarray([-np.inf if p[0] is None else p[0] for p in bounds], dtype)
    hi = jnp.asarray([np.inf if p[1] is None else p[1] for p in bounds], dtype)
    return lo, hi


def linprog(
    c,
    A_ub=None,
    b_ub=None,
    A_eq=None,
    b_eq=None,
    bounds=(0, None),
    *,
    maxiter: int | None = None,
    big: float | None = None,
) -> LPResult:
    """Minimise ``c @ x`` s.t. ``A_ub x <= b_ub``, ``A_eq x == b_eq``, ``l <= x <= u``.

    Follows ``scipy.optimize.linprog``'s conventions (``bounds`` is one ``(min, max)``
    pair for all variables or one pair per variable, ``None`` meaning unbounded;
    default ``(0, None)``) and status codes.  Jittable and vmappable (vmap over any
    argument; ``bounds`` may hold arrays).  Dtype follows the inputs (float64 when x64
    is enabled); float32 has looser tolerances (``paspo_jax.lp.simplex``).

    Method: the dual simplex of ``paspo_jax.lp.simplex``.  Variables without a
    finite bound on a side get an artificial bound ``|x_j| <= big`` (default 1e7,
    1e4 in float32) so that the box gives a dual feasible start; unboundedness is
    then decided exactly by a second bounded LP over recession directions
    ``min c @ d s.t. A_ub d <= 0, A_eq d = 0, d_j >= 0 (l_j finite), d_j <= 0
    (u_j finite), |d| <= 1`` (negative optimum <=> unbounded, given feasibility).
    Limitation: a problem whose every feasible point has a free variable beyond
    ``big`` is reported infeasible (2), or 4 if its optimum lies there.

    Outside ``jit`` wrong shapes and NaN inputs raise ``ValueError``; inside ``jit``
    NaN inputs give status 4.

    Returns:
      LPResult(x (n,), fun (), status () int32, nit () int32).
    """
    c = jnp.asarray(c)
    dtype = jnp.result_type(c.dtype, jnp.float32) if not jnp.issubdtype(c.dtype, jnp.floating) else c.dtype
    c = c.astype(dtype)
    if c.ndim != 1:
        raise ValueError(f"linprog: c must be 1-D (n,), got shape {c.shape}")
    n = c.shape[0]
    A_ub = jnp.zeros((0, n), dtype) if A_ub is None else jnp.asarray(A_ub, dtype)
    b_ub = jnp.zeros((0,), dtype) if b_ub is None else jnp.asarray(b_ub, dtype)
    A_eq = jnp.zeros((0, n), dtype) if A_eq is None else jnp.asarray(A_eq, dtype)
    b_eq = jnp.zeros((0,), dtype) if b_eq is None else jnp.asarray(b_eq, dtype)
    for name, A, bb in (("A_ub", A_ub, b_ub), ("A_eq", A_eq, b_eq)):
        if A.ndim != 2 or A.shape[1] != n:
            raise ValueError(f"linprog: {name} must have shape (m, {n}), got {A.shape}")
        if bb.shape != (A.shape[0],):
            raise ValueError(f"linprog: b{name[1:]} must have shape ({A.shape[0]},), got {bb.shape}")
    lo, hi = _as_bounds(bounds, n, dtype)
    if _is_concrete(c, A_ub, b_ub, A_eq, b_eq, lo, hi):
        for name, v in (("c", c), ("A_ub", A_ub), ("b_ub", b_ub), ("A_eq", A_eq), ("b_eq", b_eq)):
            if not bool(jnp.all(jnp.isfinite(v))):
                raise ValueError(f"linprog: {name} contains NaN or inf")
        if bool(jnp.any(jnp.isnan(lo)) | jnp.any(jnp.isnan(hi))):
            raise ValueError("linprog: bounds contain NaN")
    if big is None:
        big = 1e7 if dtype == jnp.float64 else 1e4
    if maxiter is None:
        maxiter = 50 * (A_ub.shape[0] + 2 * A_eq.shape[0] + 2 * n) + 100
    return _linprog(c, A_ub, b_ub, A_eq, b_eq, lo, hi, jnp.int32(maxiter), jnp.asarray(big, dtype))


@jax.jit
def _linprog(c, A_ub, b_ub, A_eq, b_eq, lo, hi, maxiter, big) -> LPResult:
    """:func:`linprog` after argument checks (jitted once per shape and dtype)."""
    dtype = c.dtype
    n = c.shape[0]
    m_ub, m_eq = A_ub.shape[0], A_eq.shape[0]
    tol = _tolerances(dtype)
    finite = lambda v: jnp.all(jnp.isfinite(v))
    bad_input = ~(finite(c) & finite(A_ub) & finite(b_ub) & finite(A_eq) & finite(b_eq))
    bad_input = bad_input | jnp.any(jnp.isnan(lo)) | jnp.any(jnp.isnan(hi))
    zap = lambda v: jnp.where(bad_input, 0.0, v)  # bad input: solve a harmless stand-in
    c_scale = jnp.maximum(jnp.max(jnp.abs(c), initial=0.0), jnp.finfo(dtype).tiny)
    cn = zap(c / c_scale)
    Gu, gu = _unit_rows(zap(A_ub), zap(b_ub))
    Ge, ge = _unit_rows(zap(A_eq), zap(b_eq))
    lo_f, hi_f = jnp.isfinite(lo) & ~bad_input, jnp.isfinite(hi) & ~bad_input
    lo_, hi_ = jnp.where(lo_f, lo, -big), jnp.where(hi_f, hi, big)
    # Dual feasible start: each variable at the bound its cost pushes it to.
    j = jnp.arange(n, dtype=jnp.int32)
    off_u, off_l = m_ub, m_ub + n
    use_lower = (cn > 0) | ((cn == 0) & (lo_f | ~hi_f))
    # The problem itself, and the LP over recession directions d: unbounded iff
    # feasible and min c @ d < 0 over {A_ub d <= 0, A_eq d = 0, d_j >= 0 (l_j
    # finite), d_j <= 0 (u_j finite), |d| <= 1}.  Both share G and E and are solved
    # as a batch of two (one compiled loop).
    rec_lower = cn > 0
    g2 = jnp.stack([gu, jnp.zeros_like(gu)])
    u2 = jnp.stack([hi_, jnp.where(hi_f, 0.0, 1.0).astype(dtype)])
    l2 = jnp.stack([lo_, jnp.where(lo_f, 0.0, -1.0).astype(dtype)])
    e2 = jnp.stack([ge, jnp.zeros_like(ge)])
    lower2 = jnp.stack([use_lower, rec_lower])

    def solve(g_, u_, l_, e_, lower):
        rows = _Rows(G=Gu, g=g_, u=u_, l=l_, E=Ge, e=e_)
        basis0 = jnp.where(lower, off_l + j, off_u + j)
        Binv0 = jnp.diag(jnp.where(lower, -1.0, 1.0).astype(dtype))
        return _dual_simplex(rows, cn, basis0, maxiter, tol, Binv0=Binv0)

    both = jax.vmap(solve)(g2, u2, l2, e2, lower2)
    main, rec = jax.tree.map(lambda a: a[0], both), jax.tree.map(lambda a: a[1], both)
    unbounded = (rec.status == 0) & (cn @ rec.x < -1e3 * tol.dual)

    # A free variable sitting on its artificial bound with the optimum there.
    k = jnp.clip(main.basis - off_u - n * (main.basis >= off_l), 0, n - 1)
    on_artificial = jnp.where(main.basis >= off_l, ~lo_f[k], ~hi_f[k]) & (main.basis >= off_u) & (main.basis < off_l + n)
    status = main.status
    status = jnp.where((status == 0) & unbounded, 3, status)
    status = jnp.where((status == 0) & jnp.any(on_artificial & (main.lam > 1e3 * tol.dual)), 4, status)
    status = jnp.where(jnp.any(lo > hi), 2, status)
    status = jnp.where(bad_input, 4, status).astype(jnp.int32)
    x = jnp.where((status == 0) | (status == 1) | (status == 4), main.x, jnp.nan)
    fun = jnp.where(status == 2, jnp.inf, jnp.where(status == 3, -jnp.inf, c @ jnp.where(jnp.isnan(x), 0.0, x)))
    fun = jnp.where(bad_input, jnp.nan, fun)
    return LPResult(x=x, fun=fun.astype(dtype), status=status, nit=main.nit)
