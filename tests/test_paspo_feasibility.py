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



def test_long_lp_chains_stay_feasible_where_their_lps_fail():
    """PASPO-synth-50 on the LP path with Beta(1, 1) heads: the remaining slice of the polytope
    shrinks below float32 resolution along the chain (median interval width ~3e-8 by entry
    20), so the LPs of late entries fail in most actions. The policy then completes the
    action from the last LP vertices (``PASPOPolicy._chain``); checked in float64 numpy
    against the env's rows (before the completion, 92% of these actions violated by up to
    0.2). The failed entries are degenerate: stored interval [a_i, a_i], log-prob 0, and
    ``evaluate`` (stored intervals) gives ``act``'s log-prob."""
    env, params = envs_jax.make("PASPO-synth-50")
    pol = PASPOPolicy(env, params, debias=False, bounds="lp")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    theta = pol.init(jax.random.PRNGKey(1), obs, state, params)
    keys = jax.random.split(jax.random.PRNGKey(2), 64)

    @jax.jit
    def sample(keys):
        out = jax.vmap(pol.act, in_axes=(None, 0, None, None, None))(theta, keys, obs, state, params)
        ev = jax.vmap(pol.evaluate, in_axes=(None, None, None, 0, 0))(theta, keys[0], obs, out.action, out.extras)
        return out, ev

    out, ev = sample(keys)
    a = np.asarray(out.action, np.float64)
    A, b = np.asarray(params.A, np.float64), np.asarray(params.b, np.float64)
    assert float(np.mean(np.asarray(out.metrics["infeasible"]) > 0)) > 0.5  # the case under test occurs
    assert np.max(a @ A.T - b) <= 1e-6
    assert np.abs(a.sum(1) - 1.0).max() <= 1e-6 and a.min() >= 0.0
    lo, hi = np.asarray(out.extras["a_min"]), np.asarray(out.extras["a_max"])
    assert np.all(lo <= a[:, :-1] + 1e-7) and np.all(a[:, :-1] <= hi + 1e-7)
    np.testing.assert_allclose(np.asarray(ev.log_prob), np.asarray(out.log_prob), rtol=1e-4, atol=1e-3)
