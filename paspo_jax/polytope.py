"""Polytopes on the probability simplex: checks, centre, exact bounds, uniform samples.

A :class:`Polytope` is ``P = {a in R^n : A a <= b, sum(a) = 1, 0 <= a <= 1}``, the
action set of a PASPO environment (the simplex constraints are implied, never
stored in ``A``).  It offers

* a non-emptiness check (``ValueError`` naming the polytope) and its Chebyshev
  centre (the largest ball inside ``P`` within the hyperplane ``sum(a) = 1``);
* the feasible interval of ``a_i`` given ``a_0..a_{i-1}`` (PASPO Eq. 3), through a
  **static fast path**: for constraints that never change, the projections
  ``P_k = {(a_0..a_{k-1}) : a in P}`` are computed once (Fourier-Motzkin
  elimination, pruned with exact LPs), and then

      a_min_i(p) = max over rows of P_{i+1} with a_i-coefficient < 0 of (beta - alpha . p)
      a_max_i(p) = min over rows of P_{i+1} with a_i-coefficient > 0 of (beta - alpha . p)

  is a matrix-vector product per entity instead of two LPs.  Every facet of a
  projection is kept, so these are the LP's values, not an approximation (verified
  against the LP path in ``tests/test_polytope.py``).  The fast path is used
  automatically when it was built; otherwise the LP path of :mod:`paspo_jax.lp`;
* uniform samples: ``rejection`` (Dirichlet(1) proposals, i.e. uniform on the
  simplex, kept when inside; as PASPO's original de-bias code) and ``hit_and_run``
  (Smith 1984: random direction in the hyperplane, uniform point on the chord), for
  thin or high-dimensional polytopes where rejection accepts almost nothing.

Construction is numpy/JAX on the host (float64); the query methods are pure
functions of their arguments and jit/vmap like any JAX function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from paspo_jax import lp

__all__ = ["Polytope", "Projections", "load_reference_polytope", "vertices", "REFERENCE_POLYTOPES"]

REFERENCE_POLYTOPES = ("synth7", "compute9", "portfolio13")
_VERBOSE = False


def load_reference_polytope(name: str, **kwargs) -> "Polytope":
    """The PASPO constraint sets shipped in ``envs_jax/data/polytopes.npz``.

    name: ``synth7`` (611 x 7, the synthetic benchmark), ``compute9`` (5 x 9, compute
    workload) or ``portfolio13`` (5 x 13, portfolio); kwargs go to :class:`Polytope`.
    """
    import envs_jax
    from pathlib import Path

    if name not in REFERENCE_POLYTOPES:
        raise ValueError(f"unknown reference polytope {name!r}; choose one of {REFERENCE_POLYTOPES}")
    data = np.load(Path(envs_jax.__file__).parent / "data" / "polytopes.npz")
    return Polytope(data[f"{name}_A"], data[f"{name}_b"], name=name, **kwargs)


class Projections(NamedTuple):
    """Fast-path tables: entity ``i`` uses the facets of ``P_{i+1}`` (dims a_0..a_i).

    Row r of entity i reads ``s * a_i <= beta - alpha . a_<i`` with s = +1 in
    ``upper``, -1 in ``lower``; ``alpha`` has n columns (zero from column i on) so a
    full allocation can be passed.  Arrays are padded to a common row count with
    ``beta = +inf`` (inactive).  ``zero_*`` rows do not involve a_i; they only say
    whether the prefix has a completion.
    """

    upper_alpha: np.ndarray  # (n-1, Ru, n)
    upper_beta: np.ndarray  # (n-1, Ru)
    lower_alpha: np.ndarray  # (n-1, Rl, n)
    lower_beta: np.ndarray  # (n-1, Rl)   a_i >= -(beta - alpha . p) ... see _fast_interval
    zero_alpha: np.ndarray  # (n-1, Rz, n)
    zero_beta: np.ndarray  # (n-1, Rz)
    rows_per_entity: tuple  # facet count of P_{i+1}, i = 0..n-2


@dataclass(frozen=True, eq=False)
class Polytope:
    """``{a : A a <= b, sum(a) = 1, 0 <= a <= 1}`` with exact bounds and samplers.

    Args:
      A: (m, n) constraint rows (m may be 0: the plain simplex); b: (m,).
      name: used in error messages.
      fast_path: build the static fast path (projections) at construction:
        ``"auto"`` (default) builds it unless a projection exceeds ``max_fast_rows``
        facets (then bounds use the LP path); ``True`` requires it; ``False`` skips it.
      max_fast_rows: facet budget per projection for ``"auto"``.
      max_vertices: vertex budget of the enumeration behind the fast path (the
        vertex count of a polytope can grow exponentially with n).
      max_fast_entities: ``"auto"`` does not try the fast path above this many
        entities (the enumeration can take minutes to exceed its budgets; timings in
        ``benchmarks/RESULTS_paspo.md``). ``True`` always tries.

    Raises ``ValueError`` (naming the polytope) for wrong shapes, NaN/inf entries
    and an empty polytope.
    """

    A: np.ndarray
    b: np.ndarray
    name: str = "polytope"
    fast_path: object = "auto"
    max_fast_rows: int = 20000
    max_vertices: int = 100000
    max_fast_entities: int = 24

    def __post_init__(self):
        A = np.asarray(self.A, dtype=np.float64)
        b = np.asarray(self.b, dtype=np.float64)
        if A.ndim == 1 and A.size == 0:
            A = A.reshape(0, 0)
        if A.ndim != 2 or A.shape[1] < 2:
            raise ValueError(f"Polytope {self.name!r}: A must be (m, n) with n >= 2, got shape {A.shape}")
        if b.shape != (A.shape[0],):
            raise ValueError(f"Polytope {self.name!r}: b must have shape ({A.shape[0]},), got {b.shape}")
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
            raise ValueError(f"Polytope {self.name!r}: A and b must be finite (found NaN or inf)")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        center, radius = self._chebyshev()
        object.__setattr__(self, "_center", center)
        object.__setattr__(self, "_radius", radius)
        fast = None
        if self.fast_path not in ("auto", True, False):
            raise ValueError(f"Polytope {self.name!r}: fast_path must be 'auto', True or False, got {self.fast_path!r}")
        if self.fast_path:
            why = None
            if radius <= 1e-9:
                why = "it has no interior (Chebyshev radius 0), so its projections are degenerate"
            elif self.fast_path == "auto" and A.shape[1] > self.max_fast_entities:
                why = f"{A.shape[1]} entities > max_fast_entities={self.max_fast_entities}"
            else:
                try:
                    fast = _build_projections(A, b, self.max_fast_rows, self.vertices(max_vertices=self.max_vertices))
                except RuntimeError as e:  # budget exceeded (_TooLarge) or numerical trouble
                    why = str(e)
                if fast is None and why is None:
                    why = f"a projection has more than max_fast_rows={self.max_fast_rows} facets"
            if why is not None and self.fast_path is True:
                raise ValueError(f"Polytope {self.name!r}: no static fast path: {why}")
        object.__setattr__(self, "fast", fast)

    # ------------------------------------------------------------------ basics
    @property
    def n(self) -> int:
        return self.A.shape[1]

    @property
    def m(self) -> int:
        return self.A.shape[0]

    def __repr__(self):
        fast = "off" if self.fast is None else f"{sum(self.fast.rows_per_entity)} facets"
        return f"Polytope({self.name!r}, m={self.m}, n={self.n}, fast path {fast})"

    def _chebyshev(self):
        """Largest ball in P within the hyperplane sum(a) = 1 (an LP in (a, r)).

        A row's distance scale inside the hyperplane is the norm of its projection
        onto ``{sum = 0}``; a row parallel to the ones vector is a constant there and
        gets scale 0.  Raises ValueError if P is empty.
        """
        n = self.n
        rows = np.concatenate([self.A, np.eye(n), -np.eye(n)])
        rhs = np.concatenate([self.b, np.ones(n), np.zeros(n)])
        proj = rows - rows.mean(axis=1, keepdims=True)
        scale = np.linalg.norm(proj, axis=1)
        # Variables (a, r, padding fixed at 0) and rows padded to size classes, so
        # that polytopes of similar size share one compiled LP.
        nv = max(16, 1 << n.bit_length())
        mr = max(64, 1 << (len(rows) - 1).bit_length())
        A_ub = np.zeros((mr, nv))
        A_ub[: len(rows), :n] = rows
        A_ub[: len(rows), n] = scale
        b_ub = np.ones(mr)
        b_ub[: len(rows)] = rhs
        c = np.zeros(nv)
        c[n] = -1.0
        A_eq = np.zeros((1, nv))
        A_eq[0, :n] = 1.0
        lo = np.zeros(nv)
        hi = np.zeros(nv)
        hi[:n], hi[n] = 1.0, np.inf
        with jax.enable_x64(True):
            res = lp.linprog(c, A_ub, b_ub, A_eq, np.ones(1), bounds=(lo, hi))
            status, x = int(res.status), np.asarray(res.x)
        if status == 2:
            raise ValueError(
                f"Polytope {self.name!r} is empty: no a with A a <= b, sum(a) = 1, 0 <= a <= 1"
            )
        if status != 0:
            raise ValueError(f"Polytope {self.name!r}: Chebyshev-centre LP failed ({lp.STATUS_MESSAGES.get(status)})")
        return x[:n], float(x[n])

    def vertices(self, max_vertices: int | None = None) -> np.ndarray:
        """(N, n) all vertices of P (double description; computed once, cached)."""
        if "_vertices" not in self.__dict__:
            budget = self.max_vertices if max_vertices is None else max_vertices
            object.__setattr__(self, "_vertices", vertices(self.A, self.b, max_vertices=budget)[0])
        return self._vertices

    def check_nonempty(self) -> None:
        """Raise ValueError naming the polytope if it is empty (done at construction)."""
        self._chebyshev()

    def chebyshev_center(self):
        """(centre (n,), radius): the largest ball inside P within ``sum(a) = 1``."""
        return self._center.copy(), self._radius

    def contains(self, a, tol: float = 1e-9):
        """Whether ``a`` (..., n) is in P up to ``tol`` (rows as given, not rescaled)."""
        a = jnp.asarray(a)
        A = jnp.asarray(self.A, a.dtype)
        ok = jnp.all(a @ A.T <= jnp.asarray(self.b, a.dtype) + tol, axis=-1) if self.m else True
        return ok & (jnp.abs(jnp.sum(a, axis=-1) - 1.0) <= tol) & jnp.all((a >= -tol) & (a <= 1 + tol), axis=-1)

    # ------------------------------------------------------------------ bounds
    def bounds(self, prefix, i):
        """(a_min, a_max, feasible) of entity ``i`` given ``prefix[:i]`` (PASPO Eq. 3).

        prefix: (n,), i: int (may be traced).  The fast path when built, else
        :func:`paspo_jax.lp.allocation_bounds`; same conventions (NaN and False when
        the prefix has no completion).  Vmappable.
        """
        if self.fast is None:
            return lp.allocation_bounds(self.A, self.b, prefix, i)
        return _fast_interval(self.fast, prefix, i)

    def bounds_chain(self, a):
        """All n-1 intervals of allocation ``a`` (n,): arrays (n-1,) (vmappable)."""
        if self.fast is None:
            return lp.allocation_bounds_chain(self.A, self.b, a)
        return _fast_chain(self.fast, a)

    def lp_bounds(self, prefix, i):
        """The LP path of :meth:`bounds`, whatever the fast path (for checks)."""
        return lp.allocation_bounds(self.A, self.b, prefix, i)

    def batch_bounds(self, prefixes, i):
        """:meth:`bounds` for prefixes (B, n): arrays (B,) (LP path: work queue)."""
        if self.fast is None:
            return lp.batch_allocation_bounds(self.A, self.b, prefixes, i)
        return jax.vmap(lambda p: _fast_interval(self.fast, p, i))(prefixes)

    def batch_bounds_chain(self, actions):
        """:meth:`bounds_chain` for actions (B, n): arrays (B, n-1)."""
        if self.fast is None:
            return lp.batch_allocation_bounds_chain(self.A, self.b, actions)
        return jax.vmap(lambda a: _fast_chain(self.fast, a))(actions)

    # ------------------------------------------------------------------ sampling
    def sample_uniform(self, key, num: int, method: str = "rejection", **options):
        """``num`` points uniform on P, shape (num, n).

        method:
          ``"rejection"``: Dirichlet(1) proposals (uniform on the simplex) kept when
            ``A a <= b``; exact.  options: ``batch`` proposals per round (default
            ``max(1024, 4 num)``), ``max_rounds`` (default 1000).  Outside jit a
            ``ValueError`` is raised when too few proposals were accepted; inside
            jit missing rows are NaN.
          ``"hit_and_run"``: ``chains`` independent chains (default ``num``) from
            ``x0`` (default: the Chebyshev centre), each ``burn_in`` steps (default
            ``20 n^2``) then ``num / chains`` samples ``thin`` steps apart (default
            ``4 n``).  Each step picks a direction uniformly in ``{sum = 0}`` and a
            point uniformly on the chord through P; stationary law: uniform on P.
        """
        if method == "rejection":
            return _rejection(self, key, num, **options)
        if method == "hit_and_run":
            return _hit_and_run(self, key, num, **options)
        raise ValueError(f"sample_uniform: unknown method {method!r}; use 'rejection' or 'hit_and_run'")


# ---------------------------------------------------------------------- fast path


def _fast_interval(fast: Projections, prefix, i):
    """Bounds of a_i from the facet tables (see :class:`Projections`)."""
    prefix = jnp.asarray(prefix)
    dtype = jnp.result_type(prefix.dtype, jnp.float32)
    n = prefix.shape[-1]
    p = jnp.where(jnp.arange(n) < i, prefix, 0.0).astype(dtype)
    if isinstance(i, (int, np.integer)):
        # Static entity: constant tables of that projection's own rows (no gather of the
        # padded tables, which under vmap copies them once per action).
        def side(alpha, beta):
            keep = np.isfinite(beta[i])
            return jnp.asarray(beta[i][keep], dtype) - jnp.asarray(alpha[i][keep], dtype) @ p
    else:
        def side(alpha, beta):
            return jnp.asarray(beta, dtype)[i] - jnp.asarray(alpha, dtype)[i] @ p
    a_max = jnp.min(side(fast.upper_alpha, fast.upper_beta), initial=jnp.inf)
    a_min = -jnp.min(side(fast.lower_alpha, fast.lower_beta), initial=jnp.inf)
    slack = jnp.min(side(fast.zero_alpha, fast.zero_beta), initial=jnp.inf)
    tol = 1e-9 if dtype == jnp.float64 else 1e-5
    feasible = (slack >= -tol) & (a_min <= a_max + tol) & jnp.all(jnp.isfinite(p))
    # The LP rounds a degenerate interval to one point; so do we.
    a_max = jnp.maximum(a_max, a_min)
    return jnp.where(feasible, a_min, jnp.nan), jnp.where(feasible, a_max, jnp.nan), feasible


def _fast_chain(fast: Projections, a):
    n = jnp.shape(a)[-1]
    lo, hi, ok = zip(*(_fast_interval(fast, a, i) for i in range(n - 1)))
    return jnp.stack(lo), jnp.stack(hi), jnp.stack(ok)


def _reduced_system(A, b):
    """P_{n-1}: substitute a_{n-1} = 1 - sum(a_<n-1); rows over a_0..a_{n-2}."""
    m, n = A.shape
    G = A[:, : n - 1] - A[:, n - 1 : n]
    g = b - A[:, n - 1]
    k = n - 1
    # a_j >= 0, a_j <= 1 (j < n-1), a_{n-1} >= 0 <=> sum a_<n-1 <= 1; a_{n-1} <= 1 is
    # implied by the first ones.
    G = np.concatenate([G, -np.eye(k), np.eye(k), np.ones((1, k))])
    g = np.concatenate([g, np.zeros(k), np.ones(k), np.ones(1)])
    return G, g


def _normalise(G, g):
    s = np.linalg.norm(G, axis=1)
    keep = s > 1e-12
    return G[keep] / s[keep, None], g[keep] / s[keep], keep


def _rank(gram, rtol=1e-10):
    """Numerical ranks of a batch of symmetric PSD matrices (..., d, d)."""
    ev = np.linalg.eigvalsh(gram)
    return np.sum(ev > rtol * np.maximum(ev[..., -1:], 1e-300), axis=-1)


class _TooLarge(RuntimeError):
    """The fast path would exceed its budget (vertices or facets)."""


def vertices(A, b, tol=1e-9, seed=0, max_vertices: int = 100000):
    """All vertices of ``{A a <= b, a >= 0, sum(a) = 1}`` (double description).

    Starts from the simplex's vertices e_j and cuts with one row of A at a time
    (Motzkin et al. 1953; Fukuda & Prodon 1996): vertices beyond the new hyperplane
    go, and every edge from a kept to a removed vertex gives a new vertex where it
    crosses.  Two vertices span an edge iff their common tight rows have rank
    d - 1 (d = n - 1, the dimension), tested on the rows' Gram matrix.  Rows are
    taken in a fixed random order.  Returns (V (N, n), tight (N, n + m) bool) with
    the tight rows ``a_j >= 0`` first, then A's rows in their own order.  Raises
    ``RuntimeError`` when an intermediate polytope has more than ``max_vertices``
    vertices (the count can grow exponentially with n).
    """
    A, b = np.asarray(A, np.float64), np.asarray(b, np.float64)
    m, n = A.shape
    d = n - 1
    norm = np.linalg.norm(A, axis=1)
    norm[norm == 0] = 1.0
    W, h = A / norm[:, None], b / norm
    # Normals projected on {sum = 0} (the hyperplane the polytope lives in).
    normals = np.concatenate([-np.eye(n), W]) @ (np.eye(n) - 1.0 / n)
    outer = np.einsum("ri,rj->rij", normals, normals).reshape(n + m, n * n)
    order = np.random.default_rng(seed).permutation(m)
    # Tight sets as a 0/1 float32 matrix over the constraints in processing order
    # (the simplex's a_j >= 0 first), so that counting the common tight
    # constraints of all (kept, removed) pairs is one matrix product.
    outer = outer[np.concatenate([np.arange(n), n + order])]
    V = np.eye(n)
    T = np.zeros((n, n + m), np.float32)
    T[:, :n] = 1.0 - np.eye(n, dtype=np.float32)
    for t, r in enumerate(order):
        cols = n + t + 1
        s = V @ W[r] - h[r]
        out, inside = s > tol, s < -tol
        T[:, cols - 1] = ~(out | inside)
        if not out.any():
            continue
        I, O = np.nonzero(inside)[0], np.nonzero(out)[0]
        if len(V) > max_vertices or len(I) * len(O) > 50 * max_vertices:
            raise _TooLarge(f"vertex enumeration passed max_vertices={max_vertices}")
        Tc = T[:, :cols]
        TIO = Tc[O]
        common = Tc[I] @ TIO.T
        ii, oo = np.nonzero(common >= d - 1.5)
        pi, po = I[ii], O[oo]
        Z = Tc[pi] * TIO[oo]
        if len(pi) * n**3 > 1e9:  # the edge tests alone would take minutes
            raise _TooLarge(f"vertex enumeration: {len(pi)} candidate edges in dimension {d}")
        if len(pi):
            gram = (Z.astype(np.float64) @ outer[:cols]).reshape(-1, n, n)
            edge = _rank(gram, 1e-9) == d - 1
            pi, po, Z = pi[edge], po[edge], Z[edge]
        si, so = s[pi, None], s[po, None]
        new = (so * V[pi] - si * V[po]) / (so - si)
        keep = ~out
        V = np.concatenate([V[keep], new])
        Tn = np.zeros((len(V), n + m), np.float32)
        nk = int(keep.sum())
        Tn[:nk, :cols] = Tc[keep]
        Tn[nk:, :cols] = Z
        Tn[nk:, cols - 1] = 1.0
        T = Tn
        if len(V) == 0:
            break
    # Back to the documented column order: a_j >= 0, then A's rows.
    tight = np.zeros((len(V), n + m), bool)
    tight[:, :n] = T[:, :n] > 0
    tight[:, n + order] = T[:, n:] > 0
    return V, tight


def _facets(G, g, Y, tol=1e-9):
    """Which rows of valid inequalities ``G y <= g`` are facets of conv(Y).

    A row is a facet iff the points of Y on it span a hyperplane: their
    homogeneous coordinates ``[y, 1]`` have rank k (the dimension of y).
    """
    k = Y.shape[1]
    if len(G) == 0:
        return np.zeros(0, bool)
    s = Y @ G.T - g  # (N, R), <= 0 for valid rows
    if np.any(s > 1e-7):
        raise RuntimeError("projection: an eliminated row cuts a vertex (numerical trouble)")
    tight = (np.abs(s) <= tol).T.astype(np.float64)  # (R, N)
    Yh = np.concatenate([Y, np.ones((len(Y), 1))], axis=1)
    outer = np.einsum("vi,vj->vij", Yh, Yh).reshape(len(Y), (k + 1) ** 2)
    keep = np.zeros(len(G), bool)
    for c in range(0, len(G), 8192):
        gram = (tight[c : c + 8192] @ outer).reshape(-1, k + 1, k + 1)
        keep[c : c + 8192] = _rank(gram) == k
    return keep


def _dedupe(G, g):
    key = np.round(np.concatenate([G, g[:, None]], axis=1), 9)
    _, idx = np.unique(key, axis=0, return_index=True)
    idx = np.sort(idx)
    return G[idx], g[idx]


def _build_projections(A, b, max_rows, V):
    """Facets of the projections P_{n-1}, ..., P_1 of P (Fourier-Motzkin + vertices).

    P_{n-1} comes from substituting a_{n-1} = 1 - sum(a_<n-1); then a_{n-2}, ..., a_1
    are eliminated one at a time: each new row is a positive combination of a
    row with a positive and one with a negative coefficient of the eliminated
    variable (Fourier-Motzkin).  After each step only facets are kept: a row is a
    facet of P_k iff the projected vertices of P on it span a hyperplane
    (:func:`_facets`; V (N, n) are P's vertices from :func:`vertices`).  Returns
    None if some step would exceed ``max_rows`` rows.
    """
    m, n = A.shape
    # P_{n-1} over a_0..a_{n-2}: A's rows with a_{n-1} substituted, the box, and
    # a_{n-1} >= 0 <=> sum(a_<n-1) <= 1 (a_{n-1} <= 1 follows from a >= 0).
    k = n - 1
    G = np.concatenate([A[:, :k] - A[:, k : k + 1], -np.eye(k), np.eye(k), np.ones((1, k))])
    g = np.concatenate([b - A[:, k], np.zeros(k), np.ones(k), np.ones(1)])
    G, g, _ = _normalise(G, g)
    keep = _facets(G, g, V[:, :k])
    G, g = _dedupe(G[keep], g[keep])
    systems = {k: (G, g)}
    while k > 1:
        j = k - 1  # eliminate a_j
        P, N = np.nonzero(G[:, j] > 1e-12)[0], np.nonzero(G[:, j] < -1e-12)[0]
        zero = np.abs(G[:, j]) <= 1e-12
        if len(P) * len(N) > 50 * max_rows:
            return None
        pi, ni = np.repeat(P, len(N)), np.tile(N, len(P))
        cp, cn = -G[ni, j][:, None], G[pi, j][:, None]  # both > 0
        G = np.concatenate([G[zero], cp * G[pi] + cn * G[ni]])[:, :j]
        g = np.concatenate([g[zero], cp[:, 0] * g[pi] + cn[:, 0] * g[ni]])
        G, g, _ = _normalise(G, g)
        keep = _facets(G, g, V[:, :j])
        G, g = _dedupe(G[keep], g[keep])
        if _VERBOSE:
            print(f"projection: P_{j} has {len(G)} facets ({len(P)} x {len(N)} combinations)")
        if len(G) > max_rows:
            return None
        k = j
        systems[k] = (G, g)

    # Tables: entity i uses P_{i+1} (variables a_0..a_i).
    ups, los, zes, counts = [], [], [], []
    for i in range(n - 1):
        G, g = systems[i + 1]
        c = G[:, i]
        up, lo = c > 1e-12, c < -1e-12
        ze = ~(up | lo)
        pad = lambda M: np.concatenate([M, np.zeros((len(M), n - M.shape[1]))], axis=1)
        # c a_i <= g - G_<i p  =>  a_i <= beta - alpha . p (c > 0) or -a_i <= ... (c < 0)
        ups.append((pad(G[up, :i] / c[up, None]), g[up] / c[up]))
        los.append((pad(G[lo, :i] / -c[lo, None]), g[lo] / -c[lo]))
        zes.append((pad(G[ze, :i]), g[ze]))
        counts.append(len(G))

    def stack(parts):
        R = max(1, max(len(beta) for _, beta in parts))
        alpha = np.zeros((n - 1, R, n))
        beta = np.full((n - 1, R), np.inf)
        for i, (al, be) in enumerate(parts):
            alpha[i, : len(be)] = al
            beta[i, : len(be)] = be
        return alpha, beta

    (ua, ub), (la, lb), (za, zb) = stack(ups), stack(los), stack(zes)
    return Projections(ua, ub, la, lb, za, zb, tuple(counts))


# ---------------------------------------------------------------------- sampling


def _rejection(poly: Polytope, key, num, batch=None, max_rounds=1000):
    batch = int(batch or max(1024, 4 * num))
    dtype = jnp.result_type(float)
    out, count = _rejection_jit(key, jnp.asarray(poly.A, dtype), jnp.asarray(poly.b, dtype), int(num), batch, int(max_rounds))
    if not isinstance(count, jax.core.Tracer) and int(count) < num:
        raise ValueError(
            f"Polytope {poly.name!r}: rejection sampling accepted only {int(count)} of {num} points in "
            f"{max_rounds} rounds of {batch} proposals; use method='hit_and_run'"
        )
    return out


@partial(jax.jit, static_argnums=(3, 4, 5))
def _rejection_jit(key, A, b, num, batch, max_rounds):
    """Dirichlet(1) proposals (uniform on the simplex) kept when A a <= b."""
    n = A.shape[1]

    def body(carry):
        key, out, count, rounds = carry
        key, sub = jax.random.split(key)
        # Dirichlet(1), i.e. uniform on the simplex: normalised Exp(1) draws.
        e = jax.random.exponential(sub, (batch, n), A.dtype)
        prop = e / jnp.sum(e, axis=1, keepdims=True)
        ok = jnp.all(prop @ A.T <= b, axis=1)
        slot = count + jnp.cumsum(ok, dtype=jnp.int32) - 1
        slot = jnp.where(ok & (slot < num), slot, num)
        out = out.at[slot].set(prop, mode="drop")
        return key, out, jnp.minimum(count + jnp.sum(ok, dtype=jnp.int32), num), rounds + 1

    carry = (key, jnp.full((num, n), jnp.nan, A.dtype), jnp.int32(0), jnp.int32(0))
    _, out, count, _ = jax.lax.while_loop(lambda c: (c[2] < num) & (c[3] < max_rounds), body, carry)
    return out, count


def _hit_and_run(poly: Polytope, key, num, chains=None, burn_in=None, thin=None, x0=None):
    n = poly.n
    chains = int(chains or num)
    per_chain = math.ceil(num / chains)
    burn_in = int(burn_in if burn_in is not None else 20 * n * n)
    thin = int(thin or 4 * n)
    dtype = jnp.result_type(float)
    # Rows W a <= h including the box; directions live in {sum = 0}.
    W = jnp.asarray(np.concatenate([poly.A, np.eye(n), -np.eye(n)]), dtype)
    h = jnp.asarray(np.concatenate([poly.b, np.ones(n), np.zeros(n)]), dtype)
    x_init = jnp.broadcast_to(jnp.asarray(poly._center if x0 is None else x0, dtype), (chains, n))
    xs = _hit_and_run_jit(key, W, h, x_init, per_chain, burn_in, thin)
    return xs.reshape(chains * per_chain, n)[:num]


@partial(jax.jit, static_argnums=(4, 5, 6))
def _hit_and_run_jit(key, W, h, x, per_chain, burn_in, thin):
    """Hit-and-run (Smith 1984) for all chains at once; x: (chains, n) inside P."""
    chains, n = x.shape

    def step(k, carry):
        x, key = carry
        key, kd, kt = jax.random.split(key, 3)
        z = jax.random.normal(kd, (chains, n), x.dtype)
        d = z - jnp.mean(z, axis=1, keepdims=True)
        d = d / jnp.linalg.norm(d, axis=1, keepdims=True)
        slack = h - x @ W.T  # >= 0 inside (up to rounding)
        rate = d @ W.T
        t_hi = jnp.min(jnp.where(rate > 0, slack / rate, jnp.inf), axis=1)
        t_lo = jnp.max(jnp.where(rate < 0, slack / rate, -jnp.inf), axis=1)
        # Rounding can make slack -1e-17; clamp so that t stays on the chord.
        t_hi, t_lo = jnp.maximum(t_hi, 0.0), jnp.minimum(t_lo, 0.0)
        t = t_lo + (t_hi - t_lo) * jax.random.uniform(kt, (chains,), x.dtype)
        x = x + t[:, None] * d
        return x + (1.0 - jnp.sum(x, axis=1, keepdims=True)) / n, key

    x, key = jax.lax.fori_loop(0, burn_in, step, (x, key))

    def emit(carry, _):
        carry = jax.lax.fori_loop(0, thin, step, carry)
        return carry, carry[0]

    _, xs = jax.lax.scan(emit, (x, key), None, length=per_chain)
    return jnp.swapaxes(xs, 0, 1)  # (chains, per_chain, n)
