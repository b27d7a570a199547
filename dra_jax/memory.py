"""Noisy memories and the soft Thompson-sampling policy of DRA (Patel, Acerbi & Pouget 2020).

Each state-action value is remembered as a Gaussian, ``Q(s,a) ~ N(q(s,a), sigma(s,a)^2)``
(the paper's memory distribution). Acting draws one sample per visit,
``zeta ~ N(0, I)``, and chooses by a softmax over the sampled values ("soft Thompson
sampling" in the paper)::

    pi(a | s, zeta) = softmax_a( beta * (q(s,a) + zeta_a * sigma(s,a)) )

The resource cost of a memory is its KL divergence from the imprecise base memory
``N(q, sigma_base^2)`` (the cost term of the paper's DRA objective)::

    KL(N(q, sigma^2) || N(q, sigma_base^2)) = log(sigma_base / sigma) + sigma^2 / (2 sigma_base^2) - 1/2
    d KL / d sigma = sigma / sigma_base^2 - 1 / sigma            (closed form)

All functions act on one state's row (shape ``(A,)``) unless said otherwise, and vmap.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def kl_gaussian(sigma: jax.Array, sigma_base: jax.Array | float) -> jax.Array:
    """Elementwise ``KL(N(m, sigma^2) || N(m, sigma_base^2))`` (equal means), nats."""
    ratio = sigma / sigma_base
    return -jnp.log(ratio) + 0.5 * ratio**2 - 0.5


def kl_gaussian_grad(sigma: jax.Array, sigma_base: jax.Array | float) -> jax.Array:
    """Closed-form ``d KL / d sigma = sigma / sigma_base^2 - 1 / sigma`` (elementwise)."""
    return sigma / sigma_base**2 - 1.0 / sigma


def logits(q_s: jax.Array, sigma_s: jax.Array, zeta: jax.Array, beta) -> jax.Array:
    """``beta * (q + zeta * sigma)``, shape ``(A,)``."""
    return beta * (q_s + zeta * sigma_s)


def probs(q_s: jax.Array, sigma_s: jax.Array, zeta: jax.Array, beta) -> jax.Array:
    """Soft Thompson sampling ``pi(.|s, zeta)``, shape ``(A,)``."""
    return jax.nn.softmax(logits(q_s, sigma_s, zeta, beta))


def sample_zeta(key: jax.Array, num_actions: int) -> jax.Array:
    """``zeta ~ N(0, I_A)``."""
    return jax.random.normal(key, (num_actions,))


def sample_action(key: jax.Array, pi: jax.Array) -> jax.Array:
    """``a ~ pi`` (int32)."""
    return action_from_uniform(jax.random.uniform(key, pi.shape[:-1]), pi)


def action_from_uniform(u: jax.Array, pi: jax.Array) -> jax.Array:
    """Inverse-CDF draw ``a ~ pi`` from ``u ~ U(0, 1)`` (one uniform per choice), int32;
    ``pi`` has the actions on its last axis."""
    a = jnp.sum(jnp.cumsum(pi, axis=-1) < u[..., None], axis=-1)
    return jnp.minimum(a, pi.shape[-1] - 1).astype(jnp.int32)


def score_sigma(action: jax.Array, zeta: jax.Array, pi: jax.Array, beta) -> jax.Array:
    """Score of the sampled action w.r.t. the state's precisions (``zeta`` held fixed)::

        d log pi(a | s, zeta) / d sigma(s, b) = beta * zeta_b * (1[a = b] - pi(b | s, zeta))

    Shape ``(A,)``. This is the score-function (REINFORCE) factor of the DRA gradient
    (the paper's DRA gradient); ``zeta`` enters by reparameterisation, the discrete choice by its score.
    """
    onehot = jax.nn.one_hot(action, pi.shape[-1], dtype=pi.dtype)
    return beta * zeta * (onehot - pi)


def entropy(pi: jax.Array) -> jax.Array:
    """Shannon entropy ``H(pi) = -sum_a pi_a log pi_a`` (nats)."""
    return -jnp.sum(pi * jnp.log(jnp.clip(pi, 1e-30, 1.0)), axis=-1)


def entropy_grad_sigma(zeta: jax.Array, pi: jax.Array, beta) -> jax.Array:
    """Pathwise ``d H(pi(.|s, zeta)) / d sigma(s, .)`` with ``zeta`` fixed, shape ``(A,)``::

        dH/dlogit_b = -pi_b (log pi_b + H),   dlogit_b/dsigma_b = beta * zeta_b.
    """
    h = entropy(pi)
    return beta * zeta * (-pi * (jnp.log(jnp.clip(pi, 1e-30, 1.0)) + h))
