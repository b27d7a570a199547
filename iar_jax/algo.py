"""Configs and ``build`` for ``train.py --algo iar`` (IAR and its baselines on the PPO engine).

    from iar_jax.algo import IARConfig, IARA2CConfig, build
    trainer = build("ERA-v3", {"ppo": IARA2CConfig(), "iar": IARConfig()}, mesh=None)
    state, metrics = jax.jit(trainer)(jax.random.PRNGKey(0))

``configs["ppo"]`` is any ``PPOConfig``; ``IARA2CConfig`` is a ``PPOConfig`` whose defaults
are IAR's original A2C settings (so ``--algo iar`` trains as the paper by default; PPO mode is
``--clip-eps 0.2 --update-epochs 4 ...`` or any other ``PPOConfig``). ``configs["iar"]`` is
an ``IARConfig``; its ``policy`` field picks IAR or a baseline (``mask``, ``factored``,
``ar``). No field name of ``IARConfig`` is a field of ``PPOConfig``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ppo_jax.config import PPOConfig, check_config

POLICIES = ("iar", "mask", "factored", "ar")


@dataclass(frozen=True)
class IARA2CConfig(PPOConfig):
    """``PPOConfig`` with IAR's original A2C settings (SB3 A2C; reference README) as defaults."""

    total_timesteps: int = 700_000  # ERA budget of the paper (CartPole 5e5, Acrobot 1e6)
    num_envs: int = 64  # original: 64 envs (CartPole 8)
    num_steps: int = 1  # original: 1 step per env per update
    update_epochs: int = 1  # A2C: one pass
    num_minibatches: int = 1  # A2C: the whole rollout
    lr: float = 3e-4  # original: RMSprop 3e-4
    anneal_lr: bool = False  # SB3 A2C: constant learning rate
    optimizer: str = "rmsprop"  # SB3 A2C's RMSpropTFLike
    adam_eps: float = 1e-5  # RMSprop epsilon
    max_grad_norm: float = 0.5  # original
    gamma: float = 0.99  # original (Acrobot 0.995)
    gae_lambda: float = 1.0  # original
    clip_eps: float | None = None  # A2C: no ratio clipping (loss -A log pi)
    clip_value: bool = False  # A2C: plain value loss
    ent_coef: float = 0.0  # SB3 A2C default
    vf_coef: float = 0.5  # original
    normalize_advantages: bool = False  # SB3 A2C default


