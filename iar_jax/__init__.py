"""IAR (Chen et al., NeurIPS 2023): argmax-flow policies over multi-discrete actions with
invalid-action rejection, and the baselines MASK, Factored and AR. Names load on first use.

* ``algo``: ``IARConfig``, ``IARA2CConfig``, ``build``, ``preset`` (``--algo iar``);
* ``policy``: ``IARPolicy``; ``baselines``: ``MaskPolicy``, ``FactoredPolicy``, ``ARPolicy``;
* ``flows``: the conditional flow, the posterior, ELBO / CUBO; ``soft_threshold``: the
  soft-threshold bijection; ``rejection``: the rejection correction."""

import importlib

_EXPORTS = {
    "IARConfig": "iar_jax.algo",
    "IARA2CConfig": "iar_jax.algo",
    "build": "iar_jax.algo",
    "make_policy": "iar_jax.algo",
    "preset": "iar_jax.algo",
    "PRESETS": "iar_jax.algo",
    "POLICIES": "iar_jax.algo",
    "IARPolicy": "iar_jax.policy",
    "MaskPolicy": "iar_jax.baselines",
    "FactoredPolicy": "iar_jax.baselines",
    "ARPolicy": "iar_jax.baselines",
    "ConditionalFlow": "iar_jax.flows",
    "ConditionalPosterior": "iar_jax.flows",
    "elbo_cubo": "iar_jax.flows",
    "soft_threshold": "iar_jax.soft_threshold",
    "soft_threshold_inverse": "iar_jax.soft_threshold",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
