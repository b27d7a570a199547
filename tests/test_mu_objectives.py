"""Generator objectives of the marginal-utility paper, checked against enumeration.

The reference for every gradient is an exact expectation over all joint candidate actions of
a small discrete problem (m candidates, K actions each), differentiated by autodiff; the
estimators under test are the score-function surrogates of ``mu_jax.objectives``, whose
gradients are averaged over the same enumeration with the exact probabilities.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mu_jax import generator as gen
from mu_jax import objectives as obj

M, K = 3, 4  # candidates, actions per candidate


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    Q = rng.uniform(0.0, 1.0, K)  # Q(s, k) of action k
    theta = {
        "own": rng.normal(0.0, 1.0, (M, K)),  # per-candidate logits
        "shared": rng.normal(0.0, 1.0, (K,)),  # parameters shared by every head
    }
    return jnp.asarray(Q), jax.tree.map(jnp.asarray, theta)


def _log_pi(theta):
    return jax.nn.log_softmax(theta["own"] + 0.7 * theta["shared"][None, :], axis=-1)  # [M, K]


def _joint():
    return np.asarray(list(itertools.product(range(K), repeat=M)))  # [K^M, M]


def _enumerated_mean_grad(loss_of_sample, theta):
    """sum_a P_theta(a) grad_theta loss(theta; a)  (the estimator's exact mean)."""
    A = jnp.asarray(_joint())
    log_pi = _log_pi(theta)
    probs = jnp.exp(log_pi[jnp.arange(M), A].sum(-1))  # P_theta(a) = prod_i pi_i(a_i)
    grads = jax.jit(jax.vmap(lambda a: jax.grad(loss_of_sample)(theta, a)))(A)
    return jax.tree.map(lambda g: jnp.tensordot(probs, g, axes=1), grads)


def _marginal_utilities_np(q):
    q = np.asarray(q, dtype=float)
    u = np.empty_like(q)
    u[..., 0] = q[..., 0]
    for i in range(1, q.shape[-1]):
        u[..., i] = np.maximum(q[..., i] - q[..., :i].max(-1), 0.0)
    return u


def test_marginal_utilities_follow_the_definition():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(50, 6))
    q[0, 3] = q[0, 1]  # a tie
    np.testing.assert_allclose(obj.marginal_utilities(jnp.asarray(q)), _marginal_utilities_np(q), rtol=1e-6, atol=1e-6)


