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
        positive = ("total_timesteps", "num_envs", "num_steps", "update_epochs", "num_minibatches")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"config.{name} must be a positive integer, got {value!r}")
        for name in ("lr", "gamma", "gae_lambda", "ent_coef", "vf_coef", "adam_eps", "obs_clip", "value_loss_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"config.{name} must be a finite non-negative number, got {value!r}")
        if self.lr <= 0:
            raise ValueError(f"config.lr must be positive, got {self.lr!r}")
        if not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError("config.gamma and config.gae_lambda must lie in [0, 1]")
        for name in ("eval_every", "eval_max_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"config.{name} must be a non-negative integer, got {value!r}")
        if not isinstance(self.eval_episodes, int) or isinstance(self.eval_episodes, bool) or self.eval_episodes < 1:
            raise ValueError(f"config.eval_episodes must be a positive integer, got {self.eval_episodes!r}")
        if self.eval_mode not in ("stochastic", "greedy"):
            raise ValueError(f"config.eval_mode must be 'stochastic' or 'greedy', got {self.eval_mode!r}")
        if self.eval_fixed_starts not in ("auto", "on", "off"):
            raise ValueError(f"config.eval_fixed_starts must be 'auto', 'on' or 'off', got {self.eval_fixed_starts!r}")
        if any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in self.cost_critic_hidden):
            raise ValueError(f"config.cost_critic_hidden must be positive integer widths, got {self.cost_critic_hidden!r}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"config.optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
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
