"""OptLayer-PPO (safe_jax.optlayer): the executed action against scipy's solution of the QP the
original hands qpth (``min 1/2 y'y + p'y`` with ``p = +z``: the projection of ``-z``) and of the
projection of ``+z``; the proposal's cost and cost-to-go against numpy; the CPC update's two
optimizer steps against a hand-written computation on a tiny batch."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.special import digamma, gammaln
from scipy.optimize import minimize

import envs_jax
from envs_jax.allocation import load_polytope
from ppo_jax.config import PPOConfig
from ppo_jax.engine import make_optimizer
from ppo_jax.policy import Batch
from ppo_jax.update import UpdateState
from safe_jax.algo import SafeConfig, build, make_rule, policy_for, presets
from safe_jax.optlayer import cost_to_go, optlayer_project, proposal_cost
from safe_jax.rows import raw_row_scale


def _qpth_problem_scipy(p, A, b):
    """scipy SLSQP on qpth's problem: min 1/2 y'y + p'y s.t. A y <= b, -y <= 0, y <= 1, 1'y = 1."""
    n = p.shape[0]
    cons = [{"type": "ineq", "fun": lambda y: b - A @ y, "jac": lambda y: -A},
            {"type": "eq", "fun": lambda y: np.array([y.sum() - 1.0]), "jac": lambda y: np.ones((1, n))}]
    res = minimize(lambda y: 0.5 * y @ y + p @ y, np.full(n, 1.0 / n), jac=lambda y: y + p, constraints=cons,
                   bounds=[(0.0, 1.0)] * n, method="SLSQP", options={"ftol": 1e-15, "maxiter": 2000})
    assert res.success
    return res.x


@pytest.mark.parametrize("name", ["compute9", pytest.param("portfolio13", marks=pytest.mark.slow)])
def test_executed_action_is_the_projection_of_minus_z_for_orig_and_of_z_for_fixed(name):
    A, b = load_polytope(name)
    n = A.shape[1]
    Z = np.random.default_rng(0).dirichlet(np.full(n, 0.5), size=8)
    with jax.enable_x64(True):
        both = jax.jit(jax.vmap(lambda z: (optlayer_project(z, A, b, -1.0).x, optlayer_project(z, A, b, 1.0).x)))
        orig, fixed = (np.asarray(x) for x in both(jnp.asarray(Z)))
    for z, o, f in zip(Z, orig, fixed):
        np.testing.assert_allclose(o, _qpth_problem_scipy(z, A, b), atol=1e-6)  # qpth's call, p = +z
        np.testing.assert_allclose(f, _qpth_problem_scipy(-z, A, b), atol=1e-6)  # argmin ||y - z||


def test_policy_executes_the_projection_and_reports_the_proposal_cost():
    env, params = envs_jax.make("PASPO-compute-9")
    pol = policy_for(SafeConfig(method="optlayer-orig", cost_rows="raw"), env, params)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    p = pol.init(jax.random.PRNGKey(1), obs, state, params)
    acts = jax.jit(jax.vmap(lambda k: pol.act(p, k, obs, state, params)))(jax.random.split(jax.random.PRNGKey(2), 6))
    A, b = load_polytope("compute9")
    A_raw, b_raw = load_polytope("compute9", normalize=False)
    np.testing.assert_allclose(raw_row_scale(env, params), np.linalg.norm(A_raw, axis=1), rtol=1e-6)
    for a, z, c in zip(np.asarray(acts.action), np.asarray(acts.extras["z"], np.float64), np.asarray(acts.extras["cost"])):
        np.testing.assert_allclose(a, _qpth_problem_scipy(z, A, b), atol=1e-5)  # float32 policy
        want = z.sum() - 1 + np.maximum(A_raw @ z - b_raw, 0).sum() + np.maximum(-z, 0).sum() + np.maximum(z - 1, 0).sum()
        np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-6)
    assert np.all(np.asarray(acts.extras["first"]))  # reset state: time 0


def test_proposal_cost_and_cost_to_go_by_hand():
    A, b = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 1.0]]), np.array([0.5, 0.1])
    z = np.array([0.7, -0.2, 1.3])  # off the simplex: every term counts
    want = (0.7 - 0.2 + 1.3 - 1) + max(0.7 - 0.4 - 0.5, 0) + max(0.2 + 1.3 - 0.1, 0) + 0.2 + 0.3
    assert float(proposal_cost(jnp.asarray(z, jnp.float32), jnp.asarray(A, jnp.float32), jnp.asarray(b, jnp.float32))) \
        == pytest.approx(want, rel=1e-6)
    rng = np.random.default_rng(1)
    N, T, disc = 3, 5, 0.95
    cost = rng.uniform(0, 1, (N, T))
    first = rng.uniform(size=(N, T)) < 0.4
    want = np.zeros((N, T))
    for e in range(N):
        acc = 0.0
        for t in reversed(range(T)):
            boundary = t == T - 1 or first[e, t + 1]
            acc = cost[e, t] + (0.0 if boundary else disc * acc)
            want[e, t] = acc
    got = cost_to_go(jnp.asarray(cost.reshape(-1)), jnp.asarray(first.reshape(-1)), N, T, disc)
    np.testing.assert_allclose(np.asarray(got).reshape(N, T), want, rtol=1e-6)


def test_cpc_update_takes_two_optimizer_steps_on_the_right_losses():
    """One epoch, one minibatch of 6 rows: the rule's parameters after the update equal two
    hand-written clipped-PPO steps (Adam after a global-norm clip): (1) on log pi(z) with
    standardised A - G and value target target - G, (2) on log pi(a) with standardised A and
    target; Dirichlet log-density (floored, clamped) and entropy written out here."""
    N, T = 2, 3
    ppo = PPOConfig(num_envs=N, num_steps=T, total_timesteps=N * T, num_minibatches=1, update_epochs=1, lr=0.01, anneal_lr=False,
                    max_grad_norm=2.0, adam_eps=1e-8, clip_eps=0.2, clip_value=False, ent_coef=0.05, vf_coef=0.5, gamma=1.0, gae_lambda=0.9)
    env, env_params = envs_jax.make("PASPO-compute-9")
    pol = policy_for(SafeConfig(method="optlayer"), env, env_params)
    engine = SimpleNamespace(config=ppo, optimizer=make_optimizer(ppo), policy=pol)  # what the rule uses
    rng = np.random.default_rng(3)
    obs = jnp.asarray(rng.normal(size=(N * T,) + env.observation_space(env_params).shape), jnp.float32)
    p0 = pol.init(jax.random.PRNGKey(0), obs[0])
    # Proposals z and executed actions a (any simplex points: the rule does not project) with
    # their behaviour log-probs under p0 (the policy's own, jitted once).
    z = jnp.asarray(rng.dirichlet(np.full(9, 0.7), N * T), jnp.float32)
    a = jnp.asarray(rng.dirichlet(np.full(9, 2.0), N * T), jnp.float32)
    logp = jax.jit(jax.vmap(lambda o, x: pol.evaluate(p0, None, o, x, ()).log_prob))
    acts = SimpleNamespace(action=a, log_prob=logp(obs, a), extras={"z": z, "logp_z": logp(obs, z)})
    first = np.array([[True, False, True], [False, False, False]]).reshape(-1)
    cost = rng.uniform(0.0, 0.5, N * T).astype(np.float32)
    extras = {**acts.extras, "cost": jnp.asarray(cost), "first": jnp.asarray(first)}
    adv = jnp.asarray(rng.normal(size=N * T), jnp.float32)
    val = jnp.asarray(rng.normal(size=N * T), jnp.float32)
    batch = Batch(obs=obs, action=acts.action, log_prob=acts.log_prob, value=val, advantage=adv, target=adv + val,
                  extras=extras)
    ustate = UpdateState(p0, engine.optimizer.init(p0), (), (), ())
    rule = make_rule(SafeConfig(method="optlayer"))
    out, _ = jax.jit(lambda u, b: rule(engine, u, b, {"return": jnp.zeros(())}, jax.random.PRNGKey(5)))(ustate, batch)

    # Hand-written reference.
    G = np.zeros(N * T)
    c, f = cost.reshape(N, T), first.reshape(N, T)
    for e in range(N):
        acc = 0.0
        for t in reversed(range(T)):
            acc = c[e, t] + (0.0 if (t == T - 1 or f[e, t + 1]) else 0.9 * acc)
            G[e * T + t] = acc
    G = jnp.asarray(G, jnp.float32)

    def logpdf(alpha, x):
        x = jnp.maximum(x, 1e-6)
        x = x / x.sum()
        lp = gammaln(alpha.sum()) - gammaln(alpha).sum() + ((alpha - 1) * jnp.log(x)).sum()
        return jnp.maximum(lp, np.log(1e-6))

    def entropy(alpha):
        a0, k = alpha.sum(), alpha.shape[0]
        return gammaln(alpha).sum() - gammaln(a0) + (a0 - k) * digamma(a0) - ((alpha - 1) * digamma(alpha)).sum()

    def loss(params, actions, old_lp, advantage, target):
        alpha = jax.vmap(lambda o: pol._dist(params, o).concentration)(obs)
        v = jax.vmap(lambda o: pol.value(params, o))(obs)
        lp = jax.vmap(logpdf)(alpha, actions)
        a = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        r = jnp.exp(lp - old_lp)
        pg = -jnp.minimum(r * a, jnp.clip(r, 0.8, 1.2) * a).mean()
        return pg + 0.5 * 0.5 * jnp.mean((v - target) ** 2) - 0.05 * jax.vmap(entropy)(alpha).mean()

    opt = optax.chain(optax.clip_by_global_norm(2.0), optax.adam(0.01, eps=1e-8))
    s = opt.init(p0)
    grad = jax.jit(jax.grad(loss))
    g1 = grad(p0, extras["z"], extras["logp_z"], adv - G, adv + val - G)
    u, s = opt.update(g1, s, p0)
    p1 = optax.apply_updates(p0, u)
    g2 = grad(p1, acts.action, acts.log_prob, adv, adv + val)
    u, s = opt.update(g2, s, p1)
    p2 = optax.apply_updates(p1, u)
    # Adam divides by sqrt(v): entries with near-zero gradients amplify float round-off, so a
    # loose bound on all (a wrong loss moves entries by ~lr = 1e-2) and a tight one on 99%.
    diff = np.concatenate([np.abs(np.asarray(a) - np.asarray(b)).ravel()
                           for a, b in zip(jax.tree.leaves(out.params), jax.tree.leaves(p2))])
    assert diff.max() < 2e-4 and np.mean(diff > 2e-6) < 0.01
    moved = sum(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(p2), jax.tree.leaves(p1)))
    assert moved > 1e-3  # the second step matters


def test_optlayer_presets_and_bad_env():
    cfg = presets("paper", "PASPO-compute-9", {"safe": {"method": "optlayer-orig"}})
    assert cfg["safe"].cost_rows == "raw" and cfg["ppo"].clip_eps == 0.3 and cfg["ppo"].ent_coef == 0.01
    assert presets("paper", "PASPO-compute-9", {"safe": {"method": "ppo_lag_orig"}})["safe"].cost_rows == "raw"
    with pytest.raises(ValueError, match="allocation env"):
        build("Safe-bandit", {"ppo": PPOConfig(), "safe": SafeConfig(method="optlayer")})
    with pytest.raises(ValueError, match="cost_rows"):
        SafeConfig(cost_rows="all")


def test_paper_preset_keeps_the_envs_cost_off_allocation_envs():
    assert presets("paper", "Safe-bandit", {"safe": {"method": "ppo_lag_orig"}})["safe"].cost_rows == "sum"
    assert presets("paper", "PASPO-synth-7", {"safe": {"method": "ppo_lag_orig"}})["safe"].cost_rows == "raw"
    with pytest.raises(ValueError, match="allocation env"):
        build("Safe-bandit", {"ppo": PPOConfig(), "safe": SafeConfig(method="ppo_lag_orig", cost_rows="raw")})
