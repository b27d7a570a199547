"""A small base for allocation environments (Winkel et al., NeurIPS 2024: constrained allocation).

An allocation task hands out one unit of a resource to ``n`` entities at every step: the
action ``a`` lies on the simplex ``sum(a) = 1, 0 <= a_i <= 1`` and, in addition, in the
polytope ``A a <= b`` (the paper's constrained action set). The simplex is *not* among the rows of ``A``.

Every allocation env here subclasses :class:`AllocationEnv` and so exposes, besides the gymnax
API (the contracts ``LinearConstraints``, ``ValidityOracle`` and ``Costs`` of
``envs_jax.contracts``):

- ``env.num_entities``: ``n``, a Python int.
- ``env.constraints(state, params) -> (A, b)`` with shapes ``(m, n)`` and ``(m,)``, float32.
  Pure and jittable. Static envs return ``params.A, params.b`` (arrays in the params, so they
  can be vmapped); an env with state-dependent constraints overrides it.
- ``env.exact_constraints``: the float64 ``(A, b)`` the params' float32 rows were rounded
  from (``None`` when the constraints depend on the state).
- ``env.is_valid(state, action, params, tol=1e-6) -> bool``: ``A a <= b + tol`` and ``a`` on
  the simplex (entries in ``[-tol, 1 + tol]``, ``|sum(a) - 1| <= tol``).
- ``info["violation"]``: ``sum(max(A a - b, 0))`` for the executed action (float32), measured
  with the constraints of the state the action was taken in.
- ``info["cost"]``: the same summed violation, as the engine's cost channel (per-step cost
  for cost critics and safe-RL methods; ``ppo_jax.engine.COST_KEY``); ``env.num_costs = 1``.
- ``info["max_violation"]``: ``max(max(A a - b, 0))``, the worst single row. Float32 round-off
  at a point on the boundary is ~1e-7 per row, but the sum runs over every near-active row
  (up to ~2e-6 at a vertex of ``synth7``), so a 1e-6 threshold is safer on this one.
- ``info["simplex_error"]``: how far the *submitted* action was from the simplex,
  ``|sum(a) - 1| + sum(max(-a, 0)) + sum(max(a - 1, 0))``.

What happens to an action that breaks the constraints (documented choice, as the paper's
baselines): it is **executed as it is** and earns its reward; the violation is only measured
and reported in ``info["violation"]`` (an optional ``params.violation_penalty`` subtracts
``violation_penalty * violation`` from the reward; 0 by default). An action off the simplex
(a Gaussian baseline, say) is first mapped onto it by :func:`to_simplex` (clip at 0, divide by
the sum; the uniform allocation if nothing is left); an action already on the simplex (within
``SIMPLEX_TOL``) is executed unchanged, bit for bit.

Constraint rows are scaled to unit Euclidean norm by default (:func:`normalize_rows`): the
same polytope, but ``A a - b`` becomes a signed distance, so float32 round-off stays near
1e-7 (the reference ``synth7`` rows have ``|b|`` up to ~800, where float32 round-off alone is
~1e-4) and ``info["violation"]`` is a sum of distances past the facets. ``normalize_rows=False``
in the factories keeps the reference rows as they are stored.
"""

from __future__ import annotations

import importlib.resources
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces

SIMPLEX_TOL = 1e-5  # an action this close to the simplex is executed unchanged
DEFAULT_TOL = 1e-6  # default tolerance of ``is_valid``

# Polytopes stored in data/polytopes.npz: name -> (m, n) of the reference rows.
REFERENCE_POLYTOPE_SHAPES = {"synth7": (611, 7), "compute9": (5, 9), "portfolio13": (5, 13)}


# --------------------------------------------------------------------------- data loading
def data_path(name: str):
    """Path of a data file shipped in ``envs_jax/data``."""
    return importlib.resources.files("envs_jax") / "data" / name


