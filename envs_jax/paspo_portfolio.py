"""``PASPO-portfolio-13-v0``: constrained portfolio optimisation (our model after Winkel et al. 2024).

The paper's ``PASPO-portfolio-13`` is the original's env (``envs_jax.paspo_portfolio_orig``:
no fee, 13 steps, first reward from the month after the reset month); this is the variant the
project used before (its results in ``benchmarks/RESULTS_paspo.md`` refer to it).

Entities: cash (index 0) and 12 NASDAQ stocks (MSFT, BIDU, ADBE, PCAR, NVDA, SBUX, INTU, ADP,
AMZN, EBAY, AMGN, QCOM; indices 1..12, the order of the data files).

Market: monthly stock returns from the reference 2-state Gaussian hidden Markov model
(``data/paspo_portfolio_hmm_parameters.json``: ``startprob`` (2,), ``transmat`` (2, 2),
``means`` (2, 12), ``covars`` (2, 12, 12), fitted to 2011-2021 monthly returns). The regime
``z_0 ~ startprob`` at reset; in month ``t`` the returns are ``r_t ~ N(means[z_t],
covars[z_t])`` and then ``z_{t+1} ~ transmat[z_t]`` (:func:`hmm_step`). Cash earns
``cash_return`` (0 by default).

Step (one month): the action ``a`` is the target allocation for the month. Starting from the
current weights ``w`` (all cash at reset), rebalancing costs the fee

    fee = fee_rate * sum_{i >= 1} |a_i - w_i|   (proportional cost on the traded stock value;
                                                  moving cash itself is free),

with ``fee_rate = 0.001`` (10 basis points; our choice, the reference gives no number). Then
the month's returns ``R = [cash_return, r_t]`` arrive and the reward is the portfolio's return
minus the fee (both as fractions of the portfolio value at the start of the month):

    reward = a . R - fee.

The weights drift with the prices, ``w' = a * (1 + R) / (1 + a . R)``, and are charged
against the next month's target. Episodes are 12 months; the 12th step ends the episode
(``terminated`` and ``truncated`` both True).

Constraints: the reference ``portfolio13`` rows (ESG / KPI limits on the stock weights built
from ``data/paspo_portfolio_meta.json``: row 0 caps a group of stocks (BIDU, SBUX, INTU, EBAY)
at 22% together; rows 1-4 put upper limits on the allocation-weighted cost of capital,
dividend yield, energy use and CO2 intensity of the stocks held; cash has 0 in every row).

Observation (float32, 26): current weights ``w`` (13), last month's stock returns (12; zeros at
reset) and the fraction of the episode left (1). The regime is hidden.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from envs_jax.allocation import AllocationEnv, data_path, load_polytope

NUM_STOCKS = 12
NUM_ASSETS = NUM_STOCKS + 1  # cash + 12 stocks
NUM_REGIMES = 2
TICKERS = ("MSFT", "BIDU", "ADBE", "PCAR", "NVDA", "SBUX", "INTU", "ADP", "AMZN", "EBAY", "AMGN", "QCOM")


@struct.dataclass
class PortfolioState:
    z: jax.Array  # int32: hidden market regime of the coming month
    w: jax.Array  # (13,) current portfolio weights (cash first), drifted by last month's returns
    last_r: jax.Array  # (12,) last month's stock returns
    time: int = 0


@struct.dataclass
class PortfolioParams:
    A: jax.Array  # (5, 13) constraint rows (portfolio13), A a <= b
    b: jax.Array  # (5,)
    startprob: jax.Array  # (2,) initial regime distribution
    transmat: jax.Array  # (2, 2) regime transition matrix, rows sum to 1
    means: jax.Array  # (2, 12) mean monthly stock returns per regime
    chol: jax.Array  # (2, 12, 12) Cholesky factors of the per-regime return covariances
    fee_rate: float = 0.001  # proportional trading fee on traded stock value (our choice)
    cash_return: float = 0.0  # monthly return of cash
    violation_penalty: float = 0.0  # reward -= penalty * info["violation"]; 0 = only measure
    max_steps_in_episode: int = 12  # 12 monthly steps (reference)


def load_hmm() -> dict[str, np.ndarray]:
    """The reference HMM (float64 numpy): startprob, transmat, means, covars."""
    with data_path("paspo_portfolio_hmm_parameters.json").open("r") as f:
        raw = json.load(f)
    return {
        "startprob": np.asarray(raw["model.startprob_"], np.float64),
        "transmat": np.asarray(raw["model.transmat_"], np.float64),
        "means": np.asarray(raw["model.means_"], np.float64),
        "covars": np.asarray(raw["model.covars_"], np.float64),
    }


def hmm_step(key: jax.Array, z: jax.Array, params: PortfolioParams) -> tuple[jax.Array, jax.Array]:
    """One month of the HMM: ``r ~ N(means[z], covars[z])`` (12,), then ``z' ~ transmat[z]``."""
    k_r, k_z = jax.random.split(key)
    eps = jax.random.normal(k_r, (NUM_STOCKS,))
    r = params.means[z] + params.chol[z] @ eps
    z_next = jax.random.categorical(k_z, jnp.log(params.transmat[z])).astype(jnp.int32)
    return r, z_next


def trading_fee(w: jax.Array, a: jax.Array, fee_rate) -> jax.Array:
    """``fee_rate * sum_{i >= 1} |a_i - w_i|`` (cash, index 0, trades for free)."""
    return fee_rate * jnp.sum(jnp.abs(a[1:] - w[1:]))


