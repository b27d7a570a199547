"""Every PASPO sample is feasible: 10^5 actions per reference polytope (one vmapped call),
checked in float64 numpy against the env's rows and the simplex."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import envs_jax
from paspo_jax.policy import PASPOPolicy

NUM = 100_000


@pytest.mark.parametrize("env_id", ["PASPO-synth-7", "PASPO-compute-9", "PASPO-portfolio-13"])
def test_paspo_samples_never_violate(env_id):
    """max_j (A a - b)_j <= 1e-6, |sum(a) - 1| <= 1e-6, a >= 0 for 10^5 samples from a
    freshly initialised (de-bias off, heads near Beta(1, 1)) policy, and the env's own
    ``info["max_violation"]`` agrees."""
    env, params = envs_jax.make(env_id)
    pol = PASPOPolicy(env, params, debias=False)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    theta = pol.init(jax.random.PRNGKey(1), obs, state, params)

    @jax.jit
    def sample(key):
        out = jax.vmap(pol.act, in_axes=(None, 0, None, None, None))(theta, jax.random.split(key, NUM), obs, state,
                                                                     params)
        info = jax.vmap(lambda a: env.step(jax.random.PRNGKey(0), state, a, params)[-1]["max_violation"])(out.action)
        return out.action, info, out.metrics["infeasible"]

    actions, env_max_violation, infeasible = sample(jax.random.PRNGKey(2))
    a = np.asarray(actions, np.float64)
    A, b = np.asarray(params.A, np.float64), np.asarray(params.b, np.float64)
    assert np.max(a @ A.T - b) <= 1e-6
    assert np.abs(a.sum(1) - 1.0).max() <= 1e-6 and a.min() >= 0.0
    assert float(np.max(env_max_violation)) <= 1e-6
    assert float(np.max(infeasible)) == 0.0

