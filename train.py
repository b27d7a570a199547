"""Train any algorithm of the project on any registered environment, one run directory each.

    python train.py                                   # the default run (PPO on CartPole-v1)
    python train.py --algo ppo --env CartPole-v1 --total-timesteps 500000 --num-envs 4 \
        --seed 0 --out runs/cartpole
    python train.py --algo ppo --help                 # every option of that algorithm
    python train.py --resume runs/cartpole            # continue from the last checkpoint

Writes ``config.json``, ``metrics.jsonl``, ``curve.png`` and ``checkpoints/`` into the run
directory (``ppo_jax.run``). ``--num-seeds K`` trains K seeds in one vmapped program.
Exit code 2 with one error line on bad input or a non-finite loss.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

_PROCESS_START = time.perf_counter()
DEFAULT_ALGO = "paspo"


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


@dataclass(frozen=True)
class Algo:
    """An algorithm ``train.py`` can run.

    ``configs`` maps a short name to the config dataclass ("module:Class"); each field
    becomes a command-line option. ``build(env_id, configs, mesh) -> Trainer``.
    """

    configs: dict[str, str]
    build: Callable[..., Any]
    default_env: str
    summary: str
    data_parallel: bool = False
    # "module:function" with ``function(name, env_id, overrides) -> {config name: config}``
    # (overrides: the command line's fields per config, applied on top of the preset); None:
    # only the "default" preset (the config classes' own defaults).
    presets: str | None = None
    preset_names: tuple[str, ...] = ("default",)


def _load(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def build_ppo(env_id: str, configs: dict, mesh):
    import envs_jax
    from ppo_jax.engine import make_train
    from ppo_jax.policy import MLPActorCritic

    env, env_params = envs_jax.make(env_id)
    policy_cfg = configs["policy"]
    policy = MLPActorCritic(env.action_space(env_params), hidden=policy_cfg.hidden, activation=policy_cfg.activation)
    return make_train(configs["ppo"], env, env_params, policy, mesh)


def _build_from(target: str):
    """For PPO-engine algorithms whose package provides ``build(env_id, configs, mesh)``."""

    def build(env_id: str, configs: dict, mesh):
        return _load(target)(env_id, configs, mesh)

    return build


def _build_plain(module: str, name: str):
    """For algorithms with their own Trainer: ``module.make_trainer(config, env_id)``."""

    def build(env_id: str, configs: dict, mesh):
        return _load(f"{module}:make_trainer")(configs[name], env_id)

    return build


ALGOS: dict[str, Algo] = {
    "paspo": Algo(
        configs={"ppo": "paspo_jax.algo:PaspoPPOConfig", "paspo": "paspo_jax.algo:PASPOConfig"},
        build=_build_from("paspo_jax.algo:build"),
        default_env="PASPO-synth-7",
        summary="PASPO autoregressive Beta policy on a polytope, or its baselines (--method dirichlet|lagrangian|projection)",
        data_parallel=True,
    ),
    "ppo": Algo(
        configs={"ppo": "ppo_jax.config:PPOConfig", "policy": "ppo_jax.policy:MLPPolicyConfig"},
        build=build_ppo,
        default_env="CartPole-v1",
        summary="PPO with an MLP actor-critic (categorical or Gaussian)",
        data_parallel=True,
    ),
    "iar": Algo(
        configs={"ppo": "iar_jax.algo:IARA2CConfig", "iar": "iar_jax.algo:IARConfig"},
        build=_build_from("iar_jax.algo:build"),
        default_env="ERA-v1",
        summary="IAR argmax-flow policy with invalid-action rejection, or its baselines (--policy mask|factored|ar)",
        data_parallel=True,
        presets="train:_iar_presets",
        preset_names=("default", "paper"),
    ),
    "safe": Algo(
        configs={"ppo": "safe_jax.algo:SafePPOConfig", "safe": "safe_jax.algo:SafeConfig"},
        build=_build_from("safe_jax.algo:build"),
        default_env="Safe-bandit",
        summary="constrained RL on the cost channel (--method ppo_lag|ppo_lag_orig|p3o|ipo|cup|cpo)",
        data_parallel=True,
        presets="safe_jax.algo:presets",
        preset_names=("default", "paper"),
    ),
    "dra": Algo(
        configs={"dra": "dra_jax.trainer:Config"},
        build=_build_plain("dra_jax.trainer", "dra"),
        default_env="DRA-maze",
        summary="dynamic resource allocation of memory precision (Patel, Acerbi, Pouget 2020)",
        presets="train:_dra_presets",
        preset_names=("default", "paper"),
    ),
    "mu": Algo(
        configs={"mu": "mu_jax.trainer:Config"},
        build=_build_plain("mu_jax.trainer", "mu"),
        default_env="MU-location",
        summary="marginal-utility candidate generators (Ahmad, Lelis, Bowling 2020)",
    ),
}


# -- command line ---------------------------------------------------------------------
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse_value(text: str, default: Any, annotation: Any = None):
    """Parse a command-line value by the type of the field's default (or, where the
    default is None, by the field's annotation, e.g. ``float | None``)."""
    if text.lower() == "none":
        return None
    if default is None:
        kinds = str(annotation)
        for name, example in (("tuple", (0,)), ("bool", False), ("float", 0.0), ("int", 0)):
            if name in kinds:
                return _parse_value(text, example)
        return text
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if isinstance(default, int):
        return int(float(text)) if "e" in text.lower() and float(text).is_integer() else int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, tuple):
        item = type(default[0]) if default else int
        return tuple(item(t) for t in text.split(",") if t)
    return text


