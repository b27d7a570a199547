"""Helpers shared by the DRA benchmark scripts (``benchmarks/dra_*.py``)."""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from dra_jax.trainer import Config, DRATrainer
from envs_jax import dra_tasks

FIG_DIR = Path(__file__).resolve().parent / "figures"


def fig_dir(quick: bool) -> Path:
    """Where figures go: ``benchmarks/figures`` for full runs; a temporary folder for
    ``--quick`` runs, so that a smoke run does not overwrite the committed figures."""
    import tempfile

    d = Path(tempfile.gettempdir()) / "dra_quick_figures" if quick else FIG_DIR
    d.mkdir(parents=True, exist_ok=True)
    return d


def maze_trainer(config: Config, switch: bool = True) -> DRATrainer:
    """Maze trainer; ``switch=False`` keeps the first layout for the whole run (the
    original's convergence script, ``convergence_fig1c.py``, never switches)."""
    env, params = dra_tasks.make_maze(**({} if switch else {"switch_trial": 10**9}))
    return DRATrainer(config, "DRA-maze", env=env, env_params=params)


def run_chunked(trainer: DRATrainer, states, num_trials: int, chunk: int = 500, label: str = ""):
    """Run vmapped ``states`` for ``num_trials`` in compiled chunks; metrics ``(agents, num_trials)``."""
    chunk = min(chunk, num_trials)
    if num_trials % chunk:
        raise ValueError(f"num_trials ({num_trials}) must be a multiple of chunk ({chunk})")
    step = jax.jit(jax.vmap(lambda s: trainer.run(s, chunk)))
    out, t0 = [], time.time()
    for i in range(num_trials // chunk):
        states, m = step(states)
        jax.block_until_ready(m)
        out.append(jax.tree.map(np.asarray, m))
        print(f"  [{label}] trials {(i + 1) * chunk}/{num_trials}  {time.time() - t0:6.1f}s", flush=True)
    metrics = {k: np.concatenate([o[k] for o in out], axis=1) for k in out[0]}
    return states, metrics


def evaluate(trainer: DRATrainer, states, n_episodes: int, seed: int = 123):
    keys = jax.random.split(jax.random.PRNGKey(seed), jax.tree.leaves(states)[0].shape[0])
    ev = jax.jit(jax.vmap(lambda s, k: trainer.evaluate(s, k, n_episodes)))(states, keys)
    return jax.tree.map(np.asarray, ev)


def md_table(header: list[str], rows: list[list], run: harness.Run | None = None, part: str = "") -> str:
    """A markdown table of ``rows`` (lists under ``header``). With ``run`` the rows are also
    saved as JSON, ``run.part(part)`` (``benchmarks/results/<run name>_<part>-<time>.json``)."""
    if run is not None:
        floats = [h for j, h in enumerate(header) if all(isinstance(r[j], (float, np.floating)) for r in rows)]
        sub = run.part(part, columns=header, formats={h: ".2f" for h in floats})
        for r in rows:
            sub.add({h: (float(x) if isinstance(x, np.floating) else x) for h, x in zip(header, r)})
        sub.save()

    def fmt(x):
        if isinstance(x, (float, np.floating)):
            return f"{x:.2f}"
        return str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def mean_sd(x) -> str:
    x = np.asarray(x, dtype=float)
    return f"{x.mean():.2f} ± {x.std(ddof=1) if x.size > 1 else 0.0:.2f}"
