"""Environments in the gymnax API (``reset``, ``step`` with auto-reset, explicit params).

``envs_jax.make(env_id) -> (env, env_params)``; gymnax ids pass through.
"""

from envs_jax.registry import make, registered_ids

__all__ = ["make", "registered_ids"]
