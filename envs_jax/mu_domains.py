"""Domains of the marginal-utility paper (Ahmad, Lelis, Bowling, NeurIPS 2020).

Two one-step decision problems, each a gymnax ``Environment`` with a one-step episode
(``reset`` draws a new state, ``step`` scores one action and ends the episode). Besides the
gymnax API each environment exposes the pure functions the candidate-generator code needs,
all jittable and vmappable over states (and over candidate actions):

* ``sample_state(key, params) -> state``
* ``get_obs(state, params) -> obs [H, W, 1]`` (an image: the generator's input)
* ``expected_reward(state, action, params) -> Q(s, a)`` (the action value, noise free)
* ``noisy_reward(key, state, action, params) -> Q(s, a) + N(0, noise_std^2)`` (what a
  search such as UCB observes)
* ``optimal_value(state, params) -> max_a Q(s, a)`` (for regret)
* ``action_spec``: ``("discrete", (n_factors, n_categories))`` or ``("continuous", (dim,))``

(the contract ``envs_jax.contracts.CandidateDomain``).

Location game (``make_location``; orig ``zfahmad/competition``): a ``size x size`` map of cell
utilities drawn i.i.d. from InverseGamma(3, 1) and normalised to sum to one; the opponent
holds the ``n_opponent`` = 2 cells of highest utility; the player places ``n_facilities`` = 3
facilities (an action is the flat cell index of each, ``int32 [3]``). Each cell is served by
its nearest facility in Manhattan distance; a cell at equal distance from several facilities
is split equally among them (per facility, as in the original code, so two player facilities
tied with one opponent facility win 2/3 of the cell). The reward is the player's share of the
total utility. It is deterministic (``noise_std`` = 0 by default); a search over candidates
can be given noisy samples with ``make_location(noise_std=...)``.

2-D peaks (``make_peaks2d``; the precursor continuous domain): ``a in [0, 1]^2``; a state is
16 Gaussian peaks with centres ``c_k ~ U[0,1]^2`` and heights ``h_k ~ U(0, 1)``:
``Q(s, a) = sum_k h_k exp(-|a - c_k|^2 / (2 w^2))`` with width ``w`` = 0.05, and a reward
sample adds ``N(0, noise_std^2)`` noise (``noise_std`` = 0.1). Actions are clipped to
``[0, 1]^2``. The observation is ``Q(s, .)`` rendered on a 16 x 16 grid of cell centres.
The peak width, heights, noise and grid are our choices (the reference names only "16
Gaussian peaks with random heights, noisy reward"); all are parameters.
"""

from __future__ import annotations

import itertools
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from envs_jax.spaces import MultiDiscrete


# --------------------------------------------------------------------------------------
# Location game
# --------------------------------------------------------------------------------------


class _OneStepDomain(environment.Environment):
    """Shared gymnax plumbing of the MU domains: one noisy reward per step for the action
    (cast to ``action_dtype``), state from ``sample_state``; subclasses define the rest."""

    action_dtype = jnp.float32

    def step_env(self, key, state, action, params):
        reward = self.noisy_reward(key, state, jnp.asarray(action, self.action_dtype), params)
        state = state.replace(time=state.time + 1)
        done = self.is_terminated(state, params)
        return (
            jax.lax.stop_gradient(self.get_obs(state, params)),
            jax.lax.stop_gradient(state),
            reward,
            done,
            {},
        )

    def reset_env(self, key, params):
        state = self.sample_state(key, params)
        return self.get_obs(state, params), state


@struct.dataclass
class LocationState:
    utilities: jax.Array  # [size, size] float32, sums to 1
    opponent: jax.Array  # [n_opponent] int32 flat cell indices of the opponent's facilities
    time: int = 0


@struct.dataclass
class LocationParams:
    alpha: float = 3.0  # InverseGamma shape of the cell utilities (orig utils.py)
    beta: float = 1.0  # InverseGamma scale
    noise_std: float = 0.0  # std of the Gaussian noise added by noisy_reward / step
    max_steps_in_episode: int = 1  # one placement per episode


def location_shares(utilities: jax.Array, player: jax.Array, opponent: jax.Array) -> jax.Array:
    """Player's utility share for one placement (the location game's reward).

    ``utilities [H, W]``, ``player [F]`` and ``opponent [O]`` flat cell indices. Each cell
    goes to its nearest facility (Manhattan distance); ties are split equally among the tied
    facilities. Returns ``sum_c u_c * (#player facilities among the nearest of c) /
    (#facilities among the nearest of c)``.
    """
    H, W = utilities.shape
    facilities = jnp.concatenate([player, opponent]).astype(jnp.int32)  # [F + O]
    fr, fc = facilities // W, facilities % W
    cells = jnp.arange(H * W)
    cr, cc = cells // W, cells % W
    dist = jnp.abs(fr[:, None] - cr[None, :]) + jnp.abs(fc[:, None] - cc[None, :])  # [F+O, HW]
    nearest = (dist == dist.min(axis=0, keepdims=True)).astype(utilities.dtype)
    share = nearest / nearest.sum(axis=0, keepdims=True)
    player_share = share[: player.shape[0]].sum(axis=0)  # [HW]
    return jnp.sum(utilities.reshape(-1) * player_share)


