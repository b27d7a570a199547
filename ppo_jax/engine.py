"""The one PPO engine of the project (PureJaxRL's shape, written for pluggable policies).

``make_train(config, env, env_params, policy) -> train`` where ``train(key)`` runs the whole
budget as one compiled program and ``jax.vmap(train)(keys)`` trains seeds side by side.
``train`` is also a ``Trainer`` (``ppo_jax.trainer``): ``train.init(key)`` and
``train.run(state, n)`` advance it in chunks, which ``train.py`` uses for progress,
checkpoints and resume.

One update = rollout (``num_steps`` vmapped env steps under ``lax.scan``) -> GAE (reverse
scan) -> ``update_epochs`` epochs of shuffled minibatches (nested scans) -> metrics.

Data parallel: pass a ``jax.sharding.Mesh`` with one axis ``"envs"``; environments (and
everything with an env axis) are split across its devices, and the program stays the
global one (GSPMD inserts the gradient all-reduce), so a run on k devices follows the same
learning curve as on one, up to float reduction order.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ppo_jax.config import PPOConfig
from ppo_jax.losses import explained_variance, gae, ppo_loss
from ppo_jax.normalize import RunningMeanStd
from ppo_jax.policy import Batch, Policy

ENV_AXIS = "envs"


@struct.dataclass
class EpisodeStats:
    returns: jax.Array  # (N,) undiscounted return of the running episode (raw rewards)
    lengths: jax.Array  # (N,) steps of the running episode
    last_return: jax.Array  # () mean return of the episodes that finished most recently
    last_length: jax.Array  # ()


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


class PPO:
    """A compiled PPO/A2C run for one (env, policy, config). Build with ``make_train``."""

    def __init__(self, config: PPOConfig, env, env_params, policy: Policy, mesh: Mesh | None = None):
        if not isinstance(config, PPOConfig):
            raise TypeError(f"config must be a PPOConfig, got {type(config).__name__}")
        if mesh is not None:
            if ENV_AXIS not in mesh.axis_names:
                raise ValueError(f"mesh needs an axis named {ENV_AXIS!r}, has {mesh.axis_names}")
            if config.num_envs % mesh.shape[ENV_AXIS]:
                raise ValueError(
                    f"num_envs = {config.num_envs} is not divisible by the {mesh.shape[ENV_AXIS]} devices of the mesh"
                )
        self.config, self.env, self.env_params, self.policy, self.mesh = config, env, env_params, policy, mesh
        self.optimizer = make_optimizer(config)
        self.num_updates = config.num_updates
        self.steps_per_update = config.batch_size

    # -- Trainer contract ------------------------------------------------------------
    def __call__(self, key: jax.Array):
        """The whole budget in one program: ``(final RunnerState, metrics (num_updates,))``."""
        return self.run(self.init(key), self.num_updates)

    def init(self, key: jax.Array) -> RunnerState:
        cfg = self.config
        key, k_reset, k_params = jax.random.split(key, 3)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(k_reset, cfg.num_envs), self.env_params
        )
        obs_rms = RunningMeanStd.create(obs.shape[1:])
        if cfg.normalize_obs:
            obs_rms = obs_rms.update(obs)
        first = jax.tree.map(lambda x: x[0], (obs, env_state))
        params = self.policy.init(k_params, self._norm_obs(obs_rms, first[0]), first[1], self.env_params)
        zeros = jnp.zeros((cfg.num_envs,), jnp.float32)
        state = RunnerState(
            params=params,
            opt_state=self.optimizer.init(params),
            env_state=env_state,
            obs=obs,
            obs_rms=obs_rms,
            ret_rms=RunningMeanStd.create(()),
            disc_return=zeros,
            episodes=EpisodeStats(zeros, jnp.zeros((cfg.num_envs,), jnp.int32), jnp.zeros(()), jnp.zeros(())),
            key=key,
            update=jnp.zeros((), jnp.int32),
        )
        return self._shard_envs(state)

    def run(self, state: RunnerState, num_updates: int) -> tuple[RunnerState, dict]:
        """``num_updates`` updates under ``lax.scan``; metrics have leading shape (num_updates,)."""
        return jax.lax.scan(lambda s, _: self._update(s), state, None, length=num_updates)

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

        # Episode bookkeeping on raw rewards.
        ep_returns = state.episodes.returns + reward
        ep_lengths = state.episodes.lengths + 1
        episodes = state.episodes.replace(
            returns=jnp.where(done, 0.0, ep_returns), lengths=jnp.where(done, 0, ep_lengths)
        )

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
            cut = jnp.logical_and(truncated, jnp.logical_not(terminated))
            learn_reward = learn_reward + cfg.gamma * jnp.where(cut, jax.lax.stop_gradient(final_value), 0.0)

        obs_rms = state.obs_rms.update(obs) if cfg.normalize_obs else state.obs_rms
        # A step violates when its worst constraint row does (info["max_violation"]) or,
        # for envs that report only the summed violation, when that sum does.
        if "max_violation" in info or "violation" in info:
            violated = info.get("max_violation", info.get("violation")) > cfg.violation_tol
        else:
            violated = jnp.zeros_like(done)
        transition = Transition(
            obs=obs_in,
            action=act.action,
            log_prob=act.log_prob,
            value=act.value,
            reward=learn_reward,
            done=done,
            extras=act.extras,
            violated=violated,
            finished=done,
            episode_return=ep_returns,
            episode_length=ep_lengths,
            act_metrics=act.metrics,
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

    def _loss(self, params, key, batch: Batch):
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
        )
        extra, extra_metrics = policy.extra_loss(params, k_extra, batch)
        aux = {**aux, **extra_metrics, "extra_loss": extra}
        return loss + extra, aux

    def _minibatch_step(self, carry, batch: Batch):
        params, opt_state, key = carry
        key, k_loss = jax.random.split(key)
        (loss, aux), grads = jax.value_and_grad(self._loss, has_aux=True)(params, k_loss, batch)
        updates, new_opt_state = self.optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        # Never step on a non-finite loss or gradient: keep the last good parameters and
        # report it (train.py stops the run at the first such update).
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.global_norm(grads))
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
        params, opt_state = keep(new_params, params), keep(new_opt_state, opt_state)
        aux = {**aux, "loss": loss, "grad_norm": optax.global_norm(grads), "nonfinite": 1.0 - finite}
        return (params, opt_state, key), aux

    def _epoch(self, carry, _, batch: Batch):
        params, opt_state, key = carry
        key, k_perm = jax.random.split(key)
        cfg = self.config
        perm = jax.random.permutation(k_perm, cfg.batch_size)
        minibatches = jax.tree.map(
            lambda x: x[perm].reshape((cfg.num_minibatches, cfg.minibatch_size) + x.shape[1:]), batch
        )
        return jax.lax.scan(self._minibatch_step, (params, opt_state, key), minibatches)

    def _update(self, state: RunnerState):
        cfg = self.config
        state, traj = jax.lax.scan(self._env_step, state, None, length=cfg.num_steps)  # leaves (T, N, ...)
        last_value = jax.vmap(self.policy.value, in_axes=(None, 0))(
            state.params, self._norm_obs(state.obs_rms, state.obs)
        )
        advantage, target = gae(traj.reward, traj.value, traj.done, last_value, cfg.gamma, cfg.gae_lambda)

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
        )
        batch = jax.tree.map(flat, batch)
        key, k_epochs = jax.random.split(state.key)
        (params, opt_state, _), losses = jax.lax.scan(
            partial(self._epoch, batch=batch), (state.params, state.opt_state, k_epochs), None, length=cfg.update_epochs
        )

        # Episodes that finished in this rollout; if none did, keep the previous figures.
        n_finished = traj.finished.sum()
        mean_return = jnp.where(
            n_finished > 0, (traj.episode_return * traj.finished).sum() / jnp.maximum(n_finished, 1), state.episodes.last_return
        )
        mean_length = jnp.where(
            n_finished > 0, (traj.episode_length * traj.finished).sum() / jnp.maximum(n_finished, 1), state.episodes.last_length
        )
        update = state.update + 1
        metrics = {
            "return": mean_return,
            "length": mean_length,
            "episodes": n_finished,
            "env_steps": update * cfg.batch_size,
            "violation_rate": traj.violated.mean(),
            "explained_variance": explained_variance(traj.value, target),
            **{k: v.mean() for k, v in losses.items() if k != "nonfinite"},
            "nonfinite": losses["nonfinite"].sum(),
            **{f"policy/{k}": v.mean() for k, v in traj.act_metrics.items()},
        }
        state = state.replace(
            params=params,
            opt_state=opt_state,
            key=key,
            update=update,
            episodes=state.episodes.replace(last_return=mean_return, last_length=mean_length),
        )
        return state, metrics


def make_train(config: PPOConfig, env, env_params, policy: Policy, mesh: Mesh | None = None) -> PPO:
    """``train = make_train(...)``; ``train(key)`` runs everything, ``jax.vmap(train)(keys)`` seeds."""
    return PPO(config, env, env_params, policy, mesh)


def device_mesh(devices=None) -> Mesh:
    """A one-axis mesh (``"envs"``) over all local devices (or the given ones)."""
    import numpy as np

    devices = jax.local_devices() if devices is None else devices
    return Mesh(np.asarray(devices), (ENV_AXIS,))
