"""Configs and ``build`` for ``train.py --algo paspo`` (PASPO and its baselines on the PPO engine).

    from paspo_jax.algo import PASPOConfig, PASPOPPOConfig, build
    trainer = build("PASPO-synth-7", {"ppo": PASPOPPOConfig(), "paspo": PASPOConfig()}, mesh=None)
    state, metrics = jax.jit(trainer)(jax.random.PRNGKey(0))

``configs["ppo"]`` is any ``PPOConfig``; :class:`PASPOPPOConfig` is a ``PPOConfig`` whose
defaults are the paper's PPO hyperparameters (:func:`default_ppo_config` returns one).
``configs["paspo"]`` is a :class:`PASPOConfig`; its ``method`` picks PASPO or a baseline
(``dirichlet``, ``lagrangian``, ``projection``). No field name of ``PASPOConfig`` is a field of
``PPOConfig``.

``--preset paper`` reproduces the original's RLlib runs (:data:`PAPER_PPO`, :data:`PAPER_PASPO`):
8 envs x 64 steps, torch Adam (betas 0.99, 0.99) with L2 weight decay 1e-3 added to the clipped
gradient (:func:`make_paper_optimizer`; the engine's optimizer is swapped in :func:`build`),
advantages standardised over the whole 512-step batch (:class:`BatchAdvantageUpdate`), the
observation filter (``normalize_obs``) on compute and portfolio, evaluation of 20 stochastic
episodes every 10 updates, the heads' output layer at the default init, degenerate intervals
fixed at ``a_min`` (also ``a_max <= 1e-4``; remaining mass ``<= 1e-5`` -> ``[0, rest]``) and
Beta log-densities clamped at ``>= log 1e-6``. Each is an option whose default is ours.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax.numpy as jnp
import optax

from ppo_jax.config import PPOConfig, check_config
from ppo_jax.update import MinibatchUpdate

METHODS = ("paspo", "dirichlet", "lagrangian", "projection")


@dataclass(frozen=True)
class PASPOPPOConfig(PPOConfig):
    """``PPOConfig`` with PASPO's PPO hyperparameters (Winkel et al. 2024, appendix; reference README)."""

    total_timesteps: int = 150_000  # paper: 150k steps (portfolio: 250k)
    num_envs: int = 64  # parallel envs; num_envs * num_steps = the paper's batch of 512
    num_steps: int = 8  # rollout length per env (64 x 8 = 512)
    update_epochs: int = 10  # paper: 10 epochs
    num_minibatches: int = 8  # paper: minibatch 64 = 512 / 8
    lr: float = 1e-3  # paper: Adam 1e-3
    anneal_lr: bool = False  # original (RLlib): constant learning rate
    optimizer: str = "adam"  # paper: Adam
    adam_eps: float = 1e-8  # PyTorch Adam's default (original)
    max_grad_norm: float = 2.0  # paper: gradient clip 2.0
    gamma: float = 1.0  # paper: gamma 1.0
    gae_lambda: float = 0.95  # paper: GAE 0.95
    clip_eps: float | None = 0.3  # paper: clip 0.3
    clip_value: bool = False  # RLlib clips the value *loss* at 10, not the value; plain MSE here
    ent_coef: float = 0.01  # paper: entropy coefficient 0.01
    vf_coef: float = 0.5  # paper: vf coefficient 0.5
    normalize_advantages: bool = True  # per-minibatch advantage standardisation (the engine's)
    # Options of the original's RLlib runs that the engine's PPOConfig lacks; :func:`build`
    # honours them (see :func:`make_paper_optimizer` and :class:`BatchAdvantageUpdate`).
    adam_b1: float = 0.9  # Adam beta1 (original: 0.99)
    adam_b2: float = 0.999  # Adam beta2 (original: 0.99)
    weight_decay: float = 0.0  # torch-style L2: weight_decay * param added to the clipped gradient (original: 1e-3)
    batch_advantage_norm: bool = False  # standardise advantages over the whole batch, once per update (original: RLlib)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("adam_b1", "adam_b2"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v < 1.0):
                raise ValueError(f"paspo_jax.PASPOPPOConfig.{name} must lie in [0, 1), got {v!r}")
        check_config(self, nonneg=("weight_decay",))
        if self.batch_advantage_norm and self.normalize_advantages:
            raise ValueError(
                "PASPOPPOConfig: batch_advantage_norm=True standardises the whole batch; set "
                "normalize_advantages=False (else the minibatches are standardised again)"
            )

    @property
    def paper_optimizer(self) -> bool:
        """Whether the optimizer differs from the engine's (betas or weight decay)."""
        return (self.adam_b1, self.adam_b2, self.weight_decay) != (0.9, 0.999, 0.0)


