"""The soft threshold of argmax flows (IAR seed, Appendix A.3; Hoogeboom et al. 2021).

The posterior q(u | a, s) must put all its mass on the region where ``argmax_k u_k = a``.
It samples an unconstrained ``u`` and pushes it through the bijection (onto that region)

    v_a = u_a,
    v_j = u_a - softplus(u_a - u_j)          for j != a,

so ``v_j < v_a`` for every ``j != a`` (``softplus > 0``) and ``argmax v = a`` always. Its
Jacobian has rows ``e_a`` (for ``v_a``) and ``sigmoid(u_a - u_j) e_j + (1 - sigmoid) e_a``
(for ``v_j``); deleting row and column ``a`` leaves a diagonal, so

    log |det dv/du| = sum_{j != a} log sigmoid(u_a - u_j).

The inverse: ``u_a = v_a``, ``u_j = v_a - softplus^{-1}(v_a - v_j)`` with
``softplus^{-1}(y) = log(expm1(y)) = y + log(1 - exp(-y))`` for ``y > 0``.

Precision: where ``u_j - u_a`` exceeds about 17 (float32; 37 in float64), ``softplus``
underflows below the spacing of ``u_a`` and ``v_j`` rounds to ``v_a`` (a tie; the log-det is
still right). The policy only evaluates densities at ``v``, so ties there are harmless;
``soft_threshold_inverse`` needs ``v_j < v_a`` strictly.

``soft_threshold(u, a)`` acts on one row ``u`` of shape (K,); ``soft_threshold_rows`` on an
(L, K) array with one class per row (the L action dimensions of IAR's flow).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def soft_threshold(u: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(v (K,), log_det ())``: the map above for one row ``u`` (K,) and class ``a`` (int).

    ``argmax(v) == a`` and ``log_det = sum_{j != a} log sigmoid(u_a - u_j)`` (App. A.3).
    """
    u = jnp.asarray(u)
    is_a = jnp.arange(u.shape[-1]) == a
    u_a = u[a]
    d = u_a - u  # (K,) u_a - u_j, 0 at j = a
    v = jnp.where(is_a, u_a, u_a - jax.nn.softplus(d))
    log_det = jnp.sum(jnp.where(is_a, 0.0, jax.nn.log_sigmoid(d)))
    return v, log_det


def _softplus_inverse(y: jax.Array) -> jax.Array:
    """``log(expm1(y))`` for ``y > 0``, stable for small and large ``y``."""
    return y + jnp.log(-jnp.expm1(-y))


def soft_threshold_inverse(v: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(u (K,), log_det ())`` with ``soft_threshold(u, a)[0] == v``; needs ``argmax v == a``
    (strictly: ``v_j < v_a`` for ``j != a``). ``log_det = log |det du/dv|`` = minus the
    forward one."""
    v = jnp.asarray(v)
    is_a = jnp.arange(v.shape[-1]) == a
    v_a = v[a]
    y = jnp.where(is_a, 1.0, v_a - v)  # > 0 off a; a dummy 1.0 at a keeps the log finite
    d = _softplus_inverse(y)  # = u_a - u_j off a
    u = jnp.where(is_a, v_a, v_a - d)
    log_det = -jnp.sum(jnp.where(is_a, 0.0, jax.nn.log_sigmoid(d)))
    return u, log_det


def soft_threshold_rows(u: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Row-wise threshold: ``u`` (L, K), ``a`` (L,) int -> ``(v (L, K), summed log_det ())``."""
    v, log_det = jax.vmap(soft_threshold)(u, a)
    return v, log_det.sum()


def soft_threshold_rows_inverse(v: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Inverse of ``soft_threshold_rows``: ``v`` (L, K), ``a`` (L,) -> ``(u, summed log_det)``."""
    u, log_det = jax.vmap(soft_threshold_inverse)(v, a)
    return u, log_det.sum()
