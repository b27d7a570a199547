"""PASPO's autoregressive Beta policy on a polytope (Winkel et al., NeurIPS 2024, Sec. 4).

An allocation ``a`` (n,) on ``P = {A a <= b, sum(a) = 1, 0 <= a <= 1}`` is sampled entity by
entity; for ``i = 0 .. n-2`` (0-based):

1. the feasible interval ``[a_min_i, a_max_i]`` of ``a_i`` given ``a_<i`` (PASPO Eq. 3,
   ``paspo_jax.bounds.make_bounds_fn``: the static fast path or the LP path);
2. head ``i`` maps ``[encoder(s), a_<i]`` to ``alpha_i, beta_i = exp(output) + 1e-6``;
3. ``u_i ~ Beta(alpha_i, beta_i)``, ``a_i = a_min_i + (a_max_i - a_min_i) u_i``
   (a ``distrax.ScalarAffine``);

and ``a_{n-1} = 1 - sum(a_<n-1)``. The density (PASPO Eq. 4), Jacobian included:

    log pi(a | s) = sum_i [ log Beta(u_i; alpha_i, beta_i) - log(a_max_i - a_min_i) ]

Invariants (``act`` and ``evaluate`` are the same function of the stored action):

- degenerate interval (width < ``degenerate_tol``, or reported infeasible, or -- with
  ``degenerate_max > 0`` -- ``a_max <= degenerate_max``): the entry is fixed
  (``degenerate_value``: the midpoint, or ``a_min`` as the original; on the LP path the
  feasible completion below) and adds 0 to log-prob and entropy; counted in
  ``policy/degenerate`` / ``policy/infeasible``;
- ``small_remaining > 0``: where the remaining mass ``1 - sum(a_<i)`` is ``<= small_remaining``
  the interval is ``[0, remaining]`` whatever the bounds say (the original's LP wrapper
  returns that without solving; with its ``degenerate_tol`` the entry is then fixed at 0);
- ``beta_prob_floor > 0``: each entry's Beta log-density is clamped at ``>= log(beta_prob_floor)``
  before the Jacobian term (the original's ``StableBeta``: ``log_prob.clamp(min=log 1e-6)``;
  the clamp has zero gradient below the floor);
- ``u_i`` is clipped into ``[u_eps, 1 - u_eps]`` when sampling and when scoring;
- concentrations are ``exp(clip(output, +-max_log_concentration)) + 1e-6``;
- ``interval_margin`` shrinks every interval to ``[a_min + m, a_max - m]`` (to its midpoint if
  narrower); the shrunk intervals are the ones stored and scored;
- LP path: the chain carries a feasible completion ``c`` of its prefix (a point between the last
  LPs' optimal vertices); from the first failed entry on the action is ``c``, so every action
  satisfies ``A a <= b`` up to the vertices' round-off (``_chain``);
- ``act`` stores the intervals in ``extras`` (``a_min``, ``a_max``, each (n-1,)); they depend
  only on the action's prefix and the constraints, so ``evaluate`` reuses them
  (``intervals="stored"``) or re-solves them (``"recompute"``, static constraints only): same
  numbers;
- entropy (``evaluate``): the paper's Monte-Carlo estimate ``sum_i H(pi_i | s, a_<i)`` along the
  stored prefix, ``H(pi_i) = H(Beta(alpha_i, beta_i)) + log(a_max_i - a_min_i)`` exact per entry;
- greedy: each Beta's mode along the chain (its mean where ``alpha, beta <= 1``).

Network (the original's): encoder ``Linear(obs, 32)-ReLU-Linear(32, 32)-ReLU``; ``n - 1`` heads,
each an MLP [32, 32] -> 2 on ``[encoding, a_<i]`` (stored stacked with input ``32 + n - 1``,
entries ``j >= i`` zeroed); critic ``Linear(obs, 32)-ReLU-Linear(32, 1)``; PyTorch's default
init (``ppo_jax.nn.torch_mlp``); the heads' last layer scaled by ``head_out_scale`` (0.01: every
head starts at Beta(1, 1), or at the de-biased Beta; the original used scale 1).

De-biased initialisation (Sec. 4.4, ``paspo_jax.debias``): one ML Beta fit per entity to
``debias_samples`` uniform points of the polytope at ``env.reset(PRNGKey(debias_seed))`` (a
prefix of them: the fit stops once its standard errors are below ``debias_se_tol``), added
to each head's output bias; computed once per policy. ``act`` and ``greedy`` read
``env.constraints(env_state, env_params)``, so state-dependent polytopes work.

Example::

    policy = PASPOPolicy(env, env_params)                # an envs_jax AllocationEnv
    params = policy.init(key, obs)
    out = policy.act(params, key, obs, env_state, env_params)   # out.action: (n,), in P

Measurements behind these choices (float32 bounds, margins, chain widths): see
``benchmarks/RESULTS_paspo.md``, "Numerics of the policy".
"""
from __future__ import annotations