def default_ppo_config(**overrides) -> PASPOPPOConfig:
    """The paper's PPO hyperparameters (``PASPOPPOConfig``), with optional overrides."""
    return PASPOPPOConfig(**overrides)


@dataclass(frozen=True)
class PASPOConfig:
    """The policy of ``--algo paspo``: PASPO (defaults: the paper's) or a baseline."""

    method: str = "paspo"  # "paspo", "dirichlet" (no constraint handling), "lagrangian", "projection"
    encoder_hidden: tuple[int, ...] = (32, 32)  # state encoder widths (original: 32-32 ReLU)
    head_hidden: tuple[int, ...] = (32, 32)  # each entity head's hidden widths (original: [32, 32] -> 2)
    critic_hidden: tuple[int, ...] = (32,)  # critic widths (original: Linear(obs, 32)-ReLU-Linear(32, 1))
    head_out_scale: float = 0.01  # init scale of the output layers (heads start near Beta(1,1) / the de-bias fit)
    debias: bool = True  # de-biased initialisation (paper Sec. 4.4); False = the ablation
    debias_samples: int = 100_000  # uniform polytope points for the Beta fit (original: 100,000)
    debias_method: str = "rejection"  # polytope sampler: "rejection" (original) or "hit_and_run"
    debias_seed: int = 0  # key of the de-bias points (fit once per run, shared by seeds)
    debias_se_tol: float = 0.05  # fit on 1,024 points, doubling until every log-concentration's std error <= this (0: all points, the original)
    degenerate_tol: float = 1e-4  # interval width below which an entry is fixed (original: 1e-4)
    u_eps: float = 1e-6  # Beta positions clipped into [u_eps, 1 - u_eps] (samples rounding to 0/1)
    max_log_concentration: float = 10.0  # network outputs clipped to +-this before exp
    interval_margin: float = 0.0  # shrink each interval by this on both sides (float32 LP safety; 0 = exact)
    intervals: str = "stored"  # evaluate: "stored" intervals from act (exact, no LPs) or "recompute"
    bounds: str = "auto"  # interval solver: "auto" (static fast path if available), "lp", "fast"
    lp_maxiter: int = 0  # iteration cap of the general LP; 0 = the solver's default
    lp_warm_start: bool = True  # static constraints on the LP path: warm-start each LP from the Chebyshev centre's bases
    cost_limit: float = 0.0  # lagrangian: allowed mean summed violation per step
    lagrange_init: float = 1.0  # lagrangian: initial multiplier (> 0)
    projection_dist: str = "gaussian"  # projection: proposal "gaussian" or "dirichlet"
    projection_init_std: float = 0.1  # projection (gaussian): initial standard deviation
    projection_maxiter: int = 0  # projection: QP iteration cap; 0 = default
    projection_margin: float = 1e-5  # projection: facets moved inward by this (float32 round-off safety)
    degenerate_value: str = "midpoint"  # value of a degenerate entry: "midpoint" or "a_min" (original)
    degenerate_max: float = 0.0  # > 0: a_max <= this is degenerate too (original: 1e-4); 0 = off
    small_remaining: float = 0.0  # > 0: remaining mass <= this gives [0, remaining] (original: 1e-5); 0 = off
    beta_prob_floor: float = 0.0  # > 0: Beta log-density clamped >= log(this) (original: 1e-6); 0 = off

    def __post_init__(self) -> None:
        check_config(
            self,
            choices={"method": METHODS, "debias_method": ("rejection", "hit_and_run"), "intervals": ("stored", "recompute"),
                     "bounds": ("auto", "lp", "fast"), "projection_dist": ("gaussian", "dirichlet"),
                     "degenerate_value": ("midpoint", "a_min")},
            nonneg_ints=("lp_maxiter", "projection_maxiter", "debias_seed"),
            positive=("head_out_scale", "lagrange_init", "projection_init_std", "max_log_concentration"),
            nonneg=("debias_se_tol", "degenerate_tol", "cost_limit", "interval_margin", "projection_margin", "degenerate_max",
                    "small_remaining", "beta_prob_floor"),
            widths=("encoder_hidden", "head_hidden", "critic_hidden"),
        )
        if not isinstance(self.debias_samples, int) or isinstance(self.debias_samples, bool) or self.debias_samples < 2:
            raise ValueError(f"paspo config debias_samples must be an integer >= 2, got {self.debias_samples!r}")
        if not self.beta_prob_floor < 1:
            raise ValueError(f"paspo config beta_prob_floor must lie in [0, 1), got {self.beta_prob_floor!r}")
        if not 0 < self.u_eps < 0.5:
            raise ValueError(f"paspo config u_eps must lie in (0, 0.5), got {self.u_eps!r}")

    def replace(self, **changes) -> "PASPOConfig":
        return dataclasses.replace(self, **changes)


