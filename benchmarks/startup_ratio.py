"""Whole-process wall time of ``python train.py --algo ppo --env CartPole-v1 --total-timesteps
500000 --num-envs 4`` against a plain single-file JAX PPO with the same settings
(``benchmarks/plain_ppo_cartpole.py``, PureJaxRL's CartPole config), measured side by side in
one run: the two commands alternate ``--repeats`` times and the medians are compared.

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
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
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
    ours, plain, breakdowns = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            cmd = [sys.executable, "train.py", "--algo", "ppo", "--env", "CartPole-v1", "--total-timesteps",
                   str(args.total_timesteps), "--num-envs", "4", "--seed", "0", "--out", os.path.join(tmp, f"run{i}")]
            wall, log = _timed(cmd)
            ours.append(wall)
            found = re.search(r"^time: (.*)$", log, re.M)
            breakdowns.append(found.group(1) if found else "")
            wall, log = _timed([sys.executable, "-m", "benchmarks.plain_ppo_cartpole", "--total-timesteps", str(args.total_timesteps)])
            plain.append(wall)
    m_ours, m_plain = statistics.median(ours), statistics.median(plain)
    ours_cmd = f"python train.py --algo ppo --env CartPole-v1 --total-timesteps {args.total_timesteps} --num-envs 4"
    run.add(command=f"`{ours_cmd}`",
            median_s=m_ours, all_s=", ".join(f"{w:.1f}" for w in ours), times_s=ours, breakdowns=breakdowns)
    run.add(command="plain single-file JAX PPO (`python -m benchmarks.plain_ppo_cartpole`)", median_s=m_plain,
            all_s=", ".join(f"{w:.1f}" for w in plain), times_s=plain)
    run.notes = "\n".join([f"{args.repeats} alternating repeats; ratio plain / ours = {m_plain / m_ours:.2f}", ""]
                           + [f"- train.py run {i}: {b}" for i, b in enumerate(breakdowns)])
    run.finish()


if __name__ == "__main__":
    main()
