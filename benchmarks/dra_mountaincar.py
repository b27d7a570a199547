"""DRA on MountainCar (gymnax dynamics, 19x15 grid), the original's settings.

    python -m benchmarks.dra_mountaincar          # 2 seeds x 1e4 trials
    python -m benchmarks.dra_mountaincar --quick  # 2 seeds x 300 trials
    python -m benchmarks.dra_mountaincar --paper  # Fig. 2D: baselines R, Q, A at the paper preset

``--paper``: the original's Fig. 2D (``dynamicResourceAllocator.py`` main): 5000 episodes
(``paper_config``; beta_t = min(1.5**(t/1000), 10) reaches 1.5**5 = 7.6), one run per
gradient baseline R, Q, A there (here ``--seeds`` per baseline, one vmapped program). Its
bar is ``mean(100-episode return averages, all but the last 3) - final cost``, where the
averaged returns are the learning episodes' ('R') or the learning and the 10 gradient
rollouts' ('Q', 'A'); printed beside a final evaluation on 200 fresh episodes.

Settings of the original's ``dynamicResourceAllocator.py``: q ~ U(-1, 1), sigma0 1,
sigma_base 5, sigma in [0.01, 10], gamma 1, lr_q 0.2, lr_sigma 0.1, lambda 0.1, 10 rollouts,
baseline 'A', beta_t = min(1.5**(t/1000), 10). Prints the return per block of trials and
writes benchmarks/figures/dra_mountaincar_allocation.png (sigma and choice entropy per
(position, velocity) cell at mid-run and at the end; position down, velocity across).
"""

from __future__ import annotations

import argparse
import time

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from benchmarks.dra_common import fig_dir, evaluate, md_table, mean_sd, run_chunked
from dra_jax import plots
from dra_jax.trainer import default_config, make_trainer, paper_config


def fig2d(args):
    run = harness.Run("dra_mountaincar", vars(args))
    cfg = paper_config("DRA-mountaincar")
    num_trials = 300 if args.quick else cfg.num_trials
    chunk = 100 if args.quick else 500
    cfg = dataclasses.replace(cfg, num_trials=num_trials)
    tr = make_trainer(cfg, "DRA-mountaincar")
    names, n = ["R", "Q", "A"], args.seeds
    print(f"# DRA MountainCar Fig. 2D: baselines {names}, {n} seeds each, {num_trials} episodes (paper preset)\n")
    from dra_jax import objectives as O
    ids = jnp.repeat(jnp.asarray([O.BASELINES.index(b) for b in names]), n)
    states = jax.vmap(lambda k, b: tr.init_with(k, baseline=b))(jax.random.split(jax.random.PRNGKey(0), 3 * n), ids)
    t0 = time.time()
    states, m = run_chunked(tr, states, num_trials, chunk, "fig2d")
    wall = time.time() - t0
    ev = evaluate(tr, states, 200)
    learn, roll = np.asarray(m["learn_return"]), np.asarray(m["return"])
    rows = []
    for j, b in enumerate(names):
        sl = slice(j * n, (j + 1) * n)
        per_ep = learn[sl] if b == "R" else (learn[sl] + 10 * roll[sl]) / 11  # episodes in the orig's average
        blocks = per_ep.reshape(n, -1, 100).mean(-1)
        orig_reward = blocks[:, :-3].mean(1) if blocks.shape[1] > 3 else blocks.mean(1)
        cost = ev["cost"][sl]
        rows.append([b, mean_sd(orig_reward), mean_sd(cost), mean_sd(orig_reward - cost),
                     mean_sd(ev["reward"][sl]), mean_sd(ev["objective_dra"][sl]),
                     mean_sd(learn[sl][:, -500:].mean(1))])
    print(md_table(["baseline", "orig. reward (mean over training)", "final cost", "orig. Fig. 2D objective",
                    "final eval reward (200 ep.)", "final eval objective", "learning return, last 500"], rows,
                   run=run, part="fig2d"))
    print(f"\n(wall {wall:.0f}s for {3 * n} vmapped agents)")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--paper", action="store_true", help="Fig. 2D: baselines R, Q, A at the paper preset")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    if args.paper:
        return fig2d(args)
    args.figs = fig_dir(args.quick)
    run = harness.Run("dra_mountaincar", vars(args))
    n = 300 if args.quick else 10_000
    chunk = 100 if args.quick else 1000
    seeds = 2
    cfg = dataclasses.replace(default_config("DRA-mountaincar"), num_trials=n)
    tr = make_trainer(cfg, "DRA-mountaincar")
    print(f"# DRA MountainCar ({'quick' if args.quick else 'full'}: {seeds} seeds x {n} trials)\n")
    t0 = time.time()
    states = jax.vmap(tr.init)(jax.random.split(jax.random.PRNGKey(0), seeds))
    states, m = run_chunked(tr, states, n, chunk, "mountaincar")
    blocks = np.asarray(m["return"]).reshape(seeds, -1, chunk).mean(-1)
    rows = [[f"{(i + 1) * chunk}", mean_sd(blocks[:, i]), mean_sd(m["cost"].reshape(seeds, -1, chunk).mean(-1)[:, i]),
             f"{np.asarray(m['beta']).reshape(seeds, -1, chunk)[0, i].mean():.2f}"] for i in range(blocks.shape[1])]
    print(md_table(["trials up to", "return (mean of block)", "cost", "beta"], rows, run=run, part="blocks"))
    ev = evaluate(tr, states, 200)
    print(f"\nfinal eval (200 episodes): return {mean_sd(ev['reward'])}, cost {mean_sd(ev['cost'])}, "
          f"objective {mean_sd(ev['objective_dra'])}")
    plots.plot_allocation(tr.task, states.snapshot, states.agent, float(cfg.beta),
                          args.figs / "dra_mountaincar_allocation.png",
                          before_label=f"trial {tr.snapshot_trial + 1}", after_label=f"trial {n}")
    print(f"(figure {args.figs / 'dra_mountaincar_allocation.png'}; {time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
