"""Note Eq. 10 for a fixed T (= original DRA objective + (lambda/T) action entropy), the
original's presets (``paper``), shared rollout starts and the original's evaluation
protocol (``run_evaluated``)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from dra_jax import agent as agent_lib
from dra_jax import objectives
from dra_jax.trainer import PRESETS, Config, make_trainer, paper_config, preset_config
from envs_jax.dra_tasks import HUYS_REWARD, HUYS_SUCC, make_huys

# --------------------------------------------------------------------------------------
# Independent reference on the two-move Huys task (depth 2): enumeration over the 2 x 2
# action paths, Gauss-Hermite quadrature over each state's memory noise (float64).
# --------------------------------------------------------------------------------------
BETA, LMBDA, SB, T_FIXED = 0.05, 2.0, 30.0, 7.0


_GH = np.polynomial.hermite.hermgauss(200)


def _choice(qrow, srow):
    """(P(action 0), E_zeta H(pi)) for one state: pi_0 = sigmoid(beta (d + sd z))."""
    x, w = _GH
    z = np.sqrt(2) * x
    u = BETA * (qrow[0] - qrow[1] + np.hypot(*srow) * z)
    p0 = np.sum(w * special.expit(u)) / np.sqrt(np.pi)
    h = np.sum(w * (-special.expit(u) * special.log_expit(u) - special.expit(-u) * special.log_expit(-u))) / np.sqrt(np.pi)
    return np.array([p0, 1.0 - p0]), h


def _exact_reward_and_entropy(q, sig):
    """E[sum_t r_t] and E[sum_t H_t] from a uniform start (rows 0-5: 2 moves left, 6-11: 1)."""
    reward = entropy = 0.0
    for s0 in range(6):
        p1, h1 = _choice(q[s0], sig[s0])
        for a1 in range(2):
            s1 = HUYS_SUCC[s0, a1]
            p2, h2 = _choice(q[6 + s1], sig[6 + s1])
            reward += p1[a1] * (HUYS_REWARD[s0, a1] + p2 @ HUYS_REWARD[s1]) / 6
            entropy += p1[a1] * (h1 + h2) / 6
    return reward, entropy


def _exact_dra(q, sig):
    r, _ = _exact_reward_and_entropy(q, sig)
    kl = np.sum(np.log(SB / sig) + sig**2 / (2 * SB**2) - 0.5)
    return r - LMBDA * kl


def _exact_entropy(q, sig):
    return _exact_reward_and_entropy(q, sig)[1]


def _two_move_setup():
    env, params = make_huys(depth=2)
    task = agent_lib.tabular_task(env, params)
    spec = agent_lib.Spec(max_steps=3, horizon_T=T_FIXED)
    rng = np.random.default_rng(1)
    q = rng.normal(0, 30, (12, 2)).astype(np.float32)
    sig = rng.uniform(5, 40, (12, 2)).astype(np.float32)
    return env, params, task, spec, q, sig


def test_eq10_fixed_T_value_equals_dra_plus_entropy_term():
    """F_10 = F_DRA + (lambda/T) E[sum_t H_t] (note Eq. 10, fixed T): each trajectory's value
    and their mean against the enumerated DRA objective plus the enumerated entropy term."""
    env, params, task, spec, q, sig = _two_move_setup()
    ag = agent_lib.AgentState(q=jnp.asarray(q), sigma=jnp.asarray(sig))
    hyper = lambda obj: agent_lib.make_hyper(beta=BETA, lmbda=LMBDA, sigma_base=SB, objective=obj, baseline="R")

    # value: Monte-Carlo mean of each trajectory's Eq. 10 value vs the exact DRA + entropy term
    stats = jax.jit(lambda k: agent_lib.rollout_stats(k, 32768, ag, hyper("dra"), BETA, task, params, spec))(
        jax.random.PRNGKey(0))
    kl = agent_lib.storage_kl(ag, hyper("dra"))
    v10 = np.asarray(objectives.trajectory_value("elbo_storage", stats, LMBDA, kl, T_FIXED), np.float64)
    vdra = np.asarray(objectives.trajectory_value("dra", stats, LMBDA, kl, T_FIXED), np.float64)
    np.testing.assert_allclose(v10 - vdra, LMBDA / T_FIXED * np.asarray(stats.ent), rtol=1e-4, atol=1e-3)
    exact = _exact_dra(q.astype(float), sig.astype(float)) + LMBDA / T_FIXED * _exact_entropy(q.astype(float), sig.astype(float))
    se = v10.std() / np.sqrt(v10.size)
    assert abs(v10.mean() - exact) < 4.5 * se + 1e-3, (v10.mean(), exact, se)
    # and the per-trajectory-T variant is a different objective here (T = 7 vs length 2)
    vrate = np.asarray(objectives.trajectory_value("elbo_storage_rate", stats, LMBDA, kl, T_FIXED))
    assert abs(vrate.mean() - exact) > 10 * se

    # The gradient (the 'R' estimate against finite differences of the enumerated
    # F_DRA + (lambda/T) E[sum H], and Eq. 10's minus DRA's against (lambda/T) d E[sum H]) is
    # checked in tests/test_dra.py::test_return_estimator_is_unbiased_on_a_two_move_task_for_all_objectives,
    # which shares that compiled program.


def test_fixed_T_defaults_to_the_tasks_horizon_and_bad_T_is_rejected():
    assert make_trainer(Config(), "DRA-maze").spec.horizon_T == 19.0
    assert make_trainer(paper_config("DRA-huys"), "DRA-huys").spec.horizon_T == 3.0
    assert make_trainer(paper_config("DRA-mountaincar"), "DRA-mountaincar").spec.horizon_T == 200.0
    assert make_trainer(Config(horizon_T=7.5), "DRA-maze").spec.horizon_T == 7.5
    with pytest.raises(ValueError, match="horizon_T"):
        Config(horizon_T=-1.0)
    stats = objectives.RolloutStats(jnp.zeros(2), jnp.zeros(2), jnp.zeros(2), jnp.ones(2, jnp.int32), jnp.zeros(3))
    with pytest.raises(ValueError, match="horizon_T"):
        objectives.trajectory_value("elbo_storage", stats, 0.1, 0.0, 0.0)
    with pytest.raises(ValueError, match="preset"):
        preset_config("original", "DRA-maze")


# --------------------------------------------------------------------------------------
# The original's settings (read from its scripts) as the 'paper' preset
# --------------------------------------------------------------------------------------
def test_paper_presets_are_the_original_scripts_settings():
    assert set(PRESETS) == {"default", "paper"}
    maze = preset_config("paper", "DRA-maze")  # convergence_fig1c.py
    assert (maze.num_trials, maze.lr_q, maze.lr_sigma, maze.beta, maze.lmbda, maze.gamma, maze.sigma_base,
            maze.num_rollouts, maze.baseline) == (5000, 0.1, 0.1, 10.0, 0.1, 0.9, 5.0, 10, "A")
    huys = paper_config("DRA-huys")  # train_fig3.py
    assert (huys.num_trials, huys.beta, huys.lmbda, huys.lr_q, huys.lr_sigma, huys.gamma, huys.sigma0,
            huys.sigma_base, huys.sigma_min, huys.sigma_max, huys.baseline, huys.num_rollouts) == (
        60_000, 10.0, 1.0, 0.1, 0.1, 1.0, 100.0, 100.0, 1.0, 100.0, "R", 10)
    assert huys.known_memories and huys.rollout_start == "learning"
    mc = paper_config("DRA-mountaincar")  # dynamicResourceAllocator.py
    assert (mc.num_trials, mc.lr_q, mc.lr_sigma, mc.gamma, mc.sigma0, mc.sigma_base, mc.sigma_max,
            mc.beta_schedule) == (5000, 0.2, 0.1, 1.0, 1.0, 5.0, 10.0, "slow")
    with pytest.raises(ValueError, match="rollout_start"):
        Config(rollout_start="root")


# --------------------------------------------------------------------------------------
# The original's evaluation protocol does not perturb training
# --------------------------------------------------------------------------------------
def test_run_evaluated_evaluates_every_block_without_perturbing_training():
    tr = make_trainer(dataclasses.replace(paper_config("DRA-huys"), num_trials=20), "DRA-huys")
    st = tr.init(jax.random.PRNGKey(0))
    run_ev = jax.jit(lambda s, k: tr.run_evaluated(s, k, 20, 5, 7))
    s1, m1, ev1 = run_ev(st, jax.random.PRNGKey(8))
    s2, m2, ev2 = run_ev(st, jax.random.PRNGKey(9))
    # other evaluation episodes, the same training (evaluation draws from its own key)
    assert not np.array_equal(np.asarray(ev1["reward"]), np.asarray(ev2["reward"]))
    np.testing.assert_array_equal(np.asarray(s1.agent.sigma), np.asarray(s2.agent.sigma))
    np.testing.assert_array_equal(np.asarray(m1["return"]), np.asarray(m2["return"]))
    assert ev2["reward"].shape == (4,) and m2["trial"].shape == (20,)
    np.testing.assert_array_equal(np.asarray(m2["trial"]), np.arange(20))
    # evaluated after trials 1, 6, 11, 16 (the original's ii % every == 0): the storage cost
    # then is the one trial 2, 7, ... (indices 1, 6, ...) starts from
    np.testing.assert_allclose(np.asarray(ev2["cost"]), np.asarray(m2["cost"])[1::5], rtol=1e-5)
    with pytest.raises(ValueError, match="multiple"):
        tr.run_evaluated(st, jax.random.PRNGKey(9), 20, 6, 7)
    # the paper preset's shared start: all rollouts begin in the state the start key draws
    # (the known-memory rules are checked in test_dra.py::test_huys_and_mountaincar_train_a_few_trials)
    assert tr.spec.same_start
    stats = agent_lib.rollout_stats(jax.random.PRNGKey(2), 16, s2.agent, s2.hyper, 10.0, tr.task,
                                    tr.task.env_params, tr.spec, start_key=jax.random.PRNGKey(3))
    _, s0 = tr.task.env.reset_env(jax.random.PRNGKey(3), tr.task.env_params)
    expected = np.zeros(6)
    expected[int(s0.node)] = 16.0
    np.testing.assert_array_equal(np.asarray(stats.visits[:6]), expected)
