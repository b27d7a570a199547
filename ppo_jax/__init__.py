"""The shared engine: PPO/A2C as one compiled program, the policy interface, run utilities,
the algorithm registry and the runner. Names load on first use (importing ``ppo_jax`` or a
light submodule such as ``ppo_jax.registry`` does not start a JAX backend)."""

import importlib

_EXPORTS = {
    "PPOConfig": "ppo_jax.config",
    "PPO": "ppo_jax.engine",
    "RunnerState": "ppo_jax.engine",
    "device_mesh": "ppo_jax.engine",
    "make_train": "ppo_jax.engine",
    "explained_variance": "ppo_jax.losses",
    "gae": "ppo_jax.losses",
    "ppo_loss": "ppo_jax.losses",
    "Act": "ppo_jax.policy",
    "Batch": "ppo_jax.policy",
    "Evaluation": "ppo_jax.policy",
    "MLPActorCritic": "ppo_jax.policy",
    "MLPPolicyConfig": "ppo_jax.policy",
    "Policy": "ppo_jax.policy",
    "Trainer": "ppo_jax.trainer",
    "Algorithm": "ppo_jax.registry",
    "register": "ppo_jax.registry",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ppo_jax' has no attribute {name!r}")
