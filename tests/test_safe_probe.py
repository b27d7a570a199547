"""The Safe-bandit probe: its optimum by enumeration, CPO reaching it in a short run, and
``--algo safe`` through train.py."""

import json

import jax
import numpy as np
import pytest

import envs_jax
import train as train_cli
from envs_jax.safe_probes import bandit_optimum
from safe_jax.algo import SafeConfig, SafePPOConfig, build, presets, train_seeds


def _arm_outcome(env_id, action):
    env, params = envs_jax.make(env_id)
    key = jax.random.PRNGKey(0)
    _, state = env.reset(key, params)
    _, _, reward, done, _, info = env.step(key, state, action, params)
    assert bool(done)
    return float(reward), float(info["cost"])


@pytest.mark.parametrize("d", [0.0, 0.25, 0.5, 1.0])
def test_bandit_optimum_matches_enumeration_of_mixed_policies(d):
    (r_a, c_a), (r_b, c_b) = _arm_outcome("Safe-bandit", 0), _arm_outcome("Safe-bandit", 1)
    assert _arm_outcome("Safe-bandit-box", np.array([0.7], np.float32)) == (r_a, c_a)
    assert _arm_outcome("Safe-bandit-box", np.array([-0.7], np.float32)) == (r_b, c_b)
    p = np.linspace(0, 1, 100_001)
    ret, cost = p * r_a + (1 - p) * r_b, p * c_a + (1 - p) * c_b
    feasible = cost <= d + 1e-12
    best = np.argmax(np.where(feasible, ret, -np.inf))
    assert bandit_optimum(d) == pytest.approx((ret[best], cost[best]), abs=1e-4)


def test_cpo_reaches_the_bandit_optimum_in_a_short_run():
    """d = 0.25: optimum return 0.625 at cost 0.25; 30 updates of 512 steps (benchmarks/
    RESULTS_safe.md: 5 seeds within 0.004 after 60 updates)."""
    ppo = SafePPOConfig(total_timesteps=512 * 30, ent_coef=0.0)
    train = build("Safe-bandit", {"ppo": ppo, "safe": SafeConfig(method="cpo", cost_limit=0.25)})
    _, m = jax.jit(train)(jax.random.PRNGKey(0))
    ret, cost = np.asarray(m["return"])[-5:].mean(), np.asarray(m["cost_return"])[-5:].mean()
    np.testing.assert_allclose(ret, 0.625, atol=0.01)
    np.testing.assert_allclose(cost, 0.25, atol=0.02)


def test_safe_algo_through_train_cli_with_the_multipliers_closed_form(tmp_path):
    """``--algo safe --method ppo_lag`` on Probe-cost (costs ``[obs > 0, 1]``), d = 0.7: cost 1
    averages 0.5 < d, so lambda_1 falls and stops at 0 (after ~29 updates); cost 2 is 1 > d in
    every episode, so Adam (constant gradient) raises lambda_2 by exactly lr = 0.035 per update."""
    out = tmp_path / "run"
    args = ["--algo", "safe", "--env", "Probe-cost", "--method", "ppo_lag", "--cost-limit", "0.7", "--num-envs", "8",
            "--num-steps", "4", "--num-minibatches", "1", "--update-epochs", "1", "--total-timesteps", str(32 * 35),
            "--log-every", "35", "--out", str(out)]
    assert train_cli.main(args) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == list(range(1, 36))
    lam1 = np.array([r["lagrange_multiplier/0"][0] for r in rows])
    lam2 = np.array([r["lagrange_multiplier/1"][0] for r in rows])
    np.testing.assert_allclose(lam2, 1.0 + 0.035 * np.arange(1, 36), rtol=1e-4)
    assert np.all(np.diff(lam1) <= 1e-6) and lam1[-1] == 0.0


def test_presets_hook_gives_the_originals_settings():
    cfg = presets("paper", "PASPO-synth-7", {"safe": {"method": "cpo"}, "ppo": {"num_envs": 32}})
    assert cfg["safe"].method == "cpo" and cfg["safe"].line_search_steps == 20 and cfg["ppo"].ent_coef == 0.0
    assert cfg["ppo"].num_envs == 32 and cfg["ppo"].clip_eps == 0.3 and cfg["ppo"].gamma == 1.0
    p3o = presets("paper", "Safe-bandit", {"safe": {"method": "p3o"}})["safe"]
    assert (p3o.kappa, p3o.cost_limit, p3o.lagrange_lr) == (20.0, 0.0, 0.035)
