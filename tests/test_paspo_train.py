"""PASPO on the PPO engine: configs and ``build`` for train.py, a short run on PASPO-synth-7-v0
that improves the return with zero violations (a longer one is slow-marked), baselines end
to end (slow)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from paspo_jax.algo import METHODS, PASPOConfig, PASPOPPOConfig, build, default_ppo_config
from ppo_jax.config import PPOConfig


def test_paspo_config_fields_do_not_collide_with_ppo_config():
    ppo = {f.name for f in dataclasses.fields(PPOConfig)}
    paspo = {f.name for f in dataclasses.fields(PASPOConfig)}
    assert not ppo & paspo


def test_default_ppo_config_is_the_papers():
    cfg = default_ppo_config()
    assert isinstance(cfg, PPOConfig) and isinstance(cfg, PASPOPPOConfig)
    assert (cfg.lr, cfg.optimizer, cfg.gamma, cfg.gae_lambda, cfg.clip_eps) == (1e-3, "adam", 1.0, 0.95, 0.3)
    assert (cfg.update_epochs, cfg.batch_size, cfg.minibatch_size) == (10, 512, 64)
    assert (cfg.ent_coef, cfg.max_grad_norm, cfg.vf_coef, cfg.total_timesteps) == (0.01, 2.0, 0.5, 150_000)
    assert default_ppo_config(num_envs=8, num_steps=64).batch_size == 512


def test_bad_configs_and_envs_raise_value_error():
    with pytest.raises(ValueError, match="method"):
        PASPOConfig(method="cpo")
    with pytest.raises(ValueError, match="u_eps"):
        PASPOConfig(u_eps=0.7)
    with pytest.raises(ValueError, match="allocation env"):
        build("CartPole-v1", {"ppo": default_ppo_config(), "paspo": PASPOConfig()})
    with pytest.raises(ValueError, match="configs"):
        build("PASPO-synth-7", {"ppo": default_ppo_config()})
    with pytest.raises(ValueError, match="state-dependent"):
        build("PASPO-capacity-7", {"ppo": default_ppo_config(), "paspo": PASPOConfig(bounds="fast")})


def _train(env_id, method="paspo", steps=5120, seed=0, **paspo):
    ppo = default_ppo_config(total_timesteps=steps)
    trainer = build(env_id, {"ppo": ppo, "paspo": PASPOConfig(method=method, **paspo)})
    _, metrics = jax.jit(trainer)(jax.random.PRNGKey(seed))
    return {k: np.asarray(v) for k, v in metrics.items()}


def test_short_paspo_run_on_synth7_improves_return_without_violations():
    """80 updates of 512 steps (paper settings, de-biased init from 5,000 points). On this
    env a uniform policy scores about -6.17 per episode and the best allocation per state
    (max over 10^5 uniform points and the vertices) about -5.43; the mean return of the last
    8 updates must beat the first 8 by 0.25 (a third of that range); no action violates."""
    m = _train("PASPO-synth-7-v0", steps=40_960, debias_samples=5000)
    assert m["return"][-8:].mean() > m["return"][:8].mean() + 0.25, m["return"]
    assert m["violation_rate"].max() == 0.0
    assert m["nonfinite"].sum() == 0


@pytest.mark.slow
def test_paspo_on_synth7_full_budget():
    """The paper's budget (150k steps, one seed): the last 10 updates close more than half of
    the gap between the uniform policy (-6.17) and the best allocations (-5.43); no violations."""
    m = _train("PASPO-synth-7-v0", steps=150_000)
    assert m["return"][-10:].mean() > -5.80, m["return"]
    assert m["violation_rate"].max() == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("method", [x for x in METHODS if x != "paspo"])
def test_baselines_train_end_to_end(method):
    """Each baseline runs on synth-7 for 30k steps: finite losses; the projection never
    violates, the unconstrained Dirichlet does."""
    m = _train("PASPO-synth-7-v0", method=method, steps=30_720)
    assert m["nonfinite"].sum() == 0
    if method == "projection":
        assert m["violation_rate"].max() == 0.0
    if method == "dirichlet":
        assert m["violation_rate"].mean() > 0.5  # synth7 covers 4.8% of the simplex

