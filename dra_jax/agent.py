"""The tabular DRA agent: one trial = one learning episode + ``n_rollouts`` gradient rollouts.

Per trial (the original's loop, paper Sec. 2 "Algorithm"):

1. *Learning episode*: act by soft Thompson sampling and update ``q`` online by expected
   SARSA, ``q(s,a) += lr_q * (r + gamma * sum_a' pi(a'|s',zeta') q(s',a') - q(s,a))``, with a
   fresh ``zeta'`` at ``s'`` (reused to act at ``s'``); no bootstrap past a terminal state
   (a time-limit truncation bootstraps).
2. *Gradient rollouts*: ``n_rollouts`` episodes with ``q`` and ``sigma`` fixed, each summed
   into ``objectives.RolloutStats``; their mean gives the stochastic gradient of the chosen
   objective (``objectives.py``).
3. ``sigma += lr_sigma * (gradient + storage-cost gradient)``, clipped to
   ``[sigma_min, sigma_max]``. With ``allocation='equal'`` one precision is shared by every
   state-action: it moves by the mean of the per-entry gradients (the exact gradient of the
   shared parameter divided by the table size, so ``lr_sigma`` keeps its scale).

Everything is a pure function of pytrees: ``jit`` it, ``vmap`` it over seeds and over the
hyperparameters in ``Hyper`` (a lambda sweep is one vmapped call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from dra_jax import memory, objectives


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


def tabular_task(env, env_params) -> TabularTask:
    """Wrap an env exposing ``num_tabular_states``/``tabular_index`` (see ``envs_jax.dra_tasks``)."""
    for attr in ("num_tabular_states", "tabular_index"):
        if not hasattr(env, attr):
            raise ValueError(
                f"environment {getattr(env, 'name', env)!r} has no {attr!r}: the tabular DRA "
                "agent needs num_tabular_states(params) and tabular_index(obs, params)"
            )
    n = int(env.num_tabular_states(env_params))
    grid = tuple(env.tabular_grid_shape(env_params)) if hasattr(env, "tabular_grid_shape") else (n,)
    pft = getattr(env, "params_for_trial", None) or (lambda p, t: p)
    return TabularTask(
        env=env,
        env_params=env_params,
        num_states=n,
        num_actions=int(env.num_actions),
        index=lambda obs: env.tabular_index(obs, env_params),
        params_for_trial=pft,
        grid_shape=grid,
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

    n_rollouts: int = struct.field(pytree_node=False, default=10)
    sigma_min: float = struct.field(pytree_node=False, default=0.01)
    sigma_max: float = struct.field(pytree_node=False, default=100.0)
    horizon_T: float = struct.field(pytree_node=False, default=0.0)
    max_steps: int = struct.field(pytree_node=False, default=1000)


def init_agent(key: jax.Array, task: TabularTask, hyper: Hyper, q_init_scale: float = 0.0) -> AgentState:
    """``q ~ U(-q_init_scale, q_init_scale)`` (0: zeros), ``sigma = sigma0`` everywhere."""
    shape = (task.num_states, task.num_actions)
    q = q_init_scale * jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
    sigma = jnp.full(shape, 1.0) * hyper.sigma0
    return AgentState(q=q.astype(jnp.float32), sigma=sigma.astype(jnp.float32))


# --------------------------------------------------------------------------------------
# Episodes
# --------------------------------------------------------------------------------------
def _safe_row(task: TabularTask, obs) -> jax.Array:
    return jnp.clip(task.index(obs), 0, task.num_states - 1)


def learning_episode(key, agent: AgentState, hyper: Hyper, beta, task: TabularTask, env_params, spec: Spec):
    """One episode of soft Thompson sampling with online expected-SARSA updates of ``q``.

    Returns ``(q, return, length)``."""
    env = task.env
    A = task.num_actions
    k_reset, k_zeta, key = jax.random.split(key, 3)
    obs, env_state = env.reset_env(k_reset, env_params)
    zeta = memory.sample_zeta(k_zeta, A)
    sigma = agent.sigma

    def cond(c):
        return ~c[4]

    def body(c):
        key, env_state, obs, zeta, done, q, ret, t = c
        key, k_a, k_step, k_z = jax.random.split(key, 4)
        s = _safe_row(task, obs)
        pi = memory.probs(q[s], sigma[s], zeta, beta)
        a = memory.sample_action(k_a, pi)
        obs2, env_state2, r, terminated, _ = env.step_env(k_step, env_state, a, env_params)
        truncated = env.is_truncated(env_state2, env_params) | (t + 1 >= spec.max_steps)
        s2 = _safe_row(task, obs2)
        zeta2 = memory.sample_zeta(k_z, A)
        pi2 = memory.probs(q[s2], sigma[s2], zeta2, beta)
        boot = jnp.where(terminated, 0.0, jnp.dot(pi2, q[s2]))
        td = r + hyper.gamma * boot - q[s, a]
        q = q.at[s, a].add(hyper.lr_q * td)
        return (key, env_state2, obs2, zeta2, terminated | truncated, q, ret + r, t + 1)

    init = (key, env_state, obs, zeta, jnp.asarray(False), agent.q, jnp.asarray(0.0), jnp.asarray(0))
    _, _, _, _, _, q, ret, t = jax.lax.while_loop(cond, body, init)
    return q, ret, t


def gradient_rollout(key, agent: AgentState, hyper: Hyper, beta, task: TabularTask, env_params, spec: Spec):
    """One episode with ``q``, ``sigma`` fixed, summed into ``objectives.RolloutStats``."""
    env = task.env
    A = task.num_actions
    q, sigma = agent.q, agent.sigma
    k_reset, key = jax.random.split(key)
    obs, env_state = env.reset_env(k_reset, env_params)
    zeros = jnp.zeros_like(q)
    kl_row_sums = jnp.sum(memory.kl_gaussian(sigma, hyper.sigma_base), axis=-1)  # (S,)
    kl_grad_tab = memory.kl_gaussian_grad(sigma, hyper.sigma_base)  # (S, A)

    def cond(c):
        return ~c[3]

    def body(c):
        key, env_state, obs, done, st = c
        key, k_z, k_a, k_step = jax.random.split(key, 4)
        s = _safe_row(task, obs)
        zeta = memory.sample_zeta(k_z, A)
        pi = memory.probs(q[s], sigma[s], zeta, beta)
        a = memory.sample_action(k_a, pi)
        obs2, env_state2, r, terminated, _ = env.step_env(k_step, env_state, a, env_params)
        truncated = env.is_truncated(env_state2, env_params) | (st.length + 1 >= spec.max_steps)
        e = memory.score_sigma(a, zeta, pi, beta) * objectives.psi(hyper.baseline, q[s], a)
        st = st._replace(
            score=st.score.at[s].add(e),
            ent_grad=st.ent_grad.at[s].add(memory.entropy_grad_sigma(zeta, pi, beta)),
            visits=st.visits.at[s].add(1.0),
            ret=st.ret + r,
            ent=st.ent + memory.entropy(pi),
            length=st.length + 1,
        )
        return (key, env_state2, obs2, terminated | truncated, st)

    st0 = objectives.RolloutStats(
        score=zeros, ent_grad=zeros, kl_grad=zeros, ret=jnp.asarray(0.0), ent=jnp.asarray(0.0),
        kl_visits=jnp.asarray(0.0), length=jnp.asarray(0), visits=jnp.zeros(task.num_states),
    )
    *_, st = jax.lax.while_loop(cond, body, (key, env_state, obs, jnp.asarray(False), st0))
    # The access cost and its pathwise gradient depend on the visits only.
    return st._replace(
        kl_grad=st.visits[:, None] * kl_grad_tab,
        kl_visits=jnp.dot(st.visits, kl_row_sums),
    )


def sigma_gradient(keys, agent: AgentState, hyper: Hyper, beta, task: TabularTask, env_params, spec: Spec):
    """Mean over rollouts (one per key) of the objective's gradient, plus the storage term.

    Returns ``(gradient (S, A), per-rollout RolloutStats)``."""
    stats = jax.vmap(lambda k: gradient_rollout(k, agent, hyper, beta, task, env_params, spec))(keys)
    grads = jax.vmap(
        lambda st: objectives.trajectory_gradient(hyper.objective, hyper.baseline, st, hyper.lmbda, spec.horizon_T)
    )(stats)
    g = jnp.mean(grads, axis=0) + objectives.storage_gradient(
        hyper.objective, agent.sigma, hyper.sigma_base, hyper.lmbda
    )
    return g, stats


def update_sigma(sigma: jax.Array, grad: jax.Array, hyper: Hyper, spec: Spec) -> jax.Array:
    """Gradient ascent step on sigma, clipped to ``[sigma_min, sigma_max]``."""
    grad = jnp.where(hyper.equal, jnp.mean(grad), grad)
    return jnp.clip(sigma + hyper.lr_sigma * grad, spec.sigma_min, spec.sigma_max)


def storage_kl(agent: AgentState, hyper: Hyper) -> jax.Array:
    """``sum_{s,a} KL(N(q, sigma^2) || N(q, sigma_base^2))``."""
    return jnp.sum(memory.kl_gaussian(agent.sigma, hyper.sigma_base))
