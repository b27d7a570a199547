"""The PPO engine learns the values of probe environments, solves CartPole, and runs
vmapped over seeds and split over devices with the same result."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs_jax
from ppo_jax.config import PPOConfig
from ppo_jax.engine import make_train
from ppo_jax.policy import MLPActorCritic

ROOT = Path(__file__).resolve().parents[1]
PROBE_CFG = PPOConfig(total_timesteps=20_000, num_envs=8, num_steps=16, lr=3e-3, anneal_lr=False, gamma=0.9)


def _train_probe(env_id, cfg=PROBE_CFG, seed=0):
    env, params = envs_jax.make(env_id)
    policy = MLPActorCritic(env.action_space(params))
    state, metrics = jax.jit(make_train(cfg, env, params, policy))(jax.random.PRNGKey(seed))
    value = lambda o: float(policy.value(state.params, jnp.array([o], jnp.float32)))
    return state, metrics, policy, value


def test_probe_constant_reward_value_is_one():
    _, _, _, value = _train_probe("Probe-constant")
    assert abs(value(0.0) - 1.0) < 0.1


def test_probe_two_step_values_are_discounted():
    _, _, _, value = _train_probe("Probe-two-step")
    assert abs(value(0.0) - 0.9) < 0.1  # V(first step) = gamma * 1
    assert abs(value(1.0) - 1.0) < 0.1


def test_probe_observation_dependent_value():
    _, _, _, value = _train_probe("Probe-obs-reward")
    assert abs(value(1.0) - 1.0) < 0.1
    assert abs(value(-1.0) + 1.0) < 0.1


def test_probe_action_dependent_reward_learns_the_optimal_policy():
    state, metrics, policy, value = _train_probe("Probe-action-reward")
    assert abs(value(1.0) - 1.0) < 0.1 and abs(value(-1.0) - 1.0) < 0.1
    assert int(policy.greedy(state.params, jnp.array([1.0]))) == 1
    assert int(policy.greedy(state.params, jnp.array([-1.0]))) == 0
    assert float(metrics["return"][-1]) > 0.9


def test_cartpole_reaches_475_with_the_purejaxrl_config():
    env, params = envs_jax.make("CartPole-v1")
    train = make_train(PPOConfig(), env, params, MLPActorCritic(env.action_space(params)))
    _, metrics = jax.jit(train)(jax.random.PRNGKey(0))
    final = float(np.mean(metrics["return"][-10:]))
    assert final >= 475, f"mean return over the last 10 updates {final:.1f} < 475"


def test_vmapped_seeds_equal_separate_runs():
    env, params = envs_jax.make("CartPole-v1")
    cfg = PPOConfig(total_timesteps=4 * 32 * 6, num_envs=4, num_steps=32)
    train = make_train(cfg, env, params, MLPActorCritic(env.action_space(params)))
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    states, metrics = jax.jit(jax.vmap(train))(keys)
    assert metrics["loss"].shape == (3, cfg.num_updates)
    for i, key in enumerate(keys):
        s_i, m_i = jax.jit(train)(key)
        np.testing.assert_allclose(metrics["loss"][i], m_i["loss"], rtol=1e-5, atol=1e-6)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6), states.params, s_i.params
        )
    assert not np.allclose(metrics["loss"][0], metrics["loss"][1])  # seeds differ


def test_chunked_run_equals_one_run():
    env, params = envs_jax.make("CartPole-v1")
    cfg = PPOConfig(total_timesteps=4 * 32 * 4, num_envs=4, num_steps=32)
    train = make_train(cfg, env, params, MLPActorCritic(env.action_space(params)))
    s0 = train.init(jax.random.PRNGKey(3))
    full, _ = jax.jit(lambda s: train.run(s, 4))(s0)
    two = jax.jit(lambda s: train.run(s, 2))  # two programs in all, not three
    rest, _ = two(two(s0)[0])
    jax.tree.map(np.testing.assert_array_equal, full.params, rest.params)


def test_a2c_configuration_learns_probe():
    cfg = PPOConfig.a2c(total_timesteps=20_000, num_envs=16, num_steps=5, lr=3e-3, gamma=0.9)
    assert cfg.update_epochs == 1 and cfg.num_minibatches == 1 and cfg.clip_eps is None
    _, _, _, value = _train_probe("Probe-obs-reward", cfg)
    assert abs(value(1.0) - 1.0) < 0.1 and abs(value(-1.0) + 1.0) < 0.1


def test_observation_normalisation_and_reward_scaling_run_and_learn():
    cfg = PROBE_CFG.replace(normalize_obs=True, scale_rewards=True)
    _, metrics, _, _ = _train_probe("Probe-action-reward", cfg)
    assert float(metrics["return"][-1]) > 0.9


@pytest.mark.slow  # CI: test_engine_capabilities' 1 device = 2 devices = 2 processes test
def test_two_devices_follow_the_single_device_curve():
    script = textwrap.dedent(
        """
        import jax, numpy as np, envs_jax
        from ppo_jax.config import PPOConfig
        from ppo_jax.engine import make_train, device_mesh
        from ppo_jax.policy import MLPActorCritic
        assert jax.local_device_count() == 2, jax.devices()
        env, params = envs_jax.make("CartPole-v1")
        cfg = PPOConfig(total_timesteps=8 * 32 * 4, num_envs=8, num_steps=32)
        policy = MLPActorCritic(env.action_space(params))
        key = jax.random.PRNGKey(0)
        one = make_train(cfg, env, params, policy)
        two = make_train(cfg, env, params, policy, mesh=device_mesh())
        s1, m1 = jax.jit(one)(key)
        s2, m2 = jax.jit(two)(key)
        assert len(s2.obs.sharding.device_set) == 2, s2.obs.sharding
        np.testing.assert_allclose(m1["return"], m2["return"], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(m1["loss"], m2["loss"], rtol=1e-3, atol=1e-4)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4), s1.params, s2.params)
        # several seeds: one per device, as train.py places them
        from jax.sharding import NamedSharding, PartitionSpec
        keys = jax.device_put(jax.random.split(key, 2), NamedSharding(device_mesh(), PartitionSpec("envs")))
        sv, mv = jax.jit(jax.vmap(one))(keys)
        assert len(sv.obs.sharding.device_set) == 2, sv.obs.sharding
        s_single, m_single = jax.jit(one)(keys[1])
        np.testing.assert_allclose(mv["return"][1], m_single["return"], rtol=1e-4, atol=1e-4)
        print("OK")
        """
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="not divisible"):
        PPOConfig(num_envs=4, num_steps=128, num_minibatches=3)
    with pytest.raises(ValueError, match="num_envs"):
        PPOConfig(num_envs=0)
    with pytest.raises(ValueError, match="lr"):
        PPOConfig(lr=float("nan"))
    with pytest.raises(ValueError, match="optimizer"):
        PPOConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="less than one update"):
        PPOConfig(total_timesteps=10)
