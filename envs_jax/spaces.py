"""Spaces gymnax 1.0.1 lacks, as gymnax ``Space`` subclasses (jittable ``sample``/``contains``).

:class:`MultiDiscrete` is the action space of ERA (``L`` resources, each on one of ``K``
nodes) and MU-location (``F`` facilities, each on one of ``size**2`` cells). Why not a gymnax
``Box`` with an int dtype: ``Box.sample`` truncates a uniform float drawn from
``[low, high)``, so it never returns ``high`` (the last node or cell), and Box-dispatching
code (the default MLP policy) reads a ``Box`` as continuous. Why not a ``Tuple`` of
``Discrete``: it samples Python tuples, not one int array. gymnax's
``gymnax_space_to_gym_space`` does not convert this class (it knows only its own four), so
``GymnaxToGymWrapper.action_space`` raises for these envs; their ``reset``/``step`` work.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces


class MultiDiscrete(spaces.Space):
    """``L`` integer entries, entry ``l`` in ``[0, nvec[l])``; samples an int array ``(L,)``.

    ``low``/``high`` are inclusive bounds like ``Box``'s (``low = 0``, ``high = nvec - 1``), so
    code reading bounds works, but it is not a ``Box``. ``sample`` is uniform over all
    ``prod(nvec)`` values, upper ones included; ``contains`` is exact.

    >>> MultiDiscrete([6, 6, 6]).sample(jax.random.PRNGKey(0)).shape
    (3,)
    """

    def __init__(self, nvec, dtype: Any = jnp.int32):
        self.nvec = np.asarray(nvec, dtype=np.int64)
        if self.nvec.ndim != 1 or self.nvec.size == 0 or (self.nvec < 1).any():
            raise ValueError(f"nvec must be a non-empty 1-d array of positive ints, got {nvec!r}")
        self.shape = (int(self.nvec.size),)
        self.dtype = dtype
        self.low = 0
        self.high = jnp.asarray(self.nvec - 1, dtype=dtype)

    def __repr__(self) -> str:
        return f"MultiDiscrete(nvec={self.nvec.tolist()}, dtype={np.dtype(self.dtype).name})"

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, self.shape, 0, jnp.asarray(self.nvec), dtype=self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        return jnp.all((x >= 0) & (x < jnp.asarray(self.nvec)))


__all__ = ["MultiDiscrete"]
