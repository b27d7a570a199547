"""The update-rule hook: how the engine turns one rollout batch into new parameters.

The engine owns the rollout, GAE (reward and, where built, cost), evaluation, logging,
checkpoints and sharding; an ``UpdateRule`` owns only the step from a batch to parameters::

    rule.init(engine, params, cost_params) -> extra            # the rule's own state (pytree)
    rule(engine, ustate, batch, stats, key) -> (ustate, metrics)

``ustate`` is an :class:`UpdateState` (policy params and optimizer state, cost-critic params
and optimizer state, ``extra``); ``batch`` the whole rollout as a :class:`~ppo_jax.policy.Batch`
with leading axis ``B = num_envs * num_steps``; ``stats`` the rollout's episode statistics
(``"return"`` (), ``"cost_return"`` (C,) per cost, both from the episodes that ended in this
rollout, else the last known); ``metrics`` a dict of scalars.

:class:`MinibatchUpdate` (the default) is PPO/A2C's shuffled epochs of minibatch steps,
``loss -> grad -> optax``. Penalty and multiplier methods subclass it and override
``loss`` (the policy objective, e.g. a cost-penalised surrogate), ``pre_update`` (once per
update, before the epochs, e.g. a Lagrange multiplier step on the episode cost) and
``post_epoch`` (after each epoch). Methods that do not take minibatch steps (CPO: conjugate
gradient and a line search on the whole batch) override ``__call__`` and may still call
:meth:`MinibatchUpdate.critic_epochs` to regress the critics.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from ppo_jax.policy import Batch


@struct.dataclass
class UpdateState:
    params: Any  # the policy's parameters
    opt_state: Any  # engine.optimizer's state for params
    cost_params: Any  # the engine's cost critic (() when none is built)
    cost_opt_state: Any  # engine.cost_optimizer's state (() when none)
    extra: Any  # the rule's own state (multipliers, ...); () for plain PPO


class UpdateRule:
    """Base class of update rules (module doc). ``needs_cost_critic``: the engine builds a
    cost critic (one head per cost) and fills ``batch.cost_advantage``/``cost_target``."""

    needs_cost_critic: bool = False

    def init(self, engine, params, cost_params) -> Any:
        return ()

    def __call__(self, engine, ustate: UpdateState, batch: Batch, stats: dict, key: jax.Array):
        raise NotImplementedError


def _where_finite(finite, new, old):
    return jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)


class MinibatchUpdate(UpdateRule):
    """PPO/A2C: ``update_epochs`` shuffled passes of ``num_minibatches`` optax steps on
    ``loss + vf_coef * cost-critic loss`` (the policy and the cost critic have separate
    optimizers and gradient clips). A step with a non-finite loss or gradient is not taken
    (params and optimizer states keep their last good values) and counted in
    ``metrics["nonfinite"]``."""

    def loss(self, engine, params, extra, key, batch: Batch):
        """The policy objective on a minibatch -> (scalar loss, aux dict). Default: PPO's
        clipped surrogate + value loss - entropy bonus + the policy's ``extra_loss``."""
        return engine.policy_loss(params, key, batch)

    def pre_update(self, engine, ustate: UpdateState, batch: Batch, stats: dict, key) -> tuple[UpdateState, dict]:
        return ustate, {}

    def post_epoch(self, engine, ustate: UpdateState, batch: Batch, stats: dict, key) -> tuple[UpdateState, dict]:
        return ustate, {}

    def minibatch_step(self, engine, ustate: UpdateState, key, batch: Batch):
        def total(trainable):
            params, cost_params = trainable
            loss, aux = self.loss(engine, params, ustate.extra, key, batch)
            cost_loss, cost_aux = engine.cost_value_loss(cost_params, batch)
            return loss + engine.config.vf_coef * cost_loss, (loss, {**aux, **cost_aux})

        (_, (loss, aux)), (grads, cost_grads) = jax.value_and_grad(total, has_aux=True)(
            (ustate.params, ustate.cost_params)
        )
        updates, opt_state = engine.optimizer.update(grads, ustate.opt_state, ustate.params)
        params = optax.apply_updates(ustate.params, updates)
        cost_params, cost_opt_state = ustate.cost_params, ustate.cost_opt_state
        if engine.cost_critic is not None:
            c_updates, cost_opt_state = engine.cost_optimizer.update(cost_grads, cost_opt_state, cost_params)
            cost_params = optax.apply_updates(cost_params, c_updates)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(optax.tree.norm(cost_grads))
        new = ustate.replace(params=params, opt_state=opt_state, cost_params=cost_params, cost_opt_state=cost_opt_state)
        ustate = _where_finite(finite, new, ustate)
        return ustate, {**aux, "loss": loss, "grad_norm": grad_norm, "nonfinite": 1.0 - finite}

    def epochs(self, engine, ustate: UpdateState, batch: Batch, stats: dict, key, step=None):
        """``update_epochs`` passes of shuffled minibatches of ``step(engine, ustate, key,
        minibatch) -> (ustate, aux)`` (default :meth:`minibatch_step`), each followed by
        ``post_epoch``. Returns ``(ustate, aux with leaves (epochs, minibatches))``."""
        cfg = engine.config
        step = self.minibatch_step if step is None else step

        def one_step(carry, mb):
            u, k = carry
            k, k_loss = jax.random.split(k)
            u, aux = step(engine, u, k_loss, mb)
            return (u, k), aux

        def epoch(carry, _):
            u, k = carry
            k, k_perm = jax.random.split(k)
            perm = jax.random.permutation(k_perm, cfg.batch_size)
            minibatches = jax.tree.map(
                lambda x: x[perm].reshape((cfg.num_minibatches, cfg.minibatch_size) + x.shape[1:]), batch
            )
            (u, k), aux = jax.lax.scan(one_step, (u, k), minibatches)
            u, post = self.post_epoch(engine, u, batch, stats, jax.random.fold_in(k_perm, 1))
            return (u, k), (aux, post)

        (ustate, _), (aux, post) = jax.lax.scan(epoch, (ustate, key), None, length=cfg.update_epochs)
        return ustate, aux, post

    def critic_epochs(self, engine, ustate: UpdateState, batch: Batch, key):
        """Minibatch regression of the reward critic (through the policy's ``value``) and the
        cost critic only: for rules that update the actor some other way (CPO). Uses the
        engine's optimizers; the actor's parameters move only through the value loss."""

        def step(engine_, u, k, mb):
            def total(trainable):
                params, cost_params = trainable
                v = jax.vmap(engine.policy.value, in_axes=(None, 0))(params, mb.obs)
                loss = engine.config.value_loss_scale * jnp.mean(jnp.square(v - mb.target))
                cost_loss, _ = engine.cost_value_loss(cost_params, mb)
                return loss + cost_loss, loss

            (_, loss), (grads, cost_grads) = jax.value_and_grad(total, has_aux=True)((u.params, u.cost_params))
            updates, opt_state = engine.optimizer.update(grads, u.opt_state, u.params)
            new = u.replace(params=optax.apply_updates(u.params, updates), opt_state=opt_state)
            if engine.cost_critic is not None:
                c_up, c_state = engine.cost_optimizer.update(cost_grads, u.cost_opt_state, u.cost_params)
                new = new.replace(cost_params=optax.apply_updates(u.cost_params, c_up), cost_opt_state=c_state)
            finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
            return _where_finite(finite, new, u), {"value_loss": loss, "nonfinite": 1.0 - finite}

        ustate, aux, _ = self.epochs(engine, ustate, batch, {}, key, step=step)
        return ustate, aux

    def __call__(self, engine, ustate: UpdateState, batch: Batch, stats: dict, key: jax.Array):
        ustate, pre = self.pre_update(engine, ustate, batch, stats, jax.random.fold_in(key, 2))
        ustate, aux, post = self.epochs(engine, ustate, batch, stats, key)
        metrics = {
            **{k: v.mean() for k, v in aux.items() if k != "nonfinite"},
            "nonfinite": aux["nonfinite"].sum(),
            **pre,
            **{k: v[-1] for k, v in post.items()},
        }
        return ustate, metrics
