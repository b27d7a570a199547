"""The ``encoder`` option of IAR's Factored and AR baselines (``iar_jax.baselines``).

* ``encoder="mlp"`` (the default) is unchanged: the same parameters and log-probabilities on
  fixed keys as the code before the option existed (values pinned from that code) and as an
  explicit ``encoder="mlp"``; Factored's log-probs also match a numpy forward pass.
* ``encoder="gcn"``: the context / features are ``GraphEncoder.apply`` called directly, the
  heads and the critic linear maps of them (numpy reference).
* ``encoder="gcn"`` on ERA-v1 (K = 6 nodes, L = 3 resources, 216 joint actions), by
  enumeration: the generator pi is normalised (sum_a pi(a|s) = 1), its sampler draws from it
  (chi-square), and ``act``'s executed action follows the rejection distribution
  pi_C(a|s) = pi(a|s) / Z_C(s) on the valid actions (chi-square, all executed actions valid;
  on Factored: the rejection step is the base class's, and ar-gcn's ``act`` runs in
  tests/test_policy_contract.py).
* A non-ERA env with ``encoder="gcn"`` raises one ``ValueError`` naming the encoder.
* The CLI wiring: ``--policy factored|ar --encoder gcn`` builds the gcn baseline.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import envs_jax
from iar_jax.actions import valid_mask
from iar_jax.baselines import ARPolicy, FactoredPolicy, MaskPolicy
from iar_jax.graph_encoder import GraphEncoder

SMALL = dict(hidden=16, context_dim=8, critic_hidden=(16,), num_candidates=4)
ACTIONS = jnp.asarray([[0, 1, 2], [3, 4, 5], [5, 5, 5], [1, 0, 3]], jnp.int32)
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
# Computed by iar_jax/baselines.py before the encoder option (commit 79c1db7) with SMALL on
# ERA-v1, init key 0, obs of reset key 1: sum |params| and log pi of ACTIONS.
PINNED = {
    FactoredPolicy: (335.32621933643986, [-5.371682643890381, -5.3733720779418945, -5.376698970794678, -5.362511157989502]),
    ARPolicy: (525.5571152235161, [-5.382249355316162, -5.371243000030518, -5.371306419372559, -5.370942115783691]),
}


def _fast(program):
    """Run a nullary program compiled with XLA's backend optimisations off (as
    tests/test_policy_contract.py: several times faster to compile on 2 loaded cores)."""
    return jax.jit(program).lower().compile(compiler_options=FAST_COMPILE)()


def _abs_sum(tree) -> float:
    return float(sum(np.abs(np.asarray(leaf, np.float64)).sum() for leaf in jax.tree_util.tree_leaves(tree)))


def _dense(params, h):
    return np.asarray(h, np.float64) @ np.asarray(params["params"]["kernel"], np.float64) + np.asarray(
        params["params"]["bias"], np.float64
    )


def _perturbed(pol, params, x, key):
    """Random actor heads of bounded logits, so pi is far from uniform but every joint
    action keeps some mass: Factored's Dense(L K) kernel N(0, 1) / |f| and bias N(0, 1);
    AR's output layers N(0, 0.5^2) added (their inputs are tanh units)."""
    if isinstance(pol, FactoredPolicy):
        f = pol.features(params, x)
        kernel = params["actor"]["params"]["kernel"]
        k1, k2 = jax.random.split(key)
        actor = {"params": {
            "kernel": jax.random.normal(k1, kernel.shape) / jnp.linalg.norm(f),
            "bias": jax.random.normal(k2, kernel.shape[-1:]),
        }}
        return {**params, "actor": actor}
    heads = params["heads"]["params"]
    out = {name: layer for name, layer in heads.items() if name.startswith("out")}
    leaves, tree = jax.tree_util.tree_flatten(out)
    keys = jax.random.split(key, len(leaves))
    leaves = [leaf + 0.5 * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys)]
    return {**params, "heads": {"params": {**heads, **jax.tree_util.tree_unflatten(tree, leaves)}}}


def _chi2_pvalue(counts, probs):
    counts, probs = np.asarray(counts, np.float64), np.asarray(probs, np.float64)
    expected = probs / probs.sum() * counts.sum()
    return stats.chisquare(counts, expected).pvalue


