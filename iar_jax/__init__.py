"""IAR (Chen et al., NeurIPS 2023): argmax-flow policies over multi-discrete actions with
invalid-action rejection, and the baselines MASK, Factored and AR. Names load on first use.

* ``algo``: ``IARConfig``, ``IARA2CConfig``, ``build``, ``preset`` (``--algo iar``);
* ``policy``: ``IARPolicy``; ``baselines``: ``MaskPolicy``, ``FactoredPolicy``, ``ARPolicy``;
* ``flows``: the conditional flow, the posterior, ELBO / CUBO; ``soft_threshold``: the
  soft-threshold bijection; ``rejection``: the rejection correction."""

from ppo_jax.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "iar_jax.algo": ["IARConfig", "IARA2CConfig", "build", "make_policy", "preset", "PRESETS", "POLICIES"],
    "iar_jax.policy": ["IARPolicy"],
    "iar_jax.baselines": ["MaskPolicy", "FactoredPolicy", "ARPolicy"],
    "iar_jax.flows": ["ConditionalFlow", "ConditionalPosterior", "elbo_cubo"],
    "iar_jax.soft_threshold": ["soft_threshold", "soft_threshold_inverse"],
})
