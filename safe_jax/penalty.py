"""Penalty methods: P3O (Zhang et al. 2022) and IPO (Liu et al. 2020).

Both minimise PPO's clipped loss on the (standardised) reward advantage plus a penalty on an
estimate of each cost's episode return after the update, built from the clipped cost surrogate
``S_j = mean_B max(r A^C_j, clip(r) A^C_j)`` (``A^C`` the cost GAE, centred per minibatch;
:func:`safe_jax.common.clipped_cost_surrogate`) and ``J_C,j`` (the rollout's mean episode cost
return, constant in the loss).

P3O (exact ReLU penalty of the paper): ``kappa * sum_j relu(S_j + scale * (J_C,j - d))``
with ``scale = 1 - gamma`` (paper and PASPO's original, where d = 0) or ``1`` (``p3o_j_scale=
"one"``, OmniSafe's P3O). Note that with gamma = 1 (PASPO's setting) the paper form has no J
term: the penalty is active whenever the update would raise the cost surrogate.

IPO (log barrier of the paper): ``sum_j phi(d - (J_C,j + S_j))`` with
``phi(g) = -log(g) / t`` for ``g > slack``, continued linearly below the slack,
``phi(g) = -log(slack) / t + (slack - g) / (slack * t)`` (the barrier is undefined at
``g <= 0``; the continuation's slope ``1 / (slack t)`` is 1000 / t at slack = 0.001, the
weight PASPO's original gives a violated row). :func:`ipo_barrier` is that function.
PASPO's original applies the barrier per *step* on each row's raw violation (``log(-(max(v, 0) -
0.001)) / t``, 1000 / t for a violated row) as a reward penalty before GAE; this module
implements the paper's barrier on the cost return.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ppo_jax.update import MinibatchUpdate
from safe_jax.common import clipped_cost_surrogate, cost_advantage, num_costs, ppo_loss_on, reward_advantage


def p3o_penalty(surrogate, cost_return, cost_limit, kappa, scale):
    """``kappa * sum_j relu(surrogate_j + scale * (cost_return_j - cost_limit))``."""
    return kappa * jnp.sum(jax.nn.relu(surrogate + scale * (cost_return - cost_limit)))


def ipo_barrier(gap, t, slack):
    """Per-cost barrier ``phi(gap)`` (module doc): ``-log(gap)/t`` above ``slack``, linear below."""
    gap = jnp.asarray(gap, jnp.float32)
    safe = jnp.maximum(gap, slack)
    inside = -jnp.log(safe) / t
    below = -jnp.log(slack) / t + (slack - gap) / (slack * t)
    return jnp.where(gap > slack, inside, below)


class _SurrogatePenalty(MinibatchUpdate):
    needs_cost_critic = True

    def init(self, engine, params, cost_params):
        return {"cost_return": jnp.zeros((num_costs(engine),), jnp.float32)}

    def pre_update(self, engine, ustate, batch, stats, key):
        return ustate.replace(extra={"cost_return": stats["cost_return"]}), {}

    def penalty(self, engine, surrogate, cost_return):
        raise NotImplementedError

    def loss(self, engine, params, extra, key, batch):
        loss, aux, ev = ppo_loss_on(engine, params, key, batch, reward_advantage(engine, batch))
        ratio = jnp.exp(ev.log_prob - batch.log_prob)
        surrogate = clipped_cost_surrogate(ratio, cost_advantage(batch), engine.config.clip_eps)
        pen = self.penalty(engine, surrogate, jax.lax.stop_gradient(extra["cost_return"]))
        return loss + pen, {**aux, "cost_penalty": pen, "cost_surrogate": surrogate.sum()}


class P3O(_SurrogatePenalty):
    def __init__(self, cost_limit: float = 0.0, kappa: float = 20.0, j_scale: str = "1-gamma"):
        if j_scale not in ("1-gamma", "one"):
            raise ValueError(f"P3O j_scale must be '1-gamma' or 'one', got {j_scale!r}")
        if kappa <= 0 or cost_limit < 0:
            raise ValueError("P3O needs kappa > 0 and cost_limit >= 0")
        self.cost_limit, self.kappa, self.j_scale = cost_limit, kappa, j_scale

    def penalty(self, engine, surrogate, cost_return):
        scale = 1.0 - engine.config.gamma if self.j_scale == "1-gamma" else 1.0
        return p3o_penalty(surrogate, cost_return, self.cost_limit, self.kappa, scale)


class IPO(_SurrogatePenalty):
    def __init__(self, cost_limit: float = 0.0, t: float = 20.0, slack: float = 1e-3):
        if t <= 0 or slack <= 0 or cost_limit < 0:
            raise ValueError("IPO needs t > 0, slack > 0 and cost_limit >= 0")
        self.cost_limit, self.t, self.slack = cost_limit, t, slack

    def penalty(self, engine, surrogate, cost_return):
        return jnp.sum(ipo_barrier(self.cost_limit - (cost_return + surrogate), self.t, self.slack))
