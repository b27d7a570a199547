"""``--algo wol-ddpg``: the Wolpertinger architecture trained with DDPG (Dulac-Arnold et al.
2015), the IAR paper's baseline without validity handling (metric ``valid_action_ratio``).

Presets: "paper" reproduces the IAR original's Wol-DDPG runs: ``Config``'s defaults (1 env,
one gradient step per env step after each 100-step rollout, buffer 1e6, batch 100, Adam
1e-3, tau 0.005, noise 0.2, k = 10% of the joint actions, MLPs (400, 300), 7e5 steps) with
the original's critic target, the target actor's proto-action (``target_action="proto"``,
SB3's DDPG). Dulac-Arnold et al.'s Algorithm 1 refines the target action with the k-NN and
the target critic (``target_action="wolpertinger"``, ``Config``'s default and the "default"
preset's). "default" is a CPU budget: 1e5 steps, 8 envs x 1 step per update, one gradient
step per update, buffer 1e5, MLPs (256, 256).
"""

from __future__ import annotations

from ppo_jax.registry import Algorithm, register, replace_configs, trainer_build
from wol_jax.trainer import Config, make_trainer

DEFAULT = dict(total_steps=100_000, num_envs=8, rollout_steps=1, gradient_steps=1, buffer_size=100_000,
               hidden=(256, 256))

build = trainer_build("wol", Config, make_trainer)  # configs = {"wol": Config} -> its Trainer

ALGORITHM = register(Algorithm(
    name="wol-ddpg",
    summary="Wolpertinger DDPG: proto-action, k nearest discrete actions, critic picks (Dulac-Arnold et al. 2015)",
    default_env="ERA-v3",
    configs={"wol": Config},
    build=build,
    presets={
        "default": lambda env_id, overrides: replace_configs({"wol": Config(**DEFAULT)}, overrides),
        "paper": lambda env_id, overrides: replace_configs({"wol": Config(target_action="proto")}, overrides),
    },
))
