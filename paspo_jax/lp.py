"""Exact, batched linear programming in pure JAX, and PASPO's allocation bounds.

PASPO (Sec. 4, "Polytope Action Space Policy Optimization") samples an allocation
``a`` on a polytope entity by entity: for entity ``i`` it needs the feasible interval

    a_min_i = min a_i,   a_max_i = max a_i
    s.t.  A a <= b,  sum(a) = 1,  0 <= a <= 1,  a_j = prefix_j  (j < i)        (PASPO Eq. 3)

two LPs per entity, ``2 (n - 1)`` per action.  These LPs have few variables (``n``
entities) and many rows (611 for synth-7), so the solver here works in the
``n``-dimensional *inequality form*: a basis is a set of ``n`` active constraint rows,
an iteration costs one pass over the rows (``O(m n)``) plus an ``O(n^2)`` rank-one
update of the ``n x n`` basis inverse, never an ``(m + n)``-column tableau.

The method is the dual simplex (Lemke 1954; see Nocedal & Wright, *Numerical
Optimization*, 2nd ed., Sec. 13.6) on ``min c^T x s.t. W x <= h`` with the KKT
condition ``c + W_B^T lam = 0, lam >= 0``:

1. start from a *dual feasible* vertex (``lam >= 0``); for box-bounded variables the
   box itself gives one (lower bound where ``c_j > 0``, upper bound where ``c_j < 0``);
2. pick the row of ``W x <= h`` violated most (rows are scaled to unit norm, so this
   is the farthest hyperplane); if none, the vertex is optimal;
3. the row enters the basis; the leaving row comes from the dual ratio test
   ``min lam_j / u_j`` over ``u = B^{-T} w_r > 0`` (Harris's two-pass version for
   stability); no candidate means the dual is unbounded, i.e. the primal is
   infeasible (Farkas).

Equality rows are stored as a pair ``(+w, -w)`` whose multiplier is free: once in
the basis they never leave.  Answers are vertices, so they are exact up to rounding
(no first-order tolerance): at the optimal basis the inverse is refined by one
Newton-Schulz step ``B^-1 <- B^-1 (2 I - B B^-1)`` (matrix products, cheaper under vmap than a
batched LU), the vertex recomputed with one step of iterative refinement and priced
again, pivoting on if a row is now violated (the rank-one-updated inverse drifts: on
PASPO-synth-50 in float32 its "optimal" vertices violated rows by up to 1e-5 without this
step); the returned ``x`` is that refined vertex of the final basis.

Basis inverses and vertex solves use ``ppo_jax.linalg`` (pure-JAX LU with partial
pivoting), never ``jnp.linalg``: jaxlib 0.10.x's batched CPU LAPACK kernels deadlock when
several run at once (``ppo_jax/linalg.py``).

Under ``jax.vmap`` a ``lax.while_loop`` runs until the slowest problem in the batch
has finished (finished ones are masked); the dual simplex from the box start needs
few iterations (about the number of general rows in the final basis, i.e. ``<= n``
plus degenerate pivots), see ``benchmarks/lp_bounds.py``.

Precision: float64 (``jax.enable_x64``) gives vertex-exact answers (rows satisfied to
~1e-12 after row scaling).  float32 works with looser tolerances (primal feasibility
1e-6 on unit-norm rows, objective typically within 1e-4 relative); use it for speed
only where that slack is acceptable.  (With 1e-5, PASPO-synth-20's interval bounds were off
by up to 2e-4 and 29% of the policy's actions violated ``A a <= b`` by more than 1e-6;
with 1e-6, 0.4%; with 3e-7 noise starts to make feasible prefixes look infeasible.)
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppo_jax import linalg

__all__ = [
    "LPResult",
    "linprog",
    "allocation_bounds",
    "allocation_bounds_chain",
    "allocation_lps",
    "AllocationLPs",
    "batch_allocation_bounds",
    "batch_allocation_bounds_chain",
    "batch_allocation_lps",
    "STATUS_MESSAGES",
    "WarmStart",
    "chain_warm_start",
]

# scipy.optimize.linprog's status codes.
STATUS_MESSAGES = {
    0: "Optimization terminated successfully.",
    1: "Iteration limit reached.",
    2: "Problem appears to be infeasible.",
    3: "Problem appears to be unbounded.",
    4: "Numerical difficulties encountered (NaN/inf input, or a free variable left the artificial box).",
}
_RUNNING = -1


class LPResult(NamedTuple):
    """Result pytree of :func:`linprog` (scipy's field names and status codes).

    x: (n,) solution (NaN unless status is 0, 1 or 4); fun: c @ x (+inf when
    infeasible, -inf when unbounded); status: int32 scipy code (0 optimal,
    1 iteration limit, 2 infeasible, 3 unbounded, 4 numerical); nit: int32 simplex
    iterations.
    """

    x: jax.Array
    fun: jax.Array
    status: jax.Array
    nit: jax.Array


class _Tol(NamedTuple):
    primal: float  # max violation of a unit-norm row accepted as feasible
    dual: float  # Harris's bound on a negative multiplier (c scaled to max |c| = 1)
    pivot: float  # smallest |u_p| accepted as a pivot


def _tolerances(dtype) -> _Tol:
    if jnp.dtype(dtype) == jnp.float64:
        return _Tol(primal=1e-11, dual=1e-12, pivot=1e-9)
    return _Tol(primal=1e-6, dual=1e-6, pivot=1e-5)


class _Rows(NamedTuple):
    """The constraint rows of one LP, ``W x <= h``, in one index space.

    All rows have unit norm (the caller scales ``G`` and ``E``), so a violation is
    a distance and one tolerance fits all rows.  Index ranges (q = number of
    equalities):

    ============================  ==================  =====================
    ``[0, m)``                    ``G x <= g``        general inequalities
    ``[m, m+n)``                  ``x_j <= u_j``      upper bounds
    ``[m+n, m+2n)``               ``-x_j <= -l_j``    lower bounds
    ``[m+2n, m+2n+q)``            ``E x <= e``        equalities, first half
    ``[m+2n+q, m+2n+2q)``         ``-E x <= -e``      equalities, second half
    ============================  ==================  =====================

    Both halves of an equality, and both bounds of a fixed variable (``l_j == u_j``),
    have a free multiplier: once in the basis they never leave.  ``G`` and ``g``
    are typically shared by a whole batch (not vmapped), so ``G x`` for the batch
    is one matrix product.
    """

    G: jax.Array  # (m, n)
    g: jax.Array  # (m,)
    u: jax.Array  # (n,)
    l: jax.Array  # (n,)
    E: jax.Array  # (q, n)
    e: jax.Array  # (q,)

    @property
    def sizes(self):
        return self.G.shape[0], self.G.shape[1], self.E.shape[0]

    def most_violated(self, x):
        """(r, viol_r): the row with the largest ``w_r x - h_r`` (ties: lowest index).

        For few variables the general rows' violations are formed as a sum of ``n``
        broadcast products, which XLA fuses into the max/argmin reductions (the
        ``(m,)`` vector is never written to memory); a matrix product otherwise.
        """
        m, n, q = self.sizes
        Ex = self.E @ x - self.e
        small = jnp.concatenate([x - self.u, self.l - x, Ex, -Ex])
        r_small = jnp.argmax(small)
        v_small = small[r_small]
        if not m:
            return (r_small + m).astype(jnp.int32), v_small
        if n <= 16:
            vG = sum(x[j] * self.G[:, j] for j in range(n)) - self.g
        else:
            vG = self.G @ x - self.g
        v_G = jnp.max(vG)
        r_G = jnp.min(jnp.where(vG >= v_G, jnp.arange(m), m))
        take_G = v_G >= v_small
        return jnp.where(take_G, r_G, r_small + m).astype(jnp.int32), jnp.where(take_G, v_G, v_small)

    def row(self, r):
        """(w (n,), h_r, free_r, partner_r) of row ``r`` (a traced int)."""
        m, n, q = self.sizes
        dtype = self.u.dtype
        eye = jnp.eye(n, dtype=dtype)
        W = jnp.concatenate([self.G, eye, -eye, self.E, -self.E])  # shared by a batch
        kind = (r >= m).astype(jnp.int32) + (r >= m + n) + (r >= m + 2 * n) + (r >= m + 2 * n + q)
        j = jnp.clip(r - m - n * (kind == 2), 0, n - 1)  # variable of a bound row
        k = jnp.clip(r - m - 2 * n - q * (kind == 4), 0, max(q - 1, 0))  # equality of an equality row
        h_parts = [
            self.g[jnp.clip(r, 0, m - 1)] if m else jnp.zeros((), dtype),
            self.u[j],
            -self.l[j],
            self.e[k] if q else jnp.zeros((), dtype),
            -self.e[k] if q else jnp.zeros((), dtype),
        ]
        hr = jnp.select([kind == t for t in range(5)], h_parts)
        free = (kind >= 3) | (((kind == 1) | (kind == 2)) & (self.l[j] == self.u[j]))
        partner = jnp.select([kind == 1, kind == 2, kind == 3, kind == 4], [r + n, r - n, r + q, r - q], r)
        return W[r], hr, free, partner

    def basis_rows(self, basis):
        """(B (n, n), h_B (n,), free (n,) bool) of the rows in ``basis``."""
        w, hr, free, _ = jax.vmap(self.row)(basis)
        return w, hr, free


class _Simplex(NamedTuple):
    """Dual simplex state of one LP."""

    basis: jax.Array  # (n,) int32 indices of the basis rows
    hB: jax.Array  # (n,) their right-hand sides
    freeB: jax.Array  # (n,) bool, their multipliers are free (equalities)
    Binv: jax.Array  # (n, n) B^{-1}, B = the basis rows
    x: jax.Array  # (n,) the vertex B^{-1} h_B
    lam: jax.Array  # (n,) multipliers of the basis rows (c + B^T lam = 0)
    status: jax.Array  # int32: _RUNNING, then 0 optimal, 1 iteration limit, 2 infeasible
    nit: jax.Array  # int32 pivots so far


def _solve_basis(Binv, B, hB):
    """The vertex ``B^{-1} h_B`` with one step of iterative refinement."""
    x = Binv @ hB
    return x + Binv @ (hB - B @ x)


def _start(rows: _Rows, c, basis0, Binv0=None, maxiter=1) -> _Simplex:
    """State at a dual feasible basis ``basis0`` (``-B^{-T} c >= 0`` on non-free rows)."""
    basis0 = basis0.astype(jnp.int32)
    B, hB, freeB = rows.basis_rows(basis0)
    Binv = linalg.inv(B) if Binv0 is None else Binv0
    return _Simplex(
        basis=basis0, hB=hB, freeB=freeB, Binv=Binv, x=_solve_basis(Binv, B, hB), lam=-(Binv.T @ c),
        status=jnp.where(maxiter <= 0, 1, _RUNNING).astype(jnp.int32), nit=jnp.int32(0),
    )


def _pivot(rows: _Rows, s: _Simplex, maxiter, tol: _Tol) -> _Simplex:
    """One dual simplex iteration; a finished state is returned unchanged."""
    dtype = s.x.dtype
    inf = jnp.asarray(jnp.inf, dtype)
    # Pricing: the most violated (unit-norm) row enters.
    r, viol = rows.most_violated(s.x)
    w, hr, free_r, partner = rows.row(r)
    # Rounding in w.x - h is ~eps (|x| + |h_r|), so the tolerance scales with it.  A
    # basic row (or the other half of a basic equality) can look violated only
    # through rounding: then we are done as well.
    optimal = (viol <= tol.primal * (1.0 + jnp.max(jnp.abs(s.x)) + jnp.abs(hr))) | jnp.any(
        (s.basis == r) | (s.basis == partner)
    )
    # Dual ratio test (Harris's two passes): the leaving row keeps lam >= 0.
    u = s.Binv.T @ w  # w = B^T u
    cand = (~s.freeB) & (u > tol.pivot)
    lam_pos = jnp.maximum(s.lam, 0.0)
    t_max = jnp.min(jnp.where(cand, (lam_pos + tol.dual) / u, inf))
    ratio = jnp.where(cand, lam_pos / u, inf)
    p = jnp.argmax(jnp.where(cand & (ratio <= t_max), u, -inf))
    infeasible = ~jnp.any(cand)  # Farkas: the dual is unbounded along the new row
    t = ratio[p]
    # Basis change: row p of B becomes w (Sherman-Morrison on B^{-1}); the vertex
    # moves along column p of B^{-1} until row r is tight.
    Binv = s.Binv - jnp.outer(s.Binv[:, p] / u[p], u.at[p].add(-1.0))
    hB = s.hB.at[p].set(hr)
    new = _Simplex(
        basis=s.basis.at[p].set(r), hB=hB, freeB=s.freeB.at[p].set(free_r), Binv=Binv,
        x=Binv @ hB, lam=(s.lam - t * u).at[p].set(t), status=s.status, nit=s.nit + 1,
    )
    running = s.status == _RUNNING
    moved = running & ~optimal & ~infeasible
    status = jnp.where(optimal, 0, jnp.where(infeasible, 2, jnp.where(new.nit >= maxiter, 1, _RUNNING)))
    out = jax.tree.map(lambda a, b: jnp.where(moved, a, b), new, s)
    return out._replace(status=jnp.where(running, status, s.status).astype(jnp.int32))


def _vertex(rows: _Rows, basis, status, x):
    """The answer: the vertex of an optimal basis from a fresh LU factorisation (``linalg.solve``)."""
    B, hB, _ = rows.basis_rows(basis)
    return jnp.where(status == 0, linalg.solve(B, hB), x)


def _dual_simplex(rows: _Rows, c, basis0, maxiter, tol: _Tol, Binv0=None, refine: bool = True) -> _Simplex:
    """Dual simplex on ``min c^T x s.t. W x <= h`` (``rows``) from a dual feasible basis.

    c: (n,); basis0: (n,) int32 row indices whose multipliers ``-B^{-T} c`` are
    >= 0 on non-free rows; Binv0: B^{-1} if known; refine: refine the inverse at the
    optimal basis, re-price its vertex and go on if needed (module docstring; False: the
    vertex of the first optimal basis, solved by LU).  Vmappable (a
    vmapped while loop runs until the slowest problem is done; see :func:`_solve_queue`).
    Status on exit: 0 optimal, 1 iteration limit, 2 infeasible.
    """
    s0 = _start(rows, c, basis0, Binv0, maxiter)
    loop = lambda s: jax.lax.while_loop(lambda s: s.status == _RUNNING, lambda s: _pivot(rows, s, maxiter, tol), s)
    out = loop(s0)
    if refine:
        # Refine the inverse at the optimal basis and go on pivoting from the refined
        # vertex: the rank-one-updated inverse drifts, and its vertex can look feasible
        # where the LU-solved one violates a row (float32, long chains: PASPO-synth-50's
        # vertices violated rows by 1e-5 without this). One pricing pass when nothing is
        # violated.
        B = rows.basis_rows(out.basis)[0]
        eye = jnp.eye(B.shape[0], dtype=B.dtype)
        Binv = out.Binv @ (2.0 * eye - B @ out.Binv)  # a Newton-Schulz step (matmuls, not a batched LU)
        fresh = _start(rows, c, out.basis, Binv, maxiter - out.nit)
        out = loop(fresh._replace(status=jnp.where(out.status == 0, fresh.status, out.status), nit=out.nit + fresh.nit))
        B, hB, _ = rows.basis_rows(out.basis)
        return out._replace(x=jnp.where(out.status == 0, _solve_basis(out.Binv, B, hB), out.x))
    return out._replace(x=_vertex(rows, out.basis, out.status, out.x))


class _Done(NamedTuple):
    """What the work queue keeps of a finished LP."""

    basis: jax.Array
    x: jax.Array
    lam: jax.Array
    status: jax.Array
    nit: jax.Array


def _solve_queue(make_rows, load, start, num, slots, maxiter, tol: _Tol) -> _Done:
    """Solve ``num`` LPs with ``slots`` of them in flight at a time (a work queue).

    A vmapped ``while_loop`` costs (batch size) x (pivots of the slowest LP).  Here
    a batch of ``slots`` LPs is iterated and each LP that finishes hands its slot to
    the next waiting one, so the cost is about (total pivots) plus one slowest LP:
    pivot counts vary a lot (on the PASPO polytopes the maximum is several times
    the mean).

    make_rows(data) -> _Rows builds one LP's rows from its per-LP data (shared
    arrays come from the closure so that they are not copied per slot);
    load(k) -> data loads LP ``k`` (a traced int) and start(data, k) -> _Simplex
    gives its starting state; all three are vmapped over slots.  Returns what is kept of every LP (:class:`_Done`, stacked), with the
    vertex of optimal bases recomputed by LU.
    """
    S = int(min(slots, num))
    slot_k = jnp.arange(S, dtype=jnp.int32)
    load_start = lambda k: (load(k), start(load(k), k))
    data, st = jax.vmap(load_start)(slot_k)
    keep = lambda s: _Done(s.basis, s.x, s.lam, s.status, s.nit)
    out = jax.tree.map(lambda a: jnp.zeros((num,) + a.shape[1:], a.dtype), keep(st))
    pivot = jax.vmap(lambda d, s: _pivot(make_rows(d), s, maxiter, tol))

    def body(carry):
        slot_k, data, st, out, nxt = carry
        st = pivot(data, st)
        done = (st.status != _RUNNING) & (slot_k < num)
        # Finished LPs leave their result in `out` ...
        where = jnp.where(done, slot_k, num)
        out = jax.tree.map(lambda o, a: o.at[where].set(a, mode="drop"), out, keep(st))
        # ... and their slots take the next LPs of the queue.
        new_k = jnp.where(done, nxt + jnp.cumsum(done, dtype=jnp.int32) - 1, slot_k)
        new_k = jnp.where(done & (new_k >= num), num, new_k).astype(jnp.int32)
        ld, ls = jax.vmap(load_start)(jnp.minimum(new_k, num - 1))
        ls = ls._replace(status=jnp.where(new_k < num, ls.status, 0).astype(jnp.int32))
        pick = lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
        data, st = jax.tree.map(pick, (ld, ls), (data, st))
        return new_k, data, st, out, (nxt + jnp.sum(done)).astype(jnp.int32)

    carry = (slot_k, data, st, out, jnp.int32(S))
    out = jax.lax.while_loop(lambda cr: jnp.any(cr[0] < num), body, carry)[3]
    # Exact vertices of the optimal bases, once for all LPs.
    data_all = jax.vmap(load)(jnp.arange(num, dtype=jnp.int32))
    x = jax.vmap(lambda d, b, s, x: _vertex(make_rows(d), b, s, x))(data_all, out.basis, out.status, out.x)
    return out._replace(x=x)


# ----------------------------------------------------------------------------------
# scipy-compatible linprog
# ----------------------------------------------------------------------------------


def _is_concrete(*xs) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(xs))


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


def _unit_rows(A, b):
    norm = jnp.linalg.norm(A, axis=-1)
    scale = jnp.where(norm > 0, norm, 1.0)
    return A / scale[..., None], b / scale


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
    is enabled); see the module docstring for float32's looser tolerance.

    Method: dual simplex in inequality form (module docstring).  Variables without a
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


# ----------------------------------------------------------------------------------
# PASPO allocation bounds
# ----------------------------------------------------------------------------------


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
    bad = ~(jnp.all(jnp.isfinite(A)) & jnp.all(jnp.isfinite(b)))
    G, g = _unit_rows(jnp.where(bad, 0.0, A), jnp.where(bad, 0.0, b))
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


def _dtype_of(*xs):
    return jnp.result_type(*[jnp.asarray(x).dtype for x in xs], jnp.float32)


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
        binv = jnp.stack([warm.binv_min[i], warm.binv_max[i]])
    # min and max as a batch of two (one compiled loop).
    st = jax.vmap(lambda c, basis0, b0: _dual_simplex(rows, c, basis0, maxiter, tol, b0))(
        jnp.stack([e_i, -e_i]), jnp.stack([basis_min, basis_max]), binv
    )
    st_min, st_max = jax.tree.map(lambda a: a[0], st), jax.tree.map(lambda a: a[1], st)
    return _interval(st_min, st_max, i, bad)


def allocation_bounds(A, b, prefix, i, *, maxiter: int | None = None, rescale: bool = False,
                      warm: "WarmStart | None" = None, vertices: bool = False):
    """Feasible interval of entity ``i`` given the earlier entries (PASPO Eq. 3).

    ``a_min = min a_i`` and ``a_max = max a_i`` over
    ``{a : A a <= b, sum(a) = 1, 0 <= a <= 1, a_j = prefix_j for j < i}``.

    Args:
      A: (m, n) constraint rows; b: (m,); prefix: (n,) allocation whose entries
        ``j < i`` are fixed (the rest are ignored); i: integer in ``[0, n-2]``
        (may be traced, e.g. inside ``lax.scan`` over entities).
    Returns:
      (a_min, a_max, feasible): scalars; ``feasible`` is False when the prefix
      admits no completion (or the solver failed: NaN input, iteration limit), and
      then ``a_min`` and ``a_max`` are NaN.
    Vmappable over any of ``A``, ``b``, ``prefix``, ``i``.  For a batch of prefixes
    :func:`batch_allocation_bounds` is faster (work queue and warm starts).

    ``rescale=True`` solves the same LP in the coordinates of the remaining mass
    ``r = 1 - sum(prefix_<i)``: ``a = prefix_<i + r y`` with ``y`` on the simplex,
    ``A y <= (b - A prefix_<i) / r``, and returns ``r * (y_min, y_max)``. Same interval in
    exact arithmetic; in float32 the simplex's tolerances (absolute, ~1e-6) become
    relative to ``r``, which keeps late entries of long chains exact when little mass is
    left (PASPO-synth-20 / -50 with the plain form: bounds off by up to 4e-4, prefixes
    found infeasible, actions violating ``A a <= b``; see ``tests/test_lp.py``). With
    ``r <= 1e-7`` the interval is ``[0, 0]``.

    ``warm``: a :class:`WarmStart` for this ``A`` (:func:`chain_warm_start`): both LPs
    start from optimal bases of a reference allocation instead of the box basis (same
    answers; far fewer pivots for prefixes near the reference, see that function).

    ``vertices=True`` also returns the two optimal allocations ``(x_min, x_max)``, each (n,):
    feasible points with the prefix fixed and ``a_i`` at ``a_min`` / ``a_max``, so every
    convex combination of them is a feasible completion of the prefix (PASPO's policy uses
    this to stay feasible where the LPs of later entries fail numerically).
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


