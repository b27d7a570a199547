"""PASPO's de-biased initialisation: the Beta ML fit against scipy, and the whole de-bias
step against the closed form on the plain simplex (uniform = Dirichlet(1), whose stick-breaking
positions are exactly Beta(1, n - 1 - i))."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from paspo_jax.debias import beta_method_of_moments, beta_mle, debias_offsets, normalized_positions


@pytest.mark.parametrize(
    "alpha, beta, size",
    [(0.5, 0.7, 3000), (2.0, 5.0, 3000), (1.0, 1.0, 2000), (30.0, 3.0, 3000), (0.2, 0.3, 3000), (100.0, 200.0, 2000)],
)
def test_beta_mle_matches_scipy_fit(alpha, beta, size):
    """Newton on the digamma equations finds scipy.stats.beta.fit's maximum (loc 0, scale 1)."""
    rng = np.random.default_rng(int(alpha * 10 + beta))
    u = np.clip(rng.beta(alpha, beta, size), 1e-6, 1 - 1e-6)
    ref_a, ref_b, _, _ = scipy.stats.beta.fit(u, floc=0, fscale=1)
    with jax.enable_x64(True):
        a64, b64 = beta_mle(jnp.asarray(u))
        np.testing.assert_allclose([float(a64), float(b64)], [ref_a, ref_b], rtol=1e-6)
    a32, b32 = beta_mle(jnp.asarray(u, jnp.float32))
    np.testing.assert_allclose([float(a32), float(b32)], [ref_a, ref_b], rtol=2e-3)


def test_beta_mle_respects_mask():
    """Masked-out samples do not enter the fit (same answer as fitting the kept ones only)."""
    rng = np.random.default_rng(1)
    u = rng.beta(2.0, 3.0, 1000)
    junk = rng.uniform(size=500)
    both = np.concatenate([u, junk])
    mask = np.concatenate([np.ones(1000, bool), np.zeros(500, bool)])
    with jax.enable_x64(True):
        a, b = beta_mle(jnp.asarray(both), jnp.asarray(mask))
        ref = scipy.stats.beta.fit(np.clip(u, 1e-6, 1 - 1e-6), floc=0, fscale=1)
        np.testing.assert_allclose([float(a), float(b)], ref[:2], rtol=1e-6)


def test_method_of_moments_closed_form():
    """alpha0 = m c, beta0 = (1-m) c, c = m (1-m) / v - 1 on numpy's mean/variance."""
    rng = np.random.default_rng(2)
    u = rng.beta(3.0, 4.0, 5000)
    m, v = u.mean(), u.var()
    c = m * (1 - m) / v - 1
    with jax.enable_x64(True):
        a0, b0 = beta_method_of_moments(jnp.asarray(u))
        np.testing.assert_allclose([float(a0), float(b0)], [m * c, (1 - m) * c], rtol=1e-10)


def test_debias_offsets_on_the_simplex_are_the_stick_breaking_betas():
    """Uniform points of the simplex (Dirichlet(1), numpy), intervals [0, remaining mass]:
    the fitted Beta of entity i is Beta(1, n - 1 - i) (stick breaking), within sampling error."""
    n, N = 6, 40_000
    rng = np.random.default_rng(3)
    a = rng.dirichlet(np.ones(n), size=N)
    remaining = 1.0 - np.concatenate([np.zeros((N, 1)), np.cumsum(a[:, : n - 2], axis=1)], axis=1)
    a_min = np.zeros((N, n - 1))
    log_alpha, log_beta = debias_offsets(jnp.asarray(a, jnp.float32), jnp.asarray(a_min, jnp.float32),
                                         jnp.asarray(remaining, jnp.float32))
    expected_beta = np.array([n - 1 - i for i in range(n - 1)], float)
    np.testing.assert_allclose(np.exp(np.asarray(log_alpha)), np.ones(n - 1), rtol=0.03)
    np.testing.assert_allclose(np.exp(np.asarray(log_beta)), expected_beta, rtol=0.04)


def test_normalized_positions_mask_degenerate_intervals():
    a = jnp.asarray([[0.2, 0.3, 0.5], [0.5, 0.25, 0.25]])
    a_min = jnp.asarray([[0.0, 0.3], [0.0, 0.1]])
    a_max = jnp.asarray([[0.4, 0.30001], [1.0, 0.5]])
    u, mask = normalized_positions(a, a_min, a_max, tol=1e-4)
    np.testing.assert_array_equal(np.asarray(mask), [[True, False], [True, True]])
    np.testing.assert_allclose(np.asarray(u)[mask], [0.5, 0.5, 0.15 / 0.4], rtol=1e-6)
