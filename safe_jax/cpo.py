"""CPO: Constrained Policy Optimization (Achiam et al. 2017), for any policy.

Per update, on the whole batch, with ``theta`` the policy's parameters flattened:

* ``g = grad mean_B r A_R`` (``A_R`` standardised over the batch), ``b = grad mean_B r A^C``
  (``A^C`` the cost GAE summed over the C costs -- one constraint on the summed cost -- and
  centred), both at ``r = 1``; ``c = J_C - d`` (the rollout's summed mean episode cost return
  minus the limit);
* ``H = F + damping I`` with ``F`` the empirical Fisher ``mean_B grad log pi grad log pi^T``
  (the Hessian at theta_old of the KL estimate ``mean_B (r - 1 - log r)``), applied by
  jvp/vjp; ``H^-1 g`` and ``H^-1 b`` by ``cg_iters`` conjugate-gradient iterations;
* the step solves ``max_x g.x  s.t.  c + b.x <= 0,  x.H x / 2 <= delta`` through its dual in
  closed form (:func:`cpo_direction`: the paper's appendix and its reference code's cases),
  and, when no x satisfies both (``c > 0`` and ``c^2 / s > 2 delta``), the recovery step
  ``x = -sqrt(2 delta / s) H^-1 b`` (the paper's recovery rule);
* backtracking line search ``theta + 0.8^k x``, ``k < line_search_steps``: the first ``k`` with
  a finite loss, KL estimate ``<= target_kl``, cost-surrogate increase ``<= max(-c, 0)`` and,
  outside the recovery cases, no loss of reward surrogate is taken, else no step (OmniSafe's
  acceptance rule);
* then the critics regress on their targets (``MinibatchUpdate.critic_epochs``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ppo_jax.update import MinibatchUpdate
from safe_jax.common import evaluate, num_costs

EPS = 1e-8


def conjugate_gradient(mvp, rhs, iters: int, residual_tol: float = 1e-10):
    """``iters`` CG iterations on ``mvp(x) = rhs`` from x = 0 (stops early at the tolerance)."""

    def body(carry, _):
        x, r, p, rr = carry
        done = rr < residual_tol
        Ap = mvp(p)
        alpha = rr / (p @ Ap + EPS)
        x_n = x + alpha * p
        r_n = r - alpha * Ap
        rr_n = r_n @ r_n
        p_n = r_n + (rr_n / (rr + EPS)) * p
        keep = lambda new, old: jnp.where(done, old, new)
        return (keep(x_n, x), keep(r_n, r), keep(p_n, p), keep(rr_n, rr)), None

    init = (jnp.zeros_like(rhs), rhs, rhs, rhs @ rhs)
    (x, *_), _ = jax.lax.scan(body, init, None, length=iters)
    return x


def cpo_direction(Hg, Hb, q, r, s, c, delta):
    """The CPO step from ``Hg = H^-1 g``, ``Hb = H^-1 b``, ``q = g.H^-1 g``, ``r = g.H^-1 b``,
    ``s = b.H^-1 b``, ``c`` (constraint value at x = 0) and ``delta`` (trust region
    ``x.Hx/2 <= delta``) -> ``(x, case, lam, nu)``.

    Cases (the reference code's numbering): 4 ``b ~ 0`` and ``c < 0``, 3 the whole trust region
    is feasible -> the TRPO step ``sqrt(2 delta / q) H^-1 g``; 2 (``c < 0``) / 1 (``c >= 0``) the
    constraint cuts the region -> ``x = (H^-1 g - nu H^-1 b) / lam`` with the dual's optimum
    ``lam`` (the better of the two pieces ``lam_a``, ``lam_b``) and ``nu = max(lam c + r, 0) / s`` (stationarity of
    the dual in nu; references that form g from the *loss* gradient write ``lam c - r``);
    0 infeasible -> recovery ``x = -sqrt(2 delta / s) H^-1 b``.
    """
    # The reference code's case formulas use r_l = (gradient of the loss, -g).H^-1 b = -r.
    r_l = -r
    A = q - r**2 / (s + EPS)
    B = 2 * delta - c**2 / (s + EPS)
    tiny_b = s <= 1e-12
    case = jnp.where(tiny_b & (c < 0), 4,
                     jnp.where((c < 0) & (B < 0), 3,
                               jnp.where((c < 0) & (B >= 0), 2, jnp.where((c >= 0) & (B >= 0), 1, 0))))
    rc = r_l / jnp.where(c == 0, EPS, c)
    inf = jnp.inf
    # Intervals of lam on which the dual's two pieces live (the reference code's LA, LB).
    la_lo, la_hi = jnp.where(c < 0, 0.0, rc), jnp.where(c < 0, rc, inf)
    lb_lo, lb_hi = jnp.where(c < 0, rc, 0.0), jnp.where(c < 0, inf, rc)
    proj = lambda x, lo, hi: jnp.maximum(lo, jnp.minimum(hi, x))
    lam_a = proj(jnp.sqrt(jnp.maximum(A, 0.0) / jnp.maximum(B, EPS)), la_lo, la_hi)
    lam_b = proj(jnp.sqrt(q / (2 * delta)), lb_lo, lb_hi)
    f_a = -0.5 * (A / (lam_a + EPS) + B * lam_a) - r_l * c / (s + EPS)
    f_b = -0.5 * (q / (lam_b + EPS) + 2 * delta * lam_b)
    lam_12 = jnp.where(f_a >= f_b, lam_a, lam_b)
    nu_12 = jnp.maximum(lam_12 * c - r_l, 0.0) / (s + EPS)
    lam_34 = jnp.sqrt(q / (2 * delta))
    trpo = Hg / (lam_34 + EPS)
    cut = (Hg - nu_12 * Hb) / (lam_12 + EPS)
    recovery = -jnp.sqrt(2 * delta / (s + EPS)) * Hb
    x = jnp.where(case >= 3, trpo, jnp.where(case >= 1, cut, recovery))
    lam = jnp.where(case >= 3, lam_34, jnp.where(case >= 1, lam_12, 0.0))
    nu = jnp.where(case >= 3, 0.0, jnp.where(case >= 1, nu_12, jnp.sqrt(2 * delta / (s + EPS))))
    return x, case, lam, nu


class CPO(MinibatchUpdate):
    needs_cost_critic = True

    def __init__(self, cost_limit: float = 0.0, target_kl: float = 0.01, cg_iters: int = 15, cg_damping: float = 0.1,
                 line_search_steps: int = 15, backtrack: float = 0.8):
        if target_kl <= 0 or cg_iters < 1 or cg_damping < 0 or line_search_steps < 1 or not 0 < backtrack < 1:
            raise ValueError("CPO needs target_kl > 0, cg_iters >= 1, cg_damping >= 0, line_search_steps >= 1, 0 < backtrack < 1")
        if cost_limit < 0:
            raise ValueError(f"CPO cost_limit must be >= 0, got {cost_limit}")
        self.cost_limit, self.target_kl, self.cg_iters, self.cg_damping = cost_limit, target_kl, cg_iters, cg_damping
        self.line_search_steps, self.backtrack = line_search_steps, backtrack

    def init(self, engine, params, cost_params):
        num_costs(engine)
        return ()

    def policy_step(self, engine, params, batch, stats, key):
        """The CPO step on the policy parameters -> (new params, metrics)."""
        flat, unravel = ravel_pytree(params)
        adv_r = batch.advantage
        adv_r = (adv_r - adv_r.mean()) / (adv_r.std() + 1e-8)
        adv_c = jnp.asarray(batch.cost_advantage, jnp.float32).sum(-1)
        adv_c = adv_c - adv_c.mean()
        old = batch.log_prob
        B = old.shape[0]

        def logp(theta):
            return evaluate(engine, unravel(theta), key, batch).log_prob

        def surrogates(theta):
            ratio = jnp.exp(logp(theta) - old)
            return jnp.mean(ratio * adv_r), jnp.mean(ratio * adv_c), jnp.mean(ratio - 1.0 - jnp.log(ratio))

        g = jax.grad(lambda t: surrogates(t)[0])(flat)
        b = jax.grad(lambda t: surrogates(t)[1])(flat)
        _, vjp = jax.vjp(logp, flat)

        def fvp(v):
            u = jax.jvp(logp, (flat,), (v,))[1]
            return vjp(u / B)[0] + self.cg_damping * v

        Hg = conjugate_gradient(fvp, g, self.cg_iters)
        Hb = conjugate_gradient(fvp, b, self.cg_iters)
        q, r, s = g @ Hg, g @ Hb, b @ Hb
        c = jnp.sum(stats["cost_return"]) - self.cost_limit * stats["cost_return"].shape[0]
        x, case, lam, nu = cpo_direction(Hg, Hb, q, r, s, c, self.target_kl)

        base_r, base_c, _ = surrogates(flat)
        fracs = self.backtrack ** jnp.arange(self.line_search_steps, dtype=jnp.float32)
        cand = jax.lax.map(lambda f: jnp.stack(surrogates(flat + f * x)), fracs)  # (K, 3)
        improve = cand[:, 0] - base_r
        cost_diff = cand[:, 1] - base_c
        ok = (jnp.all(jnp.isfinite(cand), axis=1) & ((case <= 1) | (improve >= 0))
              & (cost_diff <= jnp.maximum(-c, 0.0)) & (cand[:, 2] <= self.target_kl))
        first = jnp.argmax(ok)
        accepted = ok.any() & jnp.all(jnp.isfinite(x))
        frac = jnp.where(accepted, fracs[first], 0.0)
        new = flat + frac * jnp.where(jnp.isfinite(x), x, 0.0)
        metrics = {"cpo_case": case.astype(jnp.float32), "cpo_lambda": lam, "cpo_nu": nu, "cpo_step_frac": frac,
                   "cpo_kl": jnp.where(accepted, cand[first, 2], 0.0), "cpo_c": c}
        return unravel(new), metrics

    def __call__(self, engine, ustate, batch, stats, key):
        k_pol, k_critic = jax.random.split(key)
        params, metrics = self.policy_step(engine, ustate.params, batch, stats, k_pol)
        ustate = ustate.replace(params=params)
        ustate, aux = self.critic_epochs(engine, ustate, batch, k_critic)
        return ustate, {**metrics, "value_loss": aux["value_loss"].mean(), "nonfinite": aux["nonfinite"].sum()}
