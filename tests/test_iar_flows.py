"""IAR's flow pieces against independent references: the soft threshold against autodiff
Jacobians, the flows' densities against the change of variables with jax.jacfwd, and the
sandwich log-probability against p(a|s) computed by quadrature and by sampling."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate, stats

from iar_jax.flows import (
    ConditionalFlow, ConditionalPosterior, CouplingStack, elbo_cubo, iwae, log_weights, normal_log_prob,
)
from iar_jax.soft_threshold import SoftThreshold, soft_threshold, soft_threshold_inverse, soft_threshold_rows

K = 5


@jax.jit
def _perturb(params, key, scale):
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)])


# ------------------------------------------------------------------ soft threshold (App. A.3)
def test_soft_threshold_argmax_is_the_class():
    a = jax.random.randint(jax.random.PRNGKey(1), (400,), 0, K)
    u = 2.5 * jax.random.normal(jax.random.PRNGKey(0), (400, K))
    v, _ = jax.vmap(soft_threshold)(u, a)
    np.testing.assert_array_equal(np.argmax(np.asarray(v), axis=1), np.asarray(a))
    # the class's own score is untouched
    np.testing.assert_array_equal(np.asarray(v[jnp.arange(400), a]), np.asarray(u[jnp.arange(400), a]))
    with jax.enable_x64(True):  # wider spreads: float32 rounds u_a - softplus(u_a - u_j) to u_a past u_j - u_a ~ 17
        u = 5.0 * jax.random.normal(jax.random.PRNGKey(2), (400, K), jnp.float64)
        v, _ = jax.vmap(soft_threshold)(u, a)
        np.testing.assert_array_equal(np.argmax(np.asarray(v), axis=1), np.asarray(a))


def test_soft_threshold_log_det_equals_autodiff_log_abs_det():
    with jax.enable_x64(True):
        for seed in range(6):
            u = jax.random.normal(jax.random.PRNGKey(seed), (K,), jnp.float64) * 2.0
            a = seed % K
            _, log_det = soft_threshold(u, a)
            jac = jax.jacfwd(lambda x: soft_threshold(x, a)[0])(u)
            ref = np.linalg.slogdet(np.asarray(jac))[1]
            np.testing.assert_allclose(float(log_det), ref, rtol=1e-10, atol=1e-10)
            # inverse: recovers u, its log-det is minus the forward one and matches autodiff too
            v, _ = soft_threshold(u, a)
            u_back, inv_log_det = soft_threshold_inverse(v, a)
            np.testing.assert_allclose(np.asarray(u_back), np.asarray(u), rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(float(inv_log_det), -ref, rtol=1e-9, atol=1e-9)
            jac_inv = jax.jacfwd(lambda y: soft_threshold_inverse(y, a)[0])(v)
            np.testing.assert_allclose(np.linalg.slogdet(np.asarray(jac_inv))[1], -ref, rtol=1e-9, atol=1e-9)


def test_soft_threshold_rows_sums_the_rows_log_dets():
    u = jax.random.normal(jax.random.PRNGKey(3), (3, K))
    a = jnp.array([0, 4, 2])
    v, log_det = soft_threshold_rows(u, a)
    jac = jax.jacfwd(lambda x: soft_threshold_rows(x.reshape(3, K), a)[0].reshape(-1))(u.reshape(-1))
    np.testing.assert_allclose(float(log_det), np.linalg.slogdet(np.asarray(jac, np.float64))[1], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.argmax(np.asarray(v), axis=1), np.asarray(a))


def test_soft_threshold_is_a_distrax_bijector_consistent_with_distraxs_own_composition():
    """The standard bijector checks: forward_and_log_det vs inverse_and_log_det (round trip,
    opposite log-dets), distrax.Inverse, distrax.Block over rows against autodiff Jacobians,
    and distrax.Transformed's density against the change of variables done by hand."""
    with jax.enable_x64(True):
        u = 2.0 * jax.random.normal(jax.random.PRNGKey(5), (3, K), jnp.float64)
        a = jnp.array([1, 4, 0])

        @jax.jit
        def pieces(u):
            thr = SoftThreshold(a)  # a batch of 3 rows, one class each
            assert isinstance(thr, distrax.Bijector) and thr.event_ndims_in == thr.event_ndims_out == 1
            v, fldj = thr.forward_and_log_det(u)
            out = dict(v=v, fldj=fldj, fwd=thr.forward(u), inv=thr.inverse_and_log_det(v),
                       ildj=thr.inverse_log_det_jacobian(v), inverse=distrax.Inverse(thr).forward_and_log_det(v))
            rows = distrax.Block(thr, 1)  # one log-det for the (3, K) event
            out["rows"] = rows.forward_and_log_det(u)[1], rows.inverse_and_log_det(v)[1]
            out["jac"] = jax.jacfwd(lambda x: rows.forward(x.reshape(3, K)).reshape(-1))(u.reshape(-1))
            out["jac_inv"] = jax.jacfwd(lambda y: rows.inverse(y.reshape(3, K)).reshape(-1))(v.reshape(-1))
            base = distrax.Independent(distrax.Normal(jnp.zeros((3, K)), jnp.ones((3, K))), 1)
            dist = distrax.Transformed(base, thr)  # standard normal rows pushed through the threshold
            out["log_prob"] = dist.log_prob(v)
            out["sample"] = dist.sample(seed=jax.random.PRNGKey(6), sample_shape=(50,))  # (50, 3, K)
            return out

        o = jax.tree.map(np.asarray, pieces(u))
        np.testing.assert_allclose(o["inv"][0], np.asarray(u), atol=1e-9)
        np.testing.assert_allclose(o["inv"][1], -o["fldj"], atol=1e-12)
        np.testing.assert_array_equal(o["fwd"], o["v"])
        np.testing.assert_allclose(o["ildj"], -o["fldj"], atol=1e-12)
        np.testing.assert_allclose(o["inverse"][0], np.asarray(u), atol=1e-9)
        np.testing.assert_allclose(o["inverse"][1], o["inv"][1], atol=1e-12)
        np.testing.assert_allclose(o["rows"][0], np.linalg.slogdet(o["jac"])[1], rtol=1e-10)
        np.testing.assert_allclose(o["rows"][1], np.linalg.slogdet(o["jac_inv"])[1], rtol=1e-10)
        ref = stats.norm.logpdf(np.asarray(u)).sum(-1) - o["fldj"]
        np.testing.assert_allclose(o["log_prob"], ref, rtol=1e-10)
        np.testing.assert_array_equal(np.argmax(o["sample"], -1), np.broadcast_to(np.asarray(a), (50, 3)))


