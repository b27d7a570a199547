"""Curling hammer shot: the end's score after KR-UCT over each generator's candidates
(Ahmad, Lelis, Bowling 2020, curling experiment; Yee, Lisy, Bowling 2016's KR-UCT).

Generators: the hand-coded shots of Yee et al. (``mu_jax.curling.handcoded_candidates``), and
networks trained with the MU, MAX and plain-policy objectives (one training seed each,
``--steps`` updates of ``--batch`` positions x ``--m`` candidates, Q = one noisy execution).
On ``--positions`` held-out positions and ``--seeds`` search seeds, KR-UCT runs ``--budget``
noisy executions from each generator's candidates; the recommended shot is scored by
``--eval-execs`` further noisy executions (its expected score). Printed: mean over positions,
then mean ± std over seeds; the index of the recommended action (< m: a generated candidate);
wall times. Writes ``benchmarks/results/mu_curling.json`` and the coverage figure
(Appendix B) ``benchmarks/figures/mu_curling_coverage.png``.

    python -m benchmarks.mu_curling --quick     # a smoke run (minutes)
    python -m benchmarks.mu_curling             # the run in RESULTS_mu.md
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from envs_jax import make
from mu_jax import curling as K

ROOT = Path(__file__).resolve().parent


def coverage_figure(gens, env, params, states, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(gens), figsize=(4.2 * len(gens), 4), squeeze=False)
    for ax, (name, (net, var, m)) in zip(axes[0], gens.items()):
        cands = jax.vmap(lambda s, k: K.generator_candidates(net, var, env, s, params, m, k))(
            states, jax.random.split(jax.random.key(7), states.pos.shape[0]))
        c = np.asarray(cands)  # [S, m, 3]
        cmap = plt.get_cmap("tab10")
        for i in range(m):
            for turn, marker in ((True, "o"), (False, "x")):
                sel = (c[:, i, 2] >= 0.5) == turn
                ax.scatter(c[sel, i, 1], c[sel, i, 0], s=8, marker=marker, color=cmap(i % 10), alpha=0.5,
                           label=f"a{i + 1}" if turn else None)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.set_xlabel("angle (normalised)"), ax.set_ylabel("speed (normalised)")
        ax.set_title(f"{name}: candidates on {c.shape[0]} positions")
    axes[0][0].legend(fontsize=6, ncol=2, loc="upper left")
    fig.suptitle("MU-curling coverage (o: turn +1, x: turn -1; draw weight ~ speed 0.2-0.25)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=150, help="generator updates")
    ap.add_argument("--batch", type=int, default=8, help="positions per update")
    ap.add_argument("--m", type=int, default=8, help="candidates per position")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--positions", type=int, default=24, help="held-out positions")
    ap.add_argument("--seeds", type=int, default=5, help="search seeds")
    ap.add_argument("--budget", type=int, default=64, help="KR-UCT executions per position")
    ap.add_argument("--eval-execs", type=int, default=32, help="executions scoring the recommended shot")
    ap.add_argument("--out", default=str(ROOT / "results" / "mu_curling.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.positions, args.seeds, args.budget, args.eval_execs = 3, 4, 2, 40, 8
    env, params = make("MU-curling")
    t_all = time.time()
    load0 = os.getloadavg()

    gens, train_info = {}, {}
    for obj in ("mu", "max", "policy"):
        t0 = time.time()
        cfg = K.GenConfig(objective=obj, m=args.m, batch=args.batch, steps=args.steps, lr=args.lr)
        net, var, hist = K.train_generator(jax.random.key(0), env, params, cfg)
        hist = np.asarray(hist)
        k = max(len(hist) // 5, 1)
        train_info[obj] = {"wall_s": time.time() - t0, "best_q_first": float(hist[:k].mean()), "best_q_last": float(hist[-k:].mean())}
        print(f"trained {obj}: {train_info[obj]}", flush=True)
        gens[obj] = (net, var, args.m)

    states = jax.vmap(lambda k: env.sample_state(k, params))(jax.random.split(jax.random.key(12345), args.positions))

    def one(st, c, v, k):
        ks, ke = jax.random.split(k)
        res = K.curling_search(ks, env, st, c, params, args.budget, v)
        return env.mean_reward(ke, st, res.choice, params, args.eval_execs), res.choice_index

    search_all = jax.jit(jax.vmap(one))  # compiled once per candidate count

    def evaluate(cands, valid, key):
        return search_all(states, cands, valid, jax.random.split(key, args.positions))

    results = {}
    hand, hand_valid = jax.vmap(lambda s: K.handcoded_candidates(s, params))(states)
    for name in ("handcoded", "mu", "max", "policy"):
        t0 = time.time()
        per_seed, picks = [], []
        for seed in range(args.seeds):
            key = jax.random.key(1000 + seed)
            if name == "handcoded":
                cands, valid = hand, hand_valid
            else:
                net, var, m = gens[name]
                cands = jax.vmap(lambda s, k: K.generator_candidates(net, var, env, s, params, m, k))(
                    states, jax.random.split(jax.random.fold_in(key, 1), args.positions))
                valid = jnp.ones(cands.shape[:2], bool)
            score, idx = evaluate(cands, valid, key)
            per_seed.append(float(np.mean(score)))
            picks.append(np.asarray(idx).tolist())
        results[name] = {"mean": float(np.mean(per_seed)), "std": float(np.std(per_seed)), "per_seed": per_seed,
                         "picks": picks, "wall_s": time.time() - t0}
        print(f"{name:9s} score after KR-UCT {np.mean(per_seed):+.3f} ± {np.std(per_seed):.3f}  ({time.time() - t0:.0f} s)", flush=True)

    fig = ROOT / "figures" / ("mu_curling_coverage_quick.png" if args.quick else "mu_curling_coverage.png")
    cov_states = jax.vmap(lambda k: env.sample_state(k, params))(jax.random.split(jax.random.key(999), 128))
    coverage_figure({k: gens[k] for k in ("mu", "max", "policy")}, env, params, cov_states, fig)
    out = {"args": vars(args), "train": train_info, "search": results, "wall_s": time.time() - t_all,
           "load_start": load0, "load_end": os.getloadavg()}
    if not args.quick:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("train", "wall_s", "load_start", "load_end")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
