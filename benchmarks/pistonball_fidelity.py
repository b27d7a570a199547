"""Pistonball in JAX (``envs_jax.pistonball``) against PettingZoo's ``pistonball_v6`` (pymunk).

Needs ``pip install "pettingzoo[butterfly]"`` (pymunk, pygame). Prints three tables:

1. trajectories under identical actions: PettingZoo is reset with a seed, its initial state
   (piston heights, ball position and spin) is copied into the JAX env (``rules="v6"``, the
   installed version's reward and termination), both get the same uniform random actions;
   the table gives the gap ``|x_jax - x_pz|`` of the ball's centre after steps 1..T;
2. episode statistics, each env with its own random starts (PettingZoo's seeds vs JAX keys):
   mean return and length of the uniform random policy and of the hand-written policy
   :func:`lift_right` (pistons under the ball's right half up, those left of its centre down);
3. ``--speed``: env steps per second (PettingZoo one env; JAX vmapped at 64 and 1024 envs).

    python -m benchmarks.pistonball_fidelity [--episodes 200] [--speed]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from envs_jax.pistonball import PISTON_W, WALL, make_pistonball

N_BY_VERSION = {"v1": 5, "v2": 8, "v3": 10}


# --------------------------------------------------------------------------- policies
def lift_right(ball_x, n: int):
    """Hand-written policy (numpy or jax): piston ``i`` (centre ``60 + 40 i``) goes up (2)
    if its centre lies under the right half of the ball, ``[x, x + 60]``, down (0) if it
    lies left of the ball's centre, else stays (1). Never moves a piston left of the ball up."""
    xp = jnp if isinstance(ball_x, jax.Array) else np
    centres = WALL + PISTON_W / 2 + PISTON_W * xp.arange(n)
    up = (centres >= ball_x) & (centres <= ball_x + 60.0)
    return xp.where(up, 2, xp.where(centres < ball_x, 0, 1)).astype(xp.int32)


# --------------------------------------------------------------------------- PettingZoo side
def pz_env(n: int, seed: int, max_cycles: int = 125):
    """PettingZoo's raw AEC pistonball (discrete actions), reset with ``seed``."""
    from pettingzoo.butterfly import pistonball_v6

    env = pistonball_v6.raw_env(n_pistons=n, continuous=False, max_cycles=max_cycles)
    env.reset(seed=seed)
    return env


def pz_snapshot(pz) -> dict:
    """Initial conditions of a PettingZoo env, as keywords of ``Pistonball.state_from``."""
    return {
        "piston_y": [p.position[1] for p in pz.pistonList],
        "ball_p": tuple(pz.ball.position),
        "ball_w": pz.ball.angular_velocity,
    }


def pz_step(pz, action) -> tuple[float, float, bool, bool]:
    """One cycle (every piston in turn): ``(ball_x, reward, terminated, truncated)``."""
    for a in np.asarray(action):
        pz.step(int(a))
    agent = pz.possible_agents[0]
    return float(pz.ball.position[0]), float(pz.rewards[agent]), bool(pz.terminations[agent]), bool(pz.truncations[agent])


def pz_episode(n: int, seed: int, policy: str, rng: np.random.Generator) -> tuple[float, int]:
    """Return and length of one PettingZoo episode under ``policy`` ("random" or "lift_right")."""
    pz = pz_env(n, seed)
    ret, length = 0.0, 0
    while True:
        a = rng.integers(0, 3, n) if policy == "random" else lift_right(float(pz.ball.position[0]), n)
        _, r, term, trunc = pz_step(pz, a)
        ret += r
        length += 1
        if term or trunc:
            return ret, length


# --------------------------------------------------------------------------- JAX side
def trajectory_gaps(n: int, seeds, steps: int, action_seed: int = 0) -> np.ndarray:
    """(len(seeds), steps) gap |x_jax - x_pz| of the ball centre under identical random
    actions from identical starts; NaN after either episode ends."""
    env, params = make_pistonball({5: "v1", 8: "v2", 10: "v3"}.get(n, "v1"), rules="v6", n_pistons=n)
    step = jax.jit(env.step_env)
    key = jax.random.PRNGKey(0)
    gaps = np.full((len(seeds), steps), np.nan)
    for row, seed in enumerate(seeds):
        rng = np.random.default_rng(action_seed + seed)
        pz = pz_env(n, seed)
        s = env.state_from(**pz_snapshot(pz))
        for t in range(steps):
            a = rng.integers(0, 3, n)
            x_pz, _, term, trunc = pz_step(pz, a)
            _, s, _, done, _ = step(key, s, jnp.asarray(a, jnp.int32), params)
            gaps[row, t] = abs(float(s.ball_p[0]) - x_pz)
            if term or trunc or bool(done):
                break
    return gaps


