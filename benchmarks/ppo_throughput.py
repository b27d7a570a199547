"""Env-steps/s of the PPO engine on CartPole-v1 vs stable-baselines3 PPO, in one run.

    python -m benchmarks.ppo_throughput            # full (about 5 minutes on 2 CPU cores)
    python -m benchmarks.ppo_throughput --quick    # a smoke run

Rows:
- ours, PureJaxRL's classic config: 4 envs x 128 steps, 4 epochs, 4 minibatches, lr 2.5e-4,
  5e5 steps (the whole run is one compiled program; compile time reported separately).
- ours, 2048 envs x 32 steps, 4 epochs, 32 minibatches (same minibatch size per env-step).
- stable-baselines3 PPO (torch, CPU, 8 DummyVecEnv envs, n_steps 128, batch 256, 4 epochs),
  on gymnasium's CartPole-v1, for a shorter budget (it is ~100x slower); needs the `bench`
  extra (`pip install torch==2.13.0` first on CPU machines, then `pip install -e '.[bench]'`).

Timings are the median of ``--repeats`` runs (different seeds; ``benchmarks.harness.timeit``);
final return is the mean episodic return over the last 10 updates. Rows go to
``benchmarks/results/ppo_throughput-*.json`` (``python -m benchmarks.report`` renders them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import numpy as np

import envs_jax
from benchmarks import harness
from ppo_jax.config import PPOConfig
from ppo_jax.engine import make_train
from ppo_jax.policy import MLPActorCritic


def bench_ours(name: str, cfg: PPOConfig, repeats: int) -> dict:
    """Compile the whole run ahead of time, then ``harness.timeit`` it: ``repeats`` calls,
    each with its own seed (no warm-up call: the program is compiled already)."""
    env, params = envs_jax.make("CartPole-v1")
    train = make_train(cfg, env, params, MLPActorCritic(env.action_space(params)))
    t0 = time.perf_counter()
    compiled = jax.jit(train).lower(jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t0
    returns = []

    def once():
        _, metrics = compiled(jax.random.PRNGKey(len(returns)))
        returns.append(metrics["return"])
        return metrics

    t = harness.timeit(once, warmup=0, repeats=repeats)
    finals = [float(np.mean(np.asarray(r)[-10:])) for r in returns]
    steps = cfg.num_updates * cfg.batch_size
    return {
        "name": name,
        "steps": steps,
        "compile_s": compile_s,
        "steps_per_s": t.rate(steps),
        "final_return": f"{np.mean(finals):.1f} (seeds: {', '.join(f'{f:.0f}' for f in finals)})",
        "times_s": t.times_s,
    }


def bench_sb3(steps: int, repeats: int) -> dict:
    try:
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.evaluation import evaluate_policy
    except ImportError:
        return {"name": "stable-baselines3 PPO (not installed: pip install -e '.[bench]')", "steps": 0,
                "compile_s": None, "steps_per_s": float("nan"), "final_return": "-"}
    torch.set_num_threads(os.cpu_count() or 1)
    times, finals = [], []
    for seed in range(repeats):
        vec = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
        model = PPO("MlpPolicy", vec, n_steps=128, batch_size=256, n_epochs=4, learning_rate=2.5e-4,
                    gamma=0.99, gae_lambda=0.95, clip_range=0.2, ent_coef=0.01, seed=seed, device="cpu", verbose=0)
        t0 = time.perf_counter()
        model.learn(total_timesteps=steps)
        times.append(time.perf_counter() - t0)
        finals.append(evaluate_policy(model, vec, n_eval_episodes=10)[0])
    return {
        "name": "stable-baselines3 PPO, torch CPU, 8 envs",
        "steps": steps,
        "compile_s": 0.0,
        "steps_per_s": steps / statistics.median(times),
        "final_return": f"{np.mean(finals):.1f} (eval, after {steps:,} steps)",
        "times_s": times,
    }


COLUMNS = {"name": "run", "steps": "env steps", "compile_s": "compile s", "steps_per_s": "env-steps/s",
           "final_return": "final return"}
FORMATS = {"compile_s": ".1f", "steps_per_s": ",.0f"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small budgets, one repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sb3-steps", type=int, default=50_000)
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    run = harness.Run("ppo_throughput", vars(args), COLUMNS, FORMATS)
    classic = PPOConfig(num_envs=4, num_steps=128, update_epochs=4, num_minibatches=4, lr=2.5e-4,
                        total_timesteps=50_000 if args.quick else 500_000)
    wide = PPOConfig(num_envs=2048, num_steps=32, update_epochs=4, num_minibatches=32, lr=2.5e-4,
                     total_timesteps=2048 * 32 * (2 if args.quick else 8))
    run.add(bench_ours("ours, 4 envs x 128 (PureJaxRL classic)", classic, repeats))
    run.add(bench_ours("ours, 2048 envs x 32", wide, repeats))
    run.add(bench_sb3(5_000 if args.quick else args.sb3_steps, repeats))
    base = run.rows[-1]["steps_per_s"]
    if np.isfinite(base):
        run.notes = (f"median of {repeats}; speed-up over SB3: {run.rows[0]['steps_per_s'] / base:,.0f}x (4 envs), "
                     f"{run.rows[1]['steps_per_s'] / base:,.0f}x (2048 envs)")
    else:
        run.notes = f"median of {repeats}"
    run.finish()


if __name__ == "__main__":
    main()
