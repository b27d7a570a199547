"""MU domains: the location game against a brute-force Python reference, the 2-D peaks
against numpy/scipy, and the gymnax API."""

import itertools
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs_jax.mu_domains import inverse_gamma, location_shares, make_location, make_peaks2d
from envs_jax.registry import make


def _share_reference(u, player, opponent):
    """Pure-Python location-game reward: nearest facility by Manhattan distance, ties split."""
    H, W = u.shape
    facilities = [(c // W, c % W, True) for c in player] + [(c // W, c % W, False) for c in opponent]
    total = Fraction(0)
    for r in range(H):
        for c in range(W):
            d = [abs(r - fr) + abs(c - fc) for fr, fc, _ in facilities]
            nearest = [f for f, dist in zip(facilities, d) if dist == min(d)]
            mine = sum(1 for f in nearest if f[2])
            total += Fraction(mine, len(nearest)) * Fraction(float(u[r, c]))
    return float(total)


@pytest.mark.parametrize("shape", [(3, 4), (4, 4), (2, 5)])
def test_location_reward_matches_brute_force_reference(shape):
    rng = np.random.default_rng(sum(shape))
    H, W = shape
    f = jax.jit(location_shares)
    for _ in range(25):
        u = rng.uniform(size=shape)
        u = u / u.sum()
        player = rng.integers(0, H * W, size=3)  # duplicates and opponent cells allowed
        opponent = rng.choice(H * W, size=2, replace=False)
        if rng.uniform() < 0.3:
            player[0] = opponent[0]
        got = f(jnp.asarray(u, jnp.float32), jnp.asarray(player), jnp.asarray(opponent))
        np.testing.assert_allclose(got, _share_reference(u, player, opponent), rtol=1e-5, atol=1e-6)


def test_ties_are_split_per_facility():
    u = np.zeros((1, 3), np.float32)
    u[0, 1] = 1.0  # all utility in the middle cell
    # player at both ends, opponent in the middle: opponent wins the middle cell
    assert float(location_shares(jnp.asarray(u), jnp.asarray([0, 2]), jnp.asarray([1]))) == 0.0
    # two player facilities on the opponent's cell: 2/3 of it
    np.testing.assert_allclose(location_shares(jnp.asarray(u), jnp.asarray([1, 1]), jnp.asarray([1])), 2 / 3, rtol=1e-6)
    # equidistant (distance 1) from one player and one opponent facility: half
    np.testing.assert_allclose(location_shares(jnp.asarray(u), jnp.asarray([0]), jnp.asarray([2])), 0.5, rtol=1e-6)


def test_best_response_matches_exhaustive_python_search():
    env, params = make_location(size=3, n_facilities=2, n_opponent=2)
    for seed in range(3):
        s = env.sample_state(jax.random.PRNGKey(seed), params)
        u = np.asarray(s.utilities, np.float64)
        opp = [int(x) for x in s.opponent]
        ref = max(_share_reference(u, list(p), opp) for p in itertools.product(range(9), repeat=2))
        value, placement = env.best_response(s, params)
        np.testing.assert_allclose(value, ref, rtol=1e-5)
        np.testing.assert_allclose(_share_reference(u, [int(x) for x in placement], opp), ref, rtol=1e-5)


def test_location_state_is_normalised_with_opponent_on_the_two_best_cells():
    env, params = make_location()
    states = jax.jit(jax.vmap(env.sample_state, in_axes=(0, None)))(jax.random.split(jax.random.PRNGKey(0), 16), params)
    u = np.asarray(states.utilities).reshape(16, -1)
    np.testing.assert_allclose(u.sum(-1), 1.0, rtol=1e-5)
    top2 = np.argsort(-u, axis=-1)[:, :2]
    np.testing.assert_array_equal(np.sort(np.asarray(states.opponent), -1), np.sort(top2, -1))


def test_inverse_gamma_samples_follow_scipy_distribution():
    from scipy import stats

    x = np.asarray(inverse_gamma(jax.random.PRNGKey(0), 3.0, 1.0, (20000,)))
    res = stats.kstest(x, stats.invgamma(3.0, scale=1.0).cdf)
    assert res.pvalue > 1e-3, res


def test_location_gymnax_api_one_step_episode():
    from envs_jax.mu_domains import LocationState

    env, params = make("MU-location")
    u = jnp.asarray(np.random.default_rng(0).uniform(size=(10, 10)), jnp.float32)
    state = LocationState(utilities=u / u.sum(), opponent=jnp.asarray([3, 50], jnp.int32), time=0)
    obs = env.get_obs(state, params)
    assert obs.shape == (10, 10, 1) and env.observation_space(params).shape == obs.shape
    action = jnp.asarray([11, 44, 77], jnp.int32)
    assert bool(env.action_space(params).contains(action))
    out = env.step(jax.random.PRNGKey(1), state, action, params)
    assert len(out) == 6
    obs2, state2, reward, terminated, truncated, info = out
    assert bool(terminated) and bool(info["terminated"])
    assert int(state2.time) == 0 and obs2.shape == obs.shape  # auto-reset to a fresh map
    np.testing.assert_allclose(reward, env.expected_reward(state, action, params), rtol=1e-6)


def test_peaks_value_matches_numpy_and_optimum_matches_scipy():
    from scipy.optimize import minimize

    env, params = make("MU-peaks2d")
    s = env.sample_state(jax.random.PRNGKey(3), params)
    c, h, w = np.asarray(s.centres, np.float64), np.asarray(s.heights, np.float64), params.width

    def f(a):
        a = np.clip(a, 0, 1)
        return float(np.sum(h * np.exp(-np.sum((a - c) ** 2, -1) / (2 * w**2))))

    rng = np.random.default_rng(0)
    for a in rng.uniform(size=(20, 2)):
        np.testing.assert_allclose(env.expected_reward(s, jnp.asarray(a, jnp.float32), params), f(a), rtol=1e-4, atol=1e-6)
    best = max(-minimize(lambda a: -f(a), x0, bounds=[(0, 1), (0, 1)]).fun for x0 in c)
    np.testing.assert_allclose(env.optimal_value(s, params), best, rtol=2e-3)
    obs = env.get_obs(s, params)
    assert obs.shape == (16, 16, 1)
    np.testing.assert_allclose(obs[0, 0, 0], f(np.asarray([1 / 32, 1 / 32])), rtol=1e-4, atol=1e-6)


def test_peaks_reward_noise_has_the_configured_std():
    env, params = make_peaks2d(noise_std=0.3)
    s = env.sample_state(jax.random.PRNGKey(0), params)
    a = jnp.asarray([0.5, 0.5])
    r = jax.vmap(lambda k: env.noisy_reward(k, s, a, params))(jax.random.split(jax.random.PRNGKey(1), 4000))
    np.testing.assert_allclose(np.mean(r), env.expected_reward(s, a, params), atol=0.03)
    np.testing.assert_allclose(np.std(r), 0.3, rtol=0.06)


def test_factories_reject_unknown_parameters():
    with pytest.raises(ValueError, match="unknown parameter"):
        make_location(bogus=1)
    with pytest.raises(ValueError, match="unknown parameter"):
        make_peaks2d(bogus=1)
    with pytest.raises(ValueError, match="location game needs"):
        make_location(size=1)
