"""The Policy contract (``ppo_jax.policy``), checked on every policy of the project.

For each case of :func:`policy_cases`, at random parameters of ``init``'s structure, one
compiled program draws actions for a batch of reset states and checks:

* ``act`` and ``evaluate`` run under ``jit`` and ``vmap`` (the engine's ``in_axes``) with
  one scalar log-prob and value per sample and actions of the env's action shape;
* ``evaluate`` at the unchanged parameters reproduces ``act``'s ``log_prob`` (the PPO
  ratio starts at 1) with a finite value and entropy;
* the gradient of PPO's loss (``ppo_jax.losses.ppo_loss`` + the policy's ``extra_loss``)
  is finite and not all zero;
* where the log-probability is exact (``policy.log_prob_exact``, default True), the score
  has mean zero: E_{s, a ~ pi}[grad log pi(a|s)] = 0, tested on the projections of the
  per-sample gradients onto fixed random directions, |mean| <= 4 standard errors (a
  false alarm has probability ~6e-5 per direction). For rejection policies ``log_prob`` is
  the surrogate of ``iar_jax.rejection``, whose gradient has mean zero given the
  candidates (the executed action is uniform among the valid ones and the correction is
  their mean score), so the same check applies. ``test_the_score_check_can_fail`` shows
  the check catches an unnormalised log-probability.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs_jax
from ppo_jax.losses import ppo_loss
from ppo_jax.policy import Act, Batch, Evaluation, MLPActorCritic, Policy

N = 256  # states x actions per case (the score check's sample size)
DIRECTIONS = 4  # random directions the score is projected on
Z = 4.0  # tolerance of the score check, in standard errors
# CI runs one policy per package family (ppo_jax x2, iar_jax's rejection, safe_jax); the
# others compile 20-100 s each on 2 loaded cores and run with -m slow. Their act/evaluate
# agreement is also checked in CI by their own files (test_paspo_policy, test_paspo_baselines,
# test_iar_policy, test_iar_rejection).
SLOW = {"paspo", "dirichlet", "lagrangian", "projection", "iar", "mask", "mask-gcn", "ar", "optlayer",
        "factored-gcn", "ar-gcn", "iar-cnn", "mask-cnn"}
# PASPO's evaluate recovers the Beta position u = (a - lo) / (hi - lo) from the stored action;
# on a narrow interval float32 loses ~1e-3 of the log-density there (1 of 256 samples here).
LOG_PROB_ATOL = {"paspo": 2e-3}
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def policy_cases():
    """Every policy the registry knows (``Algorithm.policy_cases`` of each registered
    algorithm) as ``(name, env_id, factory)``: small envs and networks (compile time dominates)."""
    from ppo_jax import registry

    return registry.policy_cases()


def _random_params(policy, env, env_params):
    """Parameters of ``policy.init``'s structure (traced, not compiled) with random values:
    kernels N(0, 1/fan_in), other leaves N(0, 0.3^2), so every head is away from uniform."""
    obs, state = env.reset(jax.random.PRNGKey(0), env_params)
    shapes = jax.eval_shape(policy.init, jax.random.PRNGKey(1), obs, state, env_params)
    rng = np.random.default_rng(2)
    scale = lambda x: 1.0 / np.sqrt(x.shape[-2]) if len(x.shape) >= 2 else 0.3
    return jax.tree.map(lambda x: jnp.asarray(scale(x) * rng.standard_normal(x.shape), x.dtype), shapes)


def _contract_program(policy, env, env_params, n=N):
    """One jitted program: (params, key) -> (acts, evaluation, score projections (n, DIRECTIONS),
    loss gradient)."""

    def run(params, key):
        k_reset, k_act, k_eval, k_loss, k_adv = jax.random.split(key, 5)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, n), env_params)
        act_keys, eval_keys = jax.random.split(k_act, n), jax.random.split(k_eval, n)
        acts = jax.vmap(policy.act, in_axes=(None, 0, 0, 0, None))(params, act_keys, obs, state, env_params)
        evaluate = lambda p: jax.vmap(policy.evaluate, in_axes=(None, 0, 0, 0, 0))(
            p, eval_keys, obs, acts.action, acts.extras)
        ev = evaluate(params)
        # the per-sample score projected on fixed random directions (forward mode: jvp)
        leaves, tree = jax.tree.flatten(params)
        dkeys = jax.random.split(jax.random.PRNGKey(7), len(leaves))
        tangents = jax.tree.unflatten(tree, [jax.random.normal(k, (DIRECTIONS,) + x.shape, x.dtype)
                                             for k, x in zip(dkeys, leaves)])
        jvp = lambda t: jax.jvp(lambda p: evaluate(p).log_prob, (params,), (t,))[1]
        proj = jax.vmap(jvp, out_axes=1)(tangents)  # (n, DIRECTIONS)
        # PPO's loss (+ the policy's extra terms) on this batch, as the engine forms it
        adv = jax.random.normal(k_adv, (n,))
        cost = jnp.zeros((n, 1))
        batch = Batch(obs, acts.action, acts.log_prob, acts.value, adv, acts.value + adv, acts.extras,
                      cost=cost, cost_value=cost, cost_advantage=adv[:, None], cost_target=cost)

        def loss(p):
            e = evaluate(p)
            total, _ = ppo_loss(e.log_prob, batch.log_prob, adv, e.value, batch.value, batch.target, e.entropy,
                                clip_eps=0.2, clip_value=True, vf_coef=0.5, ent_coef=0.01, normalize_advantages=True)
            extra, _ = policy.extra_loss(p, k_loss, batch)
            return total + extra

        return acts, ev, proj, jax.grad(loss)(params)

    return run


def _run(program, params, key):
    """Compile with XLA's backend optimisations off (3x faster to compile here; the checks
    compare values within one program, so the optimisation level does not matter) and run."""
    return jax.jit(program).lower(params, key).compile(compiler_options=FAST_COMPILE)(params, key)


def _score_t(proj):
    proj = np.asarray(proj, np.float64)
    se = proj.std(axis=0, ddof=1) / np.sqrt(proj.shape[0])
    return proj.mean(axis=0) / np.maximum(se, 1e-30), se


@functools.lru_cache(maxsize=None)
def _cases():
    return {name: (env_id, factory) for name, env_id, factory in policy_cases()}


def _params():
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name, _, _ in policy_cases()]


@pytest.mark.parametrize("name", _params())
def test_policy_contract(name):
    env_id, factory = _cases()[name]
    env, env_params = envs_jax.make(env_id)
    policy = factory(env, env_params)
    params = _random_params(policy, env, env_params)
    acts, ev, proj, loss_grad = _run(_contract_program(policy, env, env_params), params, jax.random.PRNGKey(3))

    # shapes: one scalar log-prob / value per sample, actions of the env's action shape
    space = env.action_space(env_params)
    assert acts.action.shape == (N,) + tuple(space.shape), (acts.action.shape, space.shape)
    assert acts.log_prob.shape == acts.value.shape == (N,)
    assert isinstance(ev, Evaluation) and all(x.shape == (N,) for x in ev)
    # evaluate reproduces act's log-prob at unchanged parameters (different keys)
    atol = LOG_PROB_ATOL.get(name, 1e-4)
    np.testing.assert_allclose(np.asarray(ev.log_prob), np.asarray(acts.log_prob), rtol=1e-5, atol=atol)
    for x in (ev.log_prob, ev.entropy, ev.value, acts.value):
        assert np.isfinite(np.asarray(x)).all()
    # the loss gradient is finite and reaches the parameters
    leaves = [np.asarray(g) for g in jax.tree.leaves(loss_grad)]
    assert all(np.isfinite(g).all() for g in leaves)
    assert max(np.abs(g).max() for g in leaves) > 0
    # E[grad log pi] = 0 where the log-prob is exact
    if policy.log_prob_exact:
        t, se = _score_t(proj)
        assert (se > 0).all(), se  # the score is not constant: the check has power
        assert np.abs(t).max() <= Z, t


class _Unnormalised(Policy):
    """A broken linear-softmax policy whose ``log_prob`` lacks the log-normaliser (logits[a])."""

    def init(self, key, obs, env_state=None, env_params=None):
        return {"w": jnp.zeros((obs.shape[0], 2)), "b": jnp.zeros((2,)), "v": jnp.zeros((obs.shape[0],))}

    def act(self, params, key, obs, env_state=None, env_params=None):
        a = jax.random.categorical(key, obs @ params["w"] + params["b"])
        return Act(a, self.evaluate(params, key, obs, a).log_prob, obs @ params["v"])

    def evaluate(self, params, key, obs, action, extras=()):
        logits = obs @ params["w"] + params["b"]
        return Evaluation(logits[action], jnp.zeros(()), obs @ params["v"])


def test_the_score_check_can_fail():
    """The same program and check flag a log-probability that is off by log Z(s)."""
    env, env_params = envs_jax.make("CartPole-v1")
    policy = _Unnormalised()
    params = _random_params(policy, env, env_params)
    _, _, proj, _ = _run(_contract_program(policy, env, env_params), params, jax.random.PRNGKey(3))
    t, _ = _score_t(proj)
    assert np.abs(t).max() > Z, t
