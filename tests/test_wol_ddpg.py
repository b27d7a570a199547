"""Wol-DDPG (``wol_jax``): the k-NN lookup against brute-force enumeration, the critic target
against a hand computation in numpy, and learning a probe.

References: the embedding is the IAR original's grid (``init_uniform_space``: per axis
``np.linspace(-1, 1, n)``, ``itertools.product`` order); nearest neighbours by sorting all
distances in numpy; the critic target recomputed from the parameter arrays with a numpy MLP
(ReLU hidden layers, tanh on the actor's output) and brute-force neighbours.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wol_jax import knn as knn_lib
from wol_jax.trainer import Config, make_trainer


@pytest.mark.parametrize("nvec", [(8, 8, 8), (3, 5), (7,)])
def test_knn_matches_brute_force_enumeration(nvec):
    grid = np.array(list(itertools.product(*[np.linspace(-1, 1, n) for n in nvec])), np.float32)
    tab = knn_lib.table(nvec)
    np.testing.assert_allclose(np.asarray(tab), grid, atol=1e-6)  # the original's embedding and order
    actions = list(itertools.product(*[range(n) for n in nvec]))
    np.testing.assert_array_equal(knn_lib.all_actions(nvec), np.array(actions))
    n = len(actions)
    k = knn_lib.k_of(n, 0.1)
    assert k == max(1, int(n * 0.1))
    rng = np.random.default_rng(0)
    points = rng.uniform(-1.2, 1.2, size=(64, len(nvec))).astype(np.float32)
    got = np.asarray(jax.jit(jax.vmap(lambda p: knn_lib.knn(tab, p, k)))(jnp.asarray(points)))
    for p, idx in zip(points, got):
        d = ((grid.astype(np.float64) - p) ** 2).sum(1)
        ref = np.argsort(d, kind="stable")[:k]
        # Same neighbour set (up to ties at the k-th distance) and nearest first.
        np.testing.assert_allclose(np.sort(d[idx]), d[ref], rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(d[idx]) >= -1e-6)
        assert set(idx.tolist()) == set(ref.tolist()) or np.isclose(d[ref[-1]], np.sort(d)[k])


def _np_mlp(params, x, out_tanh=False):
    p = params["params"]
    n = len(p)
    for i in range(n):
        x = x @ np.asarray(p[f"Dense_{i}"]["kernel"], np.float64) + np.asarray(p[f"Dense_{i}"]["bias"], np.float64)
        if i < n - 1:
            x = np.maximum(x, 0.0)
    return np.tanh(x) if out_tanh else x


@pytest.mark.parametrize("target_action", ["wolpertinger", "proto"])
def test_critic_target_matches_hand_computation(target_action):
    cfg = Config(total_steps=64, num_envs=1, rollout_steps=1, buffer_size=64, batch_size=8, hidden=(16, 8),
                 k_ratio=0.3, gamma=0.9, target_action=target_action)
    tr = make_trainer(cfg, "ERA-v1")  # 6^3 = 216 joint actions, k = 64
    assert tr.k == 64
    from wol_jax.trainer import Nets

    @jax.jit
    def nets_of(key):  # online nets, and targets that differ from them (the test sees which are used)
        ka, kc, kb1, kb2 = jax.random.split(key, 4)
        actor = tr.actor_net.init(ka, jnp.zeros(tr.obs_dim))
        critic = tr.critic_net.init(kc, jnp.zeros(tr.obs_dim + 3))
        bump = lambda t, k: jax.tree.map(lambda x: x + 0.3 * jax.random.normal(k, x.shape), t)
        return Nets(actor, critic, bump(actor, kb1), bump(critic, kb2))

    nets = nets_of(jax.random.key(3))
    rng = np.random.default_rng(1)
    B = 8
    batch = {
        "obs": rng.normal(size=(B, tr.obs_dim)).astype(np.float32),
        "emb": rng.uniform(-1, 1, size=(B, 3)).astype(np.float32),
        "reward": rng.normal(size=B).astype(np.float32),
        "next_obs": rng.uniform(0, 3, size=(B, tr.obs_dim)).astype(np.float32),
        "terminated": np.array([0, 1, 0, 0, 1, 0, 0, 0], np.float32),
    }
    y = np.asarray(jax.jit(tr.critic_target)(nets, jax.tree.map(jnp.asarray, batch)))

    grid = np.array(list(itertools.product(*[np.linspace(-1, 1, 6)] * 3)))
    proto = _np_mlp(nets.actor_target, batch["next_obs"].astype(np.float64), out_tanh=True)
    expected = []
    for i in range(B):
        s = batch["next_obs"][i].astype(np.float64)
        if target_action == "wolpertinger":
            near = np.argsort(((grid - proto[i]) ** 2).sum(1), kind="stable")[: tr.k]
            qs = _np_mlp(nets.critic_target, np.concatenate([np.tile(s, (len(near), 1)), grid[near]], 1))[:, 0]
            a_next = grid[near[np.argmax(qs)]]
        else:
            a_next = proto[i]
        q_next = _np_mlp(nets.critic_target, np.concatenate([s, a_next])[None])[0, 0]
        expected.append(batch["reward"][i] + 0.9 * (1 - batch["terminated"][i]) * q_next)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_learns_the_action_reward_probe():
    """Probe-action-reward (obs +-1, reward +1 for action (obs > 0), else -1): the greedy
    Wolpertinger policy earns +1 from both observations after a short run, and its critic
    values the right action near +1 (gamma is irrelevant: one-step episodes)."""
    cfg = Config(total_steps=3_000, num_envs=8, rollout_steps=1, gradient_steps=1, buffer_size=3_000,
                 batch_size=64, hidden=(32, 32), learning_starts=200, lr=3e-3, tau=0.05)
    tr = make_trainer(cfg, "Probe-action-reward")
    assert tr.k == 1 and tr.num_actions == 2
    state, metrics = jax.jit(lambda k: tr.run(tr.init(k), tr.num_updates))(jax.random.key(0))
    obs = jnp.array([[1.0], [-1.0]])
    idx = np.asarray(jax.vmap(tr.policy_index, in_axes=(None, 0))(state.nets, obs))
    assert idx.tolist() == [1, 0], idx
    q_right = np.asarray(tr.q(state.nets.critic, obs, tr.table[jnp.array([1, 0])]))
    q_wrong = np.asarray(tr.q(state.nets.critic, obs, tr.table[jnp.array([0, 1])]))
    assert np.all(np.abs(q_right - 1.0) < 0.25) and np.all(q_wrong < 0.0), (q_right, q_wrong)
    assert float(metrics["return"][-1]) > 0.5  # behaviour (with noise 0.2) mostly right


def test_bad_config_raises_one_clear_error():
    with pytest.raises(ValueError, match="target_action"):
        Config(target_action="greedy")
    with pytest.raises(ValueError, match="k_ratio"):
        Config(k_ratio=1.5)
    with pytest.raises(ValueError, match="gradient_steps"):
        Config(gradient_steps=-2)


def test_registered_with_presets():
    from ppo_jax import registry

    algo = registry.get("wol-ddpg")
    paper = algo.make_configs("paper", "ERA-v3")["wol"]
    assert paper.target_action == "proto" and paper.hidden == (400, 300) and paper.total_steps == 700_000
    assert algo.make_configs("default", "ERA-v3", {"wol": {"k_ratio": 0.2}})["wol"].k_ratio == 0.2
