"""encoder="cnn" (NatureCNN, the IAR original's Pistonball features extractor): the module
against a numpy forward pass, its shape errors, and the IAR / MASK policies on Pistonball's
image observation (iar_jax/cnn_encoder.py)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from envs_jax.registry import make
from iar_jax.baselines import MaskPolicy
from iar_jax.cnn_encoder import CNNEncoder
from iar_jax.policy import IARPolicy

IMAGE = (96, 96, 1)
CTX = 8  # context_dim everywhere: one CNN parameter shape (its orthogonal init is the slow part)


@pytest.fixture(scope="module")
def mask_setup():
    """MaskPolicy(encoder="cnn") on Pistonball-image-cstr-v1, params, and a state with both
    valid and invalid joint actions (validity enumerated over all 3^5 actions by env.is_valid)."""
    env, p = make("Pistonball-image-cstr-v1")
    pol = MaskPolicy(env, p, context_dim=CTX, encoder="cnn")
    table = np.array(list(itertools.product(range(3), repeat=5)))
    reset = jax.jit(env.reset)
    is_valid = jax.jit(jax.vmap(env.is_valid, in_axes=(None, 0, None)))
    for seed in range(20):
        obs, st = reset(jax.random.PRNGKey(seed), p)
        valid = np.asarray(is_valid(st, jnp.asarray(table), p))
        if 0 < valid.sum() < 243:
            break
    params = jax.jit(pol.init)(jax.random.PRNGKey(0), obs, st, p)
    return env, p, pol, obs, st, params, table, valid


def _numpy_nature_cnn(params, x):
    """Independent forward pass: VALID cross-correlations (kernel (kh, kw, in, out)) with
    strides 4, 2, 1, ReLU, flatten in (H, W, C) order, Dense, ReLU (float64)."""
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params["params"])
    h = np.asarray(x, np.float64).reshape(IMAGE)
    for name, stride in (("Conv_0", 4), ("Conv_1", 2), ("Conv_2", 1)):
        k, b = p[name]["kernel"], p[name]["bias"]
        win = sliding_window_view(h, k.shape[:2], axis=(0, 1))[::stride, ::stride]  # (oh, ow, C, kh, kw)
        h = np.maximum(np.einsum("hwcij,ijco->hwo", win, k) + b, 0.0)
    assert h.shape == (8, 8, 64)  # NatureCNN on 96 x 96: 23 -> 10 -> 8
    return np.maximum(h.reshape(-1) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"], 0.0)


def test_cnn_encoder_matches_numpy_reference(mask_setup):
    enc = CNNEncoder(IMAGE, features=CTX)
    x = jax.random.uniform(jax.random.PRNGKey(0), IMAGE)
    params = mask_setup[5]["encoder"]  # NatureCNN parameters as initialised by the policy
    # random biases too, so the reference checks them (init gives zeros)
    leaves, tree = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
    params = jax.tree_util.tree_unflatten(tree, [
        0.1 * jax.random.normal(k, v.shape) if "bias" in jax.tree_util.keystr(path) else v
        for k, (path, v) in zip(keys, leaves)
    ])
    ref = _numpy_nature_cnn(params, x)
    out = enc.apply(params, x)
    assert out.shape == (CTX,)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-4, atol=1e-5)
    assert (ref > 0).any()  # not all units dead: the comparison has content
    np.testing.assert_allclose(np.asarray(enc.apply(params, x.reshape(-1))), ref, rtol=1e-4, atol=1e-5)  # flat obs


@pytest.mark.parametrize("shape", [(96 * 96 + 1,), (96, 96, 3), (48, 48, 1)])
def test_cnn_encoder_wrong_shape_names_expected(shape, mask_setup):
    enc = CNNEncoder(IMAGE, features=CTX)
    params = mask_setup[5]["encoder"]
    with pytest.raises(ValueError, match=r"\(96, 96, 1\).*9216"):
        enc.apply(params, jnp.zeros(shape))


@pytest.mark.parametrize("env_id", ["ERA-v1", "Pistonball-v1"])
@pytest.mark.parametrize("cls", [IARPolicy, MaskPolicy])
def test_cnn_on_non_image_env_raises(env_id, cls):
    env, p = make(env_id)
    with pytest.raises(ValueError, match=r"encoder='cnn'.*image observation"):
        cls(env, p, encoder="cnn")


def test_mask_cnn_probabilities_over_enumerated_valid_actions(mask_setup):
    """Pistonball-image-cstr-v1 (5 pistons, all constrained): the mask equals the env's
    is_valid over all 3^5 = 243 joint actions, enumerated here; pi sums to 1 over them and
    is 0 elsewhere; act / evaluate agree with the enumerated table; the value is the shared
    features' critic."""
    env, p, pol, obs, st, params, table, valid = mask_setup
    assert 0 < valid.sum() < 243
    assert obs.shape == IMAGE
    assert set(params) == {"encoder", "actor", "critic"}
    out = pol.act(params, jax.random.PRNGKey(1), obs, st, p)
    assert out.action.shape == (5,) and np.isfinite(out.log_prob) and np.ndim(out.value) == 0
    # the policy's joint-action table vs the enumeration
    rows = {tuple(a): i for i, a in enumerate(np.asarray(pol.layout.to_env(pol.actions)).reshape(243, 5).tolist())}
    assert sorted(rows) == sorted(map(tuple, table.tolist()))
    mask = np.asarray(out.extras["mask"])
    np.testing.assert_array_equal(mask[[rows[tuple(a)] for a in table.tolist()]], valid)
    logp = np.asarray(pol.masked_log_probs(params, obs, jnp.asarray(mask)), np.float64)
    prob = np.exp(logp)
    np.testing.assert_allclose(prob[mask].sum(), 1.0, rtol=1e-5)
    assert (prob[~mask] == 0).all() and np.isfinite(logp[mask]).all()
    assert bool(env.is_valid(st, out.action, p))
    ev = pol.evaluate(params, jax.random.PRNGKey(2), obs, out.action, out.extras)
    i = rows[tuple(np.asarray(out.action).tolist())]
    np.testing.assert_allclose(float(ev.log_prob), logp[i], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(out.log_prob), logp[i], rtol=1e-5, atol=1e-6)
    assert np.isfinite(float(ev.entropy)) and 0 < float(ev.entropy) <= np.log(valid.sum()) + 1e-5


