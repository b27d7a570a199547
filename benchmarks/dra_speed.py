"""DRA speed on the maze: trials/s for 1 and 1024 vmapped agents, and a NumPy loop.

    python -m benchmarks.dra_speed           # 1 and 1024 agents, 100 timed trials
    python -m benchmarks.dra_speed --quick   # 1 and 1024 agents, 20 timed trials

A trial = one learning episode + 10 gradient rollouts + one sigma step (original settings).
All agents start from the same agent trained for 1000 trials (``--pretrain``; different keys), so
the timed trials have steady-state episode lengths (~20 steps) instead of the first
trials' hundreds. Compilation is excluded (the timed program is compiled ahead of time); each
JAX row is the median of ``--repeats`` calls after a warm-up call (``benchmarks.harness``),
each call from the same starting states. Rows go to ``benchmarks/results/dra_speed-*.json``.
The NumPy row is a plain per-step loop of the same algorithm (written here for timing only,
the way the original code runs), timed from the same trained agent.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from benchmarks import harness
from benchmarks.dra_common import maze_trainer
from dra_jax.trainer import Config
from envs_jax import dra_tasks


def numpy_trials(q, sigma, num_trials, cfg: Config, seed=0):
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
    for _ in range(num_trials):
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
        for _ in range(cfg.num_rollouts):
            s = dra_tasks.MAZE_START
            while s != goal:
                a, z, p = policy(s)
                s1, r = step(s, a)
                adv = q[s][a] - q[s].mean()
                g = cfg.beta * z * ((np.arange(4) == a) - p) * adv
                grad[s] += g / cfg.num_rollouts
                s = s1
                steps += 1
        grad -= cfg.lmbda * (sigma / cfg.sigma_base**2 - 1 / sigma)
        sigma = np.clip(sigma + cfg.lr_sigma * grad, cfg.sigma_min, cfg.sigma_max)
    return steps


COLUMNS = {"implementation": "implementation", "trials_per_s": "agent-trials/s",
           "steps_per_s": "env steps/s (approx.)", "ms_per_trial": "ms per trial (wall)"}
FORMATS = {"trials_per_s": ",.0f", "steps_per_s": ",.0f", "ms_per_trial": ".2f"}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="20 timed trials, one timed call per row")
    p.add_argument("--agents", type=int, nargs="+", default=[1, 1024])
    p.add_argument("--repeats", type=int, default=None, help="timed calls per JAX row (median; default 3, quick 1)")
    p.add_argument("--pretrain", type=int, default=1000, help="trials of the common starting agent")
    args = p.parse_args()
    n_timed = 20 if args.quick else 100
    repeats = args.repeats or (1 if args.quick else 3)
    cfg = Config()
    tr = maze_trainer(cfg, switch=False)
    run = harness.Run("dra_speed", vars(args), COLUMNS, FORMATS)
    print(f"# DRA speed (maze, original settings)\n{harness.header_line(run.header)}\n", flush=True)

    # One agent trained for --pretrain trials: the common starting point.
    base, _ = jax.jit(lambda s: tr.run(s, args.pretrain))(tr.init(jax.random.PRNGKey(0)))
    jax.block_until_ready(base)
    for n in args.agents:
        keys = jax.random.split(jax.random.PRNGKey(1), n)
        states = jax.vmap(lambda k: base.replace(key=k))(keys)
        compiled = jax.jit(jax.vmap(lambda s: tr.run(s, n_timed))).lower(states).compile()  # compile only
        t = harness.timeit(compiled, states, warmup=1, repeats=repeats)  # every call from the same states
        dt = t.median_s
        m = t.result[1]
        steps = float(np.sum(np.asarray(m["episode_length"])) * (cfg.num_rollouts + 1))
        run.add(implementation=f"JAX, {n} vmapped agent(s)", trials_per_s=n * n_timed / dt, steps_per_s=steps / dt,
                ms_per_trial=dt / n_timed * 1e3, agents=n, trials=n_timed, times_s=t.times_s)
    q0 = np.asarray(base.agent.q).reshape(6, 9, 4)
    s0 = np.asarray(base.agent.sigma).reshape(6, 9, 4)
    n_np = max(n_timed // 10, 5)
    t = harness.timeit(numpy_trials, q0, s0, n_np, cfg, warmup=0, repeats=1)
    dt, steps = t.median_s, t.result
    run.add(implementation="NumPy per-step loop, 1 agent", trials_per_s=n_np / dt, steps_per_s=steps / dt,
            ms_per_trial=dt / n_np * 1e3, agents=1, trials=n_np, times_s=t.times_s)
    run.notes = (f"{n_timed} timed trials per JAX row (median of {repeats} calls after a warm-up call), {n_np} for "
                 "NumPy (one call); env steps/s for JAX counts every rollout as long as the mean episode")
    run.finish()


if __name__ == "__main__":
    main()