def _config_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def _field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _field_comments(cls) -> dict[str, str]:
    """The one-line ``# comment`` after each field of a config dataclass (its documentation)."""
    import inspect
    import re

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return {m[1]: m[2].strip() for m in re.finditer(r"^\s+(\w+)\s*:[^#\n]*#\s*(.*)$", source, re.M)}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults for the base options; config options print their own."""

    def _get_help_string(self, action):
        if action.dest.startswith("cfg__"):
            return action.help
        return super()._get_help_string(action)


def _base_parser(add_help: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train an algorithm of the project on an environment; one run directory per run.",
        add_help=add_help,
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--algo", default=DEFAULT_ALGO, help=f"one of: {', '.join(ALGOS)}")
    p.add_argument("--env", default=None, help="environment id (envs_jax.make; gymnax ids pass through); default per algo")
    p.add_argument("--preset", default="default",
                   help="settings preset of the algorithm: 'default' (finishes in minutes) or 'paper' (the paper's / original code's settings and budget) where the algorithm has it")
    p.add_argument("--seed", type=int, default=0, help="base seed")
    p.add_argument("--num-seeds", type=int, default=1, help="seeds trained side by side in one vmapped program")
    p.add_argument("--out", default=None, help="run directory (default runs/<algo>-<env>-<time>)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--log-every", type=int, default=0, help="updates per compiled chunk (progress, metrics); 0 = about 1/50 of the run")
    p.add_argument("--checkpoint-every", type=int, default=0, help="updates between checkpoints; 0 = every 10 chunks")
    p.add_argument("--no-data-parallel", action="store_true", help="do not split envs (or seeds) across devices")
    p.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="several processes (hosts): jax.distributed coordinator address (with --num-processes, --process-id)")
    p.add_argument("--num-processes", type=int, default=None, help="several processes: how many")
    p.add_argument("--process-id", type=int, default=None, help="several processes: this one's index (0 writes the run directory)")
    p.add_argument("--distributed", action="store_true",
                   help="several processes: call jax.distributed.initialize() with the cluster's own settings (SLURM, Open MPI, ...)")
    return p


def init_distributed(args: argparse.Namespace) -> None:
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


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, dict[str, Any]]:
    pre, _ = _base_parser(add_help=False).parse_known_args(argv)
    if pre.algo not in ALGOS:
        raise UsageError(f"unknown algorithm {pre.algo!r}; choose one of: {', '.join(ALGOS)}")
    algo = ALGOS[pre.algo]
    parser = _base_parser(add_help=True)
    for action in parser._actions:
        if action.dest == "preset":
            action.help = f"settings preset of --algo {pre.algo}: one of {', '.join(algo.preset_names)} (default: the classes' defaults; paper: the paper's and original code's settings and budget)"
    classes = {name: _load(target) for name, target in algo.configs.items()}
    seen: dict[str, str] = {}
    for name, cls in classes.items():
        group = parser.add_argument_group(f"{name} config ({cls.__module__}.{cls.__name__})")
        comments = _field_comments(cls)
        for f in _config_fields(cls):
            if f.name in seen:
                raise RuntimeError(f"config field {f.name!r} appears in {seen[f.name]} and {name}")
            seen[f.name] = name
            default = _field_default(f)
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            group.add_argument(_flag(f.name), dest=f"cfg__{name}__{f.name}", default=None, metavar="V", help=f"{comments.get(f.name, '')} (default: {shown})".strip())
    args = parser.parse_args(argv)
    overrides: dict[str, dict[str, Any]] = {name: {} for name in classes}
    for key, text in vars(args).items():
        if key.startswith("cfg__") and text is not None:
            _, name, field = key.split("__")
            spec = next(f for f in _config_fields(classes[name]) if f.name == field)
            try:
                overrides[name][field] = _parse_value(text, _field_default(spec), spec.type)
            except ValueError as e:
                raise UsageError(f"{_flag(field)}: {e}") from None
    return args, overrides


def _dra_presets(name: str, env_id: str, overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from dra_jax.trainer import preset_config

    return {"dra": preset_config(name, env_id, **overrides.get("dra", {}))}


def _iar_presets(name: str, env_id: str, overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from iar_jax.algo import preset

    return {k: dataclasses.replace(cfg, **overrides.get(k, {})) for k, cfg in preset(name).items()}


def build_configs(algo: Algo, overrides: dict[str, dict[str, Any]], preset: str = "default",
                  env_id: str | None = None) -> dict[str, Any]:
    """The algorithm's configs: the preset's (``default``: the classes' defaults, or the
    algorithm's per-env defaults where it has a preset function) with ``overrides`` on top."""
    if preset not in algo.preset_names:
        raise UsageError(f"unknown preset {preset!r} for this algorithm; choose one of: {', '.join(algo.preset_names)}")
    try:
        if algo.presets is not None:
            return _load(algo.presets)(preset, env_id or algo.default_env, overrides)
        return {name: _load(target)(**overrides.get(name, {})) for name, target in algo.configs.items()}
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None


def _json_configs(configs: dict[str, Any]) -> dict[str, dict]:
    return {name: dataclasses.asdict(cfg) for name, cfg in configs.items()}


def _from_json_configs(algo: Algo, stored: dict[str, dict]) -> dict[str, Any]:
    configs = {}
    for name, target in algo.configs.items():
        cls = _load(target)
        values = dict(stored[name])
        for f in _config_fields(cls):  # JSON turns tuples into lists
            if isinstance(_field_default(f), tuple) and isinstance(values.get(f.name), list):
                values[f.name] = tuple(values[f.name])
        configs[name] = cls(**values)
    return configs


# -- the run --------------------------------------------------------------------------
def train(
    algo_name: str,
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
) -> int:
    """Train and write the run directory. Returns the process exit code."""
    import jax
    import numpy as np

    from jax.sharding import NamedSharding, PartitionSpec

    from ppo_jax.engine import ENV_AXIS, device_mesh
    from ppo_jax.run import Checkpoints, Progress, RunDir, metric_rows
    from ppo_jax.trainer import finalize

    spent = _Spent()
    algo = ALGOS[algo_name]
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
                "configs": _json_configs(configs),
                "num_updates": total,
                "steps_per_update": int(trainer.steps_per_update),
            }
        )
        if primary and run_dir.metrics_path.exists():
            run_dir.metrics_path.unlink()
        with spent("init"):
            states = jax.block_until_ready(init(keys))
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

    def __init__(self):
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
        parts = [f"start-up (imports, build) {self.t_start - _PROCESS_START:.1f}s"]
        parts += [f"{k} {v:.1f}s" for k, v in self.seconds.items()]
        return ", ".join(parts) + f"; total {now - _PROCESS_START:.1f}s"


