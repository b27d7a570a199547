"""The tabular DRA agent: one trial = one learning episode + ``num_rollouts`` gradient rollouts.

Per trial (the DRA algorithm of the paper, as the original code runs it):

1. *Learning episode*: act by soft Thompson sampling and update ``q`` online by expected
   SARSA, ``q(s,a) += lr_q * (r + gamma * sum_a' pi(a'|s',zeta') q(s',a') - q(s,a))``, with a
   fresh ``zeta'`` at ``s'`` (reused to act at ``s'``); no bootstrap past a terminal state
   (a time-limit truncation bootstraps).
2. *Gradient rollouts*: ``num_rollouts`` episodes with ``q`` and ``sigma`` fixed; their
   mean gives the stochastic gradient of the chosen objective (``objectives.py``; two
   passes over the same episodes: per-trajectory scalars, then one gradient table). They
   start from fresh start states, or (``Spec.same_start``, the original's Huys script)
   all from the learning episode's start state.
3. ``sigma += lr_sigma * (gradient + storage-cost gradient)``, clipped to
   ``[sigma_min, sigma_max]``. With ``allocation='equal'`` one precision is shared by every
   state-action: it moves by the mean of the per-entry gradients (the exact gradient of the
   shared parameter divided by the table size, so ``lr_sigma`` keeps its scale).

*Known memories* (``tabular_task(..., known_memories=True)``; the original's Huys script):
the entries of the env's ``known_memories`` mask start at the known ``q`` and ``sigma`` and
never change (neither ``q`` nor ``sigma`` is updated), and they pay no storage cost.

Everything is a pure function of pytrees: ``jit`` it, ``vmap`` it over seeds and over the
hyperparameters in ``Hyper`` (a lambda sweep is one vmapped call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dra_jax import memory, objectives
from envs_jax.contracts import FixedHorizon, KnownMemories, Tabular, TabularLayout, TrialSchedule, require


# --------------------------------------------------------------------------------------
# Task adapter
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TabularTask:
    """A gymnax environment seen as a table: ``index(obs) -> row`` of ``q``/``sigma``."""

    env: Any
    env_params: Any
    num_states: int
    num_actions: int
    index: Callable[[jax.Array], jax.Array]
    params_for_trial: Callable[[Any, jax.Array], Any]
    grid_shape: tuple[int, ...]
    horizon: float  # the task's horizon (Eq. 10's default T); 0 if the env defines none
    known_mask: Any  # (S, A) bool numpy: memories held fixed (all False by default)
    known_q: Any  # (S, A) their q
    known_sigma: Any  # (S, A) their sigma


def tabular_task(env, env_params, known_memories: bool = False) -> TabularTask:
    """Wrap an env exposing ``num_tabular_states``/``tabular_index`` (see ``envs_jax.dra_tasks``).

    ``horizon``: ``env.dra_horizon(params)`` if defined, else ``params.max_steps_in_episode``
    (0 if neither). ``known_memories=True`` reads ``env.known_memories(params)``."""
    require(env, Tabular, who="the tabular DRA agent")
    n = int(env.num_tabular_states(env_params))
    grid = tuple(env.tabular_grid_shape(env_params)) if isinstance(env, TabularLayout) else (n,)
    pft = env.params_for_trial if isinstance(env, TrialSchedule) else (lambda p, t: p)
    if isinstance(env, FixedHorizon):
        horizon = float(env.dra_horizon(env_params))
    else:
        horizon = float(getattr(env_params, "max_steps_in_episode", 0))
    A = int(env.num_actions)
    if known_memories:
        require(env, KnownMemories, who="known_memories=True (DRA-huys)")
        mask, kq, ks = (np.asarray(x) for x in env.known_memories(env_params))
    else:
        mask, kq, ks = np.zeros((n, A), bool), np.zeros((n, A), np.float32), np.ones((n, A), np.float32)
    return TabularTask(
        env=env,
        env_params=env_params,
        num_states=n,
        num_actions=A,
        index=lambda obs: env.tabular_index(obs, env_params),
        params_for_trial=pft,
        grid_shape=grid,
        horizon=horizon,
        known_mask=mask.astype(bool),
        known_q=kq.astype(np.float32),
        known_sigma=ks.astype(np.float32),
    )


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------
@struct.dataclass
class Hyper:
    """Hyperparameters carried in the state as arrays, so ``vmap`` can sweep any of them
    (lambda, the objective, the baseline, equal vs flexible allocation, ...)."""

    beta: jax.Array  # inverse temperature of soft Thompson sampling
    lmbda: jax.Array  # price of precision (lambda)
    gamma: jax.Array  # discount of the expected-SARSA target
    lr_q: jax.Array  # learning rate of q
    lr_sigma: jax.Array  # learning rate of sigma
    sigma_base: jax.Array  # std of the base (cost-free) memory
    sigma0: jax.Array  # initial std of every memory
    objective: jax.Array  # int32 index into objectives.OBJECTIVES
    baseline: jax.Array  # int32 index into objectives.BASELINES
    equal: jax.Array  # bool: one shared sigma (equal precision) instead of one per (s, a)


def make_hyper(beta=10.0, lmbda=0.1, gamma=0.9, lr_q=0.2, lr_sigma=0.1, sigma_base=5.0, sigma0=3.0,
               objective="dra", baseline="A", allocation="flexible") -> Hyper:
    """``Hyper`` from Python values or arrays (names of objective/baseline/allocation or ids)."""
    if isinstance(allocation, str):
        if allocation not in ("flexible", "equal"):
            raise ValueError(f"unknown allocation {allocation!r}; choose 'flexible' or 'equal'")
        allocation = allocation == "equal"
    f = lambda v: jnp.asarray(v, jnp.float32)
    return Hyper(
        beta=f(beta), lmbda=f(lmbda), gamma=f(gamma), lr_q=f(lr_q), lr_sigma=f(lr_sigma),
        sigma_base=f(sigma_base), sigma0=f(sigma0), objective=objectives.objective_id(objective),
        baseline=objectives.baseline_id(baseline), equal=jnp.asarray(allocation, bool),
    )


@struct.dataclass
class AgentState:
    q: jax.Array  # (S, A) memory means
    sigma: jax.Array  # (S, A) memory stds


class Spec(struct.PyTreeNode):
    """Static settings of the agent (shapes and loop bounds; not vmapped)."""

    num_rollouts: int = struct.field(pytree_node=False, default=10)
    sigma_min: float = struct.field(pytree_node=False, default=0.01)
    sigma_max: float = struct.field(pytree_node=False, default=100.0)
    horizon_T: float = struct.field(pytree_node=False, default=0.0)  # Eq. 10's fixed T (> 0 to use Eq. 10)
    max_steps: int = struct.field(pytree_node=False, default=1000)
    same_start: bool = struct.field(pytree_node=False, default=False)  # rollouts from the learning episode's start


def init_agent(key: jax.Array, task: TabularTask, hyper: Hyper, q_init_scale: float = 0.0) -> AgentState:
    """``q ~ U(-q_init_scale, q_init_scale)`` (0: zeros), ``sigma = sigma0`` everywhere,
    except the task's known memories (their ``known_q``, ``known_sigma``)."""
    shape = (task.num_states, task.num_actions)
    q = q_init_scale * jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
    sigma = jnp.full(shape, 1.0) * hyper.sigma0
    q = jnp.where(task.known_mask, task.known_q, q)
    sigma = jnp.where(task.known_mask, task.known_sigma, sigma)
    return AgentState(q=q.astype(jnp.float32), sigma=sigma.astype(jnp.float32))


