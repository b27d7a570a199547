"""Why PPO-Lagrangian (standard form) and CUP violate on Safe-bandit (d = 0.25): per-update
cost and multiplier of seed 0 and the last-10 figures of 3 seeds (60 updates, PASPO's PPO).

    python -m benchmarks.safe_lag_scale {base|std|lr10} {ppo_lag|cup}

``base``: as implemented; ``std``: counterfactual with the cost advantage standardised like the
reward's (monkeypatched ``cost_advantage``); ``lr10``: multiplier learning rate 0.35.
benchmarks/RESULTS_safe.md reads the output.
"""
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import safe_jax.cup as cup
import safe_jax.lagrange as lagrange
from safe_jax.algo import SafeConfig, SafePPOConfig, build, train_seeds


def _standardised_cost_advantage(batch, centre=True):
    """Counterfactual: the cost advantage standardised like the reward's."""
    adv = jnp.asarray(batch.cost_advantage, jnp.float32)
    return (adv - adv.mean(0)) / (adv.std(0) + 1e-8)


def main(variant: str, method: str) -> None:

    if variant == "std":
        lagrange.cost_advantage = _standardised_cost_advantage
        cup.cost_advantage = _standardised_cost_advantage
    over = {"lagrange_lr": 0.35} if variant == "lr10" else {}
    updates = 60
    ppo = SafePPOConfig().replace(total_timesteps=512 * updates)
    train = build("Safe-bandit", {"ppo": ppo, "safe": SafeConfig(method=method, cost_limit=0.25, **over)})
    t0 = time.time()
    _, m = jax.block_until_ready(train_seeds(train, jax.random.split(jax.random.PRNGKey(0), 3)))
    c, lam, r = (np.asarray(m[k]) for k in ("cost_return", "lagrange_multiplier", "return"))
    print(f"== {method} {variant} ({time.time() - t0:.0f}s)")
    print("update      :", [1, 2, 3, 5, 10, 20, 30, 40, 60])
    idx = [0, 1, 2, 4, 9, 19, 29, 39, 59]
    print("cost seed0  :", np.round(c[0, idx], 3).tolist())
    print("lam  seed0  :", np.round(lam[0, idx], 3).tolist())
    print(f"last10 return {r[:, -10:].mean(1).round(4).tolist()} cost {c[:, -10:].mean(1).round(4).tolist()}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