def test_iar_cnn_context_and_shared_critic(mask_setup):
    """CI variant (the full init / act / evaluate: the slow test below and the policy
    contract's ``iar-cnn``): IARPolicy(encoder="cnn")'s context is NatureCNN of the flat
    image, (context_dim,), and its value is the critic MLP(64 tanh -> 1) on that context."""
    env, p, _, obs, st, mask_params, _, _ = mask_setup
    env_img, p_img = make("Pistonball-image-v1")
    pol = IARPolicy(env_img, p_img, flow_hidden=8, context_dim=CTX, flow_layers=1, posterior_layers=1,
                    encoder="cnn", num_candidates=4, num_posterior_samples=2, alpha_target_samples=2)
    assert isinstance(pol.encoder, CNNEncoder) and tuple(pol.encoder.image_shape) == IMAGE
    enc = mask_params["encoder"]  # same module and shapes as IARPolicy's encoder
    ctx = pol.context({"encoder": enc}, obs.reshape(-1))
    assert ctx.shape == (CTX,)
    ref = _numpy_nature_cnn(enc, obs)
    np.testing.assert_allclose(np.asarray(ctx), ref, rtol=1e-4, atol=1e-5)
    critic = pol.critic.init(jax.random.PRNGKey(3), ctx)
    v = pol.value({"encoder": enc, "critic": critic}, obs)
    k = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), critic["params"])
    h = np.tanh(ref @ k["Dense_0"]["kernel"] + k["Dense_0"]["bias"])
    np.testing.assert_allclose(float(v), (h @ k["Dense_1"]["kernel"] + k["Dense_1"]["bias"])[0], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_iar_cnn_act_evaluate():
    env, p = make("Pistonball-image-cstr-v1")
    pol = IARPolicy(env, p, flow_hidden=16, context_dim=8, flow_layers=1, posterior_layers=1, encoder="cnn",
                    num_candidates=8, num_posterior_samples=2, alpha_target_samples=2)
    obs, st = env.reset(jax.random.PRNGKey(0), p)
    params = pol.init(jax.random.PRNGKey(1), obs, st, p)
    out = jax.jit(pol.act)(params, jax.random.PRNGKey(2), obs, st, p)
    assert out.action.shape == (5,) and np.isfinite(float(out.log_prob)) and np.isfinite(float(out.value))
    ev = jax.jit(pol.evaluate)(params, jax.random.PRNGKey(3), obs, out.action, out.extras)
    assert np.ndim(ev.log_prob) == 0 and np.isfinite(float(ev.log_prob)) and np.isfinite(float(ev.value))