@dataclass(frozen=True)
class IARConfig:
    """The policy of ``--algo iar``: IAR's flow policy or a baseline. Defaults: the paper's
    flow (4 couplings, hidden 128, context 64, N = 4) with the original's posterior size and
    S = 32 -> 128, the consistent c = 1/l on a random subset of M = 4 valid candidates, at
    about 24 MFLOP per ERA-v5 env step (issue 21; ``benchmarks/RESULTS_iar.md``).
    ``preset("paper")``: the original code's options (``PRESETS``). ``elbo_step``: the
    posterior's ELBO as a term of the policy loss on the rollout's states (``"loss"``) or as
    the original's separate step on a buffer of observations (``"buffer"``,
    ``iar_jax.elbo_step``; the ``elbo_buffer_size`` ... ``elbo_max_grad_norm`` fields)."""

    policy: str = "iar"  # "iar" (argmax flow), "mask" (MASK), "factored" (+IAR), "ar" (+IAR)
    num_candidates: int = 32  # S: candidates used per state for rejection (original ERA runs: 32, doubling)
    max_candidates: int = 128  # S_max: drawn per state; S doubles up to it where none is valid (original: 128); 0 = S
    rejection_coef: str = "ratio"  # "ratio": c = 1/l (consistent); "paper": c = S/l^2 (Lemma 1 as printed, original)
    rejection_subset: int = 4  # M: valid candidates in the correction term (consistent); 0 = all, up to S (original)
    rejection: str = "auto"  # "auto": on iff the env has constraints (is_valid); "on"; "off"
    num_posterior_samples: int = 4  # N: posterior samples per log-prob estimate (original: 4; CartPole 1)
    flow_layers: int = 4  # conditional affine coupling layers of the generator (paper: 4)
    flow_hidden: int = 128  # hidden width of coupling / posterior networks (paper: 128)
    context_dim: int = 64  # state context size (paper: 64)
    encoder_hidden: int = 128  # hidden width of the obs -> context encoder (baselines' hidden width too)
    posterior_layers: int = 2  # coupling layers after the posterior's Gaussian (original: 2)
    posterior_hidden: int = 64  # hidden width of the posterior's couplings (0: flow_hidden; original: 64)
    posterior_conditional: bool = False  # posterior couplings see the (state, action) context (original: no)
    split_context: bool = True  # couplings' context term once per state / action (same function, less compute)
    lazy_candidates: bool = True  # map candidates beyond S only while a state needs them (same candidates)
    pg_posterior: bool = False  # the policy gradient also trains the posterior (original: one optimizer, yes)
    encoder: str = "mlp"  # obs -> context: "mlp" (flat obs, separate critic), "gcn" (original's, ERA; shared) or "cnn" (NatureCNN, image envs; shared)
    elbo_grad_samples: int = 4  # samples of the ELBO term that carry gradients, the rest forward only (0: all)
    alpha_mode: str = "adaptive"  # sandwich weight: "static", "trainable" (scalar) or "adaptive" (network)
    alpha_init: float = 0.5  # initial (static: fixed) alpha
    alpha_objective: str = "calibration"  # "calibration": fit to a many-sample estimate; "policy": PG loss
    alpha_target_samples: int = 16  # posterior samples of the calibration target (and of the ELBO term then)
    alpha_coef: float = 1.0  # weight of alpha's calibration loss
    elbo_coef: float = 1.0  # weight of the posterior's ELBO loss (in the policy loss; unused with elbo_step="buffer")
    elbo_step: str = "loss"  # "loss": ELBO term in the policy loss (ours); "buffer": the original's own step (iar_jax.elbo_step)
    elbo_buffer_size: int = 2048  # elbo_step="buffer": FIFO buffer of observations; no training until it is full
    elbo_batch_size: int = 256  # elbo_step="buffer": states per ELBO step, drawn without replacement
    elbo_pretrain_iters: int = 10  # elbo_step="buffer": ELBO steps when the buffer fills
    elbo_step_samples: int = 1  # elbo_step="buffer": posterior samples per state
    elbo_step_params: str = "flow"  # elbo_step="buffer": "flow" (generator + posterior, original) or "posterior" (elbo_Q)
    elbo_max_grad_norm: float = 1.0  # elbo_step="buffer": gradient-norm clip of the ELBO step (original: 1.0)
    elbo_pairs: str = "generator"  # ELBO on "generator" samples (original) or "rollout" actions
    elbo_trains_generator: bool = True  # the ELBO term also pulls the generator towards the posterior
    common_noise: bool = True  # same posterior noise in act and evaluate (PPO ratio exactly 1 at start)
    behaviour_log_prob: str = "auto"  # "auto": compute in act only with PPO clipping; "on"; "off"
    critic_hidden: tuple[int, ...] = (64, 64)  # critic MLP widths

    def __post_init__(self) -> None:
        check_config(
            self,
            choices={
                "policy": POLICIES, "rejection_coef": ("ratio", "paper"), "rejection": ("auto", "on", "off"),
                "alpha_mode": ("static", "trainable", "adaptive"), "alpha_objective": ("calibration", "policy", "none"),
                "elbo_pairs": ("generator", "rollout"), "behaviour_log_prob": ("auto", "on", "off"),
                "encoder": ("mlp", "gcn", "cnn"), "elbo_step": ("loss", "buffer"), "elbo_step_params": ("flow", "posterior"),
            },
            positive_ints=("num_candidates", "num_posterior_samples", "flow_hidden", "context_dim", "encoder_hidden",
                           "alpha_target_samples", "elbo_buffer_size", "elbo_batch_size", "elbo_step_samples"),
            nonneg_ints=("rejection_subset", "max_candidates", "flow_layers", "posterior_layers", "posterior_hidden",
                         "elbo_grad_samples", "elbo_pretrain_iters"),
            nonneg=("alpha_coef", "elbo_coef", "elbo_max_grad_norm"),
            widths=("critic_hidden",),
        )
        if self.max_candidates and self.max_candidates < self.num_candidates:
            raise ValueError(
                f"iar config max_candidates ({self.max_candidates}) must be >= num_candidates "
                f"({self.num_candidates}) or 0 (= num_candidates)"
            )
        if not 0.0 <= self.alpha_init <= 1.0:
            raise ValueError(f"iar config alpha_init must lie in [0, 1], got {self.alpha_init}")
        if self.elbo_batch_size > self.elbo_buffer_size:
            raise ValueError(
                f"iar config elbo_batch_size ({self.elbo_batch_size}) must be <= elbo_buffer_size ({self.elbo_buffer_size})"
            )

    def replace(self, **changes) -> "IARConfig":
        return dataclasses.replace(self, **changes)


