"""DRA on MountainCar (gymnax dynamics, 19x15 grid), the original's settings.

    python benchmarks/dra_mountaincar.py          # 2 seeds x 1e4 trials
    python benchmarks/dra_mountaincar.py --quick  # 2 seeds x 300 trials

Settings of the original's ``dynamicResourceAllocator.py``: q ~ U(-1, 1), sigma0 1,
sigma_base 5, sigma in [0.01, 10], gamma 1, lr_q 0.2, lr_sigma 0.1, lambda 0.1, 10 rollouts,
baseline 'A', beta_t = min(1.5**(t/1000), 10). Prints the return per block of trials and
writes benchmarks/figures/dra_mountaincar_allocation.png (sigma and choice entropy per
(position, velocity) cell at mid-run and at the end; position down, velocity across).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dataclasses

import jax
import numpy as np

from dra_common import fig_dir, evaluate, md_table, mean_sd, run_chunked
from dra_jax import plots
from dra_jax.trainer import default_config, make_trainer


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    args.figs = fig_dir(args.quick)
    n = 300 if args.quick else 10_000
    chunk = 100 if args.quick else 1000
    seeds = 2
    cfg = dataclasses.replace(default_config("DRA-mountaincar"), n_trials=n)
    tr = make_trainer(cfg, "DRA-mountaincar")
    print(f"# DRA MountainCar ({'quick' if args.quick else 'full'}: {seeds} seeds x {n} trials)\n")
    t0 = time.time()
    states = jax.vmap(tr.init)(jax.random.split(jax.random.PRNGKey(0), seeds))
    states, m = run_chunked(tr, states, n, chunk, "mountaincar")
    blocks = np.asarray(m["return"]).reshape(seeds, -1, chunk).mean(-1)
    rows = [[f"{(i + 1) * chunk}", mean_sd(blocks[:, i]), mean_sd(m["cost"].reshape(seeds, -1, chunk).mean(-1)[:, i]),
             f"{np.asarray(m['beta']).reshape(seeds, -1, chunk)[0, i].mean():.2f}"] for i in range(blocks.shape[1])]
    print(md_table(["trials up to", "return (mean of block)", "cost", "beta"], rows))
    ev = evaluate(tr, states, 200)
    print(f"\nfinal eval (200 episodes): return {mean_sd(ev['reward'])}, cost {mean_sd(ev['cost'])}, "
          f"objective {mean_sd(ev['objective_dra'])}")
    plots.plot_allocation(tr.task, states.snapshot, states.agent, float(cfg.beta),
                          args.figs / "dra_mountaincar_allocation.png",
                          before_label=f"trial {tr.snapshot_trial + 1}", after_label=f"trial {n}")
    print(f"(figure {args.figs / 'dra_mountaincar_allocation.png'}; {time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
