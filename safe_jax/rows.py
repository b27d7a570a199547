"""Per-row costs for allocation envs: one cost per constraint row instead of the summed violation.

PASPO's allocation envs (``envs_jax.allocation``) report ``info["cost"] = sum_j max(A_j a - b_j, 0)``
(one entry, the summed violation) on their rows ``A, b``, which are scaled to unit norm by
default. PASPO's original safe baselines act per row, on the *stored* (raw) rows: the
Lagrangian has one multiplier per row, its penalty is ``sum_j lambda_j max(A_j a - b_j, 0)``.

:class:`RowCostEnv` wraps such an env for the safe-RL learner only (the env registry and the
env's own ``info`` keys are unchanged): its ``step`` returns the inner env's ``info`` with

* ``info["cost"]`` replaced by the (m,) per-row violations ``s_j * max(A_j a - b_j, 0)`` of the
  executed action ``a = to_simplex(action)`` under the constraints of the state the action was
  taken in (``s = 1``: the env's rows; ``s`` = :func:`raw_row_scale`: the stored raw rows);
* ``info["summed_cost"]``: the inner env's ``info["cost"]`` (the summed violation, env rows).

``info["violation"]`` and ``info["max_violation"]`` (the engine's violation rate) stay the
inner env's. Everything else (``reset``, spaces, ``constraints``, ``num_entities``, ...) is
delegated to the inner env.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

COST_ROWS = ("sum", "rows", "raw")  # SafeConfig.cost_rows


def raw_row_scale(env, env_params) -> np.ndarray | None:
    """(m,) factors ``s`` with ``raw rows = s * env rows`` (``A_raw = s[:, None] * A``,
    ``b_raw = s * b``) when the env's static rows are one of the stored reference polytopes
    (``envs_jax/data/polytopes.npz``: synth7, compute9, portfolio13), normalised or not; None
    when the env's rows are its own (state-dependent rows, random polytopes)."""
    from envs_jax.allocation import REFERENCE_POLYTOPE_SHAPES, load_polytope
    from paspo_jax.policy import has_static_constraints

    if not has_static_constraints(env):
        return None
    A, b = (np.asarray(x, np.float64) for x in env.constraints(None, env_params))
    for name, shape in REFERENCE_POLYTOPE_SHAPES.items():
        if tuple(A.shape) != shape:
            continue
        A_raw, b_raw = load_polytope(name, normalize=False)
        norms = np.linalg.norm(A_raw, axis=1)
        scale = np.where(norms > 0, norms, 1.0)
        if np.allclose(A, A_raw / scale[:, None], atol=1e-5) and np.allclose(b, b_raw / scale, rtol=1e-5, atol=1e-5):
            return scale
        if np.allclose(A, A_raw, rtol=1e-5, atol=1e-5) and np.allclose(b, b_raw, rtol=1e-5, atol=1e-5):
            return np.ones_like(scale)
    return None


def row_violations(A, b, a, scale=None):
    """(m,) ``scale_j * max(A_j a - b_j, 0)``."""
    excess = jnp.maximum(A @ a - b, 0.0)
    return excess if scale is None else excess * scale


class RowCostEnv:
    """An allocation env whose ``info["cost"]`` is the (m,) per-row violation (module doc).

    ``rows="rows"``: the env's rows; ``rows="raw"``: the stored raw rows where
    :func:`raw_row_scale` finds them, else the env's rows (``self.raw`` tells which)."""

    def __init__(self, env, env_params, rows: str = "raw"):
        if rows not in ("rows", "raw"):
            raise ValueError(f"RowCostEnv rows must be 'rows' or 'raw', got {rows!r}")
        n = getattr(env, "num_entities", None)
        if not isinstance(n, int) or not callable(getattr(env, "constraints", None)):
            raise ValueError(f"per-row costs need an allocation env (num_entities, constraints); got {type(env).__name__}")
        self.inner = env
        scale = raw_row_scale(env, env_params) if rows == "raw" else None
        self.raw = scale is not None
        self.scale = None if scale is None else jnp.asarray(scale, jnp.float32)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def step(self, key, state, action, params=None):
        from envs_jax.allocation import to_simplex

        params = self.inner.default_params if params is None else params
        A, b = self.inner.constraints(state, params)
        a = to_simplex(action)
        out = self.inner.step(key, state, action, params)
        info = dict(out[-1])
        info["summed_cost"] = info["cost"]
        info["cost"] = row_violations(A, b, a, self.scale).astype(jnp.float32)
        return (*out[:-1], info)
