"""ERA environments (IAR, Chen et al. 2023, App. E) against independent references.

References: plain-Python BFS written here (not envs_jax.graphs), scipy's csgraph, numbers
read off the stored JSON by hand, a numpy model of the attacker's softmax, and an exact
numpy Markov-chain evaluation of ERA-partial's memoryless policies.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.sparse.csgraph import shortest_path

from envs_jax import make
from envs_jax.era import EraPartialState, EraState, make_era, make_era_partial
from envs_jax.graphs import bfs_path_costs, hop_distances, min_path_costs
from envs_jax.spaces import MultiDiscrete

DATA = Path(__file__).resolve().parents[1] / "envs_jax" / "data" / "era"


def load(version: int) -> dict:
    return json.loads((DATA / f"seqssg_v{version}.json").read_text())


def py_bfs(adj: list[list[int]], s: int) -> list[float]:
    """Plain-Python hop distances from s (inf if unreachable)."""
    dist = [float("inf")] * len(adj)
    dist[s] = 0
    q = deque([s])
    while q:
        u = q.popleft()
        for w, e in enumerate(adj[u]):
            if e and dist[w] == float("inf"):
                dist[w] = dist[u] + 1
                q.append(w)
    return dist


def forced_attack(params, node: int):
    """Params whose attacker hits ``node`` (probability 1 - 1e-40): eps 0, huge utility."""
    util = jnp.where(jnp.arange(params.atk_util.shape[1]) == node, 100.0, 0.0)
    return params.replace(atk_eps=0.0, atk_util=jnp.broadcast_to(util, params.atk_util.shape))


_JITTED: dict = {}


def jit_step(env):
    """``jax.jit(env.step_env)``, compiled once per env object."""
    return _JITTED.setdefault(id(env), (env, jax.jit(env.step_env)))[1]


def state(pos, attacked, time=0, plan=0):
    return EraState(pos=jnp.asarray(pos, jnp.int32), attacked=jnp.int32(attacked), plan=jnp.int32(plan), time=jnp.int32(time))


# ------------------------------------------------------------------------------ graphs
@pytest.mark.parametrize("version", range(1, 11))
def test_graph_distances_equal_scipy_and_path_enumeration(version):
    d = load(version)
    adj, cost = np.array(d["adj_matrix"]), np.array(d["cost_matrix"])
    hops = hop_distances(adj)
    np.testing.assert_array_equal(hops, shortest_path(adj, unweighted=True, directed=False))
    w = np.where(adj > 0, cost, 0.0)
    np.testing.assert_allclose(min_path_costs(adj, cost), shortest_path(w, directed=False), atol=1e-12)
    if version <= 5:  # every fewest-hop path has one cost there: enumerate them all
        bfs = bfs_path_costs(adj, cost)
        k = len(adj)
        for s, t in itertools.product(range(k), range(k)):
            costs, stack = [], [(s, [s])]
            while stack:
                u, path = stack.pop()
                if u == t and len(path) - 1 == hops[s, t]:
                    costs.append(sum(cost[a, b] for a, b in zip(path, path[1:])))
                elif len(path) - 1 < hops[s, t]:
                    stack += [(w_, path + [w_]) for w_ in range(k) if adj[u, w_] and w_ not in path]
            assert max(costs) - min(costs) < 1e-12 and abs(bfs[s, t] - costs[0]) < 1e-12


def test_bfs_path_cost_tie_break_takes_lower_index_neighbour():
    # square 0-1-3, 0-2-3: two fewest-hop paths 0->3; BFS (ascending) goes through node 1.
    adj = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 0, 1], [0, 1, 1, 0]])
    cost = np.array([[0, 0.5, 0.1, -1], [0.5, 0, -1, 0.5], [0.1, -1, 0, 0.1], [-1, 0.5, 0.1, 0]])
    bfs = bfs_path_costs(adj, cost)
    assert bfs[0, 3] == pytest.approx(1.0) and bfs[3, 0] == pytest.approx(1.0)
    assert min_path_costs(adj, cost)[0, 3] == pytest.approx(0.2)


def test_bad_graph_and_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="symmetric"):
        hop_distances(np.array([[0, 1], [0, 0]]))
    with pytest.raises(ValueError, match="ERA version"):
        make_era(11)
    with pytest.raises(ValueError, match="plan_draw"):
        make_era(1, plan_draw="sometimes")
    with pytest.raises(ValueError, match="move_cost"):
        make_era(1, move_cost="euclid")


# ------------------------------------------------------------------------------ validity
@pytest.mark.parametrize("version", range(1, 6))
def test_is_valid_equals_bruteforce_hop_and_distance_rules(version):
    d = load(version)
    adj, k, n_rsc = d["adj_matrix"], d["num_tgt"], d["num_rsc"]
    req_dist = d.get("req_dist", 1)
    hop = [py_bfs(adj, s) for s in range(k)]
    env, params = make(f"ERA-v{version}")
    actions = env.all_actions()
    mask_fn = jax.jit(env.valid_mask)
    rng = np.random.default_rng(version)
    for _ in range(4):
        pos = rng.integers(0, k, n_rsc)
        got = np.asarray(mask_fn(state(pos, k), actions, params))
        want = [
            all(hop[pos[l]][a[l]] <= 3 for l in range(n_rsc))
            and all(hop[a[i]][a[j]] <= req_dist for i, j in d["def_constraints"])
            for a in itertools.product(range(k), repeat=n_rsc)
        ]
        np.testing.assert_array_equal(got, np.array(want))
        assert 0 < got.sum() < len(want)  # the rules bite and leave something


def test_is_valid_batched_over_states_and_actions_and_out_of_range():
    env, params = make("ERA-v3")
    key_p, key_a = jax.random.split(jax.random.key(0))
    pos = jax.random.randint(key_p, (64, 3), 0, 8)
    acts = jax.random.randint(key_a, (64, 32, 3), 0, 8)
    states = jax.vmap(lambda p: state(p, 8))(pos)
    batched = jax.jit(jax.vmap(env.valid_mask, in_axes=(0, 0, None)))(states, acts, params)
    one = jax.jit(env.is_valid)
    loop = np.array([[bool(one(state(pos[i], 8), acts[i, j], params)) for j in range(32)] for i in range(4)])
    np.testing.assert_array_equal(np.asarray(batched[:4]), loop)
    assert not one(state([0, 0, 0], 8), jnp.array([0, 0, 8]), params)
    assert not one(state([0, 0, 0], 8), jnp.array([-1, 0, 0]), params)
    nocstr, p5 = make("ERA-nocstr-v5")
    assert bool(jnp.all(nocstr.valid_mask(state([0, 0, 0], 10), nocstr.all_actions(), p5)))


# ------------------------------------------------------------------------------ rewards
def test_valid_move_reward_is_payoff_minus_path_costs():
    env, params = make("ERA-v1")
    s = state([1, 5, 1], 6)  # resources on 1, 5, 1; move to 1, 0, 2 (valid: pair (1,2) on 0,2)
    a = jnp.array([1, 0, 2])
    # costs from the v1 cost matrix: 1->1 = 0; 5->1->0 = 0.12 + 0.1; 1->2 = 0.2
    for node, payoff in [(0, 1.0), (3, -1.0)]:  # node 0 covered: def_rew 1; node 3 not: def_plt -1
        obs, s2, r, term, info = jit_step(env)(jax.random.key(1), s, a, forced_attack(params, node))
        assert bool(info["valid"]) and float(info["violation"]) == 0.0 and int(info["attacked"]) == node
        assert float(r) == pytest.approx(payoff - 0.42, abs=1e-6)
        np.testing.assert_array_equal(s2.pos, [1, 0, 2])
        assert int(s2.attacked) == node and int(s2.time) == 1 and not bool(term)


def test_move_cost_bfs_path_vs_min_cost_on_v5():
    s = state([0, 0, 0], 10)
    a = jnp.array([1, 0, 0])  # resource 0 moves 0 -> 1: direct edge 0.13, cheaper via 2: 0.02 + 0.05
    for move_cost, cost in [("bfs_path", 0.13), ("min_cost", 0.07)]:
        env, params = make_era(5, move_cost=move_cost)
        _, _, r, _, info = jit_step(env)(jax.random.key(0), s, a, forced_attack(params, 1))
        assert bool(info["valid"])
        assert float(r) == pytest.approx(1.12 - cost, abs=1e-6)  # v5 node 1: def_rew 1.12


def test_invalid_action_stays_and_uses_protection_rule():
    env, params = make("ERA-v1")
    # (b) holds now: resources 1, 2 on nodes 4, 1 (adjacent). Action breaks (b): 4 and 3 are 3 hops apart.
    s = state([3, 4, 1], 6)
    a = jnp.array([3, 4, 3])
    sure = forced_attack(params, 4).replace(protect_prob_invalid=0.0)  # no luck: (b) must do it
    _, s2, r, _, info = jit_step(env)(jax.random.key(0), s, a, sure)
    assert not bool(info["valid"]) and float(info["violation"]) == 1.0
    np.testing.assert_array_equal(s2.pos, [3, 4, 1])  # stayed
    assert float(r) == pytest.approx(1.1) and bool(info["protected"])  # v1 node 4 def_rew, no cost
    _, _, r, _, info = jit_step(env)(jax.random.key(0), s, a, forced_attack(params, 0))
    assert float(r) == pytest.approx(-1.0) and not bool(info["protected"])  # nobody on node 0
    # (b) fails now: resources 1, 2 on nodes 3, 5 (3 hops). Attack on node 3: protected w.p. 0.5.
    s = state([0, 3, 5], 6)
    a = jnp.array([0, 3, 5])  # staying is invalid too: the pair is still apart
    for prob, want in [(1.0, 1.0), (0.0, -1.0)]:
        p = forced_attack(params, 3).replace(protect_prob_invalid=prob)
        _, _, r, _, info = jit_step(env)(jax.random.key(0), s, a, p)
        assert not bool(info["valid"]) and float(r) == pytest.approx(want)
    keys = jax.random.split(jax.random.key(2), 4000)
    step = jax.jit(jax.vmap(env.step_env, in_axes=(0, None, None, None)))
    _, _, r, _, info = step(keys, s, a, forced_attack(params, 3))
    assert set(np.round(np.unique(r), 6)) == {-1.0, 1.0}
    assert abs(float(info["protected"].mean()) - 0.5) < 4 * 0.5 / np.sqrt(4000)


def test_nocstr_executes_rule_breaking_action_without_cost():
    env, params = make("ERA-nocstr-v5")
    s = state([3, 0, 0], 10)
    a = jnp.array([7, 7, 6])  # 3 -> 7 is 4 hops (3-0-1-5-7); resources 1, 2 on 7, 6: 4 hops apart
    _, s2, r, _, info = jit_step(env)(jax.random.key(0), s, a, forced_attack(params, 7))
    assert bool(info["valid"]) and float(info["violation"]) == 0.0 and not bool(info["rules_ok"])
    np.testing.assert_array_equal(s2.pos, [7, 7, 6])
    assert float(r) == pytest.approx(1.23)  # v5 node 7 def_rew, no move cost
    _, _, r, _, _ = jit_step(env)(jax.random.key(0), s, a, forced_attack(params, 1))
    assert float(r) == pytest.approx(1.12)  # v5 node 1 unprotected: the stored def_plt (+1.12)


# ------------------------------------------------------------------------------ attacker
def softmax_attack_law(d: dict, last: int, eps: float = 0.05, plan: int | None = None) -> np.ndarray:
    """numpy model: eps-uniform over nodes != last, else dist_payoff mixture of softmaxes."""
    pay = np.array(d["payoff_matrix"])
    k = len(pay)
    avail = np.arange(k) != last
    law = np.zeros(k)
    plans = range(3) if plan is None else [plan]
    for c in plans:
        w = d["att_param"]["dist_payoff"][c] if plan is None else 1.0
        u = pay[np.array(d["att_param"]["idx_tgt"][c]), 2:].mean(axis=1)
        e = np.where(avail, np.exp(u - u.max()), 0.0)
        law += w * e / e.sum()
    return eps * avail / avail.sum() + (1 - eps) * law


def test_attacker_matches_softmax_formula_exactly_and_empirically():
    for version in (1, 3):  # the exact law, no sampling
        env, params = make(f"ERA-v{version}")
        for last in (0, 2, env.num_tgt):
            got = env.attack_probs(state([0, 0, 0], last), params)
            np.testing.assert_allclose(np.asarray(got), softmax_attack_law(load(version), last), atol=1e-6)
    d = load(5)
    env, params = make("ERA-v5")
    n = 20000
    step = jax.jit(jax.vmap(env.step_env, in_axes=(0, None, None, None)))
    for last in (10, 4):  # first step of an episode (all nodes open); node 4 attacked last step
        want = softmax_attack_law(d, last)
        np.testing.assert_allclose(np.asarray(env.attack_probs(state([0, 0, 0], last), params)), want, atol=1e-6)
        keys = jax.random.split(jax.random.key(last), n)
        _, _, _, _, info = step(keys, state([0, 0, 0], last), jnp.array([0, 0, 0]), params)
        counts = np.bincount(np.asarray(info["attacked"]), minlength=10)
        if last < 10:
            assert counts[last] == 0  # never the node attacked last step
        keep = want > 0
        assert stats.chisquare(counts[keep], n * want[keep] / want[keep].sum()).pvalue > 1e-3


def test_episode_plan_draw_keeps_one_plan_drawn_with_dist_payoff():
    d = load(4)
    env, params = make_era(4, plan_draw="episode")
    for c in range(3):
        got = env.attack_probs(state([0, 0, 0], 1, plan=c), params)
        np.testing.assert_allclose(np.asarray(got), softmax_attack_law(d, 1, plan=c), atol=1e-6)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(3), 6000), params)
    counts = np.bincount(np.asarray(states.plan), minlength=3)
    assert stats.chisquare(counts, 6000 * np.array(d["att_param"]["dist_payoff"])).pvalue > 1e-3
    _, s2, _, _, _ = jit_step(env)(jax.random.key(0), state([0, 0, 0], 9, plan=2), jnp.array([0, 0, 0]), params)
    assert int(s2.plan) == 2  # kept for the whole episode


# ------------------------------------------------------------------------------ observation
def test_observation_layout_per_node_rows_flattened():
    env, params = make("ERA-v1")
    obs = env.get_obs(state([2, 0, 2], 1), params)
    adj = np.array(load(1)["adj_matrix"], dtype=np.float32)
    # [defended, 3 resource slots padded with 3, attacked, adjacency row]
    head = np.array(
        [
            [1, 1, 3, 3, 0],  # node 0: resource 1
            [0, 3, 3, 3, 1],  # node 1: empty, attacked last step
            [1, 0, 2, 3, 0],  # node 2: resources 0 and 2
            [0, 3, 3, 3, 0],
            [0, 3, 3, 3, 0],
            [0, 3, 3, 3, 0],
        ],
        dtype=np.float32,
    )
    want = np.concatenate([head, adj], axis=1)
    assert obs.shape == (6 * 11,) and obs.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(obs), want.reshape(-1))
    np.testing.assert_array_equal(np.asarray(env.obs_table(obs)), want)
    assert bool(env.observation_space(params).contains(obs))
    fresh, _ = env.reset(jax.random.key(0), params)
    assert float(env.obs_table(fresh)[:, 4].sum()) == 0.0  # nothing attacked after reset


def test_action_space_samples_every_node_uniformly():
    space = MultiDiscrete([6, 6, 6])
    draws = np.asarray(jax.vmap(space.sample)(jax.random.split(jax.random.key(0), 3000)))
    assert draws.shape == (3000, 3) and draws.dtype == np.int32
    assert set(np.unique(draws)) == set(range(6))  # Box's float truncation would miss 5
    assert bool(space.contains(jnp.array([5, 0, 3]))) and not bool(space.contains(jnp.array([6, 0, 0])))


# ------------------------------------------------------------------------------ episodes
def test_vmap_1024_envs_jit_and_truncation_at_100():
    env, params = make("ERA-v5")
    n = 1024
    keys = jax.random.split(jax.random.key(0), n)
    obs, st = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    def body(carry, key):
        st = carry
        k_a, k_s = jax.random.split(key)
        acts = jax.random.randint(k_a, (n, 3), 0, 10)
        obs, st, r, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_s, n), st, acts, params
        )
        return st, (term, trunc, st.time, info["violation"], obs)

    _, (term, trunc, time, viol, obs) = jax.jit(lambda s, k: jax.lax.scan(body, s, k))(
        st, jax.random.split(jax.random.key(1), 110)
    )
    assert obs.shape == (110, n, 150)
    assert not bool(term.any())
    t = np.asarray(trunc)
    assert t[99].all() and not t[:99].any() and not t[100:].any()  # exactly after 100 steps
    assert (np.asarray(time[99]) == 0).all() and (np.asarray(time[100]) == 1).all()  # auto-reset
    assert 0.0 < float(viol.mean()) < 1.0  # random actions break the rules sometimes


def test_fixed_start_uses_evaluation_positions():
    d = load(2)
    init = np.array([d["attr_for_testing"]["init_state"][str(i)] for i in range(20)])
    env, params = make_era(2, fixed_start=True)
    idx = jnp.array([0, 7, 23])
    _, s = jax.jit(jax.vmap(env.reset_to, in_axes=(0, None, 0)))(jax.random.split(jax.random.key(1), 3), params, idx)
    np.testing.assert_array_equal(np.asarray(s.pos), init[np.asarray(idx) % 20])
    _, s = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(0), 200), params)
    assert all(any((p == row).all() for row in init) for p in np.asarray(s.pos))


# ------------------------------------------------------------------------------ ERA-partial
def partial_model(eps: float = 0.05, steps: int = 100):
    """Exact numpy model of ERA-partial from its specification: returns (R, Q, actions)
    with R[a, z] the reward of joint action a against target z and Q[a, z'] the law of the
    next target after a."""
    actions = list(itertools.product(range(3), repeat=2))
    R, Q = np.zeros((9, 3)), np.zeros((9, 3))
    for i, (a0, a1) in enumerate(actions):
        valid = abs(a0 - a1) <= 1  # path 0-1-2: hop distance |i - j|
        covered = {a0, a1} if valid else set()
        gap = [z for z in range(3) if z not in covered]
        for z in range(3):
            R[i, z] = 1.0 if z in covered else -1.0
            Q[i, z] = eps / 3 + (1 - eps) * (z in gap) / len(gap)
    return R, Q, actions


def partial_return(pi: np.ndarray, eps: float = 0.05, steps: int = 100) -> float:
    """Exact expected 100-step return of the memoryless policy pi (9,)."""
    R, Q, _ = partial_model(eps)
    z = np.full(3, 1 / 3)  # first target uniform
    total = 0.0
    for _ in range(steps):
        total += pi @ R @ z  # a_t ~ pi independent of z_t
        z = pi @ Q  # z_{t+1} law (a_t ~ pi)
    return float(total)


def test_partial_needs_a_stochastic_policy_by_enumeration():
    eye = np.eye(9)
    deterministic = [partial_return(eye[i]) for i in range(9)]  # every deterministic policy
    mix = np.zeros(9)
    mix[[1, 5]] = 0.5  # 1/2 (0, 1) + 1/2 (1, 2)
    best_det, mixed = max(deterministic), partial_return(mix)
    assert best_det == pytest.approx(1 / 3 + 99 * (-1 + 4 * 0.05 / 3))  # closed form
    assert mixed == pytest.approx(1 / 3 + 99 * 0.05 / 3)
    # The best stochastic policy is at least as good as this mixture, so every deterministic
    # policy is worse than it by more than 0.9 per step after the first.
    assert mixed > best_det + 90


def test_partial_env_matches_exact_model():
    env, params = make("ERA-partial")
    R, Q, actions = partial_model()
    acts = jnp.array(actions)
    np.testing.assert_array_equal(
        np.asarray(env.valid_mask(None, acts, params)), [abs(a - b) <= 1 for a, b in actions]
    )
    idx, z = np.divmod(np.arange(27), 3)  # every (action, target) pair
    states = EraPartialState(target=jnp.asarray(z, jnp.int32), time=jnp.zeros(27, jnp.int32))
    _, _, r, _, _ = jax.jit(jax.vmap(env.step_env, in_axes=(None, 0, 0, None)))(
        jax.random.key(0), states, acts[idx], params
    )
    np.testing.assert_array_equal(np.asarray(r), R[idx, z])
    valid = env.valid_mask(None, acts, params)
    probs = jax.vmap(env.next_target_probs, in_axes=(0, 0, None))(acts, valid, params)
    np.testing.assert_allclose(np.asarray(probs), Q, atol=1e-6)
    obs, _ = env.reset(jax.random.key(0), params)
    obs2, *_ = env.step(jax.random.key(1), _, acts[1], params)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(obs2))  # one observation

    # Monte Carlo returns of a deterministic and the mixed policy equal the exact values.
    n = 2000

    def episode_returns(probs, key):
        def body(carry, k):
            st, ret = carry
            k_a, k_s = jax.random.split(k)
            idx = jax.random.choice(k_a, 9, (n,), p=probs)
            _, st, r, _, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_s, n), st, acts[idx], params)
            return (st, ret + r), None

        _, st = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, n), params)
        (_, ret), _ = jax.lax.scan(body, (st, jnp.zeros(n)), jax.random.split(key, 100))
        return ret

    run = jax.jit(episode_returns)
    for probs in [np.eye(9)[1], np.where(np.isin(np.arange(9), [1, 5]), 0.5, 0.0)]:
        ret = np.asarray(run(jnp.asarray(probs), jax.random.key(7)))
        assert abs(ret.mean() - partial_return(probs)) < 4 * ret.std() / np.sqrt(n) + 1e-3
