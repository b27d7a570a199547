"""Probe environments with analytically known values (the rejax/Andy Jones debugging set).

Each isolates one piece of an RL learner; a learner that fails one has a bug there.

- ``constant``: one step, observation 0, reward 1.  V = 1.
- ``two_step``: two steps, observation = step index; reward 0 then 1.  V(0) = gamma, V(1) = 1.
- ``obs_reward``: one step, observation +-1 at random, reward = observation.  V(o) = o.
- ``action_reward``: one step, observation +-1, two actions; reward 1 when the action is
  ``(observation > 0)``, else -1.  Optimal policy: V(o) = 1 for both observations.
- ``nan_reward``: like ``constant`` but the reward is NaN from env step ``nan_after`` on
  (counted over the env's lifetime): tests that a run stops instead of training on NaN.
- ``cost``: one step, observation +-1, reward 1, and two costs in ``info["cost"]``:
  ``[observation > 0, 1]``.  V^c(+1) = (1, 1), V^c(-1) = (0, 1); every episode's second cost
  is exactly 1 (for multiplier updates with a closed form).

Fixed evaluation starts: ``reset_to(key, params, i)`` starts with observation +1 for even
``i`` and -1 for odd ``i`` (the kinds with a random observation; others as ``reset``).
Registry ids and ``env.name``: ``Probe-`` + the kind with ``-`` for ``_`` (``Probe-two-step``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

KINDS = ("constant", "two_step", "obs_reward", "action_reward", "nan_reward", "cost")


@struct.dataclass
class ProbeState(environment.EnvState):
    obs: jax.Array  # () the current observation value
    steps_total: jax.Array  # () steps since construction of this env copy (for nan_reward)


@struct.dataclass
class ProbeParams(environment.EnvParams):
    max_steps_in_episode: int = 1000  # never reached: probe episodes terminate
    nan_after: int = 10_000


class Probe(environment.Environment):
    def __init__(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"unknown probe kind {kind!r}; choose one of {KINDS}")
        self.kind = kind
        if kind == "cost":
            self.num_costs = 2  # envs_jax.contracts.Costs: info["cost"] has shape (2,)

    @property
    def default_params(self) -> ProbeParams:
        return ProbeParams()

    def _first_obs(self, key):
        if self.kind in ("obs_reward", "action_reward", "cost"):
            return jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        return jnp.zeros(())

    def reset_env(self, key, params):
        state = ProbeState(time=0, obs=self._first_obs(key), steps_total=jnp.zeros((), jnp.int32))
        return self.get_obs(state), state

    def reset_to(self, key, params, index):
        """Evaluation start ``index``: observation +1 for even, -1 for odd (random-observation kinds)."""
        obs, state = self.reset_env(key, params)
        if self.kind in ("obs_reward", "action_reward", "cost"):
            state = state.replace(obs=jnp.where(jnp.asarray(index) % 2 == 0, 1.0, -1.0))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        time = state.time + 1
        steps_total = state.steps_total + 1
        if self.kind == "two_step":
            reward = jnp.where(state.time == 1, 1.0, 0.0)
            terminated = time >= 2
            obs = jnp.asarray(time, jnp.float32)
        else:
            terminated = jnp.asarray(True)
            obs = state.obs
            if self.kind == "obs_reward":
                reward = state.obs
            elif self.kind == "action_reward":
                reward = jnp.where((action == 1) == (state.obs > 0), 1.0, -1.0)
            elif self.kind == "nan_reward":
                reward = jnp.where(steps_total >= params.nan_after, jnp.nan, 1.0)
            else:
                reward = jnp.asarray(1.0)
        info = {}
        if self.kind == "cost":
            info["cost"] = jnp.stack([(state.obs > 0).astype(jnp.float32), jnp.ones((), jnp.float32)])
        new_state = ProbeState(time=time, obs=obs, steps_total=steps_total)
        return self.get_obs(new_state), new_state, reward, terminated, info

    def reset(self, key, params=None):
        return super().reset(key, params)

    def step(self, key, state, action, params=None):
        # Keep steps_total across auto-resets (nan_reward counts over the env's lifetime).
        obs, new_state, reward, terminated, truncated, info = super().step(key, state, action, params)
        new_state = new_state.replace(steps_total=state.steps_total + 1)
        return obs, new_state, reward, terminated, truncated, info

    def get_obs(self, state, params=None, key=None):
        return jnp.reshape(state.obs, (1,)).astype(jnp.float32)

    def is_terminated(self, state, params):
        return jnp.asarray(state.time >= (2 if self.kind == "two_step" else 1))

    @property
    def name(self) -> str:
        """The registry id: ``Probe-two-step`` for kind ``two_step``."""
        return "Probe-" + self.kind.replace("_", "-")

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(-1.0, 2.0, (1,), jnp.float32)

    def state_space(self, params=None):
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "obs": spaces.Box(-1.0, 2.0, (), jnp.float32),
                "steps_total": spaces.Box(0, jnp.iinfo(jnp.int32).max, (), jnp.int32),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def make_probe(kind: str, **param_overrides):
    env = Probe(kind)
    return env, env.default_params.replace(**param_overrides)
