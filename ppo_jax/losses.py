"""Pure loss pieces of PPO: GAE (Schulman et al. 2016, Eq. 11-16) and the clipped surrogate
(Schulman et al. 2017, Eq. 7 and 9)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,  # (T, N, *C)
    values: jax.Array,  # (T, N, *C): V(s_t)
    dones: jax.Array,  # (T, N): episode ended at step t (s_{t+1} belongs to a new episode)
    last_value: jax.Array,  # (N, *C): V(s_T)
    gamma: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation as a reverse ``lax.scan``.

    delta_t = r_t + gamma (1 - d_t) V(s_{t+1}) - V(s_t);
    A_t = delta_t + gamma lam (1 - d_t) A_{t+1}.  Returns (advantages, value targets A + V).
    Trailing axes ``C`` (several signals at once, e.g. one cost per constraint row) share
    the episode boundaries ``dones``.
    """
    extra = rewards.ndim - dones.ndim
    dones = dones.reshape(dones.shape + (1,) * extra)

    def step(carry, xs):
        next_adv, next_value = carry
        reward, value, done = xs
        not_done = 1.0 - done.astype(reward.dtype)
        delta = reward + gamma * next_value * not_done - value
        adv = delta + gamma * lam * not_done * next_adv
        return (adv, value), adv

    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(step, init, (rewards, values, dones), reverse=True)
    return advantages, advantages + values


def ppo_loss(
    log_prob: jax.Array,  # (B,) under the current parameters
    old_log_prob: jax.Array,  # (B,) behaviour policy
    advantage: jax.Array,  # (B,)
    value: jax.Array,  # (B,) current critic
    old_value: jax.Array,  # (B,) critic at collection time
    target: jax.Array,  # (B,) value targets
    entropy: jax.Array,  # (B,)
    *,
    clip_eps: float | None,
    clip_value: bool,
    vf_coef: float,
    ent_coef: float,
    normalize_advantages: bool,
    value_loss_scale: float = 0.5,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped PPO objective, returned as a loss to minimise, with diagnostics.

    ``clip_eps=None`` gives the unclipped policy gradient (A2C): -A * log pi, whose
    gradient equals that of -A * ratio at ratio 1. The value loss is
    ``value_loss_scale * mean(err^2)`` (0.5: PureJaxRL / CleanRL; SB3 uses 1.0).
    """
    if normalize_advantages:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    if clip_eps is None:
        policy_loss = -(advantage * log_prob).mean()
        clip_frac = jnp.zeros(())
    else:
        unclipped = ratio * advantage
        clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage
        policy_loss = -jnp.minimum(unclipped, clipped).mean()
        clip_frac = (jnp.abs(ratio - 1.0) > clip_eps).mean()
    value_err = jnp.square(value - target)
    if clip_value and clip_eps is not None:
        value_clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
        value_err = jnp.maximum(value_err, jnp.square(value_clipped - target))
    value_loss = value_loss_scale * value_err.mean()
    entropy_mean = entropy.mean()
    total = policy_loss + vf_coef * value_loss - ent_coef * entropy_mean
    aux = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy_mean,
        "approx_kl": ((ratio - 1.0) - log_ratio).mean(),  # Schulman's k3 estimator
        "clip_frac": clip_frac,
    }
    return total, aux


def explained_variance(values: jax.Array, targets: jax.Array) -> jax.Array:
    """1 - Var[target - V] / Var[target]; NaN-free (0 when the targets are constant)."""
    var_t = jnp.var(targets)
    return jnp.where(var_t > 0, 1.0 - jnp.var(targets - values) / jnp.where(var_t > 0, var_t, 1.0), 0.0)
