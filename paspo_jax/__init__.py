"""PASPO (Winkel et al., NeurIPS 2024): allocations on a polytope {a >= 0, sum a = 1, A a <= b},
sampled entity by entity from Betas on exact LP intervals, with the de-biased initialisation,
and its baselines (Dirichlet, Lagrangian, projection). Names load on first use.

* ``algo``: ``PASPOConfig``, ``PASPOPPOConfig``, ``build`` (``--algo paspo``);
* ``policy``: ``PASPOPolicy``; ``baselines``: the baseline policies and ``project_polytope``;
* ``lp``: the batched dual simplex and the interval LPs; ``polytope``: static polytope tables;
* ``debias``: the Beta fit of the de-biased initialisation."""

from ppo_jax.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "paspo_jax.algo": ["PASPOConfig", "PASPOPPOConfig", "build", "make_policy", "METHODS"],
    "paspo_jax.policy": ["PASPOPolicy"],
    "paspo_jax.baselines": ["DirichletPolicy", "LagrangianPolicy", "ProjectionPolicy", "project_polytope"],
    "paspo_jax.lp": ["linprog", "allocation_bounds", "allocation_bounds_chain", "batch_allocation_bounds"],
    "paspo_jax.polytope": ["Polytope", "load_reference_polytope"],
    "paspo_jax.debias": ["debias_offsets"],
})
