"""Figures of the seed appendix: candidate coverage (App. B) and action ordering (App. C).

``coverage_figure``: one panel per generator; every candidate action proposed over many test
states is drawn at its place in the action space, coloured by its candidate index i. In the
location game each candidate is three facilities (three points per candidate, jittered
inside their cell); in the 2-D domain a candidate is one point of ``[0, 1]^2``. The paper's
observation: MU candidates cover separate regions, policy candidates concentrate.

``ordering_figure``: one panel per generator; how often the best candidate (``argmax_i Q``)
and the arm UCB recommends is candidate i.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colours(m: int):
    plt = _plt()
    cmap = plt.get_cmap("tab10" if m <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(m)]


def coverage_figure(actions_by_name: dict[str, np.ndarray], action_kind: str, env, path: str | Path) -> None:
    """``actions_by_name[name]``: ``[N, m, F]`` cell indices or ``[N, m, 2]`` points."""
    plt = _plt()
    n = len(actions_by_name)
    cols = min(n, 2)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 5 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (name, acts) in zip(axes.flat, actions_by_name.items()):
        acts = np.asarray(acts)
        m = acts.shape[1]
        colours = _colours(m)
        for i in range(m):
            if action_kind == "discrete":
                size = env.size
                cells = acts[:, i, :].reshape(-1)
                y = cells // size + rng.uniform(-0.35, 0.35, cells.shape)
                x = cells % size + rng.uniform(-0.35, 0.35, cells.shape)
            else:
                pts = np.clip(acts[:, i, :], 0.0, 1.0)
                x, y = pts[:, 0], pts[:, 1]
            ax.scatter(x, y, s=5, color=colours[i], alpha=0.6, label=f"candidate {i + 1}")
        if action_kind == "discrete":
            ax.set_xlim(-0.5, env.size - 0.5)
            ax.set_ylim(env.size - 0.5, -0.5)
            ax.set_xticks(np.arange(-0.5, env.size, 1.0), minor=True)
            ax.set_yticks(np.arange(-0.5, env.size, 1.0), minor=True)
            ax.grid(which="minor", lw=0.3)
            ax.set_xlabel("column")
            ax.set_ylabel("row")
        else:
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("a[0]")
            ax.set_ylabel("a[1]")
        ax.set_aspect("equal")
        ax.set_title(name, fontsize=10)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4 * cols), markerscale=3, fontsize=8)
    fig.suptitle("Coverage: where each candidate index lands over test states")
    fig.tight_layout(rect=(0, 0.09 if cols == 1 else 0.05, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ordering_figure(indices_by_name: dict[str, tuple[np.ndarray, np.ndarray]], m: int, path: str | Path) -> None:
    """``indices_by_name[name] = (best_index [N], ucb_index [N])`` -> grouped bar chart."""
    plt = _plt()
    n = len(indices_by_name)
    cols = min(n, 2)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    x = np.arange(1, m + 1)
    for ax, (name, (best, ucb)) in zip(axes.flat, indices_by_name.items()):
        fb = np.bincount(np.asarray(best).reshape(-1), minlength=m)[:m] / max(np.size(best), 1)
        fu = np.bincount(np.asarray(ucb).reshape(-1), minlength=m)[:m] / max(np.size(ucb), 1)
        ax.bar(x - 0.2, fb, width=0.4, label="best candidate (argmax Q)")
        ax.bar(x + 0.2, fu, width=0.4, label="UCB's recommendation")
        ax.set_xticks(x)
        ax.set_xlabel("candidate index i")
        ax.set_ylabel("fraction of test states")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("Action ordering: how often the selected action is candidate i")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