def make_policy(cfg: IARConfig, env, env_params, ppo: PPOConfig | None = None):
    """The policy ``cfg.policy`` for ``env``. ``ppo`` decides ``behaviour_log_prob="auto"``:
    computed in ``act`` only when the engine clips the ratio (PPO); A2C never reads it."""
    from iar_jax.baselines import ARPolicy, FactoredPolicy, MaskPolicy
    from iar_jax.policy import IARPolicy

    if cfg.policy == "mask":
        return MaskPolicy(
            env, env_params, hidden=cfg.encoder_hidden, context_dim=cfg.context_dim,
            critic_hidden=cfg.critic_hidden, masking=cfg.rejection, encoder=cfg.encoder,
        )
    if cfg.behaviour_log_prob == "auto":
        behaviour = ppo is None or ppo.clip_eps is not None
    else:
        behaviour = cfg.behaviour_log_prob == "on"
    rejection = dict(
        num_candidates=cfg.num_candidates,
        max_candidates=cfg.max_candidates,
        rejection_coef=cfg.rejection_coef,
        rejection_subset=cfg.rejection_subset,
        rejection=cfg.rejection,
        critic_hidden=cfg.critic_hidden,
        behaviour_log_prob=behaviour,
        lazy_candidates=cfg.lazy_candidates,
    )
    if cfg.policy == "factored":
        return FactoredPolicy(
            env, env_params, hidden=cfg.encoder_hidden, context_dim=cfg.context_dim, encoder=cfg.encoder, **rejection
        )
    if cfg.policy == "ar":
        return ARPolicy(
            env, env_params, hidden=cfg.encoder_hidden, context_dim=cfg.context_dim, encoder=cfg.encoder, **rejection
        )
    return IARPolicy(
        env,
        env_params,
        num_posterior_samples=cfg.num_posterior_samples,
        flow_layers=cfg.flow_layers,
        flow_hidden=cfg.flow_hidden,
        context_dim=cfg.context_dim,
        encoder_hidden=cfg.encoder_hidden,
        posterior_layers=cfg.posterior_layers,
        posterior_hidden=cfg.posterior_hidden,
        posterior_conditional=cfg.posterior_conditional,
        split_context=cfg.split_context,
        pg_posterior=cfg.pg_posterior,
        elbo_grad_samples=cfg.elbo_grad_samples,
        encoder=cfg.encoder,
        alpha_mode=cfg.alpha_mode,
        alpha_init=cfg.alpha_init,
        alpha_objective=cfg.alpha_objective,
        alpha_target_samples=cfg.alpha_target_samples,
        alpha_coef=cfg.alpha_coef,
        elbo_coef=0.0 if cfg.elbo_step == "buffer" else cfg.elbo_coef,  # the separate step replaces the term
        elbo_pairs=cfg.elbo_pairs,
        elbo_trains_generator=cfg.elbo_trains_generator,
        common_noise=cfg.common_noise,
        **rejection,
    )


def build(env_id: str, configs: dict, mesh=None):
    """``train.py``'s builder: ``configs = {"ppo": PPOConfig, "iar": IARConfig}`` -> ``ppo_jax``
    ``PPO`` (a Trainer). Bad ids / configs raise ``ValueError``."""
    import envs_jax
    from ppo_jax.config import unpack_configs
    from ppo_jax.engine import make_train

    ppo, cfg = unpack_configs("iar", configs, ppo=PPOConfig, iar=IARConfig)
    env, env_params = envs_jax.make(env_id)
    policy = make_policy(cfg, env, env_params, ppo)
    return make_train(ppo, env, env_params, policy, mesh, make_update(cfg, ppo, policy))


def make_update(cfg: IARConfig, ppo: PPOConfig, policy):
    """The engine's update rule: ``None`` (the engine's A2C / PPO step) or, for the flow policy
    with ``elbo_step="buffer"``, ``iar_jax.elbo_step.ELBOStep`` (the original's separate ELBO
    step, with the A2C optimizer's settings: lr, RMSprop decay and epsilon). The baselines
    have no flow: the option does nothing for them."""
    if cfg.elbo_step != "buffer" or cfg.policy != "iar":
        return None
    from iar_jax.elbo_step import ELBOStep

    if ppo.optimizer != "rmsprop":
        raise ValueError(f"elbo_step='buffer' uses the A2C optimizer's RMSprop settings; got optimizer={ppo.optimizer!r}")
    return ELBOStep(
        policy, buffer_size=cfg.elbo_buffer_size, batch_size=cfg.elbo_batch_size, num_samples=cfg.elbo_step_samples,
        pretrain_iters=cfg.elbo_pretrain_iters, params=cfg.elbo_step_params, lr=ppo.lr, decay=ppo.rmsprop_decay,
        eps=ppo.adam_eps, max_grad_norm=cfg.elbo_max_grad_norm,
    )