def _default_chunk(total: int) -> int:
    """Updates per chunk when ``--log-every`` is not given: about 1/50 of the run, preferring a
    divisor of ``total`` (between 1/100 and 1/25 of it) so that every chunk has the same size."""
    target = max(1, total // 50)
    divisors = [d for d in range(max(1, total // 100), max(1, total // 25) + 1) if total % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        # Before anything imports a module that creates arrays (the config classes do).
        init_distributed(_base_parser(add_help=False).parse_known_args(argv)[0])
        args, overrides = parse_args(argv)
        if args.resume:
            from ppo_jax.run import RunDir

            stored = RunDir(args.resume).read_config()
            algo = ALGOS[stored["algo"]]
            return train(
                stored["algo"],
                stored["env"],
                _from_json_configs(algo, stored["configs"]),
                seed=stored["seed"],
                num_seeds=stored["num_seeds"],
                out=Path(args.resume),
                log_every=stored["log_every"],
                checkpoint_every=stored["checkpoint_every"],
                data_parallel=not args.no_data_parallel,
                resume=True,
            )
        algo = ALGOS[args.algo]
        env_id = args.env or algo.default_env
        configs = build_configs(algo, overrides, args.preset, env_id)
        out = Path(args.out) if args.out else Path("runs") / f"{args.algo}-{env_id}-{time.strftime('%Y%m%d-%H%M%S')}"
        if args.num_seeds < 1:
            raise UsageError(f"--num-seeds must be positive, got {args.num_seeds}")
        return train(
            args.algo,
            env_id,
            configs,
            seed=args.seed,
            num_seeds=args.num_seeds,
            out=out,
            log_every=args.log_every,
            checkpoint_every=args.checkpoint_every,
            data_parallel=not args.no_data_parallel,
        )
    except (UsageError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
