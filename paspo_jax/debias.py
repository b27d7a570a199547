"""De-biased initialisation of PASPO's Beta heads (Winkel et al., NeurIPS 2024, Sec. 4.4).

Sampling entity by entity with every Beta uniform on its interval does *not* give the uniform
distribution on the polytope: an early entity's interval is wide, a late one's is squeezed by
what came before, so mass piles up near some vertices. The paper's remedy: draw points
uniformly from the polytope, express each entry ``a_i`` as its normalised position in its own
interval,

    u_i = (a_i - a_min_i(a_<i)) / (a_max_i(a_<i) - a_min_i(a_<i))  in (0, 1),

fit one Beta(alpha_hat_i, beta_hat_i) per entity to those positions by maximum likelihood and
start head ``i`` at that Beta by adding ``log(alpha_hat_i)``, ``log(beta_hat_i)`` to the bias
of its last layer (concentrations are ``exp(output)``, so the initial concentrations become
about ``alpha_hat_i``, ``beta_hat_i``).

Maximum likelihood for Beta(alpha, beta) on samples u (the equations scipy.stats.beta.fit
solves): with ``s_1 = mean(log u)``, ``s_2 = mean(log(1 - u))`` the score equations are

    psi(alpha) - psi(alpha + beta) = s_1,    psi(beta) - psi(alpha + beta) = s_2,

(psi = digamma). We solve them by Newton's method on (log alpha, log beta), starting from the
method-of-moments estimate ``c = m (1 - m) / v - 1, alpha_0 = m c, beta_0 = (1 - m) c``
(m, v: sample mean and variance). Everything is pure JAX (jittable, vmappable over entities).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, polygamma

from ppo_jax import linalg

__all__ = ["beta_method_of_moments", "beta_mle", "normalized_positions", "debias_offsets"]


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    w = mask.astype(x.dtype)
    return jnp.sum(jnp.where(mask, x, 0.0)) / jnp.maximum(jnp.sum(w), 1.0)


def beta_method_of_moments(u: jax.Array, mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Method-of-moments Beta estimate: ``c = m (1 - m) / v - 1``, ``alpha = m c``, ``beta = (1 - m) c``.

    u: (N,) samples in (0, 1); mask: (N,) bool, samples to use (default all). When the sample
    variance is not below ``m (1 - m)`` (no Beta matches), ``c`` is floored at a small value.
    Returns scalars (alpha_0, beta_0).
    """
    mask = jnp.ones(u.shape, bool) if mask is None else mask
    m = _masked_mean(u, mask)
    v = _masked_mean((u - m) ** 2, mask)
    c = m * (1.0 - m) / jnp.maximum(v, 1e-12) - 1.0
    c = jnp.maximum(c, 1e-2)
    return m * c, (1.0 - m) * c


def beta_mle(
    u: jax.Array,
    mask: jax.Array | None = None,
    *,
    num_iter: int = 50,
    eps: float = 1e-6,
) -> tuple[jax.Array, jax.Array]:
    """Maximum-likelihood Beta(alpha, beta) of samples ``u`` (N,) in (0, 1) (module docstring).

    Newton's method on the digamma score equations in ``theta = (log alpha, log beta)``
    (the Jacobian is ``J diag(alpha, beta)`` with ``J`` built from trigamma), from the
    method-of-moments start; each step is capped at 1 in log space (so the iteration cannot
    jump to absurd values from a poor start), ``num_iter`` steps under ``lax.fori_loop``.
    Samples are clipped into ``[eps, 1 - eps]`` first (a 0 or 1 has log-likelihood -inf
    under any Beta with concentrations above 1). ``mask`` selects samples (default all).

    Returns scalars (alpha_hat, beta_hat). Jittable and vmappable (e.g. over entities).
    """
    u = jnp.asarray(u)
    if u.ndim != 1:
        raise ValueError(f"beta_mle: u must be 1-D (N,), got shape {u.shape}")
    dtype = jnp.result_type(u.dtype, jnp.float32)
    u = jnp.clip(u.astype(dtype), eps, 1.0 - eps)
    mask = jnp.ones(u.shape, bool) if mask is None else jnp.asarray(mask, bool)
    s1 = _masked_mean(jnp.log(u), mask)
    s2 = _masked_mean(jnp.log1p(-u), mask)
    a0, b0 = beta_method_of_moments(u, mask)
    theta0 = jnp.log(jnp.stack([a0, b0]))

    def newton(_, theta):
        a, b = jnp.exp(theta)
        psi_ab = digamma(a + b)
        g = jnp.stack([digamma(a) - psi_ab - s1, digamma(b) - psi_ab - s2])
        t_ab = polygamma(1, a + b)
        J = jnp.array([[polygamma(1, a) - t_ab, -t_ab], [-t_ab, polygamma(1, b) - t_ab]])
        J_theta = J * jnp.stack([a, b])[None, :]  # d g / d log(alpha, beta)
        step = linalg.solve(J_theta, g)
        step = jnp.clip(step, -1.0, 1.0)
        new = theta - step
        return jnp.where(jnp.all(jnp.isfinite(new)), new, theta)

    theta = jax.lax.fori_loop(0, num_iter, newton, theta0)
    a, b = jnp.exp(theta)
    return a, b


def normalized_positions(
    a: jax.Array, a_min: jax.Array, a_max: jax.Array, tol: float = 1e-4
) -> tuple[jax.Array, jax.Array]:
    """Each entry's position in its own interval, and which intervals are usable.

    a: (N, n) allocations; a_min, a_max: (N, n - 1) their intervals (entity ``i`` given
    ``a_<i``). Returns ``u (N, n-1) = (a_i - a_min_i) / (a_max_i - a_min_i)`` clipped to
    [0, 1] and ``mask (N, n-1)``: interval width at least ``tol`` and finite bounds
    (degenerate intervals carry no information about the Beta and are left out).
    """
    width = a_max - a_min
    mask = jnp.isfinite(width) & (width >= tol)
    safe = jnp.where(mask, width, 1.0)
    u = jnp.clip((a[:, : a_min.shape[1]] - jnp.where(mask, a_min, 0.0)) / safe, 0.0, 1.0)
    return jnp.where(mask, u, 0.5), mask


def debias_offsets(
    a: jax.Array,
    a_min: jax.Array,
    a_max: jax.Array,
    *,
    tol: float = 1e-4,
    eps: float = 1e-6,
    num_iter: int = 50,
) -> tuple[jax.Array, jax.Array]:
    """``(log alpha_hat (n-1,), log beta_hat (n-1,))`` from uniform points of the polytope.

    a: (N, n) points drawn uniformly from the polytope; a_min, a_max: (N, n-1) the intervals
    of their entries along their own prefixes (``paspo_jax.lp.allocation_bounds_chain``).
    One maximum-likelihood Beta per entity (:func:`beta_mle`) on the normalised positions
    (:func:`normalized_positions`); an entity whose intervals are all degenerate gets
    offsets 0 (Beta(1, 1)).
    """
    u, mask = normalized_positions(a, a_min, a_max, tol)
    alpha, beta = jax.vmap(lambda uu, mm: beta_mle(uu, mm, num_iter=num_iter, eps=eps), in_axes=(1, 1))(u, mask)
    any_data = jnp.any(mask, axis=0)
    log_alpha = jnp.where(any_data, jnp.log(alpha), 0.0)
    log_beta = jnp.where(any_data, jnp.log(beta), 0.0)
    return log_alpha, log_beta
