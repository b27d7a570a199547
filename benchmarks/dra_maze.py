"""DRA on the 6x9 maze: original settings vs the original's saved values, convergence for
sigma0 in {1, 3, 4, 5}, the objectives side by side, and equal precision.

    python -m benchmarks.dra_maze            # parts ABCD: 5 seeds x 1e4 trials (default preset)
    python -m benchmarks.dra_maze --parts P  # the original's convergence protocol (paper preset)
    python -m benchmarks.dra_maze --quick    # 2 seeds x 600 trials (proves it runs)

Part P is the comparison with the original's saved values at the original's settings and
protocol (``convergence_fig1c.py``: ``paper_config("DRA-maze")``, lr_q 0.1, 5000 trials, no
switch, 100 fresh episodes evaluated after trials 1, 101, ..., 4901; 5 seeds per sigma0).
Part C takes ``--objectives`` (default: all of ``objectives.OBJECTIVES``) and ``--preset``.

Prints markdown tables; writes benchmarks/figures/dra_maze_*.png (--quick: a temp folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from benchmarks.dra_common import fig_dir, evaluate, md_table, mean_sd, maze_trainer, run_chunked
from dra_jax import objectives, plots
from dra_jax.trainer import paper_config, preset_config
from envs_jax import dra_tasks

SAVED = {"objective": "-14.1 .. -14.5", "cost": "6.2 .. 6.7", "reward": "-7.7 .. -8.0"}
# The original's saved convergence_{O,C,R}_sigma0{10,30,40,50}_10_5runs.npy (5 runs x 50
# evaluations, every 100 trials): mean over the 5 runs of the last 10 evaluations
# (trials 4001-4901), computed from the files with numpy.
SAVED_LAST10 = {1.0: (-14.41, 6.48, -7.92), 3.0: (-14.23, 6.38, -7.85), 4.0: (-14.10, 6.21, -7.89),
                5.0: (-14.34, 6.35, -7.99)}  # sigma0: (objective, cost, reward)
LABELS = {"dra": "1: DRA (storage, orig.)", "elbo_access": "2: note Eq. 8 (access)",
          "elbo_storage": "3: note Eq. 10 (fixed T)", "elbo_storage_rate": "4: Eq. 10 with each T_tau (rate)"}


def tail(m, k, n):
    """Per-agent mean of metric ``k`` over the last ``n`` trials."""
    return m[k][:, -n:].mean(axis=1)


def part_original(args, cfg):
    print("\n## A. Original settings (beta 10, lambda 0.1, gamma 0.9, lr_q 0.2, lr_sigma 0.1, "
          f"sigma0 3, sigma_base 5, 10 rollouts), {args.seeds} seeds, {args.trials} trials\n")
    rows = []
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    results = {}
    for switch in (False, True):
        tr = maze_trainer(cfg, switch=switch)
        states = jax.vmap(tr.init)(keys)
        t0 = time.time()
        states, m = run_chunked(tr, states, args.trials, args.chunk, f"switch={switch}")
        wall = time.time() - t0
        ev = evaluate(tr, states, args.eval_episodes)
        n_tail = min(500, args.trials // 4)
        rows.append([
            "with switch at 3000" if switch else "no switch (as convergence_fig1c.py)",
            f"final eval ({args.eval_episodes} ep.)", mean_sd(ev["objective_dra"]), mean_sd(ev["cost"]),
            mean_sd(ev["reward"]), mean_sd(ev["episode_length"]),
        ])
        rows.append(["", f"last {n_tail} trials", mean_sd(tail(m, "objective_dra", n_tail)),
                     mean_sd(tail(m, "cost", n_tail)), mean_sd(tail(m, "return", n_tail)),
                     mean_sd(tail(m, "episode_length", n_tail))])
        if switch and args.trials >= 3000:
            pre = slice(2500, 3000)
            rows.append(["", "trials 2500-3000 (before switch)",
                         mean_sd(m["objective_dra"][:, pre].mean(1)), mean_sd(m["cost"][:, pre].mean(1)),
                         mean_sd(m["return"][:, pre].mean(1)), mean_sd(m["episode_length"][:, pre].mean(1))])
        results[switch] = (tr, states, m, wall)
    rows.append(["original's saved values", "final", SAVED["objective"], SAVED["cost"], SAVED["reward"], ""])
    print(md_table(["run", "measured on", "objective", "cost", "reward", "episode length"], rows,
                   run=args.run, part="A"))
    tr, states, m, wall = results[True]
    plots.plot_allocation(
        tr.task, states.snapshot, states.agent, float(cfg.beta), args.figs / "dra_maze_allocation.png",
        before_label=f"trial {tr.snapshot_trial + 1} (before switch)", after_label=f"trial {args.trials}",
    )
    print(f"\n(wall time with switch, {args.seeds} vmapped agents: {wall:.1f}s; figure "
          f"{args.figs / 'dra_maze_allocation.png'})")
    return results


def part_convergence(args, cfg):
    sig0 = [1.0, 3.0, 4.0, 5.0]
    print(f"\n## B. Convergence for sigma0 in {sig0} (no switch), {args.seeds} seeds each, one vmapped call\n")
    tr = maze_trainer(cfg, switch=False)
    keys = jax.random.split(jax.random.PRNGKey(1), args.seeds * len(sig0))
    s0 = jnp.repeat(jnp.asarray(sig0), args.seeds)
    states = jax.vmap(lambda k, s: tr.init_with(k, sigma0=s))(keys, s0)
    states, m = run_chunked(tr, states, args.trials, args.chunk, "sigma0 sweep")
    bin_ = max(args.trials // 100, 1)
    obj = m["objective_dra"].reshape(len(sig0), args.seeds, -1, bin_).mean(-1)
    cost = m["cost"].reshape(len(sig0), args.seeds, -1, bin_).mean(-1)
    ret = m["return"].reshape(len(sig0), args.seeds, -1, bin_).mean(-1)
    x = (np.arange(obj.shape[-1]) + 1) * bin_
    marks = [i for i in range(obj.shape[-1]) if (i + 1) * bin_ in {args.trials // 10, args.trials // 4, args.trials // 2, args.trials}]
    rows = []
    for i, s in enumerate(sig0):
        rows.append([f"{s:g}"] + [f"{obj[i, :, j].mean():.2f} / {cost[i, :, j].mean():.2f}" for j in marks])
    print(md_table(["sigma0"] + [f"objective / cost @ {(j + 1) * bin_}" for j in marks], rows,
                   run=args.run, part="B"))
    # Trials to reach within 1 of the final objective (mean over seeds, binned).
    fin = obj.mean(1)[:, -5:].mean(-1)
    reach = [int(x[np.argmax(obj.mean(1)[i] >= fin[i] - 1.0)]) for i in range(len(sig0))]
    print("\ntrials until the seed-mean objective is within 1 of its final value: "
          + ", ".join(f"sigma0={s:g}: {r}" for s, r in zip(sig0, reach)))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax2 = ax.twinx()
    for i, s in enumerate(sig0):
        c = f"C{i}"
        ax.plot(x, obj[i].mean(0), color=c, label=f"sigma0={s:g}")
        ax.fill_between(x, obj[i].mean(0) - obj[i].std(0), obj[i].mean(0) + obj[i].std(0), color=c, alpha=0.15)
        ax2.plot(x, cost[i].mean(0), color=c, ls="--")
    ax.axhspan(-14.5, -14.1, color="k", alpha=0.15, label="orig. saved objective")
    ax.set_ylim(-50, 0)
    ax2.set_ylim(0, 30)
    ax.set_xlabel("trials")
    ax.set_ylabel("objective (solid)")
    ax2.set_ylabel("cost (dashed)")
    ax.legend(loc="center right")
    ax.set_title(f"DRA maze convergence ({args.seeds} seeds, {bin_}-trial bins)")
    fig.tight_layout()
    fig.savefig(args.figs / "dra_maze_convergence.png", dpi=110)
    plt.close(fig)
    print(f"(figure {args.figs / 'dra_maze_convergence.png'})")
    return obj, cost, ret


def part_objectives(args, cfg):
    names = args.objectives
    print(f"\n## C. Objectives {names} side by side (no switch, {args.trials} trials, T = "
          f"{maze_trainer(cfg, switch=False).spec.horizon_T:g} for Eq. 10), {args.seeds} seeds, one vmapped call\n")
    tr = maze_trainer(cfg, switch=False)
    keys = jax.random.split(jax.random.PRNGKey(2), args.seeds * len(names))
    ids = jnp.repeat(jnp.asarray([objectives.OBJECTIVES.index(n) for n in names]), args.seeds)
    states = jax.vmap(lambda k, o: tr.init_with(k, objective=o))(keys, ids)
    states, m = run_chunked(tr, states, args.trials, args.chunk, "objectives")
    ev = evaluate(tr, states, args.eval_episodes)
    rows, sig_cells, ent_cells = [], [], []
    obstacles = dra_tasks.MAZE_OBSTACLE_MASK.reshape(-1)
    for i, name in enumerate(names):
        sl = slice(i * args.seeds, (i + 1) * args.seeds)
        sig = np.asarray(states.agent.sigma[sl])  # (seeds, S, A)
        q = np.asarray(states.agent.q[sl])
        visits = ev["visits"][sl]  # (seeds, S) mean visits per episode
        visited = visits > 0.05
        free = ~obstacles[None] & (np.arange(54)[None] != 8)
        s_cell = sig.mean(-1)
        w_sig = (s_cell * visits).sum(1) / visits.sum(1)
        unvisited = np.array([s_cell[j][free[0] & ~visited[j]].mean() if np.any(free[0] & ~visited[j]) else np.nan
                              for j in range(args.seeds)])
        rows.append([
            LABELS[name],
            mean_sd(ev["reward"][sl]), mean_sd(ev["cost"][sl]), mean_sd(ev["access_cost"][sl]),
            mean_sd(ev["objective_dra"][sl]), mean_sd(ev["objective_elbo_access"][sl]),
            mean_sd(ev["objective_elbo_storage"][sl]), mean_sd(ev["objective_elbo_storage_rate"][sl]), mean_sd(w_sig),
            "all visited" if np.all(np.isnan(unvisited)) else f"{np.nanmean(unvisited):.2f}",
            mean_sd(ev["episode_length"][sl]),
        ])
        sig_cells.append(s_cell.mean(0).reshape(6, 9))
        ent_cells.append(plots.choice_entropy(q, sig, float(cfg.beta)).mean(0).reshape(6, 9))
    print(md_table(["objective optimised", "reward", "storage cost lam*sum KL", "access cost lam*E sum_t KL(s_t)",
                    "obj. 1 value", "obj. 2 value", "obj. 3 value", "obj. 4 value", "sigma on visited cells (visit-weighted)",
                    "sigma on unvisited free cells", "episode length"], rows, run=args.run, part="C"))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(names), figsize=(4.4 * len(names), 6), squeeze=False)
    for i, name in enumerate(names):
        for r, (img, lab, cmap) in enumerate(((sig_cells[i], "mean sigma", "magma"), (ent_cells[i], "choice entropy", "cividis"))):
            ax = axes[r, i]
            shown = np.where(dra_tasks.MAZE_OBSTACLE_MASK, np.nan, img)
            shown[0, 8] = np.nan
            im = ax.imshow(shown, cmap=cmap)
            fig.colorbar(im, ax=ax, fraction=0.046)
            ax.text(0, 2, "S", ha="center", va="center", color="w", weight="bold")
            ax.text(8, 0, "G", ha="center", va="center", color="k", weight="bold")
            ax.set_title(f"{name}: {lab}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"Where each objective puts memory (seed means, {args.trials} trials, no switch)")
    fig.tight_layout()
    fig.savefig(args.figs / "dra_maze_objectives.png", dpi=110)
    plt.close(fig)
    print(f"(figure {args.figs / 'dra_maze_objectives.png'})")


def part_equal(args, cfg):
    grid = [0.7, 1.0, 1.3, 1.6, 2.0, 3.0]
    n = max(args.seeds // 2 + 1, 2)
    print(f"\n## D. Equal precision (one shared sigma) vs flexible, no switch, {n} seeds\n")
    tr = maze_trainer(cfg, switch=False)
    # fixed shared sigma on a grid (lr_sigma = 0), one learned shared sigma, one flexible
    settings = [dict(sigma0=s, lr_sigma=0.0, allocation=True) for s in grid]
    settings += [dict(sigma0=3.0, lr_sigma=0.1, allocation=True), dict(sigma0=3.0, lr_sigma=0.1, allocation=False)]
    labels = [f"equal, fixed sigma={s:g}" for s in grid] + ["equal, learned (sigma0=3)", "flexible (DRA)"]
    keys = jax.random.split(jax.random.PRNGKey(3), n * len(settings))
    cols = {k: jnp.repeat(jnp.asarray([s[k] for s in settings]), n) for k in settings[0]}
    states = jax.vmap(lambda k, a, b, c: tr.init_with(k, sigma0=a, lr_sigma=b, allocation=c))(
        keys, cols["sigma0"], cols["lr_sigma"], cols["allocation"])
    states, m = run_chunked(tr, states, args.trials, args.chunk, "equal precision")
    ev = evaluate(tr, states, args.eval_episodes)
    rows = []
    best = None
    for i, lab in enumerate(labels):
        sl = slice(i * n, (i + 1) * n)
        o = ev["objective_dra"][sl].mean()
        if i < len(grid) and (best is None or o > best[1]):
            best = (lab, o)
        rows.append([lab, mean_sd(ev["objective_dra"][sl]), mean_sd(ev["cost"][sl]), mean_sd(ev["reward"][sl]),
                     f"{np.asarray(states.agent.sigma[sl]).mean():.2f}"])
    print(md_table(["allocation", "objective", "cost", "reward", "mean sigma"], rows, run=args.run, part="D"))
    print(f"\ntuned equal precision: {best[0]} (objective {best[1]:.2f})")


def part_paper(args):
    """The original's convergence protocol at its settings, beside its saved values."""
    cfg = paper_config("DRA-maze")
    if args.quick:
        cfg = dataclasses.replace(cfg, num_trials=600)
    num_trials, sig0 = cfg.num_trials, [1.0, 3.0, 4.0, 5.0]
    print(f"\n## P. Original protocol (convergence_fig1c.py): paper preset (lr_q {cfg.lr_q}, {num_trials} trials, "
          f"no switch), 100 fresh episodes after trials 1, 101, ...; {args.seeds} seeds per sigma0; plus "
          f"lr_q 0.2 (our default) at sigma0 3 under the same protocol\n")
    tr = maze_trainer(cfg, switch=False)
    settings = [(s, cfg.lr_q) for s in sig0] + [(3.0, 0.2)]
    n = args.seeds
    keys = jax.random.split(jax.random.PRNGKey(7), n * len(settings))
    s0 = jnp.repeat(jnp.asarray([a for a, _ in settings]), n)
    lrq = jnp.repeat(jnp.asarray([b for _, b in settings]), n)
    states = jax.vmap(lambda k, a, b: tr.init_with(k, sigma0=a, lr_q=b))(keys, s0, lrq)
    chunk = 100 if args.quick else 500
    step = jax.jit(jax.vmap(lambda s, k: tr.run_evaluated(s, k, chunk, 100, 100)))
    evs, t0 = [], time.time()
    for i in range(num_trials // chunk):
        ek = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(8), i), n * len(settings))
        states, _, ev = step(states, ek)
        evs.append(jax.tree.map(np.asarray, {k: ev[k] for k in ("reward", "cost", "objective_dra")}))
        print(f"  [paper protocol] trials {(i + 1) * chunk}/{num_trials}  {time.time() - t0:6.1f}s", flush=True)
    wall = time.time() - t0
    ev = {k: np.concatenate([e[k] for e in evs], axis=1) for k in evs[0]}  # (agents, num_trials // 100)
    last = min(10, ev["cost"].shape[1])
    rows = []
    for j, (s, lr) in enumerate(settings):
        sl = slice(j * n, (j + 1) * n)
        t = lambda k: ev[k][sl, -last:].mean(1)
        saved = SAVED_LAST10.get(s) if lr == cfg.lr_q else None
        rows.append([f"{s:g}", f"{lr:g}", mean_sd(t("objective_dra")), mean_sd(t("cost")), mean_sd(t("reward")),
                     *([f"{v:.2f}" for v in saved] if saved else ["", "", ""])])
    print(md_table(["sigma0", "lr_q", f"objective (last {last} evals)", "cost", "reward",
                    "saved objective", "saved cost", "saved reward"], rows, run=args.run, part="P"))
    print(f"\n(mean ± sd over {n} seeds of each seed's mean of its last {last} evaluations of 100 fresh "
          f"episodes; saved: mean over the original's 5 runs of the same; wall {wall:.0f}s for "
          f"{n * len(settings)} vmapped agents)")
    return ev


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="2 seeds x 600 trials")
    p.add_argument("--parts", default="ABCD", help="which parts to run (A, B, C, D, P)")
    p.add_argument("--objectives", default=",".join(objectives.OBJECTIVES),
                   help="part C: comma-separated objectives")
    p.add_argument("--preset", default="default", help="parts A-D: 'default' (1e4 trials) or 'paper'")
    args = p.parse_args()
    args.objectives = [o.strip() for o in args.objectives.split(",")]
    for o in args.objectives:
        objectives.check_names(o, "A")
    args.seeds = 2 if args.quick else 5
    cfg = preset_config(args.preset, "DRA-maze")
    args.trials = 600 if args.quick else cfg.num_trials
    args.chunk = 300 if args.quick else (1000 if args.trials % 1000 == 0 else 500)
    args.eval_episodes = 100 if args.quick else 1000
    cfg = dataclasses.replace(cfg, num_trials=args.trials)
    args.figs = fig_dir(args.quick)
    args.run = harness.Run("dra_maze", vars(args))  # one JSON file per table: dra_maze_A-<time>.json, ...
    print(f"# DRA maze benchmark ({'quick' if args.quick else 'full'}; jax {jax.__version__}, "
          f"{jax.devices()[0].platform})")
    t0 = time.time()
    if "A" in args.parts:
        part_original(args, cfg)
    if "B" in args.parts:
        part_convergence(args, cfg)
    if "C" in args.parts:
        part_objectives(args, cfg)
    if "D" in args.parts:
        part_equal(args, cfg)
    if "P" in args.parts:
        part_paper(args)
    print(f"\ntotal wall time {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
