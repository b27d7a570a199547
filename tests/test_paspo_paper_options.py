"""The ``paper`` preset's options of ``--algo paspo`` do what the original (niklasdbs/paspo,
RLlib 2.0 + torch) does, each against a hand computation: torch's Adam with L2 weight decay
after gradient clipping, RLlib's batch-wide advantage standardisation, the degenerate-interval
and small-remaining rules of ``raw_distribution_funcs.py`` / ``lp_solver.py``, ``StableBeta``'s
log-prob clamp, torch's default init of the heads' output layer."""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import envs_jax
from paspo_jax.algo import (
    PAPER_PASPO, PAPER_PPO, BatchAdvantageUpdate, PASPOConfig, PASPOPPOConfig, _paper, make_paper_optimizer,
)
from paspo_jax.policy import PASPOPolicy
from ppo_jax.nn import torch_mlp
from ppo_jax.policy import Batch
from ppo_jax.update import MinibatchUpdate


@pytest.fixture(scope="module")
def compute():
    env, params = envs_jax.make("PASPO-compute-9")
    # bounds="lp" without warm start builds no polytope tables: the rules tested here act on
    # given intervals (the sampled chain below builds its own fast-path policy)
    return env, params, PASPOPolicy(env, params, debias=False, bounds="lp", lp_warm_start=False)


def _policy(compute, **kw):
    """A copy of the built policy with the option attributes ``kw`` set (building the
    polytope's tables once keeps this file fast); the constructor's own checks are tested
    in ``test_policy_option_checks``."""
    pol = copy.copy(compute[2])
    if "head_out_scale" in kw:
        pol.head = torch_mlp(pol.head.hidden, 2, out_scale=kw.pop("head_out_scale"))
    for name, value in kw.items():
        assert hasattr(pol, name), name
        setattr(pol, name, value)
    return pol


