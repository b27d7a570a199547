"""Throughput of full IAR training (and MASK) on ERA-v5, with model FLOPs and fraction of peak.

    python -m benchmarks.iar_throughput                    # 64 and 1024 envs, all rows (slow on a CPU)
    python -m benchmarks.iar_throughput --quick            # 64 envs, 2 timed updates
    python -m benchmarks.iar_throughput --profile          # MFLOP / env step by part (act, pg, extra)
    python -m benchmarks.iar_throughput --rows default paper --sizes 64 1024

Every row is the engine's compiled A2C update (IAR's original mode: ``IARA2CConfig``, one
step per env per update) on ERA-v5 (K = 10 nodes, L = 3 resources, 1000 joint actions):
rollout (act: candidates from the flow, oracle, rejection; env step) + loss + gradient +
RMSprop. Rows (``ROWS``): ``default`` (the library's defaults), ``paper`` (the original's
compute: ``iar_jax.algo.preset("paper")``), ``before`` (the default before issue 21's
levers), ``mask`` (MASK, one categorical over the 1000 joint actions with the mask),
``default-eager`` (the default mapping all S_max candidates: what the lazy draw saves).

FLOPs per env step: XLA's cost analysis of a compiled program of ONE update divided by its
env steps. (The cost analysis counts the body of a loop once whatever its trip count: a
program of c updates under ``lax.scan`` reports the FLOPs of one; the earlier version of
this script divided that by c env steps and so reported 1/c of the truth.) The lazy
candidate draw is a ``while_loop`` too: the table reports the update without doubling
(S_max = S, no loop) and, apart, the cost of one doubling round (the loop body, for the
whole batch: under ``vmap`` a round runs when any state needs it). Time: median of
``repeats`` calls of the compiled 1-update program after a warm-up call (compile time
apart). Peak: (a) nominal, cores x clock x 32 fp32 FLOP/cycle (an assumption printed with
the table), (b) measured in the same run, a 2048 x 2048 float32 matmul.

The machine may be shared with other jobs when this runs; the header (``benchmarks.harness``)
gives the load average before and after so a reader can judge. Rows go to
``benchmarks/results/iar_throughput-*.json`` (``iar_profile-*.json`` for ``--profile``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from iar_jax.algo import IARA2CConfig, IARConfig, build, preset
from ppo_jax.policy import Batch

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
    return 2.0 * n**3 / min(harness.timeit(f, a, warmup=1, repeats=repeats).times_s)


def cost_flops(compiled) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", float("nan")))


def bench(name: str, iar_cfg: IARConfig, num_envs: int, repeats: int, env_id: str = "ERA-v5") -> dict:
    """Time ``repeats`` calls of the compiled 1-update program (after one warm-up call) and
    count its FLOPs. XLA's cost analysis counts a loop body once whatever its trip count,
    so the FLOPs come from programs without loops over updates (one update per program;
    the engine's scans over steps / epochs / minibatches have length 1 in A2C mode). The
    lazy candidate draw's ``while_loop`` is counted by compiling the same update with
    S_max = S (no doubling): ``flops_per_step`` is the cost of an update in which no state
    doubles S, ``round_flops_per_step`` the extra cost of one doubling round (the loop body)."""
    ppo = IARA2CConfig(num_envs=num_envs, num_steps=1, total_timesteps=num_envs * (repeats + 1))
    trainer = build(env_id, {"ppo": ppo, "iar": iar_cfg})
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    t0 = time.perf_counter()
    compiled = jax.jit(lambda s: trainer.run(s, 1)).lower(state).compile()
    compile_s = time.perf_counter() - t0
    flops = cost_flops(compiled)
    lazy = iar_cfg.policy != "mask" and iar_cfg.lazy_candidates and iar_cfg.max_candidates > iar_cfg.num_candidates
    if lazy:  # the same update without the doubling loop
        flat = build(env_id, {"ppo": ppo, "iar": iar_cfg.replace(max_candidates=iar_cfg.num_candidates)})
        flops_flat = cost_flops(jax.jit(lambda s: flat.run(s, 1)).lower(state).compile())
    else:
        flops_flat = flops
    box, used = [state], []

    def update():
        box[0], metrics = compiled(box[0])
        used.append(metrics.get("policy/candidates_used", np.nan))
        return metrics

    t = harness.timeit(update, warmup=1, repeats=repeats)
    metrics, sec = t.result, t.median_s
    used = [float(np.mean(np.asarray(u))) for u in used[1:]]  # the timed calls
    return {
        "name": name,
        "envs": num_envs,
        "compile_s": compile_s,
        "steps_per_s": num_envs / sec,
        "flops_per_step": flops_flat / num_envs,
        "round_flops_per_step": (flops - flops_flat) / num_envs,
        "flops_per_s": flops_flat / sec,
        "valid_rate": float(np.mean(np.asarray(metrics.get("policy/valid_rate", np.nan)))),
        "candidates_used": float(np.mean(used)),
        "seed_hours": 7e5 / (num_envs / sec) / 3600.0,
        "times_s": t.times_s,
    }


def profile(iar_cfg: IARConfig, num_envs: int = 64, env_id: str = "ERA-v5") -> dict:
    """MFLOP per env step of the update's parts, each compiled alone at the initial
    parameters (XLA cost analysis): ``act`` (the rollout's policy: encoder, S candidates
    through the generator, oracle, rejection; without the doubling loop, S_max = S), ``pg``
    (value and gradient of the A2C policy-gradient and value loss: the surrogate's 1 + M
    log-probability estimates), ``extra`` (value and gradient of ``extra_loss``: ELBO term
    and alpha's calibration). The environment step and optimizer are not included."""
    ppo = IARA2CConfig(num_envs=num_envs, num_steps=1, total_timesteps=num_envs * 2)
    flat_cfg = iar_cfg.replace(max_candidates=iar_cfg.num_candidates)
    trainer = build(env_id, {"ppo": ppo, "iar": flat_cfg})
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    pol, n = trainer.policy, num_envs
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    count = lambda f, *a: cost_flops(jax.jit(f).lower(*a).compile()) / n / 1e6
    act = lambda p: jax.vmap(pol.act, in_axes=(None, 0, 0, 0, None))(p, keys, state.obs, state.env_state, trainer.env_params)
    acts = jax.jit(act)(state.params)
    batch = Batch(state.obs, acts.action, acts.log_prob, acts.value, jnp.ones(n), jnp.ones(n), acts.extras)

    def pg(p):
        ev = jax.vmap(pol.evaluate, in_axes=(None, 0, 0, 0, 0))(p, keys, batch.obs, batch.action, batch.extras)
        return -jnp.mean(batch.advantage * ev.log_prob) + jnp.mean(jnp.square(ev.value))

    extra = lambda p: pol.extra_loss(p, jax.random.PRNGKey(2), batch)[0]
    return {"act": count(act, state.params), "pg": count(jax.grad(pg), state.params),
            "extra": count(jax.grad(extra), state.params)}


# the rows: the library's default, the original's compute (paper preset), the default before
# issue 21's levers (context term per sample, all S_max candidates mapped, S = 64, posterior
# of hidden 128 with conditional couplings, 16-sample ELBO gradient) and MASK
ROWS = {
    "default": IARConfig(),
    "paper": preset("paper")["iar"],
    "before": IARConfig(
        split_context=False, lazy_candidates=False, num_candidates=64, max_candidates=128, rejection_subset=0,
        posterior_hidden=0, posterior_conditional=True, elbo_grad_samples=0,
    ),
    "mask": IARConfig(policy="mask"),
    # the default with all S_max = 128 candidates mapped (no while_loop): the lazy draw's cost
    "default-eager": IARConfig(lazy_candidates=False),
}


COLUMNS = {"name": "row", "envs": "envs", "steps_per_s": "env-steps/s", "mflop_per_step": "MFLOP / env step",
           "round_mflop_per_step": "+ per doubling round", "gflop_per_s": "GFLOP/s", "pct_peak": "% matmul peak",
           "seed_hours": "h per 7e5-step seed", "compile_s": "compile s", "valid_rate": "valid rate",
           "candidates_used": "S_k"}
FORMATS = {"steps_per_s": ".1f", "mflop_per_step": ".1f", "round_mflop_per_step": ".1f", "gflop_per_s": ".2f",
           "pct_peak": ".1f", "seed_hours": ".2f", "compile_s": ".0f", "valid_rate": ".2f", "candidates_used": ".1f"}
PROFILE_COLUMNS = {"name": "row", "act": "act", "pg": "pg loss + grad", "extra": "extra loss + grad", "sum": "sum"}
PROFILE_FORMATS = {k: ".1f" for k in ("act", "pg", "extra", "sum")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="64 envs only, 2 timed updates")
    p.add_argument("--sizes", nargs="*", type=int, default=None, help="num_envs values (default 64 1024)")
    p.add_argument("--rows", nargs="*", default=None, help=f"rows of {sorted(ROWS)} (default: all)")
    p.add_argument("--repeats", type=int, default=None, help="timed updates (default 3; quick 2)")
    p.add_argument("--profile", action="store_true", help="per-part MFLOP / env step (act, pg, extra) at 64 envs")
    args = p.parse_args(argv)
    envs, repeats = ((64,), 2) if args.quick else ((64, 1024), 3)
    envs = tuple(args.sizes or envs)
    repeats = args.repeats or repeats
    names = args.rows or list(ROWS)
    for name in names:
        if name not in ROWS:
            p.error(f"unknown row {name!r}; choose from {sorted(ROWS)}")
    if args.profile:
        run = harness.Run("iar_profile", vars(args), PROFILE_COLUMNS, PROFILE_FORMATS,
                          notes="MFLOP / env step at 64 envs (XLA cost analysis)")
        for name in names:
            if ROWS[name].policy == "mask":
                continue
            r = profile(ROWS[name])
            run.add(name=name, **r, sum=sum(r.values()))
            print(f"  {name}: {sum(r.values()):.1f} MFLOP / env step", file=sys.stderr, flush=True)
        run.finish()
        return 0

    clock = cpu_clock_hz()
    cores = os.cpu_count() or 1
    nominal = cores * clock * FLOP_PER_CYCLE
    measured = matmul_flops_per_s()
    run = harness.Run("iar_throughput", vars(args), COLUMNS, FORMATS,
                      notes=f"IAR / MASK training throughput on ERA-v5 (A2C update, 1 step per env), median of "
                            f"{repeats} timed updates after a warm-up; {clock / 1e9:.2f} GHz; nominal peak "
                            f"{nominal / 1e9:.0f} GFLOP/s ({cores} x {clock / 1e9:.2f} GHz x {FLOP_PER_CYCLE} "
                            f"FLOP/cycle, assumed); measured matmul peak {measured / 1e9:.1f} GFLOP/s")
    for n in envs:
        for name in names:
            r = bench(name, ROWS[name], n, repeats)
            run.add(r, mflop_per_step=r["flops_per_step"] / 1e6, round_mflop_per_step=r["round_flops_per_step"] / 1e6,
                    gflop_per_s=r["flops_per_s"] / 1e9, pct_peak=100 * r["flops_per_s"] / measured)
            print(f"  {name:8s} {n:5d} envs: {r['steps_per_s']:9.1f} steps/s (compile {r['compile_s']:.0f}s, "
                  f"load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
