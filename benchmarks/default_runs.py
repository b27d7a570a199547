"""The wall time of every algorithm's default run, as a user starts it: ``python train.py
--algo NAME`` (the ``default`` preset on the algorithm's default env), one whole process each,
one after the other, with the return at the start and at the end of the run.

    python -m benchmarks.default_runs                 # every registered algorithm
    python -m benchmarks.default_runs --algos ppo mu

Writes ``benchmarks/results/default_runs-<time>.json`` (``benchmarks.harness``); README.md
quotes the table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import harness

ROOT = Path(__file__).resolve().parents[1]


def first_last(values: list) -> tuple[float | None, float | None]:
    """The mean over seeds of the first and the last finite per-update metric value."""
    means = [sum(v) / len(v) for v in values if v and all(x == x for x in v)]
    return (means[0], means[-1]) if means else (None, None)


def main(argv: list[str] | None = None) -> None:
    from ppo_jax import registry

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", nargs="*", default=registry.names())
    args = p.parse_args(argv)
    run = harness.Run("default_runs", args=vars(args), columns={
        "algo": "algo", "env": "env", "updates": "updates", "wall_s": "wall s", "first": "return, first update",
        "last": "return, last update", "breakdown": "where the time went (train.py's closing line)"},
        formats={"wall_s": ".1f", "first": ".3g", "last": ".3g"})
    for name in args.algos:
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--algo", name, "--out", out],
                                  cwd=ROOT, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
            rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
            config = json.loads((Path(out) / "config.json").read_text())
        first, last = first_last([r.get("return") for r in rows])
        line = next((l for l in proc.stderr.splitlines() if l.startswith("time:")), "")
        run.add(algo=name, env=config["env"], updates=config["num_updates"], wall_s=wall, first=first, last=last,
                breakdown=line.removeprefix("time: "))
        print(f"{name}: {wall:.1f} s", file=sys.stderr, flush=True)
    run.finish()


if __name__ == "__main__":
    main()
