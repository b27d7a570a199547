"""``PASPO-capacity-7``: an allocation task whose constraints ``(A, b)`` change with the state.

The PASPO paper (Winkel et al. 2024) assumes one fixed polytope and names state-dependent
constraints as an open question (its open question 2). This env is ours, built to exercise that case:
``env.constraints(state, params)`` returns a different ``(A, b)`` in every state, both the
right-hand side ``b`` and the coefficients ``A``.

Story: one unit of load is spread over 7 sites (data centres, generators, ...). Site ``i``
yields a fixed utility ``u_i`` per unit of load; it has a *capacity* ``c_i`` (the largest
share it can take this step) that wears down when the site is used and recovers when it rests,
and an energy *price* ``p_i`` that drifts. The step's energy bill must stay within a budget.

State: capacities ``c`` (7,) in ``[c_min, 1]``, prices ``p`` (7,) in ``[p_low, p_high]``.

Constraints in state ``s`` (m = 8 rows, each scaled to unit norm):

- capacity rows ``a_i <= c_i`` (i = 0..6; ``A`` rows = identity, ``b`` = ``c``);
- budget row ``p . a <= B(s)`` with ``B(s) = cost_min(s) + budget_slack * (cost_max(s) -
  cost_min(s)) + budget_margin``, where ``cost_min / cost_max`` are the least / largest energy bill of any
  allocation meeting the capacity rows (a fractional knapsack, solved exactly by filling the
  cheapest / dearest sites first, :func:`knapsack_cost`). The small ``budget_margin`` (1e-3)
  keeps a sliver of interior even in the (rare) states where every price coincides.

Feasibility in every state: ``7 c_min >= 1`` (checked at construction; 1.4 by default) makes
the capacity rows leave a non-empty part of the simplex, and the cheapest allocation meets the
budget row, so the polytope is never empty.

Dynamics after allocating ``a`` (reward ``u . a``):

    c' = clip(c + recover * (1 - c) - wear * a, c_min, 1)
    p' = clip(p + reversion * (1 - p) + volatility * eps, p_low, p_high),  eps ~ N(0, I).

Reset: ``c ~ U(c_min, 1)``, ``p ~ U(p_low, p_high)`` per site. Episodes are 20 steps (the 20th
ends the episode: ``terminated`` and ``truncated`` both True). Utilities ``u ~ U(0.2, 1)`` are
drawn from ``seed`` in numpy at construction and stored in the params.

Observation (float32, 16): ``[c (7), p (7), B(s) (1), fraction of the episode left (1)]``;
``(A, b)`` themselves come from ``env.constraints(state, params)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from envs_jax.allocation import AllocationEnv

NUM_SITES = 7


@struct.dataclass
class CapacityState:
    c: jax.Array  # (7,) capacities: largest share each site can take now
    p: jax.Array  # (7,) energy price per unit of load at each site
    time: int = 0


@struct.dataclass
class CapacityParams:
    u: jax.Array  # (7,) utility per unit of load (reward u . a)
    c_min: float = 0.2  # capacity floor; 7 * c_min >= 1 keeps every state feasible
    recover: float = 0.1  # capacity recovery rate towards 1 per step
    wear: float = 0.5  # capacity lost per unit share allocated
    p_low: float = 0.5  # price range
    p_high: float = 1.5
    reversion: float = 0.2  # price mean reversion towards 1 per step
    volatility: float = 0.2  # price noise standard deviation per step
    budget_slack: float = 0.5  # B = cost_min + slack * (cost_max - cost_min) + margin
    budget_margin: float = 1e-3  # keeps an interior when cost_max == cost_min
    violation_penalty: float = 0.0  # reward -= penalty * info["violation"]; 0 = only measure
    max_steps_in_episode: int = 20  # steps per episode (our choice)


def knapsack_cost(p: jax.Array, c: jax.Array) -> jax.Array:
    """``min p . a`` over ``{0 <= a <= c, sum(a) = 1}`` (needs ``sum(c) >= 1``).

    Fractional knapsack: fill the cheapest sites up to their capacity until one unit is placed.
    ``-knapsack_cost(-p, c)`` is the maximum.
    """
    order = jnp.argsort(p)
    p_sorted, c_sorted = p[order], c[order]
    placed_before = jnp.cumsum(c_sorted) - c_sorted
    x = jnp.clip(1.0 - placed_before, 0.0, c_sorted)
    return jnp.dot(p_sorted, x)


def budget(c: jax.Array, p: jax.Array, params: CapacityParams) -> jax.Array:
    """``B(s) = cost_min + budget_slack * (cost_max - cost_min) + budget_margin``."""
    lo = knapsack_cost(p, c)
    hi = -knapsack_cost(-p, c)
    return lo + params.budget_slack * (hi - lo) + params.budget_margin


class PaspoCapacity(AllocationEnv):
    """Allocation with state-dependent capacity and budget constraints (module docstring)."""

    def __init__(
        self,
        seed: int = 0,
        *,
        c_min: float = 0.2,
        recover: float = 0.1,
        wear: float = 0.5,
        p_low: float = 0.5,
        p_high: float = 1.5,
        reversion: float = 0.2,
        volatility: float = 0.2,
        budget_slack: float = 0.5,
        budget_margin: float = 1e-3,
        violation_penalty: float = 0.0,
        max_steps_in_episode: int = 20,
    ):
        """``PASPO-capacity-7``; ``seed`` draws the utilities ``u``. It builds its own
        ``default_params``; ``exact_constraints`` is None (the constraints depend on the state)."""
        super().__init__()
        if not NUM_SITES * c_min >= 1.0 or not c_min <= 1.0:
            raise ValueError(
                f"c_min must lie in [1/{NUM_SITES}, 1] so that every state is feasible, got {c_min}"
            )
        if not 0.0 < p_low <= p_high:
            raise ValueError(f"need 0 < p_low <= p_high, got p_low={p_low}, p_high={p_high}")
        if not 0.0 <= budget_slack <= 1.0:
            raise ValueError(f"budget_slack must lie in [0, 1], got {budget_slack}")
        if budget_margin < 0:
            raise ValueError(f"budget_margin must be non-negative, got {budget_margin}")
        if max_steps_in_episode < 1:
            raise ValueError(f"max_steps_in_episode must be positive, got {max_steps_in_episode}")
        self.num_entities = NUM_SITES
        u = np.random.default_rng(seed).uniform(0.2, 1.0, size=NUM_SITES)
        self._params = CapacityParams(
            u=jnp.asarray(u, jnp.float32),
            c_min=float(c_min),
            recover=float(recover),
            wear=float(wear),
            p_low=float(p_low),
            p_high=float(p_high),
            reversion=float(reversion),
            volatility=float(volatility),
            budget_slack=float(budget_slack),
            budget_margin=float(budget_margin),
            violation_penalty=float(violation_penalty),
            max_steps_in_episode=int(max_steps_in_episode),
        )

    @property
    def name(self) -> str:
        return "PASPO-capacity-7"

    @property
    def default_params(self) -> CapacityParams:
        """The params this env was built with."""
        return self._params

    def constraints(self, state: CapacityState, params: CapacityParams):
        """``A (8, 7)``, ``b (8,)`` of ``state``: capacity rows ``a_i <= c_i`` and the budget
        row ``p . a <= B(s)``, the latter scaled to unit norm."""
        norm = jnp.linalg.norm(state.p)
        A = jnp.concatenate([jnp.eye(NUM_SITES, dtype=jnp.float32), (state.p / norm)[None]])
        b = jnp.concatenate([state.c, budget(state.c, state.p, params)[None] / norm])
        return A.astype(jnp.float32), b.astype(jnp.float32)

    def _transition(self, key, state, a, params):
        reward = jnp.dot(params.u, a)
        c = jnp.clip(state.c + params.recover * (1.0 - state.c) - params.wear * a, params.c_min, 1.0)
        eps = jax.random.normal(key, (NUM_SITES,))
        p = jnp.clip(
            state.p + params.reversion * (1.0 - state.p) + params.volatility * eps,
            params.p_low,
            params.p_high,
        )
        new_state = CapacityState(c=c, p=p, time=state.time + 1)
        return self.get_obs(new_state, params), new_state, reward, self.is_terminated(new_state, params), {}

    def reset_env(self, key, params):
        k_c, k_p = jax.random.split(key)
        c = jax.random.uniform(k_c, (NUM_SITES,), minval=params.c_min, maxval=1.0)
        p = jax.random.uniform(k_p, (NUM_SITES,), minval=params.p_low, maxval=params.p_high)
        state = CapacityState(c=c, p=p, time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        """``[c (7), p (7), B(s) (1), steps left / max steps (1)]``, float32 (16,)."""
        params = self.default_params if params is None else params
        left = 1.0 - state.time / params.max_steps_in_episode
        extra = jnp.stack([budget(state.c, state.p, params), jnp.asarray(left, jnp.float32)])
        return jnp.concatenate([state.c, state.p, extra]).astype(jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.asarray(state.time >= params.max_steps_in_episode)

    def observation_space(self, params=None) -> spaces.Box:
        params = self.default_params if params is None else params
        low = jnp.concatenate(
            [jnp.full(NUM_SITES, params.c_min), jnp.full(NUM_SITES, params.p_low), jnp.array([params.p_low, 0.0])]
        )
        high = jnp.concatenate(
            [jnp.ones(NUM_SITES), jnp.full(NUM_SITES, params.p_high), jnp.array([params.p_high, 1.0])]
        )
        return spaces.Box(low.astype(jnp.float32), high.astype(jnp.float32), (2 * NUM_SITES + 2,), jnp.float32)

    def state_space(self, params=None) -> spaces.Dict:
        params = self.default_params if params is None else params
        full = lambda x: jnp.full(NUM_SITES, x, jnp.float32)  # noqa: E731
        return spaces.Dict(
            {
                "c": spaces.Box(full(params.c_min), jnp.ones(NUM_SITES), (NUM_SITES,), jnp.float32),
                "p": spaces.Box(full(params.p_low), full(params.p_high), (NUM_SITES,), jnp.float32),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def make_capacity(seed: int = 0, **kwargs) -> tuple[PaspoCapacity, CapacityParams]:
    """``(env, env.default_params)`` for ``PASPO-capacity-7``; keywords: :class:`PaspoCapacity`."""
    env = PaspoCapacity(seed, **kwargs)
    return env, env.default_params


__all__ = ["CapacityParams", "CapacityState", "PaspoCapacity", "budget", "knapsack_cost", "make_capacity"]
