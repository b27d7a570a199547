"""paspo_jax.lp: the dual simplex equals scipy's HiGHS; PASPO's allocation bounds.

Specifications:
- linprog gives HiGHS's status and objective (1e-6 relative in float64) on random
  dense, degenerate, redundant, equality-constrained, infeasible, unbounded and
  badly scaled problems, solved as one vmapped batch (jit + vmap);
- allocation bounds equal HiGHS on the three PASPO polytopes, along uniform and
  autoregressively sampled prefixes, and every sampled allocation is feasible;
- the batched work-queue solver (warm starts, per-state constraints) equals them;
- bad input gives one clear error outside jit, a status code inside.
"""

import numpy as np
import pytest
import jax
import jax.numpy as jnp
import scipy.optimize as so
from hypothesis import given, settings, HealthCheck, strategies as st

from highs_reference import highs_bounds, uniform_points
from paspo_jax import lp

N_VAR, M_UB, M_EQ, BATCH = 6, 8, 2, 16


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


# ----------------------------------------------------------------------------- problems

KINDS = ("dense", "degenerate", "redundant", "equality", "infeasible", "unbounded", "scaled", "free")


def random_problem(rng, kind):
    """One LP of fixed shape (N_VAR, M_UB, M_EQ); unused rows are zero (0 <= b) and
    unused variables are fixed at 0, so every problem has the same shapes."""
    n = int(rng.integers(1, N_VAR + 1))
    m = int(rng.integers(0, M_UB + 1))
    me = 0
    c = rng.normal(size=N_VAR)
    A = np.zeros((M_UB, N_VAR))
    b = np.abs(rng.normal(size=M_UB))
    Ae = np.zeros((M_EQ, N_VAR))
    be = np.zeros(M_EQ)
    lo = np.zeros(N_VAR)
    hi = np.full(N_VAR, np.inf)
    x0 = rng.uniform(0.1, 2.0, size=n)  # a point the constraints keep feasible
    A[:m, :n] = rng.normal(size=(m, n))
    b[:m] = A[:m, :n] @ x0 + rng.uniform(0.1, 2.0, size=m)
    if kind == "degenerate":  # many rows through one vertex
        v = np.zeros(n)
        v[: max(1, n // 2)] = 1.0
        m = M_UB
        A[:, :n] = rng.normal(size=(m, n))
        A[:, :n] -= np.minimum(0, A[:, :n]) * (rng.uniform(size=(m, n)) < 0.3)
        b[:] = A[:, :n] @ v
        c[:n] = -np.abs(c[:n])
    elif kind == "redundant":  # positive multiples of rows
        half = M_UB // 2
        A[:half, :n] = rng.normal(size=(half, n))
        b[:half] = A[:half, :n] @ x0 + 1.0
        scale = rng.uniform(0.5, 3.0, size=half)
        A[half:], b[half:] = A[:half] * scale[:, None], b[:half] * scale
        hi[:n] = 5.0
    elif kind == "equality":
        me = int(rng.integers(1, min(M_EQ, n) + 1))
        Ae[:me, :n] = rng.normal(size=(me, n))
        be[:me] = Ae[:me, :n] @ x0
        hi[:n] = rng.uniform(2.0, 4.0, size=n)
    elif kind == "infeasible":
        me = 1
        Ae[0, :n] = np.abs(rng.normal(size=n)) + 0.1
        be[0] = -rng.uniform(0.1, 1.0)  # positive weights of x >= 0 summing to < 0
    elif kind == "unbounded":
        m = 0
        A[:] = 0
        c[:n] = rng.normal(size=n)
        c[0] = -abs(c[0]) - 0.1  # x_0 has no upper bound and lowers the cost
    elif kind == "scaled":
        s = 10.0 ** rng.uniform(-4, 4, size=(M_UB, 1))
        A, b = A * s, b * s[:, 0]
        c = c * 10.0 ** rng.uniform(-3, 3)
        hi[:n] = 10.0
    elif kind == "free":
        lo[:n], hi[:n] = -np.inf, np.inf
        # a bounded region: a box of rows around x0 plus the random rows
        box = np.concatenate([np.eye(n), -np.eye(n)])
        k = min(M_UB, 2 * n)
        A[:k] = 0
        A[:k, :n] = box[:k]
        b[:k] = np.concatenate([x0 + 1.0, -x0 + 1.0])[:k]
        if k < 2 * n:  # not enough rows for a full box: bound the rest directly
            lo[:n], hi[:n] = -3.0, 3.0
    if kind != "unbounded" and kind != "free":
        hi[:n] = np.where(np.isinf(hi[:n]) & (rng.uniform(size=n) < 0.3), 3.0, hi[:n])
    lo[n:], hi[n:], c[n:] = 0.0, 0.0, 0.0
    return c, A, b, Ae, be, lo, hi


def highs(c, A, b, Ae, be, lo, hi):
    bounds = [(l, None if np.isinf(h) else h) for l, h in zip(np.where(np.isinf(lo), None, lo), hi)]
    bounds = [(None if l is None else float(l), h) for l, h in bounds]
    res = so.linprog(c, A_ub=A, b_ub=b, A_eq=Ae, b_eq=be, bounds=bounds, method="highs",
                     options=dict(presolve=False))
    return res.status, res.fun


_linprog_batch = jax.jit(jax.vmap(lambda c, A, b, Ae, be, lo, hi: lp.linprog(c, A, b, Ae, be, bounds=(lo, hi))))


def check_batch(seed, kind, dtype=np.float64, rtol=1e-6):
    rng = np.random.default_rng(seed)
    probs = [random_problem(rng, kind) for _ in range(BATCH)]
    stacked = [np.stack(p).astype(dtype) for p in zip(*probs)]
    res = _linprog_batch(*stacked)
    for k, p in enumerate(probs):
        status, fun = highs(*p)
        assert int(res.status[k]) == status, (kind, seed, k, int(res.status[k]), status)
        if status == 0:
            ours = float(res.fun[k])
            assert abs(ours - fun) <= rtol * max(1.0, abs(fun)), (kind, seed, k, ours, fun)
            c, A, b, Ae, be, lo, hi = p
            x = np.asarray(res.x[k], np.float64)
            scale = 1.0 + np.abs(x).max()
            assert np.all(A @ x <= b + 1e3 * rtol * scale * (1 + np.abs(A).sum(1)))
            assert np.all(np.abs(Ae @ x - be) <= 1e3 * rtol * scale * (1 + np.abs(Ae).sum(1)))
            assert np.all((x >= lo - 1e3 * rtol * scale) & (x <= hi + 1e3 * rtol * scale))


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(KINDS))
def test_linprog_equals_highs_on_random_problems(seed, kind):
    check_batch(seed, kind)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(KINDS))
