"""Fidelity runs of PASPO's comparison (Winkel et al. 2024, Fig. 3-5): PASPO (de-biased and
not) against the Dirichlet, Lagrangian and projection baselines, the paper's PPO settings.

    python -m benchmarks.paspo_fidelity --env PASPO-synth-7 --seeds 5 --steps 150000
    python -m benchmarks.paspo_fidelity --quick          # synth-7, 2 seeds, 20k steps

Seeds of one method run side by side in one program (``jax.vmap`` over keys). Prints a table
(final return = mean over the last 10% of updates, mean +- std over seeds; violation rate =
fraction of executed actions with summed violation > 1e-6, over the whole run and over the
last 10%), writes the curves to ``--out`` (npz) and a figure (return and violation rate vs
env steps, mean and min/max band over seeds).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from benchmarks import harness
from paspo_jax.algo import PASPOConfig, build, default_ppo_config

VARIANTS = {
    "PASPO": dict(method="paspo"),
    "PASPO (no de-bias)": dict(method="paspo", debias=False),
    "Dirichlet": dict(method="dirichlet"),
    "Lagrangian": dict(method="lagrangian"),
    "Projection": dict(method="projection"),
}


def run_variant(env_id, variant, steps, seeds, debias_samples, ent_coef=None, **paspo):
    ppo = default_ppo_config(total_timesteps=steps)
    if ent_coef is not None:
        ppo = ppo.replace(ent_coef=ent_coef)
    kwargs = dict(VARIANTS[variant], **paspo)
    if kwargs.get("method") == "paspo":
        kwargs.setdefault("debias_samples", debias_samples)
    trainer = build(env_id, {"ppo": ppo, "paspo": PASPOConfig(**kwargs)})
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    t0 = time.perf_counter()
    _, metrics = jax.jit(jax.vmap(trainer))(keys)
    jax.block_until_ready(metrics)
    wall = time.perf_counter() - t0
    m = {k: np.asarray(v) for k, v in metrics.items()}
    return m, wall


COLUMNS = {"method": "method", "final": "final return (mean +- std over seeds)",
           "violation_rate": "violation rate (whole run)", "violation_rate_last10": "(last 10%)", "wall_s": "wall s"}
FORMATS = {"violation_rate": ".4f", "violation_rate_last10": ".4f", "wall_s": ".0f"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="PASPO-synth-7")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=150_000)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS))
    p.add_argument("--debias-samples", type=int, default=100_000)
    p.add_argument("--out", default="benchmarks/figures/paspo_fidelity")
    p.add_argument("--quick", action="store_true", help="2 seeds, 20,480 steps, 10,000 de-bias points")
    p.add_argument("--ent-coef", type=float, default=None, help="entropy coefficient (default: the paper's 0.01)")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.debias_samples = 2, 20_480, 10_000
    ent = "" if args.ent_coef is None else f", ent_coef {args.ent_coef}"
    run = harness.Run("paspo_fidelity", vars(args), COLUMNS, FORMATS)
    print(f"{args.env}: {args.seeds} seeds x {args.steps} steps, paper PPO settings{ent}")
    rows, curves = [], {}
    for variant in args.variants:
        m, wall = run_variant(args.env, variant, args.steps, args.seeds, args.debias_samples, args.ent_coef)
        ret, viol, steps = m["return"], m["violation_rate"], m["env_steps"][0]
        tail = max(1, ret.shape[1] // 10)
        final = ret[:, -tail:].mean(1)
        curves[variant] = dict(steps=steps, ret=ret, viol=viol)
        rows.append((variant, final.mean(), final.std(), viol.mean(), viol[:, -tail:].mean(), wall))
        print(f"  {variant:20s} final return {final.mean():8.3f} +- {final.std():.3f}   violation rate "
              f"{viol.mean():.4f} (last 10%: {viol[:, -tail:].mean():.4f})   {wall:.0f} s", flush=True)
    for variant, mu, sd, v, vt, wall in rows:
        run.add(method=variant, final=f"{mu:.3f} +- {sd:.3f}", final_mean=mu, final_sd=sd, violation_rate=v,
                violation_rate_last10=vt, wall_s=wall)
    run.finish()

    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    if args.ent_coef is not None:
        args.out += f"_ent{args.ent_coef:g}"
    np.savez(args.out + f"_{args.env}.npz", **{f"{k}/{kk}": vv for k, v in curves.items() for kk, vv in v.items()})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for variant, c in curves.items():
        line, = ax1.plot(c["steps"], c["ret"].mean(0), label=variant)
        ax1.fill_between(c["steps"], c["ret"].min(0), c["ret"].max(0), color=line.get_color(), alpha=0.2)
        ax2.plot(c["steps"], c["viol"].mean(0), label=variant, color=line.get_color())
    ax1.set(xlabel="env steps", ylabel="episode return", title=f"{args.env} ({args.seeds} seeds)")
    ax2.set(xlabel="env steps", ylabel="violation rate", title="actions violating A a <= b (> 1e-6)")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out + f"_{args.env}.png", dpi=120)
    print(f"figure: {args.out}_{args.env}.png")


if __name__ == "__main__":
    main()
