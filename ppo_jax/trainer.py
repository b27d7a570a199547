"""The contract between an algorithm and the command line (``train.py``).

Every algorithm of the project (PPO with any policy, DRA, MU, ...) hands ``train.py`` a
``Trainer``. ``train.py`` then owns everything around it, the same way for all of them:
seeds vmapped into one program, chunked compiled updates with a progress bar,
``metrics.jsonl``, ``curve.png``, orbax checkpoints, ``--resume`` and the NaN guard.

A ``Trainer`` is a small object with static sizes and two pure functions::

    num_updates: int        # updates in the configured budget
    steps_per_update: int   # environment steps (or trials) one update consumes; the x-axis
    init(key) -> state      # a pytree; everything the run needs (params, opt state, RNG, ...)
    run(state, n) -> (state, metrics)
        # n updates (n is static); every leaf of ``metrics`` has leading shape (n,).
        # The key "return" is plotted in curve.png; "violation_rate", if present, too.
        # Must be jittable and vmappable over ``state`` (train.py vmaps it over seeds).
    finalize(states, run_dir) -> None   # optional: extra figures/files at the end of a run;
        # ``states`` carries a leading seed axis.

Determinism: ``run(run(s, a), b)`` must equal ``run(s, a + b)``: all randomness lives in
``state``. That is what makes ``--resume`` exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import jax

State = Any
Metrics = dict[str, jax.Array]


@runtime_checkable
class Trainer(Protocol):
    num_updates: int
    steps_per_update: int

    def init(self, key: jax.Array) -> State: ...

    def run(self, state: State, num_updates: int) -> tuple[State, Metrics]: ...


def finalize(trainer: Trainer, states: State, run_dir: Path) -> None:
    """Call the trainer's optional ``finalize`` hook."""
    hook = getattr(trainer, "finalize", None)
    if hook is not None:
        hook(states, Path(run_dir))
