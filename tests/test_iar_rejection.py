"""Invalid-action rejection against exact gradients on an enumerable problem, and the
baselines' (and the flow's) action probabilities against brute-force enumeration."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import envs_jax
from envs_jax.era import MultiDiscrete
from iar_jax.baselines import ARPolicy, FactoredPolicy, MaskPolicy
from iar_jax.policy import IARPolicy
from iar_jax.rejection import candidates_used, reject
from ppo_jax.policy import Batch

# 3 x 3 joint actions; the valid set C (4 of 9) is fixed.
VALID = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 1]], bool)  # (0,0) (0,1) (1,2) (2,2)
OBS = jnp.array([0.5, -1.0])


class TableEnv:
    """A stateless validity oracle over MultiDiscrete([3, 3]) (enough for the policies)."""

    constrained = True

    def action_space(self, params=None):
        return MultiDiscrete([3, 3])

    def is_valid(self, state, action, params):
        return jnp.asarray(VALID)[action[0], action[1]]


@jax.jit
def _tilt(params, key, scale=1.0):
    """Give the actor non-trivial logits (they start near uniform)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def _factored(num_candidates, coef="ratio", subset=0, max_candidates=0):
    pol = FactoredPolicy(
        TableEnv(), None, hidden=8, context_dim=4, num_candidates=num_candidates, rejection_coef=coef,
        rejection_subset=subset, behaviour_log_prob=False, max_candidates=max_candidates,
    )
    params = jax.jit(pol.init)(jax.random.PRNGKey(0), OBS)
    params["actor"] = _tilt(params["actor"], jax.random.PRNGKey(1), 0.6)
    return pol, params


def _all_log_probs(pol, params):
    ctx = pol.context(params, OBS)
    return pol.log_probs(params, None, ctx, pol.layout.all_actions(), None)[0]  # (9,)


def _flat(tree):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


R = 1500  # draws of S candidates


def _correction_gradient(pol, params, acts=None):
    """Mean over R draws of grad sum_j w_j log pi(a_j|s) (the estimate of grad log Z_C)."""
    if acts is None:
        keys = jax.random.split(jax.random.PRNGKey(2), R)
        acts = jax.jit(jax.vmap(pol.act, in_axes=(None, 0, None, None, None)))(params, keys, OBS, None, None)

    return _flat(_corr_grad(pol)(params, acts.extras)["actor"]), acts


_CORR_GRADS = {}


def _corr_grad(pol):
    """jit(grad) of the correction term, one per policy object (its shapes are static)."""
    if id(pol) not in _CORR_GRADS:

        def corr(p, extras):
            ctx = pol.context(p, OBS)
            lp = jax.vmap(lambda c: pol.log_probs(p, None, ctx, c, None)[0])(extras["cand"])  # (R, M)
            return jnp.mean(jnp.sum(extras["cand_w"] * lp, axis=-1))

        _CORR_GRADS[id(pol)] = (pol, jax.jit(jax.grad(corr)))
    return _CORR_GRADS[id(pol)][1]


def _exact_log_z_gradient(pol, params):
    mask = jnp.asarray(VALID.reshape(-1))
    log_z = lambda p: jax.nn.logsumexp(jnp.where(mask, _all_log_probs(pol, p), -jnp.inf))
    return _flat(jax.jit(jax.grad(log_z))(params)["actor"])