from typing import Sequence

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from paspo_jax.bounds import has_static_constraints, make_bounds_fn, static_polytope
from paspo_jax.debias import lp_chain_bounds
from ppo_jax.nn import torch_default_init, torch_mlp
from ppo_jax.policy import Act, Evaluation, Policy

__all__ = ["PASPOPolicy", "MLP", "torch_default_init", "has_static_constraints", "make_bounds_fn", "static_polytope"]

CONCENTRATION_EPS = 1e-6  # concentrations = exp(output) + 1e-6 (original)
MLP = torch_mlp  # this module's MLP(hidden, out=None, out_scale=1.0) before ``ppo_jax.nn``


class PASPOPolicy(Policy):
    """PASPO's policy (module docstring) for an ``envs_jax`` allocation env.

    Args:
      env, env_params: an ``AllocationEnv`` (``num_entities``, ``constraints``).
      encoder_hidden: encoder widths (original: (32, 32)).
      head_hidden: hidden widths of each entity head (original: (32, 32)).
      critic_hidden: critic widths (original: (32,)).
      head_out_scale: init scale of the heads' last layer (0.01, see module docstring).
      debias: add the de-biasing offsets to the heads' output bias (paper Sec. 4.4).
      debias_samples: uniform points of the polytope for the fit (original: 100,000).
      debias_method: sampler of ``paspo_jax.polytope`` ("rejection" as the original, or
        "hit_and_run").
      debias_seed: key of those points and of the reset state whose constraints are used.
      debias_se_tol: the fit uses the first 1024 points, doubling until every Beta's standard
        error in log space is at most this (``paspo_jax.debias.sequential_debias_offsets``);
        0 = all ``debias_samples`` points (the original's fit).
      degenerate_tol: interval width below which an entry is fixed (original: 1e-4).
      u_eps: positions are clipped into [u_eps, 1 - u_eps].
      max_log_concentration: network outputs are clipped to +-this before ``exp``.
      interval_margin: shrink each interval by this on both sides (module docstring).
      intervals: "stored" (reuse the sampling intervals in ``evaluate``) or "recompute".
      bounds: "auto", "lp" or "fast" (:func:`make_bounds_fn`).
      lp_maxiter: iteration cap of the general LP (None: its default).
      lp_warm_start: static constraints on the LP path: start every interval LP from the
        optimal basis at the polytope's Chebyshev centre (default on; :func:`make_bounds_fn`).
      degenerate_value: value of a degenerate entry, "midpoint" (ours) or "a_min" (original).
      degenerate_max: > 0: an interval with ``a_max <= degenerate_max`` is degenerate too
        (original: 1e-4); 0 = off.
      small_remaining: > 0: remaining mass ``<= small_remaining`` gives the interval
        ``[0, remaining]`` (original: 1e-5); 0 = off.
      beta_prob_floor: > 0: Beta log-densities clamped at ``>= log(beta_prob_floor)``
        (original: 1e-6); 0 = off.
    """

    def __init__(
        self,
        env,
        env_params,
        *,
        encoder_hidden: Sequence[int] = (32, 32),
        head_hidden: Sequence[int] = (32, 32),
        critic_hidden: Sequence[int] = (32,),
        head_out_scale: float = 0.01,
        debias: bool = True,
        debias_samples: int = 100_000,
        debias_method: str = "rejection",
        debias_seed: int = 0,
        debias_se_tol: float = 0.05,
        degenerate_tol: float = 1e-4,
        u_eps: float = 1e-6,
        max_log_concentration: float = 10.0,
        interval_margin: float = 0.0,
        intervals: str = "stored",
        bounds: str = "auto",
        lp_maxiter: int | None = None,
        lp_warm_start: bool = True,
        degenerate_value: str = "midpoint",
        degenerate_max: float = 0.0,
        small_remaining: float = 0.0,
        beta_prob_floor: float = 0.0,
    ):
        from envs_jax.contracts import LinearConstraints, require

        n = require(env, LinearConstraints, who="PASPOPolicy").num_entities
        if not isinstance(n, int) or n < 2:
            raise ValueError(
                f"PASPOPolicy needs an allocation env with num_entities >= 2 and constraints(); got {type(env).__name__}"
            )
        if intervals not in ("stored", "recompute"):
            raise ValueError(f"intervals must be 'stored' or 'recompute', got {intervals!r}")
        self.static = has_static_constraints(env)
        if intervals == "recompute" and not self.static:
            raise ValueError("intervals='recompute' needs static constraints (evaluate gets no env state)")
        if not (0.0 < u_eps < 0.5):
            raise ValueError(f"u_eps must lie in (0, 0.5), got {u_eps}")
        if degenerate_value not in ("midpoint", "a_min"):
            raise ValueError(f"degenerate_value must be 'midpoint' or 'a_min', got {degenerate_value!r}")
        if not (degenerate_max >= 0 and small_remaining >= 0 and 0 <= beta_prob_floor < 1):
            raise ValueError(
                "degenerate_max and small_remaining must be >= 0 and beta_prob_floor in [0, 1), got "
                f"{degenerate_max}, {small_remaining}, {beta_prob_floor}"
            )
        if degenerate_tol < 0 or interval_margin < 0:
            raise ValueError(f"degenerate_tol and interval_margin must be >= 0, got {degenerate_tol}, {interval_margin}")
        if debias and (not isinstance(debias_samples, int) or debias_samples < 2):
            raise ValueError(f"debias_samples must be an integer >= 2, got {debias_samples!r}")
        if not debias_se_tol >= 0:
            raise ValueError(f"debias_se_tol must be >= 0, got {debias_se_tol!r}")
        self.debias_se_tol, self.debias_used = float(debias_se_tol), None
        self.env, self.env_params, self.n = env, env_params, n
        self.encoder = torch_mlp(encoder_hidden)
        self.head = torch_mlp(head_hidden, 2, out_scale=head_out_scale)
        self.critic = torch_mlp(critic_hidden, 1)
        self.debias, self.debias_samples, self.debias_method, self.debias_seed = (
            debias, debias_samples, debias_method, debias_seed)
        self.degenerate_tol, self.u_eps, self.max_log_concentration = degenerate_tol, u_eps, max_log_concentration
        self.intervals, self.interval_margin = intervals, interval_margin
        self.degenerate_value, self.degenerate_max = degenerate_value, float(degenerate_max)
        self.small_remaining, self.beta_prob_floor = float(small_remaining), float(beta_prob_floor)
        if bounds not in ("auto", "lp", "fast"):
            raise ValueError(f"bounds must be 'auto', 'lp' or 'fast', got {bounds!r}")
        self.polytope = None
        if self.static and bounds != "lp":
            self.polytope = static_polytope(env, env_params, fast_path=True if bounds == "fast" else "auto")
        self.bounds_fn = make_bounds_fn(env, env_params, bounds, lp_maxiter, poly=self.polytope,
                                        lp_warm_start=lp_warm_start)
        self.lp_maxiter = lp_maxiter
        self._offsets = None

    # -- parameters ---------------------------------------------------------------------
    def init(self, key, obs, env_state=None, env_params=None):
        k_enc, k_head, k_critic = jax.random.split(key, 3)
        x = jnp.ravel(obs).astype(jnp.float32)
        enc_params = self.encoder.init(k_enc, x)
        enc = self.encoder.apply(enc_params, x)
        head_in = jnp.zeros((enc.shape[0] + self.n - 1,), jnp.float32)
        heads = jax.vmap(self.head.init, in_axes=(0, None))(jax.random.split(k_head, self.n - 1), head_in)
        if self.debias:
            log_alpha, log_beta = self.debias_offsets()
            bias = heads["params"][f"Dense_{len(self.head.hidden)}"]["bias"]  # (n-1, 2)
            bias = bias + jnp.stack([log_alpha, log_beta], axis=1).astype(bias.dtype)
            heads["params"][f"Dense_{len(self.head.hidden)}"]["bias"] = bias
        return {"encoder": enc_params, "heads": heads, "critic": self.critic.init(k_critic, x)}

    def debias_offsets(self) -> tuple[jax.Array, jax.Array]:
        """``(log alpha_hat, log beta_hat)``, each (n-1,): computed once, then cached."""
        if self._offsets is None:
            with jax.ensure_compile_time_eval():
                self._offsets = jax.tree.map(np.asarray, self._compute_debias_offsets())
        return self._offsets

    def _compute_debias_offsets(self):
        from paspo_jax import polytope
        from paspo_jax.debias import sequential_debias_offsets

        key = jax.random.PRNGKey(self.debias_seed)
        k_reset, k_points = jax.random.split(key)
        _, state = self.env.reset(k_reset, self.env_params)
        A, b = self.env.constraints(state, self.env_params)
        A, b = np.asarray(A, np.float64), np.asarray(b, np.float64)
        poly = self.polytope if self.polytope is not None else polytope.Polytope(A, b, name="debias", fast_path=False)
        points = poly.sample_uniform(k_points, self.debias_samples, method=self.debias_method)
        points = jnp.asarray(points, jnp.float32)
        A32, b32 = jnp.asarray(A, jnp.float32), jnp.asarray(b, jnp.float32)
        intervals = poly.batch_bounds_chain if poly.fast is not None else (lambda p: self._lp_chain_bounds(A32, b32, p))

        @jax.jit
        def positions(points, lo, hi, feasible):
            prefix = jnp.concatenate([jnp.zeros_like(points[:, :1]), points[:, : self.n - 2]], 1)
            return jax.vmap(self._interval)(lo, hi, feasible, 1.0 - jnp.cumsum(prefix, 1))

        # The fit stops once its standard errors are below debias_se_tol (paspo_jax.debias).
        log_alpha, log_beta, self.debias_used = sequential_debias_offsets(
            points, intervals, positions, se_tol=self.debias_se_tol, tol=self.degenerate_tol, eps=self.u_eps)
        return log_alpha, log_beta

    def _lp_chain_bounds(self, A, b, points, chunk: int = 64):
        """Intervals of every entry of ``points`` (K, n) along its own prefix through
        ``self.bounds_fn``: (lo, hi, feasible), each (K, n-1) (``paspo_jax.debias.lp_chain_bounds``)."""
        return lp_chain_bounds(self.bounds_fn, A, b, points, chunk=chunk)

    # -- pieces -------------------------------------------------------------------------
    def _encode(self, params, obs):
        return self.encoder.apply(params["encoder"], jnp.ravel(obs).astype(jnp.float32))

    def value(self, params, obs):
        return self.critic.apply(params["critic"], jnp.ravel(obs).astype(jnp.float32))[0]

    def _head_input(self, enc, a, i):
        """``[encoding, a_<i]`` with entries ``j >= i`` zeroed, (d + n - 1,)."""
        prefix = jnp.where(jnp.arange(self.n - 1) < i, a[: self.n - 1], 0.0)
        return jnp.concatenate([enc, prefix])

    def _concentrations(self, out):
        c = self.max_log_concentration
        conc = jnp.exp(jnp.clip(out, -c, c)) + CONCENTRATION_EPS
        return conc[..., 0], conc[..., 1]

    def _interval(self, lo, hi, feasible, remaining):
        """Clean LP bounds: infeasible -> degenerate at max(0, ...); clipped into [0, remaining]."""
        remaining = jnp.maximum(remaining, 0.0)
        lo = jnp.where(feasible, lo, 0.0)
        hi = jnp.where(feasible, hi, 0.0)
        lo = jnp.clip(lo, 0.0, remaining)
        hi = jnp.clip(hi, lo, remaining)
        if self.interval_margin > 0:
            mid = 0.5 * (lo + hi)
            lo, hi = jnp.minimum(lo + self.interval_margin, mid), jnp.maximum(hi - self.interval_margin, mid)
        if self.small_remaining > 0:  # the original's LP wrapper: [0, remaining] without solving
            small = remaining <= self.small_remaining
            lo, hi = jnp.where(small, 0.0, lo), jnp.where(small, remaining, hi)
        return lo, hi

    def _degenerate(self, lo, hi):
        degenerate = ~(hi - lo >= self.degenerate_tol)
        if self.degenerate_max > 0:  # the original: also a_max <= 1e-4
            degenerate = degenerate | (hi <= self.degenerate_max)
        return degenerate

    def _fixed_value(self, lo, hi):
        """The value of a degenerate entry: ``a_min`` (original) or the midpoint."""
        return lo if self.degenerate_value == "a_min" else 0.5 * (lo + hi)

    def _entry_log_prob_entropy(self, alpha, beta, lo, hi, x):
        """Log-density and entropy of one scaled Beta at entry ``x`` (0, 0 if degenerate)."""
        degenerate = self._degenerate(lo, hi)
        width = jnp.where(degenerate, 1.0, hi - lo)
        affine = distrax.ScalarAffine(shift=lo, scale=width)
        u = jnp.clip(affine.inverse(x), self.u_eps, 1.0 - self.u_eps)
        base = distrax.Beta(alpha, beta)
        base_log_prob = base.log_prob(u)
        if self.beta_prob_floor > 0:  # the original's StableBeta clamp
            base_log_prob = jnp.maximum(base_log_prob, float(np.log(self.beta_prob_floor)))
        log_prob = base_log_prob - affine.forward_log_det_jacobian(u)
        entropy = distrax.Transformed(base, affine).entropy()
        return jnp.where(degenerate, 0.0, log_prob), jnp.where(degenerate, 0.0, entropy)

    def _raw_chain_bounds(self, A, b, a):
        """``self.bounds_fn`` at every entry of ``a`` along its own prefix: (a_min, a_max,
        feasible[, x_min, x_max]), each with a leading (n-1,) axis, uncleaned."""
        return jax.vmap(lambda i: self.bounds_fn(A, b, a, i))(jnp.arange(self.n - 1))

    def _chain_bounds(self, A, b, a):
        """Intervals of all entries of ``a`` along its own prefix: (a_min, a_max), each (n-1,),
        cleaned exactly as in sampling."""
        lo, hi, feasible, *vertices = self._raw_chain_bounds(A, b, a)
        if vertices:  # LP path, as in sampling: degenerate from the first failed entry on
            feasible = jnp.cumsum(~feasible) == 0
        remaining = 1.0 - jnp.cumsum(jnp.concatenate([jnp.zeros((1,), a.dtype), a[: self.n - 2]]))
        return self._interval(lo, hi, feasible, remaining)

    def _static_constraints(self):
        A, b = self.env.constraints(None, self.env_params)
        return jnp.asarray(A, jnp.float32), jnp.asarray(b, jnp.float32)

    def _chain(self, params, key, obs, env_state, env_params, mode: str):
        """Sample (``mode="sample"``) or take the mode (``"greedy"``) along the chain:
        ``(a (n,), a_min (n-1,), a_max (n-1,), log_prob, entropy, degenerate (n-1,),
        infeasible (n-1,))``.

        On the LP path the chain also carries ``c`` (n,), a feasible completion of the
        prefix: after entry ``i`` the point between the LP's two optimal vertices ``x_min``,
        ``x_max`` (both feasible, prefix fixed) with ``c_i = a_i``. From the first entry whose
        LPs fail (the remaining slice can shrink below float32 resolution on long chains) the
        rest of the allocation is ``c``: degenerate entries (log-prob and entropy 0, stored
        interval ``[c_i, c_i]``, counted in ``infeasible``).
        """
        A, b = self.env.constraints(env_state, env_params)
        A, b = jnp.asarray(A, jnp.float32), jnp.asarray(b, jnp.float32)
        enc = self._encode(params, obs)
        n = self.n

        def step(carry, xs):
            a, remaining, c, stuck = carry
            i, head_params, k = xs
            lo_raw, hi_raw, feasible, *vertices = self.bounds_fn(A, b, a, i)
            if vertices:
                stuck = stuck | ~feasible
                feasible = ~stuck
            lo, hi = self._interval(lo_raw, hi_raw, feasible, remaining)
            alpha, beta = self._concentrations(self.head.apply(head_params, self._head_input(enc, a, i)))
            base = distrax.Beta(alpha, beta)
            if mode == "sample":
                u = base.sample(seed=k)
            else:
                u = jnp.where((alpha > 1.0) | (beta > 1.0), base.mode(), base.mean())
            degenerate = self._degenerate(lo, hi)
            u = jnp.clip(u, self.u_eps, 1.0 - self.u_eps) if mode == "sample" else u
            x = distrax.ScalarAffine(shift=lo, scale=hi - lo).forward(u)
            x = jnp.where(degenerate, self._fixed_value(lo, hi), x)
            x = jnp.clip(x, lo, hi)
            if vertices:  # LP path: the feasible completion from the first failed entry on (docstring)
                x_min, x_max = vertices
                width = hi_raw - lo_raw
                t = jnp.clip(jnp.where(width > 0, (x - lo_raw) / width, 0.5), 0.0, 1.0)
                c = jnp.where(feasible, x_min + t * (x_max - x_min), c)
                x = jnp.where(feasible, x, jnp.clip(c[i], 0.0, jnp.maximum(remaining, 0.0)))
                lo, hi = jnp.where(feasible, lo, x), jnp.where(feasible, hi, x)
            log_prob, entropy = self._entry_log_prob_entropy(alpha, beta, lo, hi, x)
            a = a.at[i].set(x)
            return (a, remaining - x, c, stuck), (lo, hi, log_prob, entropy, degenerate, ~feasible)

        xs = (jnp.arange(n - 1), params["heads"], jax.random.split(key, n - 1))
        c0 = jnp.zeros((n,), jnp.float32).at[n - 1].set(1.0)  # used only if the first LPs fail
        (a, remaining, _, _), (lo, hi, log_prob, entropy, degenerate, infeasible) = jax.lax.scan(
            step, (jnp.zeros((n,), jnp.float32), jnp.ones((), jnp.float32), c0, jnp.zeros((), bool)), xs
        )
        a = a.at[n - 1].set(jnp.maximum(1.0 - jnp.sum(a[: n - 1]), 0.0))
        return a, lo, hi, log_prob.sum(), entropy.sum(), degenerate, infeasible

    # -- policy interface ---------------------------------------------------------------
    def act(self, params, key, obs, env_state=None, env_params=None) -> Act:
        """Sample along the chain; ``extras = {"a_min", "a_max"}`` (n-1,) intervals used."""
        env_params = self.env_params if env_params is None else env_params
        a, lo, hi, log_prob, entropy, degenerate, infeasible = self._chain(
            params, key, obs, env_state, env_params, "sample")
        metrics = {
            "degenerate": degenerate.mean(),
            "infeasible": infeasible.mean(),
            "entropy_sample": entropy,
        }
        return Act(a, log_prob, self.value(params, obs), {"a_min": lo, "a_max": hi}, metrics)

    def evaluate(self, params, key, obs, action, extras) -> Evaluation:
        """Log-prob of the stored action (all heads at once, teacher forcing on its prefix),
        the Monte-Carlo entropy ``sum_i H(pi_i | s, a_<i)`` along that prefix, and V(s)."""
        del key
        a = jnp.asarray(action, jnp.float32)
        if self.intervals == "stored":
            lo, hi = extras["a_min"], extras["a_max"]
        else:
            A, b = self._static_constraints()
            lo, hi = self._chain_bounds(A, b, a)
        log_prob, entropy = self._log_prob_entropy(params, obs, a, lo, hi)
        return Evaluation(log_prob, entropy, self.value(params, obs))

    def _log_prob_entropy(self, params, obs, a, lo, hi):
        enc = self._encode(params, obs)
        idx = jnp.arange(self.n - 1)
        inputs = jax.vmap(lambda i: self._head_input(enc, a, i))(idx)
        out = jax.vmap(self.head.apply)(params["heads"], inputs)
        alpha, beta = self._concentrations(out)
        log_prob, entropy = jax.vmap(self._entry_log_prob_entropy)(alpha, beta, lo, hi, a[: self.n - 1])
        return log_prob.sum(), entropy.sum()

    def log_prob(self, params, obs, action, env_state=None, env_params=None):
        """``log pi(a | s)`` of any allocation, intervals solved along its own prefix (exact;
        for tests and analysis)."""
        env_params = self.env_params if env_params is None else env_params
        A, b = self.env.constraints(env_state, env_params)
        a = jnp.asarray(action, jnp.float32)
        lo, hi = self._chain_bounds(jnp.asarray(A, jnp.float32), jnp.asarray(b, jnp.float32), a)
        return self._log_prob_entropy(params, obs, a, lo, hi)[0]

    def greedy(self, params, obs, env_state=None, env_params=None):
        env_params = self.env_params if env_params is None else env_params
        return self._chain(params, jax.random.PRNGKey(0), obs, env_state, env_params, "greedy")[0]