def test_linprog_equals_highs_on_thousands_of_problems(seed, kind):
    check_batch(seed, kind)  # 600 x 16 = 9600 problems


def test_linprog_every_kind_once():
    """Each kind at least once in the default run, whatever hypothesis draws."""
    for k, kind in enumerate(KINDS):
        check_batch(1000 + k, kind)


def test_linprog_float32_is_close():
    """float32: same statuses on well-scaled problems, objective within 1e-3 relative."""
    with jax.enable_x64(False):
        for k, kind in enumerate(("dense", "equality", "infeasible", "unbounded", "free")):
            check_batch(2000 + k, kind, dtype=np.float32, rtol=1e-3)


def test_linprog_scipy_bounds_forms():
    c = np.array([-1.0, -2.0, 0.5])
    A = np.array([[1.0, 1.0, 1.0]])
    b = np.array([4.0])
    for bounds in [(0, None), [(0, None), (0, 3), (None, 1)], np.array([[0, 10], [-1, 3], [0, 0]]), (0, 2.5)]:
        ref = so.linprog(c, A_ub=A, b_ub=b, bounds=bounds)
        res = lp.linprog(c, A, b, bounds=bounds)
        assert int(res.status) == ref.status, bounds
        if ref.status == 0:
            np.testing.assert_allclose(float(res.fun), ref.fun, rtol=1e-9)
            np.testing.assert_allclose(np.asarray(res.x), ref.x, atol=1e-9)


