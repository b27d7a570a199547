"""Pictures of a learned memory allocation (the paper's Fig. 1B / 2C view).

``choice_entropy``: entropy of the agent's marginal choice distribution in a state,
``pbar(a|s) = E_zeta[ softmax(beta (q + zeta sigma)) ]`` (Monte Carlo); high where memories
are imprecise relative to the value gaps, low where the agent spends precision.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np


def choice_entropy(q: np.ndarray, sigma: np.ndarray, beta: float, n_samples: int = 2000, seed: int = 0) -> np.ndarray:
    """Per-state entropy (nats) of ``E_zeta softmax(beta (q + zeta sigma))``; ``q``, ``sigma``:
    ``(..., S, A)`` -> ``(..., S)``."""
    q = jnp.asarray(q)
    sigma = jnp.asarray(sigma)
    zeta = jax.random.normal(jax.random.PRNGKey(seed), (n_samples,) + q.shape[-1:])

    def one(q_s, s_s):
        p = jnp.mean(jax.nn.softmax(beta * (q_s + zeta * s_s), axis=-1), axis=0)
        return -jnp.sum(p * jnp.log(jnp.clip(p, 1e-30, 1.0)))

    flat_q = q.reshape(-1, q.shape[-1])
    flat_s = sigma.reshape(-1, q.shape[-1])
    ent = jax.lax.map(lambda x: one(*x), (flat_q, flat_s))
    return np.asarray(ent).reshape(q.shape[:-1])


def _maze_overlays(task, switched: bool):
    from envs_jax import dra_tasks as T

    params = task.env_params.replace(switched=switched)
    obstacles = np.asarray(task.env.obstacles(params))
    goal = tuple(int(x) for x in np.asarray(task.env.goal(params)))
    return obstacles, T.MAZE_START, goal


def plot_allocation(task, before, after, beta: float, path, before_label: str = "before",
                    after_label: str = "after") -> None:
    """Save a 2x2 figure: rows = (before, after), columns = (mean sigma over actions,
    choice entropy) per tabular cell laid out on ``task.grid_shape``. ``before``/``after``
    hold ``q``, ``sigma`` with a leading seed axis (seed means are shown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = task.grid_shape if len(task.grid_shape) == 2 else (1, task.num_states)
    is_maze = getattr(task.env, "name", "") == "DRA-maze"
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), squeeze=False)
    for row, (snap, label) in enumerate(((before, before_label), (after, after_label))):
        q = np.asarray(snap.q).reshape(-1, task.num_states, task.num_actions)
        sig = np.asarray(snap.sigma).reshape(-1, task.num_states, task.num_actions)
        sigma_cell = sig.mean(axis=(0, 2)).reshape(grid)
        ent_cell = choice_entropy(q, sig, beta).mean(axis=0).reshape(grid)
        overlays = _maze_overlays(task, switched=(row == 1)) if is_maze else None
        for col, (img, name, cmap) in enumerate(
            ((sigma_cell, "mean sigma over actions", "magma"), (ent_cell, "choice entropy (nats)", "cividis"))
        ):
            ax = axes[row, col]
            shown = np.array(img, dtype=float)
            if overlays is not None:
                obstacles, start, goal = overlays
                shown = np.where(obstacles, np.nan, shown)
                shown[goal] = np.nan
            im = ax.imshow(shown, cmap=cmap, aspect="auto" if not is_maze else "equal")
            fig.colorbar(im, ax=ax, fraction=0.046)
            if overlays is not None:
                obstacles, start, goal = overlays
                for r, c in zip(*np.nonzero(obstacles)):
                    ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color="0.6"))
                ax.text(start[1], start[0], "S", ha="center", va="center", color="w", fontsize=12, weight="bold")
                ax.text(goal[1], goal[0], "G", ha="center", va="center", color="k", fontsize=12, weight="bold")
            ax.set_title(f"{name}, {label}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
    name = getattr(task.env, "name", "env")
    fig.suptitle(f"DRA memory allocation on {name} (mean over {np.asarray(before.q).reshape(-1, task.num_states, task.num_actions).shape[0]} seeds)")
    fig.tight_layout()
    fig.savefig(Path(path), dpi=110)
    plt.close(fig)
