"""IAR's cheaper computation gives the same estimates: the split context term of the
couplings and the lazy candidate draw reproduce the plain computation's actions, correction
sets and log-probability estimates (and their gradients) on the same keys; the ELBO term
with gradients on g of its samples keeps its values and takes the mean of those g
per-sample gradients (autodiff per sample as the reference); the ``paper`` preset's options
act as documented (the policy gradient reaches the posterior; alpha stays at its init)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs_jax
from iar_jax.algo import IARA2CConfig, IARConfig, make_policy, preset
from ppo_jax.policy import Batch

SMALL = dict(flow_hidden=8, encoder_hidden=8, context_dim=4, flow_layers=1, posterior_layers=1, critic_hidden=(4,))


def _perturb(params, key, scale):
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)])


def _states(env_id, n, seed=0):
    env, env_params = envs_jax.make(env_id)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(seed), n), env_params)
    return env, env_params, obs, state


def test_split_context_and_lazy_candidates_reproduce_the_plain_computation_on_the_same_keys():
    """Old path (context concatenated per sample, all S_max candidates mapped) vs new path
    (context term once, candidates mapped only while needed), float64, same parameters and
    keys: the same executed actions, S_k, correction sets and weights, and the same
    surrogate log-probabilities and gradients. S = 1, S_max = 8 so that states double."""
    n = 16
    env, env_params, obs, state = _states("ERA-v5", n)
    keys = jax.random.split(jax.random.PRNGKey(3), n)
    common = dict(num_candidates=1, max_candidates=8, posterior_conditional=True, **SMALL)
    old = make_policy(IARConfig(split_context=False, lazy_candidates=False, **common), env, env_params)
    new = make_policy(IARConfig(split_context=True, lazy_candidates=True, **common), env, env_params)
    with jax.enable_x64(True):
        params = jax.jit(old.init)(jax.random.PRNGKey(1), obs[0])
        params = jax.tree.map(lambda x: x.astype(jnp.float64), _perturb(params, jax.random.PRNGKey(2), 0.2))

        def run(pol):
            acts = jax.vmap(pol.act, in_axes=(None, 0, 0, 0, None))(params, keys, obs, state, env_params)
            ev = lambda p: jax.vmap(pol.evaluate, in_axes=(None, 0, 0, 0, 0))(p, keys, obs, acts.action, acts.extras)
            lp, vjp = jax.vjp(lambda p: ev(p).log_prob, params)
            return acts, lp, vjp(jnp.ones_like(lp))[0]

        (a0, lp0, g0), (a1, lp1, g1) = jax.jit(lambda: (run(old), run(new)))()
        assert lp0.dtype == jnp.float64
    used = np.asarray(a1.metrics["candidates_used"])
    assert (used > 1).any() and (used == 1).any(), used  # both branches of the ladder exercised
    np.testing.assert_array_equal(np.asarray(a1.action), np.asarray(a0.action))
    np.testing.assert_array_equal(used, np.asarray(a0.metrics["candidates_used"]))
    for name in ("cand", "cand_w", "seed"):
        np.testing.assert_array_equal(np.asarray(a1.extras[name]), np.asarray(a0.extras[name]))
    np.testing.assert_allclose(np.asarray(a1.log_prob), np.asarray(a0.log_prob), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(lp1), np.asarray(lp0), rtol=1e-10, atol=1e-10)
    for x, y in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-8, atol=1e-10)
    assert float(jnp.abs(lp0).max()) > 1.0  # a non-trivial estimate (perturbed flows)


@pytest.mark.slow
def test_elbo_gradient_on_g_samples_keeps_the_values_and_averages_their_per_sample_gradients():
    """extra_loss with ``elbo_grad_samples`` = g: the same metrics (same keys) as with
    gradients on all n = ``alpha_target_samples`` samples; its ELBO gradient is the mean of
    the first g per-sample gradients of log w (the reference: the gradient of the mean of
    those g log-weights, all computed with gradients). The mean of g i.i.d. per-sample
    gradients is unbiased for the gradient of E[log w], as the mean of all n is."""
    n_states, n, g = 6, 12, 4
    env, env_params, obs, _ = _states("ERA-v1", n_states)
    batch = Batch(obs, jnp.zeros((n_states, 3), jnp.int32), *(jnp.zeros(n_states),) * 4, extras={})
    base = IARConfig(num_posterior_samples=4, alpha_target_samples=n, elbo_pairs="rollout", elbo_grad_samples=0, **SMALL)
    full = make_policy(base, env, env_params)
    part = make_policy(base.replace(elbo_grad_samples=g), env, env_params)
    params = _perturb(jax.jit(full.init)(jax.random.PRNGKey(1), obs[0]), jax.random.PRNGKey(2), 0.1)
    key = jax.random.PRNGKey(5)

    def lw_all(p):  # the (B, n) log-weights of extra_loss's pairs and keys, all with gradients
        _, k_w = jax.random.split(key)
        ctx = jax.vmap(lambda x: full.context(p, x))(obs.reshape(n_states, -1).astype(jnp.float32))
        acts = jax.vmap(full.layout.from_env)(batch.action)
        return jax.vmap(
            lambda k, c, a: full.log_weights(p, k, c, a[None], n, generator_grad=True, posterior_grad=True)[0]
        )(jax.random.split(k_w, n_states), ctx, acts)

    @jax.jit
    def run():
        m_full = full.extra_loss(params, key, batch)[1]
        (_, m_part), g_part = jax.value_and_grad(part.extra_loss, has_aux=True)(params, key, batch)
        return m_full, m_part, g_part, jax.grad(lambda q: -lw_all(q)[:, :g].mean())(params)

    m_full, m_part, g_part, ref = run()
    for k in m_full:
        np.testing.assert_allclose(float(m_part[k]), float(m_full[k]), rtol=1e-6, err_msg=k)
    for name in ("encoder", "flow", "posterior"):
        for x, y in zip(jax.tree.leaves(g_part[name]), jax.tree.leaves(ref[name])):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-4, atol=1e-6)


@pytest.mark.slow
def test_paper_preset_options_pg_reaches_the_posterior_and_alpha_stays_at_init():
    """``preset("paper")``: the original's options. With ``pg_posterior`` the surrogate's
    gradient reaches the posterior (zero without it); with ``alpha_objective="none"`` neither
    the surrogate nor ``extra_loss`` moves alpha (the original never optimises its network);
    the ELBO term then draws ``elbo_grad_samples`` = 1 sample; the critic reads the graph
    encoder's features. Slow (compiles the paper policy's act, evaluate and ELBO term)."""
    cfgs = preset("paper")
    assert isinstance(cfgs["ppo"], IARA2CConfig) and cfgs["iar"].rejection_coef == "paper"
    with pytest.raises(ValueError, match="unknown iar preset"):
        preset("original")
    n = 4
    env, env_params, obs, state = _states("ERA-v1", n)
    paper = cfgs["iar"].replace(elbo_step="loss", **SMALL)  # the ELBO term in the loss (elbo_step="buffer": test_iar_elbo_step)
    pol = make_policy(paper, env, env_params)
    ours = make_policy(paper.replace(pg_posterior=False), env, env_params)
    assert pol.elbo_samples == 1 and pol.elbo_grad_samples == 1
    params = _perturb(jax.jit(pol.init)(jax.random.PRNGKey(1), obs[0]), jax.random.PRNGKey(2), 0.1)
    keys = jax.random.split(jax.random.PRNGKey(3), n)

    @jax.jit
    def run(p):
        acts = jax.vmap(pol.act, in_axes=(None, 0, 0, 0, None))(p, keys, obs, state, env_params)
        batch = Batch(obs, acts.action, acts.log_prob, acts.value, jnp.ones(n), jnp.ones(n), acts.extras)
        ev = lambda q, x: jax.vmap(x.evaluate, in_axes=(None, 0, 0, 0, 0))(q, keys, obs, acts.action, acts.extras)
        pg = [jax.grad(lambda q: ev(q, x).log_prob.sum())(p) for x in (pol, ours)]
        return pg, jax.grad(lambda q: pol.extra_loss(q, keys[0], batch)[0])(p)

    (pg_paper, pg_ours), g_extra = run(params)
    amax = lambda tree: max(float(jnp.abs(x).max()) for x in jax.tree.leaves(tree))
    assert pol.encoder_kind == "gcn"  # the value loss trains the shared graph encoder
    g_value = jax.jit(jax.grad(lambda q: pol.value(q, obs[0])))(params)
    assert amax(g_value["encoder"]) > 0.0
    assert amax(pg_paper["posterior"]) > 0.0 and amax(pg_ours["posterior"]) == 0.0
    assert amax(pg_paper["flow"]) > 0.0 and amax(g_extra["posterior"]) > 0.0
    assert amax(pg_paper["alpha"]) == 0.0 and amax(pg_ours["alpha"]) == 0.0 and amax(g_extra["alpha"]) == 0.0


def test_graph_encoder_matches_a_numpy_dense_gcn_diffpool_on_era_observations():
    """``GraphEncoder`` (the original's GNN extractor, BatchNorm left out) against a numpy
    implementation of its equations: summed embeddings of the integer features (padding
    value -> 0), GCN layers relu((A with unit diagonal) x W + b), dense DiffPool to
    ceil(K/4) clusters, a GCN on the pooled graph, mean over clusters, Linear head. (The
    policy's critic reading the same features is checked in the paper-preset test.)"""
    from iar_jax.graph_encoder import GraphEncoder

    env, env_params, obs, state = _states("ERA-v1", 3)
    table = np.asarray(env.obs_table(obs))
    k, lr = table.shape[1], env.num_rsc
    enc = GraphEncoder(k, lr, hidden=16, out=8)
    params = _perturb(enc.init(jax.random.PRNGKey(0), obs[0]), jax.random.PRNGKey(1), 0.1)
    got = np.asarray(jax.jit(jax.vmap(lambda o: enc.apply(params, o)))(obs))
    p = jax.tree.map(np.asarray, params["params"])

    def gcn(x, a, layer):
        a = a.copy()
        np.fill_diagonal(a, 1.0)
        return np.maximum(a @ x @ layer["kernel"] + layer["bias"], 0.0)

    def gnn(x, a, net):
        return gcn(gcn(x, a, net["DenseGCN_0"]), a, net["DenseGCN_1"])

    for b in range(obs.shape[0]):
        feats, adj = table[b, :, : lr + 2].astype(int), table[b, :, lr + 2 :].astype(np.float64)
        x = np.zeros((k, 16))
        for node in range(k):
            cols = [(0, 2, 0)] + [(1, lr, 1 + j) for j in range(lr)] + [(2, 2, lr + 1)]
            for group, n_cls, col in cols:
                v = feats[node, col]
                if v < n_cls:
                    x[node] += p[f"embed_{group}"]["embedding"][v]
        s = gnn(x, adj, p["pool"])
        s = np.exp(s - s.max(axis=1, keepdims=True))
        s /= s.sum(axis=1, keepdims=True)
        assert s.shape == (k, int(np.ceil(k / 4)))
        z = gnn(x, adj, p["embed"])
        h = gnn(s.T @ z, s.T @ adj @ s, p["embed2"]).mean(axis=0)
        np.testing.assert_allclose(got[b], h @ p["head"]["kernel"] + p["head"]["bias"], rtol=2e-4, atol=1e-5)
