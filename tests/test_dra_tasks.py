"""DRA tasks (envs_jax.dra_tasks) and the Huys budgeted planner (dra_jax.huys_planning)."""

from __future__ import annotations

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.classic_control.mountain_car import MountainCar

from dra_jax import huys_planning as hp
from envs_jax import dra_tasks, registry

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3


def _step(env, params, pos, action):
    state = dra_tasks.MazeState(pos=jnp.asarray(pos, jnp.int32), time=0)
    obs, state, r, term, _ = env.step_env(jax.random.PRNGKey(0), state, action, params)
    return tuple(int(x) for x in obs), float(r), bool(term)


def test_maze_transitions_walls_obstacles_and_goal():
    env, params = registry.make("DRA-maze")
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    assert tuple(np.asarray(obs)) == (2, 0)
    assert _step(env, params, (2, 0), UP) == ((1, 0), -1.0, False)
    assert _step(env, params, (2, 0), LEFT) == ((2, 0), -1.0, False)  # outer wall: stay, pay
    assert _step(env, params, (2, 1), RIGHT) == ((2, 1), -1.0, False)  # obstacle (2,2)
    assert _step(env, params, (5, 5), UP) == ((5, 5), -1.0, False)  # obstacle (4,5)
    assert _step(env, params, (0, 6), RIGHT) == ((0, 6), -1.0, False)  # obstacle (0,7) before the switch
    assert _step(env, params, (1, 8), UP) == ((0, 8), 10.0, True)  # goal
    assert _step(env, params, (1, 6), UP) == ((0, 6), -1.0, False)  # not yet a goal


def test_maze_switch_opens_0_7_and_moves_goal_to_0_6():
    env, params = registry.make("DRA-maze")
    assert not bool(env.params_for_trial(params, 2999).switched)
    after = env.params_for_trial(params, 3000)
    assert bool(after.switched)
    assert _step(env, after, (0, 5), RIGHT) == ((0, 6), 10.0, True)
    assert _step(env, after, (0, 8), LEFT) == ((0, 7), -1.0, False)  # (0,7) is open now
    assert _step(env, after, (1, 8), UP) == ((0, 8), -1.0, False)  # the old goal is a plain cell
    assert _step(env, after, (1, 6), RIGHT) == ((1, 6), -1.0, False)  # (1,7) is still an obstacle


def _shortest_path(env, params) -> int:
    """Breadth-first search through the env's own step function."""
    start, goal = (2, 0), tuple(int(x) for x in np.asarray(env.goal(params)))
    dist, todo = {start: 0}, deque([start])
    while todo:
        p = todo.popleft()
        for a in range(4):
            q, _, _ = _step(env, params, p, a)
            if q not in dist:
                dist[q] = dist[p] + 1
                todo.append(q)
    return dist[goal]


def test_maze_shortest_paths_are_14_before_and_8_after_the_switch():
    """Hand count: before, round the bottom of the (1..3, 2) wall and up column 8 (14 moves);
    after, two moves up and six right along row 0 (8 moves)."""
    env, params = registry.make("DRA-maze")
    assert _shortest_path(env, params) == 14
    assert _shortest_path(env, params.replace(switched=True)) == 8


def test_maze_gymnax_step_autoresets_and_reports_termination():
    env, params = registry.make("DRA-maze")
    state = dra_tasks.MazeState(pos=jnp.asarray((1, 8), jnp.int32), time=5)
    obs, state, r, term, trunc, info = env.step(jax.random.PRNGKey(0), state, UP, params)
    assert bool(term) and not bool(trunc) and float(r) == 10.0
    assert tuple(np.asarray(obs)) == (2, 0) and tuple(np.asarray(info["final_observation"])) == (0, 8)
    assert int(env.tabular_index(jnp.array([5, 8]))) == 53 and env.num_tabular_states() == 54


def test_huys_task_transitions_rewards_and_unrolled_index():
    env, params = registry.make("DRA-huys")
    # (1-indexed) rewards of the task: 1->2 +140, 1->4 +20, ..., 6->3 +20.
    table = {(1, 2): 140, (1, 4): 20, (2, 3): -20, (2, 5): -70, (3, 4): -20, (3, 6): -70,
             (4, 2): 20, (4, 5): -20, (5, 1): -70, (5, 6): -20, (6, 1): -20, (6, 3): 20}
    for s in range(6):
        for a in range(2):
            st = dra_tasks.HuysState(node=jnp.int32(s), moves_left=jnp.int32(3), time=0)
            obs, st2, r, term, _ = env.step_env(jax.random.PRNGKey(0), st, a, params)
            s2 = int(st2.node)
            assert table[(s + 1, s2 + 1)] == float(r)
            assert int(st2.moves_left) == 2 and not bool(term)
            assert int(env.tabular_index(obs)) == 6 + s2
    assert {tuple(sorted((s1, s2))) for (s1, s2) in table} and len(table) == 12
    # Three moves end the episode.
    st = dra_tasks.HuysState(node=jnp.int32(0), moves_left=jnp.int32(1), time=2)
    *_, term, _ = env.step_env(jax.random.PRNGKey(0), st, 0, params)
    assert bool(term) and env.num_tabular_states() == 18


