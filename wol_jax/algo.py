"""``--algo wol-ddpg``: the Wolpertinger architecture trained with DDPG (Dulac-Arnold et al.
2015), the IAR paper's baseline without validity handling (metric ``valid_action_ratio``).

Presets: "paper" is the IAR original's settings (``Config``'s own defaults: 1 env, one
gradient step per env step after each 100-step rollout, buffer 1e6, batch 100, Adam 1e-3,
tau 0.005, noise 0.2, k = 10% of the joint actions, MLPs (400, 300), 7e5 steps) with the
paper's critic target (``target_action="wolpertinger"``; the original's SB3 DDPG used the
target actor's proto-action: ``--target-action proto``). "default" is a CPU budget:
1e5 steps, 8 envs, one gradient step per 8 env steps, buffer 1e5, MLPs (256, 256).
"""

from __future__ import annotations

from ppo_jax.registry import Algorithm, class_defaults, register, replace_configs, trainer_build
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
        "paper": class_defaults({"wol": Config}),
    },
))
