"""Safe-RL probe benchmark: every safe_jax method on the Safe-bandit probe (known constrained
optimum), seeds vmapped in one program; prints a markdown table.

    PYTHONPATH=. python benchmarks/safe_probe.py --seeds 5 --updates 100 --cost-limit 0.25

Figures per seed: the mean over the last ``--tail`` updates of the training metrics ``return``
and ``cost_return`` (mean episode return / cost of the rollout); violation = max(cost - d, 0).
Table: mean +- std over seeds, and the optimum from the closed form (envs_jax.safe_probes).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from envs_jax.safe_probes import bandit_optimum
from safe_jax.algo import METHODS, SafeConfig, SafePPOConfig, build


def run(method, env_id, seeds, updates, cost_limit, tail, ppo_overrides=None, safe_overrides=None):
    ppo = SafePPOConfig().replace(total_timesteps=512 * updates, **(ppo_overrides or {}))
    if method == "cpo":
        ppo = ppo.replace(ent_coef=0.0)
    safe = SafeConfig(method=method, cost_limit=cost_limit, **(safe_overrides or {}))
    train = build(env_id, {"ppo": ppo, "safe": safe})
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    t0 = time.time()
    _, m = jax.block_until_ready(jax.jit(jax.vmap(train))(keys))
    wall = time.time() - t0
    ret = np.asarray(m["return"])[:, -tail:].mean(1)
    cost = np.asarray(m["cost_return"])[:, -tail:].mean(1)
    return ret, cost, wall


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="Safe-bandit")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--updates", type=int, default=100)
    p.add_argument("--tail", type=int, default=10)
    p.add_argument("--cost-limit", type=float, default=0.25)
    args = p.parse_args(argv)
    opt_r, opt_c = bandit_optimum(args.cost_limit)
    print(f"{args.env}, cost limit {args.cost_limit}: optimum return {opt_r:.4f}, cost {opt_c:.4f}; "
          f"{args.seeds} seeds x {args.updates} updates of 512 steps (PASPO's PPO settings); last {args.tail} updates\n")
    print("| method | return | cost | violation max(cost - d, 0) | |return - optimum| | wall s |")
    print("|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        ret, cost, wall = run(method, args.env, args.seeds, args.updates, args.cost_limit, args.tail)
        viol = np.maximum(cost - args.cost_limit, 0)
        print(f"| {method} | {ret.mean():.4f} +- {ret.std():.4f} | {cost.mean():.4f} +- {cost.std():.4f} | "
              f"{viol.mean():.4f} (max {viol.max():.4f}) | {np.abs(ret - opt_r).max():.4f} (worst seed) | {wall:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
