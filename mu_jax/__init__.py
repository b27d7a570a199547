"""Marginal utility for planning in large action spaces (Ahmad, Lelis, Bowling, NeurIPS 2020).

* ``generator``: g_theta(s) -> m candidate actions, one policy head per candidate.
* ``objectives``: u_MU (Theorem 1's sampled gradient), u_MAX, plain policy, diversity, and the
  original code's variants (``estimator="orig"``, the ``softmax`` objective).
* ``search``: UCB and KR-UCB over the candidates (jittable, vmappable over states).
* ``trainer``: ``Config`` and ``make_trainer(config, env_id)`` for ``train.py --algo mu``.
* ``plots``: the coverage (App. B) and action-ordering (App. C) figures.

Domains: ``envs_jax.mu_domains`` (``MU-location``, ``MU-peaks2d``).
"""

from mu_jax.objectives import marginal_utilities, u_max, u_mu
from mu_jax.search import kr_ucb_search, ucb_search
from mu_jax.trainer import Config, make_trainer

__all__ = ["Config", "make_trainer", "marginal_utilities", "u_max", "u_mu", "kr_ucb_search", "ucb_search"]