def test_linprog_bad_input_errors_outside_jit_status_inside():
    c, A, b = np.ones(3), np.ones((1, 3)), np.ones(1)
    with pytest.raises(ValueError, match="A_ub"):
        lp.linprog(c, np.ones((2, 4)), np.ones(2))
    with pytest.raises(ValueError, match="b_ub"):
        lp.linprog(c, np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="bounds"):
        lp.linprog(c, bounds=[(0, 1)] * 2)
    with pytest.raises(ValueError, match="NaN"):
        lp.linprog(np.array([1.0, np.nan, 0.0]), A, b)
    with pytest.raises(ValueError, match="NaN"):
        lp.linprog(c, A, np.array([np.nan]))
    res = jax.jit(lambda c: lp.linprog(c, A, b))(jnp.array([1.0, jnp.nan, 0.0]))
    assert int(res.status) == 4 and np.isnan(float(res.fun))
    # inconsistent bounds and an iteration limit are statuses, not errors
    assert int(lp.linprog(c, A, b, bounds=(2, 1)).status) == 2
    assert int(lp.linprog(-c, A, b, maxiter=1).status) == 1
    assert int(lp.linprog(-c, A, b).status) == 0


# ----------------------------------------------------------------------------- allocation bounds

def polytope(name):
    """(A, b) of a reference polytope, read directly (Polytope is tested in test_polytope)."""
    import envs_jax
    from pathlib import Path

    data = np.load(Path(envs_jax.__file__).parent / "data" / "polytopes.npz")
    return data[f"{name}_A"].astype(np.float64), data[f"{name}_b"].astype(np.float64)


CHUNK = 16
_chain_jit = jax.jit(jax.vmap(lp.allocation_bounds_chain, in_axes=(None, None, 0)))


def chain(A, b, X):
    """allocation_bounds_chain for rows of X, in chunks of one size (one compilation)."""
    pad = -len(X) % CHUNK
    Xp = np.concatenate([X, np.tile(X[:1], (pad, 1))]) if pad else X
    parts = [_chain_jit(A, b, Xp[k : k + CHUNK]) for k in range(0, len(Xp), CHUNK)]
    return tuple(np.concatenate([np.asarray(p[j]) for p in parts])[: len(X)] for j in range(3))


def autoregressive(A, b, num, seed):
    """Allocations sampled entity by entity, a_i ~ U[a_min, a_max] from our bounds."""
    n = A.shape[1]
    rng = np.random.default_rng(seed)
    a = np.zeros((num, n))
    for i in range(n - 1):
        lo, hi, ok = chain(A, b, a)
        assert bool(np.all(ok[:, i]))
        a[:, i] = lo[:, i] + (hi[:, i] - lo[:, i]) * rng.uniform(size=num)
    a[:, n - 1] = 1.0 - a[:, : n - 1].sum(axis=1)
    return a


@pytest.mark.parametrize("name", ["synth7", "compute9", "portfolio13"])
def test_allocation_bounds_equal_highs_on_reference_polytopes(name):
    """Along uniform-point prefixes and autoregressively sampled prefixes."""
    A, b = polytope(name)
    n = A.shape[1]
    sampled = autoregressive(A, b, CHUNK, seed=1)
    # every sampled allocation is feasible
    assert np.all(sampled @ A.T <= b + 1e-9)
    assert np.all(np.abs(sampled.sum(axis=1) - 1.0) <= 1e-9)
    assert np.all((sampled >= -1e-9) & (sampled <= 1 + 1e-9))
    prefixes = np.concatenate([uniform_points(A, b, 6, seed=0), sampled[:4]])
    lo, hi, ok = chain(A, b, prefixes)
    assert bool(np.all(ok))
    for k, p in enumerate(prefixes):
        for i in range(n - 1):
            ref_lo, ref_hi = highs_bounds(A, b, p, i)
            assert abs(lo[k, i] - ref_lo) <= 1e-9, (name, k, i)
            assert abs(hi[k, i] - ref_hi) <= 1e-9, (name, k, i)
            assert lo[k, i] <= p[i] + 1e-12 and p[i] <= hi[k, i] + 1e-12


