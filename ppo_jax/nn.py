"""The project's one fully connected network (``MLP``) and its two initialisations.

``MLP(hidden, out)`` maps ``x`` (d,) (or (..., d)) to (..., out): ``len(hidden)`` layers
``x <- activation(W x + b)``, then a linear output layer of ``out`` units (``out=None``: the
last hidden activation is the output). Parameters: ``{"params": {"Dense_0": {"kernel": (d,
hidden[0]), "bias": (hidden[0],)}, ..., f"Dense_{len(hidden)}": ...}}``; biases start at 0.

``init_scheme``:

- ``"orthogonal"`` (PureJaxRL's actor-critic): hidden kernels orthogonal with gain
  ``sqrt(2)``, the output kernel with gain ``out_scale`` (``ppo_jax.linalg.orthogonal``:
  flax's distribution without LAPACK);
- ``"torch"`` (PyTorch ``nn.Linear``'s default, as PASPO's original code): kernels
  ``U(+-1/sqrt(fan_in))``, the output kernel times ``out_scale``. Biases start at zero in
  both schemes (PyTorch draws them ``U(+-1/sqrt(fan_in))`` too: a known deviation).

Example::

    >>> net = MLP((64, 64), 3, "tanh", out_scale=0.01)
    >>> params = net.init(jax.random.PRNGKey(0), jnp.zeros(5))
    >>> net.apply(params, jnp.ones(5)).shape
    (3,)
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import numpy as np

from ppo_jax.linalg import orthogonal

__all__ = ["MLP", "torch_default_init", "torch_mlp"]

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def torch_default_init(scale: float = 1.0):
    """PyTorch ``nn.Linear``'s default weight init (U(+-1/sqrt(fan_in))), times ``scale``."""
    return nn.initializers.variance_scaling(scale**2 / 3.0, "fan_in", "uniform")


class MLP(nn.Module):
    """Fully connected network (module docstring): ``hidden`` widths, ``out`` units or None,
    ``activation`` "tanh" or "relu", output-layer gain ``out_scale``, ``init_scheme``
    "orthogonal" or "torch"."""

    hidden: Sequence[int]
    out: int | None = None
    activation: str = "tanh"
    out_scale: float = 0.01
    init_scheme: str = "orthogonal"

    @nn.compact
    def __call__(self, x):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.init_scheme == "orthogonal":
            hidden_init, out_init = orthogonal(np.sqrt(2)), orthogonal(self.out_scale)
        elif self.init_scheme == "torch":
            hidden_init, out_init = torch_default_init(), torch_default_init(self.out_scale)
        else:
            raise ValueError(f"MLP: init_scheme must be 'orthogonal' or 'torch', got {self.init_scheme!r}")
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=hidden_init)(x))
        if self.out is not None:
            x = nn.Dense(self.out, kernel_init=out_init)(x)
        return x


def torch_mlp(hidden: Sequence[int], out: int | None = None, out_scale: float = 1.0) -> MLP:
    """PASPO's networks (the original's PyTorch layers): ReLU, PyTorch default init."""
    return MLP(tuple(hidden), out, "relu", out_scale, init_scheme="torch")
