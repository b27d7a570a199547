"""Memory allocation for budgeted planning in the Huys task (paper Fig. 3).

The agent plans from a random start state (one of 6) with a tree search of ``depth`` moves.
At the start of each trial it reads every memory once, ``Q~ = q* + sigma * zeta``,
``zeta ~ N(0, I)``, where ``q*(m, s, a)`` is the true optimal value with ``m`` moves left
(``optimal_q``, by backward induction). With a budget of ``k`` paths (``k * depth`` node
accesses) it explores paths depth-first from the root, always taking the child with the
larger ``Q~`` first and never re-exploring an exhausted subtree (the original's "disallow
re-exploring" rule): it visits the first ``k`` leaves of the depth-first order in which
each node's children are sorted by ``Q~``. It then takes the best explored path; the trial's
reward is that path's total reward.

Objective (the DRA objective of the paper with the planner as the policy)::

    F(sigma) = E_{s0, zeta}[ max_{explored paths} R(path) ] - lambda * sum KL(N(q*, sigma^2) || N(q*, sigma_base^2))

over the memories with 2..depth moves left (24 for depth 3); the memories of the last move
(immediate rewards) are fixed at ``sigma = sigma_base_last = 1`` and cost nothing, as in the
original. Flexible precision: one sigma per memory; equal precision: one shared sigma.

Deviation from the original: it optimises sigma by CMA-ES (flexible) and Bayesian
optimisation (equal) on Monte-Carlo estimates. Here flexible sigma follows the
score-function gradient (``score_gradient``: ``d/dsigma E[f] = E[(f - b) (zeta^2 - 1) / sigma]``,
leave-one-out baseline ``b``) with Adam, projected on ``[1, 100]``, from several restarts;
equal precision is tuned on a grid. The original reports, per budget, the *mean* over its
10 restarts of each restart's Monte-Carlo objective (1000 trials; ``plotting.plot_curves``),
not the best restart. Its search is the same as this one: its bookkeeping of explored
paths (appending to the first path that ends in the current state) indexes states by
depth, so an unfinished path is never confused with another, and its ``N_visitsLeft``
counters give the same depth-first order with children ranked by ``Q~``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dra_jax import memory
from envs_jax.dra_tasks import HUYS_NUM_NODES, HUYS_REWARD, HUYS_SUCC


def optimal_q(depth: int = 3) -> np.ndarray:
    """``q*[depth - m, s, a]``: optimal value of action ``a`` in state ``s`` with ``m`` moves
    left (``m = depth .. 1``), by backward induction. Shape ``(depth, 6, 2)``."""
    q = np.zeros((depth, HUYS_NUM_NODES, 2))
    v_next = np.zeros(HUYS_NUM_NODES)
    for m in range(1, depth + 1):
        qm = HUYS_REWARD + v_next[HUYS_SUCC]
        q[depth - m] = qm
        v_next = qm.max(axis=1)
    return q


@dataclass(frozen=True)
class PathTable:
    """Every leaf of every start state's tree: ``(6, 2**depth)`` entries."""

    actions: np.ndarray  # (L, depth) action bits of each leaf path, L = 2**depth
    nodes: np.ndarray  # (6, L, depth) state at each depth of each path
    rewards: np.ndarray  # (6, L) total reward of each path


def path_table(depth: int = 3) -> PathTable:
    acts = np.array(list(itertools.product((0, 1), repeat=depth)), dtype=np.int32)
    L = acts.shape[0]
    nodes = np.zeros((HUYS_NUM_NODES, L, depth), dtype=np.int32)
    rewards = np.zeros((HUYS_NUM_NODES, L), dtype=np.float32)
    for s0 in range(HUYS_NUM_NODES):
        for leaf in range(L):
            s = s0
            for i in range(depth):
                nodes[s0, leaf, i] = s
                rewards[s0, leaf] += HUYS_REWARD[s, acts[leaf, i]]
                s = HUYS_SUCC[s, acts[leaf, i]]
    return PathTable(actions=acts, nodes=nodes, rewards=rewards)


def planned_reward(q_tilde: jax.Array, s0: jax.Array, k: int | jax.Array, table: PathTable) -> jax.Array:
    """Reward of the best of the first ``k`` depth-first paths from ``s0`` whose children are
    ordered by ``q_tilde`` (shape ``(depth, 6, 2)``)."""
    depth = table.actions.shape[1]
    nodes = jnp.asarray(table.nodes)[s0]  # (L, depth)
    acts = jnp.asarray(table.actions)  # (L, depth)
    level = jnp.arange(depth)
    qt = q_tilde[level[None, :], nodes]  # (L, depth, 2)
    greedy = jnp.argmax(qt, axis=-1)  # (L, depth)
    off = (acts != greedy).astype(jnp.int32)
    rank = jnp.sum(off * (2 ** (depth - 1 - level))[None, :], axis=1)  # DFS position of each leaf
    rewards = jnp.asarray(table.rewards)[s0]
    return jnp.max(jnp.where(rank < k, rewards, -jnp.inf))


