"""Invalid-action rejection (IAR seed, Theorem 1, Lemma 1; App. A.1-A.2, Eq. 8-11) and the
policy base class that applies it to any generator with log-probabilities.

    pi_C(a|s) = pi(a|s) / Z_C(s),   Z_C(s) = sum_{a' in C(s)} pi(a'|s)            (Theorem 1)
    log_prob = log pi(a|s) - sum_j w_j log pi(a_j|s),   w_j = 1/l on valid a_j   (Lemma 1's ratio)

Per state S candidates a_j ~ pi, l valid; a is uniform among the valid ones (a sample of
pi_C), and the surrogate's gradient estimates grad log pi_C (``coef="paper"``: the printed
c = S / l^2). Invariants: given the candidates its gradient has mean zero under a ~ pi_C;
a correction subset keeps the mean; adaptive S uses the first rung of S, 2S, ..., S_max
with a valid candidate; none valid: candidate 0, surrogate 0. Why: benchmarks/RESULTS_iar.md.

Example: ``rej = reject(key, mask, 4, "ratio")``, then
``rejection_surrogate(lp_a, lp_cands[rej.subset], rej.weights)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from envs_jax.contracts import ValidityOracle, require
from iar_jax.actions import ActionLayout, has_constraints, valid_mask
from ppo_jax.nn import MLP
from ppo_jax.policy import Act, Evaluation, Policy

COEFS = ("ratio", "paper")


class Rejection(NamedTuple):
    executed: jax.Array  # () int: index of the executed candidate
    subset: jax.Array  # (M,) int: candidates entering the correction term
    weights: jax.Array  # (M,) float32: their coefficients (0 for padding)
    num_valid: jax.Array  # () int32: l, valid candidates (before the fallback)
    no_valid: jax.Array  # () bool: fallback used


def rejection_coefficient(num_valid: jax.Array, num_candidates: int, coef: str) -> jax.Array:
    """c for l >= 1 valid of S candidates: 1/l (``"ratio"``) or S/l^2 (``"paper"``)."""
    l = jnp.maximum(num_valid, 1).astype(jnp.float32)
    if coef == "ratio":
        return 1.0 / l
    if coef == "paper":
        return num_candidates / jnp.square(l)
    raise ValueError(f"coef must be one of {COEFS}, got {coef!r}")


def candidates_used(mask: jax.Array, start: int) -> jax.Array:
    """Adaptive S of one state (module docstring): the first rung S_k of the ladder
    ``start, 2 start, 4 start, ..., S_max`` (S_max = ``mask.shape[0]``, the last rung) whose
    first S_k candidates include a valid one; S_max when none is valid. ``mask`` (S_max,)."""
    cap = mask.shape[0]
    if not 1 <= start <= cap:
        raise ValueError(f"start must lie in [1, S_max={cap}], got {start}")
    rungs, r = [], start
    while r < cap:
        rungs.append(r)
        r *= 2
    rungs = jnp.asarray(rungs + [cap], jnp.int32)
    first_valid = jnp.where(mask.any(), jnp.argmax(mask), cap)  # index of the first valid candidate
    return jnp.min(jnp.where(rungs > first_valid, rungs, cap)).astype(jnp.int32)


def reject(key: jax.Array, mask: jax.Array, subset: int, coef: str, num_used: jax.Array | None = None) -> Rejection:
    """Choose the executed candidate and the weighted correction set from a validity
    ``mask`` (S,) (module docstring: executed uniform among valid, subset of size
    ``subset`` <= S uniform among valid, fallback when none is valid). ``num_used``
    (traced int, default S): only the first ``num_used`` candidates count as drawn (adaptive
    S, :func:`candidates_used`)."""
    num = mask.shape[0]
    if not 0 <= subset <= num:
        raise ValueError(f"subset must lie in [0, S={num}], got {subset}")
    if num_used is not None:
        mask = mask & (jnp.arange(num) < num_used)
    k_exec, k_sub = jax.random.split(key)
    num_valid = mask.sum().astype(jnp.int32)
    no_valid = num_valid == 0
    mask_eff = jnp.where(no_valid, jnp.arange(num) == 0, mask)
    l_eff = jnp.maximum(num_valid, 1)
    # Executed: uniform among the (effective) valid candidates; candidate 0 in the fallback.
    executed = jnp.argmax(jnp.where(mask_eff, jax.random.uniform(k_exec, (num,)), -1.0))
    # Correction set: a uniform random subset of the valid candidates (all when subset >= l).
    if subset == 0:
        empty = jnp.zeros((0,), jnp.int32)
        return Rejection(executed, empty, jnp.zeros((0,), jnp.float32), num_valid, no_valid)
    scores = jnp.where(mask_eff, jax.random.uniform(k_sub, (num,)), -1.0)
    top_scores, idx = jax.lax.top_k(scores, subset)
    chosen = top_scores >= 0.0
    m = jnp.minimum(subset, l_eff).astype(jnp.float32)
    c = rejection_coefficient(num_valid, num if num_used is None else num_used, coef)
    weights = jnp.where(chosen, c * l_eff.astype(jnp.float32) / jnp.maximum(m, 1.0), 0.0)
    return Rejection(executed, idx, weights.astype(jnp.float32), num_valid, no_valid)


def rejection_surrogate(log_pi_a: jax.Array, log_pi_cands: jax.Array, weights: jax.Array) -> jax.Array:
    """log pi(a|s) - sum_j w_j log pi(a_j|s): its gradient is the estimator of
    grad log pi_C(a|s) (module docstring). ``log_pi_cands``, ``weights`` (M,)."""
    return log_pi_a - jnp.sum(jax.lax.stop_gradient(weights) * log_pi_cands)


class RejectionPolicy(Policy):
    """S candidates from a generator, invalid ones rejected by the env's oracle, trained with
    the rejection surrogate. Hooks (per state): ``init_actor``, ``context``, ``sample_actions
    -> (n, L) int32``, ``log_probs -> ((n,), aux)``, ``entropy``, ``mode_action -> (L,)``,
    optional ``noise_extras``. Extras per step: ``cand`` (M, L), ``cand_w`` (M,).
    Args: ``num_candidates`` S (orig. 64), ``max_candidates`` S_max (0: S), ``rejection_coef``
    ratio | paper, ``rejection_subset`` M (0: S), ``rejection`` auto | on | off (no oracle:
    S = 1, plain log pi), ``behaviour_log_prob`` (False: act returns 0), ``lazy_candidates``."""

    def __init__(
        self,
        env,
        env_params,
        *,
        num_candidates: int = 64,
        max_candidates: int = 0,
        rejection_coef: str = "ratio",
        rejection_subset: int = 0,
        rejection: str = "auto",
        critic_hidden: Sequence[int] = (64, 64),
        behaviour_log_prob: bool = True,
        lazy_candidates: bool = True,
    ):
        if rejection not in ("auto", "on", "off"):
            raise ValueError(f"rejection must be 'auto', 'on' or 'off', got {rejection!r}")
        if rejection_coef not in COEFS:
            raise ValueError(f"rejection_coef must be one of {COEFS}, got {rejection_coef!r}")
        if not isinstance(num_candidates, int) or num_candidates < 1:
            raise ValueError(f"num_candidates must be a positive int, got {num_candidates!r}")
        if max_candidates == 0:
            max_candidates = num_candidates
        if not isinstance(max_candidates, int) or max_candidates < num_candidates:
            raise ValueError(
                f"max_candidates must be an int >= num_candidates ({num_candidates}) or 0 (= num_candidates), "
                f"got {max_candidates!r}"
            )
        if not isinstance(rejection_subset, int) or rejection_subset < 0:
            raise ValueError(f"rejection_subset must be a non-negative int (0 = all), got {rejection_subset!r}")
        if rejection == "on":
            require(env, ValidityOracle, who="rejection='on'")
        self.env, self.env_params = env, env_params
        self.layout = ActionLayout.for_env(env, env_params)
        self.use_rejection = rejection == "on" or (rejection == "auto" and has_constraints(env))
        self.num_candidates = num_candidates if self.use_rejection else 1
        self.max_candidates = max_candidates if self.use_rejection else 1
        if not self.use_rejection:
            self.subset = 0
        elif rejection_subset == 0 or rejection_subset >= num_candidates:
            self.subset = num_candidates
        else:
            self.subset = rejection_subset
        self.coef = rejection_coef
        self.behaviour_log_prob = bool(behaviour_log_prob)
        self.lazy_candidates = bool(lazy_candidates)
        self.critic = MLP(tuple(critic_hidden), 1, "tanh", out_scale=1.0)

    # -- hooks -------------------------------------------------------------------------
    def init_actor(self, key, obs) -> dict:
        raise NotImplementedError

    def context(self, params, obs):
        raise NotImplementedError

    def sample_actions(self, params, key, ctx, n: int) -> jax.Array:
        raise NotImplementedError

    def log_probs(self, params, key, ctx, actions, extras) -> tuple[jax.Array, dict]:
        raise NotImplementedError

    def entropy(self, params, ctx, a, log_pi_a) -> jax.Array:
        raise NotImplementedError

    def mode_action(self, params, ctx) -> jax.Array:
        raise NotImplementedError

    def noise_extras(self, key) -> dict:
        return {}

    # optional pair of hooks for lazy candidate drawing (``_draw_candidates``):
    # ``candidate_noise(key, n) -> (n, ...)`` and ``actions_from_noise(params, ctx, noise) -> (n, L)``
    # with ``sample_actions(params, key, ctx, n) == actions_from_noise(params, ctx, candidate_noise(key, n))``.
    candidate_noise = None
    actions_from_noise = None

    def _draw_candidates(self, params, key, ctx, env_state, env_params):
        """(candidates (S_max, L), validity mask (S_max,)). Lazy: all S_max noises drawn, the
        generator maps the first S, then chunks of gcd(S, S_max) while no rung holds a valid
        candidate; unmapped ones are zeros, invalid, past S_k, so the result equals the eager one."""
        s0, cap = self.num_candidates, self.max_candidates
        lazy = self.lazy_candidates and self.candidate_noise is not None and cap > s0
        if not lazy:
            cands = self.sample_actions(params, key, ctx, cap)  # (S_max, L)
            if self.use_rejection:
                return cands, valid_mask(self.env, self.layout, env_state, cands, env_params)
            return cands, jnp.ones((cap,), bool)
        noise = self.candidate_noise(key, cap)
        chunk = math.gcd(s0, cap)
        rungs, r = [], s0
        while r < cap:
            rungs.append(r)
            r *= 2
        rungs = jnp.asarray(rungs + [cap], jnp.int32)
        check = lambda c: valid_mask(self.env, self.layout, env_state, c, env_params)
        first = self.actions_from_noise(params, ctx, noise[:s0])
        cands = jnp.zeros((cap,) + first.shape[1:], first.dtype).at[:s0].set(first)
        mask = jnp.zeros((cap,), bool).at[:s0].set(check(first))

        def more(carry):
            drawn, mask = carry[0], carry[2]
            at_rung = jnp.any(rungs == drawn)
            return (drawn < cap) & ~(at_rung & mask.any())

        def draw(carry):
            drawn, cands, mask = carry
            nz = jax.lax.dynamic_slice_in_dim(noise, drawn, chunk, axis=0)
            new = self.actions_from_noise(params, ctx, nz)
            cands = jax.lax.dynamic_update_slice_in_dim(cands, new, drawn, axis=0)
            mask = jax.lax.dynamic_update_slice_in_dim(mask, check(new), drawn, axis=0)
            return drawn + chunk, cands, mask

        _, cands, mask = jax.lax.while_loop(more, draw, (jnp.asarray(s0, jnp.int32), cands, mask))
        return cands, mask

    # -- Policy ------------------------------------------------------------------------
    def init(self, key, obs, env_state=None, env_params=None):
        k_actor, k_critic = jax.random.split(key)
        x = jnp.ravel(obs).astype(jnp.float32)
        return {**self.init_actor(k_actor, x), "critic": self.critic.init(k_critic, x)}

    def value(self, params, obs):
        return self.critic.apply(params["critic"], jnp.ravel(obs).astype(jnp.float32))[0]

    def _surrogate(self, params, key, ctx, a, extras):
        actions = jnp.concatenate([a[None], extras["cand"]], axis=0)  # (1 + M, L)
        lp, aux = self.log_probs(params, key, ctx, actions, extras)
        return rejection_surrogate(lp[0], lp[1:], extras["cand_w"]), lp[0], aux

    def act(self, params, key, obs, env_state=None, env_params=None) -> Act:
        env_params = self.env_params if env_params is None else env_params
        k_cand, k_rej, k_noise, k_lp = jax.random.split(key, 4)
        x = jnp.ravel(obs).astype(jnp.float32)
        ctx = self.context(params, x)
        cands, mask = self._draw_candidates(params, k_cand, ctx, env_state, env_params)  # (S_max, L), (S_max,)
        used = candidates_used(mask, self.num_candidates)  # adaptive S (module docstring)
        rej = reject(k_rej, mask, self.subset, self.coef, num_used=used)
        a = cands[rej.executed]
        extras = {"cand": cands[rej.subset], "cand_w": rej.weights, **self.noise_extras(k_noise)}
        metrics = {
            "valid_rate": rej.num_valid.astype(jnp.float32) / used.astype(jnp.float32),
            "candidates_used": used.astype(jnp.float32),
            "no_valid": rej.no_valid.astype(jnp.float32),
        }
        if self.behaviour_log_prob:
            log_prob, _, _ = self._surrogate(params, k_lp, ctx, a, extras)
        else:
            log_prob = jnp.zeros(())
        return Act(self.layout.to_env(a), log_prob, self.value(params, x), extras, metrics)

    def evaluate(self, params, key, obs, action, extras) -> Evaluation:
        x = jnp.ravel(obs).astype(jnp.float32)
        ctx = self.context(params, x)
        a = self.layout.from_env(action)
        surrogate, log_pi_a, _ = self._surrogate(params, key, ctx, a, extras)
        return Evaluation(surrogate, self.entropy(params, ctx, a, log_pi_a), self.value(params, x))

    def greedy(self, params, obs, env_state=None, env_params=None):
        """The evaluation action: among the generator's mode candidate and S samples drawn
        with a fixed key, the valid one with the highest log pi (an estimate of the mode of
        pi_C); the mode candidate when none is valid."""
        env_params = self.env_params if env_params is None else env_params
        x = jnp.ravel(obs).astype(jnp.float32)
        ctx = self.context(params, x)
        n = max(self.num_candidates, 16)
        cands = self.sample_actions(params, jax.random.PRNGKey(0), ctx, n)
        cands = jnp.concatenate([self.mode_action(params, ctx)[None], cands], axis=0)
        if self.use_rejection:
            mask = valid_mask(self.env, self.layout, env_state, cands, env_params)
        else:
            mask = jnp.ones((n + 1,), bool)
        lp, _ = self.log_probs(params, jax.random.PRNGKey(1), ctx, cands, self.noise_extras(jax.random.PRNGKey(2)))
        best = jnp.argmax(jnp.where(mask, lp, -jnp.inf))
        best = jnp.where(mask.any(), best, 0)
        return self.layout.to_env(cands[best])


def score_function_entropy(log_pi_a: jax.Array) -> jax.Array:
    """One-sample entropy estimate -log pi(a|s) whose gradient is the score-function
    gradient of the entropy, -log pi(a|s) grad log pi(a|s) (value and gradient unbiased
    for a ~ pi)."""
    sg = jax.lax.stop_gradient(log_pi_a)
    return -sg - sg * (log_pi_a - sg)


def onehot_prefix(a: jax.Array, num_cls: int) -> jax.Array:
    """(L,) int -> (L, L*K): row l holds the one-hots of a_<l (zeros for a_>=l)."""
    num = a.shape[0]
    onehot = jax.nn.one_hot(a, num_cls)  # (L, K)
    keep = jnp.asarray(np.tril(np.ones((num, num)), k=-1), jnp.float32)  # row l: j < l
    return (keep[:, :, None] * onehot[None, :, :]).reshape(num, num * num_cls)
