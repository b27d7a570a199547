"""Safe-RL benchmark: every safe_jax method on the Safe-bandit probe (known constrained
optimum) or any cost-reporting env (``--env PASPO-synth-7``), seeds vmapped in one program;
prints a markdown table.

    python -m benchmarks.safe_probe --seeds 5 --updates 100 --cost-limit 0.25 \
        --methods "ppo_lag,p3o,p3o[p3o_j_scale=one],cpo"

Figures per seed: the mean over the last ``--tail`` updates of the training metrics ``return``
and ``cost_return`` (mean episode return / cost of the rollout); violation = max(cost - d, 0);
violating actions = the engine's ``violation_rate`` (envs reporting ``info["violation"]``);
violation / step = the policy's ``policy/violation`` metric (allocation envs: the executed
action's summed violation on the env's unit-norm rows, whatever rows the rule's costs use).
Table: mean +- std over seeds, and the optimum from the closed form (envs_jax.safe_probes).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from envs_jax.safe_probes import bandit_optimum
from safe_jax.algo import METHODS, SafeConfig, SafePPOConfig, build, train_seeds


def run(method, env_id, seeds, updates, cost_limit, tail, ppo_overrides=None, safe_overrides=None):
    ppo = SafePPOConfig().replace(total_timesteps=SafePPOConfig().batch_size * updates, **(ppo_overrides or {}))
    if method == "cpo":
        ppo = ppo.replace(ent_coef=0.0)
    safe = SafeConfig(method=method, cost_limit=cost_limit, **(safe_overrides or {}))
    train = build(env_id, {"ppo": ppo, "safe": safe})
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    t0 = time.time()
    _, m = jax.block_until_ready(train_seeds(train, keys))
    wall = time.time() - t0
    ret = np.asarray(m["return"])[:, -tail:].mean(1)
    cost = np.asarray(m["cost_return"])[:, -tail:].mean(1)
    rate = np.asarray(m["violation_rate"])[:, -tail:].mean(1)
    step_viol = np.asarray(m["policy/violation"])[:, -tail:].mean(1) if "policy/violation" in m else np.full(seeds, np.nan)
    return ret, cost, rate, step_viol, wall


def _parse(entry: str):
    """``method`` or ``method[field=value;field=value]`` (SafeConfig overrides)."""
    if "[" not in entry:
        return entry, {}
    method, rest = entry.rstrip("]").split("[", 1)
    overrides = {}
    for item in rest.split(";"):
        k, v = item.split("=")
        typ = type(getattr(SafeConfig(), k))
        overrides[k] = typ(v)
    return method, overrides


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="Safe-bandit")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--updates", type=int, default=100)
    p.add_argument("--tail", type=int, default=10)
    p.add_argument("--cost-limit", type=float, default=0.25)
    p.add_argument("--lr", type=float, default=None, help="policy learning rate (default: PASPO's 1e-3)")
    args = p.parse_args(argv)
    ppo_over = {} if args.lr is None else {"lr": args.lr}
    bandit = args.env.startswith("Safe-bandit")
    opt_r, opt_c = bandit_optimum(args.cost_limit) if bandit else (np.nan, np.nan)
    head = f"optimum return {opt_r:.4f}, cost {opt_c:.4f}; " if bandit else ""
    print(f"{args.env}, cost limit {args.cost_limit}: {head}"
          f"{args.seeds} seeds x {args.updates} updates of 512 steps (PASPO's PPO settings"
          f"{'' if args.lr is None else f', lr {args.lr}'}); last {args.tail} updates\n")
    print("| method | return | episode cost | violation max(cost - d, 0) | violating actions | violation / step | |return - optimum| | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for entry in args.methods.split(","):
        method, overrides = _parse(entry)
        ret, cost, rate, step_viol, wall = run(method, args.env, args.seeds, args.updates, args.cost_limit, args.tail, ppo_overrides=ppo_over,
                                    safe_overrides=overrides)
        viol = np.maximum(cost - args.cost_limit, 0)
        print(f"| {entry} | {ret.mean():.4f} +- {ret.std():.4f} | {cost.mean():.4f} +- {cost.std():.4f} | "
              f"{viol.mean():.4f} (max {viol.max():.4f}) | {rate.mean():.4f} | {step_viol.mean():.4g} | {np.abs(ret - opt_r).max():.4f} (worst seed) | {wall:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
