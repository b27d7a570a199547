"""The one PPO engine of the project (PureJaxRL's shape, written for pluggable policies).

``make_train(config, env, env_params, policy, mesh=None, update=None) -> train`` where
``train(key)`` runs the whole budget as one compiled program and ``jax.vmap(train)(keys)``
trains seeds side by side. ``train`` is also a ``Trainer`` (``ppo_jax.trainer``):
``train.init(key)`` and ``train.run(state, n, first_update, last_update)`` advance it in
chunks, which ``train.py`` uses for progress, checkpoints and resume.

One update = rollout (``num_steps`` vmapped env steps under ``lax.scan``) -> GAE (reverse
scan; also on costs where a cost critic is built) -> the update rule (default: ``update_epochs``
epochs of shuffled minibatch steps, ``ppo_jax.update``) -> evaluation every ``eval_every``
updates -> metrics.

Costs: an env that reports ``info["cost"]`` (a scalar or one value per constraint, shape
``(C,)``; :data:`COST_KEY`) gets per-episode cost returns and the metrics ``cost_return`` and
``cost_rate`` for free. A cost critic (an MLP with C heads on the same observation as the
policy) with cost GAE (``Batch.cost_advantage``, ``Batch.cost_target``) is built only when the
policy (``Policy.uses_costs``), the update rule (``UpdateRule.needs_cost_critic``) or
``config.cost_critic`` asks for it.

Evaluation: every ``eval_every`` updates, ``eval_episodes`` fresh env instances with their own
keys run one episode each (``eval_mode`` "stochastic": ``policy.act``; "greedy":
``policy.greedy``), from the env's fixed starts ``env.reset_to(key, params, i)`` where it
offers them; metrics ``eval/return``, ``eval/cost``, ``eval/violation_rate``,
``eval/length`` (NaN at updates without evaluation). Inside the compiled program.

Data parallel: pass a ``jax.sharding.Mesh`` with one axis ``"envs"``; environments (and
everything with an env axis) are split across its devices, and the program stays the
global one (GSPMD inserts the gradient all-reduce), so a run on k devices, or k processes
(``jax.distributed``), follows the same learning curve as on one, up to float reduction order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ppo_jax.config import PPOConfig
from envs_jax.contracts import COST_KEY, FixedStarts  # info[COST_KEY]: a step's cost, () or (C,)
from ppo_jax.losses import explained_variance, gae, ppo_loss
from ppo_jax.normalize import RunningMeanStd
from ppo_jax.nn import MLP
from ppo_jax.policy import Batch, Policy
from ppo_jax.update import MinibatchUpdate, UpdateRule, UpdateState

ENV_AXIS = "envs"


@struct.dataclass
class EpisodeStats:
    returns: jax.Array  # (N,) undiscounted return of the running episode (raw rewards)
    lengths: jax.Array  # (N,) steps of the running episode
    last_return: jax.Array  # () mean return of the episodes that finished most recently
    last_length: jax.Array  # ()
    cost_returns: Any = ()  # (N, C) undiscounted cost of the running episode (envs with costs)
    last_cost_return: Any = ()  # (C,) mean cost return of the episodes that finished most recently


@struct.dataclass
class RunnerState:
    params: Any
    opt_state: Any
    env_state: Any  # batched over envs
    obs: jax.Array  # (N, *obs_shape) raw observation
    obs_rms: RunningMeanStd
    ret_rms: RunningMeanStd
    disc_return: jax.Array  # (N,) discounted return for reward scaling
    episodes: EpisodeStats
    key: jax.Array
    update: jax.Array  # () updates done so far
    cost_params: Any = ()  # cost critic (where built)
    cost_opt_state: Any = ()
    extra: Any = ()  # the update rule's state
    eval_key: Any = ()  # key of the evaluation episodes (folded with the update number)


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array  # reward the learner sees (scaled, truncation-bootstrapped)
    done: jax.Array  # episode boundary after this step (terminated or truncated)
    extras: Any
    violated: jax.Array  # executed action violated a constraint (False if env reports none)
    finished: jax.Array  # an episode finished at this step
    episode_return: jax.Array  # its return (valid where finished)
    episode_length: jax.Array
    act_metrics: dict
    cost: Any = ()  # (C,) raw step cost (envs with costs)
    learn_cost: Any = ()  # (C,) cost the cost critic learns (truncation-bootstrapped)
    cost_value: Any = ()  # (C,) cost critic at obs (where built)
    episode_cost: Any = ()  # (C,) cost return of the running episode incl. this step


def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Gradient clip + Adam or TF1-style RMSprop (eps inside the sqrt, accumulator starting
    at 1, as SB3's ``RMSpropTFLike`` that IAR's original A2C used), optional linear decay."""
    steps = config.num_updates * config.update_epochs * config.num_minibatches
    lr = optax.linear_schedule(config.lr, 0.0, steps) if config.anneal_lr else config.lr
    if config.optimizer == "adam":
        opt = optax.adam(lr, eps=config.adam_eps)
    else:
        opt = optax.rmsprop(lr, decay=config.rmsprop_decay, eps=config.adam_eps, initial_scale=1.0, eps_in_sqrt=True)
    if config.max_grad_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt)
    return opt