# ------------------------------------------------------------------------------- optimizer
def test_paper_optimizer_is_torch_adam_with_l2_after_clipping():
    cfg = PASPOPPOConfig(total_timesteps=512, num_envs=8, num_steps=64, lr=1e-2, max_grad_norm=2.0,
                         adam_b1=0.99, adam_b2=0.99, weight_decay=1e-3)
    opt = make_paper_optimizer(cfg)
    p = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array([0.3])}
    grads = [{"w": jnp.array([3.0, -1.0, 0.5]), "b": jnp.array([2.0])},
             {"w": jnp.array([0.1, 0.2, -0.3]), "b": jnp.array([-0.1])},
             {"w": jnp.array([-4.0, 2.0, 1.0]), "b": jnp.array([0.0])}]
    state = opt.init(p)
    # numpy: torch clip_grad_norm_(2.0) over all params, then Adam(betas, eps, weight_decay)
    x = np.concatenate([np.asarray(p["w"]), np.asarray(p["b"])]).astype(np.float64)
    m, v = np.zeros(4), np.zeros(4)
    for t, g in enumerate(grads, start=1):
        updates, state = opt.update(g, state, p)
        p = jax.tree.map(lambda a, u: a + u, p, updates)
        gn = np.concatenate([np.asarray(g["w"]), np.asarray(g["b"])]).astype(np.float64)
        gn = gn * min(1.0, 2.0 / (np.linalg.norm(gn) + 1e-6))
        gn = gn + 1e-3 * x
        m = 0.99 * m + 0.01 * gn
        v = 0.99 * v + 0.01 * gn**2
        x = x - 1e-2 * (m / (1 - 0.99**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-8)
    np.testing.assert_allclose(np.concatenate([p["w"], p["b"]]), x, rtol=1e-5, atol=1e-6)


def test_engine_optimizer_unchanged_by_default():
    cfg = PASPOPPOConfig(total_timesteps=512)
    assert not cfg.paper_optimizer and not cfg.batch_advantage_norm and cfg.normalize_advantages
    assert PASPOPPOConfig(total_timesteps=512, weight_decay=1e-3).paper_optimizer
    with pytest.raises(ValueError, match="normalize_advantages=False"):
        PASPOPPOConfig(batch_advantage_norm=True)
    with pytest.raises(ValueError, match="adam_b2"):
        PASPOPPOConfig(adam_b2=1.0)


# ------------------------------------------------------------------------------- advantages
def test_batch_advantage_standardisation_is_rllibs(monkeypatch):
    seen = {}

    def fake_call(self, engine, ustate, batch, stats, key):
        seen["adv"], seen["target"] = np.asarray(batch.advantage), np.asarray(batch.target)
        return ustate, {}

    monkeypatch.setattr(MinibatchUpdate, "__call__", fake_call)
    adv = np.random.default_rng(0).normal(3.0, 5.0, size=512).astype(np.float32)
    z = jnp.zeros(512)
    batch = Batch(obs=z, action=z, log_prob=z, value=z, advantage=jnp.asarray(adv), target=jnp.asarray(adv + 1), extras={})
    BatchAdvantageUpdate()(None, None, batch, {}, jax.random.PRNGKey(0))
    want = (adv.astype(np.float64) - adv.mean()) / adv.std()  # RLlib: population std, over all 512
    np.testing.assert_allclose(seen["adv"], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(seen["target"], adv + 1)  # value targets untouched
    const = batch._replace(advantage=jnp.full(512, 2.5))
    BatchAdvantageUpdate()(None, None, const, {}, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(seen["adv"], 0.0)  # std floored at 1e-4: (2.5 - 2.5) / 1e-4


# ------------------------------------------------------------------------------- intervals
def test_degenerate_interval_fixed_at_a_min(compute):
    ours = _policy(compute)
    orig = _policy(compute, degenerate_value="a_min", degenerate_max=1e-4, small_remaining=1e-5)
    lo, hi = jnp.float32(0.2), jnp.float32(0.20005)  # width 5e-5 < 1e-4
    assert bool(ours._degenerate(lo, hi)) and bool(orig._degenerate(lo, hi))
    assert float(orig._fixed_value(lo, hi)) == pytest.approx(0.2)
    assert float(ours._fixed_value(lo, hi)) == pytest.approx(0.200025)
    # a_max <= 1e-4 is degenerate in the original even at width 1e-4 (ma <= 1e-4)
    lo, hi = jnp.float32(0.0), jnp.float32(1e-4)
    assert not bool(ours._degenerate(lo, hi)) and bool(orig._degenerate(lo, hi))
    lo, hi = jnp.float32(0.0), jnp.float32(2e-4)
    assert not bool(orig._degenerate(lo, hi))
    # remaining mass <= 1e-5: [0, remaining] without the bounds (then fixed at 0)
    rem = jnp.float32(8e-6)
    a, b = orig._interval(jnp.float32(3e-6), jnp.float32(5e-6), jnp.bool_(True), rem)
    assert (float(a), float(b)) == (0.0, pytest.approx(8e-6))
    assert float(orig._fixed_value(a, b)) == 0.0
    a, b = ours._interval(jnp.float32(3e-6), jnp.float32(5e-6), jnp.bool_(True), rem)
    assert (float(a), float(b)) == (pytest.approx(3e-6), pytest.approx(5e-6))
    a, b = orig._interval(jnp.float32(0.1), jnp.float32(0.3), jnp.bool_(True), jnp.float32(2e-5))
    assert (float(a), float(b)) == (pytest.approx(2e-5), pytest.approx(2e-5))  # above 1e-5: the bounds


@pytest.mark.slow
def test_sampled_degenerate_entries_sit_at_a_min(compute):
    """Along a sampled chain every degenerate entry equals its stored a_min."""
    env, params, _ = compute
    pol = PASPOPolicy(env, params, debias=False, degenerate_value="a_min", degenerate_max=1e-4, small_remaining=1e-5)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    p = pol.init(jax.random.PRNGKey(1), obs)
    # push the heads to extreme Betas so some remaining masses run out early
    head_bias = p["heads"]["params"]["Dense_2"]["bias"]
    p["heads"]["params"]["Dense_2"]["bias"] = head_bias.at[:, 0].set(6.0).at[:, 1].set(-3.0)
    out = jax.jit(jax.vmap(lambda k: pol.act(p, k, obs, state, params)))(jax.random.split(jax.random.PRNGKey(2), 32))
    a, lo, hi = np.asarray(out.action), np.asarray(out.extras["a_min"]), np.asarray(out.extras["a_max"])
    deg = ~(hi - lo >= 1e-4) | (hi <= 1e-4)
    assert deg.sum() > 0
    np.testing.assert_array_equal(a[:, :-1][deg], lo[deg])


# ------------------------------------------------------------------------------- log-prob clamp
def test_beta_log_prob_clamped_at_log_1e6(compute):
    ours = _policy(compute)
    orig = _policy(compute, beta_prob_floor=1e-6)
    alpha, beta, lo, hi = jnp.float32(40.0), jnp.float32(40.0), jnp.float32(0.1), jnp.float32(0.6)
    width = 0.5
    for u in (0.05, 0.5, 0.9):  # far in the tails the density is < 1e-6
        x = jnp.float32(0.1 + width * u)
        ref = stats.beta.logpdf(u, 40.0, 40.0)
        got_o = float(orig._entry_log_prob_entropy(alpha, beta, lo, hi, x)[0])
        got_u = float(ours._entry_log_prob_entropy(alpha, beta, lo, hi, x)[0])
        assert got_o == pytest.approx(max(ref, np.log(1e-6)) - np.log(width), abs=2e-3)
        assert got_u == pytest.approx(ref - np.log(width), abs=2e-3, rel=1e-4)
    assert stats.beta.logpdf(0.05, 40, 40) < np.log(1e-6) < stats.beta.logpdf(0.5, 40, 40)


# ------------------------------------------------------------------------------- init
def test_head_output_layer_at_torch_default_init(compute):
    k = 1 / np.sqrt(32)  # torch Linear(32, 2): weight ~ U(-1/sqrt(32), 1/sqrt(32))
    for scale, bound in ((1.0, k), (0.01, 0.01 * k)):
        pol = _policy(compute, head_out_scale=scale)
        # the heads exactly as PASPOPolicy.init builds them: one init per entity, vmapped
        head_in = jnp.zeros((32 + 8,), jnp.float32)
        p = jax.vmap(pol.head.init, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(3), 8), head_in)
        W = np.asarray(p["params"]["Dense_2"]["kernel"])  # (8 heads, 32, 2)
        assert W.shape == (8, 32, 2)
        assert np.abs(W).max() <= bound and np.abs(W).max() > 0.9 * bound
        assert W.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)


# ------------------------------------------------------------------------------- preset
def test_paper_preset_sets_the_originals_options():
    for env_id, steps, filt in (("PASPO-synth-7", 150_000, False), ("PASPO-compute-9", 150_000, True),
                                ("PASPO-portfolio-13", 250_000, True)):
        cfgs = _paper(env_id, {})
        ppo, pas = cfgs["ppo"], cfgs["paspo"]
        assert (ppo.num_envs, ppo.num_steps, ppo.batch_size, ppo.minibatch_size) == (8, 64, 512, 64)
        assert (ppo.adam_b1, ppo.adam_b2, ppo.weight_decay) == (0.99, 0.99, 1e-3)
        assert ppo.batch_advantage_norm and not ppo.normalize_advantages
        assert (ppo.eval_every, ppo.eval_episodes, ppo.eval_mode) == (10, 20, "stochastic")
        assert ppo.total_timesteps == steps and ppo.normalize_obs == filt
        assert pas.head_out_scale == 1.0 and pas.degenerate_value == "a_min"
        assert (pas.degenerate_max, pas.small_remaining, pas.beta_prob_floor) == (1e-4, 1e-5, 1e-6)
    assert set(PAPER_PPO) <= set(PASPOPPOConfig.__dataclass_fields__)
    assert set(PAPER_PASPO) <= set(PASPOConfig.__dataclass_fields__)
    defaults = PASPOConfig()
    assert (defaults.degenerate_value, defaults.degenerate_max, defaults.small_remaining, defaults.beta_prob_floor) == (
        "midpoint", 0.0, 0.0, 0.0)


def test_build_uses_paper_optimizer_and_update_rule():
    from paspo_jax.algo import build

    light = {"debias": False, "bounds": "lp", "lp_warm_start": False}  # no polytope tables: fast to build
    cfgs = _paper("PASPO-compute-9", {"ppo": {"total_timesteps": 1024}, "paspo": light})
    trainer = build("PASPO-compute-9", cfgs)
    assert isinstance(trainer.update_rule, BatchAdvantageUpdate)
    p = {"w": jnp.array([1.0, -2.0])}
    g = {"w": jnp.array([0.5, 0.5])}
    got = trainer.optimizer.update(g, trainer.optimizer.init(p), p)[0]["w"]
    want = make_paper_optimizer(cfgs["ppo"]).update(g, make_paper_optimizer(cfgs["ppo"]).init(p), p)[0]["w"]
    np.testing.assert_allclose(got, want)
    plain = build("PASPO-compute-9", {"ppo": PASPOPPOConfig(total_timesteps=1024), "paspo": PASPOConfig(**light)})
    assert type(plain.update_rule) is MinibatchUpdate


def test_policy_option_checks(compute):
    env, params, _ = compute
    pol = PASPOPolicy(env, params, debias=False, degenerate_value="a_min", degenerate_max=1e-4,
                      small_remaining=1e-5, beta_prob_floor=1e-6, head_out_scale=1.0, bounds="lp",
                      lp_warm_start=False)
    assert (pol.degenerate_value, pol.degenerate_max, pol.small_remaining, pol.beta_prob_floor) == (
        "a_min", 1e-4, 1e-5, 1e-6)
    with pytest.raises(ValueError, match="degenerate_value"):
        PASPOPolicy(env, params, debias=False, degenerate_value="mid")
    with pytest.raises(ValueError, match="beta_prob_floor"):
        PASPOConfig(beta_prob_floor=1.5)
    with pytest.raises(ValueError, match="degenerate_value"):
        PASPOConfig(degenerate_value="max")
