"""CUP: Constrained Update Projection (Yang et al. 2022).

One update = (0) a multiplier step: ``nu_j`` takes one Adam step (``lagrange_lr``, 0.035 in
PASPO's original) on ``-nu_j (J_C,j - d)``, clamped >= 0; (1) policy improvement: PPO's
minibatch epochs on the reward (the engine's loss) -> ``pi_half``; (2) projection:
``update_epochs`` minibatch epochs of

    L(theta) = sum_j nu_j * coef * mean_B r_theta A^C_j  +  KL(pi_half || pi_theta)

with ``r_theta = pi_theta(a) / pi_old(a)``, ``coef = (1 - gamma lambda) / (1 - gamma)`` (the
paper's; 1 when gamma = 1, where it is undefined) and ``A^C`` the cost GAE centred per
minibatch. The KL is estimated on the rollout's actions (drawn from ``pi_old``) by importance
weighting, ``mean_B w (log pi_half(a) - log pi_theta(a))`` with ``w = pi_half(a) / pi_old(a)``
(works for any policy that only exposes log-probabilities; OmniSafe uses the closed-form KL
of its Gaussian). Projection steps use the engine's optimizer (its Adam state continues).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ppo_jax.update import MinibatchUpdate
from safe_jax.common import cost_advantage, evaluate, multiplier_init, multiplier_metrics, multiplier_step, num_costs


class CUP(MinibatchUpdate):
    needs_cost_critic = True

    def __init__(self, cost_limit: float = 0.0, lagrange_init: float = 1.0, lagrange_lr: float = 0.035):
        if lagrange_init < 0 or lagrange_lr <= 0 or cost_limit < 0:
            raise ValueError("CUP needs lagrange_init >= 0, lagrange_lr > 0, cost_limit >= 0")
        self.cost_limit, self.lagrange_init, self.lagrange_lr = cost_limit, lagrange_init, lagrange_lr

    def init(self, engine, params, cost_params):
        return multiplier_init(num_costs(engine), self.lagrange_init, self.lagrange_lr)

    def _coef(self, engine):
        g, lam = engine.config.gamma, engine.config.gae_lambda
        return 1.0 if g >= 1.0 else (1.0 - g * lam) / (1.0 - g)

    def __call__(self, engine, ustate, batch, stats, key):
        k_pre, k_improve, k_half, k_project = jax.random.split(key, 4)
        extra = multiplier_step(ustate.extra, stats["cost_return"] - self.cost_limit, self.lagrange_lr)
        ustate = ustate.replace(extra=extra)
        # (1) policy improvement on the reward.
        ustate, aux, _ = self.epochs(engine, ustate, batch, stats, k_improve)
        # (2) projection towards the cost-feasible set, staying close to pi_half.
        half = evaluate(engine, ustate.params, k_half, batch).log_prob
        batch_half = batch._replace(extras=(batch.extras, jax.lax.stop_gradient(half)))
        nu = jax.lax.stop_gradient(extra["lam"])
        coef = self._coef(engine)

        def project_step(engine_, u, k, mb):
            inner, half_mb = mb.extras
            mb = mb._replace(extras=inner)

            def loss_fn(params):
                ev = evaluate(engine, params, k, mb)
                ratio = jnp.exp(ev.log_prob - mb.log_prob)
                cost_term = coef * (ratio[:, None] * cost_advantage(mb)).mean(0) @ nu
                w = jnp.exp(half_mb - mb.log_prob)
                kl = jnp.mean(w * (half_mb - ev.log_prob))
                return cost_term + kl, (cost_term, kl)

            (loss, (cost_term, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(u.params)
            updates, opt_state = engine.optimizer.update(grads, u.opt_state, u.params)
            new = u.replace(params=optax.apply_updates(u.params, updates), opt_state=opt_state)
            finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
            new = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, u)
            return new, {"projection_loss": loss, "projection_kl": kl, "nonfinite": 1.0 - finite}

        ustate, paux, _ = self.epochs(engine, ustate, batch_half, stats, k_project, step=project_step)
        metrics = {
            **{k: v.mean() for k, v in aux.items() if k != "nonfinite"},
            "projection_loss": paux["projection_loss"].mean(),
            "projection_kl": paux["projection_kl"][-1].mean(),
            "nonfinite": aux["nonfinite"].sum() + paux["nonfinite"].sum(),
            **multiplier_metrics(extra["lam"]),
        }
        return ustate, metrics