class WarmStart(NamedTuple):
    """Starting bases for the chain of PASPO Eq. 3 LPs, one per entity and sense.

    basis_min / basis_max: (n-1, n) int32 row indices (the ``_Rows`` index space of
    :func:`allocation_lps`); binv_min / binv_max: (n-1, n, n) their inverses.  Built by
    :func:`chain_warm_start`; pass as ``warm=`` to :func:`allocation_bounds`.
    """

    basis_min: jax.Array
    binv_min: jax.Array
    basis_max: jax.Array
    binv_max: jax.Array

    def _check(self, m, n, dtype):
        want = {"basis_min": (n - 1, n), "basis_max": (n - 1, n), "binv_min": (n - 1, n, n), "binv_max": (n - 1, n, n)}
        for name, shape in want.items():
            got = tuple(jnp.shape(getattr(self, name)))
            if got != shape:
                raise ValueError(f"WarmStart.{name} has shape {got}, expected {shape} for A with {m} rows and {n} entities")
        return WarmStart(jnp.asarray(self.basis_min, jnp.int32), jnp.asarray(self.binv_min, dtype),
                         jnp.asarray(self.basis_max, jnp.int32), jnp.asarray(self.binv_max, dtype))


def chain_warm_start(A, b, reference, *, maxiter: int | None = None, max_cond: float = 1e6) -> WarmStart:
    """Warm starts for every entity's interval LPs from one reference allocation (numpy side).

    For each entity ``i`` both LPs of PASPO Eq. 3 are solved once at the reference's own
    prefix ``reference_<i`` from the box basis; their optimal bases (and inverses,
    computed in float64) become the starting bases of every later solve with the same
    ``A``.  Why this is valid: a basis is *dual* feasible iff ``-B^{-T} c >= 0`` on its
    non-free rows, which depends on the rows and on ``c = +-e_i`` only, never on the
    right-hand sides; a new prefix (or the remaining-mass rescaling of
    ``allocation_bounds(..., rescale=True)``) only moves right-hand sides, so the dual
    simplex may start there and ends at the same optimum.  Prefixes near the reference
    need few pivots (the active sets mostly agree): on PASPO-synth-50 / -100 the mean
    pivot count per LP drops several fold (``benchmarks/RESULTS_paspo.md``).

    A: (m, n), b: (m,) static constraints; reference: (n,) a point of the polytope
    (e.g. its Chebyshev centre).  A basis whose condition number exceeds ``max_cond``
    (or whose LP failed numerically) is replaced by the box basis for that entity.
    Returns a :class:`WarmStart` in ``A``'s floating dtype (float32 unless x64).
    """
    dtype = _dtype_of(A, b, reference)
    A, b, reference = (jnp.asarray(v, dtype) for v in (A, b, reference))
    _check_allocation_inputs(A, b, reference)
    m, n = A.shape
    maxiter = _default_maxiter(m, n) if maxiter is None else maxiter
    bases, box, B, B_box = jax.tree.map(np.asarray, _chain_reference_bases(A, b, reference, jnp.int32(maxiter)))
    B, B_box = B.astype(np.float64), B_box.astype(np.float64)
    # Ill-conditioned (or non-finite) reference bases fall back to the box basis.
    ok = np.all(np.isfinite(B), axis=(-2, -1))
    ok[ok] = np.linalg.cond(B[ok]) <= max_cond
    out_b = np.where(ok[..., None], bases, box)
    out_inv = np.linalg.inv(np.where(ok[..., None, None], B, B_box))
    cast = lambda x: jnp.asarray(x, dtype)
    return WarmStart(jnp.asarray(out_b[:, 0], jnp.int32), cast(out_inv[:, 0]),
                     jnp.asarray(out_b[:, 1], jnp.int32), cast(out_inv[:, 1]))


