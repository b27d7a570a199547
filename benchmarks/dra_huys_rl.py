"""DRA trained on the Huys task at the original's ``train_fig3.py`` settings (paper preset).

    python -m benchmarks.dra_huys_rl           # 5 restarts x 6e4 trials, flexible and equal
    python -m benchmarks.dra_huys_rl --quick   # 2 restarts x 2000 trials

``paper_config("DRA-huys")``: beta 10, lambda 1, lr_q = lr_sigma = 0.1, gamma 1, sigma0 =
sigma_base = 100, sigma in [1, 100], baseline 'R', 10 rollouts per gradient, the last move's
memories fixed at the known rewards (sigma 1, no cost), gradient rollouts from the learning
episode's start state. The original's protocol: every 1000 trials (after trials 1, 1001,
...) 10,000 fresh episodes from random start states; objective = mean reward - lambda KL
of the 24 learned memories. Equal precision (one shared learned sigma, same preset) is run
beside it in the same vmapped program. This script trains the RL agent (full 3-move
episodes, no planning budget); the budget comparison of the paper's Fig. 3 is
``benchmarks/dra_huys.py`` (the original's ``resourceAllocator.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from benchmarks.dra_common import md_table, mean_sd
from dra_jax.trainer import make_trainer, paper_config


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--restarts", type=int, default=5)
    args = p.parse_args()
    run = harness.Run("dra_huys_rl", vars(args))
    cfg = paper_config("DRA-huys")
    num_trials = 2000 if args.quick else cfg.num_trials
    n = 2 if args.quick else args.restarts
    every, n_eval, chunk = 1000, 2000 if args.quick else 10_000, 1000 if args.quick else 10_000
    cfg = dataclasses.replace(cfg, num_trials=num_trials)
    tr = make_trainer(cfg, "DRA-huys")
    print(f"# DRA on Huys, train_fig3.py settings ({n} restarts x {num_trials} trials; eval {n_eval} episodes "
          f"every {every} trials)\n")
    alloc = jnp.repeat(jnp.asarray([False, True]), n)
    states = jax.vmap(lambda k, a: tr.init_with(k, allocation=a))(jax.random.split(jax.random.PRNGKey(0), 2 * n), alloc)
    step = jax.jit(jax.vmap(lambda s, k: tr.run_evaluated(s, k, chunk, every, n_eval)))
    evs, t0 = [], time.time()
    for i in range(num_trials // chunk):
        states, _, ev = step(states, jax.random.split(jax.random.fold_in(jax.random.PRNGKey(1), i), 2 * n))
        evs.append(jax.tree.map(np.asarray, {k: ev[k] for k in ("reward", "cost", "objective_dra")}))
        print(f"  trials {(i + 1) * chunk}/{num_trials}  {time.time() - t0:6.1f}s", flush=True)
    wall = time.time() - t0
    ev = {k: np.concatenate([e[k] for e in evs], axis=1) for k in evs[0]}  # (2n, num_trials // every)
    marks = sorted({1, len(ev["cost"][0]) // 10, len(ev["cost"][0]) // 2, len(ev["cost"][0])} - {0})
    rows = []
    for j, lab in enumerate(["flexible", "equal"]):
        sl = slice(j * n, (j + 1) * n)
        for m in marks:
            rows.append([lab, f"{(m - 1) * every + 1}", mean_sd(ev["objective_dra"][sl, m - 1]),
                         mean_sd(ev["reward"][sl, m - 1]), mean_sd(ev["cost"][sl, m - 1])])
        last = min(5, ev["cost"].shape[1])
        rows.append([lab, f"mean of last {last} evals", mean_sd(ev["objective_dra"][sl, -last:].mean(1)),
                     mean_sd(ev["reward"][sl, -last:].mean(1)), mean_sd(ev["cost"][sl, -last:].mean(1))])
    print(md_table(["allocation", "after trial", "objective", "reward", "cost"], rows, run=run, part="table"))
    sig = np.asarray(states.agent.sigma)
    print("\nflexible sigma after training (restart means; rows: state 1-6, columns: "
          "(3 moves left: a0, a1), (2 moves left: a0, a1)):")
    m = sig[:n].mean(0)
    for s in range(6):
        print(f"  s{s + 1}: {m[s, 0]:6.1f} {m[s, 1]:6.1f} | {m[6 + s, 0]:6.1f} {m[6 + s, 1]:6.1f}")
    print(f"equal sigma after training: {mean_sd(sig[n:, 0, 0])}")
    print(f"\n(wall {wall:.0f}s for {2 * n} vmapped agents)")


if __name__ == "__main__":
    main()
