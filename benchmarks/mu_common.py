"""Shared helpers of the MU benchmarks: train the four generators side by side, seeds vmapped."""

from __future__ import annotations

import time

import jax
import numpy as np

from mu_jax.trainer import Config, make_trainer

OBJECTIVES = ("mu", "max", "policy", "diversity")


def train_objective(config: Config, env_id: str, seeds: int, steps: int, eval_every: int, test_states, log=print):
    """Train ``seeds`` generators (vmapped) for ``steps`` updates; evaluate every ``eval_every``.

    Returns ``(trainer, final_states, curve)`` with ``curve = {"update": [...], "best":
    [n_evals, seeds]}`` (mean over ``test_states`` of ``max_i Q(s, a_i)``).
    """
    trainer = make_trainer(config, env_id)
    states = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(0), seeds))
    chunk = jax.jit(jax.vmap(lambda s: trainer.run(s, eval_every)))
    best = jax.jit(
        jax.vmap(lambda p, k: trainer.evaluate(p, k, test_states, budget=config.num_candidates)["best"].mean())
    )
    eval_keys = jax.random.split(jax.random.PRNGKey(777), seeds)
    curve = {"update": [0], "best": [np.asarray(best(states.params, eval_keys))]}
    t0 = time.time()
    for u in range(eval_every, steps + 1, eval_every):
        states, _ = chunk(states)
        curve["update"].append(u)
        curve["best"].append(np.asarray(best(states.params, eval_keys)))
        if u % max(steps // 5, eval_every) == 0:
            log(f"  {config.objective:9s} update {u:6d}  best-candidate {curve['best'][-1].mean():.4f}  ({time.time() - t0:.0f}s)")
    curve["best"] = np.stack(curve["best"])
    curve["seconds"] = time.time() - t0
    return trainer, states, curve


def seed_params(states, i):
    return jax.tree.map(lambda x: x[i], states.params)


def mean_std(x) -> str:
    x = np.asarray(x, dtype=float)
    return f"{x.mean():.4f} ± {x.std():.4f}"


def plot_curves(curves: dict, ylabel: str, title: str, path, reference: dict | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, c in curves.items():
        m, s = c["best"].mean(1), c["best"].std(1)
        ax.plot(c["update"], m, label=name)
        ax.fill_between(c["update"], m - s, m + s, alpha=0.2)
    for name, v in (reference or {}).items():
        ax.axhline(v, ls="--", lw=1, color="gray")
        ax.text(0, v, f" {name}", va="bottom", fontsize=8, color="gray")
    ax.set_xlabel("update")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
