"""The original's separate ELBO step for IAR's flow (``IARConfig(elbo_step="buffer")``; the
``paper`` preset), as an ``UpdateRule`` of the PPO engine (``ppo_jax.update``).

The original (cameron-chen/flow-iar, ``UpdateFlowNetCallback`` and
``ActorCriticFlowPolicy.flow_net_updating``) trains the flow apart from the A2C loss:

- an observation buffer keeps the last ``buffer_size`` = 2,048 observations of the rollouts,
  first in, first out (each rollout's rows env-major, appended after the older ones);
- warm-up: rollouts are collected without any training until the buffer is full (2,048 env
  steps at 64 envs x 1 step); then ``pretrain_iters`` = 10 ELBO steps (its
  ``max(5 * 2048 // (64 * 256), 10)``);
- after that, one ELBO step before each rollout (here: after each update, which is the same
  sequence: ... A2C update, ELBO step, rollout, A2C update, ELBO step, ...);
- an ELBO step: ``batch_size`` = 256 observations drawn uniformly without replacement from
  the buffer; their context from the encoder with no gradient; one action per state from the
  generator a ~ p(.|s) (no rejection, no gradient); loss = minus the one-sample ELBO
  log p(v|s) - log q(v|a, s), v ~ q(.|a, s), in bits per action dimension
  (``elbo_bpd_cond``: divided by L ln 2 and averaged over the states); gradient-norm clip
  1.0 over the trained parameters, then its own RMSprop (the A2C optimizer's class and
  settings: SB3's ``RMSpropTFLike``, lr 3e-4, decay 0.99, eps 1e-5 inside the square root,
  accumulator starting at 1) with its own state;
- trained parameters: the flow (``optimizer_flow_net`` over ``flow_net``: the generator and
  the posterior, with the posterior's context network) by default; ``params="posterior"`` is
  the original's ``elbo_Q`` option (the posterior only). The encoder never moves here.

Differences, stated: the warm-up steps count in the engine's budget (the original resets its
step counter after the warm-up, so it trains 2,048 steps longer; 0.3% of 7e5); the A2C step
of the warm-up updates is computed and discarded (``jnp.where``), so no parameter moves before
the buffer is full, as in the original. The policy's own ELBO term (``extra_loss``) is
weighted 0 in this mode (``iar_jax.algo.make_policy``).

State (``RunnerState.extra``, checkpointed with the run): ``buffer`` (buffer_size, *obs),
``count`` (observations added so far, int32), ``opt_state`` (the RMSprop state of the trained
parameters). Metrics per update: ``iar/elbo_step_loss`` (bits per dim of the last step, NaN
when none ran), ``iar/elbo_steps`` (steps taken in this update), ``iar/buffer_count``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

from ppo_jax.update import MinibatchUpdate, UpdateState

PARAM_SETS = {"flow": ("flow", "posterior"), "posterior": ("posterior",)}


def buffer_add(buffer: jax.Array, count: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """FIFO: ``buffer`` (M, ...) holds the last M observations added, oldest first (row
    M - 1 the newest; before M were added, the first M - count rows are zeros). ``obs``
    (B, ...) is appended in its row order -> (buffer, count + B)."""
    m, b = buffer.shape[0], obs.shape[0]
    obs = obs.astype(buffer.dtype).reshape((b,) + buffer.shape[1:])
    if b >= m:
        return obs[b - m:], count + b
    return jnp.concatenate([buffer[b:], obs], axis=0), count + b


def num_elbo_steps(count_before, count_after, buffer_size: int, pretrain_iters: int):
    """ELBO steps after an update that brought the buffer from ``count_before`` to
    ``count_after`` observations: 0 while it is not full, ``pretrain_iters + 1`` at the
    update that fills it (pre-training, then the first regular step), 1 afterwards."""
    full_before, full_after = count_before >= buffer_size, count_after >= buffer_size
    return jnp.where(full_after, jnp.where(full_before, 1, pretrain_iters + 1), 0).astype(jnp.int32)


def make_elbo_optimizer(lr: float, decay: float, eps: float, max_grad_norm: float) -> optax.GradientTransformation:
    """Global-norm clip (``max_grad_norm`` > 0) + TF1-style RMSprop (SB3's ``RMSpropTFLike``)."""
    opt = optax.rmsprop(lr, decay=decay, eps=eps, initial_scale=1.0, eps_in_sqrt=True)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), opt) if max_grad_norm > 0 else opt


