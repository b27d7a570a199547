"""``--algo ppo``: the engine's PPO with the MLP actor-critic, on any registered or gymnax env.

    from ppo_jax import registry
    algo = registry.get("ppo")
    trainer = algo.build("CartPole-v1", algo.make_configs("default"), None)
"""

from __future__ import annotations

from ppo_jax.config import PPOConfig
from ppo_jax.policy import MLPPolicyConfig
from ppo_jax.registry import Algorithm, class_defaults, register


def build(env_id: str, configs: dict, mesh=None):
    """``configs = {"ppo": PPOConfig, "policy": MLPPolicyConfig}`` -> the engine's ``PPO``."""
    import envs_jax
    from ppo_jax.config import unpack_configs
    from ppo_jax.engine import make_train
    from ppo_jax.policy import MLPActorCritic

    ppo, policy_cfg = unpack_configs("ppo", configs, ppo=PPOConfig, policy=MLPPolicyConfig)
    env, env_params = envs_jax.make(env_id)
    policy = MLPActorCritic(env.action_space(env_params), hidden=policy_cfg.hidden, activation=policy_cfg.activation)
    return make_train(ppo, env, env_params, policy, mesh)


def _policy_cases():
    from ppo_jax.policy import MLPActorCritic

    mlp = lambda env, p: MLPActorCritic(env.action_space(p), hidden=(16,))
    return [("mlp-categorical", "CartPole-v1", mlp), ("mlp-gaussian", "Pendulum-v1", mlp)]


_CONFIGS = {"ppo": PPOConfig, "policy": MLPPolicyConfig}
ALGORITHM = register(Algorithm(
    name="ppo",
    summary="PPO with an MLP actor-critic (categorical or Gaussian)",
    default_env="CartPole-v1",
    configs=_CONFIGS,
    build=build,
    # PPOConfig's defaults are PureJaxRL's CartPole settings (5e5 steps): the paper preset of PPO itself
    presets={"default": class_defaults(_CONFIGS), "paper": class_defaults(_CONFIGS)},
    data_parallel=True,
    policy_cases=_policy_cases,
))
