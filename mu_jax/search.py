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

Both are one generic routine, :func:`kr_uct` (the kernel, the widening proposals, masked
candidates and the recommendation rule as arguments; MU-curling's search uses it with the
execution-noise kernel); :func:`kr_ucb_search` is it with the Gaussian kernel above.
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


RECOMMEND = ("visits", "kernel_visits", "lcb")


# --------------------------------------------------------------------------------------
# KR-UCT
# --------------------------------------------------------------------------------------


class KRUCTResult(NamedTuple):
    choice: jax.Array  # [d] recommended action
    choice_index: jax.Array  # int, its row in ``actions`` (< m: one of the candidates)
    actions: jax.Array  # [P, d] candidates, then widened actions
    counts: jax.Array  # [P] executions per action
    means: jax.Array  # [P] mean reward per action (0 where never executed)
    value: jax.Array  # [P] kernel regression E[v | a]
    n_actions: jax.Array  # int, rows of ``actions`` in use
    sums: jax.Array  # [P] summed rewards per action


def pool_size(m: int, budget: int, widen_k: float = 1.0, widen_alpha: float = 0.5) -> int:
    """Rows KR-UCT needs: the ``m`` candidates (some may be masked) plus every action
    widening can add (at most ``k budget^alpha`` actions are ever in use)."""
    return m + min(budget, math.ceil(widen_k * budget**widen_alpha))


