"""UCB and KR-UCB over generated candidates."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mu_jax.search import kernel, kr_ucb_search, max_actions, ucb_search

MEANS = np.asarray([0.2, 0.5, 0.8, 0.45, 0.7])
NOISE = 0.2


def _bandit(means, noise):
    means = jnp.asarray(means, jnp.float32)
    return lambda key, arm: means[arm] + noise * jax.random.normal(key)


def _ucb1_reference(means, noise_draws, budget, c):
    """Textbook UCB1 in numpy; pull t sees ``means[arm] + noise * noise_draws[t]``."""
    m = len(means)
    n, s = np.zeros(m), np.zeros(m)
    for t in range(budget):
        if t < m:
            arm = t
        else:
            arm = int(np.argmax(s / n + c * np.sqrt(2.0 * math.log(t) / n)))
        n[arm] += 1
        s[arm] += means[arm] + NOISE * noise_draws[t]
    return n


def test_ucb_matches_numpy_ucb1_pull_for_pull():
    key = jax.random.PRNGKey(0)
    budget = 300
    draws = np.asarray(jax.vmap(jax.random.normal)(jax.random.split(key, budget)))
    res = jax.jit(lambda k: ucb_search(k, _bandit(MEANS, NOISE), len(MEANS), budget, 1.0))(key)
    np.testing.assert_array_equal(res.counts, _ucb1_reference(MEANS, draws, budget, 1.0))


def test_ucb_picks_the_best_arm_of_a_bandit_with_known_means():
    keys = jax.random.split(jax.random.PRNGKey(1), 64)
    res = jax.jit(jax.vmap(lambda k: ucb_search(k, _bandit(MEANS, NOISE), len(MEANS), 1000, 1.0)))(keys)
    assert np.mean(np.asarray(res.choice) == 2) >= 0.95
    assert np.all(np.asarray(res.counts).argmax(-1) == np.asarray(res.choice))
    # most pulls go to the best arm
    assert np.mean(np.asarray(res.counts)[:, 2]) > 0.5 * 1000


def test_ucb_rejects_budget_below_arms():
    with pytest.raises(ValueError, match="budget"):
        ucb_search(jax.random.PRNGKey(0), _bandit(MEANS, NOISE), 5, 3)


def test_kr_ucb_without_widening_and_with_a_narrow_kernel_is_ucb1():
    """K -> identity: W = n, v = empirical mean, sum W = t; C = sqrt(2) c gives UCB1's index."""
    m = len(MEANS)
    actions = jnp.stack([jnp.arange(m, dtype=jnp.float32), jnp.zeros(m)], -1)  # points 1 apart
    means = jnp.asarray(MEANS, jnp.float32)

    def reward(key, a):
        arm = jnp.argmin(jnp.abs(actions[:, 0] - a[0]))
        return means[arm] + NOISE * jax.random.normal(key)

    key = jax.random.PRNGKey(2)
    budget = 200
    kr = jax.jit(
        lambda k: kr_ucb_search(k, reward, actions, budget, bandwidth=1e-3, c=math.sqrt(2.0), widen_k=0.0, low=-10, high=10)
    )(key)
    ucb = ucb_search(key, _bandit(MEANS, NOISE), m, budget, 1.0)
    assert int(kr.n_actions) == m
    np.testing.assert_array_equal(np.asarray(kr.counts)[:m], np.asarray(ucb.counts))


def test_kr_ucb_kernel_and_recommendation_of_largest_kernel_weighted_visits():
    """Gaussian kernel as in numpy; 'kernel_visits' recommends argmax W(a) = sum_b K(a, b) n_b,
    the default the most pulled action."""
    actions = jnp.asarray([[0.2, 0.2], [0.23, 0.21], [0.8, 0.5]])
    reward = lambda key, a: -jnp.sum((a - 0.25) ** 2) + 0.05 * jax.random.normal(key)
    res = kr_ucb_search(jax.random.PRNGKey(3), reward, actions, 50, recommend="kernel_visits")
    P = int(res.n_actions)
    pool, n, s = np.asarray(res.actions)[:P], np.asarray(res.counts)[:P], np.asarray(res.sums)[:P]
    assert n.sum() == 50 and np.all(n >= 1)
    Kn = np.exp(-((pool[:, None] - pool[None]) ** 2).sum(-1) / (2 * 0.05**2))
    np.testing.assert_allclose(np.asarray(kernel(jnp.asarray(pool), jnp.asarray(pool), 0.05)), Kn, rtol=1e-5, atol=1e-12)
    W = Kn @ n
    assert int(res.choice_index) == int(np.argmax(W))
    # default: the most pulled action (same key -> same pulls)
    res2 = kr_ucb_search(jax.random.PRNGKey(3), reward, actions, 50)
    np.testing.assert_array_equal(res2.counts, res.counts)
    assert int(res2.choice_index) == int(np.argmax(np.asarray(res2.counts)))


def test_kr_ucb_widens_next_to_the_best_action():
    """Progressive widening adds ceil(sqrt(T)) - m actions, each within the tau-neighbourhood
    of an action already in the pool (the one the index selected)."""
    peak = jnp.asarray([0.5, 0.5])
    f = lambda a: jnp.exp(-jnp.sum((a - peak) ** 2) / (2 * 0.05**2))
    actions = jnp.asarray([[0.53, 0.5], [0.2, 0.8], [0.9, 0.1], [0.1, 0.1]])
    budget = 400
    run = jax.jit(jax.vmap(lambda k: kr_ucb_search(k, lambda kk, a: f(a) + 0.1 * jax.random.normal(kk), actions, budget)))
    res = run(jax.random.split(jax.random.PRNGKey(4), 32))
    assert np.all(np.asarray(res.n_actions) == max_actions(4, budget))
    radius = 0.05 * math.sqrt(2 * math.log(1 / 0.9))
    new = np.asarray(res.actions)[:, 4:]
    # every widened action lies within `radius` of an earlier action
    pool = np.asarray(res.actions)
    for b in range(pool.shape[0]):
        for i in range(4, pool.shape[1]):
            assert np.min(np.linalg.norm(pool[b, :i] - pool[b, i], axis=-1)) <= radius + 1e-6
    assert new.shape[1] == max_actions(4, budget) - 4
    # the search ends on the best candidate's neighbourhood
    chosen_value = np.asarray(jax.vmap(f)(res.choice))
    assert np.mean(chosen_value) > 0.75
