"""Wol-DDPG (Dulac-Arnold et al. 2015, "Deep RL in Large Discrete Action Spaces": the
Wolpertinger architecture trained with DDPG) as a ``ppo_jax.trainer.Trainer``.

The policy (paper Sec. 4, "Wolpertinger policy")::

    p      = f(s)                        actor: proto-action in the embedding cube [-1, 1]^d (tanh)
    p~     = clip(p + N(0, noise_std^2 I), -1, 1)   exploration (behaviour only)
    A_k    = g_k(p~)                     the k nearest discrete actions (wol_jax.knn)
    a      = argmax_{a' in A_k} Q(s, e(a'))   the critic refines the choice

No validity handling: the action is sent to the environment as it is (the IAR paper's
baseline, whose valid-action ratio falls as low as 15%). Learning (paper Algorithm 1, DDPG):
transitions ``(s, e(a), r, s', terminated)`` go to a replay buffer; a minibatch of ``B``
transitions gives

    y_i    = r_i + gamma (1 - terminated_i) Q'(s'_i, e(a'_i))                 (critic target)
    a'_i   = argmax_{a in g_k(f'(s'_i))} Q'(s'_i, e(a))   ``target_action="wolpertinger"`` (paper: pi')
    e(a'_i)= f'(s'_i)                                     ``target_action="proto"`` (the IAR original,
                                                          SB3's DDPG: the target actor's proto-action)
    L_Q    = mean_i (y_i - Q(s_i, e(a_i)))^2
    L_f    = -mean_i Q(s_i, f(s_i))                       (deterministic policy gradient on the proto-action)
    theta' <- tau theta + (1 - tau) theta'                (Polyak, both target networks)

Truncated episodes (time limit) bootstrap: the buffer stores gymnax's ``final_observation``
as ``s'`` and ``terminated`` (not ``truncated``) as the done flag, as SB3's replay buffer
does with ``handle_timeout_termination``.

One update of the Trainer = ``rollout_steps`` steps of each of ``num_envs`` envs (vmapped),
the transitions added to the buffer, then ``gradient_steps`` minibatch steps (``-1``: as
many as transitions collected, SB3's ``gradient_steps=-1``). Before ``learning_starts``
environment steps the behaviour is uniform in the cube (the nearest action to a uniform
point, as the original's warm-up) and no gradient step is taken.

Replay buffer: ``flashbax.make_item_buffer`` (uniform sampling with replacement from the
filled part of a circular buffer); its state lives in the Trainer state, so ``run`` stays
jittable and vmappable over seeds. Memory: ``buffer_size * (2 obs_dim + d + 2)`` float32 per
seed (ERA-v3, 1e6 transitions: 0.85 GB).

Metrics per update: ``return`` (mean undiscounted return of the episodes that ended in this
update; the previous value if none did; 0 before the first), ``length``,
``valid_action_ratio`` (fraction of this update's executed actions the env's validity
oracle ``is_valid`` accepts; 1.0 for an env without an oracle) and ``violation_rate`` (1 -
that), ``critic_loss``, ``actor_loss``, ``q_mean`` (mean Q of the buffer minibatch), ``env_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flashbax as fbx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from envs_jax.contracts import ValidityOracle
from ppo_jax.config import check_config
from ppo_jax.nn import torch_mlp
from wol_jax import knn as knn_lib


@dataclass(frozen=True)
class Config:
    """Defaults: the IAR original's Wol-DDPG settings (``utils/util.py`` rl_kwargs for ``Wolp``,
    ``Wol_DDPG``'s and SB3 DDPG's defaults; the ERA budget 7e5 steps), except the critic
    target, which follows Dulac-Arnold et al.'s Algorithm 1 (``target_action``; the original's
    is ``"proto"``, the ``paper`` preset of ``--algo wol-ddpg``). Other differences from the
    original: exact k-NN (it used FLANN's approximate kd-tree), flax biases start at 0 (torch:
    uniform), an MLP on the flat observation for every env (its ERA encoder for Wol-DDPG is
    not published)."""

    total_steps: int = 700_000  # environment steps (all envs); orig ERA 7e5
    num_envs: int = 1  # envs stepped in parallel (orig: 1, SB3's episodic train_freq needs one)
    rollout_steps: int = 100  # steps of each env per update (orig train_freq = 1 episode = 100 ERA steps)
    gradient_steps: int = -1  # minibatch steps per update; -1: one per transition collected (orig -1)
    buffer_size: int = 1_000_000  # replay capacity in transitions (orig 1e6)
    learning_starts: int = 100  # env steps of uniform warm-up before learning (orig 100)
    batch_size: int = 100  # minibatch (orig SB3 DDPG 100)
    lr: float = 1e-3  # Adam, actor and critic (orig SB3 DDPG 1e-3)
    tau: float = 0.005  # Polyak rate of the target networks (orig 0.005)
    gamma: float = 0.99  # discount (orig 0.99)
    noise_std: float = 0.2  # Gaussian exploration noise on the proto-action, embedding units (orig 0.2)
    k_ratio: float = 0.1  # k = max(1, int(N * k_ratio)) nearest actions (orig 0.1)
    hidden: tuple[int, ...] = (400, 300)  # actor and critic MLP widths, ReLU (SB3 DDPG's default)
    target_action: str = "wolpertinger"  # critic target's next action: "wolpertinger" (Dulac-Arnold Alg. 1) | "proto" (IAR orig, SB3 DDPG)

    def __post_init__(self):
        check_config(
            self,
            choices={"target_action": ("wolpertinger", "proto")},
            positive_ints=("total_steps", "num_envs", "rollout_steps", "buffer_size", "batch_size"),
            nonneg_ints=("learning_starts",),
            positive=("lr", "tau", "gamma", "k_ratio"),
            nonneg=("noise_std",),
            widths=("hidden",),
        )
        if not (self.gradient_steps == -1 or self.gradient_steps >= 0):
            raise ValueError(f"gradient_steps must be -1 (one per transition) or >= 0, got {self.gradient_steps}")
        for name in ("tau", "gamma", "k_ratio"):
            if getattr(self, name) > 1.0:
                raise ValueError(f"{name} must lie in (0, 1], got {getattr(self, name)}")
        if self.total_steps < self.num_envs * self.rollout_steps:
            raise ValueError(f"total_steps ({self.total_steps}) is less than one update "
                             f"(num_envs * rollout_steps = {self.num_envs * self.rollout_steps})")


@struct.dataclass
class Nets:
    actor: Any
    critic: Any
    actor_target: Any
    critic_target: Any


@struct.dataclass
class TrainState:
    key: jax.Array
    update: jax.Array  # () int32 updates done
    env_steps: jax.Array  # () int32 environment steps done (all envs)
    obs: jax.Array  # (E, obs_dim) current observations
    env_state: Any  # (E, ...) env states
    nets: Nets
    actor_opt: Any
    critic_opt: Any
    buffer: Any  # flashbax item-buffer state
    ep_return: jax.Array  # (E,) running undiscounted return
    ep_length: jax.Array  # (E,) int32
    last_return: jax.Array  # () mean return of the most recently finished episodes
    last_length: jax.Array  # ()


class WolDDPGTrainer:
    """Implements the ``ppo_jax.trainer.Trainer`` protocol (module docstring).

    Static: ``nvec`` (action space), ``table`` (N, d) embeddings, ``k``, ``obs_dim``."""

    def __init__(self, config: Config, env_id: str, env=None, env_params=None):
        if env is None:
            from envs_jax import registry

            env, env_params = registry.make(env_id)
        self.config, self.env_id, self.env, self.env_params = config, env_id, env, env_params
        self.nvec = knn_lib.action_nvec(env.action_space(env_params))
        self.actions = jnp.asarray(knn_lib.all_actions(self.nvec))  # (N, d) int32
        self.table = knn_lib.embed(self.actions, self.nvec)  # (N, d)
        self.num_actions = int(self.actions.shape[0])
        self.k = knn_lib.k_of(self.num_actions, config.k_ratio)
        self.dim = int(self.nvec.size)
        self.discrete = not hasattr(env.action_space(env_params), "nvec")  # Discrete(n): scalar actions
        obs_shape = env.observation_space(env_params).shape
        self.obs_dim = int(np.prod(obs_shape))
        self.has_oracle = isinstance(env, ValidityOracle)
        per_update = config.num_envs * config.rollout_steps
        self.steps_per_update = per_update
        self.num_updates = config.total_steps // per_update
        self.gradient_steps = per_update if config.gradient_steps == -1 else int(config.gradient_steps)
        self.actor_net = torch_mlp(config.hidden, self.dim)
        self.critic_net = torch_mlp(config.hidden, 1)
        self.optimizer = optax.adam(config.lr)
        self.buffer = fbx.make_item_buffer(
            max_length=int(config.buffer_size), min_length=1, sample_batch_size=int(config.batch_size),
            add_batches=True,
        )

    # ------------------------------------------------------------------------- networks
    def proto(self, actor_params, obs: jax.Array) -> jax.Array:
        """Proto-action f(s) in [-1, 1]^d for obs (..., obs_dim)."""
        return jnp.tanh(self.actor_net.apply(actor_params, obs))

    def q(self, critic_params, obs: jax.Array, emb: jax.Array) -> jax.Array:
        """Q(s, e) for obs (..., obs_dim) and embeddings (..., d) -> (...)."""
        return self.critic_net.apply(critic_params, jnp.concatenate([obs, emb], axis=-1))[..., 0]

    def refine(self, critic_params, obs: jax.Array, point: jax.Array) -> jax.Array:
        """Wolpertinger choice for one state: the index (into ``table``) of the action among
        the k nearest to ``point`` (d,) with the highest Q(obs, .)."""
        idx = knn_lib.knn(self.table, point, self.k)
        if self.k == 1:
            return idx[0]
        qs = self.q(critic_params, jnp.broadcast_to(obs, (self.k, obs.shape[-1])), self.table[idx])
        return idx[jnp.argmax(qs)]

    def policy_index(self, nets: Nets, obs: jax.Array) -> jax.Array:
        """Greedy Wolpertinger policy (no noise) for one observation -> action index."""
        return self.refine(nets.critic, obs, self.proto(nets.actor, obs))

    def to_env(self, index: jax.Array) -> jax.Array:
        a = self.actions[index]
        return a[..., 0] if self.discrete else a

    # ------------------------------------------------------------------------- init
    def init(self, key: jax.Array) -> TrainState:
        c = self.config
        k_a, k_c, k_env, key = jax.random.split(key, 4)
        dummy_obs = jnp.zeros((self.obs_dim,), jnp.float32)
        actor = self.actor_net.init(k_a, dummy_obs)
        critic = self.critic_net.init(k_c, jnp.zeros((self.obs_dim + self.dim,), jnp.float32))
        nets = Nets(actor, critic, actor, critic)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(k_env, c.num_envs), self.env_params)
        item = self._item(dummy_obs, jnp.zeros((self.dim,)), jnp.zeros(()), dummy_obs, jnp.zeros((), bool))
        zeros = jnp.zeros((c.num_envs,), jnp.float32)
        return TrainState(
            key=key, update=jnp.int32(0), env_steps=jnp.int32(0),
            obs=obs.reshape(c.num_envs, -1).astype(jnp.float32), env_state=env_state, nets=nets,
            actor_opt=self.optimizer.init(actor), critic_opt=self.optimizer.init(critic),
            buffer=self.buffer.init(item), ep_return=zeros, ep_length=jnp.zeros((c.num_envs,), jnp.int32),
            last_return=jnp.float32(0.0), last_length=jnp.float32(0.0),
        )

    @staticmethod
    def _item(obs, emb, reward, next_obs, terminated):
        return {"obs": obs, "emb": jnp.asarray(emb, jnp.float32), "reward": jnp.asarray(reward, jnp.float32),
                "next_obs": next_obs, "terminated": jnp.asarray(terminated, jnp.float32)}

    # ------------------------------------------------------------------------- acting
    def _env_step(self, state: TrainState, _):
        c = self.config
        key, k_noise, k_warm, k_env = jax.random.split(state.key, 4)
        E = c.num_envs
        protos = self.proto(state.nets.actor, state.obs)  # (E, d)
        noisy = jnp.clip(protos + c.noise_std * jax.random.normal(k_noise, protos.shape), -1.0, 1.0)
        learned = jax.vmap(self.refine, in_axes=(None, 0, 0))(state.nets.critic, state.obs, noisy)
        uniform = jax.random.uniform(k_warm, protos.shape, minval=-1.0, maxval=1.0)
        warm = jax.vmap(lambda p: knn_lib.knn(self.table, p, 1)[0])(uniform)
        index = jnp.where(state.env_steps < c.learning_starts, warm, learned)
        action = self.to_env(index)
        if self.has_oracle:
            valid = jax.vmap(self.env.is_valid, in_axes=(0, 0, None))(state.env_state, action, self.env_params)
        else:
            valid = jnp.ones((E,), bool)
        obs, env_state, reward, terminated, truncated, info = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, E), state.env_state, action, self.env_params
        )
        reward = reward.astype(jnp.float32)
        obs = obs.reshape(E, -1).astype(jnp.float32)
        final_obs = info["final_observation"].reshape(E, -1).astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        items = self._item(state.obs, self.table[index], reward, final_obs, terminated)
        buffer = self.buffer.add(state.buffer, items)
        ep_return = state.ep_return + reward
        ep_length = state.ep_length + 1
        new_state = state.replace(
            key=key, env_steps=state.env_steps + E, obs=obs, env_state=env_state, buffer=buffer,
            ep_return=jnp.where(done, 0.0, ep_return), ep_length=jnp.where(done, 0, ep_length),
        )
        out = {"valid": valid, "done": done, "ep_return": ep_return, "ep_length": ep_length.astype(jnp.float32)}
        return new_state, out

    # ------------------------------------------------------------------------- learning
    def critic_target(self, nets: Nets, batch: dict) -> jax.Array:
        """``y = r + gamma (1 - terminated) Q'(s', e(a'))`` for a batch (module docstring)."""
        next_obs = batch["next_obs"]
        proto = self.proto(nets.actor_target, next_obs)  # (B, d)
        if self.config.target_action == "wolpertinger":
            idx = jax.vmap(self.refine, in_axes=(None, 0, 0))(nets.critic_target, next_obs, proto)
            next_emb = self.table[idx]
        else:
            next_emb = proto
        q_next = self.q(nets.critic_target, next_obs, next_emb)
        return batch["reward"] + self.config.gamma * (1.0 - batch["terminated"]) * q_next

    def _grad_step(self, carry, key):
        state = carry
        c = self.config
        batch = self.buffer.sample(state.buffer, key).experience
        nets = state.nets
        y = jax.lax.stop_gradient(self.critic_target(nets, batch))

        def critic_loss(cp):
            qv = self.q(cp, batch["obs"], batch["emb"])
            return jnp.mean((y - qv) ** 2), qv

        (c_loss, qv), c_grad = jax.value_and_grad(critic_loss, has_aux=True)(nets.critic)
        c_upd, critic_opt = self.optimizer.update(c_grad, state.critic_opt, nets.critic)
        critic = optax.apply_updates(nets.critic, c_upd)

        def actor_loss(ap):  # SB3 DDPG: the actor ascends the freshly updated critic
            return -jnp.mean(self.q(critic, batch["obs"], self.proto(ap, batch["obs"])))

        a_loss, a_grad = jax.value_and_grad(actor_loss)(nets.actor)
        a_upd, actor_opt = self.optimizer.update(a_grad, state.actor_opt, nets.actor)
        actor = optax.apply_updates(nets.actor, a_upd)
        polyak = lambda new, old: jax.tree.map(lambda n, o: c.tau * n + (1.0 - c.tau) * o, new, old)
        nets = Nets(actor, critic, polyak(actor, nets.actor_target), polyak(critic, nets.critic_target))
        state = state.replace(nets=nets, actor_opt=actor_opt, critic_opt=critic_opt)
        return state, {"critic_loss": c_loss, "actor_loss": a_loss, "q_mean": jnp.mean(qv)}

    def _learn(self, state: TrainState):
        key, k_steps = jax.random.split(state.key)
        state = state.replace(key=key)
        if self.gradient_steps == 0:
            z = jnp.float32(0.0)
            return state, {"critic_loss": z, "actor_loss": z, "q_mean": z}

        def do(s):
            s, m = jax.lax.scan(self._grad_step, s, jax.random.split(k_steps, self.gradient_steps))
            return s, jax.tree.map(jnp.mean, m)

        def skip(s):
            z = jnp.float32(0.0)
            return s, {"critic_loss": z, "actor_loss": z, "q_mean": z}

        return jax.lax.cond(state.env_steps >= max(self.config.learning_starts, 1), do, skip, state)

    def update_step(self, state: TrainState, _=None):
        state, out = jax.lax.scan(self._env_step, state, None, length=self.config.rollout_steps)
        state, losses = self._learn(state)
        done = out["done"]
        n_done = done.sum()
        some = n_done > 0
        mean_done = lambda x: jnp.sum(jnp.where(done, x, 0.0)) / jnp.maximum(n_done, 1)
        last_return = jnp.where(some, mean_done(out["ep_return"]), state.last_return)
        last_length = jnp.where(some, mean_done(out["ep_length"]), state.last_length)
        ratio = jnp.mean(out["valid"].astype(jnp.float32))
        state = state.replace(update=state.update + 1, last_return=last_return, last_length=last_length)
        metrics = {
            "return": last_return, "length": last_length, "episodes": n_done,
            "valid_action_ratio": ratio, "violation_rate": 1.0 - ratio,
            "env_steps": state.env_steps, **losses,
        }
        return state, metrics

    def run(self, state: TrainState, num_updates: int):
        """``num_updates`` updates under ``lax.scan``; metrics have leading dim ``num_updates``."""
        return jax.lax.scan(self.update_step, state, None, length=int(num_updates))

    # ------------------------------------------------------------------------- evaluation
    def evaluate(self, state: TrainState, key: jax.Array, num_episodes: int = 10) -> dict[str, jax.Array]:
        """Greedy (noise-free) Wolpertinger policy, ``num_episodes`` fresh episodes (up to the
        env's ``max_steps_in_episode``): mean return and valid-action ratio."""
        steps = int(getattr(self.env_params, "max_steps_in_episode", 1000))
        k_reset, k_run = jax.random.split(key)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_episodes), self.env_params)

        def body(carry, k):
            obs, env_state, alive, ret, nvalid, nsteps = carry
            o = obs.reshape(num_episodes, -1).astype(jnp.float32)
            idx = jax.vmap(self.policy_index, in_axes=(None, 0))(state.nets, o)
            action = self.to_env(idx)
            valid = (jax.vmap(self.env.is_valid, in_axes=(0, 0, None))(env_state, action, self.env_params)
                     if self.has_oracle else jnp.ones((num_episodes,), bool))
            obs, env_state, r, term, trunc, _ = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k, num_episodes), env_state, action, self.env_params)
            ret = ret + jnp.where(alive, r, 0.0)
            nvalid = nvalid + jnp.where(alive, valid, 0)
            nsteps = nsteps + alive
            alive = alive & ~(term | trunc)
            return (obs, env_state, alive, ret, nvalid, nsteps), None

        z = jnp.zeros((num_episodes,))
        init = (obs, env_state, jnp.ones((num_episodes,), bool), z, z, z)
        (_, _, _, ret, nvalid, nsteps), _ = jax.lax.scan(body, init, jax.random.split(k_run, steps))
        return {"return": ret.mean(), "valid_action_ratio": nvalid.sum() / jnp.maximum(nsteps.sum(), 1)}


def make_trainer(config: Config, env_id: str) -> WolDDPGTrainer:
    """The Wol-DDPG ``Trainer`` for ``env_id`` (any env with a Discrete or MultiDiscrete
    action space; ``ERA-v1``..``v5``, ``Toy-Partial``, ``Probe-action-reward``, ...)."""
    if not isinstance(config, Config):
        raise ValueError(f"config must be a wol_jax.trainer.Config, got {type(config).__name__}")
    return WolDDPGTrainer(config, env_id)
