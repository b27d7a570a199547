"""Appendix C (action ordering): how often the first generated candidate is the one selected,
over training, for one generator configuration (issue 19).

Trains one generator on the location game and, every ``--every`` updates, evaluates it on
256 held-out maps: the histogram of the best candidate's index (ties to the lowest index),
of UCB's pick (``--budget`` pulls, reward noise ``--noise``), the mean Q of each candidate
index, and the mean best value. One JSON line per evaluation goes to ``--out`` (appended as
it runs, so a run stopped early keeps its evaluations).

    python -m benchmarks.mu_ordering --network orig --estimator paper --out runs/ord_paper.jsonl
    python -m benchmarks.mu_ordering --network orig --estimator orig --out runs/ord_orig.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from mu_jax.trainer import Config, make_trainer


def ordering_stats(trainer, params, key, test_states, budget: int, noise: float) -> dict:
    """Index histograms of the best candidate and of UCB's pick, mean Q per index, mean best."""
    out = trainer.evaluate_jit(params, key, test_states, budget=budget, noise_std=noise)
    m = trainer.m
    best, ucb, q = np.asarray(out["best_index"]), np.asarray(out["ucb_index"]), np.asarray(out["q"])
    # strict winners: candidate i is the unique maximiser (ties excluded)
    unique = (q == q.max(-1, keepdims=True)).sum(-1) == 1
    return {
        "best_hist": (np.bincount(best, minlength=m) / best.size).round(4).tolist(),
        "ucb_hist": (np.bincount(ucb, minlength=m) / ucb.size).round(4).tolist(),
        "unique_best_hist": (np.bincount(best[unique], minlength=m) / best.size).round(4).tolist(),
        "mean_q_per_index": q.mean(0).round(4).tolist(),
        "best": float(q.max(-1).mean()),
        "ucb_value": float(np.asarray(out["ucb_value"]).mean()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objective", default="mu")
    ap.add_argument("--estimator", default="paper", choices=("paper", "orig"))
    ap.add_argument("--network", default="orig", choices=("ours", "orig"))
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--steps", type=int, default=80_000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--budget", type=int, default=64)
    ap.add_argument("--noise", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    cfg = Config(objective=args.objective, estimator=args.estimator, network=args.network, baseline=args.baseline,
                 lr=args.lr, channels=args.channels, total_steps=args.steps)
    trainer = make_trainer(cfg, "MU-location")
    test_states = trainer.test_states()
    state = jax.jit(trainer.init)(jax.random.PRNGKey(args.seed))
    chunk = jax.jit(lambda s: trainer.run(s, args.every))
    ekey = jax.random.PRNGKey(777)
    t0, cpu0 = time.time(), os.times()
    with open(args.out, "a") as f:
        def log(u):
            rec = {"update": u, "wall_s": round(time.time() - t0, 1),
                   "cpu_s": round(sum(os.times()[:2]) - sum(cpu0[:2]), 1), "load1": os.getloadavg()[0],
                   **ordering_stats(trainer, state.params, ekey, test_states, args.budget, args.noise), "args": vars(args)}
            f.write(json.dumps(rec) + "\n")
            f.flush()
            print(f"update {u:6d} best {rec['best']:.4f} first-best {rec['best_hist'][0]:.3f} "
                  f"first-ucb {rec['ucb_hist'][0]:.3f} ({rec['wall_s']:.0f}s)", flush=True)
        log(0)
        for u in range(args.every, args.steps + 1, args.every):
            state, _ = chunk(state)
            log(u)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