def load_polytope(name: str, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Reference constraint set ``A a <= b`` (float64 numpy) from ``data/polytopes.npz``.

    ``name`` is one of ``synth7`` (611, 7), ``compute9`` (5, 9), ``portfolio13`` (5, 13).
    With ``normalize`` the rows are scaled to unit norm (same polytope, see module docstring).
    """
    if name not in REFERENCE_POLYTOPE_SHAPES:
        raise ValueError(f"unknown polytope {name!r}; stored: {sorted(REFERENCE_POLYTOPE_SHAPES)}")
    with data_path("polytopes.npz").open("rb") as f:
        data = np.load(f)
        A = np.asarray(data[f"{name}_A"], dtype=np.float64)
        b = np.asarray(data[f"{name}_b"], dtype=np.float64)
    if normalize:
        A, b = normalize_rows(A, b)
    return A, b


def normalize_rows(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale each row of ``A a <= b`` to unit Euclidean norm (the polytope is unchanged).

    All-zero rows are left as they are (they are either always or never satisfied).
    """
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(A, axis=1)
    scale = np.where(norms > 0, norms, 1.0)
    return A / scale[:, None], b / scale


# --------------------------------------------------------------------------- pure helpers
def violation(A: jax.Array, b: jax.Array, a: jax.Array) -> jax.Array:
    """Summed constraint violation ``sum_j max((A a)_j - b_j, 0)``; A (m, n), b (m,), a (n,)."""
    return jnp.sum(jnp.maximum(A @ a - b, 0.0))


def simplex_error(a: jax.Array) -> jax.Array:
    """``|sum(a) - 1| + sum(max(-a, 0)) + sum(max(a - 1, 0))``: 0 exactly on the simplex."""
    return (
        jnp.abs(jnp.sum(a) - 1.0)
        + jnp.sum(jnp.maximum(-a, 0.0))
        + jnp.sum(jnp.maximum(a - 1.0, 0.0))
    )


def on_simplex(a: jax.Array, tol: float = DEFAULT_TOL) -> jax.Array:
    """``a_i in [-tol, 1 + tol]`` and ``|sum(a) - 1| <= tol``."""
    return (
        jnp.all(a >= -tol)
        & jnp.all(a <= 1.0 + tol)
        & (jnp.abs(jnp.sum(a) - 1.0) <= tol)
    )


def to_simplex(a: jax.Array) -> jax.Array:
    """The action the env executes: ``a`` itself if it is on the simplex (within
    ``SIMPLEX_TOL``), else ``max(a, 0) / sum(max(a, 0))`` (uniform if that sum is 0)."""
    a = jnp.asarray(a, jnp.float32)
    clipped = jnp.maximum(a, 0.0)
    total = jnp.sum(clipped)
    uniform = jnp.full_like(a, 1.0 / a.shape[-1])
    mapped = jnp.where(total > 0.0, clipped / jnp.where(total > 0.0, total, 1.0), uniform)
    return jnp.where(on_simplex(a, SIMPLEX_TOL), a, mapped)


def is_valid_action(A: jax.Array, b: jax.Array, a: jax.Array, tol: float = DEFAULT_TOL) -> jax.Array:
    """``A a <= b + tol`` and ``a`` on the simplex within ``tol``."""
    return jnp.all(A @ a <= b + tol) & on_simplex(a, tol)


# --------------------------------------------------------------------------- base class
class AllocationEnv(environment.Environment):
    """gymnax ``Environment`` with an allocation action on the simplex and linear constraints.

    Subclasses build their own default params in ``__init__``, set ``self.num_entities`` (and
    ``self.exact_constraints`` for static rows), and implement ``reset_env``, ``get_obs``,
    ``is_terminated``, ``observation_space``, ``default_params`` and
    ``_transition(key, state, a, params) -> (obs, state, reward, terminated, info)``, which
    receives the already executed action ``a = to_simplex(action)``. ``step_env`` adds the
    violation to ``info`` and the optional violation penalty to the reward.
    """

    num_entities: int
    num_costs = 1  # info["cost"] is one scalar, the summed violation (envs_jax.contracts.Costs)
    # Float64 rows that ``params.A, params.b`` were rounded from (set by each env's __init__).
    # Polytope tools (``paspo_jax.policy.static_polytope``) use them when they still round to
    # the params' rows: rounding a degenerate polytope such as synth7 (611 rows through few
    # vertices) to float32 splits each vertex into many, which defeats vertex enumeration.
    exact_constraints: tuple[np.ndarray, np.ndarray] | None = None

    # ---- constraints
    def constraints(self, state: Any, params: Any) -> tuple[jax.Array, jax.Array]:
        """``(A (m, n), b (m,))`` of the polytope in ``state``; static: from ``params``."""
        del state
        return params.A, params.b

    def is_valid(self, state: Any, action: jax.Array, params: Any, tol: float = DEFAULT_TOL) -> jax.Array:
        """Whether ``action`` satisfies ``A a <= b + tol`` and lies on the simplex (``tol``)."""
        A, b = self.constraints(state, params)
        return is_valid_action(A, b, jnp.asarray(action, jnp.float32), tol)

    def violation(self, state: Any, action: jax.Array, params: Any) -> jax.Array:
        """``sum(max(A a - b, 0))`` for the action the env would execute."""
        A, b = self.constraints(state, params)
        return violation(A, b, to_simplex(action))

    # ---- gymnax
    def step_env(self, key, state, action, params):
        action = jnp.asarray(action, jnp.float32)
        a = to_simplex(action)
        A, b = self.constraints(state, params)
        excess = jnp.maximum(A @ a - b, 0.0)
        v = jnp.sum(excess)
        obs, new_state, reward, terminated, info = self._transition(key, state, a, params)
        reward = reward - params.violation_penalty * v
        info = {
            **info,
            "violation": v.astype(jnp.float32),
            "cost": v.astype(jnp.float32),  # the engine's cost channel (ppo_jax.engine.COST_KEY)
            "max_violation": jnp.max(excess).astype(jnp.float32),
            "simplex_error": simplex_error(action).astype(jnp.float32),
        }
        return obs, new_state, jnp.asarray(reward, jnp.float32), terminated, info

    def _transition(self, key, state, a, params):
        raise NotImplementedError

    @property
    def num_actions(self) -> int:
        return self.num_entities

    def action_space(self, params: Any = None) -> spaces.Box:
        """``Box(0, 1, (n,))``; valid actions additionally sum to 1 and satisfy ``A a <= b``."""
        return spaces.Box(0.0, 1.0, (self.num_entities,), jnp.float32)
