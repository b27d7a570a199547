"""Small dense linear algebra in pure JAX: no LAPACK custom call in the compiled program.

Why (one line): jaxlib 0.10.x's CPU LAPACK kernels (``jnp.linalg.solve/inv/qr``, and so
flax's orthogonal initializer) deadlock when several *batched* calls run at once.

In more detail: the CPU FFI kernels behind ``lapack_sgetrf_ffi``, ``lapack_sgeqrf_ffi``, ...
split a batched call into tasks on the same XLA intra-op thread pool they run on and then
block on a counter until those tasks finish (``jax::ParallelBatchMap``); when as many
batched LAPACK kernels run concurrently as the pool has threads (two on a 2-core machine:
e.g. the actor's and the critic's orthogonal-init QR under a seed ``vmap``), every worker
waits and nobody runs the queued tasks (``benchmarks/RESULTS_lp.md``, "No hang"). jaxlib
0.9.2 has no ``ParallelBatchMap``. The functions here lower to plain HLO (``while`` loops
of gathers, dots and elementwise updates), which XLA schedules itself.

They are meant for the small matrices of the project (n up to a few hundred): each
algorithm is two ``lax.fori_loop``s over columns / rows (the traced program has the same
size for any n), each step touching the whole matrix with masks (no dynamic shapes), so a
solve costs ``~2 n^2 (n + k)`` flops instead of LAPACK's ``~2 n^3 / 3 + 2 n^2 k``, and a
batched one rewrites the whole batch per step (memory-bound: slower than LAPACK for n of
tens, see ``benchmarks/RESULTS_lp.md``). All functions act on one matrix; batch them with
``jax.vmap``. Only forward values are tested (gradients would flow through the loops).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["solve", "inv", "qr", "orthogonal"]

_HIGHEST = lax.Precision.HIGHEST


def _float_dtype(*xs):
    return jnp.result_type(*[jnp.asarray(x).dtype for x in xs], jnp.float32)


def _eliminate(A: jax.Array, B: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gaussian elimination with partial pivoting on ``[A | B]``.

    A: (n, n), B: (n, k). Returns ``(U (n, n), C (n, k))`` with ``P A = L U`` (LAPACK's
    ``getrf`` pivoting: at step j the row of largest ``|a_ij|``, i >= j, first on ties)
    and ``C = L^{-1} P B``. Below-diagonal entries of ``U`` hold rounding residue, not
    zeros (the back substitution never reads them).
    """
    n = A.shape[0]
    M = jnp.concatenate([A, B], axis=1)
    rows = jnp.arange(n)

    def step(j, M):
        col = lax.dynamic_index_in_dim(M, j, axis=1, keepdims=False)
        p = jnp.argmax(jnp.where(rows >= j, jnp.abs(col), -jnp.inf))
        row_j = lax.dynamic_index_in_dim(M, j, axis=0, keepdims=False)
        row_p = jnp.take(M, p, axis=0)
        # Swap rows j and p, then eliminate below row j (elementwise selects: one fused loop body).
        M = jnp.where((rows == j)[:, None], row_p[None, :], jnp.where((rows == p)[:, None], row_j[None, :], M))
        pivot = lax.dynamic_index_in_dim(row_p, j, keepdims=False)
        col = jnp.where(rows == p, lax.dynamic_index_in_dim(row_j, j, keepdims=False), col)
        f = jnp.where(rows > j, col / pivot, 0.0)
        return M - f[:, None] * row_p[None, :]

    M = lax.fori_loop(0, n, step, M)
    return M[:, :n], M[:, n:]


def _back_substitute(U: jax.Array, C: jax.Array) -> jax.Array:
    """``X = U^{-1} C`` for upper triangular ``U`` (n, n) (entries below the diagonal
    ignored) and ``C`` (n, k), row by row from the last."""
    n = U.shape[0]

    def step(t, X):
        i = n - 1 - t
        u_i = lax.dynamic_index_in_dim(U, i, axis=0, keepdims=False)
        c_i = lax.dynamic_index_in_dim(C, i, axis=0, keepdims=False)
        # Rows >= i of X are still zero, rows > i are done: u_i @ X = sum_{l > i} u_il x_l.
        x_i = (c_i - jnp.dot(u_i, X, precision=_HIGHEST)) / lax.dynamic_index_in_dim(u_i, i, keepdims=False)
        return lax.dynamic_update_index_in_dim(X, x_i, i, axis=0)

    return lax.fori_loop(0, n, step, jnp.zeros_like(C))


def solve(A, b) -> jax.Array:
    """``x = A^{-1} b`` by Gaussian elimination with partial pivoting (LU), then back
    substitution.

    A: (n, n); b: (n,) or (n, k). Returns x with b's shape, in the common floating dtype
    of A and b (at least float32). Replaces ``jnp.linalg.solve`` (LAPACK ``getrf`` +
    ``getrs``) inside jitted / vmapped code; same pivoting, so the same rounding behaviour
    (backward stable up to the usual growth factor). A singular ``A`` gives inf / NaN, as
    ``jnp.linalg.solve`` does. One matrix: use ``jax.vmap`` for a batch.
    """
    A, b = jnp.asarray(A), jnp.asarray(b)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"linalg.solve: A must be a square matrix (n, n), got shape {A.shape}; vmap for batches")
    n = A.shape[0]
    if b.ndim not in (1, 2) or b.shape[0] != n:
        raise ValueError(f"linalg.solve: b must have shape ({n},) or ({n}, k) for A {A.shape}, got {b.shape}")
    dtype = _float_dtype(A, b)
    B = b.astype(dtype).reshape(n, -1)
    U, C = _eliminate(A.astype(dtype), B)
    return _back_substitute(U, C).reshape(b.shape)


