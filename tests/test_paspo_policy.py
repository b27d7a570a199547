"""PASPO's autoregressive Beta policy: the density against a hand computation (interval Jacobian
included), intervals against the LP along the action's own prefix, feasibility of every sample,
edge cases (degenerate intervals, Beta samples that round to 0 or 1), greedy = chain of modes,
state-dependent constraints, and the de-biased initialisation on the plain simplex."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from flax import struct
from gymnax.environments import spaces

import envs_jax
from envs_jax.allocation import AllocationEnv
from paspo_jax import lp
from paspo_jax.policy import PASPOPolicy


# ------------------------------------------------------------------------------ a tiny env
@struct.dataclass
class TinyParams:
    A: jax.Array
    b: jax.Array
    violation_penalty: float = 0.0
    max_steps_in_episode: int = 1


@struct.dataclass
class TinyState:
    time: int = 0


class Tiny(AllocationEnv):
    """n entities, constant 2-d observation, reward 0: a polytope to sample from."""

    def __init__(self, A, b):
        self.num_entities = int(np.shape(A)[1])
        self._A, self._b = jnp.asarray(A, jnp.float32), jnp.asarray(b, jnp.float32)

    @property
    def default_params(self):
        return TinyParams(self._A, self._b)

    def reset_env(self, key, params):
        return self.get_obs(TinyState()), TinyState()

    def get_obs(self, state, params=None, key=None):
        return jnp.asarray([1.0, -0.5], jnp.float32)

    def _transition(self, key, state, a, params):
        return self.get_obs(state), state.replace(time=state.time + 1), jnp.zeros(()), jnp.asarray(True), {}

    def is_terminated(self, state, params):
        return jnp.asarray(True)

    def observation_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)


# Three entities: a0 <= 0.6, a1 <= 0.5, a0 + a1 >= 0.3 (plus the simplex).
# Given a0 in [0, 0.6]: a1 in [max(0, 0.3 - a0), min(0.5, 1 - a0)], a2 = 1 - a0 - a1.
A3 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, -1.0, 0.0]])
B3 = np.array([0.6, 0.5, -0.3])


def hand_interval(i, a):
    if i == 0:
        return 0.0, 0.6
    return max(0.0, 0.3 - a[0]), min(0.5, 1.0 - a[0])


def set_heads(params, out_bias, kernel_scale=0.0):
    """Heads' last layer: kernel * kernel_scale, bias = out_bias (n-1, 2): concentrations are
    then exp(out_bias) + 1e-6 whatever the input (for kernel_scale 0)."""
    heads = jax.tree.map(lambda x: x, params["heads"])
    last = max(k for k in heads["params"] if k.startswith("Dense_"))
    heads["params"][last]["kernel"] = heads["params"][last]["kernel"] * kernel_scale
    heads["params"][last]["bias"] = jnp.asarray(out_bias, jnp.float32)
    return {**params, "heads": heads}


@pytest.fixture(scope="module")
def tiny3():
    env = Tiny(A3, B3)
    params = env.default_params
    pol = PASPOPolicy(env, params, debias=False)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    theta = pol.init(jax.random.PRNGKey(1), obs, state, params)
    conc = np.array([[2.0, 3.0], [0.5, 4.0]])
    theta = set_heads(theta, np.log(conc))
    return env, params, pol, obs, state, theta, conc


NUM = 2048  # one batch size for every sampling call on the tiny env (one compile)


@pytest.fixture(scope="module")
def tiny3_fns(tiny3):
    """Compiled once: sample NUM actions, score them (stored intervals)."""
    env, params, pol, obs, state, theta, conc = tiny3
    act = jax.jit(lambda th, key: jax.vmap(pol.act, in_axes=(None, 0, None, None, None))(
        th, jax.random.split(key, NUM), obs, state, params))
    evaluate = jax.jit(lambda th, action, extras: jax.vmap(pol.evaluate, in_axes=(None, None, None, 0, 0))(
        th, jax.random.PRNGKey(0), obs, action, extras))
    return act, evaluate


def test_log_prob_equals_hand_computation_with_interval_jacobian(tiny3, tiny3_fns):
    """log pi(a) = sum_i [log Beta((a_i - lo_i) / w_i; alpha_i, beta_i) - log w_i], intervals by hand."""
    env, params, pol, obs, state, theta, conc = tiny3
    out = tiny3_fns[0](theta, jax.random.PRNGKey(2))
    for a, log_prob in zip(np.asarray(out.action, np.float64)[:16], np.asarray(out.log_prob)[:16]):
        ref = 0.0
        for i in range(2):
            lo, hi = hand_interval(i, a)
            ref += scipy.stats.beta.logpdf((a[i] - lo) / (hi - lo), *(conc[i] + 1e-6)) - np.log(hi - lo)
        np.testing.assert_allclose(log_prob, ref, rtol=2e-4, atol=2e-4)
    # A fixed allocation, scored with its intervals solved along its prefix.
    a = np.array([0.1, 0.35, 0.55])
    ref = (scipy.stats.beta.logpdf(0.1 / 0.6, *(conc[0] + 1e-6)) - np.log(0.6)
           + scipy.stats.beta.logpdf((0.35 - 0.2) / 0.3, *(conc[1] + 1e-6)) - np.log(0.3))
    np.testing.assert_allclose(float(pol.log_prob(theta, obs, jnp.asarray(a), state, params)), ref, rtol=1e-5)


def test_samples_follow_the_scaled_betas(tiny3, tiny3_fns):
    """a0 / 0.6 ~ Beta(2, 3) (Kolmogorov-Smirnov), and the last entry takes the rest."""
    env, params, pol, obs, state, theta, conc = tiny3
    out = tiny3_fns[0](theta, jax.random.PRNGKey(3))
    a = np.asarray(out.action, np.float64)
    assert scipy.stats.kstest(a[:, 0] / 0.6, scipy.stats.beta(2.0, 3.0).cdf).pvalue > 1e-3
    lo = np.maximum(0.0, 0.3 - a[:, 0])
    hi = np.minimum(0.5, 1.0 - a[:, 0])
    assert scipy.stats.kstest((a[:, 1] - lo) / (hi - lo), scipy.stats.beta(0.5, 4.0).cdf).pvalue > 1e-3
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-6)


def test_evaluate_matches_act_and_stored_intervals_equal_the_lp(tiny3, tiny3_fns):
    """The stored intervals are the LP's along the action's own prefix, evaluate (stored) and
    evaluate (recompute) give act's log-prob, and the MC entropy is the sum of the scaled
    Betas' entropies (scipy) along that prefix."""
    env, params, pol, obs, state, theta, conc = tiny3
    full = tiny3_fns[0](theta, jax.random.PRNGKey(4))
    out = jax.tree.map(lambda x: x[:64], full)
    lo_lp, hi_lp, feasible = jax.jit(jax.vmap(lambda a: lp.allocation_bounds_chain(params.A, params.b, a)))(out.action)
    assert bool(feasible.all())
    np.testing.assert_allclose(np.asarray(out.extras["a_min"]), np.asarray(lo_lp), atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.extras["a_max"]), np.asarray(hi_lp), atol=1e-6)
    ev = tiny3_fns[1](theta, full.action, full.extras)
    np.testing.assert_allclose(np.asarray(ev.log_prob), np.asarray(full.log_prob), rtol=1e-5, atol=1e-5)
    recompute = PASPOPolicy(env, params, debias=False, intervals="recompute", bounds="lp")
    ev_lp = jax.jit(jax.vmap(recompute.evaluate, in_axes=(None, None, None, 0, 0)))(
        theta, jax.random.PRNGKey(0), obs, out.action, out.extras)
    # LP (float32 vertices) vs the fast path differ by ~1e-7 in the bounds, which Beta(0.5, .)'s
    # steep log-density near 0 turns into up to ~1e-4 in the log-prob.
    np.testing.assert_allclose(np.asarray(ev_lp.log_prob), np.asarray(out.log_prob), rtol=1e-5, atol=5e-4)
    a = np.asarray(out.action, np.float64)
    ref_entropy = [
        sum(scipy.stats.beta(*(conc[i] + 1e-6)).entropy() + np.log(np.subtract(*hand_interval(i, x)[::-1]))
            for i in range(2))
        for x in a
    ]
    np.testing.assert_allclose(np.asarray(ev.entropy)[:64], ref_entropy, rtol=1e-4, atol=1e-4)