@jax.jit
def _chain_reference_bases(A, b, reference, maxiter):
    """Final bases (n-1, 2, n) of min/max a_i at ``reference_<i`` (box start), the box bases, and
    the rows of both (n-1, 2, n, n)."""
    dtype = A.dtype
    m, n = A.shape
    tol = _tolerances(dtype)
    G, g, E, e, _ = _allocation_problem(A, b, dtype)

    def one(i):
        rows = _allocation_rows(G, g, E, e, reference, i)
        e_i = (jnp.arange(n) == i).astype(dtype)
        box = jnp.stack(_box_bases(m, n, i))
        st = jax.vmap(lambda c, basis0: _dual_simplex(rows, c, basis0, maxiter, tol))(jnp.stack([e_i, -e_i]), box)
        rows_of = jax.vmap(lambda basis: rows.basis_rows(basis)[0])
        return st.basis, box, rows_of(st.basis), rows_of(box)

    return jax.vmap(one)(jnp.arange(n - 1))


# ----------------------------------------------------------------------------------
# Batched allocation bounds: work queue + warm starts
# ----------------------------------------------------------------------------------


def _reference_bases(G, g, E, e, prefix_ref, i, maxiter, tol):
    """Optimal bases of min/max a_i at a reference prefix, and their inverses.

    Dual feasibility of a basis depends only on its rows and on c = +-e_i, not on
    the prefix (which only moves right-hand sides), so these bases are valid dual
    simplex starts for every prefix of the batch with the same ``i`` and the same
    constraints; prefixes near the reference need few pivots.
    """
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
    """:func:`allocation_lps` for a batch of prefixes (B, n) at one entity ``i``."""
    prefixes = jnp.asarray(prefixes)
    _check_allocation_inputs(jnp.asarray(A), jnp.asarray(b), prefixes, i, batched=True)
    entity = jnp.broadcast_to(jnp.asarray(i, jnp.int32), prefixes.shape[:1])
    maxiter = _default_maxiter(*jnp.shape(A)[-2:]) if maxiter is None else maxiter
    return _batch_lps(A, b, prefixes, entity, maxiter=jnp.int32(maxiter), slots=slots, warm_start=warm_start)