N_DRAWS = 20000  # sampler draws; act draws N_DRAWS // 4
S = 64  # candidates in the rejection check


@pytest.fixture(scope="module")
def era():
    env, params = envs_jax.make("ERA-v1")
    obs, state = env.reset(jax.random.PRNGKey(1), params)
    return env, params, obs, state


@pytest.fixture(scope="module", params=[FactoredPolicy, ARPolicy], ids=["factored", "ar"])
def case(request, era):
    """One compiled program per class (compile time dominates) computing what the tests
    below check: the mlp default's params and log-probs; the gcn policy's params, context,
    value and ``GraphEncoder.apply`` called directly; a gcn policy with random heads: log pi
    of all K^L joint actions, sampler draws and (Factored) ``act``'s executed actions."""
    cls = request.param
    env, p, obs, state = era
    x = jnp.ravel(obs).astype(jnp.float32)
    mlp = cls(env, p, **SMALL)
    gcn = cls(env, p, encoder="gcn", **SMALL)
    big = cls(env, p, encoder="gcn", hidden=16, context_dim=8, critic_hidden=(16,), num_candidates=S)
    all_a = big.layout.all_actions()  # (216, 3)
    with_act = cls is FactoredPolicy  # the rejection step is the base class's; ar-gcn's act: contract test

    def run():
        out = {}
        params = mlp.init(jax.random.PRNGKey(0), obs)
        out["mlp"] = params, mlp.log_probs(params, jax.random.PRNGKey(3), mlp.context(params, x), ACTIONS, {})[0]
        params = gcn.init(jax.random.PRNGKey(0), obs)
        f = GraphEncoder(6, 3, hidden=64, out=8).apply(params["encoder"], x)  # independent call
        out["gcn"] = params, f, gcn.context(params, x), gcn.value(params, obs)
        params = _perturbed(big, big.init(jax.random.PRNGKey(0), obs), x, jax.random.PRNGKey(7))
        ctx = big.context(params, x)
        lp, _ = big.log_probs(params, jax.random.PRNGKey(0), ctx, all_a, {})
        draws = big.sample_actions(params, jax.random.PRNGKey(1), ctx, N_DRAWS)
        out["enum"] = lp, jax.vmap(big.layout.joint_index)(draws)
        if with_act:
            keys = jax.random.split(jax.random.PRNGKey(2), N_DRAWS // 4)
            acts = jax.vmap(lambda k: big.act(params, k, obs, state, p).action)(keys)
            out["act"] = jax.vmap(big.layout.joint_index)(acts), valid_mask(env, big.layout, state, all_a, p)
        return out

    return cls, mlp, _fast(run)


def test_mlp_default_is_unchanged(era, case):
    cls, default, out = case
    env, p, obs, _ = era
    x = jnp.ravel(obs).astype(jnp.float32)
    explicit = cls(env, p, encoder="mlp", **SMALL)
    assert default.encoder_kind == explicit.encoder_kind == "mlp"
    # the same flax modules (dataclass equality), hence the same parameters and log-probs
    for name in ("actor", "encoder", "heads", "critic"):
        assert getattr(default, name, None) == getattr(explicit, name, None), name
    pd, lp = out["mlp"]
    abs_sum, lp_pinned = PINNED[cls]
    np.testing.assert_allclose(_abs_sum(pd), abs_sum, rtol=1e-6)
    np.testing.assert_allclose(lp, lp_pinned, rtol=2e-6)
    if cls is FactoredPolicy:  # numpy forward pass of MLP(16, 8 -> L K), tanh
        layers = [pd["actor"]["params"][k] for k in sorted(pd["actor"]["params"])]
        h = np.asarray(x, np.float64)
        for i, layer in enumerate(layers):
            h = h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)
            h = np.tanh(h) if i < len(layers) - 1 else h
        logp = h.reshape(3, 6) - np.log(np.exp(h.reshape(3, 6)).sum(-1, keepdims=True))
        ref = logp[np.arange(3), np.asarray(ACTIONS)].sum(-1)
        np.testing.assert_allclose(lp, ref, rtol=1e-5)


