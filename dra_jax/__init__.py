"""DRA: memory-precision allocation in RL (Patel, Acerbi & Pouget, NeurIPS 2020), and the
variational objectives of Acerbi's note "Dynamical resource allocation in reinforcement
learning as inference".

* ``memory``: Gaussian memories, soft Thompson sampling, KL cost and their gradients;
* ``objectives``: the objectives (original DRA, note Eq. 8, note Eq. 10 for a fixed T, its
  per-trajectory-T variant) and the weights of their score-function gradients ('A', 'Q', 'R');
* ``agent``: the tabular agent (expected SARSA for q, stochastic gradient for sigma);
* ``trainer``: ``Config``, ``PRESETS`` (``default_config(env_id)``, ``paper_config(env_id)``),
  ``make_trainer(config, env_id)`` (the ``ppo_jax.trainer.Trainer`` contract, with ``finalize`` drawing the allocation);
* ``huys_planning``: budgeted tree search on the Huys task, flexible vs equal precision;
* ``plots``: allocation figures.

Tasks live in ``envs_jax.dra_tasks`` (``DRA-maze``, ``DRA-huys``, ``DRA-mountaincar``).
"""

from dra_jax.trainer import PRESETS, Config, default_config, make_trainer, paper_config, preset_config

__all__ = ["PRESETS", "Config", "default_config", "make_trainer", "paper_config", "preset_config"]
