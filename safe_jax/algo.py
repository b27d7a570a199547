"""Configs and ``build`` for ``train.py --algo safe`` (constrained RL on the PPO engine).

    from safe_jax.algo import SafeConfig, SafePPOConfig, build
    trainer = build("Safe-bandit", {"ppo": SafePPOConfig(), "safe": SafeConfig(method="p3o", cost_limit=0.25)})
    state, metrics = jax.jit(trainer)(jax.random.PRNGKey(0))

``configs["ppo"]`` is any ``PPOConfig``; :class:`SafePPOConfig` has PASPO's PPO settings (the
original's baselines all share them). ``configs["safe"]`` is a :class:`SafeConfig`; its
``method`` picks the update rule (:data:`METHODS`). The policy: for allocation envs
(PASPO-*) ``paspo_jax``'s :class:`~paspo_jax.baselines.DirichletPolicy` (the original's
baseline policy: concentrations ``exp(.) + 1e-6``, actions floored at 1e-6, 32-32 ReLU);
MultiDiscrete (ERA): :class:`~safe_jax.policy.FactoredCategoricalPolicy`; otherwise the
project's ``MLPActorCritic`` (Discrete / Box); ``optlayer`` / ``optlayer-orig``:
:class:`~safe_jax.optlayer.OptLayerPolicy` (allocation envs only). The env must report
``info["cost"]``; ``SafeConfig.cost_rows`` picks, on allocation envs, the summed violation
(default) or one cost per constraint row (``safe_jax.rows``). :func:`paper` returns the
original's settings for a method.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from paspo_jax.algo import PASPOPPOConfig
from ppo_jax.config import PPOConfig, check_config

METHODS = ("ppo_lag", "ppo_lag_orig", "p3o", "ipo", "cup", "cpo", "optlayer", "optlayer-orig")
OPTLAYER = ("optlayer", "optlayer-orig")  # policy-side methods (allocation envs only)


@dataclass(frozen=True)
class SafePPOConfig(PASPOPPOConfig):
    """``PPOConfig`` with PASPO's PPO hyperparameters (the original's baselines use them)."""


@dataclass(frozen=True)
class SafeConfig:
    """The constrained-RL method and its settings (defaults: the original's, cost limit 0)."""

    method: str = "ppo_lag"  # one of METHODS
    cost_limit: float = 0.0  # d: allowed mean episode cost return per cost (original: 0)
    lagrange_init: float = 1.0  # ppo_lag*, cup: initial multiplier (original: 1)
    lagrange_lr: float = 0.035  # ppo_lag*, cup: multiplier Adam learning rate (original: 0.035)
    kappa: float = 20.0  # p3o: ReLU penalty weight (original: 20)
    p3o_j_scale: str = "1-gamma"  # p3o: weight of (J_C - d): "1-gamma" (paper, original) or "one" (OmniSafe)
    ipo_t: float = 20.0  # ipo: barrier parameter t (original: 20)
    ipo_slack: float = 1e-3  # ipo: barrier slack (original: 0.001)
    target_kl: float = 0.01  # cpo: trust region delta (original: 0.01)
    cg_iters: int = 15  # cpo: conjugate-gradient iterations (original: 15)
    cg_damping: float = 0.1  # cpo: Fisher damping (original: 0.1)
    line_search_steps: int = 20  # cpo: backtracking steps (original: 20)
    hidden: tuple[int, ...] = (64, 64)  # MLPActorCritic widths (non-allocation envs)
    encoder_hidden: tuple[int, ...] = (32, 32)  # DirichletPolicy widths (allocation envs; original 32-32)
    # Allocation envs: the costs the rule sees (safe_jax.rows): "sum" the env's summed violation
    # (one cost), "rows" one cost per row of the env (unit-norm) rows, "raw" one per stored raw
    # row (the original's). optlayer*: the rows of the proposal's cost ("sum"/"rows": the env's).
    cost_rows: str = "sum"

    def __post_init__(self) -> None:
        check_config(
            self,
            choices={"method": METHODS, "cost_rows": ("sum", "rows", "raw"), "p3o_j_scale": ("1-gamma", "one")},
            positive_ints=("cg_iters", "line_search_steps"),
            positive=("lagrange_lr", "kappa", "ipo_t", "ipo_slack", "target_kl"),
            nonneg=("cost_limit", "lagrange_init"),
            widths=("hidden", "encoder_hidden"),
        )

    def replace(self, **changes) -> "SafeConfig":
        return dataclasses.replace(self, **changes)


def paper(method: str, **overrides) -> dict:
    """The original's (niklasdbs/paspo) settings for ``method``: ``{"ppo", "safe"}`` configs.
    PPO: PASPO's (Adam 1e-3, 10 epochs, minibatch 64 of 512, clip 0.3, gamma 1, GAE 0.95,
    entropy 0.01, gradient clip 2); cost limit 0; Lagrange/CUP multipliers at 1, lr 0.035;
    P3O kappa 20; IPO t 20, slack 0.001; CPO target KL 0.01, CG 15, damping 0.1, 20 line-search
    steps (CPO's actor takes no entropy bonus; its critics use the PPO minibatches). The
    original-form Lagrangian and OptLayer act on the stored raw rows (``cost_rows="raw"``: one
    multiplier per row; the proposal's cost on those rows)."""
    rows = {"cost_rows": "raw"} if method in ("ppo_lag_orig",) + OPTLAYER else {}
    safe = SafeConfig(method=method, **rows).replace(**overrides)
    ppo = SafePPOConfig()
    if method == "cpo":
        ppo = ppo.replace(ent_coef=0.0)
    return {"ppo": ppo, "safe": safe}


PRESETS = {"paper": paper}


def presets(name: str, env_id: str, overrides: dict) -> dict:
    """``train.py``'s preset hook: ``name`` "default" (the classes' defaults) or "paper"
    (:func:`paper` for the method in ``overrides["safe"]``; per-row costs only on the PASPO-*
    allocation envs, and the observation filter ``normalize_obs`` on those but synth, as
    ``paspo_jax``'s paper preset), with ``overrides`` (per config name, field -> value) applied
    on top."""
    if name not in ("default", "paper"):
        raise ValueError(f"unknown safe preset {name!r}; choose 'default' or 'paper'")
    safe_over, ppo_over = dict(overrides.get("safe", {})), dict(overrides.get("ppo", {}))
    method = safe_over.pop("method", SafeConfig().method)
    if name == "paper":
        base = paper(method)
        if not env_id.startswith("PASPO-"):  # no constraint rows: the env's own cost
            base["safe"] = base["safe"].replace(cost_rows="sum")
        elif "synth" not in env_id:  # RLlib's MeanStdFilter, as the original ran every method
            base["ppo"] = base["ppo"].replace(normalize_obs=True)  # (compute, portfolio: raw obs ~1e6)
        return {"ppo": base["ppo"].replace(**ppo_over), "safe": base["safe"].replace(**safe_over)}
    return {"ppo": SafePPOConfig(**ppo_over), "safe": SafeConfig(method=method, **safe_over)}


def train_seeds(trainer, keys):
    """``jax.vmap(trainer)(keys)`` with each seed's ``init`` run on its own (not vmapped):
    flax's orthogonal initializer under vmap hits jaxlib 0.10.2's CPU deadlock in batched
    LAPACK kernels. Returns ``(final states, metrics)`` with a leading seed axis."""
    import jax

    init = jax.jit(trainer.init)
    states = [init(k) for k in keys]
    state = jax.tree.map(lambda *x: jax.numpy.stack(x), *states)
    run = jax.jit(jax.vmap(lambda s: trainer.run(s, trainer.num_updates, 0)))
    return run(state)


def make_rule(cfg: SafeConfig):
    """The ``ppo_jax.update.UpdateRule`` of ``cfg.method``."""
    from safe_jax.cpo import CPO
    from safe_jax.cup import CUP
    from safe_jax.lagrange import PPOLagrangian
    from safe_jax.penalty import IPO, P3O

    d = cfg.cost_limit
    if cfg.method in OPTLAYER:
        from safe_jax.optlayer import OptLayerCPC

        return OptLayerCPC()
    if cfg.method in ("ppo_lag", "ppo_lag_orig"):
        form = "standard" if cfg.method == "ppo_lag" else "original"
        return PPOLagrangian(d, cfg.lagrange_init, cfg.lagrange_lr, form=form)
    if cfg.method == "p3o":
        return P3O(d, cfg.kappa, cfg.p3o_j_scale)
    if cfg.method == "ipo":
        return IPO(d, cfg.ipo_t, cfg.ipo_slack)
    if cfg.method == "cup":
        return CUP(d, cfg.lagrange_init, cfg.lagrange_lr)
    return CPO(d, cfg.target_kl, cfg.cg_iters, cfg.cg_damping, cfg.line_search_steps)


def make_policy(cfg: SafeConfig, env, env_params):
    """DirichletPolicy for allocation envs (``num_entities`` + ``constraints``), a factored
    categorical for MultiDiscrete actions (ERA; ``safe_jax.policy``), else MLPActorCritic."""
    from envs_jax.contracts import LinearConstraints
    from envs_jax.spaces import MultiDiscrete

    if isinstance(env, LinearConstraints):
        from paspo_jax.baselines import DirichletPolicy

        return DirichletPolicy(env, env_params, encoder_hidden=cfg.encoder_hidden)
    from ppo_jax.policy import MLPActorCritic

    space = env.action_space(env_params)
    if isinstance(space, MultiDiscrete):
        from safe_jax.policy import FactoredCategoricalPolicy

        return FactoredCategoricalPolicy(space.nvec, hidden=cfg.hidden)
    return MLPActorCritic(space, hidden=cfg.hidden)


def policy_for(cfg: SafeConfig, env, env_params):
    """The method's policy: ``safe_jax.optlayer.OptLayerPolicy`` for optlayer* (allocation envs
    only; sign -1 for ``optlayer-orig``; the proposal's cost on the raw rows with
    ``cost_rows="raw"``), else :func:`make_policy`."""
    if cfg.method not in OPTLAYER:
        return make_policy(cfg, env, env_params)
    from safe_jax.optlayer import OptLayerPolicy
    from safe_jax.rows import raw_row_scale

    scale = raw_row_scale(env, env_params) if cfg.cost_rows == "raw" else None
    return OptLayerPolicy(env, env_params, sign=-1.0 if cfg.method == "optlayer-orig" else 1.0, row_scale=scale,
                          encoder_hidden=cfg.encoder_hidden)


def build(env_id: str, configs: dict, mesh=None):
    """``train.py``'s builder: ``configs = {"ppo": PPOConfig, "safe": SafeConfig}`` -> the
    engine's ``PPO`` trainer with the method's update rule. Envs without ``info["cost"]``
    raise ``ValueError``. ``cost_rows`` "rows"/"raw" (not optlayer*) trains on
    ``safe_jax.rows.RowCostEnv`` (per-row ``info["cost"]``); the policy sees the env itself."""
    import envs_jax
    from envs_jax.contracts import Costs, require
    from ppo_jax.config import unpack_configs
    from ppo_jax.engine import make_train

    ppo, cfg = unpack_configs("safe", configs, ppo=PPOConfig, safe=SafeConfig)
    env, env_params = envs_jax.make(env_id)
    require(env, Costs, who="--algo safe (an env reporting info['cost'])")
    policy = policy_for(cfg, env, env_params)
    if cfg.cost_rows != "sum" and cfg.method not in OPTLAYER:
        from safe_jax.rows import RowCostEnv

        env = RowCostEnv(env, env_params, rows=cfg.cost_rows)
    return make_train(ppo, env, env_params, policy, mesh, update=make_rule(cfg))


def _policy_cases():
    from safe_jax.optlayer import OptLayerPolicy
    from safe_jax.policy import FactoredCategoricalPolicy

    return [
        ("safe-factored", "ERA-v1", lambda env, p: FactoredCategoricalPolicy(env.action_space(p).nvec, hidden=(16,))),
        ("optlayer", "PASPO-synth-7", lambda env, p: OptLayerPolicy(env, p, sign=1.0, encoder_hidden=(16,))),
    ]


def _register():
    from functools import partial

    from ppo_jax.registry import Algorithm, register

    return register(Algorithm(
        name="safe",
        summary="constrained RL on the cost channel (--method " + "|".join(METHODS) + ")",
        default_env="Safe-bandit",
        configs={"ppo": SafePPOConfig, "safe": SafeConfig},
        build=build,
        presets={"default": partial(presets, "default"), "paper": partial(presets, "paper")},
        data_parallel=True,
        policy_cases=_policy_cases,
    ))


ALGORITHM = _register()
