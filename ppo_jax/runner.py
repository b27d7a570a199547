"""The runner every algorithm shares: from a ``Trainer`` to a finished run directory.

``train(algo, env_id, configs, seed=..., num_seeds=..., out=...)`` builds the trainer, vmaps
``num_seeds`` seeds into one program, runs compiled chunks of updates with a progress bar,
writes ``metrics.jsonl``, orbax checkpoints (``resume=True`` continues from the last one),
stops at the first non-finite loss keeping the last good checkpoint, and draws ``curve.png``
(``ppo_jax.run``). Several devices: one seed's envs are split across them (the engine's mesh),
or whole seeds are placed on different devices; under ``jax.distributed`` process 0 writes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ppo_jax.registry import Algorithm

_PROCESS_START = time.perf_counter()  # when train.py does not pass its own start time


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


def train(
    algo: Algorithm,
    env_id: str,
    configs: dict[str, Any],
    *,
    seed: int,
    num_seeds: int,
    out: Path,
    log_every: int = 0,
    checkpoint_every: int = 0,
    data_parallel: bool = True,
    resume: bool = False,
    quiet: bool = False,
    process_start: float | None = None,
) -> int:
    """Train and write the run directory. Returns the process exit code."""
    import jax
    import numpy as np

    from jax.sharding import NamedSharding, PartitionSpec

    from ppo_jax.engine import ENV_AXIS, device_mesh
    from ppo_jax.run import Checkpoints, Progress, RunDir, metric_rows
    from ppo_jax.trainer import finalize

    spent = _Spent(_PROCESS_START if process_start is None else process_start)
    algo_name = algo.name
    if num_seeds < 1:
        raise UsageError(f"--num-seeds must be positive, got {num_seeds}")
    # Several devices (of this process, or of every process under jax.distributed): one
    # seed -> its envs are split across the devices (the engine's mesh); several seeds ->
    # whole seeds are placed on different devices. Process 0 writes the run directory.
    primary = jax.process_index() == 0
    quiet = quiet or not primary
    mesh, seed_sharding = None, None
    ndev = jax.device_count()
    if jax.process_count() > 1 and not (data_parallel and (algo.data_parallel or num_seeds % ndev == 0)):
        raise UsageError(f"{jax.process_count()} processes need data parallelism: --algo {algo_name} with "
                         f"{num_seeds} seed(s) cannot be split over {ndev} devices")
    if data_parallel and ndev > 1:
        if num_seeds == 1 and algo.data_parallel:
            mesh = device_mesh(jax.devices())
        elif num_seeds % ndev == 0:
            seed_sharding = NamedSharding(device_mesh(jax.devices()), PartitionSpec(ENV_AXIS))
        elif not quiet:
            print(f"note: {num_seeds} seeds do not divide over {ndev} devices; running on one device", file=sys.stderr)
    try:
        with spent("build"):
            trainer = algo.build(env_id, configs, mesh)
    except ValueError as e:
        raise UsageError(str(e)) from None

    total = int(trainer.num_updates)
    chunk = log_every if log_every > 0 else _default_chunk(total)
    ckpt_every = checkpoint_every if checkpoint_every > 0 else 10 * chunk
    if chunk < 1 or ckpt_every < 1:
        raise UsageError("--log-every and --checkpoint-every must be positive")

    run_dir = RunDir(out) if primary else _NoRunDir(out)
    keys = np.asarray(jax.random.split(jax.random.PRNGKey(seed), num_seeds))  # host data: the same on every process
    if seed_sharding is not None:
        keys = jax.device_put(keys, seed_sharding)
    init = jax.jit(jax.vmap(trainer.init))
    masked = _supports_masked_chunks(trainer)
    uneven = total % chunk != 0  # the last chunk is shorter: run it masked in the same program
    # On one device, the chunk program is compiled in a thread from the state's shapes while
    # the init program compiles and runs (XLA compiles release the GIL).
    early = None
    if mesh is None and seed_sharding is None:
        from concurrent.futures import ThreadPoolExecutor

        abstract = jax.eval_shape(init, keys)
        early = ThreadPoolExecutor(1).submit(_compile_chunk, trainer, abstract, chunk, masked, uneven)
    ckpts = Checkpoints(run_dir.path / "checkpoints")
    done = 0
    if resume:
        latest = ckpts.latest()
        if latest is None:
            raise UsageError(f"{run_dir.path} has no checkpoint to resume from")
        states = ckpts.restore(latest, jax.eval_shape(init, keys))
        done = int(latest)
        run_dir.truncate_metrics(done)
        if not quiet:
            print(f"resumed {run_dir.path} at update {done}/{total}", file=sys.stderr)
    else:
        run_dir.write_config(
            {
                "algo": algo_name,
                "env": env_id,
                "seed": seed,
                "num_seeds": num_seeds,
                "log_every": chunk,
                "checkpoint_every": ckpt_every,
                "configs": algo.to_json(configs),
                "num_updates": total,
                "steps_per_update": int(trainer.steps_per_update),
            }
        )
        if primary and run_dir.metrics_path.exists():
            run_dir.metrics_path.unlink()
        with spent("init"):
            states = jax.block_until_ready(_compile_once(init, keys)(keys))
        with spent("checkpoints"):
            ckpts.save(0, states)
        if not quiet:
            print(f"initialised {num_seeds} seed(s) in {spent.seconds['init']:.1f}s", file=sys.stderr)

    # One compiled chunk program per run: trainers whose ``run`` takes ``first_update`` and
    # ``last_update`` (the PPO engine) run the last, shorter chunk in the same program with
    # the updates past the budget skipped; others compile a program per chunk length.
    compiled: dict[int, Any] = {}

    def chunk_fn(n: int):
        size = chunk if masked else n
        if size not in compiled:
            with spent("compile"):
                if size == chunk and early is not None:
                    compiled[size] = early.result()
                else:
                    compiled[size] = _compile_chunk(trainer, states, size, masked, uneven)
            if not quiet:
                print(f"compiled {size}-update chunk in {spent.seconds['compile']:.1f}s", file=sys.stderr)
        program = compiled[size]
        if masked and uneven:
            return lambda s: program(s, np.int32(done), np.int32(total))
        if masked:
            return lambda s: program(s, np.int32(done))
        return program

    progress = Progress(total, int(trainer.steps_per_update), done, stream=sys.stderr if not quiet else open("/dev/null", "w"))
    last_saved = done
    try:
        while done < total:
            n = min(chunk, total - done)
            fn = chunk_fn(n)
            t0 = time.perf_counter()
            with spent("train"):
                new_states, metrics = fn(states)
                metrics = jax.tree.map(lambda m: m[:, :n], _fetch(jax.block_until_ready(metrics)))
            elapsed = time.perf_counter() - t0
            steps_per_sec = n * trainer.steps_per_update * num_seeds / elapsed
            bad = np.asarray(metrics.get("nonfinite", np.zeros((num_seeds, n)))) > 0
            if bad.any():
                first = int(np.argmax(bad.any(axis=0)))
                run_dir.append_metrics(
                    metric_rows({k: v[:, : first + 1] for k, v in metrics.items()}, done, trainer.steps_per_update)
                )
                print(
                    f"error: non-finite loss at update {done + first + 1} (seed(s) "
                    f"{np.flatnonzero(bad[:, first]).tolist()}); stopped; the last good checkpoint is update "
                    f"{ckpts.latest()} in {run_dir.path / 'checkpoints'}",
                    file=sys.stderr,
                )
                run_dir.plot_curve(f"{algo_name} on {env_id}")
                return 2
            states = new_states
            with spent("metrics"):
                run_dir.append_metrics(metric_rows(metrics, done, trainer.steps_per_update, {"steps_per_sec": steps_per_sec}))
            done += n
            if done // ckpt_every > last_saved // ckpt_every or done == total:
                with spent("checkpoints"):
                    ckpts.save(done, states)
                last_saved = done
            latest_return = float(np.mean(metrics["return"][:, -1])) if "return" in metrics else None
            progress.update(done, latest_return, steps_per_sec)
    finally:
        progress.close()
        ckpts.close()
    with spent("curve"):
        run_dir.plot_curve(f"{algo_name} on {env_id} ({num_seeds} seed{'s' if num_seeds > 1 else ''})")
        if primary:
            finalize(trainer, states, run_dir.path)
    if not quiet:
        final = run_dir.read_metrics()[-1]
        print(f"done: {run_dir.path}  final return per seed: {final.get('return')}", file=sys.stderr)
        print(f"time: {spent.summary()}", file=sys.stderr)
    return 0


class _Spent:
    """Wall seconds per phase of a run (``with spent("init"): ...``), for the closing line."""

    def __init__(self, process_start: float):
        self.process_start = process_start
        self.seconds: dict[str, float] = {}
        self.t_start = time.perf_counter()

    def __call__(self, phase: str):
        import contextlib

        @contextlib.contextmanager
        def timed():
            t0 = time.perf_counter()
            try:
                yield
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0

        return timed()

    def summary(self) -> str:
        now = time.perf_counter()
        parts = [f"start-up (imports, build) {self.t_start - self.process_start:.1f}s"]
        parts += [f"{k} {v:.1f}s" for k, v in self.seconds.items()]
        return ", ".join(parts) + f"; total {now - self.process_start:.1f}s"


def _default_chunk(total: int) -> int:
    """Updates per chunk when ``--log-every`` is not given: about 1/50 of the run, preferring a
    divisor of ``total`` (between 1/100 and 1/25 of it) so that every chunk has the same size."""
    target = max(1, total // 50)
    divisors = [d for d in range(max(1, total // 100), max(1, total // 25) + 1) if total % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


# XLA options for programs that run once (the seed-vmapped init): the backend's expensive
# optimisation passes cost seconds of compile time and save microseconds of run time there.
# They change no semantics (no fast-math): the same program, less optimised machine code.
ONCE_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _compile_once(fn, *args):
    """``fn`` (a ``jax.jit`` function) compiled for ``args`` with :data:`ONCE_OPTIONS`."""
    import os

    if os.environ.get("PPO_JAX_ONCE_FULL_OPT"):
        return fn.lower(*args).compile()
    return fn.lower(*args).compile(compiler_options=ONCE_OPTIONS)


def _compile_chunk(trainer, states, size: int, masked: bool, last: bool):
    """The compiled ``n = size`` chunk program of ``trainer`` for states shaped like ``states``.
    ``masked``: ``run`` takes the unbatched first update (and, with ``last``, the budget's last
    update, past which updates are skipped: one program also for a shorter last chunk)."""
    import jax
    import numpy as np

    if masked and last:
        fn = jax.jit(jax.vmap(lambda s, first, end: trainer.run(s, size, first, end), in_axes=(0, None, None)))
        return fn.lower(states, np.int32(0), np.int32(0)).compile()
    if masked:
        fn = jax.jit(jax.vmap(lambda s, first: trainer.run(s, size, first), in_axes=(0, None)))
        return fn.lower(states, np.int32(0)).compile()
    return jax.jit(jax.vmap(lambda s: trainer.run(s, size))).lower(states).compile()


def _fetch(tree):
    """Device arrays -> numpy; under several processes, gathered from all of them."""
    import jax
    import numpy as np

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, tree)


class _NoRunDir:
    """What processes other than 0 use instead of a ``RunDir``: they write nothing."""

    def __init__(self, path):
        self.path = Path(path)
        self.metrics_path = self.path / "metrics.jsonl"

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _supports_masked_chunks(trainer) -> bool:
    """Whether ``trainer.run(state, n, first_update, last_update)`` is accepted (ppo_jax.engine.PPO)."""
    import inspect

    try:
        params = inspect.signature(trainer.run).parameters
    except (TypeError, ValueError):
        return False
    return "first_update" in params and "last_update" in params
