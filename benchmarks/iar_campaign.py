"""IAR's ERA campaign (issue 21 item 3): ERA-v3 / v4 x {IAR, MASK, AR+IAR, Factored+IAR},
5 vmapped seeds, 7e5 env steps, one ``train.py`` process per (version, method), resumable.

    python -m benchmarks.iar_campaign                 # run / resume every run in order, one at a time
    python -m benchmarks.iar_campaign --summarise     # the table from /work/campaign/*/metrics.jsonl
    python -m benchmarks.iar_campaign --summarise --plot benchmarks/figures/iar_campaign_era.png
    python -m benchmarks.iar_campaign --timing        # short timing runs (2e4 steps) of every method
    python -m benchmarks.iar_campaign --dry-run       # print the commands only
    python -m benchmarks.iar_campaign --flops         # MFLOP per env step of every method

Long runs go in the background at the lowest priority (the machine is shared)::

    nice -n 19 nohup python benchmarks/iar_campaign.py > /work/campaign/driver.out 2>&1 &

The runs go one at a time, ERA-v3 before ERA-v4, cheapest method first (``RUN_ORDER``). Each run writes ``/work/campaign/<version>-<method>/`` (``train.py``'s run directory: config,
metrics.jsonl, checkpoints) and its output to ``train.log`` there; ``/work/campaign/campaign.log``
records the start and end wall time of every process. A run whose metrics reach its last
update is finished and skipped; a run with a checkpoint is resumed with
``python train.py --resume DIR``; a directory without a checkpoint (killed during start-up) is
started afresh. A second driver refuses to start while ``driver.pid`` names a live one.

Methods (``--algo iar``, the ``default`` preset; the paper's ablation names):
``iar`` (``--policy iar``), ``mask`` (``--policy mask``: MASK, the oracle mask over the
K^L joint actions), ``ar`` (``--policy ar``: AR + IAR, autoregressive categoricals with
invalid-action rejection), ``factored`` (``--policy factored``: Factored + IAR). Rejection
is on for ERA (``rejection="auto"``). Evaluation (the engine's): every 78 updates (4,992 env
steps) 10 episodes (the paper's 10 test environments) of 100 steps from random starts
(``eval_fixed_starts=off``: the original's fixed test starts never reached its env);
stochastic for the rejection policies (the original's IAR curves), greedy for MASK (as the
original evaluated MASK).

Summary: per run, the mean over the evaluations at 6.5e5 <= env steps <= 7e5 of the 10-episode
evaluation return, averaged over seeds, +- the seeds' standard deviation (and their min / max),
beside the paper's digitised numbers; for unfinished runs the latest env steps and the mean
evaluation return over the last 5e4 steps reached.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("IAR_CAMPAIGN_DIR", "/work/campaign"))
VERSIONS = ("ERA-v3", "ERA-v4")
METHODS = ("iar", "mask", "ar", "factored")
# the order the driver runs them in, per version: cheapest first (measured: MASK ~0.1 h, IAR
# ~3.3 h per 5-seed run), so that finished rows come early; ERA-v3 before ERA-v4
RUN_ORDER = ("mask", "factored", "ar", "iar")
LABELS = {"iar": "IAR", "mask": "MASK", "ar": "AR+IAR", "factored": "Factored+IAR"}
# The paper's figure, digitised (mean over 6.5-7e5 steps, +-1; issue 21).
PAPER = {
    "ERA-v3": {"iar": -23.0, "mask": -31.1, "ar": -34.6, "wol-ddpg": -53.4},
    "ERA-v4": {"iar": -29.1, "mask": -38.7, "ar": -43.9, "wol-ddpg": -55.6},
}
TOTAL_STEPS = 700_000
NUM_SEEDS = 5
EVAL_EVERY = 78  # updates (x 64 envs = 4,992 env steps): ~10 evaluations in the last 5e4 steps
EVAL_EPISODES = 10  # the paper's 10 test environments
LOG_EVERY = 156  # updates per compiled chunk (~1e4 env steps)
CHECKPOINT_EVERY = 312  # updates (~2e4 env steps): at most that much is lost when killed
WINDOW = (650_000, 700_000)
LAST = 50_000


def run_name(version: str, method: str) -> str:
    return f"{version}-{method}"


def train_args(version: str, method: str, total_steps: int = TOTAL_STEPS, num_seeds: int = NUM_SEEDS) -> list[str]:
    """``train.py`` arguments of one (version, method) run (without ``--out``)."""
    return [
        "--algo", "iar", "--env", version, "--preset", "default", "--policy", method,
        "--num-seeds", str(num_seeds), "--seed", "0", "--total-timesteps", str(total_steps),
        "--eval-every", str(EVAL_EVERY), "--eval-episodes", str(EVAL_EPISODES),
        "--eval-mode", "greedy" if method == "mask" else "stochastic", "--eval-fixed-starts", "off",
        "--log-every", str(LOG_EVERY), "--checkpoint-every", str(CHECKPOINT_EVERY),
    ]


def read_rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill
            break
    return rows


def run_state(run_dir: Path) -> str:
    """"new" (nothing usable), "partial" (has a checkpoint: resume) or "finished"."""
    config = run_dir / "config.json"
    if not config.exists():
        return "new"
    total = json.loads(config.read_text())["num_updates"]
    rows = read_rows(run_dir)
    if rows and rows[-1]["update"] >= total:
        return "finished"
    ckpts = run_dir / "checkpoints"
    if ckpts.exists() and any(p.name.isdigit() for p in ckpts.iterdir()):
        return "partial"
    return "new"


def log(line: str) -> None:
    ROOT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with (ROOT / "campaign.log").open("a") as f:
        f.write(f"{stamp}  {line}\n")
    print(f"{stamp}  {line}", flush=True)


def run_one(out: Path, args: list[str], dry_run: bool) -> int:
    state = run_state(out)
    if state == "finished":
        log(f"skip {out.name}: finished")
        return 0
    if state == "partial":
        cmd = [sys.executable, str(REPO / "train.py"), "--resume", str(out)]
    else:
        if out.exists() and not dry_run:  # a start that never reached its first checkpoint
            import shutil

            shutil.rmtree(out)
        cmd = [sys.executable, str(REPO / "train.py"), *args, "--out", str(out)]
    if dry_run:
        print(" ".join(cmd))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    rows = read_rows(out)
    log(f"start {out.name} ({state}, from env step {rows[-1]['env_steps'] if rows else 0}): {' '.join(cmd[1:])}")
    t0 = time.time()
    with (out / "train.log").open("a") as f:
        f.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}: {' '.join(cmd)}\n")
        f.flush()
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=_env())
    rows = read_rows(out)
    log(f"end {out.name}: rc {rc}, {time.time() - t0:.0f} s wall, env step {rows[-1]['env_steps'] if rows else 0}")
    return rc


def _env() -> dict:
    """The environment of the runs: JAX's persistent compilation cache under ROOT, so a resumed
    run (and a campaign run after its timing run: the same chunk program) does not recompile."""
    env = dict(os.environ)
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / "jax_cache"))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "2")
    return env


def acquire_lock() -> Path:
    ROOT.mkdir(parents=True, exist_ok=True)
    lock = ROOT / "driver.pid"
    if lock.exists():
        try:
            pid = int(lock.read_text().strip())
            os.kill(pid, 0)
            raise SystemExit(f"error: another campaign driver (pid {pid}) is running ({lock})")
        except (ValueError, ProcessLookupError):
            pass
    lock.write_text(f"{os.getpid()}\n")
    return lock


def campaign(versions, methods, dry_run: bool) -> int:
    lock = None if dry_run else acquire_lock()
    try:
        for version in versions:
            for method in methods:
                rc = run_one(ROOT / run_name(version, method), train_args(version, method), dry_run)
                if rc != 0:
                    log(f"{run_name(version, method)} failed (rc {rc}); going on with the next run")
        if not dry_run:
            log("campaign driver: every run visited")
    finally:
        if lock is not None and lock.exists() and lock.read_text().strip() == str(os.getpid()):
            lock.unlink()
    return 0


def timing(versions, methods, steps: int) -> int:
    """Short runs of every method (``ROOT/timing``); prints env-steps/s (all seeds) of the
    chunks after the first."""
    lock = acquire_lock()
    try:
        for version in versions:
            for method in methods:
                out = ROOT / "timing" / run_name(version, method)
                run_one(out, train_args(version, method, total_steps=steps), dry_run=False)
    finally:
        lock.unlink()
    summarise_timing(ROOT / "timing")
    return 0


def summarise_timing(directory: Path) -> None:
    print("| run | seeds | env steps | env-steps/s (all seeds, 2nd chunk) | h per 7e5-step run (all seeds) | h per seed | process wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in sorted(p for p in directory.iterdir() if (p / "config.json").exists()):
        cfg = json.loads((run / "config.json").read_text())
        rows = read_rows(run)
        if not rows:
            continue
        # one steps_per_sec per chunk; the second chunk is the clean one (the first overlaps
        # the compile's tail, the last is masked)
        per_chunk = []
        for r in rows:
            if not per_chunk or per_chunk[-1] != r["steps_per_sec"]:
                per_chunk.append(r["steps_per_sec"])
        rate = per_chunk[1] if len(per_chunk) > 1 else per_chunk[0]
        seeds = cfg["num_seeds"]
        hours = TOTAL_STEPS * seeds / rate / 3600
        wall = _wall_time(run)
        print(f"| {run.name} | {seeds} | {rows[-1]['env_steps']} | {rate:.0f} | {hours:.2f} | {hours / seeds:.2f} | {wall} |")


def flops(versions, methods) -> None:
    """MFLOP per env step of each method's training update (XLA cost analysis of a program of
    ONE A2C update at 64 envs, one seed, no doubling round: S_max = S) and of its evaluation
    (one call of ``evaluate``: its while_loop body, one step of the 10 episodes, counted once,
    times 100 steps, spread over the 78 x 64 env steps between evaluations)."""
    import jax

    from iar_jax.algo import IARConfig, build, preset

    def cost(compiled):
        c = compiled.cost_analysis()
        c = c[0] if isinstance(c, (list, tuple)) else c
        return float((c or {}).get("flops", float("nan")))

    print("| version | method | train MFLOP / env step | + per doubling round | eval MFLOP / env step (amortised) |")
    print("|---|---|---:|---:|---:|")
    for version in versions:
        for method in methods:
            cfgs = preset("default")
            ppo = cfgs["ppo"].replace(total_timesteps=128, eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES,
                                      eval_mode="greedy" if method == "mask" else "stochastic", eval_fixed_starts="off")
            iar = cfgs["iar"].replace(policy=method)
            flat = iar.replace(max_candidates=iar.num_candidates)
            out = []
            for cfg in (flat, iar):
                trainer = build(version, {"ppo": ppo.replace(eval_every=0), "iar": cfg})
                state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
                out.append(cost(jax.jit(lambda s: trainer.run(s, 1)).lower(state).compile()) / ppo.num_envs)
                if method == "mask":
                    out.append(out[0])
                    break
            trainer = build(version, {"ppo": ppo, "iar": iar})
            state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
            ev = cost(jax.jit(trainer.evaluate).lower(state.params, state.obs_rms, state.eval_key).compile())
            steps = getattr(trainer.env_params, "max_steps_in_episode", 100)
            ev_per_step = ev * steps / (EVAL_EVERY * ppo.num_envs)
            print(f"| {version} | {LABELS[method]} | {out[0] / 1e6:.2f} | {(out[1] - out[0]) / 1e6:.2f} | {ev_per_step / 1e6:.2f} |",
                  flush=True)


def _wall_time(run: Path) -> str:
    log_path = run / "train.log"
    if not log_path.exists():
        return "-"
    for line in reversed(log_path.read_text().splitlines()):
        if line.startswith("time:") and "total" in line:
            return line.rsplit("total", 1)[1].strip(" s;")
    return "-"


def _mean(xs):
    return sum(xs) / len(xs)


def _std(xs):
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def eval_summary(rows: list[dict], lo: float, hi: float) -> dict | None:
    """Per-seed mean of ``eval/return`` over evaluations with lo <= env_steps <= hi."""
    per_seed: list[list[float]] = []
    n_evals = 0
    for r in rows:
        if not lo <= r["env_steps"] <= hi:
            continue
        values = r.get("eval/return")
        if values is None or all(v is None for v in values):
            continue
        n_evals += 1
        if not per_seed:
            per_seed = [[] for _ in values]
        for i, v in enumerate(values):
            if v is not None:
                per_seed[i].append(v)
    means = [_mean(s) for s in per_seed if s]
    if not means:
        return None
    return {"mean": _mean(means), "std": _std(means), "min": min(means), "max": max(means),
            "seeds": len(means), "evals": n_evals}


GCN_METHODS = ("mask", "factored", "ar")  # the baselines with the original's graph encoder (--encoder gcn)


def summarise(root: Path = ROOT, gcn_root: Path | None = None) -> str:
    lines = [
        f"Campaign at {root} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); eval return: 10-episode "
        "evaluation mean, averaged over seeds, +- the seeds' std (min .. max of the seed means).",
        "",
        "| version | method | paper (6.5-7e5) | ours: state | env steps reached | ours, mean eval return 6.5-7e5 | "
        "ours, last 5e4 steps reached | evaluations in window |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    fmt = lambda s: "-" if s is None else f"{s['mean']:.1f} +- {s['std']:.1f} ({s['min']:.1f} .. {s['max']:.1f})"

    def row(version: str, method: str, run: Path, label: str) -> str:
        rows = read_rows(run)
        state = run_state(run) if run.exists() else "not started"
        reached = rows[-1]["env_steps"] if rows else 0
        final = eval_summary(rows, *WINDOW) if state == "finished" else None
        last = eval_summary(rows, reached - LAST, reached) if rows else None
        window = final if final is not None else last
        paper = f"{PAPER[version][method]:.1f}" if method in PAPER[version] else "-"
        return (f"| {version} | {label} | {paper} | {state} | {reached:,} | {fmt(final)} | "
                f"{fmt(last)} | {window['evals'] if window else 0} |")

    for version in VERSIONS:
        lines += [row(version, m, root / run_name(version, m), LABELS[m]) for m in METHODS]
        lines.append(f"| {version} | Wol-DDPG | {PAPER[version]['wol-ddpg']:.1f} | not run | - | - | - | - |")
        if gcn_root is not None:
            lines += [row(version, m, gcn_root / f"{run_name(version, m)}-gcn", f"{LABELS[m]}, graph encoder")
                      for m in GCN_METHODS]
    return "\n".join(lines)


def plot(path: Path, root: Path = ROOT, gcn_root: Path | None = None) -> Path:
    """Evaluation curves: per version, each method's mean eval return over seeds (band: min ..
    max of the seeds) vs env steps, with the paper's 6.5-7e5 means as dashed lines; with
    ``gcn_root``, the graph-encoder baselines' means as dotted lines (no band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(VERSIONS), figsize=(6 * len(VERSIONS), 4), squeeze=False)
    for ax, version in zip(axes[0], VERSIONS):
        for i, method in enumerate(METHODS):
            rows = [r for r in read_rows(root / run_name(version, method))
                    if r.get("eval/return") and all(v is not None for v in r["eval/return"])]
            if rows:
                x = np.array([r["env_steps"] for r in rows])
                y = np.array([r["eval/return"] for r in rows], dtype=float)
                ax.plot(x, y.mean(1), color=f"C{i}", label=f"{LABELS[method]} (ours, {y.shape[1]} seeds)")
                ax.fill_between(x, y.min(1), y.max(1), color=f"C{i}", alpha=0.2)
            if gcn_root is not None and method in GCN_METHODS:
                rows = [r for r in read_rows(gcn_root / f"{run_name(version, method)}-gcn")
                        if r.get("eval/return") and all(v is not None for v in r["eval/return"])]
                if rows:
                    x = np.array([r["env_steps"] for r in rows])
                    y = np.array([r["eval/return"] for r in rows], dtype=float)
                    ax.plot(x, y.mean(1), color=f"C{i}", ls=":", label=f"{LABELS[method]}, graph encoder ({y.shape[1]} seeds)")
            if method in PAPER[version]:
                ax.axhline(PAPER[version][method], color=f"C{i}", ls="--", lw=1)
        ax.axhline(PAPER[version]["wol-ddpg"], color="gray", ls=":", lw=1, label="Wol-DDPG (paper)")
        ax.set_title(f"{version}: eval return (dashed: paper, mean 6.5-7e5)")
        ax.set_xlabel("env steps")
        ax.set_xlim(0, TOTAL_STEPS)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--summarise", action="store_true", help="print the campaign table and exit")
    p.add_argument("--timing", action="store_true", help="short timing runs (--timing-steps) of every method")
    # 328 updates = 2 full chunks of 156 + a masked one: the campaign's own chunk program (cached)
    p.add_argument("--timing-steps", type=int, default=21_000)
    p.add_argument("--then-campaign", action="store_true", help="with --timing: start the campaign afterwards")
    p.add_argument("--versions", nargs="+", default=list(VERSIONS), choices=VERSIONS)
    p.add_argument("--methods", nargs="+", default=list(RUN_ORDER), choices=METHODS)
    p.add_argument("--dry-run", action="store_true", help="print the commands the driver would run")
    p.add_argument("--flops", action="store_true", help="MFLOP per env step of every method (XLA cost analysis)")
    p.add_argument("--gcn-root", default=None, metavar="DIR",
                   help="with --summarise: also the baselines run with --encoder gcn, in DIR/<version>-<method>-gcn")
    p.add_argument("--plot", default=None, metavar="PNG", help="with --summarise: also write the evaluation curves here")
    args = p.parse_args(argv)
    if args.summarise:
        gcn = Path(args.gcn_root) if args.gcn_root else None
        print(summarise(gcn_root=gcn))
        if args.plot:
            print(f"curves: {plot(Path(args.plot), gcn_root=gcn)}")
        return 0
    if args.flops:
        flops(args.versions, args.methods)
        return 0
    if args.timing:
        timing(args.versions, args.methods, args.timing_steps)
        if not args.then_campaign:
            return 0
        return campaign(list(VERSIONS), list(RUN_ORDER), args.dry_run)
    return campaign(args.versions, args.methods, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
