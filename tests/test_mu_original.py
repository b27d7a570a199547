"""The original code's variants (zfahmad/competition) offered as options, each against a hand
computation or numpy reimplementation of the original's TensorFlow code on a tiny case:
MAX (``max_obj.py``), the softmax objective (``softmax.py``), the policy baseline's loss
(``policy_gradient.py``), ``SimpleNetwork`` (joint softmax heads, linear convolutions) and
``SimplePolicyNetwork`` (batch-norm residual block)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mu_jax import generator as gen
from mu_jax import objectives as obj
from mu_jax.trainer import Config, make_trainer


def _lax_conv(x, k, b):
    return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b


def test_orig_max_gives_a_gradient_to_one_candidate_only():
    """max_obj.py: d/d logp of -mean_s max_i Q_i logp_i is -Q_k / B at k = argmax_i Q_i logp_i."""
    q = np.array([[0.2, 0.5, 0.4], [0.9, 0.1, 0.3]])
    lp = np.array([[-1.0, -2.0, -0.1], [-3.0, -0.5, -0.2]])
    g = jax.grad(lambda l: obj.max_score_loss(jnp.asarray(q), l, "orig"))(jnp.asarray(lp))
    ref = np.zeros_like(q)
    for s in range(2):
        k = np.argmax(q[s] * lp[s])
        ref[s, k] = -q[s, k] / 2
    np.testing.assert_allclose(g, ref, rtol=1e-6)
    # ours (paper estimator) weights every candidate's score by max_i Q_i
    g_ours = jax.grad(lambda l: obj.max_score_loss(jnp.asarray(q), l, "paper"))(jnp.asarray(lp))
    np.testing.assert_allclose(g_ours, -np.broadcast_to(q.max(-1, keepdims=True), q.shape) / 2, rtol=1e-6)


def test_softmax_objective_value_and_gradient_by_hand():
    """softmax.py: L = -mean_s max_i softmax(tau x)_i, x = Q log pi; dL/dlogp_j = -(1/B) s_k (1[j=k] - s_j) tau Q_j."""
    tau = 0.5
    q = np.array([[0.2, 0.5, 0.4], [0.9, 0.1, 0.3]])
    lp = np.array([[-1.0, -2.0, -0.1], [-3.0, -0.5, -0.2]])
    x = tau * q * lp
    s = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    k = s.argmax(-1)
    np.testing.assert_allclose(obj.softmax_score_loss(jnp.asarray(q), jnp.asarray(lp), tau), -s.max(-1).mean(), rtol=1e-6)
    ref = np.zeros_like(q)
    for b in range(2):
        for j in range(3):
            ref[b, j] = -0.5 * s[b, k[b]] * ((j == k[b]) - s[b, j]) * tau * q[b, j]
    g = jax.grad(lambda l: obj.score_loss("softmax", jnp.asarray(q), l, tau=tau))(jnp.asarray(lp))
    np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-8)
    assert jax.grad(lambda qq: obj.softmax_score_loss(qq, jnp.asarray(lp), tau))(jnp.asarray(q)).sum() == 0  # Q held fixed


def test_policy_orig_estimator_is_the_original_mu_loss_on_iid_samples():
    q = np.array([[0.2, 0.5, 0.4]])
    lp = np.array([[-1.0, -2.0, -0.1]])
    x = (q * lp)[0]
    expected = x[0] + max(x[1] - x[0], 0) + max(x[2] - max(x[0], x[1]), 0)
    np.testing.assert_allclose(obj.score_loss("policy", jnp.asarray(q), jnp.asarray(lp), estimator="orig"), -expected, rtol=1e-6)
    np.testing.assert_allclose(obj.score_loss("policy", jnp.asarray(q), jnp.asarray(lp)), -(q * lp).sum(), rtol=1e-6)


def test_joint_heads_are_one_softmax_over_candidates_and_cells():
    """networks.SimpleNetwork's head: p_f = softmax over m*K of feat @ W_f (no bias), reshaped
    [m, K]; log pi_i(a) = sum_f log p_f[i, a_f]; candidate i samples from p_f[i] normalised."""
    rng = np.random.default_rng(0)
    m, F, K, D = 3, 2, 4, 5
    feat, kern = rng.normal(size=(D,)), rng.normal(size=(F, m * K, D))
    z = np.einsum("d,fnd->fn", feat, kern)
    p = np.exp(z - z.max(-1, keepdims=True))
    p = (p / p.sum(-1, keepdims=True)).reshape(F, m, K)  # p_f[i, c]
    dist = gen.joint_heads(jnp.asarray(feat), jnp.asarray(kern), m, K)
    a = np.array([[0, 3], [2, 2], [1, 0]])  # [m, F]
    ref = [sum(np.log(p[f, i, a[i, f]]) for f in range(F)) for i in range(m)]
    np.testing.assert_allclose(gen.log_prob("categorical", dist, jnp.asarray(a)), ref, rtol=1e-5)
    cat = gen.heads("categorical", dist).distribution  # per-candidate sampling distribution
    np.testing.assert_allclose(cat.probs, np.transpose(p / p.sum(-1, keepdims=True), (1, 0, 2)), rtol=1e-5)


def test_orig_generator_is_linear_convs_then_joint_heads():
    """Reference forward from the original's layers: conv -> conv (no activation) -> flatten -> joint heads."""
    net = gen.OrigGenerator(3, (2, 16), channels=4)
    obs = jax.random.uniform(jax.random.PRNGKey(0), (2, 4, 4, 1))
    params = net.init(jax.random.PRNGKey(1), obs)
    P = params["params"]
    h = _lax_conv(obs, P["PatchConv_0"]["kernel"], P["PatchConv_0"]["bias"])
    h = _lax_conv(h, P["PatchConv_1"]["kernel"], P["PatchConv_1"]["bias"]).reshape(2, -1)
    z = np.einsum("bd,fnd->bfn", h, P["heads"])
    ref = np.transpose(jax.nn.log_softmax(z, -1).reshape(2, 2, 3, 16), (0, 2, 1, 3))
    np.testing.assert_allclose(net.apply(params, obs)["logits"], ref, rtol=1e-4, atol=1e-5)
    assert P["heads"].shape == (2, 48, 64)  # one bias-free kernel [m K, D] per facility


