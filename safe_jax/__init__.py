"""Constrained (safe) RL algorithms on the PPO engine's cost channel and update-rule hook.

PPO-Lagrangian (``lagrange``), P3O and IPO (``penalty``), CUP (``cup``), CPO (``cpo``); configs
and ``build`` for ``train.py`` in ``safe_jax.algo``. Each rule works with any policy on any env
that reports ``info["cost"]`` (C costs, each with its own limit ``cost_limit``). OptLayer-PPO
as PASPO's original ran it (``optlayer``: Dirichlet proposal, projection, CPC update; allocation
envs only); per-row costs of allocation envs (``rows``).
"""
