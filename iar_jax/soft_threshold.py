"""The soft threshold of argmax flows (Hoogeboom et al. 2021, Alg. 3; its log-det: IAR seed
App. A.3) as a ``distrax.Bijector``, so distrax's Chain / Block / Inverse / Transformed compose it.

For class ``a`` it maps a score row u (K,) onto the region {v : argmax v = a}:

    v_a = u_a,      v_j = u_a - softplus(u_a - u_j)    (j != a),
    log |det dv/du| = sum_{j != a} log sigmoid(u_a - u_j),

inverse ``u_j = v_a - log(expm1(v_a - v_j))``. Invariants: ``argmax v = a`` and
``v_a = u_a``; ``inverse`` needs ``v_j < v_a`` for ``j != a`` (float32 rounds ``v_j`` to ``v_a``
once ``u_j - u_a`` exceeds ~17, a tie the forward log-det still handles).

Example::

    v, log_det = SoftThreshold(a=2).forward_and_log_det(u)             # u (K,)
    v, log_det = distrax.Block(SoftThreshold(a), 1).forward_and_log_det(u)  # u (L, K), a (L,)
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp


def _softplus_inverse(y: jax.Array) -> jax.Array:
    """``log(expm1(y))`` for ``y > 0``, stable for small and large ``y``."""
    return y + jnp.log(-jnp.expm1(-y))


class SoftThreshold(distrax.Bijector):
    """The threshold for class ``a`` (int, shape ``B``) on rows ``u`` (..., K), ``B``
    broadcasting against ``u.shape[:-1]``; event_ndims 1, log-dets of shape (...)."""

    def __init__(self, a):
        super().__init__(event_ndims_in=1)
        self.a = jnp.asarray(a)

    def _class(self, x):
        a = jnp.broadcast_to(self.a, x.shape[:-1])[..., None]  # (..., 1)
        return a, jnp.arange(x.shape[-1]) == a, jnp.take_along_axis(x, a, axis=-1)

    def forward_and_log_det(self, u):
        _, is_a, u_a = self._class(u)
        d = u_a - u  # u_a - u_j, 0 at j = a
        v = jnp.where(is_a, u_a, u_a - jax.nn.softplus(d))
        return v, jnp.sum(jnp.where(is_a, 0.0, jax.nn.log_sigmoid(d)), axis=-1)

    def inverse_and_log_det(self, v):
        _, is_a, v_a = self._class(v)
        d = _softplus_inverse(jnp.where(is_a, 1.0, v_a - v))  # u_a - u_j off a (1.0 at a keeps the log finite)
        u = jnp.where(is_a, v_a, v_a - d)
        return u, -jnp.sum(jnp.where(is_a, 0.0, jax.nn.log_sigmoid(d)), axis=-1)

    def same_as(self, other) -> bool:
        return type(other) is SoftThreshold and other.a is self.a


def soft_threshold(u: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``u`` (K,), class ``a`` -> ``(v (K,), log|det dv/du| ())``."""
    return SoftThreshold(a).forward_and_log_det(u)


def soft_threshold_inverse(v: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``v`` (K,) with ``argmax v = a`` -> ``(u (K,), log|det du/dv| ())``."""
    return SoftThreshold(a).inverse_and_log_det(v)


def soft_threshold_rows(u: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One class per row: ``u`` (L, K), ``a`` (L,) -> ``(v (L, K), summed log-det ())``."""
    return distrax.Block(SoftThreshold(a), 1).forward_and_log_det(u)


def soft_threshold_rows_inverse(v: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Inverse of :func:`soft_threshold_rows`: ``v`` (L, K), ``a`` (L,) -> ``(u, summed log-det)``."""
    return distrax.Block(SoftThreshold(a), 1).inverse_and_log_det(v)
