"""The policy interface the PPO engine trains, and the default MLP actor-critic.

Every method acts on ONE environment (unbatched arrays); the engine ``vmap``s them over
environments and minibatch rows, so a policy is written, read and tested per state.

A policy implements::

    init(key, obs, env_state, env_params) -> params
        Parameters (any pytree) from one example observation.
    act(params, key, obs, env_state, env_params) -> Act
        Sample the action executed in the environment. ``Act`` carries what the loss needs
        later: ``log_prob`` (the behaviour log-probability the PPO ratio divides by),
        ``value`` (the critic's V(obs)), ``extras`` (any pytree stored per step in the
        rollout and handed back to ``evaluate``/``extra_loss``: PASPO stores its LP
        intervals, IAR its valid-candidate set) and ``metrics`` (a dict of scalars averaged
        over the rollout into the update's metrics, e.g. IAR's valid-sample rate).
        ``env_state`` and ``env_params`` are there for policies that read constraints from
        the environment (``env.is_valid``, ``env.constraints``); others ignore them.
    evaluate(params, key, obs, action, extras) -> Evaluation
        ``log_prob`` of the stored ``action`` under ``params`` (same quantity as in ``act``),
        ``entropy`` (exact or a Monte-Carlo estimate; say which in the docstring) and
        ``value``. ``key`` is for estimates that sample (MC entropy, ELBO samples).
    value(params, obs) -> scalar
        The critic alone (used to bootstrap truncated episodes).
    extra_loss(params, key, batch) -> (loss, metrics)
        Optional extra terms added to the PPO loss, on a whole minibatch (``Batch``, with a
        leading batch axis). Default: none. IAR's flow ELBO lives here. With
        ``uses_costs = True`` the batch carries cost advantages from the engine's cost critic.
    greedy(params, obs, env_state, env_params) -> action
        The evaluation action (mode).

A policy whose gradient is not the plain score function (IAR's renormalised policy over
valid actions) returns, as ``log_prob``, the surrogate whose gradient is its estimator;
the engine only ever forms ``exp(log_prob - old_log_prob)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Sequence

import distrax
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from ppo_jax.nn import MLP  # also imported from here by the engine and older code

Params = Any
PyTree = Any


class Act(NamedTuple):
    action: jax.Array
    log_prob: jax.Array  # ()
    value: jax.Array  # ()
    extras: PyTree = ()
    metrics: dict = {}


class Evaluation(NamedTuple):
    log_prob: jax.Array  # ()
    entropy: jax.Array  # ()
    value: jax.Array  # ()


class Batch(NamedTuple):
    """A minibatch as the loss sees it; every leaf has a leading batch axis B."""

    obs: jax.Array  # (B, *obs_shape), normalised if the engine normalises
    action: jax.Array  # (B, *action_shape)
    log_prob: jax.Array  # (B,) behaviour log-probability
    value: jax.Array  # (B,) value at collection time
    advantage: jax.Array  # (B,) GAE advantage (unnormalised)
    target: jax.Array  # (B,) value target (advantage + value)
    extras: PyTree  # per-step extras from ``act``
    cost: PyTree = ()  # (B, C) raw step costs (envs reporting info["cost"]; else ())
    cost_value: PyTree = ()  # (B, C) cost critic at collection time (where a cost critic is built)
    cost_advantage: PyTree = ()  # (B, C) cost GAE advantage (unnormalised)
    cost_target: PyTree = ()  # (B, C) cost value target


class Policy:
    """Base class: subclasses implement ``init``, ``act``, ``evaluate``, ``value``.

    ``uses_costs = True`` asks the engine for a cost critic and cost GAE (``Batch.cost_*``).
    ``log_prob_exact = False`` says ``act``'s log-probability is an estimate (IAR's sandwich),
    so E[grad log_prob] = 0 need not hold (``tests/test_policy_contract.py``)."""

    uses_costs: bool = False
    log_prob_exact: bool = True

    def init(self, key, obs, env_state, env_params) -> Params:
        raise NotImplementedError

    def act(self, params, key, obs, env_state, env_params) -> Act:
        raise NotImplementedError

    def evaluate(self, params, key, obs, action, extras) -> Evaluation:
        raise NotImplementedError

    def value(self, params, obs) -> jax.Array:
        raise NotImplementedError

    def extra_loss(self, params, key, batch: Batch) -> tuple[jax.Array, dict]:
        return jnp.zeros(()), {}

    def greedy(self, params, obs, env_state, env_params) -> jax.Array:
        raise NotImplementedError


class MLPActorCritic(Policy):
    """Separate actor and critic MLPs; categorical for ``Discrete``, diagonal Gaussian
    (state-independent log-std) for ``Box`` actions. Entropy is exact.

    Gaussian actions are executed as sampled; environments clip to their bounds.
    """

    def __init__(self, action_space, hidden: Sequence[int] = (64, 64), activation: str = "tanh"):
        if isinstance(action_space, spaces.Discrete):
            self.discrete, out = True, int(action_space.n)
            self.action_shape: tuple = ()
        elif isinstance(action_space, spaces.Box):
            self.discrete, out = False, int(np.prod(action_space.shape))
            self.action_shape = tuple(action_space.shape)
        else:
            raise ValueError(f"MLPActorCritic supports Discrete and Box action spaces, got {action_space}")
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {activation!r}")
        self.actor = MLP(tuple(hidden), out, activation, out_scale=0.01)
        self.critic = MLP(tuple(hidden), 1, activation, out_scale=1.0)
        self.out = out

    def init(self, key, obs, env_state=None, env_params=None):
        k_actor, k_critic = jax.random.split(key)
        x = jnp.ravel(obs).astype(jnp.float32)
        params = {"actor": self.actor.init(k_actor, x), "critic": self.critic.init(k_critic, x)}
        if not self.discrete:
            params["log_std"] = jnp.zeros((self.out,), jnp.float32)
        return params

    def _dist(self, params, obs):
        logits = self.actor.apply(params["actor"], jnp.ravel(obs).astype(jnp.float32))
        if self.discrete:
            return distrax.Categorical(logits=logits)
        return distrax.MultivariateNormalDiag(logits, jnp.exp(params["log_std"]))

    def value(self, params, obs):
        return self.critic.apply(params["critic"], jnp.ravel(obs).astype(jnp.float32))[0]

    def act(self, params, key, obs, env_state=None, env_params=None) -> Act:
        dist = self._dist(params, obs)
        action = dist.sample(seed=key)
        log_prob = dist.log_prob(action)
        if not self.discrete:
            action = action.reshape(self.action_shape)
        return Act(action, log_prob, self.value(params, obs))

    def evaluate(self, params, key, obs, action, extras=()) -> Evaluation:
        dist = self._dist(params, obs)
        a = action if self.discrete else jnp.ravel(action)
        return Evaluation(dist.log_prob(a), dist.entropy(), self.value(params, obs))

    def greedy(self, params, obs, env_state=None, env_params=None):
        dist = self._dist(params, obs)
        mode = dist.mode()
        return mode if self.discrete else mode.reshape(self.action_shape)


@dataclasses.dataclass(frozen=True)
class MLPPolicyConfig:
    """The default actor-critic (``MLPActorCritic``) of ``--algo ppo``."""

    hidden: tuple[int, ...] = (64, 64)  # widths of the actor's and the critic's hidden layers
    activation: str = "tanh"  # "tanh" or "relu"
