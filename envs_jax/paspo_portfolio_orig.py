"""``PASPO-portfolio-13``: the original's portfolio env (niklasdbs/paspo
``financial-markets-gym/.../financial_markets_env.py`` with its run config
``financial_markets_13.yaml``: cash + 12 stocks, ``terminal_time_step=12``, no fees).

Market: the reference 2-state Gaussian HMM of monthly stock returns
(``data/paspo_portfolio_hmm_parameters.json``; ``envs_jax.paspo_portfolio.load_hmm``). A month
with regime ``z`` has returns ``r ~ N(means[z], covars[z])`` (12,); cash returns 0, so the
asset returns are ``R = [0, r]`` (13,).

Episode (the original's rules):

- reset: regime ``z_0 ~ startprob`` and its returns ``r_0`` are drawn; ``r_0`` is *shown* in the
  observation but never rewarded. Portfolio: all cash, wealth 100;
- step ``t = 1, 2, ...``: ``z_t ~ transmat[z_{t-1}]``, ``r_t ~ N(means[z_t], covars[z_t])``; the
  action ``a`` (13 target weights, cash first) earns the simple one-month return

      reward = a . [0, r_t]

  (no trading fee: ``one_sided_spread_fee = 0``; no short positions on the simplex, so no
  short-selling fee). Then the weights drift, ``w = a (1 + R) / sum(a (1 + R))``, and
  ``wealth *= 1 + reward``. So the first reward comes from ``z_1``, drawn from ``z_0``'s
  transition row;
- 13 steps per episode: the original checks ``done = t >= 12`` *before* incrementing its step
  counter ``t`` (0 after reset), so the 13th step ends the episode (``terminated``).

Observation (float32, 27): ``[wealth (starts at 100), w (13), R of the last drawn month (13,
cash first)]``. The values are raw: the original trains with RLlib's running mean/std filter,
which ``PPOConfig(normalize_obs=True)`` provides (the ``paper`` preset of ``--algo paspo``
sets it for this env).
The engine's filter matches the original better than per-env statistics kept in the env
state would: RLlib keeps one ``MeanStdFilter`` per rollout worker, shared by the worker's 8
envs and copied to the evaluation worker; the engine's running mean/std is likewise one set of
statistics over all envs of the batch, used frozen in evaluation.

Evaluation on fixed trajectories (``envs_jax.contracts.FixedStarts``):
``reset_to(key, params, i)`` replays trajectory ``i mod 200`` of
``data/paspo_portfolio_eval_trajectories.npz``: 200 trajectories of 14 months (the reset
month and 13 steps) that *we* generated from the HMM with numpy seed
``EVAL_TRAJECTORY_SEED`` (:func:`generate_eval_trajectories`; the original's 200 pre-sampled
evaluation trajectories are not public). The original draws a random trajectory id per
evaluation episode (from a stream reseeded every 200 episodes) and samples the reset month's
returns from the HMM; here the trajectory is the index and its reset month is stored with it.
The engine's evaluation runs episodes ``0 .. eval_episodes - 1``, so every evaluation of a
run sees the same 20 trajectories.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from envs_jax.allocation import AllocationEnv, data_path, load_polytope
from envs_jax.paspo_portfolio import load_hmm

NUM_STOCKS = 12
NUM_ASSETS = NUM_STOCKS + 1
NUM_STEPS = 13  # terminal_time_step = 12, done checked before the increment
INITIAL_WEALTH = 100.0
EVAL_FILE = "paspo_portfolio_eval_trajectories.npz"
EVAL_TRAJECTORY_SEED = 20240512
NUM_EVAL_TRAJECTORIES = 200


@struct.dataclass
class PortfolioOrigState:
    z: jax.Array  # int32: regime of the last drawn month
    w: jax.Array  # (13,) weights after the last month's drift (cash first)
    wealth: jax.Array  # float32, starts at 100
    last_R: jax.Array  # (13,) returns of the last drawn month, cash (0) first
    trajectory: jax.Array  # int32: replayed evaluation trajectory, -1 = simulate the HMM
    time: int = 0


@struct.dataclass
class PortfolioOrigParams:
    A: jax.Array  # (5, 13) constraint rows (portfolio13), A a <= b
    b: jax.Array  # (5,)
    startprob: jax.Array  # (2,)
    transmat: jax.Array  # (2, 2)
    means: jax.Array  # (2, 12)
    chol: jax.Array  # (2, 12, 12) Cholesky factors of the covariances
    eval_returns: jax.Array  # (200, 14, 12) fixed evaluation trajectories (month 0 = reset)
    eval_regimes: jax.Array  # (200, 14) their regimes
    violation_penalty: float = 0.0  # reward -= penalty * info["violation"]; 0 = only measure
    max_steps_in_episode: int = NUM_STEPS


def generate_eval_trajectories(seed: int = EVAL_TRAJECTORY_SEED, num: int = NUM_EVAL_TRAJECTORIES,
                               months: int = NUM_STEPS + 1) -> tuple[np.ndarray, np.ndarray]:
    """``(returns (num, months, 12) float32, regimes (num, months) int8)`` drawn from the HMM
    with ``np.random.default_rng(seed)``: per trajectory ``z_0 ~ startprob``, then per month
    ``r_m ~ N(means[z_m], covars[z_m])`` (``rng.multivariate_normal``) and ``z_{m+1} ~
    transmat[z_m]``. The shipped file is ``generate_eval_trajectories()``."""
    hmm = load_hmm()
    rng = np.random.default_rng(seed)
    covars = 0.5 * (hmm["covars"] + np.swapaxes(hmm["covars"], 1, 2))
    R = np.zeros((num, months, NUM_STOCKS))
    Z = np.zeros((num, months), np.int8)
    for k in range(num):
        z = rng.choice(2, p=hmm["startprob"] / hmm["startprob"].sum())
        for m in range(months):
            Z[k, m] = z
            R[k, m] = rng.multivariate_normal(hmm["means"][z], covars[z])
            z = rng.choice(2, p=hmm["transmat"][z])
    return R.astype(np.float32), Z


def load_eval_trajectories() -> tuple[np.ndarray, np.ndarray]:
    """The shipped ``(returns (200, 14, 12), regimes (200, 14))``."""
    with data_path(EVAL_FILE).open("rb") as f:
        data = np.load(f)
        return np.asarray(data["returns"]), np.asarray(data["regimes"])


class PaspoPortfolioOrig(AllocationEnv):
    """The original's portfolio env (module docstring)."""

    def __init__(self, *, normalize_rows: bool = True, violation_penalty: float = 0.0):
        """``PASPO-portfolio-13``; it builds its own ``default_params``."""
        super().__init__()
        self.num_entities = NUM_ASSETS
        hmm = load_hmm()
        A, b = load_polytope("portfolio13", normalize=normalize_rows)
        self.exact_constraints = (np.asarray(A, np.float64), np.asarray(b, np.float64))
        covars = 0.5 * (hmm["covars"] + np.swapaxes(hmm["covars"], 1, 2))
        returns, regimes = load_eval_trajectories()
        f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        self._params = PortfolioOrigParams(
            A=f32(A), b=f32(b), startprob=f32(hmm["startprob"]), transmat=f32(hmm["transmat"]),
            means=f32(hmm["means"]), chol=f32(np.linalg.cholesky(covars)),
            eval_returns=f32(returns), eval_regimes=jnp.asarray(regimes, jnp.int32),
            violation_penalty=float(violation_penalty),
        )

    @property
    def name(self) -> str:
        return "PASPO-portfolio-13"

    @property
    def default_params(self) -> PortfolioOrigParams:
        return self._params

    @staticmethod
    def _month(key, z, params):
        """Returns ``r ~ N(means[z], covars[z])`` (12,)."""
        return params.means[z] + params.chol[z] @ jax.random.normal(key, (NUM_STOCKS,))

    def _transition(self, key, state, a, params):
        k_z, k_r = jax.random.split(key)
        z_sim = jax.random.categorical(k_z, jnp.log(params.transmat[state.z])).astype(jnp.int32)
        r_sim = self._month(k_r, z_sim, params)
        traj = jnp.maximum(state.trajectory, 0)
        month = jnp.minimum(state.time + 1, params.eval_returns.shape[1] - 1)
        replay = state.trajectory >= 0
        z = jnp.where(replay, params.eval_regimes[traj, month], z_sim)
        r = jnp.where(replay, params.eval_returns[traj, month], r_sim)
        R = jnp.concatenate([jnp.zeros((1,), jnp.float32), r.astype(jnp.float32)])
        reward = jnp.dot(a, R)
        grown = a * (1.0 + R)
        w = grown / jnp.sum(grown)
        new_state = state.replace(z=z, w=w, wealth=state.wealth * (1.0 + reward), last_R=R, time=state.time + 1)
        info = {"regime": z}
        return self.get_obs(new_state, params), new_state, reward, self.is_terminated(new_state, params), info

    def _start(self, z, r, trajectory):
        R = jnp.concatenate([jnp.zeros((1,), jnp.float32), r.astype(jnp.float32)])
        state = PortfolioOrigState(
            z=jnp.asarray(z, jnp.int32), w=jnp.zeros((NUM_ASSETS,), jnp.float32).at[0].set(1.0),
            wealth=jnp.asarray(INITIAL_WEALTH, jnp.float32), last_R=R,
            trajectory=jnp.asarray(trajectory, jnp.int32), time=0,
        )
        return self.get_obs(state), state

    def reset_env(self, key, params):
        k_z, k_r = jax.random.split(key)
        z = jax.random.categorical(k_z, jnp.log(params.startprob)).astype(jnp.int32)
        return self._start(z, self._month(k_r, z, params), -1)

    def reset_to(self, key, params, index):
        """Replay evaluation trajectory ``index mod 200`` (module docstring)."""
        del key
        params = self.default_params if params is None else params
        k = jnp.mod(jnp.asarray(index, jnp.int32), params.eval_returns.shape[0])
        return self._start(params.eval_regimes[k, 0], params.eval_returns[k, 0], k)

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        """``[wealth, w (13), last month's returns R (13)]``, float32 (27,)."""
        return jnp.concatenate([state.wealth[None], state.w, state.last_R]).astype(jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.asarray(state.time >= params.max_steps_in_episode)

    def observation_space(self, params=None) -> spaces.Box:
        n = 1 + 2 * NUM_ASSETS
        return spaces.Box(jnp.full(n, -jnp.inf), jnp.full(n, jnp.inf), (n,), jnp.float32)

    def state_space(self, params=None) -> spaces.Dict:
        inf = lambda shape: spaces.Box(-jnp.inf, jnp.inf, shape, jnp.float32)  # noqa: E731
        return spaces.Dict({
            "z": spaces.Discrete(2), "w": spaces.Box(0.0, 1.0, (NUM_ASSETS,), jnp.float32),
            "wealth": inf(()), "last_R": inf((NUM_ASSETS,)),
            "trajectory": spaces.Box(-1, NUM_EVAL_TRAJECTORIES - 1, (), jnp.int32),
            "time": spaces.Discrete(NUM_STEPS + 1),
        })


def make_portfolio_orig(**kwargs) -> tuple[PaspoPortfolioOrig, PortfolioOrigParams]:
    """``(env, env.default_params)`` for ``PASPO-portfolio-13``; keywords: :class:`PaspoPortfolioOrig`."""
    env = PaspoPortfolioOrig(**kwargs)
    return env, env.default_params


__all__ = [
    "EVAL_TRAJECTORY_SEED", "PaspoPortfolioOrig", "PortfolioOrigParams", "PortfolioOrigState",
    "generate_eval_trajectories", "load_eval_trajectories", "make_portfolio_orig",
]
