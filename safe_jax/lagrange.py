"""PPO-Lagrangian on the engine's cost channel.

Problem: ``max_pi J_R(pi)  s.t.  J_C,j(pi) <= d`` for each cost ``j`` (``C`` costs). Dual:
``min_{lambda >= 0} max_pi J_R - sum_j lambda_j (J_C,j - d)``.

``form="standard"`` (OmniSafe's PPO-Lag; Ray et al. 2019): once per update, before the epochs,
each ``lambda_j`` takes one Adam step (``lagrange_lr``) on ``-lambda_j (J_C,j - d)`` with
``J_C,j`` = the rollout's mean episode cost return, then ``lambda <- max(lambda, 0)``. The
policy minimises PPO's clipped loss on the advantage
``A = (A_R - sum_j lambda_j A^C_j) / (1 + sum_j lambda_j)``
(``A_R`` standardised per minibatch, ``A^C`` the cost GAE centred per minibatch).

``form="original"`` (PASPO's original LagrangePPO, RLlib): the penalty ``sum_j lambda_j c_j``
on the step costs, with the multipliers as they were at the rollout (the start of the
update), is subtracted from the reward before GAE -- by GAE's linearity in the reward this
is ``A = A_R - sum_j lambda_j A^C_j`` (with the cost critic's GAE; the original folds both
into one critic), standardised per minibatch, no ``1 + sum lambda`` scaling -- and the
multipliers take one Adam step in *every minibatch* on ``-lambda_j * mean_minibatch(c_j - d)``
(cost limit ``d`` per step; 0 in the original), clamped >= 0. The original's costs are the
constraint rows ``c_j = max(A_j a - b_j, 0)`` of the stored (raw) rows, one multiplier each:
``SafeConfig(cost_rows="raw")`` (the ``paper`` preset; ``safe_jax.rows``); with the default
``cost_rows="sum"`` the rule acts on the env's one summed-violation cost.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ppo_jax.update import MinibatchUpdate, UpdateState
from safe_jax.common import (cost_advantage, multiplier_init, multiplier_metrics, multiplier_step, num_costs,
                             ppo_loss_on, reward_advantage)


class PPOLagrangian(MinibatchUpdate):
    needs_cost_critic = True

    def __init__(self, cost_limit: float = 0.0, lagrange_init: float = 1.0, lagrange_lr: float = 0.035,
                 form: str = "standard", upper: float | None = None):
        if form not in ("standard", "original"):
            raise ValueError(f"PPOLagrangian form must be 'standard' or 'original', got {form!r}")
        if lagrange_init < 0 or lagrange_lr <= 0 or cost_limit < 0:
            raise ValueError("PPOLagrangian needs lagrange_init >= 0, lagrange_lr > 0, cost_limit >= 0")
        self.cost_limit, self.lagrange_init, self.lagrange_lr = cost_limit, lagrange_init, lagrange_lr
        self.form, self.upper = form, upper

    def init(self, engine, params, cost_params):
        state = multiplier_init(num_costs(engine), self.lagrange_init, self.lagrange_lr)
        return {**state, "lam_rollout": state["lam"]}  # original form: the multipliers of the rollout

    def pre_update(self, engine, ustate: UpdateState, batch, stats, key):
        if self.form == "original":
            return ustate.replace(extra={**ustate.extra, "lam_rollout": ustate.extra["lam"]}), {}
        extra = multiplier_step(ustate.extra, stats["cost_return"] - self.cost_limit, self.lagrange_lr, self.upper)
        return ustate.replace(extra=extra), multiplier_metrics(extra["lam"])

    def __call__(self, engine, ustate, batch, stats, key):
        ustate, metrics = super().__call__(engine, ustate, batch, stats, key)
        return ustate, {**metrics, **multiplier_metrics(ustate.extra["lam"])}  # after the update's last step

    def combined_advantage(self, engine, lam, batch):
        adv_c = cost_advantage(batch)
        if self.form == "standard":
            return (reward_advantage(engine, batch) - adv_c @ lam) / (1.0 + lam.sum())
        adv = batch.advantage - adv_c @ lam
        if engine.config.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        return adv

    def loss(self, engine, params, extra, key, batch):
        lam = jax.lax.stop_gradient(extra["lam_rollout" if self.form == "original" else "lam"])
        loss, aux, _ = ppo_loss_on(engine, params, key, batch, self.combined_advantage(engine, lam, batch))
        return loss, aux

    def minibatch_step(self, engine, ustate, key, batch):
        if self.form == "original":
            viol = jnp.asarray(batch.cost, jnp.float32).mean(0) - self.cost_limit
            ustate = ustate.replace(extra=multiplier_step(ustate.extra, viol, self.lagrange_lr, self.upper))
        return super().minibatch_step(engine, ustate, key, batch)