def test_rejection_gradients_match_exact_gradients_on_an_enumerable_problem():
    """(1) c = 1/l: the correction term's mean -> grad log sum_{a in C} pi(a|s) as S grows,
    also on a random subset of the valid candidates; the paper's c = S/l^2 converges to
    that gradient divided by P_pi(C), so it stays off. (2) E[r(a) grad surrogate] (the
    engine's A2C gradient with advantage r) equals grad E_{a ~ pi_C}[r(a)], pi_C = pi
    restricted to C and renormalised, computed exactly."""
    errors = {}
    for s, subset, s_max in ((2, 0, 0), (48, 0, 0), (48, 4, 0), (2, 0, 64)):
        pol, params = _factored(s, "ratio", subset, s_max)
        exact = _exact_log_z_gradient(pol, params)
        est, acts = _correction_gradient(pol, params)
        errors[(s, "ratio", subset, s_max)] = np.linalg.norm(est - exact) / np.linalg.norm(exact)
        assert np.all(VALID.reshape(-1)[np.asarray(acts.action[:, 0] * 3 + acts.action[:, 1])] | (acts.metrics["no_valid"] > 0))
        if (s, subset) == (48, 0):
            # the printed coefficient on the same draws: S/l^2 = S * (1/l)^2
            paper = acts._replace(extras={**acts.extras, "cand_w": s * jnp.square(acts.extras["cand_w"])})
            est_paper, _ = _correction_gradient(pol, params, paper)
            errors[(48, "paper", 0, 0)] = np.linalg.norm(est_paper - exact) / np.linalg.norm(exact)
            pg_error = _policy_gradient_error(pol, params, acts)
        if s_max:  # adaptive S: used = 2, 4, ..., 64 candidates, the fallback only if all 64 are invalid
            used = np.asarray(acts.metrics["candidates_used"])
            assert set(np.unique(used)) <= {2, 4, 8, 16, 32, 64} and (used > 2).any()
            assert float(np.mean(acts.metrics["no_valid"])) == 0.0
    p_c = float(jnp.exp(jax.jit(lambda p: _all_log_probs(pol, p))(params)).reshape(3, 3)[VALID].sum())
    assert 0.2 < p_c < 0.7
    assert errors[(48, "ratio", 0, 0)] < 0.06, errors
    assert errors[(48, "ratio", 4, 0)] < 0.08, errors  # a random subset of the valid ones: still consistent
    assert errors[(2, "ratio", 0, 0)] > 2 * errors[(48, "ratio", 0, 0)], errors  # O(1/S) bias (and the fallback)
    # Doubling from S = 2 removes the fallback's bias (valid candidates are i.i.d. pi_C draws
    # whatever the stopping rule); the remaining error is the ratio's O(1/l) with l small.
    assert errors[(2, "ratio", 0, 64)] < min(0.2, 0.6 * errors[(2, "ratio", 0, 0)]), errors
    assert errors[(48, "paper", 0, 0)] > 0.5, errors  # ~ 1/P(C) - 1
    assert pg_error < 0.1, pg_error


def _policy_gradient_error(pol, params, acts):
    """Relative error of mean r(a) grad surrogate(a) vs the exact grad E_{pi_C}[r]."""
    r = jnp.array([1.0, -2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.5])  # reward per joint action
    mask = jnp.asarray(VALID.reshape(-1))

    def expected_reward(p):
        lp = jnp.where(mask, _all_log_probs(pol, p), -jnp.inf)
        return jnp.sum(jax.nn.softmax(lp) * r)

    exact = _flat(jax.jit(jax.grad(expected_reward))(params)["actor"])
    reward = r[acts.action[:, 0] * 3 + acts.action[:, 1]]

    def surrogate(p, acts):
        ev = jax.vmap(pol.evaluate, in_axes=(None, None, None, 0, 0))(p, None, OBS, acts.action, acts.extras)
        return jnp.mean(reward * ev.log_prob)

    est = _flat(jax.jit(jax.grad(surrogate))(params, acts)["actor"])
    return np.linalg.norm(est - exact) / np.linalg.norm(exact)


