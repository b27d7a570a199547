"""2-D peaks: regret after UCB and KR-UCB search over each generator's candidates.

The four generators (MU, MAX, plain policy, diversity) are trained side by side (seeds
vmapped) through the expected reward (pathwise gradients; Gaussian heads whose means are the
soft-argmax of per-cell logits, ``head_layer="spatial"``, by default). On 256 held-out
states each generator proposes m = 8 candidates and a search with noisy rewards picks one
(noise std 0.1, the domain's own, and 0.3, a harder search):

* UCB over the 8 candidates;
* KR-UCB from the 8 candidates (Gaussian kernel width 0.05, C = 1, widening threshold 0.9,
  progressive widening to ``ceil(sqrt(t))`` actions), recommending the most pulled action
  (default) or the action of largest kernel-weighted visits W.

Regret = ``max_a Q(s, a) - Q(s, recommended action)`` (``max_a`` by a 201^2 grid plus a local
refinement). Uniformly random candidates are the reference. Also writes the coverage,
action-ordering and training-curve figures.

    python -m benchmarks.mu_peaks2d --quick
    python -m benchmarks.mu_peaks2d
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np

from benchmarks.mu_common import OBJECTIVES, mean_std, plot_curves, seed_params, train_objective
from mu_jax import plots
from mu_jax.search import kr_ucb_search, ucb_search
from mu_jax.trainer import Config, make_trainer

FIG = Path(__file__).resolve().parent / "figures"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 seeds, 400 updates, 64 test states")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--head", default="gaussian", choices=("gaussian", "beta"))
    ap.add_argument("--head-layer", default="spatial", choices=("dense", "spatial"))
    ap.add_argument("--diversity-weight", type=float, default=0.1)
    ap.add_argument("--test-states", type=int, default=256)
    ap.add_argument("--budget", type=int, default=100, help="search pulls per state")
    ap.add_argument("--noises", default="0.1,0.3", help="stds of the reward noise the searches see (0.1: the env's)")
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    noises = [float(x) for x in args.noises.split(",") if x]
    if args.quick:
        args.seeds, args.steps, args.test_states = 2, 400, 64
    eval_every = args.eval_every or max(args.steps // 20, 1)
    objectives = [o for o in args.objectives.split(",") if o]
    tag = args.tag or ("_quick" if args.quick else "")
    FIG.mkdir(parents=True, exist_ok=True)

    print(f"# 2-D peaks: {args.seeds} seeds x {args.steps} updates, batch {args.batch}, m={args.candidates}, "
          f"Adam {args.lr:g}, {args.channels} channels, {args.head} heads ({args.head_layer}, pathwise), search budget {args.budget}; "
          f"jax {jax.__version__} on {jax.devices()[0].platform}")
    base = dict(num_candidates=args.candidates, batch_size=args.batch, lr=args.lr, total_steps=args.steps,
                channels=args.channels, head=args.head, head_layer=args.head_layer, diversity_weight=args.diversity_weight,
                search_budget=args.budget)
    probe = make_trainer(Config(**base), "MU-peaks2d")
    env, params = probe.env, probe.env_params
    test_states = probe.sample_states(jax.random.PRNGKey(2024), args.test_states)
    opt = np.asarray(jax.jit(jax.vmap(lambda s: env.optimal_value(s, params)))(test_states))

    curves, rows, cov, order = {}, [], {}, {}
    for o in objectives:
        cfg = Config(objective=o, **base)
        trainer, states, curve = train_objective(cfg, "MU-peaks2d", args.seeds, args.steps, eval_every, test_states)
        curve = {**curve, "best": opt.mean() - curve["best"]}  # regret curve
        curves[o] = curve
        for nz in noises:
            ev = [trainer.evaluate_jit(seed_params(states, i), jax.random.PRNGKey(100 + i), test_states, kr_ucb=True, noise_std=nz)
                  for i in range(args.seeds)]
            ev_kw = [trainer.evaluate_jit(seed_params(states, i), jax.random.PRNGKey(100 + i), test_states, kr_ucb=True,
                                          noise_std=nz, kr_recommend="kernel_visits") for i in range(args.seeds)]
            regret = lambda key, evs=ev: np.asarray([opt.mean() - np.asarray(e[key]).mean() for e in evs])
            widened = np.asarray([np.mean(np.asarray(e["kr_index"]) >= args.candidates) for e in ev])
            rows.append((o, nz, regret("best"), regret("ucb_value"), regret("kr_value"), regret("kr_value", ev_kw),
                         widened, curve["seconds"]))
        cov[o] = np.asarray(ev[0]["actions"])
        order[o] = (np.concatenate([np.asarray(e["best_index"]) for e in ev]), np.concatenate([np.asarray(e["ucb_index"]) for e in ev]))

    # uniformly random candidates
    rand = jax.random.uniform(jax.random.PRNGKey(5), (args.test_states, args.candidates, 2))

    def searches(k, s, acts, nz):
        k1, k2 = jax.random.split(k)
        p = params.replace(noise_std=nz)
        u = ucb_search(k1, lambda kk, i: env.noisy_reward(kk, s, acts[i], p), args.candidates, args.budget)
        r = kr_ucb_search(k2, lambda kk, a: env.noisy_reward(kk, s, a, p), acts, args.budget)
        rw = kr_ucb_search(k2, lambda kk, a: env.noisy_reward(kk, s, a, p), acts, args.budget, recommend="kernel_visits")
        q = lambda a: env.expected_reward(s, a, params)
        return jax.vmap(q)(acts).max(), q(acts[u.choice]), q(r.choice), q(rw.choice)

    search_rand = jax.jit(jax.vmap(searches, in_axes=(0, 0, 0, None)))
    keys = jax.random.split(jax.random.PRNGKey(6), args.test_states)

    print(f"\nmean optimum max_a Q(s, a) over {args.test_states} test states: {opt.mean():.4f}")
    print(f"\n| generator | search noise | regret of best candidate | regret after UCB | regret after KR-UCB | "
          f"KR-UCB, max-W recommendation | KR-UCB picks a widened action | train time |")
    print("|---|---|---|---|---|---|---|---|")
    for nz in noises:
        rb, ru, rk, rw = search_rand(keys, test_states, rand, nz)
        print(f"| random candidates | {nz} | {opt.mean() - float(rb.mean()):.4f} | {opt.mean() - float(ru.mean()):.4f} | "
              f"{opt.mean() - float(rk.mean()):.4f} | {opt.mean() - float(rw.mean()):.4f} | | |")
        for o, nz_o, b, u, k, kw, w, sec in rows:
            if nz_o == nz:
                print(f"| {o} | {nz} | {mean_std(b)} | {mean_std(u)} | {mean_std(k)} | {mean_std(kw)} | {w.mean():.2f} | {sec:.0f}s |")

    print(f"\nregret of the best candidate over training (mean over {args.seeds} seeds):")
    idx = np.linspace(0, len(curves[objectives[0]]["update"]) - 1, 6).round().astype(int)
    print("| update | " + " | ".join(objectives) + " |")
    print("|---|" + "---|" * len(objectives))
    for j in idx:
        u = curves[objectives[0]]["update"][j]
        print(f"| {u} | " + " | ".join(f"{curves[o]['best'][j].mean():.4f}" for o in objectives) + " |")

    plot_curves(curves, "regret of the best candidate", f"2-D peaks, m={args.candidates}, Adam {args.lr:g}, {args.seeds} seeds",
                FIG / f"mu_peaks2d_curves{tag}.png")
    plots.coverage_figure(cov, "continuous", env, FIG / f"mu_peaks2d_coverage{tag}.png")
    plots.ordering_figure(order, args.candidates, FIG / f"mu_peaks2d_ordering{tag}.png")
    print(f"\nfigures: {FIG}/mu_peaks2d_{{curves,coverage,ordering}}{tag}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
