"""ppo_jax.linalg: pure-JAX solve / inv / qr / orthogonal init against numpy and flax.

Specifications:
- solve and inv equal numpy's LAPACK answers (float64 and float32, well and moderately
  ill-conditioned matrices, a zero leading entry that needs pivoting, vector and matrix
  right-hand sides), also as one vmapped batch, with backward errors at rounding level;
- qr: Q R = A, Q^T Q = I, R upper triangular, and (Q, R) equal numpy's reduced QR (same
  Householder sign convention) for tall, wide and square matrices and a zero column;
- orthogonal init equals flax's own initializer on the same key (same normal draw, QR with
  a positive diagonal is unique), for square, tall, wide and 3-axis shapes and both column
  axes, and is (semi-)orthogonal times the scale; under vmap too;
- none of them lowers to a LAPACK custom call; bad shapes give one clear error.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppo_jax import linalg


def random_matrix(rng, n, cond):
    """n x n matrix with singular values log-spaced from 1 to 1/cond (random orthogonal
    factors from numpy)."""
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    V, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (U * np.logspace(0, -np.log10(cond), n)) @ V.T


# (dtype, condition number, relative forward-error tolerance ~ cond * eps * small factor)
CASES = [(np.float64, 1e1, 1e-12), (np.float64, 1e8, 1e-5), (np.float32, 1e1, 1e-4), (np.float32, 1e3, 1e-2)]

# One compiled program per dtype, shared by the cases (vector and matrix right-hand sides, inverse).
_solve_inv = jax.jit(jax.vmap(lambda A, b, B: (linalg.solve(A, b), linalg.solve(A, B), linalg.inv(A))))


@pytest.mark.parametrize("dtype,cond,tol", CASES)
def test_solve_and_inv_equal_numpy_batched(dtype, cond, tol):
    rng = np.random.default_rng(0)
    n, batch = 12, 6
    A = np.stack([random_matrix(rng, n, cond) for _ in range(batch)])
    A[0, 0, :] = 0.0  # zero leading entry ...
    A[0, 0, -1] = 1.0  # ... (still nonsingular): needs a row exchange
    A[1, :, 0] = np.where(np.arange(n) == n - 1, 1.0, 0.0)  # first column pivot only in the last row
    A[2, 0, 0] = 1e-30  # tiny leading entry: without pivoting the growth factor is ~1e30
    A = A.astype(dtype)
    b = rng.normal(size=(batch, n)).astype(dtype)
    Bm = rng.normal(size=(batch, n, 3)).astype(dtype)
    with jax.enable_x64(dtype == np.float64):
        x, X, Ainv = (np.asarray(v) for v in _solve_inv(A, b, Bm))
    assert x.dtype == dtype and X.shape == Bm.shape and Ainv.dtype == dtype
    A64 = A.astype(np.float64)
    for k in range(batch):
        ref_x = np.linalg.solve(A64[k], b[k].astype(np.float64))
        ref_X = np.linalg.solve(A64[k], Bm[k].astype(np.float64))
        ref_inv = np.linalg.inv(A64[k])
        scale = lambda r: np.max(np.abs(r))
        assert np.max(np.abs(x[k] - ref_x)) <= tol * scale(ref_x)
        assert np.max(np.abs(X[k] - ref_X)) <= tol * scale(ref_X)
        assert np.max(np.abs(Ainv[k] - ref_inv)) <= tol * scale(ref_inv)
        # Backward stability (independent of the condition number): small residual.
        eps = np.finfo(dtype).eps
        resid = np.max(np.abs(A64[k] @ x[k] - b[k])) / (np.max(np.abs(A64[k])) * scale(x[k]))
        assert resid <= 50 * n * eps


def test_singular_matrix_gives_non_finite_values():
    x = np.asarray(jax.jit(linalg.solve)(jnp.ones((3, 3)), jnp.ones(3)))
    assert not np.all(np.isfinite(x))


_qr = jax.jit(linalg.qr)


@pytest.mark.parametrize("shape,dtype", [((7, 4), np.float64), ((4, 7), np.float64), ((6, 6), np.float64),
                                         ((1, 3), np.float64), ((3, 1), np.float64), ((7, 4), np.float32)])
def test_qr_equals_numpy_reduced_qr(shape, dtype):
    rng = np.random.default_rng(1)
    A = rng.normal(size=shape).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    with jax.enable_x64(dtype == np.float64):
        Q, R = (np.asarray(v) for v in _qr(A))
    k = min(shape)
    assert Q.shape == (shape[0], k) and R.shape == (k, shape[1]) and Q.dtype == dtype
    np.testing.assert_array_equal(np.tril(R, -1), 0.0)
    np.testing.assert_allclose(Q.T @ Q, np.eye(k), atol=tol)
    np.testing.assert_allclose(Q @ R, A, atol=tol)
    Qn, Rn = np.linalg.qr(A.astype(np.float64))
    np.testing.assert_allclose(Q, Qn, atol=tol)
    np.testing.assert_allclose(R, Rn, atol=tol)


def test_qr_zero_column_and_vmap():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(4, 6, 5))
    A[1, :, 2] = 0.0
    with jax.enable_x64(True):
        Q, R = (np.asarray(v) for v in jax.jit(jax.vmap(linalg.qr))(A))
    for k in range(4):
        Qn, Rn = np.linalg.qr(A[k])
        np.testing.assert_allclose(Q[k], Qn, atol=1e-12)
        np.testing.assert_allclose(R[k], Rn, atol=1e-12)


# (shape, column_axis): square, tall, wide, 3 axes with the columns in the middle, columns first.
ORTHO_SHAPES = [((32, 32), -1), ((40, 6), -1), ((3, 24), -1), ((2, 3, 4), 1), ((6, 3), 0)]


def test_orthogonal_init_equals_flax_on_the_same_key():
    key = jax.random.PRNGKey(7)
    scale = float(np.sqrt(2))
    both = lambda init: jax.jit(lambda k: [init(axis)(kk, shape, jnp.float32) for kk, (shape, axis) in
                                           zip(jax.random.split(k, len(ORTHO_SHAPES)), ORTHO_SHAPES)])(key)
    ours = both(lambda axis: linalg.orthogonal(scale, column_axis=axis))
    ref = both(lambda axis: nn.initializers.orthogonal(scale, column_axis=axis))
    for (shape, axis), o, f in zip(ORTHO_SHAPES, ours, ref):
        o, f = np.asarray(o), np.asarray(f)
        assert o.dtype == np.float32 and o.shape == shape
        np.testing.assert_allclose(o, f, atol=2e-5, err_msg=str(shape))
        # (Semi-)orthogonal: the (rows x cols) matrix has orthonormal columns (rows if wider).
        W = np.moveaxis(o, axis, -1).reshape(-1, shape[axis]).astype(np.float64) / scale
        G = W.T @ W if W.shape[0] >= W.shape[1] else W @ W.T
        np.testing.assert_allclose(G, np.eye(G.shape[0]), atol=1e-5, err_msg=str(shape))


def test_orthogonal_init_under_vmap_and_in_a_flax_module():
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    dense = lambda init: jax.jit(jax.vmap(lambda k: nn.Dense(8, kernel_init=init).init(k, jnp.ones((16,)))))(keys)
    ours = dense(linalg.orthogonal(0.5))["params"]["kernel"]
    ref = dense(nn.initializers.orthogonal(0.5))["params"]["kernel"]
    assert ours.shape == (3, 16, 8)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), atol=1e-5)


def test_no_lapack_custom_call_in_the_lowered_programs():
    A, b = jnp.eye(5) + 0.1, jnp.ones((4, 5))
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    programs = {
        "solve": jax.jit(jax.vmap(linalg.solve, (None, 0))).lower(A, b),
        "inv": jax.jit(jax.vmap(linalg.inv)).lower(jnp.stack([A] * 4)),
        "qr": jax.jit(jax.vmap(linalg.qr)).lower(jnp.stack([A] * 4)),
        "orthogonal": jax.jit(jax.vmap(lambda k: linalg.orthogonal()(k, (9, 5)))).lower(keys),
    }
    for name, lowered in programs.items():
        assert "lapack" not in lowered.as_text().lower(), name
    # The check can fail: jnp.linalg's batched solve does lower to LAPACK here.
    assert "lapack" in jax.jit(jax.vmap(jnp.linalg.solve, (None, 0))).lower(A, b).as_text().lower()


def test_bad_shapes_raise_one_clear_error():
    with pytest.raises(ValueError, match="square"):
        linalg.solve(jnp.ones((2, 3)), jnp.ones(2))
    with pytest.raises(ValueError, match="b must have shape"):
        linalg.solve(jnp.eye(3), jnp.ones(4))
    with pytest.raises(ValueError, match="square"):
        linalg.inv(jnp.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="matrix"):
        linalg.qr(jnp.ones(3))
    with pytest.raises(ValueError, match="2D"):
        linalg.orthogonal()(jax.random.PRNGKey(0), (3,))
