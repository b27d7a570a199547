"""Generator objectives of Ahmad, Lelis, Bowling (NeurIPS 2020) as pure loss functions.

``q [..., m]``: Q(s, a_i) of the m candidates in order; ``logp [..., m]``: log pi^i(a_i|s);
leading axes are batch axes; losses are negated batch means. Marginal utility with the
running max M_{i-1} = max_{j<i} Q(s, a_j) held fixed (``sg``)::

    u_MU = Q(s, a_1) + sum_{i>=2} (Q(s, a_i) - sg(M_{i-1}))^+     (= max_i Q(s, a_i) in value)

``pathwise`` losses differentiate the utility (continuous candidates); ``score`` losses are
REINFORCE surrogates. Theorem 1, as implemented (tested against enumeration):
g_hat = sum_i u_i sg-weighted grad log pi^i(a_i|s), u_1 = Q(s, a_1),
u_i = (Q(s, a_i) - M_{i-1})^+, has E[g_hat] = g_MU, the sum of semi-gradients.

The original code's variants (zfahmad/competition; ``estimator="orig"``) apply its transforms
to ``x_i = Q(s, a_i) log pi_i(a_i|s)``: MU ``u_MU(x)``, MAX ``max_i x_i`` (``max_obj.py``), the
policy baseline ``u_MU(x)`` over i.i.d. samples (``policy_gradient.py``), and ``softmax``,
``max_i softmax(tau x)_i`` (``softmax.py``, tau = 0.01).

Example: ``loss = score_loss("mu", q, logp)`` with q, logp [B, m].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

sg = jax.lax.stop_gradient

OBJECTIVES = ("mu", "max", "policy", "diversity", "softmax")
ESTIMATORS = ("paper", "orig")
GRADIENTS = ("score", "pathwise")


def running_max_before(q: jax.Array) -> jax.Array:
    """``M_{i-1} = max_{j<i} q_j`` along the last axis (``-inf`` for ``i = 1``); ``[..., m]``."""
    cm = jax.lax.cummax(q, axis=q.ndim - 1)
    first = jnp.full(q.shape[:-1] + (1,), -jnp.inf, q.dtype)
    return jnp.concatenate([first, cm[..., :-1]], axis=-1)


def marginal_utilities(q: jax.Array) -> jax.Array:
    """Per-candidate marginal utility ``u_i`` ``[..., m]`` with the running max stop-gradiented.

    ``u_1 = q_1``; ``u_i = (q_i - sg(max_{j<i} q_j))^+`` for ``i >= 2``. Differentiable in
    ``q_i`` (the semi-gradient ``1[q_i > M_{i-1}] grad q_i``).
    """
    prev = sg(running_max_before(q))
    rest = jnp.maximum(q[..., 1:] - prev[..., 1:], 0.0)
    return jnp.concatenate([q[..., :1], rest], axis=-1)


def u_mu(q: jax.Array) -> jax.Array:
    """``u_MU = Q(s,a_1) + sum_{i>=2} (Q(s,a_i) - sg(max_{j<i} Q(s,a_j)))^+``, ``[...]``.

    Equals ``max_i Q(s, a_i)`` in value; its autodiff gradient is MU's sum of semi-gradients.
    """
    return marginal_utilities(q).sum(-1)


def u_max(q: jax.Array) -> jax.Array:
    """``u_MAX = max_i Q(s, a_i)``, ``[...]`` (gradient flows to the argmax only)."""
    return q.max(-1)


# --------------------------------------------------------------------------------------
# Score-function (REINFORCE) surrogates: q has no gradient, logp does.
# --------------------------------------------------------------------------------------


def leave_one_out_baseline(w: jax.Array) -> jax.Array:
    """``b_s = mean_{s' != s} w_{s'}`` over the first (batch) axis; unbiased for the score term."""
    B = w.shape[0]
    if B < 2:
        raise ValueError("a leave-one-out baseline needs at least 2 states in the batch")
    return (w.sum(0, keepdims=True) - w) / (B - 1)


def _weighted_scores(w: jax.Array, logp: jax.Array, baseline: bool) -> jax.Array:
    """``-mean_s sum_i sg(w_i - b_i) log pi_i(a_i | s)``; ``w`` broadcastable to ``logp``."""
    w = sg(jnp.broadcast_to(w, logp.shape))
    if baseline:
        w = w - leave_one_out_baseline(w)
    return -jnp.mean(jnp.sum(w * logp, -1))


def mu_score_loss(q: jax.Array, logp: jax.Array, estimator: str = "paper", baseline: bool = False) -> jax.Array:
    """Negated MU surrogate; its gradient is Theorem 1's sampled gradient (``paper``):
    ``L = -mean_s sum_i sg(u_i) log pi_i(a_i|s)``. ``orig`` (the original code):
    ``-mean_s u_MU(x)`` with ``x_i = Q(s,a_i) log pi_i(a_i|s)``, not an estimator of the
    paper's gradient. ``baseline``: subtract the leave-one-out batch mean of ``u_i``."""
    q = sg(q)
    if estimator == "paper":
        return _weighted_scores(marginal_utilities(q), logp, baseline)
    if estimator == "orig":
        return -jnp.mean(u_mu(q * logp))
    raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")