def inverse_gamma(key: jax.Array, alpha, beta, shape) -> jax.Array:
    """InverseGamma(alpha, beta) samples: ``beta / G`` with ``G ~ Gamma(alpha, 1)``."""
    return beta / jax.random.gamma(key, alpha, shape)


def _placements(n_cells: int, n_facilities: int) -> np.ndarray:
    """All multisets of ``n_facilities`` cells (order of facilities does not matter)."""
    combos = itertools.combinations_with_replacement(range(n_cells), n_facilities)
    return np.asarray(list(combos), dtype=np.int32)


class LocationGame(_OneStepDomain):
    """One-step competitive facility location (see the module docstring)."""

    action_dtype = jnp.int32

    def __init__(self, size: int = 10, n_facilities: int = 3, n_opponent: int = 2):
        super().__init__()
        if size < 2 or n_facilities < 1 or n_opponent < 0 or n_opponent > size * size:
            raise ValueError(
                f"location game needs size >= 2, n_facilities >= 1, 0 <= n_opponent <= size^2; "
                f"got size={size}, n_facilities={n_facilities}, n_opponent={n_opponent}"
            )
        self.size = size
        self.n_facilities = n_facilities
        self.n_opponent = n_opponent
        self._all_placements: np.ndarray | None = None

    # --- the pure functions the generator code uses ---------------------------------
    @property
    def action_spec(self) -> tuple[str, tuple[int, int]]:
        return ("discrete", (self.n_facilities, self.size * self.size))

    def sample_state(self, key: jax.Array, params: LocationParams) -> LocationState:
        """Utilities ~ InverseGamma(alpha, beta) i.i.d., normalised; opponent = top cells."""
        u = inverse_gamma(key, params.alpha, params.beta, (self.size, self.size))
        u = u / u.sum()
        _, top = jax.lax.top_k(u.reshape(-1), self.n_opponent)
        return LocationState(utilities=u, opponent=top.astype(jnp.int32), time=0)

    def expected_reward(self, state: LocationState, action: jax.Array, params: LocationParams) -> jax.Array:
        """Q(s, a): the player's utility share for placement ``action`` (``int [F]``)."""
        del params
        return location_shares(state.utilities, action, state.opponent)

    def noisy_reward(self, key: jax.Array, state: LocationState, action: jax.Array, params: LocationParams) -> jax.Array:
        return self.expected_reward(state, action, params) + params.noise_std * jax.random.normal(key)

    def optimal_value(self, state: LocationState, params: LocationParams, chunk: int = 8192) -> jax.Array:
        """Best response by exhaustive enumeration of all placements (171,700 on 10x10)."""
        best, _ = self.best_response(state, params, chunk)
        return best

    def best_response(self, state: LocationState, params: LocationParams, chunk: int = 8192):
        """``(value, placement [F])`` maximising the share, by enumerating every multiset."""
        del params
        if self._all_placements is None:
            self._all_placements = _placements(self.size * self.size, self.n_facilities)
        P = self._all_placements
        n_chunks = -(-P.shape[0] // chunk)
        pad = n_chunks * chunk - P.shape[0]
        P = jnp.asarray(np.concatenate([P, np.repeat(P[:1], pad, axis=0)]).reshape(n_chunks, chunk, -1))
        score = jax.vmap(location_shares, in_axes=(None, 0, None))

        def body(carry, placements):
            v = score(state.utilities, placements, state.opponent)
            i = jnp.argmax(v)
            better = v[i] > carry[0]
            return (jnp.where(better, v[i], carry[0]), jnp.where(better, placements[i], carry[1])), None

        init = (jnp.asarray(-1.0, state.utilities.dtype), P[0, 0])
        (value, placement), _ = jax.lax.scan(body, init, P)
        return value, placement

    # --- gymnax API -----------------------------------------------------------------
    @property
    def default_params(self) -> LocationParams:
        return LocationParams()

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        return state.utilities[..., None].astype(jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.asarray(state.time >= 1)

    @property
    def name(self) -> str:
        return "MU-location"

    @property
    def num_actions(self) -> int:
        return (self.size * self.size) ** self.n_facilities

    def action_space(self, params=None) -> MultiDiscrete:
        """``n_facilities`` flat cell indices, each in ``[0, size**2)``: a ``MultiDiscrete``
        (a gymnax int ``Box`` would never sample the last cell; see ``envs_jax.spaces``)."""
        return MultiDiscrete([self.size * self.size] * self.n_facilities)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (self.size, self.size, 1), jnp.float32)

    def state_space(self, params=None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "utilities": spaces.Box(0.0, 1.0, (self.size, self.size), jnp.float32),
                "opponent": MultiDiscrete([self.size * self.size] * self.n_opponent),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def make_location(size: int = 10, n_facilities: int = 3, n_opponent: int = 2, **param_overrides):
    """Factory ``(env, env_params)`` for ``MU-location``; keywords override ``LocationParams``."""
    env = LocationGame(size, n_facilities, n_opponent)
    return env, _override(env.default_params, param_overrides)


# --------------------------------------------------------------------------------------
# 2-D Gaussian peaks
# --------------------------------------------------------------------------------------


@struct.dataclass
class PeaksState:
    centres: jax.Array  # [n_peaks, 2] in [0, 1]^2
    heights: jax.Array  # [n_peaks]
    time: int = 0


@struct.dataclass
class PeaksParams:
    width: float = 0.05  # std w of each Gaussian peak
    height_low: float = 0.0  # heights ~ U(height_low, height_high)
    height_high: float = 1.0
    noise_std: float = 0.1  # std of the Gaussian reward noise
    max_steps_in_episode: int = 1  # one action per episode


def peaks_value(centres: jax.Array, heights: jax.Array, width, a: jax.Array) -> jax.Array:
    """``Q(s, a) = sum_k h_k exp(-|clip(a) - c_k|^2 / (2 w^2))`` for ``a [2]``."""
    a = jnp.clip(a, 0.0, 1.0)
    d2 = jnp.sum((a[None, :] - centres) ** 2, axis=-1)
    return jnp.sum(heights * jnp.exp(-d2 / (2.0 * width**2)))


class Peaks2D(_OneStepDomain):
    """One-step continuous bandit over ``[0, 1]^2`` (see the module docstring)."""

    def __init__(self, n_peaks: int = 16, grid: int = 16, search_grid: int = 201):
        super().__init__()
        if n_peaks < 1 or grid < 2 or search_grid < 2:
            raise ValueError(f"peaks2d needs n_peaks >= 1, grid >= 2, search_grid >= 2; got {n_peaks}, {grid}, {search_grid}")
        self.n_peaks = n_peaks
        self.grid = grid
        self.search_grid = search_grid

    @property
    def action_spec(self) -> tuple[str, tuple[int]]:
        return ("continuous", (2,))

    def sample_state(self, key: jax.Array, params: PeaksParams) -> PeaksState:
        kc, kh = jax.random.split(key)
        centres = jax.random.uniform(kc, (self.n_peaks, 2))
        heights = jax.random.uniform(kh, (self.n_peaks,), minval=params.height_low, maxval=params.height_high)
        return PeaksState(centres=centres, heights=heights, time=0)

    def expected_reward(self, state: PeaksState, action: jax.Array, params: PeaksParams) -> jax.Array:
        return peaks_value(state.centres, state.heights, params.width, action)

    def noisy_reward(self, key, state, action, params) -> jax.Array:
        return self.expected_reward(state, action, params) + params.noise_std * jax.random.normal(key)

    def optimal_value(self, state: PeaksState, params: PeaksParams) -> jax.Array:
        """max_a Q(s, a): a ``search_grid``^2 grid, then a 21 x 21 grid refinement around its best."""
        v = jax.vmap(lambda a: self.expected_reward(state, a, params))
        g = jnp.linspace(0.0, 1.0, self.search_grid)
        pts = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        vals = v(pts)
        best = pts[jnp.argmax(vals)]
        step = 1.0 / (self.search_grid - 1)
        fine = jnp.linspace(-step, step, 21)
        local = best + jnp.stack(jnp.meshgrid(fine, fine, indexing="ij"), -1).reshape(-1, 2)
        return jnp.maximum(vals.max(), v(jnp.clip(local, 0.0, 1.0)).max())

    # --- gymnax API -----------------------------------------------------------------
    @property
    def default_params(self) -> PeaksParams:
        return PeaksParams()

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        params = self.default_params if params is None else params
        g = (jnp.arange(self.grid) + 0.5) / self.grid
        pts = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        vals = jax.vmap(lambda a: peaks_value(state.centres, state.heights, params.width, a))(pts)
        return vals.reshape(self.grid, self.grid, 1).astype(jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.asarray(state.time >= 1)

    @property
    def name(self) -> str:
        return "MU-peaks2d"

    @property
    def num_actions(self) -> int:
        return 2  # action dimension (continuous)

    def action_space(self, params=None):
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(0.0, jnp.inf, (self.grid, self.grid, 1), jnp.float32)

    def state_space(self, params=None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "centres": spaces.Box(0.0, 1.0, (self.n_peaks, 2), jnp.float32),
                "heights": spaces.Box(params.height_low, params.height_high, (self.n_peaks,), jnp.float32),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def make_peaks2d(n_peaks: int = 16, grid: int = 16, **param_overrides):
    """Factory ``(env, env_params)`` for ``MU-peaks2d``; keywords override ``PeaksParams``."""
    env = Peaks2D(n_peaks, grid)
    return env, _override(env.default_params, param_overrides)


def _override(params, overrides: dict):
    fields = set(params.__dataclass_fields__)
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {type(params).__name__}; known: {sorted(fields)}")
    return params.replace(**overrides)
