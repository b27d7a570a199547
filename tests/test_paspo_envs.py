"""PASPO allocation environments (the project's -v0 variants and the scaling ids; the paper's ids
are tested in test_paspo_orig_envs.py): each behaviour checked against an independent reference
(numpy re-computations, scipy's HiGHS LPs, hand arithmetic, the HMM's own statistics)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

import envs_jax
from envs_jax.allocation import (
    REFERENCE_POLYTOPE_SHAPES,
    load_polytope,
    to_simplex,
)
from envs_jax.paspo_capacity import knapsack_cost
from envs_jax.paspo_compute import ComputeState
from envs_jax.paspo_portfolio import hmm_step, load_hmm, portfolio_step
from envs_jax.paspo_synth import SynthState, make_synth, random_polytope

ENV_IDS = ["PASPO-synth-7-v0", "PASPO-synth-100", "PASPO-compute-9-v0", "PASPO-portfolio-13-v0", "PASPO-capacity-7"]
EPISODE_LENGTH = {
    "PASPO-synth-7-v0": 2,
    "PASPO-synth-100": 2,
    "PASPO-compute-9-v0": 100,
    "PASPO-portfolio-13-v0": 12,
    "PASPO-capacity-7": 20,
}
OBS_DIM = {"PASPO-synth-7-v0": 3, "PASPO-synth-100": 3, "PASPO-compute-9-v0": 21, "PASPO-portfolio-13-v0": 26, "PASPO-capacity-7": 16}
NUM_ENVS = 256


@pytest.fixture(scope="module")
def envs():
    return {eid: envs_jax.make(eid) for eid in ENV_IDS}


@pytest.fixture(scope="module")
def rollouts(envs):
    """One jitted, vmapped rollout per env: 256 envs for two episodes, actions drawn in numpy
    (sparse Dirichlet(0.3) points, for static polytopes mixed with the polytope's Chebyshev
    centre at a random weight, so that both feasible and violating actions occur). Every test that needs a rollout
    reads this one, so each env is compiled once."""
    cache = {}

    def get(eid):
        if eid not in cache:
            env, params = envs[eid]
            n, T = env.num_entities, 2 * EPISODE_LENGTH[eid]
            rng = np.random.default_rng(0)
            actions = rng.dirichlet(np.full(n, 0.3), size=(T, NUM_ENVS))
            if eid != "PASPO-capacity-7":  # static polytope: pull some actions inside it
                centre, _ = chebyshev_center(np.asarray(params.A, np.float64), np.asarray(params.b, np.float64), n)
                lam = rng.uniform(0.0, 1.0, size=(T, NUM_ENVS, 1))
                actions = lam * actions + (1.0 - lam) * centre
            actions = (actions / actions.sum(-1, keepdims=True)).astype(np.float32)

            @jax.jit
            def rollout(key, actions):
                k_reset, k_steps = jax.random.split(key)
                obs0, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, NUM_ENVS), params)

                def body(state, x):
                    k, a = x
                    A, b = jax.vmap(env.constraints, (0, None))(state, params)
                    valid = jax.vmap(env.is_valid, (0, 0, None))(state, a, params)
                    ks = jax.random.split(k, NUM_ENVS)
                    obs, new_state, r, term, trunc, info = jax.vmap(env.step, (0, 0, 0, None))(ks, state, a, params)
                    return new_state, dict(state=state, next_state=new_state, obs=obs, reward=r, terminated=term,
                                           truncated=trunc, info=info, valid=valid, A=A, b=b)

                return obs0, jax.lax.scan(body, state, (jax.random.split(k_steps, T), actions))[1]

            obs0, out = rollout(jax.random.PRNGKey(0), jnp.asarray(actions))
            cache[eid] = dict(obs0=obs0, actions=actions, **out)
        return cache[eid]

    return get


# --------------------------------------------------------------------------- LP helpers
def lp_point(A, b, c, n):
    """Optimum of ``min c . a`` over the polytope and simplex (HiGHS), or None if infeasible."""
    res = linprog(
        c, A_ub=A, b_ub=b, A_eq=np.ones((1, n)), b_eq=[1.0], bounds=[(0, 1)] * n, method="highs"
    )
    return res.x if res.status == 0 else None


def chebyshev_center(A, b, n):
    """Centre of the largest ball (within the simplex's affine hull) inside the polytope."""
    # Directions in the hull sum to zero: the distance to facet j is (b_j - A_j a) / |P A_j|.
    P = np.eye(n) - 1.0 / n
    norms = np.linalg.norm(A @ P, axis=1)
    # variables (a, r): maximise r s.t. A a + r |P A_j| <= b, -a_i + r |P e_i| <= 0
    e_norm = np.linalg.norm(P, axis=0)
    A_ub = np.block([[A, norms[:, None]], [-np.eye(n), e_norm[:, None]]])
    b_ub = np.concatenate([b, np.zeros(n)])
    A_eq = np.concatenate([np.ones(n), [0.0]])[None]
    c = np.zeros(n + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[1.0], bounds=[(0, 1)] * n + [(0, None)])
    assert res.status == 0
    return res.x[:n], res.x[-1]


# --------------------------------------------------------------------------- polytopes
@pytest.mark.parametrize("name", sorted(REFERENCE_POLYTOPE_SHAPES))
def test_reference_polytopes_load_with_documented_shapes(name):
    A_raw, b_raw = load_polytope(name, normalize=False)
    m, n = REFERENCE_POLYTOPE_SHAPES[name]
    assert A_raw.shape == (m, n) and b_raw.shape == (m,)
    assert np.all(np.isfinite(A_raw)) and np.all(np.isfinite(b_raw))
    # Normalised rows: unit norm and the same halfspaces (positive rescaling of each row).
    A, b = load_polytope(name)
    norms = np.linalg.norm(A_raw, axis=1)
    np.testing.assert_allclose(np.linalg.norm(A, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(A * norms[:, None], A_raw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b * norms, b_raw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, fraction", [("synth7", 0.048), ("compute9", 0.20), ("portfolio13", 0.24)])
def test_reference_polytopes_keep_the_documented_fraction_of_the_simplex(name, fraction):
    A, b = load_polytope(name, normalize=False)
    Y = np.random.default_rng(0).dirichlet(np.ones(A.shape[1]), size=40_000)
    inside = np.mean(np.all(Y @ A.T <= b, axis=1))
    assert abs(inside - fraction) < 0.015, inside


def test_unknown_polytope_name_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown polytope"):
        load_polytope("synth8")


@pytest.mark.parametrize("n", [20, 50, 100])
def test_random_polytopes_are_nonempty_nontrivial_and_reproducible(n):
    A, b = random_polytope(n, seed=3)
    assert A.shape == (n, n) and b.shape == (n,)
    # Non-empty with an interior: HiGHS finds a Chebyshev ball of positive radius.
    centre, radius = chebyshev_center(A, b, n)
    assert radius > 1e-4
    assert np.all(A @ centre <= b + 1e-9)
    # A non-trivial part of the simplex is cut away, and every simplex vertex is cut.
    Y = np.random.default_rng(1).dirichlet(np.ones(n), size=20_000)
    inside = np.mean(np.all(Y @ A.T <= b, axis=1))
    assert 0.02 < inside < 0.6, inside
    assert not np.any(np.all(np.eye(n) @ A.T <= b, axis=1))
    # Reproducible from the seed, different for another seed.
    A2, b2 = random_polytope(n, seed=3)
    np.testing.assert_array_equal(A, A2)
    np.testing.assert_array_equal(b, b2)
    A3, _ = random_polytope(n, seed=4)
    assert not np.allclose(A, A3)


def test_synth_n_envs_use_the_seeded_random_polytope():
    env, params = make_synth(50, seed=7)
    A, b = random_polytope(50, seed=7)
    np.testing.assert_allclose(np.asarray(params.A), A, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(params.b), b, rtol=1e-6, atol=1e-7)
    assert env.num_entities == 50 and params.W1.shape == (3 + 50, 32)
    _, params_again = envs_jax.make("PASPO-synth-50", seed=7)
    np.testing.assert_array_equal(np.asarray(params.A), np.asarray(params_again.A))


# --------------------------------------------------------------------------- synth reward
def numpy_mlp(x, p):
    """Independent float64 forward pass of the reward MLP."""
    W1, b1, W2, b2, W3, b3 = (np.asarray(getattr(p, k), np.float64) for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    h = np.maximum(x @ W1 + b1, 0.0)
    h = np.maximum(h @ W2 + b2, 0.0)
    return (h @ W3 + b3)[..., 0]


@pytest.mark.parametrize("eid", ["PASPO-synth-7-v0", "PASPO-synth-100"])
def test_synth_reward_is_30_times_the_numpy_mlp(envs, rollouts, eid):
    env, params = envs[eid]
    n = env.num_entities
    assert params.W1.shape == (3 + n, 32) and params.W2.shape == (32, 16) and params.W3.shape == (16, 1)
    assert np.all(np.abs(np.asarray(params.W1)) <= 1 / np.sqrt(3 + n))  # nn.Linear init range
    ro = rollouts(eid)
    s = np.asarray(ro["state"].s).reshape(-1)
    a = ro["actions"].reshape(-1, n).astype(np.float64)
    expected = 30.0 * numpy_mlp(np.concatenate([np.eye(3)[s], a], axis=1), params)
    np.testing.assert_allclose(np.asarray(ro["reward"]).reshape(-1), expected, rtol=1e-4, atol=1e-4)
    assert np.std(expected) > 1e-2  # the reward really depends on the action
    assert set(np.unique(s)) == {0, 1, 2}
    # the observation is the one-hot of the state the next action is taken in
    np.testing.assert_array_equal(np.asarray(ro["obs"][:-1]), np.eye(3)[np.asarray(ro["state"].s[1:])])


def test_synth_reward_with_the_state_as_a_scalar_input():
    env, params = make_synth(7, seed=1, state_input="index")
    assert params.W1.shape == (8, 32)  # the reference's "8 -> 32 -> 16 -> 1"
    rng = np.random.default_rng(0)
    for s in range(3):
        a = rng.dirichlet(np.ones(7)).astype(np.float32)
        expected = 30.0 * numpy_mlp(np.concatenate([[float(s)], a])[None], params)[0]
        np.testing.assert_allclose(float(env.reward(jnp.asarray(s), jnp.asarray(a), params)), expected, rtol=1e-5, atol=1e-5)


def test_synth_mlp_comes_from_the_seed():
    _, p1 = make_synth(7, seed=5)
    _, p2 = make_synth(7, seed=5)
    _, p3 = make_synth(7, seed=6)
    np.testing.assert_array_equal(np.asarray(p1.W2), np.asarray(p2.W2))
    assert not np.allclose(np.asarray(p1.W2), np.asarray(p3.W2))
    np.testing.assert_array_equal(np.asarray(p1.A), np.asarray(p3.A))  # synth7 is fixed


# --------------------------------------------------------------------------- violation / validity
@pytest.mark.parametrize("eid", ENV_IDS)
def test_info_violation_and_is_valid_equal_numpy(envs, rollouts, eid):
    env, _ = envs[eid]
    n = env.num_entities
    ro = rollouts(eid)
    A = np.asarray(ro["A"], np.float64).reshape(-1, *ro["A"].shape[2:])
    b = np.asarray(ro["b"], np.float64).reshape(-1, ro["b"].shape[-1])
    a = ro["actions"].reshape(-1, n).astype(np.float64)
    slack = np.einsum("kmn,kn->km", A, a) - b
    expected = np.maximum(slack, 0).sum(1)
    np.testing.assert_allclose(np.asarray(ro["info"]["violation"]).reshape(-1), expected, rtol=1e-4, atol=1e-5)
    expected_max = np.maximum(slack, 0).max(1)
    np.testing.assert_allclose(np.asarray(ro["info"]["max_violation"]).reshape(-1), expected_max, rtol=1e-4, atol=1e-6)
    assert 0.2 < np.mean(expected > 1e-6) < 1.0  # violating and feasible actions both occur
    valid = np.all(slack <= 1e-6, axis=1) & (np.abs(a.sum(1) - 1) <= 1e-6)
    clear = np.all((slack < -1e-5) | (slack > 1e-5), axis=1)  # away from float32 round-off
    np.testing.assert_array_equal(np.asarray(ro["valid"]).reshape(-1)[clear], valid[clear])
    assert np.all(np.asarray(ro["info"]["simplex_error"]) < 1e-5)


@pytest.mark.parametrize("name, eid", [("synth7", "PASPO-synth-7-v0"), ("compute9", "PASPO-compute-9-v0"), ("portfolio13", "PASPO-portfolio-13-v0")])
def test_is_valid_on_vertices_interior_and_outside_points(envs, name, eid):
    env, params = envs[eid]
    _, state = env.reset(jax.random.PRNGKey(0), params)
    A, b = load_polytope(name)
    n = A.shape[1]
    rng = np.random.default_rng(0)
    vertices = [lp_point(A, b, rng.standard_normal(n), n) for _ in range(8)]
    centre, radius = chebyshev_center(A, b, n)
    assert radius > 1e-3
    for v in vertices:
        # with unit-norm rows, float32 round-off at a vertex stays below the default 1e-6 per
        # row; the summed violation adds it up over all near-active rows (synth7: ~2e-6)
        assert bool(env.is_valid(state, jnp.asarray(v, jnp.float32), params))
        assert float(env.violation(state, jnp.asarray(v, jnp.float32), params)) < 1e-5
        # halfway to the centre is strictly inside
        assert bool(env.is_valid(state, jnp.asarray(0.5 * (v + centre), jnp.float32), params))
    assert bool(env.is_valid(state, jnp.asarray(centre, jnp.float32), params))
    # Outside: simplex vertices violating some row; off-simplex actions.
    for i in range(n):
        e = np.eye(n)[i]
        assert bool(env.is_valid(state, jnp.asarray(e, jnp.float32), params)) == bool(np.all(A @ e <= b + 1e-6))
    assert not bool(env.is_valid(state, jnp.asarray(centre * 1.01, jnp.float32), params))
    shifted = centre.copy()
    shifted[0] -= 2 * shifted[0] + 0.01  # negative entry
    assert not bool(env.is_valid(state, jnp.asarray(shifted, jnp.float32), params))
    # Beyond a vertex along the direction that made it optimal: outside.
    c = rng.standard_normal(n)
    c -= c.mean()
    v = lp_point(A, b, c, n)
    w = v - 0.05 * c / np.linalg.norm(c)
    expected = bool(np.all(A @ w <= b + 1e-6) and np.all(w >= -1e-6) and np.all(w <= 1 + 1e-6))
    assert not expected
    assert bool(env.is_valid(state, jnp.asarray(w, jnp.float32), params)) == expected


def test_to_simplex_keeps_simplex_actions_and_maps_others():
    a = jnp.asarray([0.2, 0.3, 0.5], jnp.float32)
    np.testing.assert_array_equal(np.asarray(to_simplex(a)), np.asarray(a))
    np.testing.assert_allclose(np.asarray(to_simplex(jnp.asarray([-1.0, 1.0, 3.0]))), [0.0, 0.25, 0.75])
    np.testing.assert_allclose(np.asarray(to_simplex(jnp.asarray([-1.0, -2.0]))), [0.5, 0.5])


def test_infeasible_actions_are_executed_and_only_measured():
    env, params = make_synth(7, seed=0)
    state = SynthState(s=jnp.asarray(1, jnp.int32), time=0)
    a = np.eye(7)[0].astype(np.float32)  # a simplex vertex outside synth7
    _, _, r, _, info = env.step_env(jax.random.PRNGKey(0), state, jnp.asarray(a), params)
    assert float(info["violation"]) > 0.01
    expected = 30.0 * numpy_mlp(np.concatenate([np.eye(3)[1], a])[None], params)[0]
    np.testing.assert_allclose(float(r), expected, rtol=1e-5, atol=1e-5)
    _, penalised = make_synth(7, seed=0, violation_penalty=2.0)
    _, _, r_pen, _, info_pen = env.step_env(jax.random.PRNGKey(0), state, jnp.asarray(a), penalised)
    np.testing.assert_allclose(float(r_pen), expected - 2.0 * float(info_pen["violation"]), rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------------- compute env
def test_compute_deadline_reward_and_queues_on_hand_made_cases(envs):
    env, params = envs["PASPO-compute-9-v0"]
    f = np.asarray(params.freq, np.float64)
    B, C = 587_168.0, 1_690_694.0  # user 0 of the reference data
    assert np.isclose(float(params.bits_low[0]), B) and np.isclose(float(params.cycles_low[0]), C)
    D = 3.0 * (B / 1e9 + C / f.sum())

    def step(queue, a, key=0):
        state = ComputeState(
            queue=jnp.asarray(queue, jnp.float32), user=jnp.asarray(0, jnp.int32),
            bits=jnp.asarray(B, jnp.float32), cycles=jnp.asarray(C, jnp.float32), time=0,
        )
        return env.step(jax.random.PRNGKey(key), state, jnp.asarray(a, jnp.float32), params)

    # 1. Whole task on the fastest server, empty queues: done at B/1e9 + C/f_4 < D.
    a = np.eye(9)[4]
    _, s1, r, _, _, info = step(np.zeros(9), a)
    T4 = B / 1e9 + C / f[4]
    assert T4 < D and float(r) == 1.0
    np.testing.assert_allclose(float(info["completion_time"]), T4, rtol=1e-5)
    np.testing.assert_allclose(float(info["deadline"]), D, rtol=1e-5)
    # 2. Whole task on the slowest server (0.65 GHz): C / f_2 = 2.6 ms > D.
    _, _, r, _, _, _ = step(np.zeros(9), np.eye(9)[2])
    assert B / 1e9 + C / f[2] > D and float(r) == 0.0
    # 3. Split over servers 0 and 4, server 4 with a backlog: the backlog decides.
    a = np.zeros(9)
    a[0], a[4] = 0.5, 0.5
    for backlog, ok in [(D - 0.5 * C / f[4] - 1e-5, 1.0), (D - 0.5 * C / f[4] + 1e-5, 0.0)]:
        queue = np.zeros(9)
        queue[4] = backlog
        queue[8] = 0.05  # an unused server: its backlog must not matter, it only drains
        _, s3, r, _, _, info = step(queue, a)
        assert float(r) == ok
        T = np.array([max(queue[j], B / 1e9) + a[j] * C / f[j] for j in range(9)])
        np.testing.assert_allclose(float(info["completion_time"]), T[[0, 4]].max(), rtol=1e-5)
        # Queues: used servers hold T_j, then all drain by the same inter-arrival time dt.
        dt = 0.05 - float(s3.queue[8])
        assert 0.0 < dt < 0.01
        np.testing.assert_allclose(np.asarray(s3.queue)[[0, 4]], np.maximum(T[[0, 4]] - dt, 0), rtol=1e-4, atol=1e-7)
        assert np.all(np.asarray(s3.queue)[[1, 2, 3, 5, 6, 7]] == 0.0)
    # 4. A tiny share on a backlogged server is still waited for.
    a = np.full(9, 0.0)
    a[4], a[3] = 1.0 - 1e-4, 1e-4
    queue = np.zeros(9)
    queue[3] = 0.02
    _, _, r, _, _, _ = step(queue, a)
    assert float(r) == 0.0


def test_compute_arrivals_are_poisson_with_the_reference_rate(rollouts):
    ro = rollouts("PASPO-compute-9-v0")
    dt = np.asarray(ro["info"]["inter_arrival"], np.float64).reshape(-1)
    rate = 9 * 10 / 0.01  # 9 users x 10 tasks per 0.01 s
    # Exponential(rate): mean 1/rate, coefficient of variation 1, P(dt > 1/rate) = e^-1.
    assert abs(dt.mean() * rate - 1.0) < 5 / np.sqrt(dt.size)
    assert abs(dt.std() / dt.mean() - 1.0) < 0.05
    assert abs(np.mean(dt * rate > 1.0) - np.exp(-1)) < 5 * np.sqrt(0.25 / dt.size)
    users = np.asarray(ro["state"].user).reshape(-1)
    counts = np.bincount(users, minlength=9)
    assert np.all(np.abs(counts / users.size - 1 / 9) < 5 * np.sqrt((1 / 9) * (8 / 9) / users.size))
    # The reward is the deadline test of the recorded completion time.
    np.testing.assert_array_equal(
        np.asarray(ro["reward"]) == 1.0, np.asarray(ro["info"]["completion_time"]) <= np.asarray(ro["info"]["deadline"])
    )


# --------------------------------------------------------------------------- portfolio env
def test_portfolio_return_and_fee_arithmetic_by_hand(envs):
    env, params = envs["PASPO-portfolio-13-v0"]
    assert params.fee_rate == 0.001
    r = np.linspace(-0.06, 0.05, 12).astype(np.float32)
    # Month 1 from all cash: buy 30% of stock 1 (MSFT) and 20% of stock 5 (NVDA).
    w0 = np.eye(13)[0]
    a = np.zeros(13)
    a[0], a[1], a[5] = 0.5, 0.3, 0.2
    reward, gross, fee, w1 = portfolio_step(jnp.asarray(w0, jnp.float32), jnp.asarray(a, jnp.float32), jnp.asarray(r), params)
    hand_gross = 0.3 * r[0] + 0.2 * r[4]  # cash earns 0
    hand_fee = 0.001 * (0.3 + 0.2)
    np.testing.assert_allclose(float(gross), hand_gross, rtol=1e-6)
    np.testing.assert_allclose(float(fee), hand_fee, rtol=1e-6)
    np.testing.assert_allclose(float(reward), hand_gross - hand_fee, rtol=1e-5)
    # Drifted weights: value of each holding / total value.
    values = np.array([0.5] + [0.3 * (1 + r[0])] + [0.0] * 3 + [0.2 * (1 + r[4])] + [0.0] * 7)
    np.testing.assert_allclose(np.asarray(w1), values / values.sum(), rtol=1e-6, atol=1e-7)
    # Month 2: move everything into stock 2; fee on |a - w| over stocks only.
    a2 = np.eye(13)[2]
    _, _, fee2, _ = portfolio_step(w1, jnp.asarray(a2, jnp.float32), jnp.asarray(r), params)
    w1 = values / values.sum()
    hand_fee2 = 0.001 * (w1[1] + w1[5] + 1.0)
    np.testing.assert_allclose(float(fee2), hand_fee2, rtol=1e-5)


def test_portfolio_env_step_pays_the_sampled_returns(envs, rollouts):
    env, params = envs["PASPO-portfolio-13-v0"]
    ro = rollouts("PASPO-portfolio-13-v0")
    z0 = np.asarray(ro["state"].z[0])
    assert np.all(z0 == 1)  # startprob is (~0, 1)
    np.testing.assert_array_equal(np.asarray(ro["state"].w[0]), np.broadcast_to(np.eye(13)[0], (NUM_ENVS, 13)))
    # Inside an episode the next state still holds the month's returns (no auto-reset).
    T = ro["actions"].shape[0]
    inside = [t for t in range(T) if (t + 1) % 12 != 0]
    a = ro["actions"][inside].astype(np.float64)
    w = np.asarray(ro["state"].w, np.float64)[inside]
    r = np.asarray(ro["next_state"].last_r, np.float64)[inside]
    R = np.concatenate([np.zeros((*r.shape[:2], 1)), r], axis=-1)
    expected = np.sum(a * R, -1) - 0.001 * np.abs(a - w)[..., 1:].sum(-1)
    np.testing.assert_allclose(np.asarray(ro["reward"])[inside], expected, rtol=1e-4, atol=1e-6)
    # weights drift with the prices
    grown = a * (1 + R)
    np.testing.assert_allclose(np.asarray(ro["next_state"].w)[inside], grown / grown.sum(-1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_hmm_samples_match_its_parameters(envs):
    _, params = envs["PASPO-portfolio-13-v0"]
    hmm = load_hmm()
    chains, steps, burn = 512, 220, 20

    def run_chain(key):
        def body(z, k):
            r, z_next = hmm_step(k, z, params)
            return z_next, (z, r, z_next)
        return jax.lax.scan(body, jnp.asarray(1, jnp.int32), jax.random.split(key, steps))[1]

    z, r, z_next = jax.jit(jax.vmap(run_chain))(jax.random.split(jax.random.PRNGKey(0), chains))
    z, r, z_next = (np.asarray(x)[:, burn:].reshape(-1, *np.asarray(x).shape[2:]) for x in (z, r, z_next))
    r = r.astype(np.float64)
    # Stationary distribution of the transition matrix (left eigenvector for eigenvalue 1).
    T = hmm["transmat"]
    evals, evecs = np.linalg.eig(T.T)
    pi = np.real(evecs[:, np.argmin(np.abs(evals - 1))])
    pi /= pi.sum()
    N = len(z)
    lam = np.trace(T) - 1.0  # second eigenvalue: lag-k autocorrelation of the regime is lam^k
    assert abs(np.mean(z == 1) - pi[1]) < 5 * np.sqrt(pi[0] * pi[1] / N * (1 + abs(lam)) / (1 - abs(lam)))
    for k in range(2):
        mask = z == k
        trans = np.mean(z_next[mask] == 1)
        assert abs(trans - T[k, 1]) < 5 * np.sqrt(T[k, 0] * T[k, 1] / mask.sum())
        mean_err = r[mask].mean(0) - hmm["means"][k]
        se = np.sqrt(np.diag(hmm["covars"][k]) / mask.sum())
        assert np.all(np.abs(mean_err) < 5 * se), mean_err / se
        cov = np.cov(r[mask].T)
        scale = np.sqrt(np.outer(np.diag(hmm["covars"][k]), np.diag(hmm["covars"][k])))
        assert np.max(np.abs(cov - hmm["covars"][k]) / scale) < 0.05
    # Unconditional mean = stationary mixture of the regime means.
    se_all = np.sqrt(np.diag(np.cov(r.T)) / N * (1 + abs(lam)) / (1 - abs(lam)))
    assert np.all(np.abs(r.mean(0) - pi @ hmm["means"]) < 5 * se_all)


# --------------------------------------------------------------------------- capacity env
def test_capacity_knapsack_cost_equals_highs():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(0.5, 1.5, 7)
        c = rng.uniform(0.2, 1.0, 7)
        lo = linprog(p, A_eq=np.ones((1, 7)), b_eq=[1.0], bounds=list(zip([0] * 7, c)), method="highs").fun
        hi = -linprog(-p, A_eq=np.ones((1, 7)), b_eq=[1.0], bounds=list(zip([0] * 7, c)), method="highs").fun
        np.testing.assert_allclose(float(knapsack_cost(jnp.asarray(p), jnp.asarray(c))), lo, rtol=1e-5)
        np.testing.assert_allclose(float(-knapsack_cost(-jnp.asarray(p), jnp.asarray(c))), hi, rtol=1e-5)


def test_capacity_constraints_change_with_state_and_stay_feasible(envs, rollouts):
    env, params = envs["PASPO-capacity-7"]
    ro = rollouts("PASPO-capacity-7")
    A = np.asarray(ro["A"], np.float64).reshape(-1, 8, 7)
    b = np.asarray(ro["b"], np.float64).reshape(-1, 8)
    # A (the budget row) and b (capacities, budget) differ from state to state.
    assert np.std(A[:, 7, :], axis=0).min() > 1e-2
    assert np.std(b, axis=0).min() > 1e-2
    np.testing.assert_array_equal(A[:, :7, :], np.broadcast_to(np.eye(7), (len(A), 7, 7)))
    c = np.asarray(ro["state"].c, np.float64).reshape(-1, 7)
    np.testing.assert_allclose(b[:, :7], c, rtol=1e-6)
    assert c.min() >= params.c_min - 1e-7 and c.max() <= 1.0
    # Capacity wears with use: c' = clip(c + 0.1 (1 - c) - 0.5 a, c_min, 1) inside episodes.
    T = ro["actions"].shape[0]
    inside = [t for t in range(T) if (t + 1) % 20 != 0]
    c_t = np.asarray(ro["state"].c, np.float64)[inside]
    c_next = np.asarray(ro["next_state"].c, np.float64)[inside]
    a = ro["actions"][inside].astype(np.float64)
    np.testing.assert_allclose(c_next, np.clip(c_t + 0.1 * (1 - c_t) - 0.5 * a, 0.2, 1.0), rtol=1e-5, atol=1e-6)
    # Every state reached has a feasible action: a witness for all 10240 states (numpy: fill
    # the cheapest sites up to capacity, the least energy bill) ...
    p = np.asarray(ro["state"].p, np.float64).reshape(-1, 7)
    witness = np.zeros_like(c)
    for k in range(len(c)):
        left = 1.0
        for i in np.argsort(p[k]):
            witness[k, i] = min(c[k, i], left)
            left -= witness[k, i]
        assert left < 1e-9
    assert np.all(np.einsum("kmn,kn->km", A, witness) <= b + 1e-6)
    # ... and HiGHS finds one with slack 1e-4 in every row (a sample of 300 states).
    for k in np.random.default_rng(0).choice(len(A), size=300, replace=False):
        assert lp_point(A[k], b[k] - 1e-4, np.zeros(7), 7) is not None, k


def test_capacity_rejects_settings_that_could_be_infeasible():
    with pytest.raises(ValueError, match="c_min"):
        envs_jax.make("PASPO-capacity-7", c_min=0.1)


# --------------------------------------------------------------------------- API, jit, vmap
@pytest.mark.parametrize("eid", ENV_IDS)
def test_envs_jit_and_vmap_over_256_envs(envs, rollouts, eid):
    env, params = envs[eid]
    n = env.num_entities
    assert env.num_actions == n
    space = env.action_space(params)
    assert space.shape == (n,) and space.low == 0.0 and space.high == 1.0
    assert env.observation_space(params).shape == (OBS_DIM[eid],)
    ro = rollouts(eid)
    T = 2 * EPISODE_LENGTH[eid]
    assert ro["obs0"].shape == (NUM_ENVS, OBS_DIM[eid]) and ro["obs0"].dtype == jnp.float32
    assert ro["obs"].shape == (T, NUM_ENVS, OBS_DIM[eid]) and ro["obs"].dtype == jnp.float32
    assert ro["reward"].shape == (T, NUM_ENVS) and ro["reward"].dtype == jnp.float32
    assert ro["info"]["violation"].dtype == jnp.float32 and ro["valid"].dtype == jnp.bool_
    assert ro["A"].shape[:2] == (T, NUM_ENVS) and ro["A"].shape[-1] == n and ro["A"].dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(ro["obs"]))) and np.all(np.isfinite(np.asarray(ro["reward"])))
    space = env.observation_space(params)
    assert np.all(np.asarray(ro["obs"]) >= np.asarray(space.low) - 1e-6)
    assert np.all(np.asarray(ro["obs"]) <= np.asarray(space.high) + 1e-6)
    # the 256 envs really run independently
    assert np.unique(np.asarray(ro["obs"][1]), axis=0).shape[0] > 1
    # vmapping over env params works too (A, b and all numbers are leaves of the params)
    stacked = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (2, *jnp.shape(x))), params)
    o2, _ = jax.jit(jax.vmap(env.reset_env, (0, 0)))(jax.random.split(jax.random.PRNGKey(0), 2), stacked)
    assert o2.shape == (2, OBS_DIM[eid])


@pytest.mark.parametrize("eid", ENV_IDS)
def test_episodes_end_at_the_documented_length(envs, rollouts, eid):
    _, params = envs[eid]
    L = EPISODE_LENGTH[eid]
    assert params.max_steps_in_episode == L
    ro = rollouts(eid)
    expected = np.zeros((2 * L, NUM_ENVS), bool)
    expected[[L - 1, 2 * L - 1]] = True
    np.testing.assert_array_equal(np.asarray(ro["truncated"]), expected)
    np.testing.assert_array_equal(np.asarray(ro["terminated"]), expected)  # the horizon ends the task
    time = np.asarray(ro["next_state"].time)
    np.testing.assert_array_equal(time, np.broadcast_to(np.tile(np.r_[np.arange(1, L), 0], 2)[:, None], time.shape))


def test_bad_construction_arguments_raise_one_clear_error():
    with pytest.raises(ValueError, match="n >= 2"):
        make_synth(1)
    with pytest.raises(ValueError, match="synth7 has 7 entities"):
        make_synth(20, polytope="reference")
    with pytest.raises(ValueError, match="state_input"):
        make_synth(7, state_input="binary")
    with pytest.raises(ValueError, match="fee_rate"):
        envs_jax.make("PASPO-portfolio-13-v0", fee_rate=-0.1)