def test_u_mu_equals_max_in_value():
    rng = np.random.default_rng(2)
    q = rng.normal(size=(200, 8)) * rng.uniform(0.1, 10.0, size=(200, 1))
    q[:10] = np.round(q[:10])  # ties
    np.testing.assert_allclose(obj.u_mu(jnp.asarray(q)), q.max(-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(obj.u_max(jnp.asarray(q)), q.max(-1))


def test_pathwise_u_mu_gradient_is_sum_of_semigradients():
    """d u_MU / d q_i = 1 for i = 1 and 1[q_i > max_{j<i} q_j] otherwise; u_MAX: argmax only."""
    q = jnp.asarray([0.3, 0.1, 0.5, 0.4, 0.9, 0.2])
    np.testing.assert_array_equal(jax.grad(obj.u_mu)(q), [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(jax.grad(obj.u_max)(q), [0, 0, 0, 0, 1, 0])


def test_theorem1_sampled_mu_gradient_mean_equals_exact_semigradient():
    """E[sum_i u_i grad log pi_i(a_i)] = sum_i grad_theta E[u_i(a_i; M_{i-1})], M_{i-1} held fixed."""
    with jax.enable_x64(True):
        Q, theta = _problem(0)
        Q = Q.astype(jnp.float64)
        theta = jax.tree.map(lambda x: x.astype(jnp.float64), theta)

        def sample_loss(th, a):
            logp = _log_pi(th)[jnp.arange(M), a]
            return obj.mu_score_loss(Q[a][None], logp[None])

        sampled = _enumerated_mean_grad(sample_loss, theta)

        Qn = np.asarray(Q)
        prefixes = [np.asarray(list(itertools.product(range(K), repeat=i + 1))) for i in range(M)]
        # u_i of every prefix (a_1..a_i), by plain numpy
        u_of_prefix = [Qn[P[:, 0]] if i == 0 else np.maximum(Qn[P[:, -1]] - Qn[P[:, :-1]].max(-1), 0.0) for i, P in enumerate(prefixes)]

        def exact_semigradient_objective(th):
            """sum_i sum_{a_1..a_i} prod_{j<i} sg(pi_j(a_j)) pi_i(a_i) u_i  (enumeration)."""
            pi = jnp.exp(_log_pi(th))
            pi_fixed = jax.lax.stop_gradient(pi)
            total = 0.0
            for i, (P, u) in enumerate(zip(prefixes, u_of_prefix)):
                w = pi[i, P[:, -1]]
                for j in range(i):
                    w = w * pi_fixed[j, P[:, j]]
                total = total + jnp.sum(w * u)
            return total

        exact = jax.jit(jax.grad(exact_semigradient_objective))(theta)
        for k in ("own", "shared"):
            np.testing.assert_allclose(-sampled[k], exact[k], rtol=1e-9, atol=1e-12)

        # and it is *not* the gradient of E[max] (the full gradient of the expected u_MU)
        def expected_max(th):
            A = jnp.asarray(_joint())
            lp = _log_pi(th)[jnp.arange(M), A].sum(-1)
            return jnp.sum(jnp.exp(lp) * Q[A].max(-1))

        full = jax.grad(expected_max)(theta)
        assert np.abs(np.asarray(full["own"]) - np.asarray(exact["own"])).max() > 1e-3


def test_max_score_gradient_mean_equals_gradient_of_expected_max():
    with jax.enable_x64(True):
        Q, theta = _problem(3)
        Q = Q.astype(jnp.float64)
        theta = jax.tree.map(lambda x: x.astype(jnp.float64), theta)

        def sample_loss(th, a):
            return obj.max_score_loss(Q[a][None], _log_pi(th)[jnp.arange(M), a][None])

        sampled = _enumerated_mean_grad(sample_loss, theta)

        def expected_max(th):
            A = jnp.asarray(_joint())
            lp = _log_pi(th)[jnp.arange(M), A].sum(-1)
            return jnp.sum(jnp.exp(lp) * Q[A].max(-1))

        exact = jax.grad(expected_max)(theta)
        for k in ("own", "shared"):
            np.testing.assert_allclose(-sampled[k], exact[k], rtol=1e-9, atol=1e-12)


def test_policy_score_gradient_mean_equals_gradient_of_expected_value():
    with jax.enable_x64(True):
        Q, theta = _problem(4)
        Q = Q.astype(jnp.float64)
        theta = jax.tree.map(lambda x: x.astype(jnp.float64), theta)

        def sample_loss(th, a):
            return obj.policy_score_loss(Q[a][None], _log_pi(th)[jnp.arange(M), a][None])

        sampled = _enumerated_mean_grad(sample_loss, theta)
        exact = jax.grad(lambda th: jnp.sum(jnp.exp(_log_pi(th)) @ Q))(theta)
        for k in ("own", "shared"):
            np.testing.assert_allclose(-sampled[k], exact[k], rtol=1e-9, atol=1e-12)


def test_leave_one_out_baseline_keeps_the_mean_gradient():
    """Two states in a batch, m = 2, K = 3: enumerate both states' candidates jointly."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(5)
        m, k = 2, 3
        Qs = jnp.asarray(rng.uniform(size=(2, k)))  # per state
        theta = jnp.asarray(rng.normal(size=(2, m, k)))  # per state logits
        A = np.asarray(list(itertools.product(range(k), repeat=2 * m))).reshape(-1, 2, m)

        def log_pi(th):
            return jax.nn.log_softmax(th, -1)

        def mean_grad(baseline, loss_fn):
            def one(a):
                p = jnp.exp(jnp.take_along_axis(log_pi(theta), a[..., None], -1)[..., 0].sum())
                q = jnp.take_along_axis(Qs[:, None, :].repeat(m, 1), a[..., None], -1)[..., 0]
                g = jax.grad(lambda th: loss_fn(q, jnp.take_along_axis(log_pi(th), a[..., None], -1)[..., 0], baseline))(theta)
                return p * g

            return jax.jit(jax.vmap(one))(jnp.asarray(A)).sum(0)

        for fn in (
            lambda q, lp, b: obj.mu_score_loss(q, lp, baseline=b),
            lambda q, lp, b: obj.max_score_loss(q, lp, baseline=b),
            lambda q, lp, b: obj.policy_score_loss(q, lp, baseline=b),
        ):
            np.testing.assert_allclose(mean_grad(True, fn), mean_grad(False, fn), rtol=1e-9, atol=1e-12)


def test_orig_estimator_applies_the_transform_to_q_times_logp():
    q = jnp.asarray([[0.2, 0.5, 0.4]])
    lp = jnp.asarray([[-1.0, -2.0, -0.1]])
    x = np.asarray(q * lp)[0]  # [-0.2, -1.0, -0.04]: only candidate 3 improves on the running max
    expected = x[0] + max(x[1] - x[0], 0) + max(x[2] - max(x[0], x[1]), 0)
    np.testing.assert_allclose(obj.mu_score_loss(q, lp, "orig"), -expected, rtol=1e-6)
    np.testing.assert_allclose(obj.max_score_loss(q, lp, "orig"), -x.max(), rtol=1e-6)


def test_diversity_categorical_matches_pairwise_disagreement():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(4, 3, 5))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    ref = np.mean([1.0 - np.sum(p[i, f] * p[j, f]) for i in range(4) for j in range(i + 1, 4) for f in range(3)])
    np.testing.assert_allclose(gen.diversity("categorical", {"logits": jnp.asarray(logits)}), ref, rtol=1e-5)
    same = jnp.broadcast_to(jnp.asarray([[100.0, 0, 0, 0, 0]]), (4, 1, 5))
    np.testing.assert_allclose(gen.diversity("categorical", {"logits": same}), 0.0, atol=1e-6)


def test_diversity_continuous_is_mean_distance_between_head_means():
    a = jnp.asarray([[2.0, 2.0], [1.0, 3.0], [5.0, 5.0]])
    b = jnp.asarray([[2.0, 2.0], [3.0, 1.0], [5.0, 5.0]])
    mu = np.asarray(a / (a + b))
    ref = np.mean([np.linalg.norm(mu[i] - mu[j]) for i in range(3) for j in range(i + 1, 3)])
    np.testing.assert_allclose(gen.diversity("beta", {"alpha": a, "beta": b}), ref, rtol=1e-5)


def test_categorical_log_prob_sums_factors():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(2, 3, 6))
    a = np.asarray([[0, 5, 2], [1, 1, 3]])
    lsm = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ref = [sum(lsm[i, f, a[i, f]] for f in range(3)) for i in range(2)]
    np.testing.assert_allclose(gen.log_prob("categorical", {"logits": jnp.asarray(logits)}, jnp.asarray(a)), ref, rtol=1e-5)


def test_beta_log_prob_matches_scipy():
    from scipy.stats import beta as sbeta

    a = np.asarray([[2.0, 3.5]])
    b = np.asarray([[4.0, 1.5]])
    x = np.asarray([[0.3, 0.8]])
    ref = sbeta.logpdf(x, a, b).sum(-1)
    got = gen.log_prob("beta", {"alpha": jnp.asarray(a), "beta": jnp.asarray(b)}, jnp.asarray(x))
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_patch_conv_equals_lax_convolution():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, 3))
    layer = gen.PatchConv(4)
    params = layer.init(jax.random.PRNGKey(1), x)
    k, b = params["params"]["kernel"], params["params"]["bias"]
    ref = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
    np.testing.assert_allclose(layer.apply(params, x), ref, rtol=1e-5, atol=1e-5)


def test_unknown_objective_raises():
    with pytest.raises(ValueError, match="unknown objective"):
        obj.score_loss("nope", jnp.zeros((1, 2)), jnp.zeros((1, 2)))
    with pytest.raises(ValueError, match="unknown estimator"):
        obj.mu_score_loss(jnp.zeros((1, 2)), jnp.zeros((1, 2)), "nope")


def test_spatial_gaussian_head_mean_is_the_soft_argmax_of_cell_centres():
    """head_layer='spatial': mean = sum_cells softmax(logits) * cell centre ((i+1/2)/H, (j+1/2)/W)."""
    net = gen.Generator(2, "gaussian", (2,), channels=3, head_layer="spatial")
    obs = jax.random.uniform(jax.random.PRNGKey(0), (4, 6, 1))
    params = net.init(jax.random.PRNGKey(1), obs)
    out = net.apply(params, obs)
    # recompute the per-cell logits with the network's own torso, then the soft-argmax in numpy
    torso = lambda p, x: jax.nn.relu(gen.PatchConv(3).apply({"params": p}, x))
    x = torso(params["params"]["PatchConv_1"], torso(params["params"]["PatchConv_0"], obs))
    d = params["params"]["Dense_0"]
    logits = np.asarray(x.reshape(24, 3) @ d["kernel"] + d["bias"] + params["params"]["cell_bias"])  # [24, 2]
    p = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
    i, j = np.meshgrid((np.arange(4) + 0.5) / 4, (np.arange(6) + 0.5) / 6, indexing="ij")
    ref = np.stack([p.T @ i.reshape(-1), p.T @ j.reshape(-1)], -1)
    np.testing.assert_allclose(out["mean"], ref, rtol=1e-5, atol=1e-6)
    assert out["log_std"].shape == (2, 2)


def test_spatial_categorical_head_has_one_logit_per_cell():
    net = gen.Generator(3, "categorical", (2, 20), channels=3, head_layer="spatial")
    obs = jnp.zeros((4, 5, 1))
    out = net.apply(net.init(jax.random.PRNGKey(0), obs), obs)
    assert out["logits"].shape == (3, 2, 20)
    with pytest.raises(ValueError, match="K = H \\* W"):
        bad = gen.Generator(3, "categorical", (2, 21), channels=3, head_layer="spatial")
        bad.init(jax.random.PRNGKey(0), obs)
