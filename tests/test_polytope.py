"""paspo_jax.polytope: vertices, exact fast-path bounds, Chebyshev centre, uniform samplers.

Specifications:
- the double-description vertices are feasible and reproduce HiGHS's support
  function (max of c . a) in random directions;
- the static fast path (projection facets) equals HiGHS and the LP path on the
  three PASPO polytopes, along uniform and autoregressively sampled prefixes, and
  it is what ``Polytope.bounds`` runs (no LP loop in its jaxpr);
- the Chebyshev centre matches an independent LP (HiGHS) and its ball is inside;
- uniform sampling: a_1 ~ Beta(1, n-1) on the plain simplex (KS), every sample in
  the polytope, hit-and-run and rejection agree in distribution on synth7;
- empty polytopes, wrong shapes and NaN raise one clear error naming the polytope.
"""

import numpy as np
import pytest
import jax
import jax.numpy as jnp
import scipy.optimize as so
import scipy.stats as ss

from highs_reference import highs_bounds, uniform_points
from paspo_jax import lp
from paspo_jax.polytope import Polytope, load_reference_polytope, vertices

NAMES = ("synth7", "compute9", "portfolio13")
_POLY = {}


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def poly(name):
    if name not in _POLY:
        _POLY[name] = load_reference_polytope(name)
    return _POLY[name]


def highs_support(A, b, c):
    n = A.shape[1]
    r = so.linprog(-c, A_ub=A, b_ub=b, A_eq=np.ones((1, n)), b_eq=[1.0], bounds=(0, 1), method="highs")
    return -r.fun


@pytest.mark.parametrize("name", NAMES)
def test_vertices_reproduce_the_support_function(name):
    P = poly(name)
    V = P.vertices()
    assert np.all(V @ P.A.T <= P.b + 1e-9) and np.all(V >= -1e-12)
    np.testing.assert_allclose(V.sum(axis=1), 1.0, atol=1e-12)
    rng = np.random.default_rng(0)
    for c in rng.normal(size=(20, P.n)):
        assert abs((V @ c).max() - highs_support(P.A, P.b, c)) <= 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_fast_path_equals_highs_and_the_lp_path(name):
    P = poly(name)
    assert P.fast is not None
    n = P.n
    rng = np.random.default_rng(1)
    # prefixes: uniform points, and allocations sampled entity by entity from the fast path
    chain = jax.jit(jax.vmap(P.bounds_chain))
    sampled = np.zeros((16, n))
    for i in range(n - 1):
        lo, hi, ok = chain(sampled)
        assert bool(np.all(ok[:, i]))
        sampled[:, i] = lo[:, i] + (hi[:, i] - lo[:, i]) * rng.uniform(size=16)
    sampled[:, -1] = 1.0 - sampled[:, :-1].sum(axis=1)
    assert np.all(sampled @ P.A.T <= P.b + 1e-9) and np.all(sampled >= -1e-9)
    X = np.concatenate([uniform_points(P.A, P.b, 16, seed=2), sampled])
    lo, hi, ok = chain(X)
    assert bool(np.all(ok))
    # LP path on the same inputs
    llo, lhi, lok = jax.jit(jax.vmap(lambda a: lp.allocation_bounds_chain(P.A, P.b, a)))(X)
    assert bool(np.all(lok))
    np.testing.assert_allclose(np.asarray(lo), np.asarray(llo), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(hi), np.asarray(lhi), rtol=0, atol=1e-12)
    # HiGHS on a subset
    for k in range(0, len(X), 8):
        for i in range(n - 1):
            ref = highs_bounds(P.A, P.b, X[k], i)
            assert abs(float(lo[k, i]) - ref[0]) <= 1e-9 and abs(float(hi[k, i]) - ref[1]) <= 1e-9


def test_bounds_use_the_fast_path_automatically():
    P = poly("compute9")
    p = np.full(P.n, 1.0 / P.n)
    fast = str(jax.make_jaxpr(lambda p: P.bounds(p, 3))(p))
    assert "while" not in fast
    slow = Polytope(P.A, P.b, name="compute9-lp", fast_path=False)
    assert slow.fast is None and "while" in str(jax.make_jaxpr(lambda p: slow.bounds(p, 3))(p))
    # the dynamic-i fast path (as inside lax.scan over entities)
    lo, hi, ok = jax.jit(lambda p, i: P.bounds(p, i))(p, 3)
    ref = highs_bounds(P.A, P.b, p, 3)
    assert bool(ok) and abs(float(lo) - ref[0]) <= 1e-9 and abs(float(hi) - ref[1]) <= 1e-9
    # an infeasible prefix: False and NaN, like the LP path
    bad = np.zeros(P.n)
    bad[0] = 0.9
    lo, hi, ok = P.bounds(bad, 1)
    assert not bool(ok) and np.isnan(float(lo))


