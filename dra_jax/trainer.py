"""DRA as a ``ppo_jax.trainer.Trainer``: ``make_trainer(Config(), "DRA-maze")``.

One update = one trial (a learning episode, ``num_rollouts`` gradient rollouts, one sigma
step; see ``agent.py``). ``run(state, n)`` scans ``n`` trials and returns per-trial metrics:

* ``return``: mean undiscounted return of the trial's on-policy gradient rollouts;
* ``cost``: ``lambda * sum_{s,a} KL`` (storage cost of the table);
* ``access_cost``: mean over rollouts of ``lambda * sum_t KL(s_t)`` (Eq. 8's cost);
* ``objective``: the chosen objective's estimate (``objectives.trajectory_value``);
* ``objective_dra``: ``return - cost``, the original objective, whatever is optimised;
* ``entropy``, ``episode_length``, ``learn_return``, ``sigma_mean``, ``beta``, ``trial``.

Hyperparameters live in the state as arrays (``agent.Hyper``: lambda, beta, learning rates,
sigma0, sigma_base, and the objective, baseline and allocation as indices), so a sweep
over any of them is one vmapped call::

    tr = make_trainer(Config(num_trials=2000), "DRA-maze")
    lams = jnp.array([0.01, 0.1, 1.0])
    states = jax.vmap(lambda k, l: tr.init_with(k, lmbda=l))(keys, lams)
    states, metrics = jax.jit(jax.vmap(lambda s: tr.run(s, 2000)))(states)

Presets (``PRESETS[name](env_id, **overrides) -> Config``, or ``preset_config(name, env_id)``):

* ``"default"`` (``default_config``): maze: the original's ``choiceEntropy_fig1b.py`` (1e4
  trials, lr_q 0.2; the maze switch at 3000); MountainCar: ``dynamicResourceAllocator.py``
  run for 1e4 trials; Huys: our settings (beta 0.1, lr_sigma 0.05, sigma0 50, baseline 'A',
  every memory learned, 5000 trials).
* ``"paper"`` (``paper_config``): the settings of the original's runs behind the published
  numbers. Maze: ``convergence_fig1c.py`` (5000 trials, lr_q 0.1; its protocol evaluates
  100 fresh episodes every 100 trials: ``run_evaluated``; it never switches the maze, which
  the benchmark does with ``make_maze(switch_trial=10**9)``). MountainCar:
  ``dynamicResourceAllocator.py`` as run there (5000 episodes, so beta_t = 1.5**(t/1000)
  rises to 1.5**5 = 7.6). Huys: ``train_fig3.py`` (beta 10, lambda 1, lr_q = lr_sigma = 0.1,
  gamma 1, sigma0 = sigma_base = 100, sigma in [1, 100], baseline 'R', 6e4 trials; the
  last move's memories fixed at the known rewards with sigma 1 and free of cost
  (``known_memories``); gradient rollouts start from the learning episode's start state
  (``rollout_start='learning'``)). The original's 5 restarts are the benchmark's seeds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dra_jax import agent as agent_lib
from dra_jax import objectives
from ppo_jax.config import check_config
from envs_jax.contracts import TrialSwitchParams


@dataclass(frozen=True)
class Config:
    """Defaults: the original's maze settings (``choiceEntropy_fig1b.py``; paper Fig. 1)."""

    num_trials: int = 10_000  # budget in trials (episodes), env-independent; orig 1e4
    num_rollouts: int = 10  # trajectories averaged per sigma gradient (orig N_traj)
    objective: str = "dra"  # "dra" (orig) | "elbo_access" (note Eq. 8) | "elbo_storage" (note Eq. 10)
    baseline: str = "A"  # score-function signal: "A" advantage, "Q" value, "R" return (orig default A)
    allocation: str = "flexible"  # "flexible": sigma per (s,a); "equal": one shared sigma (baseline)
    beta: float = 10.0  # inverse temperature of soft Thompson sampling
    beta_schedule: str = "constant"  # "constant" | "slow": beta_t = min(1.5**(t/1000), beta) (orig MountainCar)
    lmbda: float = 0.1  # price of precision lambda
    gamma: float = 0.9  # discount of the expected-SARSA target
    lr_q: float = 0.2  # learning rate of q
    lr_sigma: float = 0.1  # learning rate of sigma
    sigma0: float = 3.0  # initial memory std
    sigma_base: float = 5.0  # std of the cost-free base memory
    sigma_min: float = 0.01  # lower clip of sigma (orig)
    sigma_max: float = 100.0  # upper clip of sigma (orig maze 100, MountainCar 10)
    q_init_scale: float = 0.0  # q ~ U(-s, s) at init (orig maze 0, MountainCar 1)
    horizon_T: float = 0.0  # note Eq. 10's fixed T ("elbo_storage"); 0 = the task's horizon (env.dra_horizon)
    max_steps: int = 1000  # cap on an episode's steps (orig maze: none; a jitted loop needs one)
    snapshot_trial: int = -1  # (q, sigma) kept for the "before" picture; -1: env switch - 1, else mid-run
    rollout_start: str = "fresh"  # gradient rollouts start: "fresh" start states | "learning": the learning episode's (orig Huys)
    known_memories: bool = False  # hold the env's known memories fixed, free of cost (orig Huys: the last move's)

    def __post_init__(self):
        objectives.check_names(self.objective, self.baseline)
        check_config(
            self,
            choices={"allocation": ("flexible", "equal"), "beta_schedule": ("constant", "slow"),
                     "rollout_start": ("fresh", "learning")},
            positive_ints=("num_trials", "num_rollouts", "max_steps"),
            positive=("sigma0", "sigma_base", "sigma_min", "beta"),
        )
        if self.sigma_max < self.sigma_min:
            raise ValueError(f"sigma_max ({self.sigma_max}) < sigma_min ({self.sigma_min})")
        if not self.horizon_T >= 0:
            raise ValueError(f"horizon_T must be >= 0 (0: the task's horizon), got {self.horizon_T}")


