"""Throughput of full IAR training (and MASK) on ERA-v5, with model FLOPs and fraction of peak.

    python benchmarks/iar_throughput.py            # 64, 1024, 4096 envs (slow on a CPU)
    python benchmarks/iar_throughput.py --quick    # 64 and 256 envs, 2 timed updates

Every row is the engine's compiled A2C update (IAR's original mode: ``IARA2CConfig``, one
step per env per update) on ERA-v5 (K = 10 nodes, L = 3 resources, 1000 joint actions):
rollout (act: S candidates from the flow, oracle, rejection; env step) + loss + gradient
+ RMSprop, timed ahead-of-time compiled (compile time reported apart), median of the timed
chunks. Rows:

- ``iar``: paper's flow (4 coupling layers, hidden 128, context 64, posterior Gaussian + 2
  couplings), S = 64 candidates (S_max = 128 drawn, the original's doubling), N = 4 posterior samples, rejection term on all valid
  candidates, calibration of the adaptive alpha (16 samples).
- ``iar-subset8``: the same with the rejection term on a random subset of 8 valid
  candidates (``rejection_subset=8``; consistent, see ``iar_jax.rejection``).
- ``mask``: MASK, one categorical over the 1000 joint actions with the oracle's mask.

FLOPs per env step: XLA's cost analysis of the compiled chunk (``compiled.cost_analysis()``,
floating-point operations of the whole update program, including the environment) divided
by the env steps it makes. Peak: (a) nominal, cores x clock x 32 fp32 FLOP/cycle (two
256-bit FMA pipes; an assumption printed with the table), (b) measured in the same run, the
FLOP/s of a large float32 matmul (``jnp.dot`` 2048 x 2048), the practical ceiling.

The machine may be shared with other jobs when this runs; the script prints the load
average before and after so a reader can judge.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np

from iar_jax.algo import IARA2CConfig, IARConfig, build

FLOP_PER_CYCLE = 32  # fp32 FLOP per cycle per core assumed for the nominal peak


def cpu_clock_hz() -> float:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1]) * 1e6
    except OSError:
        pass
    return float("nan")


def matmul_flops_per_s(n: int = 2048, repeats: int = 5) -> float:
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    jax.block_until_ready(f(a))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a))
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / min(times)


def cost_flops(compiled) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", float("nan")))


def bench(name: str, iar_cfg: IARConfig, num_envs: int, chunk: int, repeats: int) -> dict:
    ppo = IARA2CConfig(num_envs=num_envs, num_steps=1, total_timesteps=num_envs * chunk * (repeats + 1))
    trainer = build("ERA-v5", {"ppo": ppo, "iar": iar_cfg})
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    t0 = time.perf_counter()
    compiled = jax.jit(lambda s: trainer.run(s, chunk)).lower(state).compile()
    compile_s = time.perf_counter() - t0
    flops = cost_flops(compiled)
    state, _ = compiled(state)  # warm-up chunk
    jax.block_until_ready(state)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, metrics = compiled(state)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    steps = chunk * num_envs
    sec = statistics.median(times)
    return {
        "name": name,
        "envs": num_envs,
        "compile_s": compile_s,
        "steps_per_s": steps / sec,
        "flops_per_step": flops / steps,
        "flops_per_s": flops / sec,
        "valid_rate": float(np.mean(np.asarray(metrics.get("policy/valid_rate", np.nan)))),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="64 and 256 envs, 2 timed chunks")
    p.add_argument("--sizes", nargs="*", type=int, default=None, help="num_envs values (default 64 1024 4096)")
    p.add_argument("--chunk", type=int, default=None, help="updates per timed chunk (default 4; quick 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed chunks (default 3; quick 2)")
    args = p.parse_args(argv)
    if args.quick:
        envs, chunk, repeats = (64, 256), 2, 2
    else:
        envs, chunk, repeats = (64, 1024, 4096), 4, 3
    envs = tuple(args.sizes or envs)
    chunk, repeats = args.chunk or chunk, args.repeats or repeats
    iar = IARConfig(num_candidates=64, num_posterior_samples=4)
    rows_cfg = [("iar", iar), ("iar-subset8", iar.replace(rejection_subset=8)), ("mask", IARConfig(policy="mask"))]

    load_before = os.getloadavg()
    clock = cpu_clock_hz()
    cores = os.cpu_count() or 1
    nominal = cores * clock * FLOP_PER_CYCLE
    measured = matmul_flops_per_s()
    rows = []
    for n in envs:
        for name, cfg in rows_cfg:
            r = bench(name, cfg, n, chunk, repeats)
            rows.append(r)
            print(f"  {name:12s} {n:5d} envs: {r['steps_per_s']:9.1f} steps/s (compile {r['compile_s']:.0f}s)", file=sys.stderr)
    load_after = os.getloadavg()

    print(f"# IAR / MASK training throughput on ERA-v5 (A2C update, S=64 / S_max=128, N=4)\n")
    print(f"{platform.processor() or platform.machine()}, {cores} cores, {clock / 1e9:.2f} GHz, jax {jax.__version__}, "
          f"backend {jax.default_backend()}; load average before {load_before[0]:.1f}, after {load_after[0]:.1f} "
          f"(shared machine)\n")
    print(f"nominal peak {nominal / 1e9:.0f} GFLOP/s ({cores} x {clock / 1e9:.2f} GHz x {FLOP_PER_CYCLE} FLOP/cycle, "
          f"assumed); measured matmul peak {measured / 1e9:.1f} GFLOP/s\n")
    print("| policy | envs | env-steps/s | MFLOP / env step | GFLOP/s | % nominal peak | % matmul peak | compile s | valid rate |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['name']} | {r['envs']} | {r['steps_per_s']:.1f} | {r['flops_per_step'] / 1e6:.1f} | "
            f"{r['flops_per_s'] / 1e9:.2f} | {100 * r['flops_per_s'] / nominal:.1f} | "
            f"{100 * r['flops_per_s'] / measured:.1f} | {r['compile_s']:.0f} | {r['valid_rate']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
