"""PPO / A2C configuration: one frozen dataclass, defaults from PureJaxRL's CartPole PPO."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of the engine. A2C is ``PPOConfig.a2c(...)`` (same loop, no clipping).

    Batch sizes: one update collects ``num_envs * num_steps`` transitions, runs
    ``update_epochs`` passes over them in ``num_minibatches`` shuffled minibatches.
    """

    total_timesteps: int = 500_000  # environment steps summed over all envs
    num_envs: int = 4  # parallel environments (vmapped, split across devices)
    num_steps: int = 128  # rollout length per env per update
    update_epochs: int = 4  # passes over each rollout
    num_minibatches: int = 4  # minibatches per epoch; must divide num_envs * num_steps
    lr: float = 2.5e-4  # learning rate
    anneal_lr: bool = True  # decay the learning rate linearly to 0 over training
    optimizer: str = "adam"  # "adam" or "rmsprop" (TF-style epsilon inside the sqrt, as SB3's A2C)
    adam_eps: float = 1e-5  # epsilon of Adam / RMSprop
    rmsprop_decay: float = 0.99  # RMSprop decay (alpha)
    max_grad_norm: float = 0.5  # global gradient-norm clip; <= 0 disables
    gamma: float = 0.99  # discount
    gae_lambda: float = 0.95  # GAE lambda
    clip_eps: float | None = 0.2  # PPO ratio clip; None disables (A2C)
    clip_value: bool = True  # clip the value update to +-clip_eps around the old value
    ent_coef: float = 0.01  # entropy bonus coefficient
    vf_coef: float = 0.5  # value loss coefficient
    value_loss_scale: float = 0.5  # value loss = value_loss_scale * MSE (0.5: PureJaxRL/CleanRL; SB3's A2C/PPO: 1.0)
    normalize_advantages: bool = True  # per-minibatch advantage normalisation
    normalize_obs: bool = False  # running mean/std observation normalisation
    scale_rewards: bool = False  # divide rewards by the running std of the discounted return
    bootstrap_truncated: bool = True  # on time-limit truncation, add gamma * V(final obs) to the reward
    obs_clip: float = 10.0  # clip normalised observations / scaled rewards to +-obs_clip
    violation_tol: float = 1e-6  # info["max_violation"] (else info["violation"]) above this counts as violating
    cost_critic: bool = False  # learn a cost critic (cost GAE) even if neither the policy nor the update rule asks
    cost_critic_hidden: tuple[int, ...] = (64, 64)  # widths of the cost critic's hidden layers
    eval_every: int = 0  # evaluate every this many updates (0: never)
    eval_episodes: int = 20  # episodes per evaluation, one per fresh env instance
    eval_mode: str = "stochastic"  # "stochastic" (policy.act) or "greedy" (policy.greedy)
    eval_max_steps: int = 0  # step cap of an evaluation episode; 0 = env_params.max_steps_in_episode
    eval_fixed_starts: str = "auto"  # "auto": env.reset_to(key, params, i) where the env offers it; "on"; "off"

    def __post_init__(self) -> None:
        check_config(
            self,
            choices={"eval_mode": ("stochastic", "greedy"), "eval_fixed_starts": ("auto", "on", "off"),
                     "optimizer": ("adam", "rmsprop")},
            positive_ints=("total_timesteps", "num_envs", "num_steps", "update_epochs", "num_minibatches", "eval_episodes"),
            nonneg_ints=("eval_every", "eval_max_steps"),
            positive=("lr",),
            nonneg=("gamma", "gae_lambda", "ent_coef", "vf_coef", "adam_eps", "obs_clip", "value_loss_scale"),
            widths=("cost_critic_hidden",),
        )
        if not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError("config.gamma and config.gae_lambda must lie in [0, 1]")
        if self.clip_eps is not None and not self.clip_eps > 0:
            raise ValueError(f"config.clip_eps must be positive or None, got {self.clip_eps!r}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps = {self.batch_size} is not divisible by "
                f"num_minibatches = {self.num_minibatches}"
            )
        if self.num_updates < 1:
            raise ValueError(
                f"total_timesteps = {self.total_timesteps} is less than one update of "
                f"num_envs * num_steps = {self.batch_size} steps"
            )

    @property
    def batch_size(self) -> int:
        """Transitions per update."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        """Updates in the budget (``total_timesteps // batch_size``, the remainder is dropped)."""
        return self.total_timesteps // self.batch_size

    def replace(self, **changes) -> "PPOConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def a2c(cls, **overrides) -> "PPOConfig":
        """A2C as SB3/IAR's original runs it: one epoch, one minibatch, no clipping, RMSprop,
        no advantage normalisation, value loss unclipped, 5-step rollouts."""
        defaults = dict(
            update_epochs=1,
            num_minibatches=1,
            clip_eps=None,
            clip_value=False,
            optimizer="rmsprop",
            lr=7e-4,
            num_steps=5,
            gae_lambda=1.0,
            normalize_advantages=False,
            anneal_lr=False,
            ent_coef=0.0,
        )
        return cls(**{**defaults, **overrides})


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_config(
    cfg,
    *,
    choices: dict[str, tuple] | None = None,
    positive_ints: tuple[str, ...] = (),
    nonneg_ints: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    nonneg: tuple[str, ...] = (),
    widths: tuple[str, ...] = (),
) -> None:
    """The field checks every config class of the project makes, in one place: one
    ``ValueError`` naming the first bad field of ``cfg`` (a dataclass instance).

    ``choices``: field -> allowed values; ``positive_ints`` (>= 1) / ``nonneg_ints`` (>= 0):
    integers, not bools; ``positive`` (> 0) / ``nonneg`` (>= 0): finite numbers; ``widths``:
    non-empty tuples of positive integers (hidden-layer sizes).

    >>> check_config(PPOConfig(), positive_ints=("num_envs",))
    """
    name = f"{type(cfg).__module__.split('.')[0]}.{type(cfg).__name__}"  # e.g. mu_jax.Config
    for field, allowed in (choices or {}).items():
        value = getattr(cfg, field)
        if value not in allowed:
            raise ValueError(f"unknown {field} {value!r} for {name}; expected one of {tuple(allowed)}")
    for fields, ok, what in (
        (positive_ints, lambda v: _is_int(v) and v >= 1, "a positive integer"),
        (nonneg_ints, lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
        (positive, lambda v: isinstance(v, (int, float)) and math.isfinite(v) and v > 0, "a finite positive number"),
        (nonneg, lambda v: isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, "a finite non-negative number"),
        (widths, lambda v: isinstance(v, tuple) and len(v) > 0 and all(_is_int(w) and w >= 1 for w in v),
         "a non-empty tuple of positive integer widths"),
    ):
        for field in fields:
            value = getattr(cfg, field)
            if not ok(value):
                raise ValueError(f"{name}.{field} must be {what}, got {value!r}")


def unpack_configs(algo: str, configs: dict, **expected: type) -> tuple:
    """``configs[name]`` for each ``name=Class`` of ``expected``, in order, after checking that
    each is present and an instance of its class: one ``ValueError`` naming what is wrong.

    >>> ppo, paspo = unpack_configs("paspo", configs, ppo=PPOConfig, paspo=PASPOConfig)
    """
    missing = set(expected) - set(configs)
    if missing:
        raise ValueError(f"{algo} build needs configs {sorted(missing)}")
    for name, cls in expected.items():
        if not isinstance(configs[name], cls):
            raise ValueError(f"configs[{name!r}] must be a {cls.__name__}, got {type(configs[name]).__name__}")
    return tuple(configs[name] for name in expected)
