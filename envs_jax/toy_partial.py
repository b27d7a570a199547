"""Toy-Partial (IAR paper, App. C, Fig. A.3): the POMDP of Sec. 3.1 of Singh, Jaakkola and
Jordan (1994), "Learning without state-estimation in partially observable Markovian decision
processes", with its two actions written as 2-dimensional actions.

The POMDP (Singh et al.'s example where the best stochastic memoryless policy is
arbitrarily better than every deterministic one): two hidden states ``1a`` (0) and ``1b``
(1) that give the same observation, two actions ``A`` and ``B``, deterministic moves::

    state 1a:  A -> 1b, reward +R        B -> 1a (stays), reward -R
    state 1b:  B -> 1a, reward +R        A -> 1b (stays), reward -R

Discounted values (Singh et al.): the deterministic memoryless policy "always A" has
``V(1a) = R - gamma R / (1 - gamma)`` and ``V(1b) = -R / (1 - gamma)`` ("always B" mirrors
it); the stochastic policy ``P(A) = P(B) = 1/2`` earns 0 in expectation every step, so
``V = 0``: the gap ``R / (1 - gamma)`` grows without bound as ``gamma -> 1``.

The IAR paper's augmentation (App. C): a 2-d action ``(x, y)`` in ``{0, 1}^2`` with
``(0, 1)`` = A, ``(1, 0)`` = B, and the two others "staying at the current state". The
appendix prints "(1, 1) and (0, 1)" for the staying actions, a typo ((0, 1) is A): we read
``(0, 0)`` and ``(1, 1)``. It does not state the staying actions' reward; we give them the
reward of the example's staying moves, ``-R`` (a reward of 0 would make "always stay" a
deterministic policy as good as the best stochastic one, defeating the example).

Episodes: ``max_steps_in_episode`` = 100 steps (truncation only; our choice, the original
code for this task was not published), the start state uniform over ``{1a, 1b}``;
observation: the constant vector ``[1.0]``. Undiscounted 100-step expected returns from the
uniform start (``R = 1``): "always A" (or B) ``1 - T = -99``, "always stay" ``-100``, the
1/2-1/2 mixture of A and B ``0``, which is the optimum over all memoryless stochastic
policies (after the first step the state law is ``(P(B), P(A))`` and the expected reward is
``-(P(A) - P(B))^2 R`` when ``P(A) + P(B) = 1``, less otherwise). A factored policy (independent
coordinates, ``P(x, y) = p(x) q(y)``) cannot put mass 1/2 on each of (0, 1) and (1, 0)
without mass 1/2 on the staying actions; ``tests/test_toy_partial.py`` computes its best
value by exact dynamic programming over a grid of ``(p, q)``.

``reset_to(key, params, index)`` starts in 1a for even ``index`` and 1b for odd
(``envs_jax.contracts.FixedStarts``). ``info["hidden"]`` is the state before the step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from envs_jax.spaces import MultiDiscrete

EPISODE_STEPS = 100
ACTION_A = (0, 1)  # the paper's 2-d code of action A
ACTION_B = (1, 0)  # ... of action B


@struct.dataclass
class ToyPartialState(environment.EnvState):
    hidden: jax.Array  # () int32: 0 = state 1a, 1 = state 1b


@struct.dataclass
class ToyPartialParams(environment.EnvParams):
    reward: float = 1.0  # R
    stay_reward: float = -1.0  # reward of the staying actions (0, 0) and (1, 1): -R
    max_steps_in_episode: int = EPISODE_STEPS


class ToyPartial(environment.Environment[ToyPartialState, ToyPartialParams]):
    """Toy-Partial (module docstring). Action: int array (2,) in ``{0, 1}^2``."""

    def __init__(self, default_params: ToyPartialParams | None = None):
        super().__init__()
        self._default_params = ToyPartialParams() if default_params is None else default_params

    @property
    def default_params(self) -> ToyPartialParams:
        return self._default_params

    @property
    def name(self) -> str:
        return "Toy-Partial"

    @property
    def num_actions(self) -> int:
        return 4

    def action_space(self, params: ToyPartialParams | None = None) -> MultiDiscrete:
        return MultiDiscrete([2, 2])

    def observation_space(self, params: ToyPartialParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (1,), jnp.float32)

    def state_space(self, params: ToyPartialParams | None = None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict({"hidden": spaces.Discrete(2), "time": spaces.Discrete(params.max_steps_in_episode)})

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        return jnp.ones((1,), jnp.float32)

    def step_env(self, key, state: ToyPartialState, action, params: ToyPartialParams):
        a = jnp.asarray(action).astype(jnp.int32).reshape(2)
        is_a = (a[0] == ACTION_A[0]) & (a[1] == ACTION_A[1])
        is_b = (a[0] == ACTION_B[0]) & (a[1] == ACTION_B[1])
        moves = jnp.where(state.hidden == 0, is_a, is_b)  # the action that leaves the current state
        stays = ~(is_a | is_b)
        reward = jnp.where(moves, params.reward, jnp.where(stays, params.stay_reward, -params.reward))
        hidden = jnp.where(moves, 1 - state.hidden, state.hidden).astype(jnp.int32)
        new_state = ToyPartialState(time=state.time + 1, hidden=hidden)
        info = {"hidden": state.hidden}
        return (self.get_obs(new_state, params), new_state, reward.astype(jnp.float32),
                jnp.array(False), info)

    def reset_env(self, key, params: ToyPartialParams):
        state = ToyPartialState(time=0, hidden=jax.random.randint(key, (), 0, 2, dtype=jnp.int32))
        return self.get_obs(state, params), state

    def reset_to(self, key, params: ToyPartialParams, index):
        """Start in 1a for even ``index``, 1b for odd."""
        state = ToyPartialState(time=0, hidden=(jnp.asarray(index) % 2).astype(jnp.int32))
        return self.get_obs(state, params), state


def make_toy_partial(*, reward: float = 1.0, stay_reward: float | None = None,
                     max_steps_in_episode: int = EPISODE_STEPS) -> tuple[ToyPartial, ToyPartialParams]:
    """``(env, params)`` for ``Toy-Partial``; ``stay_reward`` defaults to ``-reward``."""
    if not reward > 0:
        raise ValueError(f"reward (R) must be positive, got {reward}")
    if int(max_steps_in_episode) < 1:
        raise ValueError(f"max_steps_in_episode must be >= 1, got {max_steps_in_episode}")
    params = ToyPartialParams(
        reward=float(reward), stay_reward=float(-reward if stay_reward is None else stay_reward),
        max_steps_in_episode=int(max_steps_in_episode),
    )
    return ToyPartial(params), params