# --------------------------------------------------------------------------------------
# Episodes
# --------------------------------------------------------------------------------------
def _safe_row(task: TabularTask, obs) -> jax.Array:
    return jnp.clip(task.index(obs), 0, task.num_states - 1)


def _draws(key, t, n: int, num_actions: int):
    """Step ``t``'s randomness for ``n`` parallel episodes, from one key: ``zeta (n, A)``,
    action uniforms ``(n,)``, environment keys ``(n, 2)``. Drawing per step from
    ``fold_in(key, t)`` (rather than splitting a key per episode) keeps the random-number
    work small and makes a replay of the same episodes exact."""
    kz, ka, ks = jax.random.split(jax.random.fold_in(key, t), 3)
    return (jax.random.normal(kz, (n, num_actions)), jax.random.uniform(ka, (n,)),
            jax.random.split(ks, n))


def learning_episode(key, agent: AgentState, hyper: Hyper, beta, task: TabularTask, env_params, spec: Spec,
                     reset_key=None):
    """One episode of soft Thompson sampling with online expected-SARSA updates of ``q``
    (``zeta'`` drawn at ``s'`` for the target is reused to act at ``s'``); the task's known
    memories keep their ``q``. ``reset_key``: the key of the start state (default: from ``key``).

    Returns ``(q, return, length)``."""
    env = task.env
    A = task.num_actions
    k_reset, k_zeta, key = jax.random.split(key, 3)
    if reset_key is not None:
        k_reset = reset_key
    obs, env_state = env.reset_env(k_reset, env_params)
    zeta0 = memory.sample_zeta(k_zeta, A)
    sigma = agent.sigma

    def body(c):
        env_state, obs, zeta, done, q, ret, t = c
        zeta2, u, k_step = _draws(key, t, 1, A)
        s = _safe_row(task, obs)
        pi = memory.probs(q[s], sigma[s], zeta, beta)
        a = memory.action_from_uniform(u[0], pi)
        obs2, env_state2, r, terminated, _ = env.step_env(k_step[0], env_state, a, env_params)
        truncated = env.is_truncated(env_state2, env_params) | (t + 1 >= spec.max_steps)
        s2 = _safe_row(task, obs2)
        pi2 = memory.probs(q[s2], sigma[s2], zeta2[0], beta)
        boot = jnp.where(terminated, 0.0, jnp.dot(pi2, q[s2]))
        td = r + hyper.gamma * boot - q[s, a]
        q = q.at[s, a].add(hyper.lr_q * td)
        return (env_state2, obs2, zeta2[0], terminated | truncated, q, ret + r, t + 1)

    init = (env_state, obs, zeta0, jnp.asarray(False), agent.q, jnp.asarray(0.0), jnp.asarray(0))
    *_, q, ret, t = jax.lax.while_loop(lambda c: ~c[3], body, init)
    return jnp.where(task.known_mask, agent.q, q), ret, t


