"""The objectives for the memory precisions ``sigma`` and their stochastic gradients.

Notation: a trajectory ``tau = (s_0, zeta_0, a_0, r_0, ..., s_{T_tau-1}, zeta_{T_tau-1}, a_{T_tau-1}, r_{T_tau-1})``
of length ``T_tau`` under soft Thompson sampling ``pi(a|s,zeta)`` (see ``memory.py``);
``KL_sa = KL(N(q_sa, sigma_sa^2) || N(q_sa, sigma_base^2))``; ``KL(s) = sum_a KL_sa``;
``H_t = H(pi(.|s_t, zeta_t))``; ``lambda`` the price of precision; ``r_t`` the task's reward.
Equation numbers refer to Acerbi's note "Dynamical resource allocation in reinforcement
learning as inference" (2022; ``shared/reference/seeds/002_*.txt``).

1. ``"dra"``: the original DRA objective (Patel, Acerbi & Pouget 2020), a
   *storage* cost paid once for the whole table::

       F_DRA(sigma) = E_tau[ sum_t r_t ] - lambda * sum_{s,a} KL_sa

2. ``"elbo_access"``: note Eq. 8 (the ELBO of RL-as-inference with a fresh memory read at
   every step, rewards in units of lambda): reward, the KL paid at every *visited* state
   (access cost) and the entropy of the action distribution::

       F_8(sigma) = E_tau[ sum_t ( r_t - lambda * KL(s_t) + lambda * H_t ) ]

3. ``"elbo_storage"``: note Eq. 10, **the note's form, for a fixed horizon T**. Eq. 9 (every
   step reads the whole store, so the ELBO pays ``T * KL``) is rescaled by ``lambda/T``, and
   the rescaled reward ``r~ = (lambda/T) r_inference`` is the task's reward ``r_t``; the
   result is the original DRA objective plus an action-entropy term weighted ``lambda/T``
   (the note: "for a fixed horizon T, Eq. 10 is equivalent to the original DRA objective
   plus an additional action entropy term")::

       F_10(sigma) = E_tau[ sum_t r_t + (lambda/T) sum_t H_t ] - lambda * sum_{s,a} KL_sa
                   = F_DRA(sigma) + (lambda/T) E_tau[ sum_t H_t ]

   ``T`` is a constant (``horizon_T``; the trainer's default is the task's horizon, see
   ``trainer.Config.horizon_T``), the same for every trajectory.

4. ``"elbo_storage_rate"``: the variable-horizon variant (the note's footnote 3: with a
   variable T, Eq. 10 is no longer the DRA objective but "a cost for memory per unit
   time"): Eq. 9 with rewards in units of lambda, divided by *each trajectory's own*
   length ``T_tau``, i.e. a reward rate against a storage price per step::

       F_rate(sigma) = E_tau[ (1/T_tau) sum_t r_t + (lambda/T_tau) sum_t H_t ] - lambda * sum_{s,a} KL_sa

   Here the reward is divided by ``T_tau`` (20-100 on the maze) against an unchanged storage
   price, so the price is in effect ``lambda * T``: at lambda = 0.1 on the maze it gives all
   memory back (benchmarks/RESULTS_dra.md). This was this module's ``"elbo_storage"``
   before the note was available.

Gradients (``d/d sigma``). The trajectory depends on ``sigma`` only through the choices
given ``zeta``; with ``e_t = d log pi(a_t|s_t,zeta_t)/d sigma`` (``memory.score_sigma``)::

    d/dsigma E[ G(tau; sigma) ] = E[ G * sum_t e_t ] + E[ dG/dsigma |_(tau, zeta fixed) ]

The first (score-function) part is estimated with one of the original's three signals
``Psi_t`` (``baseline``):

* ``"R"``: the whole trajectory's objective value ``G`` times ``sum_t e_t`` (unbiased);
* ``"Q"``: ``Psi_t = q(s_t, a_t)`` times ``e_t`` (actor-critic, the learned ``q`` as critic);
* ``"A"``: ``Psi_t = q(s_t, a_t) - mean_a q(s_t, a)`` (advantage; the original's default).

With ``"Q"``/``"A"`` the critic ``q`` values environment reward only: the effect of a choice
on *future* access costs and entropies (objectives 2-4) is left out, as the original
leaves future costs out of its critic. The pathwise part is exact: ``-lambda * dKL(s_t)``
at every visit (objective 2, ``memory.kl_gaussian_grad``), ``w * dH_t`` (objectives 2-4,
``memory.entropy_grad_sigma``); the storage KL's closed-form gradient
``lambda * (sigma/sigma_base^2 - 1/sigma)`` (objectives 1, 3, 4) is added once per update.

Every per-trajectory factor (``G`` for 'R', ``1/T_tau`` for objective 4) is a scalar per
trajectory, so a gradient over ``N`` trajectories is one table::

    g = (1/N) sum_n sum_t [ c_n e_nt Psi_nt + w_n dH_nt ] - a lambda (1/N) sum_n sum_t dKL(s_nt)

with ``(c_n, w_n, a) = gradient_weights(...)``. The agent computes the scalars in a first
pass over the trajectories and sums the table in a second pass over the same trajectories
(same random keys), which keeps one table per agent instead of one per trajectory.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from dra_jax import memory

OBJECTIVES = ("dra", "elbo_access", "elbo_storage", "elbo_storage_rate")
BASELINES = ("A", "Q", "R")

# Which objectives pay the storage cost (KL of the whole table, once per update).
STORAGE_COST = {"dra": True, "elbo_access": False, "elbo_storage": True, "elbo_storage_rate": True}


class RolloutStats(NamedTuple):
    """Per-trajectory sums for ``N`` trajectories (leading axis ``N``), plus visits.

    ret:       (N,) sum_t r_t (undiscounted)
    ent:       (N,) sum_t H_t
    kl_visits: (N,) sum_t KL(s_t)  (the access cost before lambda)
    length:    (N,) T
    visits:    (S,) visits of each state, summed over the N trajectories
    """

    ret: jax.Array
    ent: jax.Array
    kl_visits: jax.Array
    length: jax.Array
    visits: jax.Array


def check_names(objective: str, baseline: str) -> None:
    """One clear error for an unknown objective or baseline (outside jit)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {OBJECTIVES}")
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; choose one of {BASELINES}")


