"""PASPO at many entities (issue 22): no large constants in the compiled programs, and the
de-biasing fit that stops at a standard-error tolerance.

References: the jaxpr's own constant list (what JAX embeds in the lowered program), autodiff of
the Beta log-likelihood (the standard errors), scipy's Beta fit (the offsets).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from jax.extend import core as jcore

from paspo_jax.debias import beta_log_standard_errors, debias_offsets, sequential_debias_offsets

LIMIT = 256 * 1024  # bytes; the old rollout at N = 50 closed over two 490 kB inverse tables


def _constants(closed):
    """(nbytes, shape, where) of every constant a closed jaxpr embeds: its consts, those of
    every sub-jaxpr, and array literals."""
    out = []

    def walk(jaxpr, consts=()):
        out.extend((getattr(c, "nbytes", 0), getattr(c, "shape", ()), "const") for c in consts)
        for eqn in jaxpr.eqns:
            out.extend((v.val.nbytes, v.val.shape, str(eqn.primitive)) for v in eqn.invars
                       if isinstance(v, jcore.Literal) and hasattr(v.val, "nbytes"))
            for p in eqn.params.values():
                for sub in p if isinstance(p, (tuple, list)) else (p,):
                    if isinstance(sub, jcore.ClosedJaxpr):
                        walk(sub.jaxpr, sub.consts)
                    elif isinstance(sub, jcore.Jaxpr):
                        walk(sub)

    walk(closed.jaxpr, closed.consts)
    return sorted(out, key=lambda t: -t[0])


def test_constant_walker_sees_closed_over_arrays():
    """The check itself can fail: a closed-over 1 MB table is found."""
    table = jnp.ones((512, 512), jnp.float32)
    closed = jax.make_jaxpr(jax.jit(lambda i: jax.vmap(lambda j: table[j, i])(jnp.arange(3))))(1)
    assert _constants(closed)[0][0] >= 512 * 512 * 4


def _check_programs(n, limit):
    """Rollout + PPO update (``trainer.run``) and the de-bias fit's interval program on
    PASPO-synth-n, LP path with warm starts: every embedded constant at most ``limit`` bytes,
    while the warm-start table (inverses) itself is larger (so closing over it would fail)."""
    from paspo_jax.algo import PASPOConfig, build, default_ppo_config
    from paspo_jax.debias import _chain_program

    ppo = default_ppo_config(num_envs=4, num_steps=8, total_timesteps=64)
    trainer = build(f"PASPO-synth-{n}", {"ppo": ppo, "paspo": PASPOConfig(debias=False, bounds="lp")})
    policy = trainer.policy
    assert policy.bounds_fn.warm is not None and policy.bounds_fn.warm.binv_min.nbytes > limit
    state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    big = [c for c in _constants(jax.make_jaxpr(lambda s: trainer.run(s, 1))(state)) if c[0] > limit]
    assert not big, big
    A, b = policy._static_constraints()
    pts = jnp.full((8, policy.n), 1.0 / policy.n, jnp.float32)
    traced = _chain_program.trace(policy.bounds_fn, A, b, pts, policy.bounds_fn.warm)
    big = [c for c in _constants(traced.jaxpr) if c[0] > limit]
    assert not big, big


def test_paspo_programs_capture_no_large_constant():
    """CI variant at N = 20: the inverse table is 2 x 30 kB; every constant must stay below 16 kB."""
    _check_programs(20, 16 * 1024)


@pytest.mark.slow
def test_paspo_programs_at_50_entities_capture_no_large_constant():
    """N = 50 (issue 22): every constant below 256 kB (before: the warm-start inverses, 2 x 490 kB,
    in the rollout; 2 GB of constant-folded basis rows in the de-bias fit at N = 100)."""
    _check_programs(50, LIMIT)


def test_beta_log_standard_errors_equal_the_inverse_hessian():
    """Against autodiff: the expected log-likelihood of Beta(exp(th)) under Beta(a, b) data,
    ``(e^th0 - 1) E log u + (e^th1 - 1) E log(1 - u) - log B(e^th)`` (closed-form expectations),
    has Hessian ``-D I D`` at the truth; the standard errors of ``count`` samples are the
    square roots of the diagonal of its negative inverse over ``count``."""
    from jax.scipy.special import digamma, gammaln

    for a, b_ in ((0.7, 2.5), (1.0, 1.0), (4.0, 1.5), (1.0, 8.0)):
        e1, e2 = digamma(a) - digamma(a + b_), digamma(b_) - digamma(a + b_)
        log_b = lambda x, y: gammaln(x) + gammaln(y) - gammaln(x + y)  # (jax's betaln: wrong Hessian at (1, 1))
        ll = lambda th: (jnp.exp(th[0]) - 1) * e1 + (jnp.exp(th[1]) - 1) * e2 - log_b(jnp.exp(th[0]), jnp.exp(th[1]))
        H = np.asarray(jax.hessian(ll)(jnp.log(jnp.asarray([a, b_]))), np.float64)
        cov = np.linalg.inv(-H) / 1000
        se = beta_log_standard_errors(jnp.asarray(a), jnp.asarray(b_), 1000)
        np.testing.assert_allclose(np.asarray(se), np.sqrt(np.diag(cov)), rtol=1e-3)
    assert np.all(np.isinf(np.asarray(beta_log_standard_errors(jnp.asarray(2.0), jnp.asarray(3.0), 0))))


def _stick_breaking_problem(n, K, seed):
    """Uniform points of the simplex and their exact intervals [0, remaining mass]."""
    pts = np.random.default_rng(seed).dirichlet(np.ones(n), K).astype(np.float32)
    remaining = 1.0 - np.concatenate([np.zeros((K, 1), np.float32), np.cumsum(pts[:, : n - 2], 1)], 1)
    return jnp.asarray(pts), jnp.zeros_like(jnp.asarray(remaining)), jnp.asarray(remaining)


def test_sequential_fit_with_zero_tolerance_is_the_full_fit():
    pts, lo, hi = _stick_breaking_problem(6, 3000, 0)
    calls = []

    def intervals(p):
        calls.append(len(p))
        k = sum(calls) - len(p)
        return lo[k:k + len(p)], hi[k:k + len(p)], jnp.ones(lo[k:k + len(p)].shape, bool)

    la, lb, used = sequential_debias_offsets(pts, intervals, lambda p, a, b_, f: (a, b_), se_tol=0.0)
    assert used == 3000 and calls == [3000]
    full = debias_offsets(pts, lo, hi)
    np.testing.assert_allclose(np.asarray(la), np.asarray(full[0]), atol=2e-5)  # jit vs eager float32
    np.testing.assert_allclose(np.asarray(lb), np.asarray(full[1]), atol=2e-5)


def test_sequential_fit_stops_early_and_agrees_with_scipy_on_all_points():
    """On the simplex (stick-breaking: entry i's position is Beta(1, n-1-i)), the fit stopped at
    se_tol = 0.05 uses far fewer than the 40,000 points, solves each point's intervals once,
    and its offsets are within 4 se_tol of scipy's Beta fit on all 40,000 positions."""
    n, K = 5, 40_000
    pts, lo, hi = _stick_breaking_problem(n, K, 1)
    seen = []

    def intervals(p):
        k = sum(seen)
        seen.append(len(p))
        return lo[k:k + len(p)], hi[k:k + len(p)], jnp.ones((len(p), n - 1), bool)

    la, lb, used = sequential_debias_offsets(pts, intervals, lambda p, a, b_, f: (a, b_), se_tol=0.05, first=256)
    assert sum(seen) == used < K // 4, (seen, used)
    u = np.clip(np.asarray(pts[:, : n - 1]) / np.asarray(hi), 1e-6, 1 - 1e-6)
    for i in range(n - 1):
        a_ref, b_ref, _, _ = st.beta.fit(u[:, i].astype(np.float64), floc=0, fscale=1)
        assert abs(float(la[i]) - np.log(a_ref)) < 0.2 and abs(float(lb[i]) - np.log(b_ref)) < 0.2, (i, a_ref, b_ref)
    with pytest.raises(ValueError, match="se_tol"):
        sequential_debias_offsets(pts, intervals, lambda p, a, b_, f: (a, b_), se_tol=-1.0)