def test_orig_policy_network_batch_norm_residual_block():
    """networks.SimplePolicyNetwork with Keras batch norm (training: batch statistics over
    (B, H, W), eps 1e-3; running averages move by 1% of the batch statistics)."""
    net = gen.OrigPolicyNetwork((2, 9), channels=2)
    obs = jax.random.uniform(jax.random.PRNGKey(0), (3, 3, 3, 1))
    v = net.init(jax.random.PRNGKey(1), obs)
    P = jax.tree.map(np.asarray, v["params"])
    P = jax.tree.map(lambda x: x + np.random.default_rng(2).normal(scale=0.1, size=x.shape), P)  # non-trivial BN scale/bias
    v = {"params": P, "batch_stats": v["batch_stats"]}

    def bn(x, p):
        mu, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
        return (x - mu) / np.sqrt(var + 1e-3) * p["scale"] + p["bias"], mu, var

    x = np.maximum(_lax_conv(obs, P["PatchConv_0"]["kernel"], P["PatchConv_0"]["bias"]), 0)
    y, mu0, var0 = bn(x @ P["Dense_0"]["kernel"] + P["Dense_0"]["bias"], P["BatchNorm_0"])
    y, _, _ = bn(np.asarray(_lax_conv(y, P["PatchConv_1"]["kernel"], P["PatchConv_1"]["bias"])), P["BatchNorm_1"])
    y, _, _ = bn(y @ P["Dense_1"]["kernel"] + P["Dense_1"]["bias"], P["BatchNorm_2"])
    feat = np.maximum(x + y, 0).reshape(3, -1)
    z = np.einsum("bd,fkd->bfk", feat, P["heads"])
    ref = z - np.log(np.exp(z).sum(-1, keepdims=True))
    out, upd = net.apply(v, obs, train=True, mutable=["batch_stats"])
    assert out["logits"].shape == (3, 1, 2, 9)
    np.testing.assert_allclose(out["logits"][:, 0], ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(upd["batch_stats"]["BatchNorm_0"]["mean"], 0.01 * mu0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(upd["batch_stats"]["BatchNorm_0"]["var"], 0.99 + 0.01 * var0, rtol=1e-3)


def test_trainer_original_policy_updates_batch_stats():
    small = dict(num_candidates=3, batch_size=4, channels=2, eval_states=4, search_budget=6, total_steps=2)
    tr = make_trainer(Config(objective="policy", estimator="orig", network="orig", **small), "MU-location")
    s0 = tr.init(jax.random.PRNGKey(0))
    s1, m = jax.jit(tr.update)(s0)
    assert np.isfinite(float(m["loss"])) and "batch_stats" not in m
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), s0.params["batch_stats"], s1.params["batch_stats"])
    assert min(jax.tree.leaves(moved)) > 0
    assert jax.tree.structure(s1.opt_state) == jax.tree.structure(tr.optimizer.init({"params": s1.params["params"]}))
    with pytest.raises(ValueError, match="network"):
        make_trainer(Config(network="nope"), "MU-location")
    with pytest.raises(ValueError, match="categorical"):
        make_trainer(Config(network="orig"), "MU-peaks2d")
    with pytest.raises(ValueError, match="softmax"):
        make_trainer(Config(objective="softmax", baseline=True), "MU-location")
    with pytest.raises(ValueError, match="head_grad_samples"):
        make_trainer(Config(head_grad_samples=1), "MU-location")


