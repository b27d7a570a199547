"""Exact, batched linear programming in pure JAX, and PASPO's interval LPs (Eq. 3).

One concern per module:

- :mod:`~paspo_jax.lp.simplex`: the bounded dual simplex in inequality form (``n`` variables,
  ``m`` rows, ``O(m n)`` per pivot), vmappable;
- :mod:`~paspo_jax.lp.general`: ``linprog``, general LPs with scipy's interface and status codes;
- :mod:`~paspo_jax.lp.intervals`: PASPO Eq. 3, the feasible interval of entity ``i``
  (``allocation_bounds``, ``allocation_lps``, ``allocation_bounds_chain``);
- :mod:`~paspo_jax.lp.warm`: warm starts from a reference allocation (``chain_warm_start``);
- :mod:`~paspo_jax.lp.queue`: a work queue of LPs with a fixed number of slots;
- :mod:`~paspo_jax.lp.batch`: batched interval LPs and the support function through that queue.

No library solves many small LPs under ``jit``/``vmap`` exactly, hence our own simplex.
"""

from paspo_jax.lp.batch import batch_allocation_bounds, batch_allocation_bounds_chain, batch_allocation_lps, \
    batch_support
from paspo_jax.lp.intervals import AllocationLPs, allocation_bounds, allocation_bounds_chain, allocation_lps
from paspo_jax.lp.general import linprog
from paspo_jax.lp.simplex import STATUS_MESSAGES, LPResult
from paspo_jax.lp.warm import WarmStart, _chain_reference_bases, chain_warm_start

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
    "batch_support",
    "STATUS_MESSAGES",
    "WarmStart",
    "chain_warm_start",
]
