"""DRA agent (dra_jax): memory KL, score-function gradients, allocation, trainer contract."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces
from scipy import integrate, optimize, special, stats

from dra_jax import agent as agent_lib
from dra_jax import memory, objectives
from dra_jax.trainer import Config, DRATrainer, default_config, make_trainer, paper_config


# --------------------------------------------------------------------------------------
# A contextual bandit in the gymnax API with the tabular interface (test fixture).
# --------------------------------------------------------------------------------------
@struct.dataclass
class BanditState(environment.EnvState):
    ctx: jax.Array
    time: int


@struct.dataclass
class BanditParams(environment.EnvParams):
    max_steps_in_episode: int = 1


class ContextBandit(environment.Environment):
    """One-step episodes: a context drawn uniformly, reward ``rewards[ctx, a]``."""

    def __init__(self, rewards):
        self.rewards = np.asarray(rewards, np.float32)

    @property
    def default_params(self):
        return BanditParams()

    def reset_env(self, key, params):
        ctx = jax.random.randint(key, (), 0, self.rewards.shape[0])
        s = BanditState(ctx=ctx, time=0)
        return self.get_obs(s), s

    def step_env(self, key, state, action, params):
        r = jnp.asarray(self.rewards)[state.ctx, action]
        s = BanditState(ctx=state.ctx, time=state.time + 1)
        return self.get_obs(s), s, r, jnp.asarray(True), {}

    def get_obs(self, state, params=None, key=None):
        return state.ctx

    def is_terminated(self, state, params):
        return jnp.asarray(True)

    @property
    def num_actions(self):
        return self.rewards.shape[1]

    def action_space(self, params=None):
        return spaces.Discrete(self.rewards.shape[1])

    def num_tabular_states(self, params=None):
        return self.rewards.shape[0]

    def tabular_index(self, obs, params=None):
        return obs.astype(jnp.int32)


# --------------------------------------------------------------------------------------
# KL of the memories
# --------------------------------------------------------------------------------------
def test_kl_equals_numerical_integral_and_its_gradient_equals_closed_form():
    """KL(N(m, s^2) || N(m, sb^2)) against scipy quadrature of p log p/q; d/ds against the
    closed form s/sb^2 - 1/s and against finite differences of the quadrature."""

    def kl_quad(s, sb, m=0.7):
        p, q = stats.norm(m, s), stats.norm(m, sb)
        f = lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x))
        return integrate.quad(f, m - 40 * s, m + 40 * s, limit=200)[0]

    for s, sb in [(0.3, 5.0), (3.0, 5.0), (7.0, 5.0), (1.0, 100.0)]:
        assert float(memory.kl_gaussian(jnp.float32(s), sb)) == pytest.approx(kl_quad(s, sb), rel=1e-4, abs=1e-5)
        fd = (kl_quad(s + 1e-4, sb) - kl_quad(s - 1e-4, sb)) / 2e-4
        closed = s / sb**2 - 1 / s
        assert float(memory.kl_gaussian_grad(jnp.float32(s), sb)) == pytest.approx(closed, rel=1e-6)
        assert closed == pytest.approx(fd, rel=1e-3, abs=1e-4)
        auto = jax.grad(lambda x: memory.kl_gaussian(x, sb))(jnp.float32(s))
        assert float(auto) == pytest.approx(closed, rel=1e-5)
    assert float(memory.kl_gaussian(jnp.float32(5.0), 5.0)) == pytest.approx(0.0, abs=1e-7)


def test_score_and_entropy_gradients_equal_autodiff():
    """d log pi(a|s,zeta)/d sigma and dH/d sigma (zeta fixed) against jax.grad."""
    key = jax.random.PRNGKey(3)
    q, sig, zeta = jax.random.normal(key, (3, 4)) * jnp.array([[1.0], [0.5], [1.0]]) + jnp.array([[0.0], [1.0], [0.0]])
    beta, a = 2.5, 2
    auto_score = jax.grad(lambda s: jnp.log(memory.probs(q, s, zeta, beta))[a])(sig)
    pi = memory.probs(q, sig, zeta, beta)
    np.testing.assert_allclose(memory.score_sigma(jnp.asarray(a), zeta, pi, beta), auto_score, rtol=1e-5, atol=1e-6)
    auto_h = jax.grad(lambda s: memory.entropy(memory.probs(q, s, zeta, beta)))(sig)
    np.testing.assert_allclose(memory.entropy_grad_sigma(zeta, pi, beta), auto_h, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------------------
# Score-function gradient vs. finite differences of the exact objective (quadrature)
# --------------------------------------------------------------------------------------
R_ARMS = np.array([1.0, 0.0])
BETA, LMBDA, SIGMA_BASE = 2.0, 0.1, 1.5


def _exact_objective(objective, sig, horizon_T=2.0):
    """1-state, 2-arm bandit with q = r. pi_0 = sigmoid(beta (r0 - r1 + s0 z0 - s1 z1)):
    a 1-D Gaussian integral over x = r0 - r1 + sqrt(s0^2 + s1^2) z (scipy quad, float64)."""
    s0, s1 = sig
    sd = np.hypot(s0, s1)
    d = R_ARMS[0] - R_ARMS[1]

    def expect(g):
        f = lambda z: g(BETA * (d + sd * z)) * stats.norm.pdf(z)
        return integrate.quad(f, -12, 12, limit=200, epsabs=1e-12, epsrel=1e-12)[0]

    p0 = lambda x: special.expit(x)
    reward = expect(lambda x: p0(x) * R_ARMS[0] + (1 - p0(x)) * R_ARMS[1])
    ent = expect(lambda x: -p0(x) * special.log_expit(x) - (1 - p0(x)) * special.log_expit(-x))
    kl = sum(np.log(SIGMA_BASE / s) + s**2 / (2 * SIGMA_BASE**2) - 0.5 for s in sig)
    if objective == "dra":
        return reward - LMBDA * kl
    if objective == "elbo_access":  # one step: T = 1, the visited state's KL paid once
        return reward - LMBDA * kl + LMBDA * ent
    if objective == "elbo_storage":  # note Eq. 10, fixed T
        return reward + LMBDA / horizon_T * ent - LMBDA * kl
    return reward + LMBDA * ent - LMBDA * kl  # per-trajectory T: every episode has one step


@functools.lru_cache(maxsize=None)
def _bandit_gradient_fn():
    """Gradient estimates of 16 independent batches of 8192 one-step rollouts; objective and
    baseline are traced (one compiled program for all nine combinations)."""
    env = ContextBandit([R_ARMS])
    task = agent_lib.tabular_task(env, env.default_params)
    spec = agent_lib.Spec(horizon_T=2.0, max_steps=5)
    ag = agent_lib.AgentState(q=jnp.asarray([R_ARMS], jnp.float32), sigma=jnp.asarray([[0.8, 0.5]], jnp.float32))

    @jax.jit
    def fn(objective, baseline):
        hyper = agent_lib.make_hyper(beta=BETA, lmbda=LMBDA, sigma_base=SIGMA_BASE, objective=objective, baseline=baseline)
        one = lambda k: agent_lib.sigma_gradient(k, 8192, ag, hyper, BETA, task, env.default_params, spec)[0]
        return jax.vmap(one)(jax.random.split(jax.random.PRNGKey(11), 16))[:, 0, :]

    return fn


@pytest.mark.parametrize("objective", objectives.OBJECTIVES)
@pytest.mark.parametrize("baseline", objectives.BASELINES)
def test_score_function_gradient_mean_matches_finite_difference_of_exact_objective(objective, baseline):
    sig = np.array([0.8, 0.5])
    g = np.asarray(_bandit_gradient_fn()(objectives.objective_id(objective), objectives.baseline_id(baseline)))
    mean, se = g.mean(0), g.std(0, ddof=1) / np.sqrt(g.shape[0])
    h = 1e-4
    fd = np.array([
        (_exact_objective(objective, sig + h * e) - _exact_objective(objective, sig - h * e)) / (2 * h)
        for e in np.eye(2)
    ])
    assert np.all(np.abs(mean - fd) < 4.5 * se + 2e-3), (mean, fd, se)
    # and the estimate is informative: the exact gradient is far from zero
    assert np.all(np.abs(fd) > 5 * se)


# --------------------------------------------------------------------------------------
# Allocation on a 2-armed contextual bandit
# --------------------------------------------------------------------------------------
def test_bandit_agent_gives_precision_where_the_arm_values_matter():
    """Context 0: arms worth +1 / -1 (the choice matters); context 1: both worth 0. The agent
    keeps context 1's memories at the free sigma_base and spends precision on context 0,
    where it settles at the optimum of its own objective (scipy, on the exact expectation)."""
    env = ContextBandit([[1.0, -1.0], [0.0, 0.0]])
    cfg = Config(num_trials=4000, num_rollouts=20, beta=3.0, lmbda=0.1, lr_q=0.2, lr_sigma=0.5,
                 sigma0=5.0, sigma_base=5.0, max_steps=2)
    tr = DRATrainer(cfg, "bandit", env=env, env_params=env.default_params)
    state, m = jax.jit(lambda s: tr.run(s, cfg.num_trials))(tr.init(jax.random.PRNGKey(0)))
    sig = np.asarray(state.agent.sigma)
    q = np.asarray(state.agent.q)
    assert sig[0].mean() < 0.5 * sig[1].mean()
    np.testing.assert_allclose(sig[1], 5.0, rtol=1e-6)  # q equal: zero advantage, zero KL pull
    # Context 0's mean sigma per trial (context 1 stays at 5), averaged over the second half.
    ctx0 = (4 * np.asarray(m["sigma_mean"]) - 2 * 5.0) / 2
    sigma_avg = ctx0[cfg.num_trials // 2:].mean()

    # Reference: with critic q, the 'A' estimator ascends E_zeta[sum_a pi_a q_a] (context
    # weight 1/2) - lambda KL; optimum over (s0, s1) of context 0 by scipy.
    d = q[0, 0] - q[0, 1]

    def neg_obj(log_s):
        s = np.exp(log_s)
        sd = np.hypot(*s)
        f = lambda z: special.expit(cfg.beta * (d + sd * z)) * stats.norm.pdf(z)
        p0 = integrate.quad(f, -12, 12, limit=200)[0]
        val = 0.5 * (p0 * q[0, 0] + (1 - p0) * q[0, 1])
        kl = sum(np.log(5.0 / x) + x**2 / 50.0 - 0.5 for x in s)
        return -(val - cfg.lmbda * kl)

    s_star = np.exp(optimize.minimize(neg_obj, np.log([1.0, 1.0]), method="Nelder-Mead").x)
    np.testing.assert_allclose(s_star[0], s_star[1], rtol=1e-3)  # symmetric optimum
    np.testing.assert_allclose(sigma_avg, s_star[0], rtol=0.15)


# --------------------------------------------------------------------------------------
# Trainer contract
# --------------------------------------------------------------------------------------
SMALL = dict(num_trials=24, num_rollouts=3, max_steps=150, snapshot_trial=11)


@functools.lru_cache(maxsize=None)
def _maze():
    """One maze trainer and one compiled program (12 trials, 2 agents) shared by the tests:
    hyperparameters live in the state, so sweeps reuse it."""
    tr = make_trainer(Config(**SMALL), "DRA-maze")
    return tr, jax.jit(jax.vmap(lambda s: tr.run(s, 12)))


def test_maze_trainer_runs_init_run_finalize_end_to_end(tmp_path):
    tr, run12 = _maze()
    assert tr.num_updates == 24 and tr.steps_per_update == 1
    states = jax.vmap(tr.init)(jax.random.split(jax.random.PRNGKey(0), 2))
    s1, m1 = run12(states)
    for k in ("return", "cost", "objective", "objective_dra", "access_cost", "entropy"):
        assert m1[k].shape == (2, 12) and np.all(np.isfinite(np.asarray(m1[k])))
    # All randomness lives in the state: a state copied to host and back resumes exactly.
    s1_host = jax.tree.map(np.asarray, s1)
    s2, m2 = run12(s1)
    s2b, m2b = run12(jax.tree.map(jnp.asarray, s1_host))
    np.testing.assert_array_equal(np.asarray(m2["return"]), np.asarray(m2b["return"]))
    np.testing.assert_array_equal(np.asarray(s2.agent.sigma), np.asarray(s2b.agent.sigma))
    assert np.all(np.asarray(s2.trial) == 24)
    # The "before" picture is the agent at the end of trial snapshot_trial (the 12th).
    np.testing.assert_array_equal(np.asarray(s2.snapshot.sigma), np.asarray(s1.agent.sigma))
    assert not np.array_equal(np.asarray(s2.snapshot.sigma), np.asarray(s2.agent.sigma))
    tr.finalize(s2, tmp_path)
    assert (tmp_path / "dra_allocation.png").stat().st_size > 10_000
    with np.load(tmp_path / "dra_allocation.npz") as z:
        assert z["sigma_after"].shape == (2, 54, 4)


def test_lambda_sweep_is_one_vmapped_call_and_lambda_orders_the_cost():
    """lambda = 0 and 100 side by side in the same compiled call: the high price drives every
    memory to the free sigma_base (KL ~ 0), the free one keeps its initial KL."""
    tr, run12 = _maze()
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    states = jax.vmap(lambda k, l: tr.init_with(k, lmbda=l))(keys, jnp.array([0.0, 100.0]))
    states, _ = run12(states)
    kl = np.asarray(jax.vmap(lambda s: agent_lib.storage_kl(s.agent, s.hyper))(states))
    kl0 = 54 * 4 * (np.log(5 / 3) + 9 / 50 - 0.5)  # sigma0 = 3 everywhere
    assert kl[1] < 0.05 * kl0 < kl[0]
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        tr.init_with(keys[0], lambda_=1.0)


def test_equal_allocation_keeps_one_shared_sigma_in_the_same_program():
    tr, run12 = _maze()
    keys = jax.random.split(jax.random.PRNGKey(2), 2)
    states = jax.vmap(lambda k, e: tr.init_with(k, allocation=e))(keys, jnp.array([True, False]))
    s, _ = run12(states)
    equal, flexible = np.asarray(s.agent.sigma)
    assert np.ptp(equal) == 0.0 and equal[0, 0] != 3.0
    assert np.ptp(flexible) > 0.0


def test_config_rejects_bad_input():
    with pytest.raises(ValueError, match="objective"):
        Config(objective="elbo")
    with pytest.raises(ValueError, match="baseline"):
        Config(baseline="V")
    with pytest.raises(ValueError, match="allocation"):
        Config(allocation="mixed")
    with pytest.raises(ValueError, match="objective"):
        make_trainer(Config(), "DRA-maze").init_with(jax.random.PRNGKey(0), objective="eq9")
    with pytest.raises(ValueError, match="sigma0"):
        Config(sigma0=0.0)
    with pytest.raises(ValueError, match="tabular"):
        DRATrainer(Config(), "CartPole-v1")
    assert dataclasses.replace(default_config("DRA-mountaincar")).sigma_max == 10.0


def test_huys_and_mountaincar_train_a_few_trials():
    """MountainCar (default preset) and Huys at the paper preset (the original's
    train_fig3.py): the last move's memories stay at the known rewards with sigma = 1 and
    pay no storage cost (lambda = 1, sigma_base = 100 on the 24 learned memories)."""
    from envs_jax.dra_tasks import HUYS_REWARD

    # Huys from sigma0 = 50 (the preset's 100 is the upper clip), so that sigma moves and costs
    configs = (("DRA-huys", paper_config("DRA-huys", sigma0=50.0)),
               ("DRA-mountaincar", default_config("DRA-mountaincar")))
    for env_id, cfg in configs:
        cfg = dataclasses.replace(cfg, num_trials=3, num_rollouts=2, max_steps=60)
        tr = make_trainer(cfg, env_id)
        s, m = jax.jit(lambda s: tr.run(s, 3))(tr.init(jax.random.PRNGKey(0)))
        assert np.all(np.isfinite(np.asarray(m["objective"])))
        assert s.agent.q.shape == (tr.task.num_states, tr.task.num_actions)
        if env_id == "DRA-huys":
            q, sig = np.asarray(s.agent.q), np.asarray(s.agent.sigma)
            np.testing.assert_array_equal(q[12:], HUYS_REWARD)
            np.testing.assert_array_equal(sig[12:], 1.0)
            assert np.any(sig[:12] != 50.0)  # the others learn
            kl = np.sum(np.log(100.0 / sig[:12]) + sig[:12] ** 2 / (2 * 100.0**2) - 0.5)
            np.testing.assert_allclose(float(agent_lib.storage_kl(s.agent, s.hyper, tr.task)), kl, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------
# Multi-step: the 'R' estimator on a two-move Huys task vs finite differences of the exact
# objective (enumeration over the 2 x 2 action paths, 1-D quadrature per state).
# --------------------------------------------------------------------------------------
TWO_MOVE_T = 5.0  # Eq. 10's fixed T in the two-move tests (differs from the episodes' length 2)


def _exact_two_move(objective, q, sig, beta, lmbda, sigma_base):
    """Exact value of objective 1/2/3 on ``make_huys(depth=2)`` (uniform start, 2 moves);
    the Gaussian expectations by 200-point Gauss-Hermite quadrature (float64)."""
    from envs_jax.dra_tasks import HUYS_REWARD, HUYS_SUCC

    x, w = np.polynomial.hermite.hermgauss(200)  # Gauss-Hermite: E g(N(0,1)) = sum w g(sqrt2 x)/sqrt(pi)

    def marg(row):  # (pbar_0, E_zeta H) for one state's 2 memories
        d, sd = q[row, 0] - q[row, 1], np.hypot(*sig[row])
        f = lambda g: np.sum(w * g(beta * (d + sd * np.sqrt(2) * x))) / np.sqrt(np.pi)
        p0 = f(special.expit)
        h = f(lambda x: -special.expit(x) * special.log_expit(x) - special.expit(-x) * special.log_expit(-x))
        return np.array([p0, 1 - p0]), h

    kl_row = np.sum(np.log(sigma_base / sig) + sig**2 / (2 * sigma_base**2) - 0.5, axis=1)
    total = 0.0
    for s0 in range(6):
        p1, h1 = marg(s0)  # row of (2 moves left, s0) = s0
        for a1 in range(2):
            s1 = HUYS_SUCC[s0, a1]
            p2, h2 = marg(6 + s1)
            r = HUYS_REWARD[s0, a1] + p2 @ HUYS_REWARD[s1]
            if objective == "dra":
                v = r
            elif objective == "elbo_access":
                v = r - lmbda * (kl_row[s0] + kl_row[6 + s1]) + lmbda * (h1 + h2)
            elif objective == "elbo_storage":  # fixed T = TWO_MOVE_T (not the length 2)
                v = r + lmbda / TWO_MOVE_T * (h1 + h2)
            else:  # each trajectory's own length: 2
                v = (r + lmbda * (h1 + h2)) / 2
            total += p1[a1] * v / 6
    if objective != "elbo_access":
        total -= lmbda * kl_row.sum()
    return total


def test_return_estimator_is_unbiased_on_a_two_move_task_for_all_objectives():
    from envs_jax.dra_tasks import make_huys

    env, params = make_huys(depth=2)
    task = agent_lib.tabular_task(env, params)
    spec = agent_lib.Spec(max_steps=3, horizon_T=TWO_MOVE_T)
    beta, lmbda, sb = 0.05, 2.0, 30.0
    rng = np.random.default_rng(0)
    q = rng.normal(0, 30, (12, 2)).astype(np.float32)
    sig = rng.uniform(5, 40, (12, 2)).astype(np.float32)
    ag = agent_lib.AgentState(q=jnp.asarray(q), sigma=jnp.asarray(sig))

    @jax.jit
    def grads(objective):
        hyper = agent_lib.make_hyper(beta=beta, lmbda=lmbda, sigma_base=sb, objective=objective, baseline="R")
        one = lambda k: agent_lib.sigma_gradient(k, 16384, ag, hyper, beta, task, params, spec)[0]
        return jax.vmap(one)(jax.random.split(jax.random.PRNGKey(5), 16))

    gs = {}
    for objective in objectives.OBJECTIVES:
        g = gs[objective] = np.asarray(grads(objectives.objective_id(objective))).reshape(16, -1)
        mean, se = g.mean(0), g.std(0, ddof=1) / 4
        idx = np.argsort(-np.abs(mean) / se)[:3]  # the three best-determined entries
        for i in idx:
            e = np.zeros(24)
            e[i] = 1e-3
            fd = (_exact_two_move(objective, q, sig.astype(float) + e.reshape(12, 2), beta, lmbda, sb)
                  - _exact_two_move(objective, q, sig.astype(float) - e.reshape(12, 2), beta, lmbda, sb)) / 2e-3
            assert abs(mean[i] - fd) < 4.5 * se[i] + 1e-3 * abs(fd), (objective, i, mean[i], fd, se[i])
    # Note Eq. 10 with a fixed T: its estimate minus DRA's on the same trajectories is
    # (lambda/T) d E[sum_t H_t], the entropy term enumerated on its own (test_dra_eq10's
    # reference, independent of _exact_two_move).
    from test_dra_eq10 import _exact_entropy

    d = gs["elbo_storage"] - gs["dra"]
    mean, se = d.mean(0), d.std(0, ddof=1) / 4
    assert (beta, lmbda, sb) == (0.05, 2.0, 30.0)  # test_dra_eq10's constants (BETA, LMBDA, SB)
    for i in np.argsort(-np.abs(mean) / se)[:3]:
        e = np.zeros((12, 2))
        e.flat[i] = 1e-3
        fd = lmbda / TWO_MOVE_T * (_exact_entropy(q.astype(float), sig.astype(float) + e)
                                   - _exact_entropy(q.astype(float), sig.astype(float) - e)) / 2e-3
        assert abs(mean[i] - fd) < 4.5 * se[i] + 1e-3 * abs(fd), (i, mean[i], fd, se[i])
        assert abs(fd) > 5 * se[i]
