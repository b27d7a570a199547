"""Toy-Partial (IAR App. C; Singh, Jaakkola, Jordan 1994, Sec. 3.1) against the paper's
closed forms and an exact dynamic programme written here from the example's table.

References, independent of ``envs_jax.toy_partial``:
- Singh et al.'s discounted values: "always A" ``V(1a) = R - gamma R / (1 - gamma)``,
  ``V(1b) = -R / (1 - gamma)`` (here the T-step truncated sums of the same series), and
  ``V = 0`` for the 1/2-1/2 stochastic policy;
- an exact belief-propagation DP over the two hidden states for any memoryless policy
  ``(P(A), P(B), P(stay))``, searched on a grid: the optimum over stochastic policies (0,
  at 1/2-1/2), the best deterministic (-99 over 100 steps) and the best factored policy
  (-50, ``P(x, y) = p(x) q(y)``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs_jax import make

R, T, GAMMA = 1.0, 100, 0.9
A, B = (0, 1), (1, 0)
STAY = ((0, 0), (1, 1))


def dp_value(p_a, p_b, T: int = T, R: float = R):
    """Exact expected undiscounted T-step return from the uniform start (the example's table:
    in 1a, A moves to 1b (+R), anything else stays (-R); in 1b, B moves to 1a (+R));
    ``p_a``, ``p_b`` scalars or arrays of the same shape."""
    p_a, p_b = np.asarray(p_a, float), np.asarray(p_b, float)
    b_a, b_b = np.full(p_a.shape, 0.5), np.full(p_a.shape, 0.5)
    total = np.zeros(p_a.shape)
    for _ in range(T):
        total += b_a * (p_a * R - (1 - p_a) * R) + b_b * (p_b * R - (1 - p_b) * R)
        b_a, b_b = b_a * (1 - p_a) + b_b * p_b, b_a * p_a + b_b * (1 - p_b)
    return total


ACTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.int32)  # policy probs are in this order


@pytest.fixture(scope="module")
def rollout():
    """``rollout(keys (n,), starts (n,), probs (n, 4)) -> (returns, discounted returns)``: one
    episode per row of the JAX env under an i.i.d. memoryless policy over the four 2-d actions;
    ``start`` 0 = 1a, 1 = 1b, -1 = the env's uniform reset. One compiled program for all."""
    env, params = make("Toy-Partial")
    acts = jnp.asarray(ACTS)

    def episode(k, start, probs):
        k_reset, k_run = jax.random.split(k)
        _, st_fixed = env.reset_to(k_reset, params, jnp.maximum(start, 0))
        _, st_rand = env.reset(k_reset, params)
        st = jax.tree.map(lambda a, b: jnp.where(start >= 0, a, b), st_fixed, st_rand)
        logits = jnp.log(probs)

        def body(carry, kk):
            st, ret, disc, t = carry
            k_a, k_s = jax.random.split(kk)
            a = acts[jax.random.categorical(k_a, logits)]
            _, st, r, _, _, _ = env.step(k_s, st, a, params)
            return (st, ret + r, disc + GAMMA**t * r, t + 1), None

        (_, ret, disc, _), _ = jax.lax.scan(body, (st, 0.0, 0.0, 0.0), jax.random.split(k_run, T))
        return ret, disc

    fn = jax.jit(jax.vmap(episode))

    def run(seed, starts, probs):
        starts = np.asarray(starts, np.int32)
        probs = np.maximum(np.asarray(probs, np.float32), 1e-30)
        ret, disc = fn(jax.random.split(jax.random.key(seed), len(starts)), starts, probs)
        return np.asarray(ret), np.asarray(disc)

    return run


def test_deterministic_policies_match_singh_closed_form(rollout):
    g = GAMMA
    tail = g * (1 - g ** (T - 1)) / (1 - g)  # sum_{t=1}^{T-1} g^t
    whole = (1 - g**T) / (1 - g)  # sum_{t=0}^{T-1} g^t
    expected = {  # (action, start) -> discounted T-step return (Singh et al.'s series, truncated)
        (A, 0): R - R * tail, (A, 1): -R * whole,
        (B, 1): R - R * tail, (B, 0): -R * whole,
    }
    for s in STAY:
        expected[(s, 0)] = expected[(s, 1)] = -R * whole
    cases = list(expected)
    probs = [[float(tuple(row) == action) for row in ACTS] for action, _ in cases]
    _, disc = rollout(0, [start for _, start in cases], probs)
    np.testing.assert_allclose(disc, [expected[c] for c in cases], rtol=1e-5)
    # The paper's untruncated limits differ from these by < gamma^T / (1 - gamma).
    assert abs((R - g * R / (1 - g)) - expected[(A, 0)]) < g ** (T - 1) / (1 - g)
    # Best deterministic memoryless policy, undiscounted from the uniform start: 1 - T.
    best_det = max(dp_value(*{A: (1, 0), B: (0, 1)}.get(a, (0, 0))) for a in (A, B, *STAY))
    assert best_det == pytest.approx(R * (1 - T))


def test_stochastic_optimum_and_factored_ceiling(rollout):
    grid = np.linspace(0.0, 1.0, 41)
    # Optimum over all memoryless policies (P(A), P(B), P(stay) on the simplex): 0 at 1/2-1/2.
    pa, pb = np.meshgrid(grid, grid, indexing="ij")
    values = np.where(pa + pb <= 1 + 1e-12, dp_value(pa, pb), -np.inf)
    i, j = np.unravel_index(np.argmax(values), values.shape)
    assert values[i, j] == pytest.approx(0.0, abs=1e-9) and (grid[i], grid[j]) == (0.5, 0.5)
    # Deterministic policies sit at the simplex's corners: -99 (A or B) and -100 (stay).
    assert dp_value(1.0, 0.0) == pytest.approx(R * (1 - T)) and dp_value(0.0, 1.0) == pytest.approx(R * (1 - T))
    assert dp_value(0.0, 0.0) == pytest.approx(-R * T)
    # Factored P(x, y) = p(x) q(y): P(A) = (1-p) q, P(B) = p (1-q); best -50 at p = q = 1/2.
    p, q = pa, pb
    fact = dp_value((1 - p) * q, p * (1 - q))
    i, j = np.unravel_index(np.argmax(fact), fact.shape)
    assert fact[i, j] == pytest.approx(-50.0, abs=1e-9) and (grid[i], grid[j]) == (0.5, 0.5)
    # The JAX env agrees with the DP (Monte Carlo, 4096 episodes each, 5 standard errors).
    cases = (((0.0, 0.5, 0.5, 0.0), 0.0), ((0.25, 0.25, 0.25, 0.25), -50.0),
             ((0.1, 0.6, 0.2, 0.1), dp_value(0.6, 0.2)))
    n = 4096
    ret, _ = rollout(1, [-1] * (n * len(cases)), np.repeat([c[0] for c in cases], n, axis=0))
    for i, (probs, exact) in enumerate(cases):
        r = ret[i * n:(i + 1) * n]
        assert abs(r.mean() - exact) < 5 * r.std() / np.sqrt(n) + 1e-6, (probs, r.mean(), exact)


def test_bad_arguments_raise_one_clear_error():
    with pytest.raises(ValueError, match="reward"):
        make("Toy-Partial", reward=0.0)
    with pytest.raises(ValueError, match="max_steps_in_episode"):
        make("Toy-Partial", max_steps_in_episode=0)
