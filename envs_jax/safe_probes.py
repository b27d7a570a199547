"""Safe-RL probes: tiny tasks with a known *constrained* optimum (tests of safe-RL learners).

``Safe-bandit``: a one-step two-arm bandit with a constant observation 0. Arm 0 ("A") pays
reward ``reward_a`` (1) and costs ``cost_a`` (1); arm 1 ("B") pays ``reward_b`` (0.5) and costs 0.
The cost is reported in ``info["cost"]`` (a scalar, the engine's cost channel). A policy that
plays A with probability ``p`` has return ``J_R = 0.5 + 0.5 p`` and episode cost ``J_C = p``; under
the constraint ``J_C <= d`` (the learner's ``cost_limit``, 0 <= d <= 1) the optimum is
``p* = d``: return ``0.5 + 0.5 d`` with cost exactly ``d`` (see :func:`bandit_optimum`).
A uniform initial policy has cost 0.5, so any ``d < 0.5`` forces the learner to move.

``Safe-bandit-box``: the same bandit with a continuous action ``u`` (Box, shape (1,)); the arm
is A when ``u > 0``, else B (a Gaussian policy with mean ``m``, std ``s`` plays A with
probability ``Phi(m / s)``). Same optimum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class BanditState(environment.EnvState):
    pass


@struct.dataclass
class BanditParams(environment.EnvParams):
    reward_a: float = 1.0
    cost_a: float = 1.0
    reward_b: float = 0.5
    max_steps_in_episode: int = 1  # one-step episodes


def bandit_optimum(cost_limit: float, params: BanditParams | None = None) -> tuple[float, float]:
    """``(return, cost)`` of the best policy with episode cost <= ``cost_limit`` (closed form)."""
    p = BanditParams() if params is None else params
    if not 0.0 <= cost_limit:
        raise ValueError(f"cost_limit must be >= 0, got {cost_limit}")
    prob_a = min(cost_limit / p.cost_a, 1.0) if p.reward_a > p.reward_b else 0.0
    return prob_a * p.reward_a + (1 - prob_a) * p.reward_b, prob_a * p.cost_a


class SafeBandit(environment.Environment):
    num_costs = 1  # envs_jax.contracts.Costs: info["cost"] is a scalar

    def __init__(self, continuous: bool = False):
        self.continuous = continuous

    @property
    def default_params(self) -> BanditParams:
        return BanditParams()

    def reset_env(self, key, params):
        state = BanditState(time=0)
        return self.get_obs(state), state

    def reset_to(self, key, params, index):
        """Evaluation start ``index``: the bandit has one start."""
        return self.reset_env(key, params)

    def _arm_a(self, action):
        if self.continuous:
            return jnp.reshape(action, (-1,))[0] > 0
        return action == 0

    def step_env(self, key, state, action, params):
        a = self._arm_a(action)
        reward = jnp.where(a, params.reward_a, params.reward_b).astype(jnp.float32)
        cost = jnp.where(a, params.cost_a, 0.0).astype(jnp.float32)
        new_state = BanditState(time=state.time + 1)
        return self.get_obs(new_state), new_state, reward, jnp.asarray(True), {"cost": cost}

    def get_obs(self, state, params=None, key=None):
        return jnp.zeros((1,), jnp.float32)

    def is_terminated(self, state, params):
        return jnp.asarray(state.time >= 1)

    @property
    def name(self) -> str:
        return "Safe-bandit-box" if self.continuous else "Safe-bandit"

    @property
    def num_actions(self) -> int:
        return 1 if self.continuous else 2

    def action_space(self, params=None):
        if self.continuous:
            return spaces.Box(-3.0, 3.0, (1,), jnp.float32)
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def state_space(self, params=None):
        params = self.default_params if params is None else params
        return spaces.Dict({"time": spaces.Discrete(params.max_steps_in_episode)})


def make_safe_bandit(continuous: bool = False, **param_overrides):
    env = SafeBandit(continuous)
    return env, env.default_params.replace(**param_overrides)