def make_policy(cfg: PASPOConfig, env, env_params, ppo: PPOConfig | None = None):
    """The policy ``cfg.method`` for an allocation ``env``. ``ppo`` gives the Lagrangian's clip."""
    from paspo_jax.baselines import DirichletPolicy, LagrangianPolicy, ProjectionPolicy
    from paspo_jax.policy import PASPOPolicy

    net = dict(encoder_hidden=cfg.encoder_hidden, critic_hidden=cfg.critic_hidden)
    conc = dict(max_log_concentration=cfg.max_log_concentration)
    if cfg.method == "dirichlet":
        return DirichletPolicy(env, env_params, out_scale=cfg.head_out_scale, **net, **conc)
    if cfg.method == "lagrangian":
        clip = 0.3 if ppo is None else ppo.clip_eps
        return LagrangianPolicy(env, env_params, out_scale=cfg.head_out_scale, cost_limit=cfg.cost_limit,
                                lagrange_init=cfg.lagrange_init, clip_eps=clip, **net, **conc)
    if cfg.method == "projection":
        return ProjectionPolicy(env, env_params, out_scale=cfg.head_out_scale, dist=cfg.projection_dist,
                                init_std=cfg.projection_init_std, maxiter=cfg.projection_maxiter or None,
                                margin=cfg.projection_margin, **net, **conc)
    return PASPOPolicy(
        env,
        env_params,
        head_hidden=cfg.head_hidden,
        head_out_scale=cfg.head_out_scale,
        debias=cfg.debias,
        debias_samples=cfg.debias_samples,
        debias_method=cfg.debias_method,
        debias_seed=cfg.debias_seed,
        debias_se_tol=cfg.debias_se_tol,
        degenerate_tol=cfg.degenerate_tol,
        u_eps=cfg.u_eps,
        max_log_concentration=cfg.max_log_concentration,
        interval_margin=cfg.interval_margin,
        intervals=cfg.intervals,
        bounds=cfg.bounds,
        lp_maxiter=cfg.lp_maxiter or None,
        lp_warm_start=cfg.lp_warm_start,
        degenerate_value=cfg.degenerate_value,
        degenerate_max=cfg.degenerate_max,
        small_remaining=cfg.small_remaining,
        beta_prob_floor=cfg.beta_prob_floor,
        **net,
    )


def make_paper_optimizer(config: PASPOPPOConfig) -> optax.GradientTransformation:
    """The original's optimizer (RLlib torch: ``clip_grad_norm_`` then ``torch.optim.Adam(lr,
    betas, weight_decay)``): per step ``g <- clip(g, max_grad_norm)`` (global norm),
    ``g <- g + weight_decay * param`` (L2 added to the gradient, not decoupled), then Adam with
    ``(adam_b1, adam_b2, adam_eps)`` and the (optionally annealed) learning rate. Equals
    ``ppo_jax.engine.make_optimizer`` for the default betas and ``weight_decay = 0``."""
    if config.optimizer != "adam":
        raise ValueError(f"adam_b1/adam_b2/weight_decay need optimizer='adam', got {config.optimizer!r}")
    steps = config.num_updates * config.update_epochs * config.num_minibatches
    lr = optax.linear_schedule(config.lr, 0.0, steps) if config.anneal_lr else config.lr
    parts = [optax.clip_by_global_norm(config.max_grad_norm)] if config.max_grad_norm > 0 else []
    if config.weight_decay > 0:
        parts.append(optax.add_decayed_weights(config.weight_decay))
    parts.append(optax.adam(lr, b1=config.adam_b1, b2=config.adam_b2, eps=config.adam_eps))
    return optax.chain(*parts)


class BatchAdvantageUpdate(MinibatchUpdate):
    """PPO's minibatch epochs after standardising the advantages over the whole batch once per
    update, as RLlib's PPO (``standardize_fields(batch, ["advantages"])``):
    ``A <- (A - mean(A)) / max(std(A), 1e-4)`` (population std, RLlib's floor). Value targets
    are unchanged. Use with ``normalize_advantages=False``."""

    def __call__(self, engine, ustate, batch, stats, key):
        adv = batch.advantage
        adv = (adv - adv.mean()) / jnp.maximum(adv.std(), 1e-4)
        return super().__call__(engine, ustate, batch._replace(advantage=adv), stats, key)