@pytest.mark.slow
def test_trainer_original_objectives_run():
    small = dict(num_candidates=3, batch_size=4, channels=2, eval_states=4, search_budget=6, total_steps=2)
    for kw in (dict(objective="softmax", network="orig"), dict(objective="max", estimator="orig", network="orig"),
               dict(objective="mu", network="orig", head_grad_samples=2)):
        tr = make_trainer(Config(**kw, **small), "MU-location")
        _, m = jax.jit(lambda s: tr.run(s, 2))(tr.init(jax.random.PRNGKey(0)))
        assert np.all(np.isfinite(np.asarray(m["loss"])))


def test_sparse_head_backward_is_unbiased_and_exact_in_value():
    """gen.sampled_joint_log_prob: value = the dense joint log-prob; its gradient averaged over
    backward keys equals autodiff of the dense head (tiny case, 4000 keys)."""
    rng = np.random.default_rng(3)
    B, m, F, K, D = 2, 3, 2, 4, 5
    feat = jnp.asarray(rng.normal(size=(B, D)))
    kern = jnp.asarray(rng.normal(size=(F, m * K, D)) * 0.5)
    a = jnp.asarray(rng.integers(0, K, size=(B, m, F)))
    c = jnp.asarray(rng.normal(size=(B, m)))  # loss cotangent: L = sum c * logp

    def dense(feat, kern):
        d = jax.vmap(lambda x: gen.joint_heads(x, kern, m, K))(feat)
        return jax.vmap(lambda dd, aa: gen.log_prob("categorical", dd, aa))(d, a)

    def sparse(feat, kern, key):
        d = jax.vmap(lambda x: gen.joint_heads(x, kern, m, K))(feat)
        table = jnp.swapaxes(d["logits"], 1, 2).reshape(B, F, m * K)
        idx = jnp.arange(m)[None, :, None] * K + a
        return gen.sampled_joint_log_prob(feat, kern, (jax.lax.stop_gradient(table), idx), key, 2)

    np.testing.assert_allclose(sparse(feat, kern, jax.random.PRNGKey(0)), dense(feat, kern), rtol=1e-5)
    g_exact = jax.grad(lambda f, k: jnp.sum(c * dense(f, k)), argnums=(0, 1))(feat, kern)
    g_one = jax.grad(lambda f, k, key: jnp.sum(c * sparse(f, k, key)), argnums=(0, 1))
    gs = jax.jit(jax.vmap(g_one, in_axes=(None, None, 0)))(feat, kern, jax.random.split(jax.random.PRNGKey(1), 4000))
    for mean, exact in zip(jax.tree.leaves(jax.tree.map(lambda g: g.mean(0), gs)), jax.tree.leaves(g_exact)):
        scale = np.abs(np.asarray(exact)).max()
        np.testing.assert_allclose(mean, exact, atol=0.05 * scale)
    single = jax.tree.leaves(jax.tree.map(lambda g: g[0], gs))[1]
    assert np.mean(np.asarray(single) == 0) > 0.3  # sparse: most kernel rows untouched


def test_paper_preset_is_the_originals_budget_and_network():
    from mu_jax.algo import ALGORITHM

    cfg = ALGORITHM.presets["paper"]("MU-location", {})["mu"]
    assert (cfg.network, cfg.lr, cfg.total_steps, cfg.channels, cfg.batch_size, cfg.num_candidates) == ("orig", 1e-5, 80_000, 32, 32, 8)
    assert ALGORITHM.presets["paper"]("MU-peaks2d", {})["mu"].network == "ours"  # continuous domain: ours
