"""DRA speed on the maze: trials/s for 1 and 1024 vmapped agents, and a NumPy loop.

    python -m benchmarks.dra_speed           # 1 and 1024 agents, 100 timed trials
    python -m benchmarks.dra_speed --quick   # 1 and 1024 agents, 20 timed trials

A trial = one learning episode + 10 gradient rollouts + one sigma step (original settings).
All agents start from the same agent trained for 1000 trials (different random keys), so
the timed trials have steady-state episode lengths (~20 steps) instead of the first
trials' hundreds. Compilation is excluded (the timed program is compiled ahead of time).
The NumPy row is a plain per-step loop of the same algorithm (written here for timing only,
the way the original code runs), timed from the same trained agent.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.dra_common import md_table, maze_trainer
from dra_jax.trainer import Config
from envs_jax import dra_tasks


def numpy_trials(q, sigma, n_trials, cfg: Config, seed=0):
    """The same algorithm as a per-step NumPy loop (no switch); returns steps taken."""
    rng = np.random.default_rng(seed)
    obstacles = dra_tasks.MAZE_OBSTACLE_MASK
    goal = dra_tasks.MAZE_GOAL
    moves = dra_tasks.MAZE_MOVES
    q, sigma = q.copy(), sigma.copy()

    def policy(s):
        z = rng.standard_normal(4)
        x = cfg.beta * (q[s] + z * sigma[s])
        p = np.exp(x - x.max())
        p /= p.sum()
        return rng.choice(4, p=p), z, p

    def step(s, a):
        r, c = min(max(s[0] + moves[a][0], 0), 5), min(max(s[1] + moves[a][1], 0), 8)
        if obstacles[r, c]:
            r, c = s
        return (r, c), (10.0 if (r, c) == goal else -1.0)

    steps = 0
    for _ in range(n_trials):
        s = dra_tasks.MAZE_START
        while s != goal and steps < 10**9:
            a, _, _ = policy(s)
            s1, r = step(s, a)
            _, _, p1 = policy(s1)
            boot = 0.0 if s1 == goal else p1 @ q[s1]
            q[s][a] += cfg.lr_q * (r + cfg.gamma * boot - q[s][a])
            s = s1
            steps += 1
        grad = np.zeros_like(sigma)
        for _ in range(cfg.n_rollouts):
            s = dra_tasks.MAZE_START
            while s != goal:
                a, z, p = policy(s)
                s1, r = step(s, a)
                adv = q[s][a] - q[s].mean()
                g = cfg.beta * z * ((np.arange(4) == a) - p) * adv
                grad[s] += g / cfg.n_rollouts
                s = s1
                steps += 1
        grad -= cfg.lmbda * (sigma / cfg.sigma_base**2 - 1 / sigma)
        sigma = np.clip(sigma + cfg.lr_sigma * grad, cfg.sigma_min, cfg.sigma_max)
    return steps


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--agents", type=int, nargs="+", default=[1, 1024])
    args = p.parse_args()
    n_timed = 20 if args.quick else 100
    cfg = Config()
    tr = maze_trainer(cfg, switch=False)
    print(f"# DRA speed (maze, original settings; jax {jax.__version__}, {jax.devices()[0].platform}, "
          f"{os.cpu_count()} CPUs visible)\n")

    # One agent trained for 1000 trials: the common starting point.
    base, _ = jax.jit(lambda s: tr.run(s, 1000))(tr.init(jax.random.PRNGKey(0)))
    jax.block_until_ready(base)
    rows = []
    for n in args.agents:
        keys = jax.random.split(jax.random.PRNGKey(1), n)
        states = jax.vmap(lambda k: base.replace(key=k))(keys)
        run = jax.jit(jax.vmap(lambda s: tr.run(s, n_timed))).lower(states).compile()  # compile only
        t0 = time.perf_counter()
        out, m = run(states)
        jax.block_until_ready(m)
        dt = time.perf_counter() - t0
        steps = float(np.sum(np.asarray(m["episode_length"])) * (cfg.n_rollouts + 1))
        rows.append([f"JAX, {n} vmapped agent(s)", f"{n * n_timed / dt:,.0f}", f"{steps / dt:,.0f}",
                     f"{dt / n_timed * 1e3:.2f}"])
    q0 = np.asarray(base.agent.q).reshape(6, 9, 4)
    s0 = np.asarray(base.agent.sigma).reshape(6, 9, 4)
    n_np = max(n_timed // 10, 5)
    t0 = time.perf_counter()
    steps = numpy_trials(q0, s0, n_np, cfg)
    dt = time.perf_counter() - t0
    rows.append(["NumPy per-step loop, 1 agent", f"{n_np / dt:,.0f}", f"{steps / dt:,.0f}", f"{dt / n_np * 1e3:.2f}"])
    print(md_table(["implementation", "agent-trials/s", "env steps/s (approx.)", "ms per trial (wall)"], rows))
    print(f"\n({n_timed} timed trials per JAX row, {n_np} for NumPy; env steps/s for JAX counts every "
          "rollout as long as the mean episode; the machine may be shared)")


if __name__ == "__main__":
    main()
