"""Baselines of PASPO's comparison (Winkel et al., NeurIPS 2024, Sec. 5), on the same engine.

- :class:`DirichletPolicy`: PPO with a Dirichlet over the simplex and **no** constraint
  handling; the env executes the action as it is and reports ``info["violation"]``.
- :class:`LagrangianPolicy`: the Dirichlet policy trained on the Lagrangian
  ``E[r] - lambda (E[c] - d)`` with cost ``c = sum_j max((A a - b)_j, 0)`` (the summed
  violation, as ``info["violation"]``) and a learned multiplier ``lambda >= 0``.
- :class:`ProjectionPolicy`: OptLayer-like: a Gaussian (or Dirichlet) proposal ``z`` is
  projected onto the polytope, ``a = argmin ||a - z||^2 s.t. A a <= b, sum(a) = 1, a >= 0``,
  by an exact active-set QP (:func:`project_polytope`); the executed action never violates.

Networks match PASPO's (encoder 32-32 ReLU, a linear output layer; a separate 32-unit critic).

How the Lagrangian sits on the engine: the policy sets ``uses_costs = True``, so the engine
learns a cost critic on the env's ``info["cost"]`` (the summed violation, per step) and hands
``extra_loss`` the cost GAE advantages ``Batch.cost_advantage`` (credit for later violations
through the state included, e.g. in ``PASPO-capacity-7``) and the step costs ``Batch.cost``:

* cost advantage ``A^c_t``: the cost GAE, centred and scaled over the minibatch;
* policy term ``lambda * mean(max(ratio A^c, clip(ratio, 1 +- eps) A^c))`` (the pessimistic
  clipped surrogate of the cost, minimised), with ``lambda`` held fixed in it;
* multiplier term ``-lambda * (mean c - cost_limit)`` with the policy held fixed, so
  gradient descent on the total loss *raises* ``lambda`` while the mean step cost exceeds the
  limit (dual ascent). ``lambda = softplus(rho)`` with ``rho`` a parameter trained by the
  engine's optimizer (so its step size is the PPO learning rate, after global-norm clipping).

Projection baseline and the policy gradient: the log-probability is that of the proposal
``z`` (stored in ``extras``), the projection is treated as part of the environment (as
OptLayer's projection layer in a score-function method); the stored action is the projected
one.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from envs_jax.allocation import violation as summed_violation
from paspo_jax.bounds import has_static_constraints
from paspo_jax.projection import ProjectionResult, project_polytope
from ppo_jax.nn import torch_mlp
from ppo_jax.policy import Act, Batch, Evaluation, Policy

__all__ = [
    "DirichletPolicy",
    "LagrangianPolicy",
    "ProjectionPolicy",
    "ProjectionResult",
    "project_polytope",
]


class _AllocationBaseline(Policy):
    """Encoder 32-32 ReLU -> linear ``out`` units; separate 32-unit critic (PASPO's sizes)."""

    def __init__(self, env, env_params, out: int, *, encoder_hidden=(32, 32), critic_hidden=(32,),
                 out_scale: float = 0.01, max_log_concentration: float = 10.0):
        from envs_jax.contracts import LinearConstraints, require

        n = require(env, LinearConstraints, who=type(self).__name__).num_entities
        if not isinstance(n, int) or n < 2:
            raise ValueError(f"{type(self).__name__} needs an allocation env (num_entities, constraints); "
                             f"got {type(env).__name__}")
        self.env, self.env_params, self.n = env, env_params, n
        self.actor = torch_mlp(encoder_hidden, out, out_scale=out_scale)
        self.critic = torch_mlp(critic_hidden, 1)
        self.max_log_concentration = max_log_concentration

    def init(self, key, obs, env_state=None, env_params=None):
        k_actor, k_critic = jax.random.split(key)
        x = jnp.ravel(obs).astype(jnp.float32)
        return {"actor": self.actor.init(k_actor, x), "critic": self.critic.init(k_critic, x)}

    def _out(self, params, obs):
        return self.actor.apply(params["actor"], jnp.ravel(obs).astype(jnp.float32))

    def value(self, params, obs):
        return self.critic.apply(params["critic"], jnp.ravel(obs).astype(jnp.float32))[0]

    def _constraints(self, env_state, env_params):
        A, b = self.env.constraints(env_state, self.env_params if env_params is None else env_params)
        return jnp.asarray(A, jnp.float32), jnp.asarray(b, jnp.float32)


class DirichletPolicy(_AllocationBaseline):
    """Dirichlet PPO without constraint handling; concentrations ``exp(output) + 1e-6``.

    Samples are floored at ``a_eps`` and renormalised (a Dirichlet sample can round to an
    exact 0 in float32, where the log-density is -inf); the log-prob is of that stored,
    floored action, in ``act`` and ``evaluate`` alike. Entropy exact; greedy = the mean.
    The action is executed as it is; ``act``'s metric ``policy/violation`` is the summed
    violation (the env reports the same in ``info``).
    """

    def __init__(self, env, env_params, *, a_eps: float = 1e-6, **kwargs):
        n = getattr(env, "num_entities", 2)
        super().__init__(env, env_params, n, **kwargs)
        self.a_eps = a_eps

    def _dist(self, params, obs):
        c = self.max_log_concentration
        conc = jnp.exp(jnp.clip(self._out(params, obs), -c, c)) + 1e-6
        return distrax.Dirichlet(conc)

    def _floor(self, a):
        a = jnp.maximum(a, self.a_eps)
        return a / jnp.sum(a)

    def act(self, params, key, obs, env_state=None, env_params=None) -> Act:
        dist = self._dist(params, obs)
        a = self._floor(dist.sample(seed=key))
        A, b = self._constraints(env_state, env_params)
        cost = summed_violation(A, b, a)
        return Act(a, dist.log_prob(a), self.value(params, obs), {"cost": cost}, {"violation": cost})

    def evaluate(self, params, key, obs, action, extras) -> Evaluation:
        dist = self._dist(params, obs)
        return Evaluation(dist.log_prob(action), dist.entropy(), self.value(params, obs))

    def greedy(self, params, obs, env_state=None, env_params=None):
        return self._dist(params, obs).mean()


class LagrangianPolicy(DirichletPolicy):
    """Dirichlet PPO on the Lagrangian with a learned multiplier (module docstring).

    Args (beyond :class:`DirichletPolicy`'s):
      cost_limit: ``d``, the allowed mean summed violation per step (0: hard constraints).
      lagrange_init: initial ``lambda`` (> 0); ``rho = softplus^-1(lagrange_init)``.
      clip_eps: the PPO clip of the cost surrogate (pass the engine's ``clip_eps``; None: unclipped).
    """

    uses_costs = True  # the engine builds a cost critic and fills Batch.cost_advantage

    def __init__(self, env, env_params, *, cost_limit: float = 0.0, lagrange_init: float = 1.0,
                 clip_eps: float | None = 0.3, **kwargs):
        super().__init__(env, env_params, **kwargs)
        if not lagrange_init > 0:
            raise ValueError(f"lagrange_init must be > 0, got {lagrange_init}")
        if cost_limit < 0:
            raise ValueError(f"cost_limit must be >= 0, got {cost_limit}")
        self.cost_limit, self.lagrange_init, self.clip_eps = cost_limit, lagrange_init, clip_eps

    def init(self, key, obs, env_state=None, env_params=None):
        params = super().init(key, obs, env_state, env_params)
        params["rho"] = jnp.log(jnp.expm1(jnp.asarray(self.lagrange_init, jnp.float32)))
        return params

    @staticmethod
    def multiplier(params) -> jax.Array:
        return jax.nn.softplus(params["rho"])

    def extra_loss(self, params, key, batch: Batch):
        lam = self.multiplier(params)
        cost = batch.cost.sum(-1)  # (B,) step cost (summed over the env's cost entries)
        adv_c = batch.cost_advantage.sum(-1)  # (B,) cost GAE from the engine's cost critic
        ev = jax.vmap(self.evaluate, in_axes=(None, None, 0, 0, 0))(params, key, batch.obs, batch.action, batch.extras)
        ratio = jnp.exp(ev.log_prob - batch.log_prob)
        adv_c = (adv_c - adv_c.mean()) / (adv_c.std() + 1e-8)
        if self.clip_eps is None:
            surrogate = (ratio * adv_c).mean()
        else:
            clipped = jnp.clip(ratio, 1.0 - self.clip_eps, 1.0 + self.clip_eps) * adv_c
            surrogate = jnp.maximum(ratio * adv_c, clipped).mean()
        policy_term = jax.lax.stop_gradient(lam) * surrogate
        multiplier_term = -lam * jax.lax.stop_gradient(cost.mean() - self.cost_limit)
        metrics = {"lagrange_multiplier": lam, "cost": cost.mean(), "cost_surrogate": surrogate}
        return policy_term + multiplier_term, metrics


class ProjectionPolicy(_AllocationBaseline):
    """OptLayer-like baseline: proposal ``z`` (Gaussian or Dirichlet), executed action its
    exact projection onto the polytope (:func:`project_polytope`, run in the policy's float32).

    ``dist="gaussian"``: ``z ~ N(1/n + output, diag(exp(log_std)^2))`` with a state-independent
    ``log_std`` (init ``log(init_std)``); ``dist="dirichlet"``: ``z ~ Dirichlet(exp(output))``.
    ``extras["z"]`` keeps the proposal; log-prob and (exact) entropy are the proposal's.
    Greedy: the projection of the proposal's mean. Metric ``policy/moved``: ``||a - z||``.

    ``margin``: the projection is onto the polytope with every facet moved inward by
    ``margin`` within the hyperplane ``sum(a) = 1`` (rows parallel to the ones vector, which
    are tight everywhere, stay put), so float32 round-off at vertices with many active rows
    does not show up as a violation above the engine's 1e-6 threshold. 0 = the exact
    projection onto the polytope itself.

    A solve that fails (status != 0: a near-singular float32 active set, or a row violated by
    more than 1e-6) executes the Chebyshev centre of the polytope (static constraints; with
    state-dependent ones the solver's last iterate) and is counted in ``policy/qp_failed``
    (rates: ``benchmarks/RESULTS_paspo.md``, "Numerics of the policy").
    """

    def __init__(self, env, env_params, *, dist: str = "gaussian", init_std: float = 0.1,
                 maxiter: int | None = None, margin: float = 1e-5, **kwargs):
        if dist not in ("gaussian", "dirichlet"):
            raise ValueError(f"projection dist must be 'gaussian' or 'dirichlet', got {dist!r}")
        if not init_std > 0:
            raise ValueError(f"init_std must be > 0, got {init_std}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        n = getattr(env, "num_entities", 2)
        super().__init__(env, env_params, n, **kwargs)
        self.dist, self.init_std, self.maxiter, self.margin = dist, init_std, maxiter, margin
        self._fallback = None
        if has_static_constraints(env):
            from paspo_jax.polytope import Polytope

            A, b = env.constraints(None, env_params)
            centre, _ = Polytope(np.asarray(A, np.float64), np.asarray(b, np.float64),
                                 name=getattr(env, "name", "env"), fast_path=False).chebyshev_center()
            self._fallback = jnp.asarray(centre, jnp.float32)

    def init(self, key, obs, env_state=None, env_params=None):
        params = super().init(key, obs, env_state, env_params)
        if self.dist == "gaussian":
            params["log_std"] = jnp.full((self.n,), np.log(self.init_std), jnp.float32)
        return params

    def _proposal(self, params, obs):
        out = self._out(params, obs)
        if self.dist == "gaussian":
            return distrax.MultivariateNormalDiag(1.0 / self.n + out, jnp.exp(params["log_std"]))
        c = self.max_log_concentration
        return distrax.Dirichlet(jnp.exp(jnp.clip(out, -c, c)) + 1e-6)

    def project(self, z, env_state=None, env_params=None) -> ProjectionResult:
        A, b = self._constraints(env_state, env_params)
        # Distance within the simplex's hyperplane {sum(a) = 1}: the norm of each row's part
        # orthogonal to the ones vector. A row parallel to it (synth7's last row, sum(a) >= 1)
        # is tight everywhere and must not move, or the polytope becomes empty.
        in_plane = jnp.linalg.norm(A - jnp.mean(A, axis=1, keepdims=True), axis=1)
        res = project_polytope(z, A, b - self.margin * in_plane, maxiter=self.maxiter)
        if self._fallback is None:
            return res
        # A failed float32 solve executes the polytope's Chebyshev centre; counted in qp_failed.
        return res._replace(x=jnp.where(res.status == 0, res.x, self._fallback))

    def act(self, params, key, obs, env_state=None, env_params=None) -> Act:
        dist = self._proposal(params, obs)
        z = dist.sample(seed=key)
        if self.dist == "dirichlet":
            z = jnp.maximum(z, 1e-6)
            z = z / z.sum()
        proj = self.project(z, env_state, env_params)
        metrics = {"moved": jnp.linalg.norm(proj.x - z), "qp_failed": (proj.status != 0).astype(jnp.float32),
                   "qp_iterations": proj.nit.astype(jnp.float32)}
        return Act(proj.x, dist.log_prob(z), self.value(params, obs), {"z": z}, metrics)

    def evaluate(self, params, key, obs, action, extras) -> Evaluation:
        dist = self._proposal(params, obs)
        return Evaluation(dist.log_prob(extras["z"]), dist.entropy(), self.value(params, obs))

    def greedy(self, params, obs, env_state=None, env_params=None):
        return self.project(self._proposal(params, obs).mean(), env_state, env_params).x
