"""Throughput of full PASPO training (rollout + 10 PPO epochs, interval LPs included) on the
PASPO envs, next to the original's LP cost alone, measured in the same run.

    python -m benchmarks.paspo_throughput            # 1, 64, 1024, 4096 envs; 3 envs
    python -m benchmarks.paspo_throughput --quick    # 1, 64, 1024 envs, fewer repeats

Ours: ``paspo_jax.algo.build`` with the paper's PPO settings (10 epochs, 8 minibatches per
epoch, lr 1e-3, ...); ``num_envs`` parallel envs, ``num_steps = max(8, 512 // num_envs)``
steps each per update (512 transitions per update at 1 and 64 envs, as the paper's batch;
more at 1024 / 4096 envs, where the minibatch grows with the batch: 8 minibatches per epoch
always, so the number of gradient steps per update stays the paper's 80). One update is
compiled and run once (warm-up), then ``--updates`` more are timed (``benchmarks.harness.timeit``,
one call each); env-steps/s = transitions per update / median wall time of an update.
De-biasing runs once at construction (not timed; printed). Rows go to
``benchmarks/results/paspo_throughput-*.json``.

Original's LP cost: the same ``2 (n - 1)`` interval LPs per action solved one at a time with
scipy's HiGHS (dual simplex, the original's solver) along prefixes sampled from those
intervals; ms per action, and the implied ceiling on env-steps/s of one process that only
solved the sampling LPs (the original also re-solves them in each of the 10 epochs: 11x that
cost per step; it ran 8 worker processes).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import envs_jax
from benchmarks import harness
from paspo_jax.algo import PASPOConfig, build, default_ppo_config

ENVS = {"PASPO-synth-7": "synth7", "PASPO-compute-9": "compute9", "PASPO-portfolio-13": "portfolio13"}


def highs_ms_per_action(env_id: str, num_actions: int, seed: int = 0) -> float:
    """Serial scipy HiGHS: 2(n-1) LPs per action along a chain sampled uniformly in each interval."""
    from scipy.optimize import linprog

    env, params = envs_jax.make(env_id)
    A, b = np.asarray(params.A, np.float64), np.asarray(params.b, np.float64)
    n = A.shape[1]
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(num_actions):
        a = np.zeros(n)
        for i in range(n - 1):
            bounds = [(a[j], a[j]) for j in range(i)] + [(0.0, 1.0)] * (n - i)
            c = np.zeros(n)
            c[i] = 1.0
            lo = linprog(c, A_ub=A, b_ub=b, A_eq=np.ones((1, n)), b_eq=[1.0], bounds=bounds, method="highs-ds")
            hi = linprog(-c, A_ub=A, b_ub=b, A_eq=np.ones((1, n)), b_eq=[1.0], bounds=bounds, method="highs-ds")
            if lo.status or hi.status:
                break
            a[i] = lo.x[i] + rng.uniform() * (hi.x[i] - lo.x[i])
    return 1e3 * (time.perf_counter() - start) / num_actions


def ours_env_steps_per_s(env_id: str, num_envs: int, updates: int, debias_samples: int, bounds: str = "auto",
                         debias: bool = True, **paspo):
    num_steps = max(8, 512 // num_envs)
    ppo = default_ppo_config(num_envs=num_envs, num_steps=num_steps, total_timesteps=num_envs * num_steps * (updates + 1))
    t0 = time.perf_counter()
    trainer = build(env_id, {"ppo": ppo, "paspo": PASPOConfig(debias=debias, debias_samples=debias_samples, bounds=bounds,
                                                                      **paspo)})
    if debias:
        trainer.policy.debias_offsets()
    t_build = time.perf_counter() - t0
    box = [jax.jit(trainer.init)(jax.random.PRNGKey(0))]
    run = jax.jit(trainer.run, static_argnums=1)

    def update():
        box[0], metrics = run(box[0], 1)
        return metrics

    t = harness.timeit(update, warmup=1, repeats=updates)  # the warm-up call compiles
    t_compile, t_run = t.warmup_s[0], t.median_s
    metrics = t.result
    steps = ppo.batch_size  # per update
    viol = float(np.asarray(metrics["violation_rate"]).max())
    return steps / t_run, t_compile, t_build, ppo.batch_size, viol


COLUMNS = {"env": "env", "envs": "envs", "batch": "batch", "steps_per_s": "ours: env-steps/s (rollout + 10 epochs)",
           "highs_ms": "original LPs: ms/action (HiGHS, serial)",
           "ceiling": "original ceiling: actions/s (sampling LPs only)", "ratio": "ours / ceiling",
           "violation_rate": "violation rate"}
FORMATS = {"steps_per_s": ",.0f", "highs_ms": ".1f", "ceiling": ".1f", "ratio": "{:,.0f}x", "violation_rate": ".2g"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1, 64, 1024 envs; 1 timed update; 5 HiGHS actions")
    p.add_argument("--envs", nargs="*", default=list(ENVS), help="env ids")
    p.add_argument("--sizes", nargs="*", type=int, default=None, help="num_envs values")
    p.add_argument("--updates", type=int, default=None, help="timed updates per size")
    p.add_argument("--debias-samples", type=int, default=None, help="de-bias points (default 100000; quick 5000)")
    p.add_argument("--highs-actions", type=int, default=None, help="actions HiGHS solves (default 30; quick 5)")
    p.add_argument("--bounds", default="auto", help="interval solver: auto (static fast path if built), lp, fast")
    args = p.parse_args(argv)
    sizes = args.sizes or ([1, 64, 1024] if args.quick else [1, 64, 1024, 4096])
    updates = args.updates or (1 if args.quick else 2)
    highs_actions = args.highs_actions or (5 if args.quick else 30)
    debias_samples = args.debias_samples or (5000 if args.quick else 100_000)
    run = harness.Run("paspo_throughput", vars(args), COLUMNS, FORMATS,
                      notes=f"median of {updates} timed update(s) per size after a warm-up (compiling) update; "
                            f"interval bounds: {args.bounds}")
    print(harness.header_line(run.header), flush=True)
    for env_id in args.envs:
        ms = highs_ms_per_action(env_id, highs_actions)
        for n in sizes:
            sps, t_compile, t_build, batch, viol = ours_env_steps_per_s(env_id, n, updates, debias_samples, args.bounds)
            ceiling = 1e3 / ms
            run.add(env=env_id, envs=n, batch=batch, steps_per_s=sps, highs_ms=ms, ceiling=ceiling, ratio=sps / ceiling,
                    violation_rate=viol, compile_s=t_compile, build_debias_s=t_build)
            print(f"  {env_id:20s} envs {n:5d}: {sps:10.0f} env-steps/s (batch {batch}, compile {t_compile:.0f} s, "
                  f"build+debias {t_build:.0f} s, violation rate {viol:.2g}); HiGHS {ms:.1f} ms/action", flush=True)
    run.finish()


if __name__ == "__main__":
    main()
