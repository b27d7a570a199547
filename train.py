"""Train any registered algorithm on any registered environment, one run directory each.

    python train.py                                   # the default run (PASPO on PASPO-synth-7)
    python train.py --algo ppo --env CartPole-v1 --total-timesteps 500000 --num-envs 4 \
        --seed 0 --out runs/cartpole
    python train.py --algo iar --preset paper         # the paper's settings and budget
    python train.py --algo ppo --help                 # every option of that algorithm
    python train.py --resume runs/cartpole            # continue from the last checkpoint

Algorithms live in ``ppo_jax.registry`` (each package registers its own); the options of an
algorithm are the fields of its config dataclasses (``ppo_jax.cli``); ``ppo_jax.runner`` does
the run: ``config.json``, ``metrics.jsonl``, ``curve.png`` and ``checkpoints/`` in the run
directory. ``--num-seeds K`` trains K seeds in one vmapped program. Exit code 2 with one error
line on bad input or a non-finite loss.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ppo_jax.runner import UsageError  # light: starts no JAX backend

_PROCESS_START = time.perf_counter()
DEFAULT_ALGO = "paspo"


@dataclass(frozen=True)
class RunOptions:
    """What to run and where (the options every algorithm shares)."""

    algo: str = DEFAULT_ALGO  # algorithm (ppo_jax.registry): paspo, ppo, iar, safe, dra, mu, wol-ddpg
    env: str | None = None  # environment id (envs_jax.make; gymnax ids pass through); default: the algorithm's
    preset: str = "default"  # settings preset: default (finishes in minutes) or paper (the paper's settings and budget)
    seed: int = 0  # base seed
    num_seeds: int = 1  # seeds trained side by side in one vmapped program
    out: str | None = None  # run directory (default runs/<algo>-<env>-<time>)
    resume: str | None = None  # continue the run in this directory from its last checkpoint
    log_every: int = 0  # updates per compiled chunk (progress, metrics); 0 = about 1/50 of the run
    checkpoint_every: int = 0  # updates between checkpoints; 0 = every 10 chunks
    data_parallel: bool = True  # split envs (or seeds) across devices
    coordinator: str | None = None  # several processes: jax.distributed coordinator HOST:PORT
    num_processes: int | None = None  # several processes: how many
    process_id: int | None = None  # several processes: this one's index (0 writes the run directory)
    distributed: bool = False  # several processes: jax.distributed.initialize() from the cluster's settings (SLURM, ...)
    compile_cache: str | None = None  # persistent XLA compilation cache dir; default $JAX_COMPILATION_CACHE_DIR or ~/.cache/constrained-actions-jax/xla; "off": none


def _pre_parse(argv: list[str]) -> argparse.Namespace:
    """The options needed before anything else: which algorithm, preset, env; multi-process."""
    p = argparse.ArgumentParser(add_help=False)
    for name in ("algo", "env", "preset", "resume", "coordinator", "compile_cache"):
        p.add_argument(f"--{name.replace('_', '-')}", default=getattr(RunOptions, name))
    p.add_argument("--num-processes", type=int, default=None)
    p.add_argument("--process-id", type=int, default=None)
    p.add_argument("--distributed", action="store_true")
    return p.parse_known_args(argv)[0]


def compile_cache_dir(value: str | None) -> Path | None:
    """Where compiled programs persist between runs: ``value`` (``"off"``: nowhere), else
    ``$JAX_COMPILATION_CACHE_DIR``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)
    ``/constrained-actions-jax/xla``. A second run of the same program (same config and
    shapes, e.g. another ``--seed``) loads it instead of compiling: JAX's persistent cache,
    keyed on the program, the compile options, the backend and the jax/jaxlib versions."""
    import os

    if value is not None:
        return None if value.lower() in ("off", "none", "") else Path(value).expanduser()
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "constrained-actions-jax" / "xla"


def use_compile_cache(value: str | None) -> Path | None:
    """Point JAX's persistent compilation cache at :func:`compile_cache_dir` (or switch it
    off). Programs that compile in under a second are not stored (JAX's default). Takes
    effect even when something was compiled before in this process (the cache is reset)."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    path = compile_cache_dir(value)
    jax.config.update("jax_compilation_cache_dir", None if path is None else str(path))
    compilation_cache.reset_cache()
    return path


def init_distributed(args) -> None:
    """Join a multi-process (multi-host) JAX run before anything touches a device.

    Explicit: ``--coordinator HOST:PORT --num-processes N --process-id I``; or ``--distributed``
    for the launcher's environment (``jax.distributed.initialize()`` reads SLURM / Open MPI
    variables). On CPU the cross-process collectives use gloo.
    """
    explicit = [args.coordinator, args.num_processes, args.process_id]
    if not args.distributed and all(v is None for v in explicit):
        return
    import jax

    if any(v is None for v in explicit) and not args.distributed:
        raise UsageError("--coordinator, --num-processes and --process-id go together (or use --distributed)")
    if args.num_processes is not None and not 0 <= (args.process_id or 0) < args.num_processes:
        raise UsageError(f"--process-id must lie in [0, {args.num_processes}), got {args.process_id}")
    if jax.config.jax_platforms in (None, "", "cpu") or "cpu" in str(jax.config.jax_platforms):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if args.distributed and all(v is None for v in explicit):
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        pre = _pre_parse(argv)
        init_distributed(pre)  # before anything starts a JAX backend
        use_compile_cache(pre.compile_cache)
        from ppo_jax import cli, registry
        from ppo_jax.runner import train

        try:
            algo = registry.get(pre.algo)
        except ValueError as e:
            raise UsageError(str(e)) from None
        env_id = pre.env or algo.default_env
        extra, configs = cli.parse(algo, argv, preset=pre.preset, env_id=env_id, prog="train.py",
                                   extra={"run": RunOptions()})
        run: RunOptions = extra["run"]
        common = dict(data_parallel=run.data_parallel, process_start=_PROCESS_START)
        if run.resume:
            from ppo_jax.run import RunDir

            stored = RunDir(run.resume).read_config()
            algo = registry.get(stored["algo"])
            return train(algo, stored["env"], algo.from_json(stored["configs"]), seed=stored["seed"],
                         num_seeds=stored["num_seeds"], out=Path(run.resume), log_every=stored["log_every"],
                         checkpoint_every=stored["checkpoint_every"], resume=True, **common)
        if run.num_seeds < 1:
            raise UsageError(f"--num-seeds must be positive, got {run.num_seeds}")
        out = Path(run.out) if run.out else Path("runs") / f"{algo.name}-{env_id}-{time.strftime('%Y%m%d-%H%M%S')}"
        return train(algo, env_id, configs, seed=run.seed, num_seeds=run.num_seeds, out=out,
                     log_every=run.log_every, checkpoint_every=run.checkpoint_every, **common)
    except (UsageError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
