"""Whole-process wall time of ``python train.py --algo ppo --env CartPole-v1 --total-timesteps
500000 --num-envs 4`` against a plain single-file JAX PPO with the same settings
(``benchmarks/plain_ppo_cartpole.py``, PureJaxRL's CartPole config), measured side by side in
one run: the commands alternate ``--repeats`` times and the medians are compared. train.py
runs twice per repeat: cold (``--compile-cache off``: everything compiled, as a first run) and
warm (its persistent compilation cache filled by one unmeasured run first, as a repeated run
or another ``--seed`` of the same config).

    python -m benchmarks.startup_ratio --repeats 3

Prints a markdown table (median wall s of each, the ratio plain / ours, and train.py's own
breakdown from its closing ``time:`` line) under the harness's header (machine, load before
and after); rows go to ``benchmarks/results/startup_ratio-*.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import harness

ROOT = Path(__file__).resolve().parents[1]


def _timed(cmd: list[str]) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800, env=env)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return wall, out.stderr + out.stdout


COLUMNS = {"command": "command", "median_s": "median wall s", "all_s": "all runs s"}
FORMATS = {"median_s": ".1f"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--total-timesteps", type=int, default=500_000)
    args = p.parse_args()
    run = harness.Run("startup_ratio", vars(args), COLUMNS, FORMATS)
    walls: dict[str, list[float]] = {"cold": [], "warm": [], "plain": []}
    breakdowns: dict[str, list[str]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "xla")

        def ours(name: str, out: str) -> tuple[float, str]:
            cmd = [sys.executable, "train.py", "--algo", "ppo", "--env", "CartPole-v1", "--total-timesteps",
                   str(args.total_timesteps), "--num-envs", "4", "--seed", "0", "--out", os.path.join(tmp, out),
                   "--compile-cache", "off" if name == "cold" else cache]
            return _timed(cmd)

        ours("warm", "prime")  # fills the cache; not measured
        for i in range(args.repeats):
            for name in ("cold", "warm"):
                wall, log = ours(name, f"{name}{i}")
                walls[name].append(wall)
                found = re.search(r"^time: (.*)$", log, re.M)
                breakdowns[name].append(found.group(1) if found else "")
            wall, _ = _timed([sys.executable, "-m", "benchmarks.plain_ppo_cartpole", "--total-timesteps", str(args.total_timesteps)])
            walls["plain"].append(wall)
    med = {k: statistics.median(v) for k, v in walls.items()}
    ours_cmd = f"python train.py --algo ppo --env CartPole-v1 --total-timesteps {args.total_timesteps} --num-envs 4"
    labels = {"cold": f"`{ours_cmd} --compile-cache off` (cold: a first run)",
              "warm": f"`{ours_cmd}` (warm: its compilation cache filled by an earlier run)",
              "plain": "plain single-file JAX PPO (`python -m benchmarks.plain_ppo_cartpole`)"}
    for name, label in labels.items():
        run.add(command=label, median_s=med[name], all_s=", ".join(f"{w:.1f}" for w in walls[name]),
                times_s=walls[name], breakdowns=breakdowns.get(name, []))
    run.notes = "\n".join(
        [f"{args.repeats} alternating repeats; ratio plain / ours: cold {med['plain'] / med['cold']:.2f}, "
         f"warm {med['plain'] / med['warm']:.2f}", ""]
        + [f"- train.py {name} run {i}: {b}" for name in ("cold", "warm") for i, b in enumerate(breakdowns[name])])
    run.finish()


if __name__ == "__main__":
    main()
