"""KR-UCT (mu_jax/curling.py) on a 1-D problem with execution noise whose best action is known
in closed form, its statistics against a numpy recomputation, and the curling generators."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mu_jax import curling as K

SIGMA, CLIFF, FALL = 0.05, 0.5, -0.5  # executed x = a + SIGMA eps; g(x) = x (x <= CLIFF) else FALL


def _g(x):
    return jnp.where(x <= CLIFF, x, FALL)


def _value(a):
    """V(a) = E[g(a + SIGMA eps)] = a Phi(z) - SIGMA phi(z) + FALL (1 - Phi(z)), z = (CLIFF - a)/SIGMA."""
    z = (CLIFF - a) / SIGMA
    Phi = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    phi = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    return a * Phi - SIGMA * phi + FALL * (1 - Phi)


GRID = np.linspace(0, 1, 100001)
A_STAR, V_STAR = GRID[np.argmax(_value(GRID))], _value(GRID).max()
CANDS = jnp.asarray([[0.1], [0.3], [0.5], [0.7]])


def _search(key, budget, valid=None, recommend="visits"):
    kernel = K.gaussian_kernel(jnp.asarray([SIGMA]))
    propose = K.ellipse_proposals(jnp.asarray([SIGMA]), tau=0.5)
    reward = lambda k, a: _g(a[0] + SIGMA * jax.random.normal(k))
    return K.kr_uct(key, reward, CANDS, budget, kernel, propose, valid, c=0.5, recommend=recommend)


def test_the_closed_form_optimum_lies_between_the_candidates():
    assert 0.35 < A_STAR < 0.45 and _value(np.asarray([0.3])).item() + 0.05 < V_STAR


@pytest.mark.parametrize("recommend", ["visits", pytest.param("lcb", marks=pytest.mark.slow)])
def test_kr_uct_widens_past_the_candidates_toward_the_known_optimum(recommend):
    keys = jax.random.split(jax.random.key(0), 16)
    res = jax.jit(jax.vmap(lambda k: _search(k, 256, recommend=recommend)))(keys)
    chosen = np.asarray(res.choice[:, 0])
    v = _value(chosen)
    best_candidate = _value(np.asarray([0.1, 0.3, 0.5, 0.7])).max()
    assert (np.asarray(res.n_actions) > 4).all()  # widened
    assert v.mean() > best_candidate + 0.03, (chosen, v.mean(), best_candidate, V_STAR)
    assert np.abs(chosen - A_STAR).mean() < 0.06


def test_statistics_match_a_numpy_recomputation_and_masked_candidates_never_run():
    valid = jnp.asarray([True, False, True, True])
    res = jax.jit(lambda k: _search(k, 64, valid))(jax.random.key(1))
    n, mean, pool = np.asarray(res.counts), np.asarray(res.means), np.asarray(res.actions)[:, 0]
    used = np.arange(len(n)) < int(res.n_actions)
    used[1] = False
    assert n[1] == 0 and n.sum() == 64 and (n[used] >= 1).all()
    Kn = np.exp(-0.5 * ((pool[:, None] - pool[None, :]) / SIGMA) ** 2) * used[None, :]
    W = Kn @ n
    v = np.where(W > 0, Kn @ (n * mean) / np.maximum(W, 1e-12), 0)
    np.testing.assert_allclose(np.asarray(res.value)[used], v[used], rtol=1e-4, atol=1e-5)
    # recommendation: the most executed action (ties broken by the regression value)
    top = np.flatnonzero(used & (n == n[used].max()))
    assert int(res.choice_index) == top[np.argmax(v[top])]


@pytest.mark.slow
def test_budget_equal_to_the_candidates_runs_each_once():
    res = jax.jit(lambda k: _search(k, 4))(jax.random.key(2))
    np.testing.assert_array_equal(np.asarray(res.counts)[:4], 1)
    assert int(res.n_actions) == 4


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="budget 2 is smaller"):
        _search(jax.random.key(0), 2)
    with pytest.raises(ValueError, match="recommend"):
        _search(jax.random.key(0), 8, recommend="best")
    with pytest.raises(ValueError, match="tau"):
        K.ellipse_proposals(jnp.ones(1), 1.5)


def test_generator_head_log_prob_is_gaussian_plus_bernoulli():
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    dist = {"mean": jnp.asarray(rng.uniform(size=(3, 2))), "log_std": jnp.asarray(rng.normal(-2, 0.3, (3, 2))),
            "turn_logit": jnp.asarray(rng.normal(size=3))}
    a = jnp.asarray(np.c_[rng.uniform(size=(3, 2)), [0.25, 0.75, 0.75]])
    got = np.asarray(K.head_log_prob(dist, a))
    p_ccw = 1 / (1 + np.exp(-np.asarray(dist["turn_logit"])))
    ref = norm.logpdf(np.asarray(a[:, :2]), np.asarray(dist["mean"]), np.exp(np.asarray(dist["log_std"]))).sum(1)
    ref += np.log(np.where(np.asarray(a[:, 2]) >= 0.5, p_ccw, 1 - p_ccw))
    np.testing.assert_allclose(got, ref, rtol=1e-5)


@pytest.mark.slow
def test_handcoded_takeout_removes_the_shot_stone_and_the_draw_finds_the_button():
    """One opponent stone on the button: the hand-coded takeout (noise free) removes it and
    stays (+1); the draw to the button stops against it without scoring (it is frozen short)."""
    from envs_jax import curling as C

    env, params = C.make_curling()
    pos = jnp.zeros((C.N_STONES, 2)).at[8].set(jnp.asarray([0.0, C.TEE_Y]))
    st = C.CurlingState(pos=pos, active=jnp.zeros(C.N_STONES, bool).at[8].set(True))
    acts, valid = K.handcoded_candidates(st, params)
    assert np.asarray(valid).sum() == 4  # per turn: draw to the button, takeout of slot 8
    q = jax.jit(jax.vmap(lambda a: env.expected_reward(st, a, params)))(acts)
    q = np.asarray(q).reshape(2, 16)
    assert (q[:, 8] == 1).all()  # takeouts score one with hit-and-stay