def check_sampling_feasible(num):
    A, b = polytope("synth7")
    a = autoregressive(A, b, num, seed=3)
    assert np.max(a @ A.T - b) <= 1e-9
    assert np.max(np.abs(a.sum(axis=1) - 1.0)) <= 1e-9
    assert a.min() >= -1e-9 and a.max() <= 1 + 1e-9


def test_sampled_allocations_stay_feasible():
    """Autoregressive samples on synth7: A a <= b + 1e-9, sum 1, box (raw rows, |A| up to 8e3)."""
    check_sampling_feasible(128)


@pytest.mark.slow
def test_thousands_of_sampled_allocations_stay_feasible():
    check_sampling_feasible(4096)


def check_queue(num_uniform, num_sampled, **kw):
    A, b = polytope("synth7")
    acts = np.concatenate([uniform_points(A, b, num_uniform, seed=5), autoregressive(A, b, num_sampled, seed=6)])
    lo, hi, ok = chain(A, b, acts)
    blo, bhi, bok = lp.batch_allocation_bounds_chain(A, b, acts, **kw)
    assert bool(np.all(bok))
    np.testing.assert_allclose(np.asarray(blo), lo, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(bhi), hi, rtol=0, atol=1e-12)


def test_batch_queue_with_warm_starts_equals_single_lps():
    """The work-queue solver (warm starts from reference bases) gives the same bounds."""
    check_queue(48, 16, slots=16, warm_start=3)


@pytest.mark.slow
def test_batch_queue_variants_equal_single_lps():
    for kw in (dict(slots=64, warm_start=0), dict(slots=2048, warm_start=8), dict(slots=7, warm_start=1)):
        check_queue(400, 112, **kw)


def test_batch_bounds_with_constraints_per_state_equal_highs():
    """A and b may differ per batch element (vmapped constraints) in the queue solver."""
    A0, b0 = polytope("compute9")
    rng = np.random.default_rng(7)
    B = 6
    A = A0[None] * rng.uniform(0.8, 1.2, size=(B,) + A0.shape)
    b = b0[None] * rng.uniform(1.0, 1.3, size=(B,) + b0.shape)
    prefixes = uniform_points(A0, b0, B, seed=8)
    for i in (0, 3, 7):
        lo, hi, ok = lp.batch_allocation_bounds(A, b, prefixes, i, slots=4)
        for k in range(B):
            ref_lo, ref_hi = highs_bounds(A[k], b[k], prefixes[k], i)
            if np.isnan(ref_lo):
                assert not bool(ok[k]) and np.isnan(float(lo[k]))
            else:
                assert bool(ok[k])
                assert abs(float(lo[k]) - ref_lo) <= 1e-9 and abs(float(hi[k]) - ref_hi) <= 1e-9


def test_infeasible_prefix_reports_false_and_nan():
    A, b = polytope("compute9")
    bad = np.zeros(A.shape[1])
    bad[0] = 0.9  # compute9's first row: 0.41 a_0 + ... <= 0.15
    lo, hi, ok = lp.allocation_bounds(A, b, bad, 1)
    assert not bool(ok) and np.isnan(float(lo)) and np.isnan(float(hi))
    assert np.isnan(highs_bounds(A, b, bad, 1)[0])
    r = lp.allocation_lps(A, b, bad, 1)
    assert int(r.status_min) == 2 and int(r.status_max) == 2


