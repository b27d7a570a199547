"""The shared engine: PPO/A2C as one compiled program, the policy interface, run utilities,
the algorithm registry and the runner. Names load on first use (importing ``ppo_jax`` or a
light submodule such as ``ppo_jax.registry`` does not start a JAX backend)."""

from ppo_jax.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "ppo_jax.config": ["PPOConfig"],
    "ppo_jax.engine": ["PPO", "RunnerState", "device_mesh", "make_train"],
    "ppo_jax.losses": ["explained_variance", "gae", "ppo_loss"],
    "ppo_jax.policy": ["Act", "Batch", "Evaluation", "MLPActorCritic", "MLPPolicyConfig", "Policy"],
    "ppo_jax.trainer": ["Trainer"],
    "ppo_jax.registry": ["Algorithm", "register"],
})
