"""CNN features extractor for image observations (Pistonball ``obs_type="image"``).

Followed from the IAR original (cameron-chen/flow-iar): its Pistonball runs (``scripts.sh``,
``-fea_ext naturecnn``) use Stable-Baselines3's ``NatureCNN`` (``repo1/utils/util.py``,
``features_extractor_class == "naturecnn"``), the features extractor of an SB3
``ActorCriticPolicy``, i.e. SHARED by actor and critic, with ``net_arch``
``[dict(vf=[64])]`` for the flow policy (the flow's context is the features themselves) and
``[dict(pi=[64], vf=[64])]`` otherwise (MASK), tanh hidden layers. NatureCNN on one
(H, W, C) image x in [0, 1]:

    h1 = relu(conv(x,  32, kernel 8, stride 4, VALID))
    h2 = relu(conv(h1, 64, kernel 4, stride 2, VALID))
    h3 = relu(conv(h2, 64, kernel 3, stride 1, VALID))
    f  = relu(W flatten(h3) + b)                          f: (features,)

For the 96 x 96 x 1 Pistonball image: 23 x 23 x 32 -> 10 x 10 x 64 -> 8 x 8 x 64 = 4096 -> f.
Initialisation: orthogonal, gain sqrt(2), zero biases (SB3's ``ortho_init`` of the features
extractor), via ``ppo_jax.linalg.orthogonal`` (no LAPACK under vmap).

Deviations: ``features`` is the policy's ``context_dim`` (default 64; NatureCNN's
``features_dim`` is 512: pass ``context_dim=512`` to reproduce); images stay channels-last
(H, W, C) and are flattened in (H, W, C) order (PyTorch flattens (C, H, W): a fixed
permutation of the linear layer's inputs, the same function class); no /255 scaling (our
image is already in [0, 1], SB3 divides uint8 images by 255). The original's own
``CnnExtractor`` (``repo1/utils/torch_layers.py``, two 3x3 convs) is for images <= 16 x 16
and is not used on Pistonball.

Contract: ``CNNEncoder(image_shape, features)`` maps the observation of ONE env, flat
(prod(image_shape),) or shaped ``image_shape``, to ``(features,)``; any other size raises
``ValueError`` naming the expected shape (at trace time; shapes are static).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from ppo_jax.linalg import orthogonal

# NatureCNN's convolutions: (channels, kernel, stride), VALID padding, ReLU after each
NATURE_CONVS: tuple[tuple[int, int, int], ...] = ((32, 8, 4), (64, 4, 2), (64, 3, 1))


def conv_output_hw(hw: Sequence[int], convs=NATURE_CONVS) -> tuple[int, int]:
    """Spatial size after the VALID convolutions: ``(n - k) // s + 1`` per layer (may be <= 0)."""
    h, w = int(hw[0]), int(hw[1])
    for _, k, s in convs:
        h, w = (h - k) // s + 1, (w - k) // s + 1
    return h, w


def image_shape_of(env, env_params) -> tuple[int, int, int]:
    """The (H, W, C) observation shape of an image env; ``ValueError`` for any other env
    (not 3-D, or too small for NatureCNN's convolutions: H, W >= 36)."""
    space = env.observation_space(env_params)
    shape = tuple(int(d) for d in (getattr(space, "shape", None) or ()))
    if len(shape) != 3 or min(conv_output_hw(shape[:2])) < 1 or shape[2] < 1:
        raise ValueError(
            f"encoder='cnn' (NatureCNN, the IAR original's Pistonball encoder) needs an image "
            f"observation (H, W, C) with H, W >= 36, but {type(env).__name__} observes shape {shape}; "
            f"use an image env (e.g. Pistonball-image-v1) or encoder='mlp'"
        )
    return shape


class CNNEncoder(nn.Module):
    """NatureCNN (module docstring): one observation -> features (``features``,)."""

    image_shape: tuple[int, int, int]
    features: int = 64

    @nn.compact
    def __call__(self, obs):
        shape = tuple(int(d) for d in self.image_shape)
        size = int(np.prod(shape))
        if obs.shape != shape and obs.shape != (size,):
            raise ValueError(
                f"CNNEncoder expects one image observation of shape {shape} (or flat ({size},)), "
                f"got shape {tuple(obs.shape)}"
            )
        x = jnp.reshape(obs, shape).astype(jnp.float32)
        init = orthogonal(np.sqrt(2))
        for ch, k, s in NATURE_CONVS:
            x = nn.relu(nn.Conv(ch, (k, k), strides=(s, s), padding="VALID", kernel_init=init)(x))
        return nn.relu(nn.Dense(self.features, kernel_init=init)(jnp.ravel(x)))
