"""A generic policy for MultiDiscrete actions (ERA): independent categoricals per dimension.

``FactoredCategoricalPolicy(nvec)``: an MLP maps the observation to ``sum(nvec)`` logits, split
into one categorical per action dimension; ``log_prob`` is the sum over dimensions, the
entropy the (exact) sum of the dimensions' entropies, greedy the per-dimension argmax. No
validity handling: invalid actions are executed as sampled and the env's ``info["cost"]``
(ERA: 1 per invalid action) is what the safe-RL rules constrain.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ppo_jax.nn import MLP
from ppo_jax.policy import Act, Evaluation, Policy


class FactoredCategoricalPolicy(Policy):
    def __init__(self, nvec, hidden=(64, 64), activation: str = "tanh"):
        self.nvec = tuple(int(n) for n in np.ravel(np.asarray(nvec)))
        if not self.nvec or min(self.nvec) < 1:
            raise ValueError(f"FactoredCategoricalPolicy needs positive nvec, got {nvec!r}")
        self.max_n = max(self.nvec)
        self.actor = MLP(tuple(hidden), sum(self.nvec), activation, out_scale=0.01)
        self.critic = MLP(tuple(hidden), 1, activation, out_scale=1.0)
        # Padded (D, max_n) layout: unused slots get -inf logits.
        mask = np.zeros((len(self.nvec), self.max_n), bool)
        idx = np.zeros((len(self.nvec), self.max_n), np.int32)
        start = 0
        for d, n in enumerate(self.nvec):
            mask[d, :n] = True
            idx[d, :n] = np.arange(start, start + n)
            start += n
        self.mask, self.idx = jnp.asarray(mask), jnp.asarray(idx)

    def init(self, key, obs, env_state=None, env_params=None):
        k_a, k_c = jax.random.split(key)
        x = jnp.ravel(obs).astype(jnp.float32)
        return {"actor": self.actor.init(k_a, x), "critic": self.critic.init(k_c, x)}

    def _logp(self, params, obs):
        flat = self.actor.apply(params["actor"], jnp.ravel(obs).astype(jnp.float32))
        logits = jnp.where(self.mask, flat[self.idx], -jnp.inf)
        return jax.nn.log_softmax(logits, axis=-1)  # (D, max_n)

    def value(self, params, obs):
        return self.critic.apply(params["critic"], jnp.ravel(obs).astype(jnp.float32))[0]

    def _score(self, logp, action):
        return jnp.take_along_axis(logp, action.astype(jnp.int32)[:, None], axis=1).sum()

    def _entropy(self, logp):
        p = jnp.exp(logp)
        return -jnp.sum(jnp.where(self.mask, p * logp, 0.0))

    def act(self, params, key, obs, env_state=None, env_params=None) -> Act:
        logp = self._logp(params, obs)
        action = jax.random.categorical(key, logp, axis=-1).astype(jnp.int32)
        return Act(action, self._score(logp, action), self.value(params, obs))

    def evaluate(self, params, key, obs, action, extras=()) -> Evaluation:
        logp = self._logp(params, obs)
        return Evaluation(self._score(logp, action), self._entropy(logp), self.value(params, obs))

    def greedy(self, params, obs, env_state=None, env_params=None):
        return jnp.argmax(self._logp(params, obs), axis=-1).astype(jnp.int32)
