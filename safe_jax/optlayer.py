"""OptLayer-PPO as PASPO's original ran it (niklasdbs/paspo, ``OptlayerPPOPolicy``, mode CPC).

Policy (:class:`OptLayerPolicy`): a Dirichlet proposal ``z ~ Dir(exp(out) + 1e-6)`` (the
original's ``TorchDirichletCustomStable``; 32-32 ReLU, separate critic) and an executed action

    a = argmin_y 1/2 ||y - sign * z||^2   s.t.  A y <= b,  0 <= y <= 1,  sum(y) = 1

(:func:`optlayer_project`, the exact projection ``paspo_jax.baselines.project_polytope``).
The original calls qpth's ``QPFunction(Q=I, p=z, G=[A; -I; I], h=[b; 0; 1], A_eq=1', b_eq=1)``,
which minimises ``1/2 y'Qy + p'y = 1/2 ||y + z||^2 - const``: it executes the projection of
``-z`` (``sign = -1``, method ``optlayer-orig``). OptLayer as meant (Pham et al. 2018)
projects ``z`` itself (``sign = +1``, method ``optlayer``).

Log-probabilities are the original's: ``x <- max(x, 1e-6) / sum(max(x, 1e-6))``, then the
Dirichlet log-density, clamped below at ``log 1e-6`` (zero gradient under the clamp). ``act``
returns the executed action with its log-prob (``ACTION_LOGP_SAFE``); ``extras`` keep the
proposal ``z``, its log-prob ``logp_z`` (``ACTION_LOGP_UNSAFE``), the proposal's cost

    cost(z) = sum(z) - 1 + sum_j max(G_j z - h_j, 0),   G = [A; -I; I],  h = [b; 0; 1]

(the original's ``OptLayer.compute_cost`` with ``normalize_constraints: False``: signed
equality term, rows as stored -- ``row_scale`` maps the env's unit-norm rows back to them)
and ``first`` (the step starts an episode: ``env_state.time == 0``; every allocation env has it).

Training (:class:`OptLayerCPC`, the original's ``learn_on_batch`` in CPC mode): per minibatch
two optimizer steps of the engine's optimizer (gradient clip, Adam):

1. PPO's clipped loss on the *proposal*: ratio ``pi(z) / pi_old(z)``, advantage of reward minus
   cost ``A_R - G`` with ``G_t = sum_k (gamma lambda)^k cost_{t+k}`` within the episode
   (= GAE of ``r - cost`` on the same critic, by linearity), value target ``target_R - G``;
2. PPO's clipped loss on the *executed action*: ratio ``pi(a) / pi_old(a)``, reward advantage
   ``A_R``, value target ``target_R``;

both with the entropy bonus and the value loss of the one critic (the original's shared
``VALUE_TARGETS_COSTS`` / ``VALUE_TARGETS`` alternation), advantages standardised per
minibatch (the engine's convention; RLlib standardises over the whole batch).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paspo_jax.baselines import DirichletPolicy, ProjectionPolicy, project_polytope
from ppo_jax.losses import ppo_loss
from ppo_jax.policy import Act, Evaluation
from ppo_jax.update import MinibatchUpdate
from safe_jax.common import evaluate

LOG_EPS = float(np.log(1e-6))


def optlayer_project(z, A, b, sign: float = 1.0):
    """``ProjectionResult`` of ``sign * z`` onto ``{A y <= b, y >= 0, sum(y) = 1}`` (``y <= 1``
    is implied); ``sign = -1`` is what qpth computes for ``p = +z`` (module doc)."""
    return project_polytope(sign * jnp.asarray(z), A, b)


def proposal_cost(z, A, b):
    """The original's CPC cost of a proposal ``z`` (n,): ``sum(z) - 1 + sum max(G z - h, 0)``
    with ``G = [A; -I; I]``, ``h = [b; 0; 1]`` (rows as given)."""
    z = jnp.asarray(z)
    return (jnp.sum(z) - 1.0 + jnp.sum(jnp.maximum(A @ z - b, 0.0)) + jnp.sum(jnp.maximum(-z, 0.0))
            + jnp.sum(jnp.maximum(z - 1.0, 0.0)))


def dirichlet_log_prob(dist, x):
    """The original's ``TorchDirichletCustomStable.logp``: floor at 1e-6, renormalise, clamp the
    log-density below at ``log 1e-6``."""
    x = jnp.maximum(x, 1e-6)
    x = x / jnp.sum(x, axis=-1, keepdims=True)
    return jnp.maximum(dist.log_prob(x), LOG_EPS)


def cost_to_go(cost, first, num_envs: int, num_steps: int, discount: float):
    """(B,) ``G_t = cost_t + discount * [not first_{t+1}] * G_{t+1}`` per env (``G`` = 0 after the
    rollout's last step) for the engine's env-major flattened batch (row ``e * num_steps + t``)."""
    c = jnp.asarray(cost, jnp.float32).reshape(num_envs, num_steps)
    f = jnp.asarray(first, bool).reshape(num_envs, num_steps)
    cont = jnp.concatenate([~f[:, 1:], jnp.zeros((num_envs, 1), bool)], axis=1).astype(jnp.float32)

    def back(g_next, xs):
        c_t, cont_t = xs
        g = c_t + discount * cont_t * g_next
        return g, g

    _, g = jax.lax.scan(back, jnp.zeros((num_envs,), jnp.float32), (c.T, cont.T), reverse=True)
    return g.T.reshape(-1)


class OptLayerPolicy(DirichletPolicy):
    """Dirichlet proposal, executed action the projection of ``sign * z`` (module doc).

    Args: ``sign`` -1 (the original's qpth call) or +1 (OptLayer as meant); ``row_scale`` (m,)
    or None: the cost's rows are ``row_scale * (A, b)`` (the stored raw rows; None: the env's);
    ``margin``: facets moved inward by this much for the projection (0: exact). A failed solve
    (status != 0) executes the polytope's Chebyshev centre (static rows) or the solver's last
    iterate, counted in ``policy/qp_failed``. Metrics: ``policy/proposal_cost``,
    ``policy/violation`` (the executed action's summed violation on the env's rows),
    ``policy/moved`` ``||a - z||``, ``policy/alignment`` (cosine of ``a - 1/n`` and ``z - 1/n``).
    """

    def __init__(self, env, env_params, *, sign: float = 1.0, row_scale=None, margin: float = 0.0, **kwargs):
        if sign not in (1.0, -1.0, 1, -1):
            raise ValueError(f"OptLayerPolicy sign must be +1 or -1, got {sign!r}")
        super().__init__(env, env_params, **kwargs)
        self.sign = float(sign)
        self.row_scale = None if row_scale is None else jnp.asarray(row_scale, jnp.float32)
        # Its ``project`` (margin, Chebyshev-centre fallback) on this env's constraints.
        self._projector = ProjectionPolicy(env, env_params, margin=margin)

    def _log_prob(self, dist, x):
        return dirichlet_log_prob(dist, x)

    def _cost_rows(self, A, b):
        if self.row_scale is None:
            return A, b
        return A * self.row_scale[:, None], b * self.row_scale

    def act(self, params, key, obs, env_state=None, env_params=None) -> Act:
        time = getattr(env_state, "time", None)
        if time is None:
            raise ValueError("OptLayerPolicy needs env_state.time (episode starts for the cost-to-go)")
        dist = self._dist(params, obs)
        z = dist.sample(seed=key)
        proj = self._projector.project(self.sign * z, env_state, env_params)
        a = proj.x
        A_env, b_env = self._constraints(env_state, env_params)
        A, b = self._cost_rows(A_env, b_env)
        cost = proposal_cost(z, A, b)
        n = self.n
        dz, da = z - 1.0 / n, a - 1.0 / n
        align = jnp.sum(dz * da) / (jnp.linalg.norm(dz) * jnp.linalg.norm(da) + 1e-12)
        extras = {"z": z, "logp_z": self._log_prob(dist, z), "cost": cost, "first": jnp.asarray(time) == 0}
        metrics = {"proposal_cost": cost, "violation": jnp.sum(jnp.maximum(A_env @ a - b_env, 0.0)), "moved": jnp.linalg.norm(a - z), "alignment": align,
                   "qp_failed": (proj.status != 0).astype(jnp.float32)}
        return Act(a, self._log_prob(dist, a), self.value(params, obs), extras, metrics)

    def evaluate(self, params, key, obs, action, extras) -> Evaluation:
        dist = self._dist(params, obs)
        return Evaluation(self._log_prob(dist, action), dist.entropy(), self.value(params, obs))

    def greedy(self, params, obs, env_state=None, env_params=None):
        return self._projector.project(self.sign * self._dist(params, obs).mean(), env_state, env_params).x


class OptLayerCPC(MinibatchUpdate):
    """The CPC update (module doc): two optimizer steps per minibatch, on the proposal with
    reward-minus-cost advantages, then on the executed action with reward advantages.
    Needs :class:`OptLayerPolicy`'s extras (``z``, ``logp_z``, ``cost``, ``first``)."""

    def __call__(self, engine, ustate, batch, stats, key):
        ex = batch.extras
        if not isinstance(ex, dict) or not {"z", "logp_z", "cost", "first"} <= set(ex):
            raise ValueError("OptLayerCPC needs OptLayerPolicy's extras (z, logp_z, cost, first)")
        cfg = engine.config
        g = cost_to_go(ex["cost"], ex["first"], cfg.num_envs, cfg.num_steps, cfg.gamma * cfg.gae_lambda)
        batch = batch._replace(extras={**ex, "cost_to_go": g})
        ustate, metrics = super().__call__(engine, ustate, batch, stats, key)
        return ustate, {**metrics, "proposal_cost_to_go": g.mean()}

    def _loss(self, engine, params, key, mb, action, old_log_prob, advantage, target):
        cfg = engine.config
        ev = evaluate(engine, params, key, mb._replace(action=action))
        return ppo_loss(ev.log_prob, old_log_prob, advantage, ev.value, mb.value, target, ev.entropy,
                        clip_eps=cfg.clip_eps, clip_value=cfg.clip_value, vf_coef=cfg.vf_coef, ent_coef=cfg.ent_coef,
                        normalize_advantages=cfg.normalize_advantages, value_loss_scale=cfg.value_loss_scale)

    def _step(self, engine, u, loss_fn):
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(u.params)
        updates, opt_state = engine.optimizer.update(grads, u.opt_state, u.params)
        new = u.replace(params=optax.apply_updates(u.params, updates), opt_state=opt_state)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        u = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, u)
        return u, {**aux, "loss": loss, "grad_norm": grad_norm}, 1.0 - finite

    def minibatch_step(self, engine, ustate, key, mb):
        k1, k2 = jax.random.split(key)
        ex = mb.extras
        g = ex["cost_to_go"]
        ustate, aux1, bad1 = self._step(engine, ustate, lambda p: self._loss(
            engine, p, k1, mb, ex["z"], ex["logp_z"], mb.advantage - g, mb.target - g))
        ustate, aux2, bad2 = self._step(engine, ustate, lambda p: self._loss(
            engine, p, k2, mb, mb.action, mb.log_prob, mb.advantage, mb.target))
        return ustate, {**{f"proposal/{k}": v for k, v in aux1.items()}, **aux2, "nonfinite": bad1 + bad2}
