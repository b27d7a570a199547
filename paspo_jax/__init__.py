"""PASPO (Winkel et al., NeurIPS 2024): allocations on a polytope {a >= 0, sum a = 1, A a <= b},
sampled entity by entity from Betas on exact LP intervals, with the de-biased initialisation,
and its baselines (Dirichlet, Lagrangian, projection). Names load on first use.

* ``algo``: ``PASPOConfig``, ``PaspoPPOConfig``, ``build`` (``--algo paspo``);
* ``policy``: ``PASPOPolicy``; ``baselines``: the baseline policies and ``project_polytope``;
* ``lp``: the batched dual simplex and the interval LPs; ``polytope``: static polytope tables;
* ``debias``: the Beta fit of the de-biased initialisation."""

import importlib

_EXPORTS = {
    "PASPOConfig": "paspo_jax.algo",
    "PaspoPPOConfig": "paspo_jax.algo",
    "build": "paspo_jax.algo",
    "make_policy": "paspo_jax.algo",
    "METHODS": "paspo_jax.algo",
    "PASPOPolicy": "paspo_jax.policy",
    "DirichletPolicy": "paspo_jax.baselines",
    "LagrangianPolicy": "paspo_jax.baselines",
    "ProjectionPolicy": "paspo_jax.baselines",
    "project_polytope": "paspo_jax.baselines",
    "linprog": "paspo_jax.lp",
    "allocation_bounds": "paspo_jax.lp",
    "allocation_bounds_chain": "paspo_jax.lp",
    "batch_allocation_bounds": "paspo_jax.lp",
    "Polytope": "paspo_jax.polytope",
    "load_reference_polytope": "paspo_jax.polytope",
    "debias_offsets": "paspo_jax.debias",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
