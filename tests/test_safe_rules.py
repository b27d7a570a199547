"""safe_jax: CPO's closed-form step against scipy on the same linearised problem, the penalty
functions against hand-computed values, the multipliers' direction, the bandit probe's optimum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import NonlinearConstraint, minimize

from ppo_jax.config import PPOConfig
from safe_jax.algo import SafeConfig, build
from safe_jax.common import multiplier_init, multiplier_step
from safe_jax.cpo import conjugate_gradient, cpo_direction
from safe_jax.penalty import ipo_barrier, p3o_penalty


# -- CPO ----------------------------------------------------------------------------------------
def _problem(seed, n=5):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n))
    H = M @ M.T + 0.5 * np.eye(n)
    return H, rng.normal(size=n), rng.normal(size=n)


def _ours(H, g, b, c, delta):
    Hi = np.linalg.inv(H)
    Hg, Hb = Hi @ g, Hi @ b
    x, case, _, _ = cpo_direction(jnp.asarray(Hg), jnp.asarray(Hb), g @ Hg, g @ Hb, b @ Hb, c, delta)
    return np.asarray(x, np.float64), int(case)


def _scipy(H, g, b, c, delta, feasible):
    trust = NonlinearConstraint(lambda x: 0.5 * x @ H @ x, -np.inf, delta, jac=lambda x: H @ x)
    if feasible:  # max g.x  s.t.  c + b.x <= 0, x.Hx/2 <= delta
        lin = NonlinearConstraint(lambda x: c + b @ x, -np.inf, 0.0, jac=lambda x: b[None])
        res = minimize(lambda x: -g @ x, np.zeros_like(g), jac=lambda x: -g, constraints=[trust, lin],
                       method="trust-constr", options={"gtol": 1e-12, "xtol": 1e-12, "maxiter": 5000})
    else:  # recovery: min b.x  s.t.  x.Hx/2 <= delta
        res = minimize(lambda x: b @ x, np.zeros_like(g), jac=lambda x: b, constraints=[trust],
                       method="trust-constr", options={"gtol": 1e-12, "xtol": 1e-12, "maxiter": 5000})
    return res.x


@pytest.mark.parametrize("seed", [0, 1])
def test_cpo_step_solves_the_linearised_trust_region_problem(seed):
    H, g, b = _problem(seed)
    delta = 0.01
    s = b @ np.linalg.solve(H, b)
    edge = np.sqrt(2 * delta * s)  # |c| at which the constraint plane touches the trust region
    cases = {3: -2.0 * edge, 2: -0.5 * edge, 1: 0.5 * edge, 0: 2.0 * edge}
    for expected_case, c in cases.items():
        x, case = _ours(H, g, b, c, delta)
        assert case == expected_case
        ref = _scipy(H, g, b, c, delta, feasible=case > 0)
        np.testing.assert_allclose(x, ref, atol=2e-4 * np.linalg.norm(ref) + 1e-6, err_msg=f"case {case}")
        if case > 0:
            assert c + b @ x <= 1e-5 and 0.5 * x @ H @ x <= delta * (1 + 1e-4)


def test_conjugate_gradient_solves_spd_systems():
    H, g, _ = _problem(3, n=6)
    x = conjugate_gradient(lambda v: jnp.asarray(H, jnp.float32) @ v, jnp.asarray(g, jnp.float32), 15)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(H, g), rtol=1e-3, atol=1e-4)


# -- penalties ----------------------------------------------------------------------------------
def test_p3o_penalty_hand_computed():
    surr, J = jnp.array([0.1, -0.3]), jnp.array([0.5, 0.2])
    # kappa * [relu(0.1 + 1 * 0.25) + relu(-0.3 - 0.05)] = 20 * 0.35
    assert float(p3o_penalty(surr, J, 0.25, 20.0, 1.0)) == pytest.approx(7.0, rel=1e-6)
    # scale 1 - gamma = 0.01: 20 * [relu(0.1 + 0.0025) + relu(-0.3 - 0.0005)] = 2.05
    assert float(p3o_penalty(surr, J, 0.25, 20.0, 0.01)) == pytest.approx(2.05, rel=1e-5)


def test_ipo_barrier_hand_computed_and_continuous():
    t, slack = 20.0, 1e-3
    got = np.asarray(ipo_barrier(jnp.array([0.5, 5e-4, -0.1]), t, slack))
    want = [np.log(2) / 20, np.log(1000) / 20 + 5e-4 / 0.02, np.log(1000) / 20 + 0.101 / 0.02]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # Continuous at the slack, and the slope below it is 1 / (slack t) = 1000 / t.
    assert float(ipo_barrier(slack * (1 + 1e-4), t, slack)) == pytest.approx(float(ipo_barrier(slack, t, slack)), abs=1e-4)
    assert float(jax.grad(lambda g: ipo_barrier(g, t, slack))(-1.0)) == pytest.approx(-1000 / t, rel=1e-6)


# -- multipliers --------------------------------------------------------------------------------
def test_multipliers_grow_while_violated_and_stop_at_zero_otherwise():
    lr = 0.035
    state = multiplier_init(2, 1.0, lr)
    lams = []
    for _ in range(40):
        state = multiplier_step(state, jnp.array([0.3, -0.2]), lr)
        lams.append(np.asarray(state["lam"]))
    lams = np.array(lams)
    # Adam with a constant gradient moves by lr per step (m_hat / sqrt(v_hat) = sign).
    np.testing.assert_allclose(lams[:, 0], 1.0 + lr * np.arange(1, 41), rtol=1e-5)
    np.testing.assert_allclose(lams[:28, 1], 1.0 - lr * np.arange(1, 29), atol=2e-5)
    assert np.all(lams[29:, 1] == 0.0)


@pytest.mark.slow
def test_original_form_lagrangian_steps_its_multipliers_in_every_minibatch():
    """PASPO's original form: one Adam step per minibatch on the minibatch's mean step cost;
    Probe-cost's second cost is 1 in every step, so with d = 0.7 lambda_2 = 1 + 0.035 * steps."""
    cfg = PPOConfig(total_timesteps=8 * 4 * 3, num_envs=8, num_steps=4, num_minibatches=2, update_epochs=2)
    train = build("Probe-cost", {"ppo": cfg, "safe": SafeConfig(method="ppo_lag_orig", cost_limit=0.7)})
    state, _ = jax.jit(train)(jax.random.PRNGKey(0))
    assert float(state.extra["lam"][1]) == pytest.approx(1.0 + 0.035 * 3 * 2 * 2, rel=1e-4)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="method"):
        SafeConfig(method="trpo")
    with pytest.raises(ValueError, match="info\\['cost'\\]"):
        build("Probe-constant", {"ppo": PPOConfig(), "safe": SafeConfig()})