def default_config(env_id: str, **overrides: Any) -> Config:
    """The original's settings per task (maze: ``Config()``; MountainCar: the orig's
    ``dynamicResourceAllocator.py``; Huys as an RL task has no original settings: ours)."""
    presets = {
        "DRA-maze": {},
        "DRA-mountaincar": dict(
            gamma=1.0, sigma0=1.0, sigma_base=5.0, sigma_max=10.0, q_init_scale=1.0,
            beta_schedule="slow", max_steps=200,
        ),
        "DRA-huys": dict(
            num_trials=5000, beta=0.1, lmbda=1.0, gamma=1.0, lr_sigma=0.05, sigma0=50.0,
            sigma_base=100.0, sigma_min=1.0, sigma_max=100.0, max_steps=3,
        ),
    }
    return dataclasses.replace(Config(), **{**presets.get(env_id, {}), **overrides})


def paper_config(env_id: str, **overrides: Any) -> Config:
    """The settings of the original's runs behind the published numbers (module docstring,
    "Presets"): maze ``convergence_fig1c.py``, MountainCar ``dynamicResourceAllocator.py``
    (5000 episodes), Huys ``train_fig3.py``."""
    presets = {
        "DRA-maze": dict(num_trials=5000, lr_q=0.1),
        "DRA-mountaincar": dict(num_trials=5000),
        "DRA-huys": dict(
            num_trials=60_000, beta=10.0, lmbda=1.0, gamma=1.0, lr_q=0.1, lr_sigma=0.1, sigma0=100.0,
            sigma_base=100.0, sigma_min=1.0, sigma_max=100.0, baseline="R", max_steps=3,
            known_memories=True, rollout_start="learning",
        ),
    }
    return default_config(env_id, **{**presets.get(env_id, {}), **overrides})


PRESETS = {"default": default_config, "paper": paper_config}


