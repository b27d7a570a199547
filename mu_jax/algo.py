"""``--algo mu``: marginal-utility candidate generators (Ahmad, Lelis, Bowling 2020) on the MU
domains (``MU-location``, ``MU-peaks2d``).

Presets: "default" is a budget that learns visibly in about a minute on a laptop CPU (Adam
1e-4, 2,000 updates, 8 conv channels; ``benchmarks/RESULTS_mu.md`` measures it); "paper" is the
original's budget and network (Adam 1e-5, 80,000 updates, 32 channels, ``network="orig"``:
linear convolutions, one softmax per facility over candidates x cells, bias-free heads) with
the paper's Theorem 1 estimator; ``--estimator orig`` gives the original code's loss.
"""

from __future__ import annotations

from mu_jax.trainer import Config, make_trainer
from ppo_jax.registry import Algorithm, register, replace_configs, trainer_build

DEFAULT = dict(lr=1e-4, total_steps=2_000, channels=8)
PAPER = dict(network="orig")  # MU-location; with Config's defaults: Adam 1e-5, 80,000 updates, 32 channels


build = trainer_build("mu", Config, make_trainer)  # configs = {"mu": Config} -> its Trainer


ALGORITHM = register(Algorithm(
    name="mu",
    summary="marginal-utility candidate generators (Ahmad, Lelis, Bowling 2020)",
    default_env="MU-location",
    configs={"mu": Config},
    build=build,
    presets={
        "default": lambda env_id, overrides: replace_configs({"mu": Config(**DEFAULT)}, overrides),
        "paper": lambda env_id, overrides: replace_configs(
            {"mu": Config(**(PAPER if env_id == "MU-location" else {}))}, overrides),
    },
))