class HuysPlanner:
    """Monte-Carlo objective and gradients of the budgeted planner for a given ``depth``."""

    def __init__(self, depth: int = 3, lmbda: float = 1.0, sigma_base: float = 100.0,
                 sigma_last: float = 1.0, sigma_bounds: tuple[float, float] = (1.0, 100.0)):
        if depth < 2:
            raise ValueError(f"depth must be >= 2 (memories with >= 2 moves left are allocated), got {depth}")
        self.depth = depth
        self.lmbda = lmbda
        self.sigma_base = sigma_base
        self.sigma_last = sigma_last
        self.bounds = sigma_bounds
        self.q_star = jnp.asarray(optimal_q(depth), jnp.float32)
        self.table = path_table(depth)
        self.n_free = (depth - 1) * HUYS_NUM_NODES * 2
        self.n_leaves = 2**depth

    def full_sigma(self, sigma_free: jax.Array) -> jax.Array:
        """(n_free,) -> (depth, 6, 2) with the last move's memories at ``sigma_last``."""
        free = sigma_free.reshape(self.depth - 1, HUYS_NUM_NODES, 2)
        last = jnp.full((1, HUYS_NUM_NODES, 2), self.sigma_last)
        return jnp.concatenate([free, last], axis=0)

    def cost(self, sigma_free: jax.Array) -> jax.Array:
        return self.lmbda * jnp.sum(memory.kl_gaussian(sigma_free, self.sigma_base))

    def rewards(self, key, sigma_free: jax.Array, k, n: int) -> tuple[jax.Array, jax.Array]:
        """``n`` trials: (rewards ``(n,)``, free-memory noise ``zeta`` ``(n, n_free)``)."""
        k_s, k_z = jax.random.split(key)
        s0 = jax.random.randint(k_s, (n,), 0, HUYS_NUM_NODES)
        zeta = jax.random.normal(k_z, (n, self.depth, HUYS_NUM_NODES, 2))
        sig = self.full_sigma(sigma_free)
        qt = self.q_star[None] + sig[None] * zeta
        f = jax.vmap(lambda q, s: planned_reward(q, s, k, self.table))(qt, s0)
        return f, zeta[:, : self.depth - 1].reshape(n, -1)

    def objective(self, key, sigma_free, k, n: int = 100_000) -> dict[str, jax.Array]:
        f, _ = self.rewards(key, sigma_free, k, n)
        c = self.cost(sigma_free)
        return {"reward": jnp.mean(f), "cost": c, "objective": jnp.mean(f) - c}

    def score_gradient(self, key, sigma_free, k, n: int) -> jax.Array:
        """Score-function estimate of ``dF/dsigma_free`` (leave-one-out baseline) plus the
        closed-form KL gradient."""
        f, zeta = self.rewards(key, sigma_free, k, n)
        b = (jnp.sum(f) - f) / (n - 1)
        score = (zeta**2 - 1.0) / sigma_free[None]
        g_reward = jnp.mean((f - b)[:, None] * score, axis=0)
        return g_reward - self.lmbda * memory.kl_gaussian_grad(sigma_free, self.sigma_base)

    def optimize_flexible(self, key, k, n_steps: int = 1500, batch: int = 4096, lr: float = 1.0,
                          sigma_init: jax.Array | None = None) -> jax.Array:
        """Projected Adam ascent on the flexible sigma (one restart; vmap over keys)."""
        k0, key = jax.random.split(key)
        if sigma_init is None:
            sigma_init = 50.0 + 15.0 * jax.random.normal(k0, (self.n_free,))  # orig restarts
        sigma = jnp.clip(sigma_init, *self.bounds)
        opt = optax.adam(lr)
        opt_state = opt.init(sigma)

        def step(carry, key):
            sigma, opt_state = carry
            g = self.score_gradient(key, sigma, k, batch)
            upd, opt_state = opt.update(-g, opt_state, sigma)
            sigma = jnp.clip(optax.apply_updates(sigma, upd), *self.bounds)
            return (sigma, opt_state), None

        (sigma, _), _ = jax.lax.scan(step, (sigma, opt_state), jax.random.split(key, n_steps))
        return sigma

    def equal_objective_grid(self, key, k, grid: jax.Array, n: int = 50_000) -> jax.Array:
        """Objective of equal precision for each shared sigma in ``grid`` (common noise)."""
        def one(s):
            return self.objective(key, jnp.full((self.n_free,), s), k, n)["objective"]

        return jax.lax.map(one, grid)