def preset_config(name: str, env_id: str, **overrides: Any) -> Config:
    """``PRESETS[name](env_id, **overrides)``, with one clear error for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown DRA preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name](env_id, **overrides)


@struct.dataclass
class TrainState:
    key: jax.Array
    trial: jax.Array  # int32, trials done
    agent: agent_lib.AgentState
    hyper: agent_lib.Hyper
    snapshot: agent_lib.AgentState  # (q, sigma) at the end of trial ``snapshot_trial``


class DRATrainer:
    """Implements the ``ppo_jax.trainer.Trainer`` protocol for tabular DRA.

    ``spec.horizon_T`` is note Eq. 10's fixed T: ``Config.horizon_T`` if > 0, else the task's
    horizon (``task.horizon``: ``env.dra_horizon``).  The storage cost (``cost``) leaves out
    the task's known memories (``Config.known_memories``)."""

    def __init__(self, config: Config, env_id: str, env=None, env_params=None):
        if env is None:
            from envs_jax import registry

            env, env_params = registry.make(env_id)
        self.config = config
        self.env_id = env_id
        self.task = agent_lib.tabular_task(env, env_params, known_memories=config.known_memories)
        horizon_T = config.horizon_T if config.horizon_T > 0 else self.task.horizon
        if not horizon_T > 0:
            raise ValueError(f"environment {env_id!r} defines no horizon (dra_horizon or max_steps_in_episode); "
                             "set Config.horizon_T (> 0), the fixed T of note Eq. 10")
        self.spec = agent_lib.Spec(
            num_rollouts=config.num_rollouts,
            sigma_min=config.sigma_min,
            sigma_max=config.sigma_max,
            horizon_T=float(horizon_T),
            max_steps=config.max_steps,
            same_start=config.rollout_start == "learning",
        )
        self.num_updates = int(config.num_trials)
        self.steps_per_update = 1  # one trial per update: the x-axis counts trials
        if config.snapshot_trial >= 0:
            self.snapshot_trial = int(config.snapshot_trial)
        elif isinstance(env_params, TrialSwitchParams):
            self.snapshot_trial = int(env_params.switch_trial) - 1
        else:
            self.snapshot_trial = max(self.num_updates // 2 - 1, 0)

    # ---------------------------------------------------------------------------------
    def default_hyper(self, **overrides) -> agent_lib.Hyper:
        c = self.config
        vals = dict(
            beta=c.beta, lmbda=c.lmbda, gamma=c.gamma, lr_q=c.lr_q, lr_sigma=c.lr_sigma,
            sigma_base=c.sigma_base, sigma0=c.sigma0, objective=c.objective, baseline=c.baseline,
            allocation=c.allocation,
        )
        unknown = set(overrides) - set(vals)
        if unknown:
            raise ValueError(f"unknown hyperparameters {sorted(unknown)}; sweepable: {sorted(vals)}")
        vals.update(overrides)
        return agent_lib.make_hyper(**vals)

    def init_with(self, key: jax.Array, **overrides) -> TrainState:
        """``init`` with hyperparameters overridden; traced values vmap (sweeps), e.g.
        ``lmbda``, ``sigma0``, ``objective`` (index into ``objectives.OBJECTIVES``),
        ``baseline`` (index into ``BASELINES``), ``allocation`` (bool: equal)."""
        hyper = self.default_hyper(**overrides)
        k_init, key = jax.random.split(key)
        ag = agent_lib.init_agent(k_init, self.task, hyper, self.config.q_init_scale)
        return TrainState(key=key, trial=jnp.asarray(0, jnp.int32), agent=ag, hyper=hyper, snapshot=ag)

    def init(self, key: jax.Array) -> TrainState:
        return self.init_with(key)

    # ---------------------------------------------------------------------------------
    def _beta(self, hyper: agent_lib.Hyper, trial) -> jax.Array:
        if self.config.beta_schedule == "slow":
            return jnp.minimum(1.5 ** (trial.astype(jnp.float32) / 1000.0), hyper.beta)
        return hyper.beta

    def trial_step(self, state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        """One trial: learning episode, gradient rollouts, sigma step."""
        task, spec, hyper = self.task, self.spec, state.hyper
        params = task.params_for_trial(task.env_params, state.trial)
        beta = self._beta(hyper, state.trial)
        key, k_learn, k_roll, k_start = jax.random.split(state.key, 4)
        q, learn_ret, _ = agent_lib.learning_episode(k_learn, state.agent, hyper, beta, task, params, spec,
                                                     reset_key=k_start)
        ag = state.agent.replace(q=q)
        grad, stats = agent_lib.sigma_gradient(k_roll, spec.num_rollouts, ag, hyper, beta, task, params, spec,
                                               start_key=k_start if spec.same_start else None)
        kl_total = agent_lib.storage_kl(ag, hyper, task)
        values = objectives.trajectory_value(hyper.objective, stats, hyper.lmbda, kl_total, spec.horizon_T)
        new_ag = ag.replace(sigma=agent_lib.update_sigma(ag.sigma, grad, hyper, spec, task))
        take = state.trial == self.snapshot_trial
        snapshot = jax.tree.map(lambda new, old: jnp.where(take, new, old), new_ag, state.snapshot)
        ret = jnp.mean(stats.ret)
        cost = hyper.lmbda * kl_total
        metrics = {
            "return": ret,
            "cost": cost,
            "access_cost": hyper.lmbda * jnp.mean(stats.kl_visits),
            "objective": jnp.mean(values),
            "objective_dra": ret - cost,
            "entropy": jnp.mean(stats.ent),
            "episode_length": jnp.mean(stats.length.astype(jnp.float32)),
            "learn_return": learn_ret,
            "sigma_mean": jnp.mean(new_ag.sigma),
            "beta": beta,
            "trial": state.trial,
        }
        new_state = TrainState(key=key, trial=state.trial + 1, agent=new_ag, hyper=hyper, snapshot=snapshot)
        return new_state, metrics

    def run(self, state: TrainState, num_updates: int) -> tuple[TrainState, dict[str, jax.Array]]:
        """``num_updates`` trials under ``lax.scan``; metrics have leading dim ``num_updates``."""

        def body(s, _):
            return self.trial_step(s)

        return jax.lax.scan(body, state, None, length=int(num_updates))

    def run_evaluated(self, state: TrainState, key: jax.Array, num_updates: int, eval_every: int = 100,
                      eval_episodes: int = 100):
        """The original's convergence protocol (``convergence_fig1c.py``): train
        ``num_updates`` trials and, after trial ``ii`` for ``ii % eval_every == 0`` (0-based:
        after 1, 1 + eval_every, ... trials), evaluate ``eval_episodes`` fresh episodes.
        Returns ``(state, metrics, evals)``: per-trial ``metrics`` (leading dim
        ``num_updates``) and ``evaluate``'s dict with leading dim ``num_updates // eval_every``."""
        if num_updates % eval_every:
            raise ValueError(f"num_updates ({num_updates}) must be a multiple of eval_every ({eval_every})")

        def block(s, k):
            s, m1 = self.trial_step(s)
            ev = self.evaluate(s, k, eval_episodes)
            s, m = self.run(s, eval_every - 1)
            m = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), m1, m)
            return s, (m, ev)

        n_blocks = num_updates // eval_every
        state, (m, ev) = jax.lax.scan(block, state, jax.random.split(key, n_blocks))
        m = jax.tree.map(lambda a: a.reshape((num_updates,) + a.shape[2:]), m)
        return state, m, ev

    # ---------------------------------------------------------------------------------
    def evaluate(self, state: TrainState, key: jax.Array, n_episodes: int = 1000) -> dict[str, jax.Array]:
        """Fresh rollouts of the current agent (no learning): reward, storage and access
        cost, the value of each of the three objectives, mean visits per state."""
        task, spec, hyper = self.task, self.spec, state.hyper
        params = task.params_for_trial(task.env_params, state.trial)
        beta = self._beta(hyper, state.trial)
        stats = agent_lib.rollout_stats(key, n_episodes, state.agent, hyper, beta, task, params, spec)
        kl_total = agent_lib.storage_kl(state.agent, hyper, task)
        out = {"reward": jnp.mean(stats.ret), "cost": hyper.lmbda * kl_total,
               "access_cost": hyper.lmbda * jnp.mean(stats.kl_visits),
               "entropy": jnp.mean(stats.ent),
               "episode_length": jnp.mean(stats.length.astype(jnp.float32)),
               "visits": stats.visits / n_episodes}  # (S,) mean visits per episode
        for i, obj in enumerate(objectives.OBJECTIVES):
            out[f"objective_{obj}"] = jnp.mean(
                objectives.trajectory_value(i, stats, hyper.lmbda, kl_total, spec.horizon_T))
        return out

    # ---------------------------------------------------------------------------------
    def finalize(self, states: TrainState, run_dir) -> None:
        """Write ``dra_allocation.png`` (sigma and choice entropy per cell, before/after the
        switch or mid-run/end) and ``dra_allocation.npz`` into ``run_dir``.
        ``states`` carries a leading seed axis."""
        from dra_jax import plots

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        before = jax.tree.map(np.asarray, states.snapshot)
        after = jax.tree.map(np.asarray, states.agent)
        hyper = jax.tree.map(np.asarray, states.hyper)
        beta = float(np.mean(hyper.beta))
        np.savez(
            run_dir / "dra_allocation.npz",
            q_before=before.q, sigma_before=before.sigma, q_after=after.q, sigma_after=after.sigma,
            snapshot_trial=self.snapshot_trial, trials=np.asarray(states.trial),
        )
        plots.plot_allocation(
            self.task, before, after, beta, run_dir / "dra_allocation.png",
            before_label=f"after trial {self.snapshot_trial + 1}",
            after_label=f"after trial {int(np.max(np.asarray(states.trial)))}",
        )


def make_trainer(config: Config, env_id: str) -> DRATrainer:
    """Build the DRA ``Trainer`` for one of the tabular DRA tasks (``DRA-maze``, ``DRA-huys``,
    ``DRA-mountaincar``) or any env exposing the tabular interface."""
    if not isinstance(config, Config):
        raise ValueError(f"config must be a dra_jax.trainer.Config, got {type(config).__name__}")
    return DRATrainer(config, env_id)