def kr_uct(
    key: jax.Array,
    sample_reward: Callable[[jax.Array, jax.Array], jax.Array],
    candidates: jax.Array,
    budget: int,
    kernel: Callable[[jax.Array, jax.Array], jax.Array],
    propose: Callable[[jax.Array, jax.Array, int], jax.Array],
    valid: jax.Array | None = None,
    c: float = 1.0,
    widen_k: float = 1.0,
    widen_alpha: float = 0.5,
    n_proposals: int = 16,
    recommend: str = "visits",
    pool: int | None = None,
) -> KRUCTResult:
    """KR-UCT at one node (Yee, Lisy, Bowling 2016; the rules in ``mu_jax.curling``'s
    docstring) from ``candidates [m, d]`` (rows with ``valid`` False are never executed) for
    ``budget`` executions of ``sample_reward(key, action) -> reward``.

    ``kernel(A [p, d], B [q, d]) -> [p, q]`` in ``[0, 1]`` with ``K(a, a) = 1``;
    ``propose(key, centre [d], n) -> [n, d]``: points with ``K(centre, .) > tau``.
    Execution ``t`` uses ``jax.random.split(key, budget)[t]``. Jittable, vmappable.
    ``pool``: rows of the action pool (default :func:`pool_size`; enough when it is at least
    the number of valid candidates plus ``ceil(widen_k budget^widen_alpha)``).
    """
    m, d = candidates.shape
    valid = jnp.ones(m, bool) if valid is None else jnp.asarray(valid, bool)
    n_valid = jnp.sum(valid)
    if recommend not in RECOMMEND:
        raise ValueError(f"recommend must be one of {RECOMMEND}, got {recommend!r}")
    if budget < m:
        raise ValueError(f"KR-UCT budget {budget} is smaller than the number of candidates {m}")
    P = pool_size(m, budget, widen_k, widen_alpha) if pool is None else int(pool)
    if P < m:
        raise ValueError(f"KR-UCT pool of {P} rows cannot hold the {m} candidates")
    keys = jax.random.split(key, budget)
    pool0 = jnp.concatenate([candidates, jnp.broadcast_to(candidates[:1], (P - m, d))], 0).astype(jnp.float32)
    usable0 = jnp.concatenate([valid, jnp.zeros(P - m, bool)])

    def stats(pool, usable, n, s):
        Km = kernel(pool, pool) * usable[None, :]
        W = Km @ n
        v = jnp.where(W > 0, (Km @ s) / jnp.maximum(W, 1e-12), 0.0)
        return W, v

    def step(carry, t):
        pool, usable, n, s, n_act = carry
        W, v = stats(pool, usable, n, s)
        unexecuted = usable & (n == 0)
        total = jnp.maximum(jnp.sum(jnp.where(usable, W, 0.0)), 1.0)
        index = v + c * jnp.sqrt(jnp.log(total) / jnp.maximum(W, 1e-12))
        index = jnp.where(usable, index, -jnp.inf)
        chosen = jnp.where(unexecuted.any(), jnp.argmax(unexecuted), jnp.argmax(index))
        n_used = n_valid + (n_act - m)
        widen = (~unexecuted.any()) & (n_act < P) & (n_used < widen_k * (t + 1.0) ** widen_alpha)
        props = propose(jax.random.fold_in(keys[t], 1), pool[chosen], n_proposals)
        W_props = (kernel(props, pool) * usable[None, :]) @ n
        new = props[jnp.argmin(W_props)]
        idx = jnp.where(widen, n_act, chosen)
        pool = jnp.where(widen, pool.at[n_act].set(new), pool)
        usable = jnp.where(widen, usable.at[n_act].set(True), usable)
        n_act = n_act + widen.astype(jnp.int32)
        r = sample_reward(keys[t], pool[idx])
        return (pool, usable, n.at[idx].add(1.0), s.at[idx].add(r), n_act), idx

    init = (pool0, usable0, jnp.zeros(P), jnp.zeros(P), jnp.asarray(m, jnp.int32))
    (pool, usable, n, s, n_act), _ = jax.lax.scan(step, init, jnp.arange(budget))
    W, v = stats(pool, usable, n, s)
    if recommend == "visits":
        score = jnp.where(usable & (n == n.max()), v, -jnp.inf)
    elif recommend == "kernel_visits":
        score = jnp.where(usable, W, -jnp.inf)
    else:
        total = jnp.maximum(jnp.sum(jnp.where(usable, W, 0.0)), 1.0)
        score = jnp.where(usable & (W > 0), v - c * jnp.sqrt(jnp.log(total) / jnp.maximum(W, 1e-12)), -jnp.inf)
    i = jnp.argmax(score)
    means = s / jnp.maximum(n, 1.0)
    return KRUCTResult(pool[i], i, pool, n, means, v, n_act, s)



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
    if recommend not in ("visits", "kernel_visits"):
        raise ValueError(f"recommend must be 'visits' or 'kernel_visits', got {recommend!r}")
    if not 0.0 < tau < 1.0:
        raise ValueError(f"widening threshold tau must lie in (0, 1), got {tau}")
    radius = bandwidth * math.sqrt(2.0 * math.log(1.0 / tau))

    def propose(key, centre, n):  # uniform in the ball {a : K(centre, a) > tau}, clipped
        k1, k2 = jax.random.split(key)
        rad = radius * jnp.sqrt(jax.random.uniform(k1, (n,)))
        if d == 1:
            offs = rad[:, None] * jnp.sign(jax.random.uniform(k2, (n, 1)) - 0.5)
        else:
            direction = jax.random.normal(k2, (n, d))
            direction = direction / jnp.linalg.norm(direction, axis=-1, keepdims=True)
            offs = rad[:, None] * direction  # uniform in the disc for d = 2
        return jnp.clip(centre[None, :] + offs, low, high)

    try:
        r = kr_uct(key, sample_reward, actions, budget, lambda a, b: kernel(a, b, bandwidth), propose, c=c,
                   widen_k=widen_k, widen_alpha=widen_alpha, n_proposals=n_proposals, recommend=recommend,
                   pool=max_actions(m, budget, widen_k, widen_alpha))
    except ValueError as e:
        raise ValueError(str(e).replace("KR-UCT", "KR-UCB")) from None
    return KRUCBResult(r.choice, r.choice_index, r.actions, r.counts, r.sums, r.n_actions)