def test_gcn_context_is_the_graph_encoder(case):
    cls, _, out = case
    params, f, ctx, value = out["gcn"]
    head = "actor" if cls is FactoredPolicy else "heads"
    assert set(params) == {"encoder", head, "critic"}
    assert f.shape == (8,) and float(jnp.std(f)) > 0
    if cls is FactoredPolicy:  # log_softmax(Dense(L K)(f)) per dimension
        z = _dense(params["actor"], f).reshape(3, 6)
        np.testing.assert_allclose(ctx, z - np.log(np.exp(z).sum(-1, keepdims=True)), rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(ctx, f, rtol=1e-6, atol=1e-7)
    assert np.asarray(params["critic"]["params"]["kernel"]).shape == (8, 1)  # linear critic on shared features
    np.testing.assert_allclose(value, _dense(params["critic"], f)[0], rtol=1e-5, atol=1e-6)


def test_gcn_log_probs_normalised_and_rejection_samples_pi_c(case):
    cls, _, out = case
    lp, draw_idx = (np.asarray(v) for v in out["enum"])
    pi = np.exp(lp.astype(np.float64))
    np.testing.assert_allclose(pi.sum(), 1.0, atol=1e-5)  # the generator is normalised
    assert pi.max() > 3 * pi.min()  # away from uniform, so the checks below can fail
    counts = np.bincount(draw_idx, minlength=pi.size)
    assert _chi2_pvalue(counts, pi) > 1e-4  # the sampler draws from pi
    if "act" not in out:
        return
    act_idx, valid = (np.asarray(v) for v in out["act"])
    assert 0 < valid.sum() < valid.size
    z_c = pi[valid].sum()
    assert (1 - z_c) ** S < 1e-6  # the no-valid fallback is negligible
    act_counts = np.bincount(act_idx, minlength=pi.size)
    assert act_counts[~valid].sum() == 0  # only valid actions are executed
    pi_c = pi[valid] / z_c
    assert _chi2_pvalue(act_counts[valid], pi_c) > 1e-4  # executed ~ pi_C = pi / Z_C
    assert _chi2_pvalue(act_counts[valid], np.full(pi_c.size, 1.0 / pi_c.size)) < 1e-4  # not uniform on C


@pytest.mark.parametrize("cls", [FactoredPolicy, ARPolicy, MaskPolicy])
def test_gcn_on_a_non_era_env_is_one_clear_error(cls):
    env, p = envs_jax.make("CartPole-v1")
    with pytest.raises(ValueError, match=r"encoder='gcn'.*ERA"):
        cls(env, p, encoder="gcn")
    with pytest.raises(ValueError, match="encoder must be one of"):
        cls(*envs_jax.make("ERA-v1"), encoder="transformer")
    cls(env, p)  # mlp is fine there


@pytest.mark.parametrize("policy, cls", [("factored", FactoredPolicy), ("ar", ARPolicy)])
def test_cli_builds_the_gcn_baselines(policy, cls):
    from iar_jax import algo
    from ppo_jax import cli, registry

    _, configs = cli.parse(registry.get("iar"), ["--policy", policy, "--encoder", "gcn"])
    assert configs["iar"].policy == policy and configs["iar"].encoder == "gcn"
    pol = algo.make_policy(configs["iar"], *envs_jax.make("ERA-v1"), configs["ppo"])
    assert isinstance(pol, cls) and pol.encoder_kind == "gcn"
    with pytest.raises(ValueError, match="encoder='gcn'"):
        algo.make_policy(configs["iar"], *envs_jax.make("CartPole-v1"), configs["ppo"])


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["factored", "ar"])
def test_cli_trains_the_gcn_baselines(tmp_path, policy):
    """A few A2C updates through train.py (CI runs the wiring check above instead)."""
    import json

    import train as train_cli

    out = tmp_path / "run"
    code = train_cli.main(["--algo", "iar", "--env", "ERA-v1", "--policy", policy, "--encoder", "gcn",
                           "--num-envs", "4", "--total-timesteps", "64", "--num-seeds", "1", "--out", str(out)])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["configs"]["iar"]["encoder"] == "gcn" and config["configs"]["iar"]["policy"] == policy
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["env_steps"] == 64
    assert np.isfinite(rows[-1]["value_loss"]).all() and np.isfinite(rows[-1]["policy_loss"]).all()
