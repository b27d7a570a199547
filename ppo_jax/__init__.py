"""The shared engine: PPO/A2C as one compiled program, the policy interface, run utilities."""

from ppo_jax.config import PPOConfig
from ppo_jax.engine import PPO, RunnerState, device_mesh, make_train
from ppo_jax.losses import explained_variance, gae, ppo_loss
from ppo_jax.policy import Act, Batch, Evaluation, MLPActorCritic, MLPPolicyConfig, Policy
from ppo_jax.trainer import Trainer

__all__ = [
    "PPOConfig", "PPO", "RunnerState", "device_mesh", "make_train", "explained_variance", "gae",
    "ppo_loss", "Act", "Batch", "Evaluation", "MLPActorCritic", "MLPPolicyConfig", "Policy", "Trainer",
]
