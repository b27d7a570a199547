"""``--algo dra``: dynamic resource allocation of memory precision (Patel, Acerbi, Pouget 2020)
on the tabular DRA tasks (``DRA-maze``, ``DRA-mountaincar``, ``DRA-huys``).

Presets: ``dra_jax.trainer.PRESETS`` ("default": the original's figure scripts; "paper": the
runs behind the published numbers), per env.
"""

from __future__ import annotations

from dra_jax.trainer import PRESETS, Config, make_trainer, preset_config
from ppo_jax.registry import Algorithm, register, trainer_build

build = trainer_build("dra", Config, make_trainer)  # configs = {"dra": Config} -> its Trainer


def _preset(name: str):
    return lambda env_id, overrides: {"dra": preset_config(name, env_id, **dict(overrides.get("dra", {})))}


ALGORITHM = register(Algorithm(
    name="dra",
    summary="dynamic resource allocation of memory precision (Patel, Acerbi, Pouget 2020)",
    default_env="DRA-maze",
    configs={"dra": Config},
    build=build,
    presets={name: _preset(name) for name in PRESETS},
))