def inv(A) -> jax.Array:
    """``A^{-1}`` (n, n): :func:`solve` with the identity as right-hand side.

    Replaces ``jnp.linalg.inv`` (LAPACK ``getrf`` + ``getrs``); same contract as
    :func:`solve` (singular ``A``: inf / NaN; one matrix, ``jax.vmap`` for a batch).
    """
    A = jnp.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"linalg.inv: A must be a square matrix (n, n), got shape {A.shape}; vmap for batches")
    dtype = _float_dtype(A)
    return solve(A.astype(dtype), jnp.eye(A.shape[0], dtype=dtype))


def qr(A) -> tuple[jax.Array, jax.Array]:
    """Reduced QR factorisation by Householder reflections: ``A = Q R``.

    A: (m, n), k = min(m, n). Returns ``Q`` (m, k) with orthonormal columns and ``R``
    (k, n) upper triangular (exact zeros below the diagonal), like
    ``jnp.linalg.qr(A, mode="reduced")`` (LAPACK ``geqrf`` + ``orgqr``), which it replaces.
    Same sign convention as LAPACK's reflectors (``dlarfg``): ``R_jj = -sign(x_j) ||x||``
    for the column part ``x`` being reduced, and no reflection (``R_jj = x_j``) when ``x``
    has nothing below its first entry (e.g. the last row when m <= n, a zero column).
    For full-rank ``A`` the pair with a positive diagonal, ``Q diag(s)``, ``diag(s) R``
    with ``s = sign(diag R)``, is unique, so it agrees with any other QR up to rounding.
    One matrix: use ``jax.vmap`` for a batch.
    """
    A = jnp.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"linalg.qr: A must be a matrix (m, n), got shape {A.shape}; vmap for batches")
    dtype = _float_dtype(A)
    R = A.astype(dtype)
    m, n = R.shape
    k = min(m, n)
    rows = jnp.arange(m)

    def reduce(j, carry):
        R, V = carry
        x = jnp.where(rows >= j, lax.dynamic_index_in_dim(R, j, axis=1, keepdims=False), 0.0)
        x_j = lax.dynamic_index_in_dim(x, j, keepdims=False)
        alpha = -jnp.where(x_j >= 0, 1.0, -1.0).astype(dtype) * jnp.linalg.norm(x)
        v = jnp.where(rows == j, x - alpha, x)  # H = I - 2 v v^T / |v|^2 maps x to alpha e_j
        v_norm = jnp.linalg.norm(v)
        # Nothing below the diagonal: no reflection (LAPACK's dlarfg: tau = 0, R_jj = x_j).
        reflect = jnp.any((rows > j) & (x != 0))
        v = jnp.where(reflect, v / jnp.where(reflect, v_norm, 1.0), 0.0)
        R = R - 2.0 * v[:, None] * jnp.dot(v, R, precision=_HIGHEST)[None, :]
        return R, lax.dynamic_update_index_in_dim(V, v, j, axis=1)

    R, V = lax.fori_loop(0, k, reduce, (R, jnp.zeros((m, k), dtype)))

    def accumulate(t, Q):  # Q = H_0 H_1 ... H_{k-1} I[:, :k], applied from the last
        v = lax.dynamic_index_in_dim(V, k - 1 - t, axis=1, keepdims=False)
        return Q - 2.0 * v[:, None] * jnp.dot(v, Q, precision=_HIGHEST)[None, :]

    Q = lax.fori_loop(0, k, accumulate, jnp.eye(m, k, dtype=dtype))
    return Q, jnp.triu(R[:k])


def orthogonal(scale: float = 1.0, column_axis: int = -1, dtype=None):
    """Initializer of (semi-)orthogonal matrices, a drop-in for
    ``flax.linen.initializers.orthogonal`` (= ``jax.nn.initializers.orthogonal``) built on
    :func:`qr`.

    ``init(key, shape, dtype=dtype)``: ``shape`` has >= 2 axes; with ``c = shape[column_axis]``
    and ``r = prod(shape) / c``, draws ``Z ~ N(0, 1)`` of shape ``(max(r, c), min(r, c))``
    (the same call to ``jax.random.normal`` as ``jax.random.orthogonal``), takes
    ``Q diag(sign(diag R))`` of its reduced QR (Haar-distributed; Mezzadri 2007), transposes
    it when ``r < c``, reshapes to ``shape`` with the columns on ``column_axis`` and multiplies
    by ``scale``. Same key -> the same matrix as flax's initializer up to rounding (the QR with
    a positive diagonal is unique). Replaces it because its batched LAPACK QR deadlocks under
    ``vmap`` on jaxlib 0.10.x (module docstring).
    """

    def init(key, shape, dtype=dtype, out_sharding=None):
        if out_sharding is not None:
            raise NotImplementedError("linalg.orthogonal: out_sharding is not supported")
        shape = tuple(int(s) for s in shape)
        dtype = jax.dtypes.canonicalize_dtype(jnp.float64) if dtype is None else dtype
        if len(shape) < 2:
            raise ValueError(f"orthogonal initializer requires at least a 2D shape, got {shape}")
        if any(s == 0 for s in shape):
            return jnp.zeros(shape, dtype)
        n_cols = shape[column_axis]
        n_rows = math.prod(shape) // n_cols
        z = jax.random.normal(key, (max(n_rows, n_cols), min(n_rows, n_cols)), dtype)
        q, r = qr(z)
        q = q * jnp.sign(jnp.diagonal(r))[None, :]
        if n_rows < n_cols:
            q = q.T
        q = jnp.reshape(q, tuple(np.delete(shape, column_axis)) + (n_cols,))
        return jnp.asarray(scale, dtype) * jnp.moveaxis(q, -1, column_axis)

    return init
