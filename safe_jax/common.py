"""Pieces the safe-RL update rules share: advantage preparation, the PPO loss on a given
advantage, the clipped cost surrogate, and the Lagrange multiplier (Adam, clamped >= 0).

Conventions: ``B`` rows in a (mini)batch, ``C`` costs (``batch.cost_advantage`` (B, C));
``stats["cost_return"]`` (C,) is the mean episode cost return ``J_C`` of the rollout;
``cost_limit`` ``d`` is a scalar applied to each cost.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ppo_jax.losses import ppo_loss
from ppo_jax.policy import Batch


def reward_advantage(engine, batch: Batch) -> jax.Array:
    """(B,) reward advantage, standardised over the (mini)batch when ``normalize_advantages``."""
    adv = batch.advantage
    if engine.config.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    return adv


def cost_advantage(batch: Batch, centre: bool = True) -> jax.Array:
    """(B, C) cost advantage, centred per cost over the (mini)batch (OmniSafe's convention:
    centred, not scaled, so the cost surrogate keeps the cost's units)."""
    adv = jnp.asarray(batch.cost_advantage, jnp.float32)
    return adv - adv.mean(axis=0) if centre else adv


def evaluate(engine, params, key, batch: Batch):
    """``policy.evaluate`` over the rows -> Evaluation with (B,) leaves."""
    keys = jax.random.split(key, batch.log_prob.shape[0])
    return jax.vmap(engine.policy.evaluate, in_axes=(None, 0, 0, 0, 0))(params, keys, batch.obs, batch.action, batch.extras)


def ppo_loss_on(engine, params, key, batch: Batch, advantage: jax.Array):
    """PPO's loss (clipped surrogate on ``advantage`` as given, value loss, entropy bonus, the
    policy's ``extra_loss``) -> (loss, aux, evaluation). ``advantage`` is used unnormalised."""
    cfg = engine.config
    k_eval, k_extra = jax.random.split(key)
    ev = evaluate(engine, params, k_eval, batch)
    loss, aux = ppo_loss(ev.log_prob, batch.log_prob, advantage, ev.value, batch.value, batch.target, ev.entropy,
                         clip_eps=cfg.clip_eps, clip_value=cfg.clip_value, vf_coef=cfg.vf_coef, ent_coef=cfg.ent_coef,
                         normalize_advantages=False)
    extra, extra_metrics = engine.policy.extra_loss(params, k_extra, batch)
    return loss + extra, {**aux, **extra_metrics}, ev


def clipped_cost_surrogate(ratio: jax.Array, adv_c: jax.Array, clip_eps: float | None) -> jax.Array:
    """(C,) ``mean_B max(r A^c, clip(r, 1-eps, 1+eps) A^c)`` (the pessimistic bound for a cost
    that is minimised; P3O's L^CLIP_C without its J term). ``ratio`` (B,), ``adv_c`` (B, C)."""
    r = ratio[:, None]
    if clip_eps is None:
        return (r * adv_c).mean(0)
    return jnp.maximum(r * adv_c, jnp.clip(r, 1 - clip_eps, 1 + clip_eps) * adv_c).mean(0)


# -- Lagrange multipliers -------------------------------------------------------------------
def multiplier_init(num_costs: int, init: float, lr: float):
    """State of C multipliers ``lambda >= 0`` trained by Adam at ``lr``."""
    lam = jnp.full((num_costs,), init, jnp.float32)
    return {"lam": lam, "lam_opt": optax.adam(lr).init(lam)}


def multiplier_step(state: dict, violation: jax.Array, lr: float, upper: float | None = None) -> dict:
    """One Adam step of gradient descent on ``-lambda . violation`` (ascent on the dual), then
    ``lambda <- clip(lambda, 0, upper)``. ``violation`` (C,) = ``J_C - d`` (or a per-row measure).
    While ``violation > 0`` lambda grows; at ``violation < 0`` it shrinks towards and stops at 0."""
    grad = -jnp.asarray(violation, jnp.float32)
    updates, opt = optax.adam(lr).update(grad, state["lam_opt"], state["lam"])
    lam = jnp.maximum(optax.apply_updates(state["lam"], updates), 0.0)
    if upper is not None:
        lam = jnp.minimum(lam, upper)
    return {**state, "lam": lam, "lam_opt": opt}


def multiplier_metrics(lam: jax.Array, per_cost_max: int = 16) -> dict:
    """``lagrange_multiplier`` (the sum), ``lagrange_multiplier_max`` and, for at most
    ``per_cost_max`` costs, ``lagrange_multiplier/j`` per cost (per-row costs of synth-7: 611)."""
    out = {"lagrange_multiplier": lam.sum(), "lagrange_multiplier_max": lam.max()}
    if lam.shape[0] <= per_cost_max:
        out.update({f"lagrange_multiplier/{j}": lam[j] for j in range(lam.shape[0])})
    return out


def num_costs(engine) -> int:
    if engine.cost_shape is None:
        raise ValueError(f"safe-RL rules need an env that reports info['cost']; {type(engine.env).__name__} does not")
    return int(engine.cost_shape[0])