# -- per-row costs --------------------------------------------------------------------------------
def test_row_cost_env_reports_each_raw_rows_violation_and_keeps_the_envs_keys():
    """``cost_rows="raw"``: info["cost"] = max(A_raw a - b_raw, 0) per stored raw row (numpy on
    envs_jax/data/polytopes.npz); the env's own summed violation stays in violation/summed_cost."""
    import envs_jax
    from envs_jax.allocation import load_polytope
    from safe_jax.rows import RowCostEnv

    env, params = envs_jax.make("PASPO-compute-9")
    wrapped = RowCostEnv(env, params, rows="raw")
    assert wrapped.raw
    _, state = env.reset(jax.random.PRNGKey(0), params)
    a = np.zeros(9, np.float32)
    a[0] = 1.0  # a vertex of the simplex: violates compute9's rows
    info = jax.jit(lambda s: wrapped.step(jax.random.PRNGKey(1), s, jnp.asarray(a), params))(state)[-1]
    inner = env.step(jax.random.PRNGKey(1), state, jnp.asarray(a), params)[-1]
    A_raw, b_raw = load_polytope("compute9", normalize=False)
    A, b = load_polytope("compute9")
    np.testing.assert_allclose(np.asarray(info["cost"]), np.maximum(A_raw @ a - b_raw, 0), rtol=1e-5, atol=1e-6)
    assert np.asarray(info["cost"]).max() > 0
    np.testing.assert_allclose(float(info["summed_cost"]), np.maximum(A @ a - b, 0).sum(), rtol=1e-5)
    assert float(info["violation"]) == float(inner["violation"]) == float(inner["cost"])
