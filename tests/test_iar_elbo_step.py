"""The original's separate ELBO step (``IARConfig(elbo_step="buffer")``, ``iar_jax.elbo_step``):
the observation buffer is the original's FIFO (a numpy copy of its ``BufferSingleAttr.add``
as reference); nothing trains while the buffer fills, then ``pretrain_iters + 1`` steps, then
one per update (in the engine); one step is the one-sample ELBO in bits per action dimension
on states drawn without replacement, with gradient-norm clip 1.0 and TF-style RMSprop written
out in numpy, and moves only the parameters it trains."""

import math
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs_jax
from iar_jax.algo import IARA2CConfig, IARConfig, build, make_policy
from iar_jax.elbo_step import ELBOStep, buffer_add, num_elbo_steps
from iar_jax.flows import log_weights
from ppo_jax.update import UpdateState

SMALL = dict(flow_hidden=8, encoder_hidden=8, context_dim=4, flow_layers=1, posterior_layers=1, critic_hidden=(4,),
             num_candidates=2, max_candidates=4, num_posterior_samples=1, alpha_mode="static",
             alpha_objective="none")
TINY = {**SMALL, "flow_layers": 0, "posterior_layers": 0}  # Gaussian generator and posterior: cheap to compile


class _OriginalBuffer:
    """The original's ``BufferSingleAttr.add``: concatenate, keep the last ``size`` rows."""

    def __init__(self, size):
        self.size, self.attr, self.full = size, None, False

    def add(self, x):
        self.attr = x if self.attr is None else np.concatenate([self.attr, x])
        self.attr = self.attr[-self.size:]
        self.full = self.full or len(self.attr) == self.size


def test_buffer_is_the_originals_fifo_and_steps_start_when_it_is_full():
    size, ref = 8, _OriginalBuffer(8)
    buf, count = jnp.zeros((size, 2, 3)), jnp.zeros((), jnp.int32)
    rng = np.random.default_rng(0)
    steps = []
    for b in (3, 3, 3, 5, 3, 11, 2):
        x = rng.normal(size=(b, 2, 3)).astype(np.float32)
        before = count
        buf, count = buffer_add(buf, count, jnp.asarray(x))
        ref.add(x)
        n = min(int(count), size)
        np.testing.assert_array_equal(np.asarray(buf)[size - n:], ref.attr)
        assert (int(count) >= size) == ref.full
        steps.append(int(num_elbo_steps(before, count, size, 10)))
    assert steps == [0, 0, 11, 1, 1, 1, 1]


def _tf_rmsprop_step(params, grads, lr=3e-4, decay=0.99, eps=1e-5, clip=1.0):
    """Hand-written: torch's clip_grad_norm_ then SB3's RMSpropTFLike (accumulator from 1)."""
    leaves = jax.tree.leaves(grads)
    norm = math.sqrt(sum(float(np.sum(np.square(np.asarray(g, np.float64)))) for g in leaves))
    scale = min(1.0, clip / (norm + 1e-6))

    def one(p, g):
        g = np.asarray(g, np.float64) * scale
        nu = decay * 1.0 + (1 - decay) * g * g
        return np.asarray(p, np.float64) - lr * g / np.sqrt(nu + eps)

    return jax.tree.map(one, params, grads)


def test_one_step_is_the_one_sample_bpd_elbo_with_clipped_tf_rmsprop_and_moves_only_its_parameters():
    env, env_params = envs_jax.make("ERA-v1")
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 16), env_params)
    policy = make_policy(IARConfig(**TINY), env, env_params)
    params = policy.init(jax.random.PRNGKey(1), obs[0])
    key = jax.random.PRNGKey(7)
    L, D = policy.layout.num_rsc, policy.layout.dim

    def reference_loss(p, k_loss, states):
        """-(1/n) sum_s [log p(v_s|s) - log q(v_s|a_s, s)] / (L ln 2), a_s ~ p(.|s), v_s ~ q."""
        k_a, k_w = jax.random.split(k_loss)
        n = states.shape[0]
        ctx = jax.vmap(lambda x: policy.encoder.apply(p["encoder"], x.reshape(-1)))(states)
        ctx = jax.lax.stop_gradient(ctx)
        acts = jax.vmap(lambda k, c: policy.sample_actions(jax.lax.stop_gradient(p), k, c, 1)[0])(jax.random.split(k_a, n), ctx)
        eps = jax.vmap(lambda k: jax.random.normal(k, (1, 1, D))[0])(jax.random.split(k_w, n))
        lw = jax.vmap(lambda c, a, e: log_weights(policy.flow, p["flow"], policy.posterior, p["posterior"], c, a, e))(ctx, acts, eps)
        return -jnp.mean(lw) / (L * math.log(2.0))

    rule = ELBOStep(policy, buffer_size=16, batch_size=8, params="flow")  # the original's default
    groups = ("flow", "posterior")
    opt_state = rule.optimizer.init(rule.subset(params))
    new, _, loss = jax.jit(rule.elbo_step)(params, opt_state, key, obs)

    k_idx, k_loss = jax.random.split(key)
    idx = np.asarray(jax.random.choice(k_idx, 16, (8,), replace=False))
    assert len(set(idx.tolist())) == 8  # without replacement
    sub = {g: params[g] for g in groups}
    ref_loss, grads = jax.jit(jax.value_and_grad(lambda s: reference_loss({**params, **s}, k_loss, obs[idx])))(sub)
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-5)
    expected = _tf_rmsprop_step(sub, grads)
    for name in params:
        if name in groups:
            jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-7),
                         new[name], expected[name])
            assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new[name]), jax.tree.leaves(params[name])))
        else:  # encoder, critic, alpha
            jax.tree.map(np.testing.assert_array_equal, new[name], params[name])