def test_coupling_stack_is_a_distrax_chain_with_autodiff_log_det():
    """ActNorm -> SplitCoupling -> permutation as one distrax.Chain: its log-det equals
    autodiff's, and forward / inverse are each other's inverse with opposite log-dets."""
    with jax.enable_x64(True):
        dim, ctx = 5, jnp.linspace(-1.0, 1.0, 3, dtype=jnp.float64)
        stack = CouplingStack(dim, num_layers=2, hidden=8, seed=3)
        shapes = jax.eval_shape(stack.init, jax.random.PRNGKey(0), jnp.zeros(dim), ctx)
        rng = np.random.default_rng(1)  # random parameters: away from the identity init
        params = jax.tree.map(lambda x: jnp.asarray(0.3 * rng.standard_normal(x.shape), jnp.float64), shapes)
        x = jax.random.normal(jax.random.PRNGKey(2), (dim,), jnp.float64)

        @jax.jit
        def pieces(x):
            assert isinstance(stack.apply(params, ctx, method=lambda m, c: m.bijector(c)), distrax.Chain)
            fwd = lambda z: stack.apply(params, z, ctx, method=CouplingStack.forward)
            y, ld = fwd(x)
            x_back, ild = stack.apply(params, y, ctx, method=CouplingStack.inverse)
            return y, ld, x_back, ild, jax.jacfwd(lambda z: fwd(z)[0])(x)

        y, ld, x_back, ild, jac = pieces(x)
        np.testing.assert_allclose(float(ld), np.linalg.slogdet(np.asarray(jac))[1], rtol=1e-10)
        np.testing.assert_allclose(np.asarray(x_back), np.asarray(x), atol=1e-10)
        np.testing.assert_allclose(float(ild), -float(ld), rtol=1e-10)
        assert abs(float(ld)) > 0.1  # the random parameters make the map far from volume-preserving