def env_cost_shape(env, env_params) -> tuple[int, ...] | None:
    """``(C,)`` if ``env.step`` reports ``info["cost"]`` (a scalar counts as C = 1), else None."""

    def one_step(key):
        obs, state = env.reset(key, env_params)
        action = env.action_space(env_params).sample(key)
        return env.step(key, state, action, env_params)[-1]

    info = jax.eval_shape(one_step, jax.random.PRNGKey(0))
    if COST_KEY not in info:
        return None
    shape = tuple(info[COST_KEY].shape)
    if len(shape) > 1:
        raise ValueError(f"info[{COST_KEY!r}] must be a scalar or a vector (one cost per constraint), got shape {shape}")
    return shape or (1,)


class PPO:
    """A compiled PPO/A2C run for one (env, policy, config). Build with ``make_train``."""

    def __init__(self, config: PPOConfig, env, env_params, policy: Policy, mesh: Mesh | None = None,
                 update: UpdateRule | None = None):
        if not isinstance(config, PPOConfig):
            raise TypeError(f"config must be a PPOConfig, got {type(config).__name__}")
        if mesh is not None:
            if ENV_AXIS not in mesh.axis_names:
                raise ValueError(f"mesh needs an axis named {ENV_AXIS!r}, has {mesh.axis_names}")
            if config.num_envs % mesh.shape[ENV_AXIS]:
                raise ValueError(
                    f"num_envs = {config.num_envs} is not divisible by the {mesh.shape[ENV_AXIS]} devices of the mesh"
                )
        update = MinibatchUpdate() if update is None else update
        if not isinstance(update, UpdateRule):
            raise TypeError(f"update must be a ppo_jax.update.UpdateRule, got {type(update).__name__}")
        self.config, self.env, self.env_params, self.policy, self.mesh = config, env, env_params, policy, mesh
        self.update_rule = update
        self.optimizer = make_optimizer(config)
        self.num_updates = config.num_updates
        self.steps_per_update = config.batch_size

        self.cost_shape = env_cost_shape(env, env_params)
        wants = [who for who, flag in (("the policy", getattr(policy, "uses_costs", False)),
                                       ("the update rule", update.needs_cost_critic),
                                       ("config.cost_critic", config.cost_critic)) if flag]
        if wants and self.cost_shape is None:
            raise ValueError(
                f"{' and '.join(wants)} needs costs, but {type(env).__name__} reports no info[{COST_KEY!r}]"
            )
        self.cost_critic = MLP(tuple(config.cost_critic_hidden), self.cost_shape[0], "tanh", out_scale=1.0) if wants else None
        self.cost_optimizer = make_optimizer(config) if wants else None
        self.fixed_eval_starts = config.eval_fixed_starts == "on" or (
            config.eval_fixed_starts == "auto" and isinstance(env, FixedStarts)
        )
        if config.eval_fixed_starts == "on" and not isinstance(env, FixedStarts):
            raise ValueError(f"eval_fixed_starts='on' needs env.reset_to(key, params, index); {type(env).__name__} has none")
        if config.eval_max_steps > 0:
            self.eval_max_steps = config.eval_max_steps
        else:
            self.eval_max_steps = int(getattr(env_params, "max_steps_in_episode", 10_000))

    # -- Trainer contract ------------------------------------------------------------
    def __call__(self, key: jax.Array):
        """The whole budget in one program: ``(final RunnerState, metrics (num_updates,))``."""
        return self.run(self.init(key), self.num_updates, 0)

    def init(self, key: jax.Array) -> RunnerState:
        cfg = self.config
        eval_key = jax.random.fold_in(key, 0x5EED)
        key, k_reset, k_params = jax.random.split(key, 3)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(k_reset, cfg.num_envs), self.env_params
        )
        obs_rms = RunningMeanStd.create(obs.shape[1:])
        if cfg.normalize_obs:
            obs_rms = obs_rms.update(obs)
        first = jax.tree.map(lambda x: x[0], (obs, env_state))
        first_obs = self._norm_obs(obs_rms, first[0])
        params = self.policy.init(k_params, first_obs, first[1], self.env_params)
        cost_params, cost_opt_state = (), ()
        if self.cost_critic is not None:
            cost_params = self.cost_critic.init(jax.random.fold_in(k_params, 0xC057), jnp.ravel(first_obs).astype(jnp.float32))
            cost_opt_state = self.cost_optimizer.init(cost_params)
        zeros = jnp.zeros((cfg.num_envs,), jnp.float32)
        cost_returns, last_cost = (), ()
        if self.cost_shape is not None:
            cost_returns = jnp.zeros((cfg.num_envs,) + self.cost_shape, jnp.float32)
            last_cost = jnp.zeros(self.cost_shape, jnp.float32)
        state = RunnerState(
            params=params,
            opt_state=self.optimizer.init(params),
            env_state=env_state,
            obs=obs,
            obs_rms=obs_rms,
            ret_rms=RunningMeanStd.create(()),
            disc_return=zeros,
            episodes=EpisodeStats(zeros, jnp.zeros((cfg.num_envs,), jnp.int32), jnp.zeros(()), jnp.zeros(()),
                                  cost_returns, last_cost),
            key=key,
            update=jnp.zeros((), jnp.int32),
            cost_params=cost_params,
            cost_opt_state=cost_opt_state,
            extra=self.update_rule.init(self, params, cost_params),
            eval_key=eval_key,
        )
        return self._shard_envs(state)

    def run(self, state: RunnerState, num_updates: int, first_update=None, last_update=None) -> tuple[RunnerState, dict]:
        """``num_updates`` updates under ``lax.scan``; metrics have leading shape (num_updates,).

        ``first_update``: the number of updates already done (``state.update``); pass it as an
        *unbatched* value when vmapping over seeds (``in_axes=None``) so that the evaluation
        schedule stays a real branch instead of both sides of a select. ``last_update``:
        updates numbered above it are skipped (state unchanged, metrics NaN / 0), so a run's
        last, shorter chunk reuses the compiled chunk program.
        """
        first = state.update if first_update is None else jnp.asarray(first_update, jnp.int32)
        shapes = None

        def body(s, i):
            number = first + i + 1  # the update this step performs, counted from 1
            if last_update is None:
                return self._update_and_evaluate(s, number)
            nonlocal shapes
            if shapes is None:
                shapes = jax.eval_shape(self._update_and_evaluate, s, number)[1]
            skip = lambda s_: (s_, jax.tree.map(_blank, shapes))
            return jax.lax.cond(number <= jnp.asarray(last_update, jnp.int32), self._update_and_evaluate, lambda s_, n_: skip(s_), s, number)

        return jax.lax.scan(body, state, jnp.arange(num_updates, dtype=jnp.int32))

    # -- pieces ------------------------------------------------------------------------
    def _norm_obs(self, obs_rms: RunningMeanStd, obs: jax.Array) -> jax.Array:
        if self.config.normalize_obs:
            return obs_rms.normalize(obs, self.config.obs_clip)
        return obs

    def _shard_envs(self, tree):
        """Constrain every leaf with a leading env axis to be split over the mesh."""
        if self.mesh is None:
            return tree
        n = self.config.num_envs
        sharded = NamedSharding(self.mesh, PartitionSpec(ENV_AXIS))

        def constrain(x):
            if hasattr(x, "ndim") and x.ndim >= 1 and x.shape[0] == n:
                return jax.lax.with_sharding_constraint(x, sharded)
            return x

        return jax.tree.map(constrain, tree)

    def cost_value(self, cost_params, obs: jax.Array) -> jax.Array:
        """The cost critic's V^c(obs), shape (C,), for one (normalised) observation."""
        return self.cost_critic.apply(cost_params, jnp.ravel(obs).astype(jnp.float32))

    def _step_cost(self, info, done):
        cost = jnp.asarray(info[COST_KEY], jnp.float32).reshape(done.shape + self.cost_shape)
        return cost

    def _env_step(self, state: RunnerState, _):
        cfg, policy = self.config, self.policy
        key, k_act, k_env = jax.random.split(state.key, 3)
        obs_in = self._norm_obs(state.obs_rms, state.obs)
        act = jax.vmap(policy.act, in_axes=(None, 0, 0, 0, None))(
            state.params, jax.random.split(k_act, cfg.num_envs), obs_in, state.env_state, self.env_params
        )
        obs, env_state, reward, terminated, truncated, info = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, cfg.num_envs), state.env_state, act.action, self.env_params
        )
        reward = reward.astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)

        # Episode bookkeeping on raw rewards (and raw costs).
        ep_returns = state.episodes.returns + reward
        ep_lengths = state.episodes.lengths + 1
        episodes = state.episodes.replace(
            returns=jnp.where(done, 0.0, ep_returns), lengths=jnp.where(done, 0, ep_lengths)
        )
        cost = learn_cost = cost_value = ep_costs = ()
        cut = jnp.logical_and(truncated, jnp.logical_not(terminated))
        if self.cost_shape is not None:
            cost = self._step_cost(info, done)
            ep_costs = state.episodes.cost_returns + cost
            episodes = episodes.replace(cost_returns=jnp.where(done[:, None], 0.0, ep_costs))
            if self.cost_critic is not None:
                cost_value = jax.vmap(self.cost_value, in_axes=(None, 0))(state.cost_params, obs_in)
                learn_cost = cost
                if cfg.bootstrap_truncated:
                    final_obs = self._norm_obs(state.obs_rms, info["final_observation"])
                    final_cv = jax.vmap(self.cost_value, in_axes=(None, 0))(state.cost_params, final_obs)
                    learn_cost = cost + cfg.gamma * jnp.where(cut[:, None], jax.lax.stop_gradient(final_cv), 0.0)

        # Reward the learner sees: optionally scaled, then truncation-bootstrapped.
        ret_rms, disc_return = state.ret_rms, state.disc_return
        learn_reward = reward
        if cfg.scale_rewards:
            disc_return = disc_return * cfg.gamma + reward
            ret_rms = ret_rms.update(disc_return)
            learn_reward = jnp.clip(reward / jnp.sqrt(ret_rms.var + 1e-8), -cfg.obs_clip, cfg.obs_clip)
            disc_return = jnp.where(done, 0.0, disc_return)
        if cfg.bootstrap_truncated:
            final_obs = self._norm_obs(state.obs_rms, info["final_observation"])
            final_value = jax.vmap(policy.value, in_axes=(None, 0))(state.params, final_obs)
            learn_reward = learn_reward + cfg.gamma * jnp.where(cut, jax.lax.stop_gradient(final_value), 0.0)

        obs_rms = state.obs_rms.update(obs) if cfg.normalize_obs else state.obs_rms
        transition = Transition(
            obs=obs_in,
            action=act.action,
            log_prob=act.log_prob,
            value=act.value,
            reward=learn_reward,
            done=done,
            extras=act.extras,
            violated=self._violated(info, done),
            finished=done,
            episode_return=ep_returns,
            episode_length=ep_lengths,
            act_metrics=act.metrics,
            cost=cost,
            learn_cost=learn_cost,
            cost_value=cost_value,
            episode_cost=ep_costs,
        )
        state = state.replace(
            env_state=env_state,
            obs=obs,
            obs_rms=obs_rms,
            ret_rms=ret_rms,
            disc_return=disc_return,
            episodes=episodes,
            key=key,
        )
        return self._shard_envs(state), transition

    def _violated(self, info, done):
        # A step violates when its worst constraint row does (info["max_violation"]) or,
        # for envs that report only the summed violation, when that sum does.
        if "max_violation" in info or "violation" in info:
            return info.get("max_violation", info.get("violation")) > self.config.violation_tol
        return jnp.zeros_like(done)

    # -- losses the update rules use ----------------------------------------------------
    def policy_loss(self, params, key, batch: Batch):
        """PPO's loss on a minibatch: clipped surrogate + vf_coef * value loss - ent_coef *
        entropy + the policy's ``extra_loss`` -> (scalar, aux dict)."""
        cfg, policy = self.config, self.policy
        k_eval, k_extra = jax.random.split(key)
        keys = jax.random.split(k_eval, batch.log_prob.shape[0])
        ev = jax.vmap(policy.evaluate, in_axes=(None, 0, 0, 0, 0))(params, keys, batch.obs, batch.action, batch.extras)
        loss, aux = ppo_loss(
            ev.log_prob,
            batch.log_prob,
            batch.advantage,
            ev.value,
            batch.value,
            batch.target,
            ev.entropy,
            clip_eps=cfg.clip_eps,
            clip_value=cfg.clip_value,
            vf_coef=cfg.vf_coef,
            ent_coef=cfg.ent_coef,
            normalize_advantages=cfg.normalize_advantages,
            value_loss_scale=cfg.value_loss_scale,
        )
        extra, extra_metrics = policy.extra_loss(params, k_extra, batch)
        aux = {**aux, **extra_metrics, "extra_loss": extra}
        return loss + extra, aux

    def cost_value_loss(self, cost_params, batch: Batch):
        """``value_loss_scale * mean_B sum_C (V^c - target^c)^2`` (clipped like the value when
        ``clip_value``) -> (scalar, aux); zero without a cost critic."""
        if self.cost_critic is None:
            return jnp.zeros(()), {}
        cfg = self.config
        v = jax.vmap(self.cost_value, in_axes=(None, 0))(cost_params, batch.obs)
        err = jnp.square(v - batch.cost_target)
        if cfg.clip_value and cfg.clip_eps is not None:
            clipped = batch.cost_value + jnp.clip(v - batch.cost_value, -cfg.clip_eps, cfg.clip_eps)
            err = jnp.maximum(err, jnp.square(clipped - batch.cost_target))
        loss = cfg.value_loss_scale * err.mean(axis=0).sum()
        return loss, {"cost_value_loss": loss}

    # -- one update -----------------------------------------------------------------------
    def _update_and_evaluate(self, state: RunnerState, number):
        state, metrics = self._update(state)
        cfg = self.config
        if cfg.eval_every > 0:
            shapes = jax.eval_shape(self.evaluate, state.params, state.obs_rms, state.eval_key)
            blank = lambda: jax.tree.map(_blank, shapes)
            key = jax.random.fold_in(state.eval_key, number)
            ev = jax.lax.cond(
                number % cfg.eval_every == 0,
                lambda: self.evaluate(state.params, state.obs_rms, key),
                blank,
            )
            metrics = {**metrics, **{f"eval/{k}": v for k, v in ev.items()}}
        return state, metrics

    def _update(self, state: RunnerState):
        cfg = self.config
        state, traj = jax.lax.scan(self._env_step, state, None, length=cfg.num_steps)  # leaves (T, N, ...)
        obs_in = self._norm_obs(state.obs_rms, state.obs)
        last_value = jax.vmap(self.policy.value, in_axes=(None, 0))(state.params, obs_in)
        advantage, target = gae(traj.reward, traj.value, traj.done, last_value, cfg.gamma, cfg.gae_lambda)
        cost_adv = cost_target = ()
        if self.cost_critic is not None:
            last_cv = jax.vmap(self.cost_value, in_axes=(None, 0))(state.cost_params, obs_in)
            cost_adv, cost_target = gae(traj.learn_cost, traj.cost_value, traj.done, last_cv, cfg.gamma, cfg.gae_lambda)

        # (T, N, ...) -> (N * T, ...), env-major so a device's rows stay contiguous.
        flat = lambda x: jnp.swapaxes(x, 0, 1).reshape((cfg.batch_size,) + x.shape[2:])
        batch = Batch(
            obs=traj.obs,
            action=traj.action,
            log_prob=traj.log_prob,
            value=traj.value,
            advantage=advantage,
            target=target,
            extras=traj.extras,
            cost=traj.cost,
            cost_value=traj.cost_value,
            cost_advantage=cost_adv,
            cost_target=cost_target,
        )
        batch = jax.tree.map(flat, batch)

        # Episodes that finished in this rollout; if none did, keep the previous figures.
        n_finished = traj.finished.sum()
        some = n_finished > 0
        mean_over_finished = lambda x: (x * traj.finished.reshape(traj.finished.shape + (1,) * (x.ndim - 2))).sum((0, 1)) / jnp.maximum(n_finished, 1)
        mean_return = jnp.where(some, mean_over_finished(traj.episode_return), state.episodes.last_return)
        mean_length = jnp.where(some, mean_over_finished(traj.episode_length), state.episodes.last_length)
        episodes = state.episodes.replace(last_return=mean_return, last_length=mean_length)
        stats = {"return": mean_return}
        if self.cost_shape is not None:
            mean_cost = jnp.where(some, mean_over_finished(traj.episode_cost), state.episodes.last_cost_return)
            episodes = episodes.replace(last_cost_return=mean_cost)
            stats["cost_return"] = mean_cost

        key, k_epochs = jax.random.split(state.key)
        ustate = UpdateState(state.params, state.opt_state, state.cost_params, state.cost_opt_state, state.extra)
        ustate, update_metrics = self.update_rule(self, ustate, batch, stats, k_epochs)

        update = state.update + 1
        metrics = {
            "return": mean_return,
            "length": mean_length,
            "episodes": n_finished,
            "env_steps": update * cfg.batch_size,
            "violation_rate": traj.violated.mean(),
            "explained_variance": explained_variance(traj.value, target),
            **update_metrics,
            **{f"policy/{k}": v.mean() for k, v in traj.act_metrics.items()},
        }
        if self.cost_shape is not None:
            metrics["cost_return"] = stats["cost_return"].sum()
            metrics["cost_rate"] = traj.cost.sum(-1).mean()
        state = state.replace(
            params=ustate.params,
            opt_state=ustate.opt_state,
            cost_params=ustate.cost_params,
            cost_opt_state=ustate.cost_opt_state,
            extra=ustate.extra,
            key=key,
            update=update,
            episodes=episodes,
        )
        return state, metrics

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, params, obs_rms: RunningMeanStd, key: jax.Array) -> dict:
        """``eval_episodes`` episodes on fresh env instances (one each, run to their end or
        ``eval_max_steps``) -> means of ``return``, ``length``, ``violation_rate`` (violating
        steps / steps) and, for envs with costs, ``cost`` (the episode's cost, summed over C)."""
        cfg, env, policy = self.config, self.env, self.policy
        E = cfg.eval_episodes
        k_reset, key = jax.random.split(key)
        reset_keys = jax.random.split(k_reset, E)
        if self.fixed_eval_starts:
            obs, env_state = jax.vmap(env.reset_to, in_axes=(0, None, 0))(reset_keys, self.env_params, jnp.arange(E))
        else:
            obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, self.env_params)
        zeros = jnp.zeros((E,), jnp.float32)

        def cond(c):
            return c["active"].any() & (c["t"] < self.eval_max_steps)

        def body(c):
            k, k_act, k_env = jax.random.split(c["key"], 3)
            obs_in = self._norm_obs(obs_rms, c["obs"])
            if cfg.eval_mode == "greedy":
                action = jax.vmap(policy.greedy, in_axes=(None, 0, 0, None))(params, obs_in, c["env_state"], self.env_params)
            else:
                action = jax.vmap(policy.act, in_axes=(None, 0, 0, 0, None))(
                    params, jax.random.split(k_act, E), obs_in, c["env_state"], self.env_params
                ).action
            obs, env_state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_env, E), c["env_state"], action, self.env_params
            )
            live = c["active"].astype(jnp.float32)
            cost = self._step_cost(info, terminated).sum(-1) if self.cost_shape is not None else zeros
            done = jnp.logical_or(terminated, truncated)
            return {
                "obs": obs, "env_state": env_state, "key": k, "t": c["t"] + 1,
                "active": c["active"] & ~done,
                "return": c["return"] + live * reward.astype(jnp.float32),
                "cost": c["cost"] + live * cost,
                "violations": c["violations"] + live * self._violated(info, done).astype(jnp.float32),
                "length": c["length"] + live,
            }

        init = {"obs": obs, "env_state": env_state, "key": key, "t": jnp.zeros((), jnp.int32),
                "active": jnp.ones((E,), bool), "return": zeros, "cost": zeros, "violations": zeros, "length": zeros}
        out = jax.lax.while_loop(cond, body, init)
        metrics = {
            "return": out["return"].mean(),
            "violation_rate": out["violations"].sum() / jnp.maximum(out["length"].sum(), 1.0),
            "length": out["length"].mean(),
        }
        if self.cost_shape is not None:
            metrics["cost"] = out["cost"].mean()
        return metrics


def _blank(x: jax.ShapeDtypeStruct):
    """A placeholder metric for an update that did not happen (NaN, or 0 for integers)."""
    fill = jnp.nan if jnp.issubdtype(x.dtype, jnp.floating) else 0
    return jnp.full(x.shape, fill, x.dtype)


def make_train(config: PPOConfig, env, env_params, policy: Policy, mesh: Mesh | None = None,
               update: UpdateRule | None = None) -> PPO:
    """``train = make_train(...)``; ``train(key)`` runs everything, ``jax.vmap(train)(keys)`` seeds.
    ``update``: an ``ppo_jax.update.UpdateRule`` (default: PPO's minibatch epochs)."""
    return PPO(config, env, env_params, policy, mesh, update)


def device_mesh(devices=None) -> Mesh:
    """A one-axis mesh (``"envs"``) over the given devices, default all of this process's
    (``jax.local_devices()``); pass ``jax.devices()`` for every process's under ``jax.distributed``."""
    devices = jax.local_devices() if devices is None else devices
    return Mesh(np.asarray(devices), (ENV_AXIS,))