def build(env_id: str, configs: dict, mesh=None):
    """``train.py``'s builder: ``configs = {"ppo": PPOConfig, "paspo": PASPOConfig}`` -> ``ppo_jax``
    ``PPO`` (a Trainer). Bad ids / configs / non-allocation envs raise ``ValueError``."""
    import envs_jax
    from envs_jax.contracts import LinearConstraints, require
    from ppo_jax.config import unpack_configs
    from ppo_jax.engine import make_train

    ppo, cfg = unpack_configs("paspo", configs, ppo=PPOConfig, paspo=PASPOConfig)
    env, env_params = envs_jax.make(env_id)
    require(env, LinearConstraints, who="--algo paspo (PASPO-* envs)")
    paper = isinstance(ppo, PASPOPPOConfig)
    update = BatchAdvantageUpdate() if paper and ppo.batch_advantage_norm else None
    trainer = make_train(ppo, env, env_params, make_policy(cfg, env, env_params, ppo), mesh, update)
    if paper and ppo.paper_optimizer:
        # The engine's make_optimizer has no betas / weight decay (yet): swap the optimizer
        # before anything is initialised (init and every update read trainer.optimizer).
        trainer.optimizer = make_paper_optimizer(ppo)
    return trainer


# The original's RLlib settings that differ from our defaults (the ``paper`` preset).
PAPER_PPO = dict(
    num_envs=8, num_steps=64,  # 8 envs x 64 steps = 512 (ours: 64 x 8)
    adam_b1=0.99, adam_b2=0.99, weight_decay=1e-3,  # torch Adam(betas=(0.99, 0.99), weight_decay=1e-3)
    normalize_advantages=False, batch_advantage_norm=True,  # RLlib standardises the 512-step batch
    eval_every=10, eval_episodes=20, eval_mode="stochastic",  # evaluation_interval 10, 20 episodes, explore
)
PAPER_PASPO = dict(
    head_out_scale=1.0,  # the heads' output layer at torch's default init
    degenerate_value="a_min", degenerate_max=1e-4, small_remaining=1e-5,  # raw_distribution_funcs / lp_solver
    beta_prob_floor=1e-6,  # StableBeta's clamp
    debias_se_tol=0.0,  # the de-bias fit on all 100,000 points
)


def _paper(env_id: str, overrides) -> dict:
    """The original's runs: budget 150k steps (250k on portfolio), :data:`PAPER_PPO` and
    :data:`PAPER_PASPO`, and RLlib's MeanStdFilter (``normalize_obs``) on every env but synth
    (its run config sets ``observation_filter: NoFilter``)."""
    from ppo_jax.registry import replace_configs

    steps = 250_000 if "portfolio" in env_id else 150_000
    ppo = PASPOPPOConfig(total_timesteps=steps, normalize_obs="synth" not in env_id, **PAPER_PPO)
    return replace_configs({"ppo": ppo, "paspo": PASPOConfig(**PAPER_PASPO)}, overrides)


def _policy_cases():
    from paspo_jax.baselines import DirichletPolicy, LagrangianPolicy, ProjectionPolicy
    from paspo_jax.policy import PASPOPolicy

    small = dict(encoder_hidden=(16,), critic_hidden=(16,))
    return [
        ("paspo", "PASPO-synth-7", lambda env, p: PASPOPolicy(env, p, debias=False, head_hidden=(16,), **small)),
        ("dirichlet", "PASPO-synth-7", lambda env, p: DirichletPolicy(env, p, **small)),
        ("lagrangian", "PASPO-synth-7", lambda env, p: LagrangianPolicy(env, p, cost_limit=0.01, **small)),
        ("projection", "PASPO-synth-7", lambda env, p: ProjectionPolicy(env, p, init_std=0.3, **small)),
    ]


def _register():
    from ppo_jax.registry import Algorithm, register

    configs = {"ppo": PASPOPPOConfig, "paspo": PASPOConfig}
    return register(Algorithm(
        name="paspo",
        summary="PASPO autoregressive Beta policy on a polytope, or its baselines (--method dirichlet|lagrangian|projection)",
        default_env="PASPO-synth-7",
        configs=configs,
        build=build,
        presets={"paper": _paper},
        data_parallel=True,
        policy_cases=_policy_cases,
    ))


ALGORITHM = _register()