# ------------------------------------------------------------------ flows: change of variables
def test_generator_log_density_equals_change_of_variables_with_autodiff_jacobian():
    with jax.enable_x64(True):
        dim, ctx = 6, jnp.linspace(-1.0, 1.0, 5)
        flow = ConditionalFlow(dim, num_layers=3, hidden=16)
        params = jax.jit(flow.init)(jax.random.PRNGKey(0), jnp.zeros(dim), ctx)
        params = _perturb(params, jax.random.PRNGKey(1), 0.3)  # away from the identity init
        params = jax.tree.map(lambda x: x.astype(jnp.float64), params)
        ctx = ctx.astype(jnp.float64)
        mu, log_sigma = jax.jit(lambda p: flow.apply(p, ctx, method=ConditionalFlow.base_params))(params)
        fwd = lambda x: flow.apply(params, x, ctx, method=ConditionalFlow.forward)[0]

        @jax.jit
        def pieces(z):
            u = fwd(z)
            z_back, _ = flow.apply(params, u, ctx, method=ConditionalFlow.inverse)
            return u, jax.jacfwd(fwd)(z), flow.apply(params, u, ctx, method=ConditionalFlow.log_prob), z_back

        base = stats.multivariate_normal(np.asarray(mu), np.diag(np.exp(2 * np.asarray(log_sigma))))
        for seed in range(3):
            z = mu + jnp.exp(log_sigma) * jax.random.normal(jax.random.PRNGKey(10 + seed), (dim,), jnp.float64)
            u, jac, got, z_back = pieces(z)
            ref = float(base.logpdf(np.asarray(z))) - np.linalg.slogdet(np.asarray(jac))[1]
            np.testing.assert_allclose(float(got), ref, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(np.asarray(z_back), np.asarray(z), atol=1e-9)


@pytest.mark.parametrize("conditional,coupling_hidden", [(True, 0), (False, 8)])
def test_posterior_log_density_equals_change_of_variables_through_the_threshold(conditional, coupling_hidden):
    """Also the original's posterior: unconditional couplings of their own width."""
    with jax.enable_x64(True):
        num_rsc, num_cls = 2, 3
        dim, ctx, a = num_rsc * num_cls, jnp.linspace(-1.0, 1.0, 5, dtype=jnp.float64), jnp.array([2, 0])
        post = ConditionalPosterior(
            num_rsc, num_cls, hidden=coupling_hidden or 16, context_dim=8, num_layers=2,
            context_hidden=16, conditional_couplings=conditional,
        )
        params = jax.jit(post.init)(jax.random.PRNGKey(0), ctx, jnp.zeros(dim), a)
        h1 = params["params"]["stack"]["couplings_0"]["h1"]["kernel"]  # rows: x_1 (+ the context)
        assert h1.shape == (dim // 2 + (8 if conditional else 0), coupling_hidden or 16)
        params = jax.tree.map(lambda x: x.astype(jnp.float64), _perturb(params, jax.random.PRNGKey(2), 0.3))
        eps = jax.random.normal(jax.random.PRNGKey(4), (dim,), jnp.float64)

        @jax.jit
        def pieces(e):
            h = post.apply(params, ctx, a, method=ConditionalPosterior.context)
            sample = lambda x: post.apply(params, h, x, a, method=ConditionalPosterior.sample)
            v, log_q = sample(e)
            jac = jax.jacfwd(lambda x: sample(x)[0].reshape(-1))(e)
            return v, log_q, jac, post.apply(params, h, v, a, method=ConditionalPosterior.log_prob)

        v, log_q, jac, log_q_inv = pieces(eps)
        ref = float(stats.norm.logpdf(np.asarray(eps)).sum()) - np.linalg.slogdet(np.asarray(jac))[1]
        np.testing.assert_allclose(float(log_q), ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(np.argmax(np.asarray(v), axis=1), np.asarray(a))
        np.testing.assert_allclose(float(log_q_inv), ref, rtol=1e-9)  # density of a given v, by inversion


# ------------------------------------------------------------------ sandwich vs exact p(a|s)
def _gaussian_generator_and_posterior(mu, log_sigma, q_mu, q_log_sigma):
    """L = 1, K = len(mu): a flow with no coupling layer (its Gaussian base with the given
    mean / log-std for every state) and a Gaussian posterior with the given ones."""
    num_cls = len(mu)
    ctx = jnp.zeros(3)
    flow = ConditionalFlow(num_cls, num_layers=0, hidden=8)
    fp = {"params": {"base": {"kernel": jnp.zeros((3, 2 * num_cls)), "bias": jnp.concatenate([mu, log_sigma])}}}
    post = ConditionalPosterior(1, num_cls, hidden=8, context_dim=4, num_layers=0)
    qp = jax.jit(post.init)(jax.random.PRNGKey(1), ctx, jnp.zeros(num_cls), jnp.array([0]))
    qp["params"]["gauss"] = {"kernel": jnp.zeros((4, 2 * num_cls)), "bias": jnp.concatenate([q_mu, q_log_sigma])}
    return flow, fp, post, qp, ctx


def _exact_log_p(mu, sigma, a):
    """log P(argmax u = a), u_k ~ N(mu_k, sigma_k^2) independent, by quadrature."""
    others = [j for j in range(len(mu)) if j != a]
    f = lambda x: stats.norm.pdf(x, mu[a], sigma[a]) * np.prod([stats.norm.cdf((x - mu[j]) / sigma[j]) for j in others])
    val, _ = integrate.quad(f, mu[a] - 12 * sigma[a], mu[a] + 12 * sigma[a], epsabs=1e-12)
    return np.log(val)


def test_two_class_closed_form_matches_quadrature():
    mu, sigma = np.array([0.3, -0.5]), np.array([1.2, 0.7])
    closed = stats.norm.logcdf((mu[0] - mu[1]) / np.hypot(*sigma))
    assert abs(_exact_log_p(mu, sigma, 0) - closed) < 1e-8


def test_elbo_below_and_cubo_above_the_exact_log_probability_and_iwae_converges():
    mu, log_sigma = jnp.array([0.4, -0.3, 0.1]), jnp.array([0.0, -0.4, 0.3])
    q_mu, q_log_sigma = jnp.array([0.2, 0.0, -0.2]), jnp.array([0.3, 0.2, 0.4])  # a deliberately rough q
    flow, fp, post, qp, ctx = _gaussian_generator_and_posterior(mu, log_sigma, q_mu, q_log_sigma)
    weights = jax.jit(lambda a, e: log_weights(flow, fp, post, qp, ctx, a, e))
    for a in range(3):
        exact = _exact_log_p(np.asarray(mu), np.exp(np.asarray(log_sigma)), a)
        eps = jax.random.normal(jax.random.PRNGKey(a), (40_000, 3))
        lw = np.asarray(weights(jnp.array([a]), eps), np.float64)
        elbo, cubo = elbo_cubo(jnp.asarray(lw))
        se = lw.std() / np.sqrt(lw.size)
        assert float(elbo) < exact - 5 * se, (a, float(elbo), exact)
        assert float(cubo) > exact + 0.01, (a, float(cubo), exact)
        assert abs(float(iwae(jnp.asarray(lw))) - exact) < 0.01, (a, float(iwae(jnp.asarray(lw))), exact)
        # the bracket [ELBO_N, CUBO_N] contains log p(a) more and more often as N grows
        hits = []
        for n in (1, 4, 64, 800):
            reps = lw[: 50 * n].reshape(50, n)
            e, c = elbo_cubo(jnp.asarray(reps))
            hits.append(float(np.mean((np.asarray(e) <= exact) & (exact <= np.asarray(c)))))
        assert hits[0] == 0.0 and hits[1] < hits[2] <= hits[3] and hits[3] > 0.95, (a, hits)


def test_sandwich_with_a_calibrated_alpha_beats_either_bound_and_alpha_one_half():
    """Fitting alpha to the many-sample IWAE target (the policy's calibration objective)
    moves it and makes the N-sample sandwich a better estimate of the exact log p(a|s)
    (mean squared error over repeats) than ELBO, CUBO or alpha = 0.5."""
    mu, log_sigma = jnp.array([0.4, -0.3, 0.1]), jnp.array([0.0, -0.4, 0.3])
    q_mu, q_log_sigma = jnp.array([0.2, 0.0, -0.2]), jnp.array([0.3, 0.2, 0.4])
    flow, fp, post, qp, ctx = _gaussian_generator_and_posterior(mu, log_sigma, q_mu, q_log_sigma)
    a, n, m = 1, 8, 1024
    exact = _exact_log_p(np.asarray(mu), np.exp(np.asarray(log_sigma)), a)
    eps = jax.random.normal(jax.random.PRNGKey(7), (128, m, 3))
    lw = jax.jit(jax.vmap(lambda e: log_weights(flow, fp, post, qp, ctx, jnp.array([a]), e)))(eps)  # (128, m)
    elbo, cubo = elbo_cubo(lw[:, :n])
    target = iwae(lw)

    sandwich = lambda al: al * elbo + (1 - al) * cubo
    loss = lambda logit: jnp.mean(jnp.square(sandwich(jax.nn.sigmoid(logit)) - target))
    opt = optax.adam(0.05)

    def step(carry, _):
        logit, state = carry
        upd, state = opt.update(jax.grad(loss)(logit), state)
        return (optax.apply_updates(logit, upd), state), None

    (logit, _), _ = jax.jit(lambda l0: jax.lax.scan(step, (l0, opt.init(l0)), None, length=200))(jnp.zeros(()))
    alpha = float(jax.nn.sigmoid(logit))
    mse = lambda x: float(jnp.mean(jnp.square(x - exact)))
    assert abs(alpha - 0.5) > 0.05  # it moved
    assert mse(sandwich(alpha)) < min(mse(elbo), mse(cubo), mse(sandwich(0.5)))


def test_normal_log_prob_matches_scipy():
    x, mu, ls = np.array([0.3, -1.0]), np.array([0.0, 0.5]), np.array([0.2, -0.3])
    ref = stats.norm.logpdf(x, mu, np.exp(ls)).sum()
    np.testing.assert_allclose(float(normal_log_prob(jnp.asarray(x), jnp.asarray(mu), jnp.asarray(ls))), ref, rtol=1e-5)