def _rollouts(key, n: int, agent: AgentState, hyper: Hyper, beta, task: TabularTask, env_params, spec: Spec,
              weights=None, start_key=None):
    """``n`` episodes with ``q``, ``sigma`` fixed, stepped together in one loop.

    ``weights=None``: returns ``objectives.RolloutStats`` (per-trajectory scalars, visits).
    ``weights=(c, w)``: replays the *same* episodes (same key) and returns the table
    ``sum_n sum_t [c_n e_nt Psi_nt + w_n dH_nt]`` ``(S, A)`` (see ``objectives.py``).
    The loop carries one table per agent, not one per trajectory, so vmapping many agents
    stays cheap. ``start_key``: all ``n`` episodes start from the start state this key draws
    (default: independent start states)."""
    env = task.env
    A, S = task.num_actions, task.num_states
    q, sigma = agent.q, agent.sigma
    k_reset, key = jax.random.split(key)
    reset_keys = (jax.random.split(k_reset, n) if start_key is None
                  else jnp.broadcast_to(start_key, (n,) + start_key.shape))
    obs, env_state = jax.vmap(env.reset_env, in_axes=(0, None))(reset_keys, env_params)
    kl_row_sums = jnp.sum(_kl_table(agent, hyper, task), axis=-1)  # (S,)
    accumulate = weights is not None

    def body(c):
        env_state, obs, active, st, table, t = c
        zeta, u, k_step = _draws(key, t, n, A)
        s = _safe_row(task, obs)  # (n,)
        pi = jax.vmap(memory.probs, in_axes=(0, 0, 0, None))(q[s], sigma[s], zeta, beta)
        a = memory.action_from_uniform(u, pi)
        obs2, env_state2, r, terminated, _ = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
            k_step, env_state, a, env_params)
        truncated = jax.vmap(env.is_truncated, in_axes=(0, None))(env_state2, env_params)
        truncated = truncated | (t + 1 >= spec.max_steps)
        m = active.astype(jnp.float32)
        st = st._replace(
            ret=st.ret + m * r,
            ent=st.ent + m * memory.entropy(pi),
            kl_visits=st.kl_visits + m * kl_row_sums[s],
            length=st.length + active.astype(jnp.int32),
            visits=st.visits.at[s].add(m),
        )
        if accumulate:
            c_n, w_n = weights
            e = jax.vmap(memory.score_sigma, in_axes=(0, 0, 0, None))(a, zeta, pi, beta)
            psi = jax.vmap(objectives.psi, in_axes=(None, 0, 0))(hyper.baseline, q[s], a)
            h = jax.vmap(memory.entropy_grad_sigma, in_axes=(0, 0, None))(zeta, pi, beta)
            table = table.at[s].add(m[:, None] * (c_n[:, None] * psi[:, None] * e + w_n[:, None] * h))
        keep = lambda new, old: jnp.where(active.reshape((n,) + (1,) * (new.ndim - 1)), new, old)
        env_state = jax.tree.map(keep, env_state2, env_state)
        obs = keep(obs2, obs)
        active = active & ~(terminated | truncated)
        return env_state, obs, active, st, table, t + 1

    st0 = objectives.RolloutStats(
        ret=jnp.zeros(n), ent=jnp.zeros(n), kl_visits=jnp.zeros(n), length=jnp.zeros(n, jnp.int32),
        visits=jnp.zeros(S),
    )
    table0 = jnp.zeros((S, A)) if accumulate else jnp.zeros(())
    c0 = (env_state, obs, jnp.ones(n, bool), st0, table0, jnp.asarray(0))
    *_, st, table, _ = jax.lax.while_loop(lambda c: jnp.any(c[2]), body, c0)
    return table if accumulate else st