def test_head_i_sees_only_the_earlier_entries(tiny3):
    """d(head i output)/d a_j = 0 for j >= i (autodiff through the masked input)."""
    env, params, pol, obs, state, _, conc = tiny3
    theta = pol.init(jax.random.PRNGKey(1), obs, state, params)  # random last layers
    a = jnp.asarray([0.2, 0.3, 0.5])

    def outputs(a):
        enc = pol._encode(theta, obs)
        inputs = jax.vmap(lambda i: pol._head_input(enc, a, i))(jnp.arange(2))
        return jax.vmap(pol.head.apply)(theta["heads"], inputs)

    J = np.asarray(jax.jacobian(outputs)(a))  # (heads, 2, n)
    assert np.all(J[0] == 0.0)  # head 0 sees no entry
    assert np.all(J[1][:, 1:] == 0.0) and np.any(J[1][:, 0] != 0.0)  # head 1 sees a0 only


def test_degenerate_interval_fixes_the_entry():
    """a0 = 0.3 exactly (two opposite rows): a0 is fixed, adds 0 to log-prob and entropy."""
    A = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    b = np.array([0.3, -0.3])
    env = Tiny(A, b)
    params = env.default_params
    pol = PASPOPolicy(env, params, debias=False)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    theta = set_heads(pol.init(jax.random.PRNGKey(1), obs, state, params), np.log([[2.0, 3.0], [1.5, 2.5]]))
    out = jax.jit(jax.vmap(pol.act, in_axes=(None, 0, None, None, None)))(
        theta, jax.random.split(jax.random.PRNGKey(2), 16), obs, state, params)
    a = np.asarray(out.action, np.float64)
    np.testing.assert_allclose(a[:, 0], 0.3, atol=1e-6)
    ref = scipy.stats.beta.logpdf(a[:, 1] / 0.7, 1.5 + 1e-6, 2.5 + 1e-6) - np.log(0.7)
    np.testing.assert_allclose(np.asarray(out.log_prob), ref, rtol=1e-4, atol=1e-4)
    ev = jax.vmap(pol.evaluate, in_axes=(None, None, None, 0, 0))(theta, jax.random.PRNGKey(0), obs, out.action,
                                                                  out.extras)
    ent = scipy.stats.beta(1.5 + 1e-6, 2.5 + 1e-6).entropy() + np.log(0.7)
    np.testing.assert_allclose(np.asarray(ev.entropy), ent, rtol=1e-4)
    assert float(out.metrics["degenerate"].mean()) == 0.5