def jax_episodes(version: str, policy: str, episodes: int, seed: int = 0, rules: str = "v6") -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of ``episodes`` JAX episodes (vmapped, no auto-reset)."""
    env, params = make_pistonball(version, rules=rules)
    n, horizon = env.n_pistons, params.max_steps_in_episode

    def one(key):
        k_reset, k_act = jax.random.split(key)
        _, s = env.reset_env(k_reset, params)

        def body(carry, k):
            s, done, ret, length = carry
            if policy == "random":
                a = jax.random.randint(k, (n,), 0, 3)
            else:
                a = lift_right(s.ball_p[0], n)
            _, s2, r, term, _ = env.step_env(k, s, a, params)
            trunc = s2.time >= horizon
            live = ~done
            s = jax.tree_util.tree_map(lambda new, old: jnp.where(live, new, old), s2, s)
            return (s, done | term | trunc, ret + jnp.where(live, r, 0.0), length + live), None

        init = (s, jnp.array(False), jnp.float32(0.0), jnp.int32(0))
        (_, _, ret, length), _ = jax.lax.scan(body, init, jax.random.split(k_act, horizon))
        return ret, length

    ret, length = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(seed), episodes))
    return np.asarray(ret), np.asarray(length)


def steps_per_second(version: str, num_envs: int, steps: int = 125) -> float:
    """JAX env steps/s: ``num_envs`` vmapped envs, random actions, gymnax auto-reset, one
    jitted scan of ``steps``; compile excluded, best of 3."""
    env, params = make_pistonball(version)
    n = env.n_pistons

    @jax.jit
    def run(key):
        _, s = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)

        def body(s, k):
            ka, ks = jax.random.split(k)
            a = jax.random.randint(ka, (num_envs, n), 0, 3)
            _, s, r, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(ks, num_envs), s, a, params)
            return s, r.sum()

        return jax.lax.scan(body, s, jax.random.split(key, steps))[1].sum()

    run(jax.random.PRNGKey(0)).block_until_ready()
    best = np.inf
    for i in range(3):
        t0 = time.perf_counter()
        run(jax.random.PRNGKey(i + 1)).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return num_envs * steps / best


def pz_steps_per_second(n: int, seconds: float = 5.0) -> float:
    """PettingZoo env steps/s (one cycle of n piston moves = one step), random actions."""
    rng = np.random.default_rng(0)
    pz, count, t0 = pz_env(n, 0), 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, term, trunc = pz_step(pz, rng.integers(0, 3, n))
        count += 1
        if term or trunc:
            pz.reset()
    return count / (time.perf_counter() - t0)


def _mean_se(x) -> str:
    x = np.asarray(x, float)
    return f"{x.mean():8.2f} +- {x.std(ddof=1) / np.sqrt(len(x)):5.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=200, help="episodes per env, policy and version")
    parser.add_argument("--traj-seeds", type=int, default=20, help="starts for the trajectory table")
    parser.add_argument("--steps", type=int, default=20, help="steps compared in the trajectory table")
    parser.add_argument("--speed", action="store_true", help="also measure env steps per second")
    args = parser.parse_args()

    print(f"## trajectories: |x_jax - x_pz| (px) of the ball centre, {args.traj_seeds} starts, identical random actions")
    print("| version | step 1 | step 5 | step 10 | step 20 | max over steps 1-10 (median over starts) | starts within 1 px for 10 steps |")
    print("|---|---|---|---|---|---|---|")
    for version, n in N_BY_VERSION.items():
        gaps = trajectory_gaps(n, range(args.traj_seeds), args.steps)
        col = lambda t: f"{np.nanmedian(gaps[:, t - 1]):.3g}" if t <= args.steps else "-"
        first10 = np.nanmax(gaps[:, :10], axis=1)
        print(f"| {version} | {col(1)} | {col(5)} | {col(10)} | {col(20)} | {np.median(first10):.3g} | "
              f"{int((first10 <= 1.0).sum())}/{len(first10)} |")

    print(f"\n## episode statistics, {args.episodes} episodes each (mean +- standard error)")
    print("| version | policy | return PettingZoo | return JAX | length PettingZoo | length JAX | wall s (pz / jax) |")
    print("|---|---|---|---|---|---|---|")
    for version, n in N_BY_VERSION.items():
        for policy in ("random", "lift_right"):
            t0 = time.perf_counter()
            rng = np.random.default_rng(12345)
            pz = np.array([pz_episode(n, 1000 + e, policy, rng) for e in range(args.episodes)])
            t_pz = time.perf_counter() - t0
            t0 = time.perf_counter()
            ret, length = jax_episodes(version, policy, args.episodes)
            t_jax = time.perf_counter() - t0
            print(f"| {version} | {policy} | {_mean_se(pz[:, 0])} | {_mean_se(ret)} | {_mean_se(pz[:, 1])} | "
                  f"{_mean_se(length)} | {t_pz:.0f} / {t_jax:.0f} |")

    if args.speed:
        print("\n## env steps per second (random actions; JAX: vmapped, jitted scan of 125 steps, compile excluded)")
        print("| version | PettingZoo (1 env) | JAX 64 envs | JAX 1024 envs |")
        print("|---|---|---|---|")
        for version, n in N_BY_VERSION.items():
            print(f"| {version} | {pz_steps_per_second(n):,.0f} | {steps_per_second(version, 64):,.0f} | "
                  f"{steps_per_second(version, 1024):,.0f} |")


if __name__ == "__main__":
    main()
