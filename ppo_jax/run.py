"""Run utilities shared by every algorithm: the run directory, metrics, curve, checkpoints,
progress. ``train.py`` drives them; nothing here knows about a particular algorithm.

A run directory holds::

    config.json      everything needed to rebuild the run (algo, env, seed, configs)
    metrics.jsonl    one JSON object per update; per-seed metrics are lists of length num_seeds
    curve.png        return (and episode cost / violation rate, where the env reports them) vs env
                     steps; evaluation runs (eval/*) as markers beside the training lines
    checkpoints/     orbax checkpoints of the whole training state, keyed by update
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def write_config(self, config: dict) -> None:
        self.config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    def read_config(self) -> dict:
        if not self.config_path.exists():
            raise FileNotFoundError(f"{self.path} has no config.json: not a run directory")
        return json.loads(self.config_path.read_text())

    def append_metrics(self, rows: list[dict]) -> None:
        with self.metrics_path.open("a") as f:
            for row in rows:
                f.write(json.dumps(row, allow_nan=False, default=_json_default) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, last_update: int) -> None:
        """Drop metric rows after ``last_update`` (on resume, rows past the checkpoint)."""
        rows = [r for r in self.read_metrics() if r["update"] <= last_update]
        self.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def plot_curve(self, title: str = "") -> Path | None:
        """Write curve.png: return per seed vs env steps, plus the violation rate if any."""
        rows = self.read_metrics()
        if not rows:
            return None
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:  # matplotlib is in the dev extra
            print("matplotlib is not installed: no curve.png (pip install -e '.[dev]')", file=sys.stderr)
            return None
        steps = np.array([r["env_steps"] for r in rows], dtype=float)
        # (panel label, [(metric, line style)]): evaluation runs are drawn beside training.
        panels = [("mean episodic return", [("return", "-"), ("eval/return", "o--")])]
        if any(_has_signal(r.get("cost_return")) or _has_signal(r.get("eval/cost")) for r in rows):
            panels.append(("episode cost", [("cost_return", "-"), ("eval/cost", "o--")]))
        if any(_has_signal(r.get("violation_rate")) or _has_signal(r.get("eval/violation_rate")) for r in rows):
            panels.append(("fraction of actions violating a constraint", [("violation_rate", "-"), ("eval/violation_rate", "o--")]))
        fig, axes = plt.subplots(len(panels), 1, figsize=(7, 3.2 * len(panels)), squeeze=False, sharex=True)
        n_seeds = 1
        for ax, (label, series) in zip(axes[:, 0], panels):
            for key, style in series:
                if not any(key in r for r in rows):
                    continue
                values = np.array([[np.nan if v is None else v for v in _as_list(r.get(key))] for r in rows], dtype=float)
                n_seeds = values.shape[1]
                for seed in range(values.shape[1]):
                    keep = np.isfinite(values[:, seed])
                    name = ("eval, " if key.startswith("eval/") else "") + f"seed {seed}"
                    ax.plot(steps[keep], values[keep, seed], style, lw=1.2, ms=3, label=name, color=f"C{seed % 10}")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("environment steps")
        if n_seeds <= 10:
            axes[0, 0].legend(fontsize=7)
        axes[0, 0].set_title(title)
        fig.tight_layout()
        out = self.path / "curve.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out


def _has_signal(value) -> bool:
    return value is not None and any(v not in (0, None) for v in _as_list(value))


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def metric_rows(
    metrics: dict[str, np.ndarray], first_update: int, steps_per_update: int, extra: dict | None = None
) -> list[dict]:
    """Turn chunk metrics with leaves (num_seeds, n) into ``n`` JSON rows.

    ``env_steps`` (= update * steps_per_update, the same for every seed) is one number;
    other metrics are per-seed lists. Non-finite values become ``null`` (JSON has no NaN).
    """
    n = next(iter(metrics.values())).shape[1]
    rows = []
    for j in range(n):
        update = first_update + j + 1
        row: dict[str, Any] = {"update": update, "env_steps": update * steps_per_update}
        for key, value in metrics.items():
            if key == "env_steps":
                continue
            row[key] = [_finite_or_none(v) for v in np.asarray(value)[:, j].tolist()]
        row.update(extra or {})
        rows.append(row)
    return rows


def _finite_or_none(v):
    return v if (isinstance(v, (int, bool)) or math.isfinite(v)) else None


class Checkpoints:
    """Orbax checkpoints of a training-state pytree, keyed by update count.

    Saves are atomic (orbax writes to a temporary directory and renames it when complete), so
    a process killed mid-save leaves the previous checkpoint intact. ``save`` is asynchronous
    by default: it returns once the state is copied off the devices and the files are written
    by a background thread while training goes on; the next ``save``, ``wait`` and ``close``
    wait for it, so every checkpoint is finished or never appears.
    """

    def __init__(self, directory: str | Path, max_to_keep: int = 3, asynchronous: bool = True):
        self.manager = ocp.CheckpointManager(
            Path(directory).absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=asynchronous),
        )

    def save(self, update: int, state) -> None:
        self.manager.save(update, args=ocp.args.StandardSave(state), force=True)

    def wait(self) -> None:
        """Block until the last ``save`` is on disk."""
        self.manager.wait_until_finished()

    def latest(self) -> int | None:
        """The newest *finished* checkpoint's update (waits for one in flight)."""
        self.wait()
        return self.manager.latest_step()

    def restore(self, update: int, like):
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        return self.manager.restore(update, args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        self.wait()
        self.manager.close()


class Progress:
    """A one-line progress bar on stderr: steps, env-steps/s, latest return."""

    def __init__(self, total_updates: int, steps_per_update: int, start_update: int = 0, stream=sys.stderr):
        self.total, self.steps_per_update, self.stream = total_updates, steps_per_update, stream
        self.start_update, self.t0 = start_update, time.perf_counter()
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._last_print = -1.0

    def update(self, done_updates: int, latest_return: float | None, steps_per_sec: float) -> None:
        frac = done_updates / max(self.total, 1)
        width = 30
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        ret = "n/a" if latest_return is None else f"{latest_return:.3f}"
        line = (
            f"[{bar}] {100 * frac:5.1f}%  steps {done_updates * self.steps_per_update:,}/"
            f"{self.total * self.steps_per_update:,}  {steps_per_sec:,.0f} steps/s  return {ret}"
        )
        now = time.perf_counter()
        if self.tty:
            print("\r" + line, end="", file=self.stream, flush=True)
        elif now - self._last_print > 5 or done_updates >= self.total:
            print(line, file=self.stream, flush=True)
            self._last_print = now

    def close(self) -> None:
        if self.tty:
            print(file=self.stream, flush=True)