def test_candidates_used_follows_the_doubling_ladder():
    """Adaptive S against a direct transcription of the rule: the first rung of
    S, 2S, 4S, ... (cap S_max) that holds a valid candidate, S_max when none does."""
    rng = np.random.default_rng(0)
    for start, cap in ((4, 16), (3, 10), (5, 5), (1, 7)):
        rungs = [start * 2**k for k in range(10) if start * 2**k < cap] + [cap]
        for _ in range(40):
            mask = rng.random(cap) < rng.choice([0.0, 0.05, 0.2, 0.6])
            expect = next((r for r in rungs if mask[:r].any()), cap)
            assert int(candidates_used(jnp.asarray(mask), start)) == expect, (start, cap, mask)
    mask = jnp.array([False] * 4 + [True] + [False] * 3)
    rej = reject(jax.random.PRNGKey(0), mask, 4, "paper", num_used=candidates_used(mask, 4))
    assert int(rej.executed) == 4 and int(rej.num_valid) == 1 and not bool(rej.no_valid)
    np.testing.assert_allclose(np.sort(np.asarray(rej.weights)), [0, 0, 0, 8.0])  # S_k / l^2 = 8
    rej = reject(jax.random.PRNGKey(0), mask, 4, "ratio", num_used=jnp.int32(4))  # candidate 4 not drawn
    assert bool(rej.no_valid) and int(rej.executed) == 0
    with pytest.raises(ValueError, match="start"):
        candidates_used(mask, 9)


def test_reject_fallback_and_subset_weights():
    mask = jnp.array([False, False, False, False])
    rej = reject(jax.random.PRNGKey(0), mask, 4, "ratio")
    assert bool(rej.no_valid) and int(rej.executed) == 0 and int(rej.num_valid) == 0
    np.testing.assert_allclose(np.asarray(rej.weights), [1.0, 0, 0, 0])  # candidate 0 treated as valid
    mask = jnp.array([True, False, True, True, False, True])  # l = 4, S = 6
    for coef, c in (("ratio", 1 / 4), ("paper", 6 / 16)):
        rej = reject(jax.random.PRNGKey(1), mask, 6, coef)
        np.testing.assert_allclose(np.sort(np.asarray(rej.weights))[::-1], [c] * 4 + [0, 0], rtol=1e-6)
        assert set(np.asarray(rej.subset)[np.asarray(rej.weights) > 0]) == {0, 2, 3, 5}
        rej = reject(jax.random.PRNGKey(1), mask, 2, coef)  # subset of 2 of the 4 valid: weight c * l / m
        np.testing.assert_allclose(np.asarray(rej.weights), [c * 2] * 2, rtol=1e-6)
        assert np.asarray(mask)[np.asarray(rej.subset)].all()
    execd = jax.vmap(lambda k: reject(k, mask, 6, "ratio").executed)(jax.random.split(jax.random.PRNGKey(2), 4000))
    freq = np.bincount(np.asarray(execd), minlength=6) / 4000
    np.testing.assert_allclose(freq, [0.25, 0, 0.25, 0.25, 0, 0.25], atol=0.03)


# ------------------------------------------------------------------ baselines vs brute force
def test_mask_log_probs_and_entropy_equal_a_brute_force_masked_softmax_on_era_v1():
    env, env_params = envs_jax.make("ERA-v1")
    obs, state = env.reset(jax.random.PRNGKey(3), env_params)
    pol = MaskPolicy(env, env_params, hidden=16, context_dim=8, critic_hidden=(8,))
    params = jax.jit(pol.init)(jax.random.PRNGKey(0), obs)
    params["actor"] = _tilt(params["actor"], jax.random.PRNGKey(4), 0.3)
    logits = np.asarray(jax.jit(pol.actor.apply)(params["actor"], obs), np.float64)
    is_valid = jax.jit(env.is_valid)
    brute = np.array([bool(is_valid(state, a, env_params)) for a in np.asarray(env.all_actions())])
    assert 0 < brute.sum() < brute.size
    logp = np.where(brute, logits - np.log(np.exp(logits[brute]).sum()), -np.inf)
    probs = np.exp(logp)
    acts = jax.jit(jax.vmap(pol.act, in_axes=(None, 0, None, None, None)))(
        params, jax.random.split(jax.random.PRNGKey(5), 10000), obs, state, env_params
    )
    idx = np.asarray(jax.vmap(pol.layout.joint_index)(acts.action))
    assert brute[idx].all()  # never an invalid action
    np.testing.assert_allclose(np.asarray(acts.log_prob), logp[idx], rtol=1e-4, atol=1e-5)
    ev = jax.vmap(pol.evaluate, in_axes=(None, None, None, 0, 0))(params, None, obs, acts.action[:50], jax.tree.map(lambda x: x[:50], acts.extras))
    np.testing.assert_allclose(np.asarray(ev.log_prob), logp[idx[:50]], rtol=1e-4, atol=1e-5)
    entropy = -np.sum(probs[brute] * logp[brute])
    np.testing.assert_allclose(np.asarray(ev.entropy), entropy, rtol=1e-4)
    np.testing.assert_allclose(np.bincount(idx, minlength=brute.size) / idx.size, probs, atol=0.015)
    np.testing.assert_allclose(float(acts.metrics["valid_fraction"][0]), brute.mean(), rtol=1e-6)
    assert brute[int(pol.layout.joint_index(pol.greedy(params, obs, state, env_params)))]