def test_allocation_bad_input_errors():
    A, b = polytope("compute9")
    n = A.shape[1]
    p = np.full(n, 1.0 / n)
    with pytest.raises(ValueError, match="b must have shape"):
        lp.allocation_bounds(A, b[:-1], p, 0)
    with pytest.raises(ValueError, match="prefix"):
        lp.allocation_bounds(A, b, p[:-1], 0)
    with pytest.raises(ValueError, match="outside"):
        lp.allocation_bounds(A, b, p, n - 1)
    with pytest.raises(ValueError, match="NaN"):
        lp.allocation_bounds(A, b, np.full(n, np.nan), 2)
    # inside jit: NaN in the fixed prefix gives feasible False and NaN, no number;
    # NaN beyond the prefix is ignored, as documented
    jitted = jax.jit(lambda p: lp.allocation_bounds(A, b, p, 2))
    lo, hi, ok = jitted(jnp.full(n, jnp.nan))
    assert not bool(ok) and np.isnan(float(lo))
    q = p.copy()
    q[5:] = np.nan
    lo, hi, ok = jitted(q)
    assert bool(ok) and np.isfinite(float(lo))


@pytest.mark.parametrize("rescale", [False, True])
def test_vertices_are_feasible_completions_at_the_interval_ends(rescale):
    """``vertices=True`` (the PASPO policy's feasible completion): x_min / x_max satisfy the
    polytope's rows, keep the prefix, put a_i at HiGHS's a_min / a_max; so does their midpoint."""
    A, b = polytope("compute9")
    n = A.shape[1]
    P = uniform_points(A, b, 3, seed=5)
    f = jax.jit(lambda p, i: lp.allocation_bounds(A, b, p, i, rescale=rescale, vertices=True))
    for p in P:
        for i in range(n - 1):
            lo, hi, ok, x_min, x_max = (np.asarray(v) for v in f(p, i))
            ref_lo, ref_hi = highs_bounds(A, b, p, i)
            assert bool(ok) and abs(lo - ref_lo) <= 1e-9 and abs(hi - ref_hi) <= 1e-9
            for x, end in ((x_min, ref_lo), (x_max, ref_hi), (0.5 * (x_min + x_max), 0.5 * (ref_lo + ref_hi))):
                assert np.max(A @ x - b) <= 1e-9 and abs(x.sum() - 1.0) <= 1e-9 and x.min() >= -1e-12
                np.testing.assert_allclose(x[:i], p[:i], atol=1e-12)
                assert abs(x[i] - end) <= 1e-9


def test_rescaled_float32_bounds_stay_exact_when_little_mass_is_left():
    """``rescale=True`` (the PASPO policy's LP path) against HiGHS on PASPO-synth-20 prefixes
    that leave 1e-4 of the mass: points near the vertex maximising a weighted mass on the
    first k entries. The float32 simplex's tolerances are absolute, so the plain form's
    bounds are off by ~1e-6 there; in remaining-mass coordinates they stay near 1e-7."""
    import envs_jax

    env, params = envs_jax.make("PASPO-synth-20")
    A, b = env.exact_constraints
    n, rng = 20, np.random.default_rng(0)
    prefixes, idx, ref = [], [], []
    for _ in range(8):
        k = int(rng.integers(3, 15))
        c = np.zeros(n)
        c[:k] = -rng.random(k)
        x = so.linprog(c, A_ub=A, b_ub=b, A_eq=np.ones((1, n)), b_eq=[1.0], bounds=[(0, 1)] * n, method="highs").x
        p = ((1 - 1e-4) * x + 1e-4 / n).astype(np.float32)  # slightly inside, 1e-4 of the mass left
        for i in range(k, n - 1):
            hl, hh = highs_bounds(A, b, p.astype(np.float64), i)
            if not np.isfinite(hl):
                break
            prefixes.append(p), idx.append(i), ref.append((hl, hh))
    assert len(ref) > 40
    ref = np.array(ref)
    P, I = jnp.asarray(np.stack(prefixes)), jnp.asarray(np.array(idx, np.int32))
    bounds = lambda rescale: jax.jit(jax.vmap(lambda p, i: lp.allocation_bounds(
        params.A, params.b, p, i, rescale=rescale)))(P, I)
    errors = {}
    for rescale in (False, True):
        lo, hi, ok = bounds(rescale)
        assert bool(jnp.all(ok))
        errors[rescale] = np.abs(np.stack([np.asarray(lo, np.float64), np.asarray(hi, np.float64)], 1) - ref).max()
    assert errors[True] < 1e-6, errors
    assert errors[True] < errors[False] / 3, errors