def elbo_loss(policy, params, key, obs, trained: tuple[str, ...], num_samples: int = 1):
    """The original's flow loss on states ``obs`` (n, ...): minus the mean ``num_samples``-sample
    ELBO of a ~ p(.|s) in bits per action dimension -> (loss, mean ELBO in nats).
    Gradients reach the parameter groups in ``trained`` only."""
    frozen = jax.lax.stop_gradient(params)
    n = obs.shape[0]
    k_a, k_w = jax.random.split(key)
    flat = obs.reshape(n, -1).astype(jnp.float32)
    ctx = jax.vmap(lambda x: policy.context(frozen, x))(flat)  # the encoder under no_grad
    actions = jax.vmap(lambda k, c: policy.sample_actions(frozen, k, c, 1)[0])(jax.random.split(k_a, n), ctx)
    lw = jax.vmap(
        lambda k, c, a: policy.log_weights(
            params, k, c, a[None], num_samples, generator_grad="flow" in trained, posterior_grad="posterior" in trained
        )[0]
    )(jax.random.split(k_w, n), ctx, actions)  # (n, num_samples)
    elbo = lw.mean()
    return -elbo / (policy.layout.num_rsc * math.log(2.0)), elbo


class ELBOStep(MinibatchUpdate):
    """The engine's A2C/PPO update (``MinibatchUpdate``) followed by the original's ELBO
    step(s) on the observation buffer (module docstring). ``policy``: an ``IARPolicy``."""

    def __init__(self, policy, *, buffer_size: int = 2048, batch_size: int = 256, num_samples: int = 1,
                 pretrain_iters: int = 10, params: str = "flow", lr: float = 3e-4, decay: float = 0.99,
                 eps: float = 1e-5, max_grad_norm: float = 1.0):
        if params not in PARAM_SETS:
            raise ValueError(f"elbo step params must be one of {tuple(PARAM_SETS)}, got {params!r}")
        for name, value in (("buffer_size", buffer_size), ("batch_size", batch_size), ("num_samples", num_samples)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"elbo step {name} must be a positive integer, got {value!r}")
        if batch_size > buffer_size:
            raise ValueError(f"elbo step batch_size ({batch_size}) must be <= buffer_size ({buffer_size})")
        if not isinstance(pretrain_iters, int) or pretrain_iters < 0:
            raise ValueError(f"elbo step pretrain_iters must be a non-negative integer, got {pretrain_iters!r}")
        self.policy = policy
        self.buffer_size, self.batch_size, self.num_samples = buffer_size, batch_size, num_samples
        self.pretrain_iters = pretrain_iters
        self.trained = PARAM_SETS[params]
        self.optimizer = make_elbo_optimizer(lr, decay, eps, max_grad_norm)

    def subset(self, params) -> dict:
        return {k: params[k] for k in self.trained}

    def init(self, engine, params, cost_params):
        obs_shape = jax.eval_shape(lambda: engine.env.reset(jax.random.PRNGKey(0), engine.env_params)[0])
        return {
            "buffer": jnp.zeros((self.buffer_size,) + tuple(obs_shape.shape), jnp.float32),
            "count": jnp.zeros((), jnp.int32),
            "opt_state": self.optimizer.init(self.subset(params)),
        }

    def elbo_step(self, params, opt_state, key, buffer):
        """One step on ``batch_size`` rows of a full ``buffer`` drawn without replacement ->
        (params, opt_state, loss). A non-finite loss or gradient leaves both unchanged."""
        k_idx, k_loss = jax.random.split(key)
        idx = jax.random.choice(k_idx, self.buffer_size, (self.batch_size,), replace=False)
        obs = buffer[idx]

        def loss_fn(sub):
            return elbo_loss(self.policy, {**params, **sub}, k_loss, obs, self.trained, self.num_samples)

        sub = self.subset(params)
        (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(sub)
        updates, new_opt = self.optimizer.update(grads, opt_state, sub)
        new_sub = optax.apply_updates(sub, updates)
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
        return {**params, **keep(new_sub, sub)}, keep(new_opt, opt_state), loss

    def __call__(self, engine, ustate: UpdateState, batch, stats, key):
        extra = ustate.extra
        k_pg, k_elbo = jax.random.split(key)
        full_before = extra["count"] >= self.buffer_size
        new, metrics = super().__call__(engine, ustate, batch, stats, k_pg)
        # warm-up (buffer not yet full): the original trains nothing
        new = jax.tree.map(lambda a, b: jnp.where(full_before, a, b), new, ustate)
        buffer, count = buffer_add(extra["buffer"], extra["count"], batch.obs)
        n_steps = num_elbo_steps(extra["count"], count, self.buffer_size, self.pretrain_iters)

        def body(i, carry):
            params, opt_state, _ = carry
            return self.elbo_step(params, opt_state, jax.random.fold_in(k_elbo, i), buffer)

        params, opt_state, loss = jax.lax.fori_loop(
            0, n_steps, body, (new.params, extra["opt_state"], jnp.full((), jnp.nan, jnp.float32))
        )
        new = new.replace(params=params, extra={"buffer": buffer, "count": count, "opt_state": opt_state})
        metrics = {**metrics, "iar/elbo_step_loss": loss, "iar/elbo_steps": n_steps.astype(jnp.float32),
                   "iar/buffer_count": jnp.minimum(count, self.buffer_size).astype(jnp.float32)}
        return new, metrics
