"""Location game: MU vs MAX vs plain policy vs diversity generators (Ahmad et al. 2020, Sec. 6).

For each objective, ``--seeds`` generators are trained side by side (seeds vmapped) for
``--steps`` updates (batch 32 maps, m = 8 candidates). Printed:

1. best-candidate reward ``max_i Q(s, a_i)`` on 256 held-out maps over training
   (mean ± std over seeds), with uniformly random candidates and the exact best response
   (exhaustive search over all 171,700 placements) as references;
2. the reward after UCB search over each generator's candidates with noisy reward samples
   (``--noises``, ``--budget`` pulls), i.e. the Q of the arm UCB recommends;
3. coverage (Appendix B) and action-ordering (Appendix C) figures for all four objectives.

    python -m benchmarks.mu_location --quick        # minutes: 2 seeds, 600 updates
    python -m benchmarks.mu_location                # the documented budget (see RESULTS_mu.md)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.mu_common import OBJECTIVES, mean_std, plot_curves, seed_params, train_objective
from mu_jax import plots
from mu_jax.search import ucb_search
from mu_jax.trainer import Config

FIG = Path(__file__).resolve().parent / "figures"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 seeds, 600 updates, 64 test maps")
    ap.add_argument("--steps", type=int, default=10_000, help="updates per generator (paper: 80,000)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam step size (paper: 1e-5 for 80k updates)")
    ap.add_argument("--channels", type=int, default=8, help="conv channels (paper: 32)")
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--head-layer", default="dense", choices=("dense", "spatial"))
    ap.add_argument("--diversity-weight", type=float, default=0.1)
    ap.add_argument("--baseline", action="store_true", help="leave-one-out baseline in every score estimator")
    ap.add_argument("--test-maps", type=int, default=256)
    ap.add_argument("--br-maps", type=int, default=64, help="maps on which the exact best response is computed")
    ap.add_argument("--noises", default="0.05,0.2", help="stds of the reward noise UCB sees (comma list)")
    ap.add_argument("--budget", type=int, default=64, help="UCB pulls per map")
    ap.add_argument("--eval-every", type=int, default=0, help="updates between evaluations (0: steps/20)")
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--tag", default="", help="suffix of the figure names")
    args = ap.parse_args(argv)
    noises = [float(x) for x in args.noises.split(",") if x]
    if args.quick:
        args.seeds, args.steps, args.test_maps, args.br_maps = 2, 600, 64, 8
    eval_every = args.eval_every or max(args.steps // 20, 1)
    objectives = [o for o in args.objectives.split(",") if o]
    tag = args.tag or ("_quick" if args.quick else "")
    FIG.mkdir(parents=True, exist_ok=True)

    print(f"# location game: {args.seeds} seeds x {args.steps} updates, batch {args.batch}, m={args.candidates}, "
          f"Adam {args.lr:g}, {args.channels} channels, {args.head_layer} head layer, diversity weight {args.diversity_weight}, "
          f"baseline {args.baseline}; jax {jax.__version__} on {jax.devices()[0].platform}")
    base = dict(num_candidates=args.candidates, batch_size=args.batch, lr=args.lr, total_steps=args.steps,
                channels=args.channels, head_layer=args.head_layer, diversity_weight=args.diversity_weight, baseline=args.baseline,
                search_budget=args.budget)

    curves, finals, trainers = {}, {}, {}
    test_states = None
    for o in objectives:
        cfg = Config(objective=o, **base)
        if test_states is None:
            from mu_jax.trainer import make_trainer

            test_states = make_trainer(cfg, "MU-location").sample_states(jax.random.PRNGKey(2024), args.test_maps)
        trainer, states, curve = train_objective(cfg, "MU-location", args.seeds, args.steps, eval_every, test_states)
        curves[o], finals[o], trainers[o] = curve, states, trainer

    tr0 = next(iter(trainers.values()))
    env, params = tr0.env, tr0.env_params
    m = args.candidates

    # references: uniformly random candidates and the exact best response
    rand = jax.random.randint(jax.random.PRNGKey(5), (args.test_maps, m, 3), 0, 100)
    q_rand = tr0.q_values(test_states, rand)
    t0 = time.time()
    br_states = jax.tree.map(lambda x: x[: args.br_maps], test_states)
    br = np.asarray(jax.jit(lambda s: jax.lax.map(lambda x: env.optimal_value(x, params), s))(br_states))
    t_br = time.time() - t0

    # final evaluation + UCB with noisy rewards
    rows, cov, order = [], {}, {}
    for o, trainer in trainers.items():
        evs = {nz: [trainer.evaluate_jit(seed_params(finals[o], i), jax.random.PRNGKey(100 + i), test_states, noise_std=nz)
                    for i in range(args.seeds)] for nz in noises}
        ev = evs[noises[0]]
        best = np.asarray([np.asarray(e["best"]).mean() for e in ev])
        ucb = {nz: np.asarray([np.asarray(e["ucb_value"]).mean() for e in evs[nz]]) for nz in noises}
        br_gap = np.asarray([br.mean() - np.asarray(e["best"])[: args.br_maps].mean() for e in ev])
        rows.append((o, best, ucb, br_gap, curves[o]["seconds"]))
        cov[o] = np.asarray(ev[0]["actions"])
        order[o] = (np.concatenate([np.asarray(e["best_index"]) for e in ev]),
                    np.concatenate([np.asarray(e["ucb_index"]) for e in evs[noises[-1]]]))

    # UCB over random candidates, for reference
    def ucb_rand(k, s, acts, nz):
        res = ucb_search(k, lambda kk, i: env.noisy_reward(kk, s, acts[i], params.replace(noise_std=nz)), m, args.budget)
        return env.expected_reward(s, acts[res.choice], params)

    ucb_r = {nz: np.asarray(jax.jit(jax.vmap(ucb_rand, in_axes=(0, 0, 0, None)))(
        jax.random.split(jax.random.PRNGKey(6), args.test_maps), test_states, rand, nz)) for nz in noises}

    print(f"\nreferences on {args.test_maps} test maps: random candidates best-of-{m} {float(q_rand.max(-1).mean()):.4f}, "
          + ", ".join(f"UCB over random candidates (noise {nz}) {ucb_r[nz].mean():.4f}" for nz in noises)
          + f"; exact best response on the first {args.br_maps} maps {br.mean():.4f} ({t_br:.0f}s)")
    print(f"\n| generator | best candidate (mean ± std over {args.seeds} seeds) | gap to best response | "
          + " | ".join(f"reward after UCB ({args.budget} pulls, noise {nz})" for nz in noises) + " | train time |")
    print("|---|---|---|" + "---|" * len(noises) + "---|")
    for o, best, ucb, gap, sec in rows:
        print(f"| {o} | {mean_std(best)} | {mean_std(gap)} | " + " | ".join(mean_std(ucb[nz]) for nz in noises) + f" | {sec:.0f}s |")

    print(f"\nbest-candidate reward over training (mean over {args.seeds} seeds):")
    idx = np.linspace(0, len(curves[objectives[0]]["update"]) - 1, 6).round().astype(int)
    print("| update | " + " | ".join(objectives) + " |")
    print("|---|" + "---|" * len(objectives))
    for j in idx:
        u = curves[objectives[0]]["update"][j]
        print(f"| {u} | " + " | ".join(f"{curves[o]['best'][j].mean():.4f}" for o in objectives) + " |")

    print(f"\naction ordering (fraction of test maps x seeds whose best candidate / UCB pick (noise {noises[-1]}) is candidate i):")
    print("| generator | " + " | ".join(f"i={i + 1}" for i in range(m)) + " |")
    print("|---|" + "---|" * m)
    for o, (b, u) in order.items():
        fb = np.bincount(b, minlength=m) / b.size
        fu = np.bincount(u, minlength=m) / u.size
        print(f"| {o} best | " + " | ".join(f"{x:.2f}" for x in fb) + " |")
        print(f"| {o} UCB | " + " | ".join(f"{x:.2f}" for x in fu) + " |")

    plot_curves(curves, "best-candidate reward (player's share)",
                f"Location game, m={m}, batch {args.batch}, Adam {args.lr:g}, {args.seeds} seeds",
                FIG / f"mu_location_curves{tag}.png",
                {"random candidates": float(q_rand.max(-1).mean()), "best response": float(br.mean())})
    plots.coverage_figure(cov, "discrete", env, FIG / f"mu_location_coverage{tag}.png")
    plots.ordering_figure(order, m, FIG / f"mu_location_ordering{tag}.png")
    print(f"\nfigures: {FIG}/mu_location_{{curves,coverage,ordering}}{tag}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