def max_score_loss(q: jax.Array, logp: jax.Array, estimator: str = "paper", baseline: bool = False) -> jax.Array:
    """Negated MAX surrogate: ``L = -mean_s sg(max_i Q(s,a_i)) sum_i log pi_i(a_i | s)``.

    Its gradient is the unbiased score-function estimator of ``grad E[u_MAX]``. ``orig``:
    ``L = -mean_s max_i Q(s,a_i) log pi_i(a_i|s)`` (the original code's ``max_obj.py``).
    ``baseline``: as in ``mu_score_loss``.
    """
    q = sg(q)
    if estimator == "paper":
        return _weighted_scores(u_max(q)[..., None], logp, baseline)
    if estimator == "orig":
        return -jnp.mean(u_max(q * logp))
    raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")


def policy_score_loss(q: jax.Array, logp: jax.Array, baseline: bool = False, estimator: str = "paper") -> jax.Array:
    """Plain policy (REINFORCE on i.i.d. candidates): ``L = -mean_s sum_i sg(Q(s,a_i)) log pi(a_i|s)``.

    Maximises ``E_{a ~ pi}[Q(s, a)]``; the m candidates are m samples of one policy. ``orig``
    (the original's ``policy_gradient.py``): the original's MU loss ``-mean_s u_MU(x)``,
    ``x_i = Q(s,a_i) log pi(a_i|s)``, over the m i.i.d. samples.
    """
    if estimator == "orig":
        return mu_score_loss(q, logp, "orig")
    if estimator != "paper":
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
    return _weighted_scores(q, logp, baseline)


def softmax_score_loss(q: jax.Array, logp: jax.Array, tau: float = 0.01) -> jax.Array:
    """The original's ``softmax.py`` objective (no counterpart in the paper):
    ``L = -mean_s max_i softmax(tau x)_i`` with ``x_i = sg(Q(s,a_i)) log pi_i(a_i|s)``
    (original: ``tau = 0.01``)."""
    x = tau * sg(q) * logp
    return -jnp.mean(jnp.max(jax.nn.softmax(x, axis=-1), axis=-1))


def diversity_score_loss(
    q: jax.Array, logp: jax.Array, div: jax.Array, weight: float, baseline: bool = False
) -> jax.Array:
    """Diversity-regularised objective: ``L = -mean_s [sum_i sg(Q(s,a_i)) log pi_i(a_i|s) + lambda D_s]``.

    Each candidate head maximises its own expected value; ``D_s`` (``generator.diversity``,
    differentiable in the head parameters) rewards heads that differ; ``lambda = weight``.
    """
    return policy_score_loss(q, logp, baseline) - weight * jnp.mean(div)


# --------------------------------------------------------------------------------------
# Pathwise objectives: q is differentiable in the candidates.
# --------------------------------------------------------------------------------------


def pathwise_loss(objective: str, q: jax.Array, div: jax.Array | None = None, weight: float = 0.0) -> jax.Array:
    """Negated utility for reparametrised candidates.

    mu: ``-u_MU(q)`` (semi-gradients); max: ``-u_MAX(q)``; policy: ``-sum_i Q(s,a_i)``;
    diversity: ``-(sum_i Q(s,a_i) + lambda D_s)``. Mean over leading axes. (``softmax`` is a
    score-function objective only.)
    """
    if objective == "mu":
        return -jnp.mean(u_mu(q))
    if objective == "max":
        return -jnp.mean(u_max(q))
    if objective == "policy":
        return -jnp.mean(q.sum(-1))
    if objective == "diversity":
        return -jnp.mean(q.sum(-1)) - weight * jnp.mean(div)
    if objective == "softmax":
        raise ValueError("objective 'softmax' has score-function gradients only (gradient='score')")
    raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")


def score_loss(
    objective: str,
    q: jax.Array,
    logp: jax.Array,
    div: jax.Array | None = None,
    weight: float = 0.0,
    estimator: str = "paper",
    baseline: bool = False,
    tau: float = 0.01,
) -> jax.Array:
    """Dispatch to the score-function surrogate of ``objective`` (``tau``: softmax's temperature).

    Named variants: ``("max", "paper")`` is ours, the unbiased score-function gradient of
    ``E[max_i Q]``; ``("max", "orig")`` is the original's ``max_obj.py``, maximising
    ``max_i Q_i log pi_i`` (one candidate per state gets a gradient); ``("policy", "paper")``
    is plain REINFORCE, ``("policy", "orig")`` the original's MU loss over i.i.d. samples;
    ``softmax`` exists only in the original's form."""
    if objective == "mu":
        return mu_score_loss(q, logp, estimator, baseline)
    if objective == "max":
        return max_score_loss(q, logp, estimator, baseline)
    if objective == "policy":
        return policy_score_loss(q, logp, baseline, estimator)
    if objective == "diversity":
        return diversity_score_loss(q, logp, div, weight, baseline)
    if objective == "softmax":
        return softmax_score_loss(q, logp, tau)
    raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
