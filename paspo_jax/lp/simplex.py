"""Bounded dual simplex in inequality form, batched under ``jax.vmap`` (the core of ``paspo_jax.lp``).

Problem: ``min c^T x s.t. W x <= h`` for few variables ``n`` and many rows ``m`` (``_Rows``:
general rows ``G x <= g``, bounds ``l <= x <= u``, equalities ``E x = e`` as row pairs). A
basis is a set of ``n`` active rows; an iteration costs one pass over the rows (``O(m n)``) and
a rank-one update of the ``n x n`` basis inverse, never an ``(m + n)``-column tableau.

Method: the dual simplex (Lemke 1954; Nocedal & Wright, *Numerical Optimization*, 2nd ed.,
Sec. 13.6) with the KKT condition ``c + W_B^T lam = 0, lam >= 0``:

1. start from a dual feasible vertex (``lam >= 0``; for a box the bound each ``c_j`` pushes to);
2. the most violated row enters (rows have unit norm, so this is the farthest hyperplane);
   none violated: optimal;
3. the leaving row comes from the dual ratio test ``min lam_j / u_j`` over
   ``u = B^{-T} w_r > 0`` (Harris's two passes); no candidate: the primal is infeasible (Farkas).

Invariants: equality rows (and both bounds of a fixed variable) have free multipliers and
never leave the basis; answers are vertices (exact up to rounding). At the optimal basis the
inverse is refined by one Newton-Schulz step ``B^-1 <- B^-1 (2 I - B B^-1)``, the vertex is
recomputed with one step of iterative refinement and priced again (pivoting on if a row is now
violated). Inverses and solves use ``ppo_jax.linalg`` (no LAPACK: jaxlib 0.10.x's batched CPU
kernels can deadlock). Under ``vmap`` a ``while_loop`` runs until the slowest problem is done.

Precision: float64 is vertex-exact (rows satisfied to ~1e-12 after scaling); float32 accepts a
primal violation of 1e-6 on unit-norm rows. Tolerances: :func:`_tolerances`; their choice is
measured in ``benchmarks/RESULTS_lp.md`` ("Notes").
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ppo_jax import linalg

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
    vertex of the first optimal basis, solved by LU).  Vmappable (a vmapped while loop runs
    until the slowest problem is done; ``paspo_jax.lp.queue`` avoids that).
    Status on exit: 0 optimal, 1 iteration limit, 2 infeasible.
    """
    s0 = _start(rows, c, basis0, Binv0, maxiter)
    loop = lambda s: jax.lax.while_loop(lambda s: s.status == _RUNNING, lambda s: _pivot(rows, s, maxiter, tol), s)
    out = loop(s0)
    if refine:
        # Refine the inverse at the optimal basis and go on pivoting from the refined
        # vertex: the rank-one-updated inverse drifts, and its vertex can look feasible
        # where the LU-solved one violates a row. One pricing pass when nothing is violated.
        B = rows.basis_rows(out.basis)[0]
        eye = jnp.eye(B.shape[0], dtype=B.dtype)
        Binv = out.Binv @ (2.0 * eye - B @ out.Binv)  # a Newton-Schulz step (matmuls, not a batched LU)
        fresh = _start(rows, c, out.basis, Binv, maxiter - out.nit)
        out = loop(fresh._replace(status=jnp.where(out.status == 0, fresh.status, out.status), nit=out.nit + fresh.nit))
        B, hB, _ = rows.basis_rows(out.basis)
        return out._replace(x=jnp.where(out.status == 0, _solve_basis(out.Binv, B, hB), out.x))
    return out._replace(x=_vertex(rows, out.basis, out.status, out.x))


def _is_concrete(*xs) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(xs))


def _unit_rows(A, b):
    norm = jnp.linalg.norm(A, axis=-1)
    scale = jnp.where(norm > 0, norm, 1.0)
    return A / scale[..., None], b / scale


def _dtype_of(*xs):
    return jnp.result_type(*[jnp.asarray(x).dtype for x in xs], jnp.float32)