@pytest.mark.parametrize("cls", [FactoredPolicy, ARPolicy])
def test_factored_and_ar_log_probs_normalise_and_match_their_sampling_frequencies(cls):
    pol = cls(TableEnv(), None, hidden=8, context_dim=4, num_candidates=8)
    params = jax.jit(pol.init)(jax.random.PRNGKey(0), OBS)
    params = {k: (_tilt(v, jax.random.PRNGKey(1), 0.8) if k != "critic" else v) for k, v in params.items()}
    ctx = jax.jit(pol.context)(params, OBS)
    p = np.exp(np.asarray(jax.jit(lambda q: _all_log_probs(pol, q))(params), np.float64))
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)
    samples = jax.jit(pol.sample_actions, static_argnums=3)(params, jax.random.PRNGKey(2), ctx, 20000)
    freq = np.bincount(np.asarray(samples[:, 0] * 3 + samples[:, 1]), minlength=9) / 20000
    np.testing.assert_allclose(freq, p, atol=0.012)


def test_flow_importance_weighted_probabilities_match_its_sampling_frequencies():
    """p(a|s) = E_q[w] of a flow with coupling layers (non-Gaussian), estimated with many
    posterior samples after the policy's own ELBO term has fitted the posterior, equals how
    often the generator's argmax produces a."""
    pol = IARPolicy(
        TableEnv(), None, num_posterior_samples=4, flow_layers=2, flow_hidden=16, context_dim=8,
        encoder_hidden=8, posterior_layers=1, num_candidates=8, alpha_mode="static", elbo_trains_generator=False,
    )
    params = jax.jit(pol.init)(jax.random.PRNGKey(0), OBS)
    params["flow"] = _tilt(params["flow"], jax.random.PRNGKey(1), 0.15)
    batch = Batch(jnp.tile(OBS, (32, 1)), jnp.zeros((32, 2), jnp.int32), *(jnp.zeros(32),) * 4, extras={})
    opt = optax.adam(1e-2)

    def step(carry, key):
        p, st = carry
        grads = jax.grad(lambda q: pol.extra_loss(q, key, batch)[0])(p)
        upd, st = opt.update(grads, st)
        return (optax.apply_updates(p, upd), st), None

    (fitted, _), _ = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), jax.random.split(jax.random.PRNGKey(9), 150)))(params)
    np.testing.assert_array_equal(_flat(fitted["flow"]), _flat(params["flow"]))  # the generator did not move
    ctx = jax.jit(pol.context)(params, OBS)
    samples = jax.jit(pol.sample_actions, static_argnums=3)(params, jax.random.PRNGKey(2), ctx, 20000)
    freq = np.bincount(np.asarray(samples[:, 0] * 3 + samples[:, 1]), minlength=9) / 20000
    lw = jax.jit(lambda p: pol.log_weights(p, jax.random.PRNGKey(3), ctx, pol.layout.all_actions(), 3000))(fitted)
    p_hat = np.exp(np.asarray(jax.nn.logsumexp(lw, axis=-1) - np.log(3000)))
    assert freq.max() > 0.2  # the tilted flow is far from uniform
    np.testing.assert_allclose(p_hat, freq, atol=0.025)
