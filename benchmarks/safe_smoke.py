"""Smoke run: every safe_jax method trains a few updates on every kind of cost-reporting env
(PASPO allocation envs with the Dirichlet policy, ERA with the factored categorical, the
bandit probes with MLPActorCritic); prints whether metrics stay finite. OptLayer needs a
polytope: on other envs it is refused. The same matrix through ``train.py``:
``pytest -m slow tests/test_safe_cli.py``.

    python -m benchmarks.safe_smoke [--envs A,B] [--methods m1,m2]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from ppo_jax.config import PPOConfig
from safe_jax.algo import METHODS, OPTLAYER, SafeConfig, build

ENVS = ("PASPO-synth-7", "PASPO-compute-9", "PASPO-portfolio-13", "PASPO-capacity-7", "ERA-v1", "Safe-bandit",
        "Safe-bandit-box")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--envs", default=",".join(ENVS))
    p.add_argument("--methods", default=",".join(METHODS))
    args = p.parse_args(argv)
    cfg = PPOConfig(total_timesteps=8 * 8 * 3, num_envs=8, num_steps=8, num_minibatches=2, update_epochs=2)
    print("| env | method | finite | return (last) | cost_return (last) | wall s |\n|---|---|---|---|---|---|")
    for env_id in args.envs.split(","):
        for method in args.methods.split(","):
            t0 = time.time()
            if method in OPTLAYER and not env_id.startswith("PASPO-"):
                print(f"| {env_id} | {method} | refused (no polytope) | | | |", flush=True)
                continue
            train = build(env_id, {"ppo": cfg, "safe": SafeConfig(method=method)})
            _, m = jax.block_until_ready(jax.jit(train)(jax.random.PRNGKey(0)))
            finite = all(bool(np.all(np.isfinite(np.asarray(v)))) for k, v in m.items() if not k.startswith("eval/"))
            print(f"| {env_id} | {method} | {finite} | {float(m['return'][-1]):.4g} | {float(m['cost_return'][-1]):.4g} | "
                  f"{time.time() - t0:.1f} |", flush=True)


if __name__ == "__main__":
    main()
