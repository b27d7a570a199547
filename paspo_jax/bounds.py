"""Which interval solver PASPO's policy uses (the "bounds path"), as one function.

``make_bounds_fn(env, env_params, bounds)`` returns
``bounds_fn(A, b, prefix, i) -> (a_min, a_max, feasible[, x_min, x_max])``: the feasible
interval of entity ``i`` given ``prefix_<i`` (PASPO Eq. 3), scalars, ``feasible`` a bool;
the LP path also returns the two optimal allocations ``x_min, x_max`` (n,), feasible
completions of the prefix. Paths:

- ``"fast"``: ``paspo_jax.polytope.Polytope``'s static fast path (facets of the polytope's
  projections, computed once; bounds are min/max over rows). Static constraints only.
- ``"lp"``: the dual simplex of ``paspo_jax.lp`` on the ``(A, b)`` it is given (any
  constraints), in remaining-mass coordinates, warm-started for static constraints.
- ``"auto"``: ``"fast"`` where it can be built, else ``"lp"``.
"""

from __future__ import annotations

import warnings
from typing import Callable

import jax.numpy as jnp
import numpy as np

from paspo_jax import lp

__all__ = ["LPBounds", "has_static_constraints", "make_bounds_fn", "static_polytope"]


def has_static_constraints(env) -> bool:
    """Whether ``env.constraints`` is the base ``AllocationEnv``'s (``params.A, params.b``)."""
    from envs_jax.allocation import AllocationEnv

    return type(env).constraints is AllocationEnv.constraints


def static_polytope(env, env_params, fast_path="auto"):
    """``paspo_jax.polytope.Polytope`` of a static env's constraints, with the static fast path
    when it can be built. Rows: ``env.exact_constraints`` (float64) when the env's float32
    params are their rounding, else the params' rows in float64."""
    from paspo_jax import polytope

    A, b = env.constraints(None, env_params)
    dtype = np.asarray(A).dtype
    A, b, name = np.asarray(A, np.float64), np.asarray(b, np.float64), getattr(env, "name", "env")
    exact = getattr(env, "exact_constraints", None)
    if exact is not None:
        # The float64 rows the params were rounded from, while they still round to them.
        A64, b64 = (np.asarray(x, np.float64) for x in exact)
        if (A64.shape, b64.shape) == (A.shape, b.shape) and np.array_equal(A64.astype(dtype), A.astype(dtype)) \
                and np.array_equal(b64.astype(dtype), b.astype(dtype)):
            A, b = A64, b64
    if fast_path != "auto":
        return polytope.Polytope(A, b, name=name, fast_path=fast_path)
    try:
        return polytope.Polytope(A, b, name=name, fast_path="auto")
    except (MemoryError, RuntimeError) as e:  # the projections could not be built: LP path
        warnings.warn(f"{name}: static fast path unavailable ({type(e).__name__}: {e}); using the LP path")
        return polytope.Polytope(A, b, name=name, fast_path=False)


def make_bounds_fn(env, env_params, bounds: str = "auto", lp_maxiter: int | None = None, poly=None,
                   lp_warm_start: bool = True) -> Callable:
    """``bounds_fn(A, b, prefix, i) -> (a_min, a_max, feasible[, x_min, x_max])`` for the policy.

    ``bounds``: ``"lp"``, ``"fast"`` or ``"auto"`` (module docstring). ``"lp"`` solves
    ``paspo_jax.lp.allocation_bounds(..., rescale=True, vertices=True)`` (remaining-mass
    coordinates: accurate for the late entries of long chains in float32); with static
    constraints and ``lp_warm_start`` every LP starts from the optimal basis of the same LP
    at the polytope's Chebyshev centre (``lp.chain_warm_start``; same intervals up to float32
    round-off, fewer pivots: ``benchmarks/RESULTS_paspo.md``). ``"fast"`` raises
    ``ValueError`` for state-dependent constraints or when the fast path cannot be built.
    ``lp_maxiter``: the LP's iteration cap (None: its default). ``poly``: a prebuilt
    ``Polytope`` to use.
    """
    if bounds not in ("auto", "lp", "fast"):
        raise ValueError(f"bounds must be 'auto', 'lp' or 'fast', got {bounds!r}")
    static = has_static_constraints(env)
    if not static and bounds == "fast":
        raise ValueError(f"bounds='fast' needs static constraints; {type(env).__name__} has state-dependent ones")
    if static and bounds != "lp" and poly is None:
        poly = static_polytope(env, env_params, fast_path=True if bounds == "fast" else "auto")
    if static and bounds == "fast" and poly.fast is None:
        raise ValueError(f"bounds='fast': no static fast path for {poly!r}")
    if static and bounds != "lp" and poly.fast is not None:
        def fast(A, b, prefix, i):
            del A, b  # static: the polytope's own precomputed facet tables
            return poly.bounds(prefix, i)

        return fast
    warm = None
    if static and lp_warm_start:
        A_env, b_env = (jnp.asarray(v, jnp.float32) for v in env.constraints(None, env_params))
        if poly is None:
            poly = static_polytope(env, env_params, fast_path=False)
        warm = lp.chain_warm_start(A_env, b_env, jnp.asarray(poly.chebyshev_center()[0], jnp.float32),
                                   maxiter=lp_maxiter)
    return LPBounds(lp_maxiter, warm)


class LPBounds:
    """The LP path's ``bounds_fn(A, b, prefix, i[, warm]) -> (a_min, a_max, feasible, x_min, x_max)``.

    ``lp.allocation_bounds(A, b, prefix, i, rescale=True, vertices=True)`` from the warm start
    ``warm`` (a ``lp.WarmStart`` or None: box bases). A call without ``warm=`` (the policy's
    rollout) closes over the starting *bases* only, ``(n-1, n)`` integers, and each LP inverts its
    starting basis in the program (``WarmStart.bases_only``; unbatched over environments): the
    full table with inverses, ``2 (n-1) n^2`` floats (8 MB at N = 100), would be a constant
    captured by every program that samples actions. Pass ``warm=self.warm`` explicitly to use the
    stored inverses as an *argument* of a jitted program (``paspo_jax.debias.lp_chain_bounds``
    does). ``closure_inverses=True``: close over the full table (the old behaviour). The starting
    bases are the same either way, so the intervals agree up to float32 round-off.
    """

    def __init__(self, maxiter, warm, closure_inverses: bool = False):
        self.maxiter, self.warm = maxiter, warm
        # What a call without ``warm=`` closes over: the bases only, unless asked (module docstring).
        self.closed = warm if warm is None or closure_inverses else warm.bases_only()

    def __call__(self, A, b, prefix, i, warm=None):
        warm = self.closed if warm is None else warm
        return lp.allocation_bounds(A, b, prefix, i, maxiter=self.maxiter, rescale=True, warm=warm, vertices=True)