def test_chain_warm_start_gives_the_same_intervals_with_fewer_pivots():
    """``lp.chain_warm_start`` (bases of the Chebyshev centre's chain) against HiGHS on
    PASPO-synth-20 prefixes of uniform points, for the centre's warm start and for one from
    a far-off reference (a point near a vertex): the answer must not depend on the start,
    and from the centre the dual simplex must need fewer pivots than from the box basis."""
    import envs_jax
    from paspo_jax import polytope

    env, params = envs_jax.make("PASPO-synth-20")
    A, b = env.exact_constraints
    n = A.shape[1]
    pts = uniform_points(A, b, 6, seed=3)
    centre = polytope.Polytope(A, b, name="synth20", fast_path=False).chebyshev_center()[0]
    c = np.zeros(n)
    c[0] = -1.0
    far = so.linprog(c, A_ub=A, b_ub=b, A_eq=np.ones((1, n)), b_eq=[1.0], bounds=[(0, 1)] * n, method="highs").x
    far = 0.99 * far + 0.01 * centre
    idx = np.arange(0, n - 1, 3)
    P = jnp.asarray(np.repeat(pts, len(idx), 0), jnp.float32)
    I = jnp.asarray(np.tile(idx, len(pts)), jnp.int32)
    ref = np.array([highs_bounds(A, b, p.astype(np.float64), int(i)) for p, i in zip(np.asarray(P), np.asarray(I))])
    assert np.all(np.isfinite(ref))
    pivots = {}

    @jax.jit  # the warm start is an argument: one program per pytree structure (3, not 8)
    def solve(warm):
        return jax.vmap(lambda p, i: (lp.allocation_bounds(params.A, params.b, p, i, rescale=True, warm=warm),
                                      lp.allocation_lps(params.A, params.b, p, i, warm=warm).nit))(P, I)

    for name, r in (("box", None), ("centre", centre), ("far", far), ("centre, bases only", centre)):
        warm = None if r is None else lp.chain_warm_start(params.A, params.b, jnp.asarray(r, jnp.float32))
        if name.endswith("bases only"):  # each LP inverts its start itself (the policy's rollout)
            warm = warm.bases_only()
        (lo, hi, ok), nit = solve(warm)
        assert bool(jnp.all(ok)), name
        err = np.abs(np.stack([np.asarray(lo, np.float64), np.asarray(hi, np.float64)], 1) - ref).max()
        assert err < 2e-6, (name, err)
        pivots[name] = float(jnp.mean(nit))
    assert pivots["centre"] < 0.7 * pivots["box"], pivots


def test_chain_warm_start_rejects_wrong_shapes():
    A = jnp.asarray(np.vstack([np.eye(3)[0], -np.eye(3)[1]]), jnp.float32)
    b = jnp.asarray([0.8, -0.1], jnp.float32)
    warm = lp.chain_warm_start(A, b, jnp.asarray([0.3, 0.4, 0.3], jnp.float32))
    A4 = jnp.zeros((2, 4), jnp.float32)
    with pytest.raises(ValueError, match="WarmStart.basis_min has shape"):
        lp.allocation_bounds(A4, b, jnp.full((4,), 0.25), 0, warm=warm)
