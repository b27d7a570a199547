"""The IAR policy on the PPO engine: alpha learns, PPO ratios start at 1, IAR improves
CartPole's return in a short PPO run, A2C (the original's mode) runs on ERA with valid
executed actions, every baseline builds and trains; configs for train.py."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import envs_jax
from iar_jax.algo import IARA2CConfig, IARConfig, build, make_policy
from ppo_jax.config import PPOConfig
from ppo_jax.policy import Batch

TINY = dict(flow_hidden=16, encoder_hidden=16, context_dim=8, flow_layers=1, posterior_layers=0, critic_hidden=(16,))


def _era_batch(n=32):
    env, env_params = envs_jax.make("ERA-v1")
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), n), env_params)
    batch = Batch(obs, jnp.zeros((n, 3), jnp.int32), *(jnp.zeros(n),) * 4, extras={})
    return env, env_params, obs, state, batch


def test_adaptive_alpha_learns_from_the_calibration_loss():
    """The original never hands its adaptive-alpha network to an optimizer; ours moves."""
    env, env_params, obs, _, batch = _era_batch(16)
    cfg = IARConfig(alpha_mode="adaptive", num_posterior_samples=2, alpha_target_samples=16, **TINY)
    pol = make_policy(cfg, env, env_params)
    params = jax.jit(pol.init)(jax.random.PRNGKey(1), obs[0])
    opt = optax.adam(1e-2)

    def step(carry, key):
        p, st = carry
        (loss, m), g = jax.value_and_grad(pol.extra_loss, has_aux=True)(p, key, batch)
        upd, st = opt.update(g, st)
        return (optax.apply_updates(p, upd), st), (m["iar/alpha"], m["iar/alpha_loss"])

    run = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), jax.random.split(jax.random.PRNGKey(2), 100)))
    (_, _), (alpha, alpha_loss) = run(params)
    alpha, alpha_loss = np.asarray(alpha), np.asarray(alpha_loss)
    assert abs(alpha[-10:].mean() - 0.5) > 0.05, alpha[::15]
    assert alpha_loss[-10:].mean() < alpha_loss[:10].mean(), alpha_loss[::15]
    # with the calibration objective the policy's log-prob estimate does not move alpha
    actions = jnp.array([[0, 1, 2], [3, 3, 3]], jnp.int32)
    pg_grad = jax.jit(
        jax.grad(lambda p: pol.log_probs(p, jax.random.PRNGKey(4), pol.context(p, obs[0]), actions, None)[0].sum())
    )(params)["alpha"]
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(pg_grad)) == 0.0


def test_ppo_ratio_starts_at_one_and_the_policy_objective_trains_alpha_by_the_pg_loss():
    """Common noise: evaluate at the behaviour parameters reproduces act's log-prob exactly
    (the PPO ratio starts at 1) and executed actions are valid. With
    alpha_objective="policy" the policy-gradient surrogate reaches alpha and the
    calibration loss is off (the calibration case is in the adaptive-alpha test)."""
    env, env_params, obs, state, batch = _era_batch(8)
    keys = jax.random.split(jax.random.PRNGKey(2), 8)
    for mode, objective in (("trainable", "policy"),):
        cfg = IARConfig(alpha_mode=mode, alpha_objective=objective, num_candidates=8, **TINY)
        pol = make_policy(cfg, env, env_params, PPOConfig())
        assert pol.behaviour_log_prob  # PPO mode computes it

        @jax.jit
        def run(key):
            params = pol.init(key, obs[0])
            acts = jax.vmap(pol.act, in_axes=(None, 0, 0, 0, None))(params, keys, obs, state, env_params)
            evaluate = lambda p: jax.vmap(pol.evaluate, in_axes=(None, 0, 0, 0, 0))(p, keys[::-1], obs, acts.action, acts.extras)
            pg_grad = jax.grad(lambda p: evaluate(p).log_prob.sum())(params)["alpha"]
            extra_grad = jax.grad(lambda p: pol.extra_loss(p, key, batch)[0])(params)["alpha"]
            return acts, evaluate(params), pg_grad, extra_grad

        acts, ev, pg_grad, extra_grad = run(jax.random.PRNGKey(1))
        np.testing.assert_allclose(np.asarray(ev.log_prob), np.asarray(acts.log_prob), rtol=1e-5, atol=1e-5)
        valid = jax.vmap(env.is_valid, in_axes=(0, 0, None))(state, acts.action, env_params)
        assert bool(jnp.all(valid | (acts.metrics["no_valid"] > 0)))
        assert (float(pg_grad["logit"]) != 0.0) == (objective == "policy")
        assert (float(extra_grad["logit"]) != 0.0) == (objective == "calibration")
    assert make_policy(IARConfig(**TINY), env, env_params, IARA2CConfig()).behaviour_log_prob is False


@pytest.mark.slow  # CI: IAR's training path in test_iar_a2c_on_era_runs_with_valid_executed_actions
def test_iar_ppo_on_cartpole_improves_return():
    ppo = PPOConfig(total_timesteps=8 * 64 * 24, num_envs=8, num_steps=64, lr=1e-3, ent_coef=0.0)
    cfg = IARConfig(num_posterior_samples=2, alpha_target_samples=4, flow_hidden=32, encoder_hidden=32, context_dim=16,
                    flow_layers=2, posterior_layers=0)
    trainer = build("CartPole-v1", {"ppo": ppo, "iar": cfg})
    init = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    state, metrics = jax.jit(lambda s: trainer.run(s, trainer.num_updates))(init)
    ret = np.asarray(metrics["return"])
    assert np.isfinite(np.asarray(metrics["loss"])).all() and float(metrics["nonfinite"].sum()) == 0
    assert ret[-4:].mean() > 2.0 * ret[1:4].mean(), ret
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.params["alpha"], init.params["alpha"])
    assert max(jax.tree.leaves(moved)) > 0  # alpha is trained inside the compiled update


def test_iar_a2c_on_era_runs_with_valid_executed_actions():
    ppo = IARA2CConfig(total_timesteps=64 * 30)
    trainer = build("ERA-v1", {"ppo": ppo, "iar": IARConfig(num_candidates=32, **TINY)})
    state, m = jax.jit(trainer)(jax.random.PRNGKey(0))
    assert float(m["nonfinite"].sum()) == 0
    env, env_params, pol = trainer.env, trainer.env_params, trainer.policy
    greedy = jax.jit(jax.vmap(pol.greedy, in_axes=(None, 0, 0, None)))(state.params, state.obs, state.env_state, env_params)
    assert bool(jax.vmap(env.is_valid, in_axes=(0, 0, None))(state.env_state, greedy, env_params).all())
    valid_rate, no_valid = np.asarray(m["policy/valid_rate"]), np.asarray(m["policy/no_valid"])
    assert 0.05 < valid_rate.mean() < 0.95
    # adaptive S (S = 32, S_max = 128 as the original): mean candidates used on the ladder's range
    used = np.asarray(m["policy/candidates_used"])
    assert np.all((used >= 32) & (used <= 128)), used
    # executed actions are valid except in the (counted) no-valid-candidate fallback
    assert np.all(np.asarray(m["violation_rate"]) <= no_valid + 1e-6)


@pytest.mark.parametrize(
    "policy", ["mask", pytest.param("factored", marks=pytest.mark.slow), pytest.param("ar", marks=pytest.mark.slow)]
)
def test_baselines_build_and_train_on_era(policy):
    """MASK by default; Factored and AR (their act/evaluate are tested in
    test_iar_rejection.py, their engine path is IAR's RejectionPolicy) in the slow set."""
    ppo = IARA2CConfig(total_timesteps=64 * 4)
    trainer = build("ERA-v1", {"ppo": ppo, "iar": IARConfig(policy=policy, num_candidates=16, **TINY)})
    _, m = jax.jit(trainer)(jax.random.PRNGKey(0))
    assert float(m["nonfinite"].sum()) == 0 and np.all(np.asarray(m["violation_rate"]) == 0.0)


def test_configs_for_train_py():
    ppo_fields = {f.name for f in dataclasses.fields(PPOConfig)}
    assert not ppo_fields & {f.name for f in dataclasses.fields(IARConfig)}
    a2c = IARA2CConfig()
    assert isinstance(a2c, PPOConfig)
    assert (a2c.lr, a2c.optimizer, a2c.adam_eps, a2c.gamma, a2c.gae_lambda, a2c.vf_coef, a2c.max_grad_norm) == (
        3e-4, "rmsprop", 1e-5, 0.99, 1.0, 0.5, 0.5)
    assert (a2c.num_envs, a2c.num_steps, a2c.clip_eps, a2c.total_timesteps) == (64, 1, None, 700_000)
    for bad in (dict(policy="wol"), dict(rejection_coef="1/l"), dict(num_candidates=0), dict(alpha_init=2.0),
                dict(num_candidates=256), dict(max_candidates=-1)):
        with pytest.raises(ValueError):
            IARConfig(**bad)
    with pytest.raises(ValueError, match="unknown env id"):
        build("ERA-v9000", {"ppo": a2c, "iar": IARConfig()})


@pytest.mark.slow
def test_iar_a2c_paper_settings_improve_era_v1_return():
    """The original's A2C settings (64 envs x 1 step, RMSprop 3e-4) for 6e4 steps: the
    return rises above the untrained policy's."""
    trainer = build("ERA-v1", {"ppo": IARA2CConfig(total_timesteps=60_000),
                               "iar": IARConfig(flow_hidden=64, encoder_hidden=64, context_dim=32, num_candidates=32)})
    _, m = jax.jit(trainer)(jax.random.PRNGKey(0))
    ret = np.asarray(m["return"])
    finished = ret[ret != 0]
    assert finished[-50:].mean() > finished[:50].mean() + 4.0, finished[::50]