def test_beta_samples_rounding_to_0_or_1_have_finite_consistent_log_prob(tiny3, tiny3_fns):
    """Concentrations 1e-3 put nearly all mass at 0 and 1 (float32 rounds the samples there):
    the clipped position gives a finite log-prob, identical in act and evaluate."""
    env, params, pol, obs, state, theta, _ = tiny3
    theta = set_heads(theta, np.log([[1e-3, 1e-3], [1e-3, 2e-3]]))
    out = tiny3_fns[0](theta, jax.random.PRNGKey(5))
    a = np.asarray(out.action)
    assert np.any(a[:, 0] == 0.0) or np.any(np.isclose(a[:, 0], 0.6, atol=1e-6))
    assert np.all(np.isfinite(np.asarray(out.log_prob)))
    ev = tiny3_fns[1](theta, out.action, out.extras)
    np.testing.assert_allclose(np.asarray(ev.log_prob), np.asarray(out.log_prob), rtol=1e-5)
    assert np.all(A3 @ a.T <= B3[:, None] + 1e-6)


def test_greedy_is_the_chain_of_modes(tiny3):
    """Mode of Beta(2, 3) = 1/3 -> a0 = 0.2; given a0, interval [0.1, 0.5]; Beta(0.5, 4) has its
    mode at 0 -> a1 = 0.1; a2 = 0.7."""
    env, params, pol, obs, state, theta, _ = tiny3
    a = np.asarray(pol.greedy(theta, obs, state, params))
    np.testing.assert_allclose(a, [0.2, 0.1, 0.7], atol=1e-6)


# ------------------------------------------------------------------- state-dependent constraints
def test_capacity_env_keeps_zero_violations():
    """PASPO-capacity-7 (constraints change with the state): 64 envs x 40 steps of policy
    actions, each from its own state's polytope, never violate (info max_violation <= 1e-6)."""
    env, params = envs_jax.make("PASPO-capacity-7")
    pol = PASPOPolicy(env, params, debias=False)
    N, T = 64, 40

    @jax.jit
    def rollout(key):
        k0, k1, k2 = jax.random.split(key, 3)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, N), params)
        theta = pol.init(k1, obs[0], jax.tree.map(lambda x: x[0], state), params)

        def step(carry, k):
            obs, state = carry
            ka, ke = jax.random.split(k)
            out = jax.vmap(pol.act, in_axes=(None, 0, 0, 0, None))(theta, jax.random.split(ka, N), obs, state, params)
            A, b = jax.vmap(env.constraints, in_axes=(0, None))(state, params)
            obs, state, r, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ke, N), state, out.action, params)
            return (obs, state), (info["max_violation"], out.action, A, b)

        return jax.lax.scan(step, (obs, state), jax.random.split(k2, T))[1]

    max_violation, actions, A, b = rollout(jax.random.PRNGKey(0))
    assert float(max_violation.max()) <= 1e-6
    # Independent check in float64, and the constraints really differ between states.
    excess = np.einsum("tnmk,tnk->tnm", np.asarray(A, np.float64), np.asarray(actions, np.float64)) - np.asarray(b)
    assert excess.max() <= 1e-6
    assert np.asarray(b).std(axis=(0, 1)).max() > 0.01