class _PlusOne(ELBOStep):
    """The rule with the A2C epochs replaced by 'every parameter + 1' (to see which update ran)."""

    def epochs(self, engine, ustate, batch, stats, key, step=None):
        moved = ustate.replace(params=jax.tree.map(lambda x: x + 1.0, ustate.params))
        return moved, {"loss": jnp.zeros((1, 1)), "nonfinite": jnp.zeros((1, 1))}, {}


def test_rule_trains_nothing_during_warm_up_then_pretrains_then_steps_once_per_update():
    """Buffer 8, 4 observations per update, pre-training 2, ``params="posterior"`` (the
    original's elbo_Q): update 1 moves nothing; update 2 (fills the buffer) drops the A2C step
    and takes 2 + 1 ELBO steps that move only the posterior; update 3 takes the A2C step (+1
    everywhere) and one ELBO step (the posterior moves further, the rest by exactly +1)."""
    env, env_params = envs_jax.make("ERA-v1")
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 12), env_params)
    policy = make_policy(IARConfig(**TINY), env, env_params)
    params = policy.init(jax.random.PRNGKey(1), obs[0])
    rule = _PlusOne(policy, buffer_size=8, batch_size=4, pretrain_iters=2, params="posterior")
    engine = SimpleNamespace(env=env, env_params=env_params)
    u = UpdateState(params, (), (), (), rule.init(engine, params, ()))
    call = jax.jit(lambda u, o, k: rule(engine, u, SimpleNamespace(obs=o), {}, k))
    history, steps = [params], []
    for i in range(3):
        u, m = call(u, obs[4 * i: 4 * i + 4], jax.random.PRNGKey(10 + i))
        history.append(u.params)
        steps.append(int(m["iar/elbo_steps"]))
    assert steps == [0, 3, 1] and int(u.extra["count"]) == 12
    np.testing.assert_array_equal(np.asarray(u.extra["buffer"]), np.asarray(obs[4:12], np.float32))
    leaves = lambda p, g: jax.tree.leaves(p[g])
    same = lambda a, b, g, d=0.0: all(np.array_equal(x, y + d) for x, y in zip(leaves(a, g), leaves(b, g)))
    others = [g for g in params if g != "posterior"]
    assert all(same(history[1], history[0], g) for g in params)  # warm-up: nothing moves
    assert not same(history[2], history[1], "posterior") and all(same(history[2], history[1], g) for g in others)
    assert all(same(history[3], history[2], g, 1.0) for g in others)  # A2C (+1) only
    assert not same(history[3], history[2], "posterior", 1.0)  # A2C (+1) and an ELBO step




@pytest.mark.slow
def test_engine_trains_nothing_during_warm_up_then_pretrains_then_one_step_per_update():
    """In the engine (``build`` with ``elbo_step="buffer"``): ERA-v1, 4 envs x 1 step, buffer 8, pre-training 2: update 1 fills half the buffer
    (no parameter moves), update 2 fills it (no A2C step: 2 + 1 ELBO steps move only the
    flow and the posterior), update 3 trains everything (A2C + 1 ELBO step)."""
    ppo = IARA2CConfig(num_envs=4, total_timesteps=16)
    cfg = IARConfig(elbo_step="buffer", elbo_buffer_size=8, elbo_batch_size=4, elbo_pretrain_iters=2, **SMALL)
    trainer = build("ERA-v1", {"ppo": ppo, "iar": cfg})
    assert isinstance(trainer.update_rule, ELBOStep)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    step = jax.jit(lambda s, first: trainer.run(s, 1, first))
    history, steps = [state.params], []
    for u in range(3):
        state, m = step(state, u)
        history.append(state.params)
        steps.append(int(m["iar/elbo_steps"][0]))
    assert steps == [0, 3, 1]
    assert int(state.extra["count"]) == 12
    same = lambda a, b, g: all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a[g]), jax.tree.leaves(b[g])))
    groups = ("encoder", "flow", "posterior", "critic")
    assert all(same(history[1], history[0], g) for g in groups)  # warm-up: nothing moves
    assert {g for g in groups if not same(history[2], history[1], g)} == {"flow", "posterior"}  # ELBO steps only
    assert {g for g in groups if not same(history[3], history[2], g)} == set(groups)  # A2C + ELBO