def objective_id(objective) -> jax.Array:
    """Name -> int32 index into ``OBJECTIVES`` (arrays pass through, for vmapped sweeps)."""
    if isinstance(objective, str):
        check_names(objective, "A")
        return jnp.asarray(OBJECTIVES.index(objective), jnp.int32)
    return jnp.asarray(objective, jnp.int32)


def baseline_id(baseline) -> jax.Array:
    """Name -> int32 index into ``BASELINES`` (arrays pass through)."""
    if isinstance(baseline, str):
        check_names("dra", baseline)
        return jnp.asarray(BASELINES.index(baseline), jnp.int32)
    return jnp.asarray(baseline, jnp.int32)


# The objective and the baseline are traced integers (index into OBJECTIVES / BASELINES), so
# one compiled program serves all nine combinations and a sweep over them can be vmapped.
def psi(baseline: jax.Array, q_s: jax.Array, action: jax.Array) -> jax.Array:
    """The per-step signal ``Psi_t`` multiplying the score: 'A' advantage, 'Q' value,
    'R' 1 (the trajectory's value multiplies the summed score later)."""
    qa = q_s[action]
    return jnp.stack([qa - jnp.mean(q_s), qa, jnp.ones_like(qa)])[baseline]


def _fixed_T(horizon_T: float) -> float:
    """Eq. 10's fixed horizon; one clear error when it is missing (a static Python float)."""
    if not horizon_T > 0:
        raise ValueError(
            f"horizon_T must be > 0 (the fixed T of note Eq. 10), got {horizon_T!r}; the trainer "
            "sets it from Config.horizon_T or the task's horizon")
    return float(horizon_T)


def _own_length(stats: RolloutStats) -> jax.Array:
    return jnp.maximum(stats.length, 1).astype(jnp.float32)


def _values(stats: RolloutStats, lmbda, storage_kl, horizon_T: float) -> jax.Array:
    """Each trajectory's value under objectives 1-4 (see the module docstring), ``(4, N)``."""
    T = _fixed_T(horizon_T)
    T_own = _own_length(stats)
    return jnp.stack([
        stats.ret - lmbda * storage_kl,
        stats.ret - lmbda * stats.kl_visits + lmbda * stats.ent,
        stats.ret + (lmbda / T) * stats.ent - lmbda * storage_kl,
        (stats.ret + lmbda * stats.ent) / T_own - lmbda * storage_kl,
    ])


def trajectory_value(objective: jax.Array, stats: RolloutStats, lmbda, storage_kl, horizon_T: float):
    """Each trajectory's estimate ``(N,)`` of the objective (index into ``OBJECTIVES``);
    ``storage_kl = sum_{s,a} KL_sa`` of the current table; ``horizon_T`` Eq. 10's fixed T (> 0)."""
    return _values(stats, lmbda, storage_kl, horizon_T)[objective_id(objective)]


def gradient_weights(objective: jax.Array, baseline: jax.Array, stats: RolloutStats, lmbda,
                     horizon_T: float):
    """Per-trajectory weights of the gradient table (see the module docstring):

    * ``c`` (N,): multiplies ``sum_t e_t Psi_t`` ('R': the trajectory's value ``G``, with
      ``Psi = 1``; 'A'/'Q': 1, or ``1/T_tau`` for objective 4);
    * ``w`` (N,): multiplies the pathwise entropy gradient ``sum_t dH_t`` (objectives 1-4:
      0, lambda, lambda/T, lambda/T_tau);
    * ``a`` (): multiplies ``-lambda sum_t dKL(s_t)`` (1 for Eq. 8's access cost, else 0).
    """
    objective, baseline = objective_id(objective), baseline_id(baseline)
    is_R = baseline == BASELINES.index("R")
    T = _fixed_T(horizon_T)
    T_own = _own_length(stats)
    one = jnp.ones_like(T_own)
    # Value whose score-function gradient is taken when baseline == 'R' (the storage KL
    # does not depend on the trajectory and E[sum_t e_t] = 0, so it is left out).
    G = jnp.stack([
        stats.ret,
        stats.ret - lmbda * stats.kl_visits + lmbda * stats.ent,
        stats.ret + (lmbda / T) * stats.ent,
        (stats.ret + lmbda * stats.ent) / T_own,
    ])[objective]
    critic_scale = jnp.stack([one, one, one, 1.0 / T_own])[objective]
    c = jnp.where(is_R, G, critic_scale)
    w = jnp.stack([0.0 * one, lmbda * one, (lmbda / T) * one, lmbda / T_own])[objective]
    a = (objective == OBJECTIVES.index("elbo_access")).astype(jnp.float32)
    return c, w, a


def storage_gradient(objective: jax.Array, sigma: jax.Array, sigma_base, lmbda) -> jax.Array:
    """``-lambda * dKL/dsigma`` for the storage-cost objectives (1, 3, 4), zero for Eq. 8."""
    pays = jnp.asarray([STORAGE_COST[o] for o in OBJECTIVES])[objective_id(objective)]
    return jnp.where(pays, -lmbda * memory.kl_gaussian_grad(sigma, sigma_base), 0.0)