# ------------------------------------------------------------------------------ de-biasing
def test_debias_on_the_simplex_gives_uniform_allocations():
    """On the plain simplex (a redundant row only) the de-bias fit is the stick-breaking
    Beta(1, n - 1 - i) per head, and the de-biased policy then samples the uniform
    distribution: a_0 ~ Beta(1, n - 1) and a_{n-1} ~ Beta(1, n - 1) (KS tests)."""
    n = 5
    env = Tiny(np.ones((1, n)), np.array([2.0]))
    params = env.default_params
    pol = PASPOPolicy(env, params, debias=True, debias_samples=20_000, debias_se_tol=0.0)  # all points
    log_alpha, log_beta = pol.debias_offsets()
    np.testing.assert_allclose(np.exp(log_alpha), np.ones(n - 1), rtol=0.05)
    np.testing.assert_allclose(np.exp(log_beta), [n - 1 - i for i in range(n - 1)], rtol=0.05)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    theta = pol.init(jax.random.PRNGKey(1), obs, state, params)
    act = jax.jit(lambda th: jax.vmap(pol.act, in_axes=(None, 0, None, None, None))(
        th, jax.random.split(jax.random.PRNGKey(2), 3000), obs, state, params))
    a = np.asarray(act(theta).action, np.float64)
    for j in (0, n - 1):
        assert scipy.stats.kstest(a[:, j], scipy.stats.beta(1.0, n - 1).cdf).pvalue > 1e-3
    # Without the offsets (the ablation: heads start at Beta(1, 1)) the last entry is far from
    # the uniform distribution's marginal.
    last = max(k for k in theta["heads"]["params"] if k.startswith("Dense_"))
    bias = theta["heads"]["params"][last]["bias"] - jnp.stack([log_alpha, log_beta], axis=1)
    theta0 = set_heads(theta, bias, kernel_scale=1.0)
    a0 = np.asarray(act(theta0).action, np.float64)
    assert scipy.stats.kstest(a0[:, n - 1], scipy.stats.beta(1.0, n - 1).cdf).pvalue < 1e-6



@pytest.mark.parametrize("env_id", ["PASPO-synth-7", "PASPO-compute-9", "PASPO-portfolio-13"])
def test_static_polytope_uses_the_float64_rows_and_builds_the_fast_path(env_id):
    """Rounded to float32, synth7's 611 rows through few vertices split every vertex into many
    and vertex enumeration gives up (the policy then fell back to the float32 LP, whose bounds
    were off by ~4e-4). The policy must build its fast path from the env's float64 rows, and
    those bounds (evaluated in float32) must equal scipy HiGHS on the env's own rows to 1e-5."""
    from highs_reference import highs_bounds
    from paspo_jax.policy import static_polytope

    env, params = envs_jax.make(env_id)
    P = static_polytope(env, params)
    assert P.fast is not None
    A, b = np.asarray(params.A, np.float64), np.asarray(params.b, np.float64)
    assert np.abs(P.A - A).max() < 1e-6 and np.abs(P.b - b).max() < 1e-6
    rng = np.random.default_rng(0)
    a = np.asarray(P.sample_uniform(jax.random.PRNGKey(0), 3, "rejection"), np.float64)
    n = A.shape[1]
    for x in a:
        i = int(rng.integers(1, n - 1))
        lo, hi, ok = (np.asarray(v) for v in P.bounds(jnp.asarray(x, jnp.float32), i))
        ref_lo, ref_hi = highs_bounds(A, b, x.astype(np.float32).astype(np.float64), i)
        assert ok and abs(lo - ref_lo) < 1e-5 and abs(hi - ref_hi) < 1e-5, (i, lo, ref_lo, hi, ref_hi)