def rollout_stats(key, n: int, agent: AgentState, hyper: Hyper, beta, task: TabularTask, env_params, spec: Spec,
                  start_key=None):
    """Per-trajectory sums of ``n`` episodes (no gradient): ``objectives.RolloutStats``."""
    return _rollouts(key, n, agent, hyper, beta, task, env_params, spec, start_key=start_key)


def sigma_gradient(key, n: int, agent: AgentState, hyper: Hyper, beta, task: TabularTask, env_params, spec: Spec,
                   start_key=None):
    """Stochastic gradient of the objective w.r.t. sigma from ``n`` trajectories, plus the
    storage-cost term. Returns ``(gradient (S, A), RolloutStats)``.

    Pass 1 sums each trajectory's scalars (return, entropy, access KL, length); pass 2
    replays the same trajectories and sums the weighted score and entropy gradients.
    ``start_key``: every trajectory starts from the state this key draws (see ``_rollouts``)."""
    stats = rollout_stats(key, n, agent, hyper, beta, task, env_params, spec, start_key)
    c, w, a = objectives.gradient_weights(hyper.objective, hyper.baseline, stats, hyper.lmbda, spec.horizon_T)
    table = _rollouts(key, n, agent, hyper, beta, task, env_params, spec, weights=(c, w), start_key=start_key)
    access = -a * hyper.lmbda * stats.visits[:, None] * memory.kl_gaussian_grad(agent.sigma, hyper.sigma_base)
    g = (table + access) / n + objectives.storage_gradient(
        hyper.objective, agent.sigma, hyper.sigma_base, hyper.lmbda)
    return g, stats


def update_sigma(sigma: jax.Array, grad: jax.Array, hyper: Hyper, spec: Spec,
                 task: TabularTask | None = None) -> jax.Array:
    """Gradient ascent step on sigma, clipped to ``[sigma_min, sigma_max]``; the task's
    known memories (if ``task`` is given) keep their sigma and stay out of the equal mean."""
    free = np.ones(sigma.shape[-2:], bool) if task is None else ~task.known_mask
    mean_free = jnp.sum(jnp.where(free, grad, 0.0)) / max(int(free.sum()), 1)
    grad = jnp.where(hyper.equal, mean_free, grad)
    new = jnp.clip(sigma + hyper.lr_sigma * grad, spec.sigma_min, spec.sigma_max)
    return jnp.where(free, new, sigma)


def _kl_table(agent: AgentState, hyper: Hyper, task: TabularTask | None) -> jax.Array:
    kl = memory.kl_gaussian(agent.sigma, hyper.sigma_base)
    return kl if task is None else jnp.where(task.known_mask, 0.0, kl)


def storage_kl(agent: AgentState, hyper: Hyper, task: TabularTask | None = None) -> jax.Array:
    """``sum_{s,a} KL(N(q, sigma^2) || N(q, sigma_base^2))`` over the memories that are
    not known (all of them when ``task`` is None or has none)."""
    return jnp.sum(_kl_table(agent, hyper, task))