def test_huys_optimal_values_equal_the_published_table():
    """Backward induction vs the values listed in the original code (depth 3 block order:
    3 moves left, 2 moves left, 1 move left; per state the two actions)."""
    published = np.array([
        100, 20, -20, 0, -20, 50, -20, 50, 50, 100, 100, 20,
        120, 40, -40, -90, 0, -50, 0, -40, 70, 0, 120, 0,
        140, 20, -20, -70, -20, -70, 20, -20, -70, -20, -20, 20,
    ])
    np.testing.assert_array_equal(hp.optimal_q(3).reshape(-1), published)


def _search_bruteforce(q_tilde, s0, k, depth=3):
    """The stated search, written as a loop: from the root take the child with the larger
    sampled value unless that subtree is exhausted; after a leaf restart at the root; stop
    after k paths; return the best explored path's reward."""
    leaves_below = {}
    best = -np.inf
    for _ in range(k):
        s, prefix, total = s0, (), 0.0
        for i in range(depth):
            order = np.argsort(-q_tilde[i, s])
            a = order[0]
            if leaves_below.get(prefix + (a,), 0) >= 2 ** (depth - 1 - i):
                a = order[1]
            prefix = prefix + (a,)
            leaves_below[prefix] = leaves_below.get(prefix, 0) + 1
            total += dra_tasks.HUYS_REWARD[s, a]
            s = dra_tasks.HUYS_SUCC[s, a]
        best = max(best, total)
    return best


def test_planner_visits_the_first_k_depth_first_leaves_like_the_stated_search():
    table = hp.path_table(3)
    rng = np.random.default_rng(0)
    fn = jax.jit(lambda q, s, k: hp.planned_reward(q, s, k, table))
    for _ in range(40):
        q_tilde = hp.optimal_q(3) + 60 * rng.standard_normal((3, 6, 2))
        s0 = int(rng.integers(6))
        for k in range(1, 9):
            assert float(fn(jnp.asarray(q_tilde, jnp.float32), s0, k)) == _search_bruteforce(q_tilde, s0, k)
    # With the whole tree explored the planner finds the best path, whatever the memories.
    for s0 in range(6):
        assert float(fn(jnp.zeros((3, 6, 2)), s0, 8)) == hp.optimal_q(3)[0, s0].max()


def test_planner_score_gradient_matches_common_noise_finite_difference():
    """Equal-precision direction (k = 4 paths, sigma = 20): the sum over memories of the
    score-function gradient vs a central finite difference of the Monte-Carlo objective
    with common noise (which is smooth in sigma although each trial's reward is not)."""
    P = hp.HuysPlanner()
    s, h, k, n = 20.0, 1.0, 4, 100_000
    grad = jax.jit(lambda key: jnp.sum(P.score_gradient(key, jnp.full((P.n_free,), s), k, n)))
    obj = jax.jit(lambda key, x: P.objective(key, jnp.full((P.n_free,), x), k, n)["objective"])
    g = np.array([float(grad(kk)) for kk in jax.random.split(jax.random.PRNGKey(4), 3)])
    key = jax.random.PRNGKey(9)
    fd = (float(obj(key, s + h)) - float(obj(key, s - h))) / (2 * h)
    se = g.std(ddof=1) / np.sqrt(len(g))
    assert abs(g.mean() - fd) < 4 * se + 0.02, (g, fd)
    assert abs(fd) > 0.5  # a real signal, far above the tolerance


def test_mountaincar_is_gymnax_dynamics_on_a_19x15_grid():
    env, params = registry.make("DRA-mountaincar")
    ref = MountainCar()
    key = jax.random.PRNGKey(0)
    obs, st = env.reset(key, params)
    _, st_ref = ref.reset(key, params)
    rng = np.random.default_rng(1)
    for a in rng.integers(0, 3, size=150):
        obs, st, r, term, _ = env.step_env(key, st, int(a), params)
        obs_ref, st_ref, r_ref, term_ref, _ = ref.step_env(key, st_ref, int(a), params)
        assert float(st.position) == float(st_ref.position) and float(r) == float(r_ref) == -1.0
        expect = np.round((np.asarray(obs_ref, np.float32) - np.array([-1.2, -0.07], np.float32)) * [10, 100])
        np.testing.assert_array_equal(np.asarray(obs), expect.astype(int))
    assert env.num_tabular_states() == 19 * 15
    corners = jnp.array([[0, 0], [18, 14]])
    np.testing.assert_array_equal(np.asarray(env.tabular_index(corners)), [0, 284])


def test_factories_reject_bad_arguments():
    with pytest.raises(ValueError, match="depth"):
        dra_tasks.make_huys(depth=0)
    with pytest.raises(TypeError):
        dra_tasks.make_maze(goal=(1, 1))