def portfolio_step(w, a, r, params: PortfolioParams):
    """Reward and drifted weights for target ``a`` from weights ``w`` under stock returns ``r``.

    Returns ``(reward, gross_return, fee, w_next)`` with ``gross_return = a . [cash_return, r]``.
    """
    R = jnp.concatenate([jnp.asarray([params.cash_return], jnp.float32), r.astype(jnp.float32)])
    gross = jnp.dot(a, R)
    fee = trading_fee(w, a, params.fee_rate)
    grown = a * (1.0 + R)
    w_next = grown / jnp.maximum(jnp.sum(grown), 1e-8)
    return gross - fee, gross, fee, w_next


class PaspoPortfolio(AllocationEnv):
    """Portfolio optimisation on the reference HMM market (see module docstring)."""

    def __init__(
        self,
        *,
        normalize_rows: bool = True,
        fee_rate: float = 0.001,
        cash_return: float = 0.0,
        max_steps_in_episode: int = 12,
        violation_penalty: float = 0.0,
        name_suffix: str = "-v0",
    ):
        """``PASPO-portfolio-13-v0`` from the reference data; it builds its own ``default_params``."""
        super().__init__()
        self.name_suffix = str(name_suffix)
        if fee_rate < 0:
            raise ValueError(f"fee_rate must be non-negative, got {fee_rate}")
        if max_steps_in_episode < 1:
            raise ValueError(f"max_steps_in_episode must be positive, got {max_steps_in_episode}")
        self.num_entities = NUM_ASSETS
        hmm = load_hmm()
        A, b = load_polytope("portfolio13", normalize=normalize_rows)
        self.exact_constraints = (np.asarray(A, np.float64), np.asarray(b, np.float64))
        # Symmetrise before the Cholesky factorisation (the stored matrices are symmetric to ~1e-18).
        covars = 0.5 * (hmm["covars"] + np.swapaxes(hmm["covars"], 1, 2))
        f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        self._params = PortfolioParams(
            A=f32(A),
            b=f32(b),
            startprob=f32(hmm["startprob"]),
            transmat=f32(hmm["transmat"]),
            means=f32(hmm["means"]),
            chol=f32(np.linalg.cholesky(covars)),
            fee_rate=float(fee_rate),
            cash_return=float(cash_return),
            violation_penalty=float(violation_penalty),
            max_steps_in_episode=int(max_steps_in_episode),
        )

    @property
    def name(self) -> str:
        return f"PASPO-portfolio-13{self.name_suffix}"

    @property
    def default_params(self) -> PortfolioParams:
        """The params this env was built with."""
        return self._params

    def _transition(self, key, state, a, params):
        r, z_next = hmm_step(key, state.z, params)
        reward, gross, fee, w_next = portfolio_step(state.w, a, r, params)
        new_state = PortfolioState(z=z_next, w=w_next, last_r=r, time=state.time + 1)
        info = {"gross_return": gross, "fee": fee, "regime": state.z}
        return self.get_obs(new_state, params), new_state, reward, self.is_terminated(new_state, params), info

    def reset_env(self, key, params):
        z = jax.random.categorical(key, jnp.log(params.startprob)).astype(jnp.int32)
        w = jnp.zeros(NUM_ASSETS, jnp.float32).at[0].set(1.0)
        state = PortfolioState(z=z, w=w, last_r=jnp.zeros(NUM_STOCKS, jnp.float32), time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        """``[w (13), last returns (12), steps left / max steps (1)]``, float32 (26,)."""
        params = self.default_params if params is None else params
        left = 1.0 - state.time / params.max_steps_in_episode
        return jnp.concatenate(
            [state.w, state.last_r, jnp.asarray(left, jnp.float32)[None]]
        ).astype(jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.asarray(state.time >= params.max_steps_in_episode)

    def observation_space(self, params=None) -> spaces.Box:
        low = jnp.concatenate([jnp.zeros(NUM_ASSETS), jnp.full(NUM_STOCKS, -jnp.inf), jnp.zeros(1)])
        high = jnp.concatenate([jnp.ones(NUM_ASSETS), jnp.full(NUM_STOCKS, jnp.inf), jnp.ones(1)])
        return spaces.Box(low, high, (2 * NUM_STOCKS + 2,), jnp.float32)

    def state_space(self, params=None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "z": spaces.Discrete(NUM_REGIMES),
                "w": spaces.Box(jnp.zeros(NUM_ASSETS), jnp.ones(NUM_ASSETS), (NUM_ASSETS,), jnp.float32),
                "last_r": spaces.Box(
                    jnp.full(NUM_STOCKS, -jnp.inf), jnp.full(NUM_STOCKS, jnp.inf), (NUM_STOCKS,), jnp.float32
                ),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def make_portfolio(**kwargs) -> tuple[PaspoPortfolio, PortfolioParams]:
    """``(env, env.default_params)`` for ``PASPO-portfolio-13-v0``; keywords: :class:`PaspoPortfolio`."""
    env = PaspoPortfolio(**kwargs)
    return env, env.default_params


__all__ = [
    "PaspoPortfolio",
    "PortfolioParams",
    "PortfolioState",
    "TICKERS",
    "hmm_step",
    "load_hmm",
    "make_portfolio",
    "portfolio_step",
    "trading_fee",
]
