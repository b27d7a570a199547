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

import functools

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


@functools.partial(jax.jit, static_argnums=0)
def _chain_program(bounds_fn, A, b, pts, warm):
    """The intervals of a chunk of points (:func:`lp_chain_bounds`); one compiled program per
    ``bounds_fn`` (hashed by identity) and shapes."""
    n = pts.shape[-1]
    if warm is None:
        one = lambda a, i: bounds_fn(A, b, a, i)
    else:
        one = lambda a, i: bounds_fn(A, b, a, i, warm=warm)
    return jax.vmap(lambda a: jax.vmap(lambda i: one(a, i))(jnp.arange(n - 1))[:3])(pts)


def lp_chain_bounds(bounds_fn, A, b, points, *, chunk: int = 64):
    """Intervals of every entry of ``points`` (K, n) along its own prefix through ``bounds_fn``
    (the policy's LP path, ``paspo_jax.bounds.LPBounds``): ``(lo, hi, feasible)``, each (K, n-1).

    One jitted program per chunk shape with ``A``, ``b``, the points and ``bounds_fn.warm`` as its
    *arguments*: nothing large is captured as a constant (with the warm-start table in the
    closure XLA constant-folded the basis rows of every entity, 2 GB at N = 100). Chunks of
    ``chunk`` points bound the memory of the vmapped simplex states.
    """
    points = jnp.asarray(points)
    K, n = points.shape
    warm = getattr(bounds_fn, "warm", None)
    chain = functools.partial(_chain_program, bounds_fn)
    pad = (-K) % chunk
    padded = jnp.concatenate([points, jnp.broadcast_to(points[:1], (pad, n))]) if pad else points
    parts = [chain(A, b, padded[k:k + chunk], warm) for k in range(0, K + pad, chunk)]
    return tuple(jnp.concatenate(x)[:K] for x in zip(*parts))


def beta_log_standard_errors(alpha: jax.Array, beta: jax.Array, count: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Asymptotic standard errors of ``(log alpha_hat, log beta_hat)``, the ML Beta fit of ``count``
    samples: ``sqrt(diag((count D I D)^{-1}))`` with ``I`` the Beta's Fisher information per sample,

        I = [[psi1(a) - psi1(a + b), -psi1(a + b)], [-psi1(a + b), psi1(b) - psi1(a + b)]],

    (psi1 = trigamma) and ``D = diag(alpha, beta)`` (the chain rule to log parameters). Elementwise
    over arrays of fits; ``count = 0`` gives inf.
    """
    t_ab = polygamma(1, alpha + beta)
    i11, i22, i12 = polygamma(1, alpha) - t_ab, polygamma(1, beta) - t_ab, -t_ab
    det = i11 * i22 - i12 ** 2
    count = jnp.asarray(count, alpha.dtype)
    var_a = jnp.where(count > 0, i22 / (det * count * alpha ** 2), jnp.inf)
    var_b = jnp.where(count > 0, i11 / (det * count * beta ** 2), jnp.inf)
    return jnp.sqrt(var_a), jnp.sqrt(var_b)


def sequential_debias_offsets(points, intervals, positions, *, se_tol: float, first: int = 1024,
                              tol: float = 1e-4, eps: float = 1e-6, num_iter: int = 50, verbose: bool = False):
    """:func:`debias_offsets` on a growing prefix of ``points``, stopped once the fit has converged.

    points: (K, n) uniform points of the polytope (i.i.d., so any prefix is a uniform sample too);
    ``intervals(pts) -> (lo, hi, feasible)`` their raw intervals along their own prefixes, each
    (k, n-1) (the expensive part: ``2 (n - 1)`` LPs per point); ``positions(pts, lo, hi,
    feasible) -> (a_min, a_max)`` the cleaned intervals the policy samples in.

    The first ``first`` points are fitted, then the sample doubles (only the new points' intervals
    are solved) until every entity's asymptotic standard error of ``log alpha_hat`` and ``log
    beta_hat`` (:func:`beta_log_standard_errors`) computed with the number of points fitted is at
    most ``se_tol``, or all ``K`` points are used. (An entity whose interval is degenerate in a
    fraction ``1 - f`` of the points, left out of its fit, ends at about ``se_tol / sqrt(f)``.) ``se_tol = 0`` always uses all ``K`` points: exactly
    ``debias_offsets`` of all of them (the paper's fit). The estimator is the same ML fit; only
    its sample size adapts, so the offsets differ from the full fit's by about ``se_tol`` (its
    own standard error). Returns ``(log_alpha (n-1,), log_beta (n-1,), used)`` (``used``: points
    fitted, an int).
    """
    points = jnp.asarray(points)
    K = points.shape[0]
    if se_tol < 0:
        raise ValueError(f"se_tol must be >= 0, got {se_tol}")
    if first < 2:
        raise ValueError(f"first must be >= 2, got {first}")

    @jax.jit
    def fit(pts, a_min, a_max):
        u, mask = normalized_positions(pts, a_min, a_max, tol)
        alpha, beta = jax.vmap(lambda uu, mm: beta_mle(uu, mm, num_iter=num_iter, eps=eps), in_axes=(1, 1))(u, mask)
        # Standard errors as if every point counted: an entity usable in a fraction f of the
        # points ends at se_tol / sqrt(f) (its head acts that much less often), and a mostly
        # degenerate entity cannot keep the fit going to all K points.
        se_a, se_b = beta_log_standard_errors(alpha, beta, pts.shape[0])
        any_data = jnp.any(mask, axis=0)
        se = jnp.where(any_data, jnp.maximum(se_a, se_b), 0.0)  # an all-degenerate entity: nothing to fit
        return jnp.where(any_data, jnp.log(alpha), 0.0), jnp.where(any_data, jnp.log(beta), 0.0), jnp.max(se)

    used = K if se_tol == 0 else min(first, K)
    a_min, a_max = positions(points[:used], *intervals(points[:used]))
    while True:
        log_alpha, log_beta, se = fit(points[:used], a_min, a_max)
        if verbose:
            print(f"debias fit: {used} points, max standard error of log alpha/beta {float(se):.4f}", flush=True)
        if used >= K or float(se) <= se_tol:
            return log_alpha, log_beta, used
        more = min(used, K - used)
        new = positions(points[used:used + more], *intervals(points[used:used + more]))
        a_min, a_max = (jnp.concatenate([x, y]) for x, y in zip((a_min, a_max), new))
        used += more