# Presets: overrides of the ``PPOConfig`` (``IARA2CConfig``) and ``IARConfig`` defaults, by name.
# ``preset(name)`` returns the configs; train.py can apply them before command-line overrides.
PRESETS: dict[str, dict[str, dict]] = {
    # the library defaults (the paper's model; the consistent estimator at <= 30 MFLOP / env step)
    # on a budget that finishes in minutes: 1e5 steps (the paper's ERA budget, 7e5, is "paper")
    "default": {"ppo": {"total_timesteps": 100_000}, "iar": {}},
    # the original code's (cameron-chen/flow-iar, ERA runs of scripts.sh) model and protocol, as
    # far as they live in iar_jax: S = 32 doubling to 128 (--min_n_samples_inv_rej 32),
    # c = S / l^2 on every valid candidate, a posterior of hidden 64 with unconditional
    # couplings (posterior_type flow), one optimizer over all parameters (the policy gradient
    # reaches the posterior), the adaptive alpha network never optimised, and the ELBO step
    # apart from the A2C loss (elbo_step="buffer", iar_jax.elbo_step: its own RMSprop with
    # clip 1.0 over the generator and posterior, on 256 states of a FIFO buffer of 2,048
    # observations, 1 posterior sample, nothing trained before the buffer is full, then 10
    # pre-training steps). Not reproduced: the encoder's BatchNorm (iar_jax.graph_encoder).
    # SB3's value loss vf_coef * MSE is value_loss_scale = 1.0. The graph encoder
    # (encoder="gcn", ERA only) shares its features with the critic, as the original.
    # elbo_grad_samples=1 applies only if elbo_step is set back to "loss".
    "paper": {
        "ppo": {"value_loss_scale": 1.0},
        "iar": dict(
            num_candidates=32,
            max_candidates=128,
            rejection_coef="paper",
            rejection_subset=0,
            posterior_hidden=64,
            posterior_conditional=False,
            pg_posterior=True,
            alpha_mode="adaptive",
            alpha_objective="none",
            elbo_grad_samples=1,
            encoder="gcn",
            elbo_step="buffer",
            elbo_buffer_size=2048,
            elbo_batch_size=256,
            elbo_pretrain_iters=10,
            elbo_step_samples=1,
            elbo_step_params="flow",
            elbo_max_grad_norm=1.0,
        ),
    },
}


def preset(name: str) -> dict:
    """``{"ppo": IARA2CConfig, "iar": IARConfig}`` of preset ``name`` (``PRESETS``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown iar preset {name!r}; choose from {sorted(PRESETS)}")
    p = PRESETS[name]
    return {"ppo": dataclasses.replace(IARA2CConfig(), **p["ppo"]), "iar": IARConfig(**p["iar"])}


def _preset(name: str):
    def make(env_id: str, overrides) -> dict:
        from ppo_jax.registry import replace_configs

        return replace_configs(preset(name), overrides)

    return make


def _policy_cases():
    from iar_jax.baselines import ARPolicy, FactoredPolicy, MaskPolicy
    from iar_jax.policy import IARPolicy

    small = dict(critic_hidden=(16,), num_candidates=4)
    return [
        ("iar", "ERA-v1", lambda env, p: IARPolicy(
            env, p, flow_hidden=16, encoder_hidden=16, context_dim=8, flow_layers=1, posterior_layers=1,
            num_posterior_samples=2, alpha_target_samples=4, **small)),
        ("mask", "ERA-v1", lambda env, p: MaskPolicy(env, p, hidden=16, context_dim=8, critic_hidden=(16,))),
        ("mask-gcn", "ERA-v1", lambda env, p: MaskPolicy(env, p, context_dim=8, encoder="gcn")),
        ("factored", "ERA-v1", lambda env, p: FactoredPolicy(env, p, hidden=16, context_dim=8, **small)),
        ("ar", "ERA-v1", lambda env, p: ARPolicy(env, p, hidden=16, context_dim=8, **small)),
        ("factored-gcn", "ERA-v1", lambda env, p: FactoredPolicy(env, p, context_dim=8, encoder="gcn", **small)),
        ("ar-gcn", "ERA-v1", lambda env, p: ARPolicy(env, p, hidden=16, context_dim=8, encoder="gcn", **small)),
        ("iar-cnn", "Pistonball-image-v1", lambda env, p: IARPolicy(
            env, p, flow_hidden=16, context_dim=8, flow_layers=1, posterior_layers=1, encoder="cnn",
            num_candidates=8, num_posterior_samples=2, alpha_target_samples=2)),
        ("mask-cnn", "Pistonball-image-v1", lambda env, p: MaskPolicy(env, p, context_dim=8, encoder="cnn")),
    ]


def _register():
    from ppo_jax.registry import Algorithm, register

    return register(Algorithm(
        name="iar",
        summary="IAR argmax-flow policy with invalid-action rejection, or its baselines (--policy mask|factored|ar)",
        default_env="ERA-v1",
        configs={"ppo": IARA2CConfig, "iar": IARConfig},
        build=build,
        presets={name: _preset(name) for name in PRESETS},
        data_parallel=True,
        policy_cases=_policy_cases,
    ))


ALGORITHM = _register()