def batch_allocation_bounds(A, b, prefixes, i, *, maxiter=None, slots=2048, warm_start: int = 4):
    """:func:`allocation_bounds` for a batch of prefixes, solved through a work queue.

    Args:
      A: (m, n) shared constraints, or (B, m, n) one set per prefix; b: (m,) or
        (B, m); prefixes: (B, n); i: entity index (int, may be traced).
      slots: LPs in flight at once (default 2048).
      warm_start: number of reference prefixes (the batch mean and members spread
        over the batch); every LP starts from the optimal basis of the nearest
        one (shared A only; 0 = every LP from the box basis).

    The PASPO policy and its de-bias fit use ``jax.vmap`` of :func:`allocation_bounds` with
    a :func:`chain_warm_start` instead. (This program used to deadlock under jaxlib 0.10.2 on
    CPU for PASPO-synth-50 / -100: its batched ``jnp.linalg.inv`` / ``solve`` LAPACK kernels
    waited on the thread pool they ran on; it now uses ``ppo_jax.linalg``, see
    ``benchmarks/RESULTS_lp.md``, "No hang".)
    Returns:
      (a_min (B,), a_max (B,), feasible (B,)) as in :func:`allocation_bounds`.
    """
    r = batch_allocation_lps(A, b, prefixes, i, maxiter=maxiter, slots=slots, warm_start=warm_start)
    return r.a_min, r.a_max, (r.status_min == 0) & (r.status_max == 0)


def batch_allocation_bounds_chain(A, b, actions, *, maxiter=None, slots=2048, warm_start: int = 4):
    """:func:`allocation_bounds_chain` for a batch of allocations (B, n).

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


# ----------------------------------------------------------------------------------
# Support function of the polytope on the simplex
# ----------------------------------------------------------------------------------


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
