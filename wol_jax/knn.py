"""The Wolpertinger action embedding and its exact k-nearest-neighbour lookup.

Embedding (the IAR original's, ``utils/rl_algo/action_space.py``): a discrete action is a
point of the cube ``[-1, 1]^d``. A ``MultiDiscrete(nvec)`` action ``a`` (d = ``len(nvec)``)
sits at its normalised coordinates ``e_l = -1 + 2 a_l / (nvec_l - 1)`` (``e_l = 0`` when
``nvec_l = 1``); a ``Discrete(n)`` action is the 1-d case ``d = 1``. ``table(nvec)`` lists
all ``N = prod(nvec)`` embeddings, row ``i`` = the action whose mixed-radix digits are ``i``
(entry 0 the most significant, as ``np.indices``).

``knn(table, p, k)`` returns the indices of the ``k`` rows nearest to ``p`` (Euclidean),
nearest first: an exact brute-force search (``N`` squared distances and ``lax.top_k``),
where the original used FLANN's approximate kd-tree. Ties go to the lower row index.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MAX_ACTIONS = 2_000_000  # a table of more joint actions is refused (memory, and a brute-force search per step)


def action_nvec(space) -> np.ndarray:
    """``nvec`` of a gymnax ``Discrete`` (``[n]``) or ``envs_jax.spaces.MultiDiscrete`` space."""
    if hasattr(space, "nvec"):
        return np.asarray(space.nvec, dtype=np.int64)
    if hasattr(space, "n") and not hasattr(space, "low"):
        return np.asarray([int(space.n)], dtype=np.int64)
    raise ValueError(f"Wol-DDPG needs a Discrete or MultiDiscrete action space, got {space!r}")


def embed(actions: jax.Array, nvec) -> jax.Array:
    """Embedding of integer actions (..., d) -> float32 (..., d) in ``[-1, 1]``."""
    nvec = jnp.asarray(np.asarray(nvec), jnp.float32)
    span = jnp.maximum(nvec - 1.0, 1.0)
    e = -1.0 + 2.0 * jnp.asarray(actions, jnp.float32) / span
    return jnp.where(nvec > 1, e, 0.0)


def all_actions(nvec) -> np.ndarray:
    """Every joint action (N, d) int32, row i = the mixed-radix digits of i (entry 0 most significant)."""
    nvec = np.asarray(nvec, dtype=np.int64)
    n = int(np.prod(nvec))
    if n > MAX_ACTIONS:
        raise ValueError(f"Wol-DDPG enumerates the joint actions: {n} exceed the limit {MAX_ACTIONS}")
    return np.indices(tuple(nvec)).reshape(len(nvec), -1).T.astype(np.int32)


def table(nvec) -> jax.Array:
    """Embeddings of every joint action, (N, d) float32 (row order of :func:`all_actions`)."""
    return embed(all_actions(nvec), nvec)


def k_of(num_actions: int, k_ratio: float) -> int:
    """The original's k: ``max(1, int(N * k_ratio))``."""
    if not 0.0 < k_ratio <= 1.0:
        raise ValueError(f"k_ratio must lie in (0, 1], got {k_ratio}")
    return max(1, int(num_actions * k_ratio))


def knn(tab: jax.Array, point: jax.Array, k: int) -> jax.Array:
    """Row indices (k,) int32 of the ``k`` rows of ``tab`` (N, d) nearest to ``point`` (d,),
    nearest first (exact; ties to the lower index)."""
    d2 = jnp.sum((tab - point[None, :]) ** 2, axis=-1)
    _, idx = jax.lax.top_k(-d2, int(k))
    return idx.astype(jnp.int32)