@pytest.mark.parametrize("name", NAMES)
def test_chebyshev_centre(name):
    P = poly(name)
    center, radius = P.chebyshev_center()
    n = P.n
    # independent LP (HiGHS) in (a, r): rows scaled by their norm within {sum a = 0}
    rows = np.concatenate([P.A, np.eye(n), -np.eye(n)])
    rhs = np.concatenate([P.b, np.ones(n), np.zeros(n)])
    scale = np.linalg.norm(rows - rows.mean(axis=1, keepdims=True), axis=1)
    res = so.linprog(np.r_[np.zeros(n), -1.0], A_ub=np.c_[rows, scale], b_ub=rhs,
                     A_eq=np.r_[np.ones(n), 0.0][None], b_eq=[1.0], bounds=[(0, 1)] * n + [(0, None)])
    assert abs(radius - res.x[-1]) <= 1e-9 and radius > 0
    rng = np.random.default_rng(3)
    d = rng.normal(size=(500, n))
    d -= d.mean(axis=1, keepdims=True)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    assert bool(np.all(P.contains(center + radius * (1 - 1e-9) * d, tol=1e-9)))


def test_empty_polytope_and_bad_input_raise_naming_the_polytope():
    n = 4
    with pytest.raises(ValueError, match="'tiny-budget' is empty"):
        Polytope(np.ones((1, n)), np.array([0.5]), name="tiny-budget")  # sum a <= 0.5 and sum a = 1
    with pytest.raises(ValueError, match="'bad-shape'.*b must have shape"):
        Polytope(np.ones((2, n)), np.ones(3), name="bad-shape")
    with pytest.raises(ValueError, match="'nan'.*NaN"):
        Polytope(np.full((2, n), np.nan), np.ones(2), name="nan")
    with pytest.raises(ValueError, match="'one-d'"):
        Polytope(np.ones(n), np.ones(1), name="one-d")
    with pytest.raises(ValueError, match="max_fast_rows"):
        Polytope(poly("compute9").A, poly("compute9").b, name="c9", fast_path=True, max_fast_rows=3)
    P = poly("compute9")
    # "auto" skips the fast path above max_fast_entities (n = 9 here); True still builds it
    assert Polytope(P.A, P.b, name="c9", max_fast_entities=8).fast is None
    assert Polytope(P.A, P.b, name="c9", fast_path=True, max_fast_entities=8).fast is not None
    with pytest.raises(ValueError, match="unknown method"):
        P.sample_uniform(jax.random.PRNGKey(0), 4, method="gibbs")


def test_rejection_gives_beta_marginal_on_the_plain_simplex():
    """On the simplex, uniform means Dirichlet(1): a_1 ~ Beta(1, n - 1)."""
    n = 5
    S = Polytope(np.zeros((0, n)), np.zeros(0), name="simplex")
    x = np.asarray(S.sample_uniform(jax.random.PRNGKey(0), 2000, method="rejection", batch=2048))
    assert ss.kstest(x[:, 0], ss.beta(1, n - 1).cdf).pvalue > 1e-3
    y = np.asarray(S.sample_uniform(jax.random.PRNGKey(1), 1000, method="hit_and_run", chains=200, burn_in=100, thin=10))
    assert ss.kstest(y[:, 1], ss.beta(1, n - 1).cdf).pvalue > 1e-3
    assert np.all(S.contains(y, tol=1e-9))


def test_samplers_stay_inside_and_agree_on_synth7():
    P = poly("synth7")
    x = np.asarray(P.sample_uniform(jax.random.PRNGKey(2), 2000, method="rejection", batch=8192))
    # 400 chains from the Chebyshev centre, 5 samples each, 20 steps apart
    y = np.asarray(P.sample_uniform(jax.random.PRNGKey(3), 2000, method="hit_and_run", chains=400, burn_in=200, thin=20))
    for s in (x, y):
        assert np.all(np.isfinite(s))
        assert np.max(s @ P.A.T - P.b) <= 1e-9
        assert np.max(np.abs(s.sum(axis=1) - 1.0)) <= 1e-9 and s.min() >= -1e-9
    # two-sample KS per coordinate, Bonferroni over the n coordinates
    pvals = [ss.ks_2samp(x[:, j], y[:, j]).pvalue for j in range(P.n)]
    assert min(pvals) > 1e-3 / P.n, pvals


def test_rejection_reports_too_few_acceptances():
    P = poly("synth7")  # 4.8% of the simplex
    with pytest.raises(ValueError, match="'synth7'.*hit_and_run"):
        P.sample_uniform(jax.random.PRNGKey(0), 2000, method="rejection", batch=8192, max_rounds=1)
