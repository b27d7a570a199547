"""Warm starts for the chain of PASPO Eq. 3 interval LPs (:func:`chain_warm_start`).

A basis is dual feasible iff ``-B^{-T} c >= 0`` on its non-free rows, which depends on the
rows and on ``c = +-e_i`` only, never on the right-hand sides. A new prefix (or the
remaining-mass rescaling) only moves right-hand sides, so the optimal bases of a reference
allocation are valid dual simplex starts for every prefix with the same ``A``, and end at the
same optimum (pivot counts: ``benchmarks/RESULTS_lp.md``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from paspo_jax.lp.intervals import _allocation_problem, _allocation_rows, _box_bases, _check_allocation_inputs, \
    _default_maxiter
from paspo_jax.lp.simplex import _dtype_of, _dual_simplex, _tolerances

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
            if name.startswith("binv") and getattr(self, name) is None:
                continue
            got = tuple(jnp.shape(getattr(self, name)))
            if got != shape:
                raise ValueError(f"WarmStart.{name} has shape {got}, expected {shape} for A with {m} rows and {n} entities")
        if (self.binv_min is None) != (self.binv_max is None):
            raise ValueError("WarmStart: give both inverses (binv_min, binv_max) or neither")
        inv = lambda x: None if x is None else jnp.asarray(x, dtype)
        return WarmStart(jnp.asarray(self.basis_min, jnp.int32), inv(self.binv_min),
                         jnp.asarray(self.basis_max, jnp.int32), inv(self.binv_max))

    def bases_only(self) -> "WarmStart":
        """The same starting bases without their inverses (``binv_* = None``): each LP then
        inverts its starting basis itself (``paspo_jax.lp.simplex._start``; under ``vmap`` over
        prefixes the basis rows do not depend on the prefix, so that is one unbatched inverse per
        entity). ``(n-1, n)`` integers instead of ``2 (n-1) n^2`` floats: small enough to close
        over in a jitted program (the PASPO policy's rollout does)."""
        return WarmStart(self.basis_min, None, self.basis_max, None)


def chain_warm_start(A, b, reference, *, maxiter: int | None = None, max_cond: float = 1e6) -> WarmStart:
    """Warm starts for every entity's interval LPs from one reference allocation (numpy side).

    For each entity ``i`` both LPs of PASPO Eq. 3 are solved once at the reference's own
    prefix ``reference_<i`` from the box basis; their optimal bases (and inverses,
    computed in float64) become the starting bases of every later solve with the same
    ``A`` (valid for any prefix: module docstring). Prefixes near the reference need few
    pivots (the active sets mostly agree).

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
