"""Scaling study of PASPO in the number of entities (the paper's open question): training
throughput and final return on ``PASPO-synth-N`` for N = 7, 20, 50, 100.

    python -m benchmarks.paspo_scaling                         # N = 7 20 50 100, 2 seeds, 50k steps
    python -m benchmarks.paspo_scaling --sizes 7 20 --seeds 5 --steps 150000

For each N: the interval solver PASPO uses (the static fast path when its facet tables fit
their budgets, else the batched dual simplex), full-training throughput (rollout + 10 PPO
epochs, ``benchmarks/paspo_throughput.py``'s measurement) at 64 and ``--big`` envs, and a
training run with the paper's PPO settings (64 envs x 8 steps, seeds vmapped in one
program). Returns are put on a common scale with two references computed from the env's
own reward MLP on uniform points of its polytope (``paspo_jax.polytope`` samplers):
``uniform`` = the expected return of the uniform policy on the polytope, ``best`` = 2 x the
mean over states of the best reward among those points (a lower bound on the optimum).
``gap closed`` = (final - uniform) / (best - uniform).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import envs_jax
from benchmarks import harness
from benchmarks.paspo_fidelity import run_variant
from benchmarks.paspo_throughput import ours_env_steps_per_s
from envs_jax.paspo_synth import NUM_STATES
from paspo_jax.policy import static_polytope


def reward_references(env_id: str, num_points: int, seed: int = 0):
    """(uniform, best, path): expected 2-step return of the uniform policy on the polytope, the
    best-of-``num_points`` return, and the interval solver PASPO uses for this env."""
    env, params = envs_jax.make(env_id)
    poly = static_polytope(env, params)
    path = "fast path" if poly.fast is not None else "LP (dual simplex)"
    # rejection: the random polytopes keep 14-16% of the simplex for every N (random_polytope)
    points = jnp.asarray(poly.sample_uniform(jax.random.PRNGKey(seed), num_points, method="rejection"), jnp.float32)

    reward = lambda s, a: env.reward(s, a, params)  # the env's own reward MLP
    r = jax.jit(jax.vmap(lambda s: jax.vmap(lambda a: reward(s, a))(points)))(jnp.arange(NUM_STATES))
    r = np.asarray(r)  # (states, points)
    steps = params.max_steps_in_episode
    return steps * float(r.mean()), steps * float(r.max(axis=1).mean()), path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="*", type=int, default=[7, 20, 50, 100])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--steps", type=int, default=51_200)
    p.add_argument("--big", type=int, default=1024, help="the larger num_envs of the throughput column (0: skip it)")
    p.add_argument("--debias-samples", type=int, default=20_000)
    p.add_argument("--ref-points", type=int, default=20_000)
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--lp-warm-start", action=argparse.BooleanOptionalAction, default=True,
                   help="PASPOConfig.lp_warm_start (LP path only; on by default)")
    p.add_argument("--no-debias-throughput", action="store_true",
                   help="time the throughput without de-biasing (its one-off fit is slow on the LP path at N = 100)")
    args = p.parse_args(argv)
    columns = {"N": "N", "intervals": "intervals", "sps_64": "env-steps/s (64 envs)",
               "sps_big": f"env-steps/s ({args.big} envs)", "uniform": "uniform", "best": f"best of {args.ref_points}",
               "first": "first 10%", "final": "final (last 10%)", "gap_closed": "gap closed",
               "violation_rate": "violation rate", "train_wall_s": "train wall s"}
    formats = {"sps_64": ",.0f", "sps_big": ",.0f", "uniform": ".3f", "best": ".3f", "first": ".3f",
               "gap_closed": ".2f", "violation_rate": ".4f", "train_wall_s": ".0f"}
    run = harness.Run("paspo_scaling", vars(args), columns, formats,
                      notes=f"{args.seeds} seeds x {args.steps} steps per N; de-bias points {args.debias_samples}; "
                            "env-steps/s: median of 1 timed update after a warm-up update")
    print(harness.header_line(run.header), flush=True)
    for n in args.sizes:
        env_id = f"PASPO-synth-{n}"
        t0 = time.perf_counter()
        uniform, best, path = reward_references(env_id, args.ref_points)
        print(f"{env_id}: intervals by {path}; uniform {uniform:.3f}, best-of-{args.ref_points} {best:.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        sps = {0: float("nan")}
        for envs in (64, args.big) if args.big else (64,):
            sps[envs] = ours_env_steps_per_s(env_id, envs, 1, args.debias_samples,
                                             debias=not args.no_debias_throughput,
                                             lp_warm_start=args.lp_warm_start)[0]
            print(f"  {envs:5d} envs: {sps[envs]:9.0f} env-steps/s", flush=True)
        first = final = sd = viol = wall = float("nan")
        if not args.skip_training:
            m, wall = run_variant(env_id, "PASPO", args.steps, args.seeds, args.debias_samples,
                                  lp_warm_start=args.lp_warm_start)
            ret = m["return"]
            tail = max(1, ret.shape[1] // 10)
            per_seed = ret[:, -tail:].mean(1)
            first, final, sd = float(ret[:, :tail].mean()), float(per_seed.mean()), float(per_seed.std())
            viol = float(m["violation_rate"].mean())
            print(f"  trained: first 10% {first:.3f} -> last 10% {final:.3f} +- {sd:.3f}, violation rate "
                  f"{viol:.4f}, {wall:.0f} s", flush=True)
        run.add(N=n, intervals=path, sps_64=sps[64], sps_big=sps[args.big], uniform=uniform, best=best, first=first,
                final=f"{final:.3f} +- {sd:.3f}", final_mean=final, final_sd=sd,
                gap_closed=(final - uniform) / (best - uniform), violation_rate=viol, train_wall_s=wall)
    run.finish()


if __name__ == "__main__":
    main()
