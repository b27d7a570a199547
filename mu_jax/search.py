"""Search over generated candidates: UCB and KR-UCB, jittable, vmappable over states.

Both take a reward oracle ``sample_reward(key, x)`` (one noisy sample; x an arm index for
UCB, an action [d] for KR-UCB); pull t uses ``jax.random.split(key, budget)[t]``.
UCB1 (Auer et al. 2002): each arm once, then argmax_i mean_i + c sqrt(2 ln t / n_i);
recommends the most pulled arm. KR-UCB (Yee, Lisy, Bowling 2016) with the Gaussian kernel
K(a, b) = exp(-|a - b|^2 / (2 h^2)), h = 0.05::

    W(a) = sum_b K(a, b) n_b,   v(a) = sum_b K(a, b) S_b / W(a),
    index = v(a) + C sqrt(log(sum_b W(b)) / W(a))                                (C = 1)

starting from the m candidates; progressive widening adds, while the actions number less
than ceil((t+1)^(1/2)), the least-explored of ``n_proposals`` uniform points in
{a : K(a*, a) > 0.9} around the selected a*. ``recommend``: most pulled ("visits") or
largest W ("kernel_visits").
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class UCBResult(NamedTuple):
    choice: jax.Array  # int, recommended arm
    counts: jax.Array  # [m] pulls per arm
    means: jax.Array  # [m] empirical mean reward per arm


def ucb_search(
    key: jax.Array,
    sample_reward: Callable[[jax.Array, jax.Array], jax.Array],
    n_arms: int,
    budget: int,
    c: float = 1.0,
) -> UCBResult:
    """UCB1 over ``n_arms`` arms for ``budget`` pulls (see the module docstring)."""
    if budget < n_arms:
        raise ValueError(f"UCB budget {budget} is smaller than the number of arms {n_arms}")
    keys = jax.random.split(key, budget)

    def pull(carry, t):
        n, s = carry
        mean = s / jnp.maximum(n, 1)
        bonus = c * jnp.sqrt(2.0 * jnp.log(jnp.maximum(t, 1).astype(s.dtype)) / jnp.maximum(n, 1))
        arm = jnp.where(t < n_arms, t, jnp.argmax(mean + bonus))
        r = sample_reward(keys[t], arm)
        return (n.at[arm].add(1), s.at[arm].add(r)), arm

    n0 = jnp.zeros(n_arms, jnp.int32)
    s0 = jnp.zeros(n_arms, jnp.float32)
    (n, s), _ = jax.lax.scan(pull, (n0, s0), jnp.arange(budget))
    means = s / jnp.maximum(n, 1)
    choice = jnp.argmax(jnp.where(n == n.max(), means, -jnp.inf))  # most pulled, then best mean
    return UCBResult(choice, n, means)


class KRUCBResult(NamedTuple):
    choice: jax.Array  # [d] recommended action
    choice_index: jax.Array  # int, its index in ``actions`` (< m: one of the candidates)
    actions: jax.Array  # [P, d] candidates then widened actions (unused rows are copies of row 0)
    counts: jax.Array  # [P] pulls per action
    sums: jax.Array  # [P] summed rewards per action
    n_actions: jax.Array  # int, actions in use


def kernel(a: jax.Array, b: jax.Array, bandwidth: float) -> jax.Array:
    """Gaussian kernel matrix ``K[i, j] = exp(-|a_i - b_j|^2 / (2 h^2))``."""
    d2 = jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, -1)
    return jnp.exp(-d2 / (2.0 * bandwidth**2))


def max_actions(m: int, budget: int, widen_k: float = 1.0, widen_alpha: float = 0.5) -> int:
    """Size of the action pool KR-UCB needs: the candidates plus every widened action."""
    return max(m, min(m + budget, math.ceil(widen_k * budget**widen_alpha)))


def kr_ucb_search(
    key: jax.Array,
    sample_reward: Callable[[jax.Array, jax.Array], jax.Array],
    actions: jax.Array,
    budget: int,
    bandwidth: float = 0.05,
    c: float = 1.0,
    tau: float = 0.9,
    widen_k: float = 1.0,
    widen_alpha: float = 0.5,
    n_proposals: int = 16,
    low: float = 0.0,
    high: float = 1.0,
    recommend: str = "visits",
) -> KRUCBResult:
    """KR-UCB from the candidates ``actions [m, d]`` for ``budget`` pulls (module docstring)."""
    m, d = actions.shape
    if budget < m:
        raise ValueError(f"KR-UCB budget {budget} is smaller than the number of candidates {m}")
    if recommend not in ("visits", "kernel_visits"):
        raise ValueError(f"recommend must be 'visits' or 'kernel_visits', got {recommend!r}")
    if not 0.0 < tau < 1.0:
        raise ValueError(f"widening threshold tau must lie in (0, 1), got {tau}")
    P = max_actions(m, budget, widen_k, widen_alpha)
    radius = bandwidth * math.sqrt(2.0 * math.log(1.0 / tau))
    keys = jax.random.split(key, budget)
    pool0 = jnp.concatenate([actions, jnp.broadcast_to(actions[:1], (P - m, d))], 0).astype(jnp.float32)

    def stats(pool, n, s, active):
        Km = kernel(pool, pool, bandwidth) * active[None, :]
        W = Km @ n
        v = jnp.where(W > 0, (Km @ s) / jnp.maximum(W, 1e-12), 0.0)
        return W, v

    def pull(carry, t):
        pool, n, s, n_act = carry
        active = (jnp.arange(P) < n_act).astype(jnp.float32)
        W, v = stats(pool, n, s, active)
        unpulled = (n == 0) & (active > 0)
        widen = (n_act < jnp.minimum(P, jnp.ceil(widen_k * (t + 1.0) ** widen_alpha))) & ~unpulled.any()

        # KR-UCB index over the active actions
        total = jnp.maximum(jnp.sum(W * active), 1.0)
        index = v + c * jnp.sqrt(jnp.log(total) / jnp.maximum(W, 1e-12))
        index = jnp.where(active > 0, index, -jnp.inf)
        chosen = jnp.where(unpulled.any(), jnp.argmax(unpulled), jnp.argmax(index))

        # progressive widening: the least-explored point next to the selected action
        centre = pool[chosen]
        kp = jax.random.fold_in(keys[t], 1)
        k1, k2 = jax.random.split(kp)
        rad = radius * jnp.sqrt(jax.random.uniform(k1, (n_proposals,)))
        if d == 1:
            offs = rad[:, None] * jnp.sign(jax.random.uniform(k2, (n_proposals, 1)) - 0.5)
        else:
            direction = jax.random.normal(k2, (n_proposals, d))
            direction = direction / jnp.linalg.norm(direction, axis=-1, keepdims=True)
            offs = rad[:, None] * direction  # uniform in the disc for d = 2
        props = jnp.clip(centre[None, :] + offs, low, high)
        W_props = (kernel(props, pool, bandwidth) * active[None, :]) @ n
        new = props[jnp.argmin(W_props)]

        idx = jnp.where(widen, n_act, chosen)
        pool = jnp.where(widen, pool.at[n_act].set(new), pool)
        n_act = n_act + widen.astype(jnp.int32)
        r = sample_reward(keys[t], pool[idx])
        return (pool, n.at[idx].add(1.0), s.at[idx].add(r), n_act), idx

    init = (pool0, jnp.zeros(P, jnp.float32), jnp.zeros(P, jnp.float32), jnp.asarray(m, jnp.int32))
    (pool, n, s, n_act), _ = jax.lax.scan(pull, init, jnp.arange(budget))
    active = (jnp.arange(P) < n_act).astype(jnp.float32)
    W, v = stats(pool, n, s, active)
    if recommend == "kernel_visits":
        choice_index = jnp.argmax(jnp.where(active > 0, W, -jnp.inf))
    else:
        choice_index = jnp.argmax(jnp.where((active > 0) & (n == n.max()), v, -jnp.inf))
    return KRUCBResult(pool[choice_index], choice_index, pool, n, s, n_act)
