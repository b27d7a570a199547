"""GAE and the PPO loss against hand-computed examples."""

import math

import jax.numpy as jnp
import numpy as np

from ppo_jax.losses import explained_variance, gae, ppo_loss


def test_gae_matches_hand_computation_with_episode_boundary():
    # gamma 0.9, lambda 0.8; the episode ends after step 1.
    # t=2: delta = 3 + 0.9*2.0 - 1.5 = 3.3, A = 3.3
    # t=1: done, delta = 2 - 1.0 = 1.0, A = 1.0
    # t=0: delta = 1 + 0.9*1.0 - 0.5 = 1.4, A = 1.4 + 0.9*0.8*1.0 = 2.12
    rewards = jnp.array([[1.0], [2.0], [3.0]])
    values = jnp.array([[0.5], [1.0], [1.5]])
    dones = jnp.array([[False], [True], [False]])
    adv, target = gae(rewards, values, dones, jnp.array([2.0]), gamma=0.9, lam=0.8)
    np.testing.assert_allclose(adv[:, 0], [2.12, 1.0, 3.3], rtol=1e-6)
    np.testing.assert_allclose(target[:, 0], [2.62, 2.0, 4.8], rtol=1e-6)


def test_gae_with_lambda_one_is_discounted_return_minus_value():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(6, 3)).astype(np.float32)
    v = rng.normal(size=(6, 3)).astype(np.float32)
    last = rng.normal(size=(3,)).astype(np.float32)
    adv, _ = gae(jnp.asarray(r), jnp.asarray(v), jnp.zeros((6, 3), bool), jnp.asarray(last), gamma=0.95, lam=1.0)
    ret = last.copy()
    expected = np.zeros_like(r)
    for t in reversed(range(6)):
        ret = r[t] + 0.95 * ret
        expected[t] = ret - v[t]
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)


def test_cost_gae_per_cost_row_matches_hand_computation():
    """Costs with a trailing axis C share the episode boundaries: two cost rows, gamma 0.9,
    lambda 0.8, the episode ends after step 1.
    row 0 = the example above (advantages 2.12, 1.0, 3.3);
    row 1: costs (0, 1, 1), values (0.2, 0.1, 0.4), last value 1.0:
      t=2: delta = 1 + 0.9*1.0 - 0.4 = 1.5, A = 1.5
      t=1: done, delta = 1 - 0.1 = 0.9, A = 0.9
      t=0: delta = 0 + 0.9*0.1 - 0.2 = -0.11, A = -0.11 + 0.72*0.9 = 0.538"""
    costs = jnp.array([[[1.0, 0.0]], [[2.0, 1.0]], [[3.0, 1.0]]])  # (T=3, N=1, C=2)
    values = jnp.array([[[0.5, 0.2]], [[1.0, 0.1]], [[1.5, 0.4]]])
    dones = jnp.array([[False], [True], [False]])
    adv, target = gae(costs, values, dones, jnp.array([[2.0, 1.0]]), gamma=0.9, lam=0.8)
    np.testing.assert_allclose(adv[:, 0, 0], [2.12, 1.0, 3.3], rtol=1e-6)
    np.testing.assert_allclose(adv[:, 0, 1], [0.538, 0.9, 1.5], rtol=1e-5)
    np.testing.assert_allclose(target[:, 0, 1], [0.738, 1.0, 1.9], rtol=1e-5)


def test_ppo_loss_matches_hand_computation():
    # ratio = [1, 1.5]; clipped surrogate min([1, 3], [1, 2.4]) -> mean 1.7.
    # value: err = [0.25, 1.0]; clipped values [0.7, 2.3] -> err [0.64, 1.69]; max -> mean 1.165.
    loss, aux = ppo_loss(
        log_prob=jnp.array([0.0, math.log(1.5)]),
        old_log_prob=jnp.zeros(2),
        advantage=jnp.array([1.0, 2.0]),
        value=jnp.array([1.0, 2.0]),
        old_value=jnp.array([0.5, 2.5]),
        target=jnp.array([1.5, 1.0]),
        entropy=jnp.array([0.5, 0.7]),
        clip_eps=0.2,
        clip_value=True,
        vf_coef=0.5,
        ent_coef=0.01,
        normalize_advantages=False,
    )
    assert math.isclose(float(aux["policy_loss"]), -1.7, rel_tol=1e-6)
    assert math.isclose(float(aux["value_loss"]), 0.5825, rel_tol=1e-6)
    assert math.isclose(float(aux["entropy"]), 0.6, rel_tol=1e-6)
    assert math.isclose(float(loss), -1.7 + 0.5 * 0.5825 - 0.01 * 0.6, rel_tol=1e-6)
    assert math.isclose(float(aux["approx_kl"]), (0.5 - math.log(1.5)) / 2, rel_tol=1e-5)
    assert math.isclose(float(aux["clip_frac"]), 0.5)
    # SB3's scale: value loss = 1.0 * MSE (mean of the clipped errors 1.165).
    _, aux_sb3 = ppo_loss(
        log_prob=jnp.array([0.0, math.log(1.5)]), old_log_prob=jnp.zeros(2), advantage=jnp.array([1.0, 2.0]),
        value=jnp.array([1.0, 2.0]), old_value=jnp.array([0.5, 2.5]), target=jnp.array([1.5, 1.0]),
        entropy=jnp.array([0.5, 0.7]), clip_eps=0.2, clip_value=True, vf_coef=0.5, ent_coef=0.01,
        normalize_advantages=False, value_loss_scale=1.0,
    )
    assert math.isclose(float(aux_sb3["value_loss"]), 1.165, rel_tol=1e-6)


def test_a2c_loss_is_advantage_weighted_log_prob():
    loss, aux = ppo_loss(
        log_prob=jnp.array([-0.5, -1.0]),
        old_log_prob=jnp.array([-0.5, -1.0]),
        advantage=jnp.array([2.0, -1.0]),
        value=jnp.array([0.0, 0.0]),
        old_value=jnp.array([0.0, 0.0]),
        target=jnp.array([1.0, 3.0]),
        entropy=jnp.array([0.0, 0.0]),
        clip_eps=None,
        clip_value=False,
        vf_coef=0.5,
        ent_coef=0.0,
        normalize_advantages=False,
    )
    # -(2*-0.5 + -1*-1.0)/2 = 0 ; value 0.5 * (1 + 9)/2 = 2.5
    assert math.isclose(float(aux["policy_loss"]), 0.0, abs_tol=1e-7)
    assert math.isclose(float(loss), 0.5 * 2.5, rel_tol=1e-6)


def test_explained_variance():
    t = jnp.array([1.0, 2.0, 3.0, 4.0])
    assert math.isclose(float(explained_variance(t, t)), 1.0)
    assert math.isclose(float(explained_variance(jnp.full(4, 2.5), t)), 0.0, abs_tol=1e-7)
    assert float(explained_variance(t, jnp.ones(4))) == 0.0
