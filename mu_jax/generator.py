"""The candidate-action generator g_theta(s) = (a_1, ..., a_m), a_i ~ pi_theta^i(.|s)
(Ahmad et al. 2020, Sec. 4): a convolutional torso and one policy head per candidate.

Heads (``heads(kind, dist)``, a distrax distribution of batch shape [m]):

* ``categorical``: F factors of K values per candidate, ``int [m, F]``;
  ``log pi_i(a) = sum_f log softmax(logits_{i,f})[a_f]``.
* ``beta``: actions in [0, 1]^d, concentrations ``1 + softplus(.)`` (unimodal heads).
* ``gaussian``: mean ``sigmoid(.)``, learned state-independent log std; envs clip.

The plain-policy baseline has one head broadcast to m i.i.d. candidates (``expand_heads``).
The original code's networks (``Config.network="orig"``): ``OrigGenerator`` (linear convs,
one softmax per facility over candidates x cells, ``joint_heads``) and ``OrigPolicyNetwork``
(batch-norm residual block, one head shared by the candidates).
Every function acts on one state's head parameters (leading axis = heads); vmap over
states. Differences from the original code: benchmarks/RESULTS_mu.md.

Example::

    dist = Generator(8, "categorical", (2, 100)).apply(params, obs)  # obs [H, W, C]
    a = sample(key, "categorical", dist)                              # int32 [8, 2]
"""

from __future__ import annotations

import functools
import math
from typing import Any

import distrax
import numpy as np
import flax.linen as nn
import jax
import jax.numpy as jnp

HEAD_KINDS = ("categorical", "beta", "gaussian")
NETWORKS = ("ours", "orig")
Dist = dict[str, jax.Array]


class PatchConv(nn.Module):
    """``nn.Conv(features, (3, 3), padding="SAME")`` (same ``kernel [3, 3, C, features]``
    and ``bias``) as patches @ kernel: ``x [..., H, W, C] -> [..., H, W, features]``
    (compiles fast inside ``lax.scan``; see benchmarks/RESULTS_mu.md)."""

    features: int
    kernel_init: Any = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        H, W, C = x.shape[-3:]
        kernel = self.param("kernel", self.kernel_init, (3, 3, C, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        xp = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [(1, 1), (1, 1), (0, 0)])
        patches = jnp.concatenate([xp[..., i : i + H, j : j + W, :] for i in range(3) for j in range(3)], -1)
        return patches @ kernel.reshape(9 * C, self.features) + bias


class Generator(nn.Module):
    """State image ``obs [..., H, W, C]`` -> head parameters: ``{"logits": [..., n_heads, F,
    K]}``, ``{"alpha", "beta": [..., n_heads, d]}`` or ``{"mean", "log_std": [..., n_heads, d]}``
    (``action_shape`` (F, K) or (d,)). ``head_layer``: ``"dense"`` (paper) or ``"spatial"``
    (ours, for states that are images of the action space: per-cell logits plus a per-head
    cell bias; K = H W categorical cells, or a Gaussian mean at the soft-argmax of the cell
    centres ((i + 1/2) / H, (j + 1/2) / W))."""

    n_heads: int
    kind: str
    action_shape: tuple[int, ...]
    channels: int = 32
    init_log_std: float = math.log(0.1)
    head_layer: str = "dense"

    @nn.compact
    def __call__(self, obs: jax.Array) -> Dist:
        x = nn.relu(PatchConv(self.channels)(obs))
        x = nn.relu(PatchConv(self.channels)(x))
        H, W = x.shape[-3], x.shape[-2]
        small = nn.initializers.variance_scaling(0.01, "fan_in", "truncated_normal")
        if self.head_layer == "spatial":
            return self._spatial(x, H, W, small)
        if self.head_layer != "dense":
            raise ValueError(f"unknown head_layer {self.head_layer!r}; expected 'dense' or 'spatial'")
        x = x.reshape(x.shape[:-3] + (-1,))
        lead = x.shape[:-1]
        if self.kind == "categorical":
            F, K = self.action_shape
            logits = nn.Dense(self.n_heads * F * K, kernel_init=small)(x)
            return {"logits": logits.reshape(lead + (self.n_heads, F, K))}
        (d,) = self.action_shape
        if self.kind == "beta":
            raw = nn.Dense(self.n_heads * d * 2, kernel_init=small)(x).reshape(lead + (self.n_heads, d, 2))
            return {"alpha": 1.0 + jax.nn.softplus(raw[..., 0]), "beta": 1.0 + jax.nn.softplus(raw[..., 1])}
        if self.kind == "gaussian":
            mean = jax.nn.sigmoid(nn.Dense(self.n_heads * d)(x)).reshape(lead + (self.n_heads, d))
            return {"mean": mean, "log_std": self._log_std(mean.shape)}
        raise ValueError(f"unknown head kind {self.kind!r}; expected one of {HEAD_KINDS}")

    def _log_std(self, shape):
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.n_heads, shape[-1]))
        return jnp.broadcast_to(log_std, shape)

    def _spatial(self, x, H, W, init):
        lead = x.shape[:-3]
        if self.kind == "categorical":
            F, K = self.action_shape
            if K != H * W:
                raise ValueError(f"spatial categorical heads need K = H * W cells, got K={K}, image {H}x{W}")
            n_out = self.n_heads * F
        elif self.kind == "gaussian":
            if tuple(self.action_shape) != (2,):
                raise ValueError("spatial Gaussian heads need 2-D actions (the image's two axes)")
            n_out = self.n_heads
        else:
            raise ValueError(f"head_layer 'spatial' supports categorical and gaussian heads, not {self.kind!r}")
        logits = nn.Dense(n_out, kernel_init=init)(x).reshape(lead + (H * W, n_out))
        logits = logits + self.param("cell_bias", nn.initializers.normal(0.01), (H * W, n_out))
        logits = jnp.swapaxes(logits, -1, -2)  # [..., n_out, H*W]
        if self.kind == "categorical":
            return {"logits": logits.reshape(lead + (self.n_heads, F, K))}
        rows, cols = jnp.meshgrid((jnp.arange(H) + 0.5) / H, (jnp.arange(W) + 0.5) / W, indexing="ij")
        centres = jnp.stack([rows.reshape(-1), cols.reshape(-1)], -1)  # [H*W, 2]
        mean = jax.nn.softmax(logits, axis=-1) @ centres  # [..., n_heads, 2]
        return {"mean": mean, "log_std": self._log_std(mean.shape)}

# --------------------------------------------------------------------------------------
# The original code's networks (zfahmad/competition ``networks.py``), for the ``paper`` preset.
# --------------------------------------------------------------------------------------

_glorot = nn.initializers.glorot_uniform()  # Keras' default kernel initialiser (biases: zeros)


def _per_head_glorot(key, shape, dtype=jnp.float32):
    """Glorot-uniform of each facility's ``[N, D]`` slice of a ``[F, N, D]`` kernel (one Keras
    Dense per facility; stored output-major so that a row is one output's weights)."""
    init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform", in_axis=-1, out_axis=-2, batch_axis=(0,))
    return init(key, shape, dtype)


def joint_heads(feat: jax.Array, kernel: jax.Array, m: int, K: int) -> Dist:
    """The original's output layer: per facility f, one bias-free Dense ``kernel[f] @ feat``
    to ``m * K`` outputs and ONE softmax over all of them (candidates x cells jointly).

    ``feat [..., D]``, ``kernel [F, m K, D]`` -> ``{"logits": [..., m, F, K]`` (the joint
    log-probabilities ``log p_f(i, c)``), ``"log_mass": [..., m, F]`` (``log sum_c p_f(i, c)``)}.
    Sampling candidate i from ``logits`` normalises per candidate (as tfp's Multinomial does
    in the original); ``log_prob`` adds ``log_mass`` back, giving ``sum_f log p_f(i, a_f)``.
    """
    z = jnp.einsum("...d,fnd->...fn", feat, kernel)  # [..., F, m K]
    logp = jax.nn.log_softmax(z, axis=-1).reshape(z.shape[:-1] + (m, K))  # [..., F, m, K]
    logp = jnp.swapaxes(logp, -3, -2)  # [..., m, F, K]
    return {"logits": logp, "log_mass": jax.nn.logsumexp(logp, axis=-1)}


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def sampled_joint_log_prob(feat, kernel, table, key, n_samples: int):
    """``log pi_i(a_i) = sum_f table[b, f, a_{b,i,f}]`` with a sparse, unbiased backward pass.

    ``feat [B, D]``, ``kernel [F, N, D]`` (``joint_heads``' layer), ``table``: a pair
    ``(logp [B, F, N], idx [B, m, F])`` of the joint log-probabilities ``log_softmax(kernel[f]
    @ feat_b)`` (computed by the caller, held fixed) and the sampled flat indices ``i K + a``;
    returns ``[B, m]``. The exact cotangent of the logits ``z_{b,f}`` is ``sum_i c_{b,i}
    (e_{idx_{b,i,f}} - p_{b,f})``; the backward pass replaces ``p_{b,f}`` by the mean of
    ``n_samples`` one-hot draws from ``p_{b,f}`` (fresh, from ``key``), an unbiased estimate,
    so the gradients of ``feat`` and ``kernel`` touch ``m + n_samples`` kernel rows per (b, f)
    instead of all N: the same gradient in expectation at a fraction of the cost (benchmarks/
    RESULTS_mu.md, "Speed"). The value is exact."""
    logp, idx = table
    return _gather_joint(logp, idx)


def _gather_joint(logp, idx):
    B, m, F = idx.shape
    return jnp.take_along_axis(logp[:, None], idx[..., None], -1)[..., 0].sum(-1)  # [B, m]


def _sjlp_fwd(feat, kernel, table, key, n_samples):
    return sampled_joint_log_prob(feat, kernel, table, key, n_samples), (feat, kernel, table, key)


def _sjlp_bwd(n_samples, res, c):
    feat, kernel, (logp, idx), key = res
    B, m, F = idx.shape
    N = logp.shape[-1]
    draws = jax.random.categorical(key, logp[:, :, None, :], axis=-1, shape=(B, F, n_samples))  # [B, F, S]
    rows = jnp.concatenate([jnp.swapaxes(idx, 1, 2), draws], -1)  # [B, F, m + S]
    total = c.sum(-1)  # [B]
    vals = jnp.concatenate(
        [jnp.broadcast_to(c[:, None, :], (B, F, m)), jnp.broadcast_to(-(total / n_samples)[:, None, None], (B, F, n_samples))],
        -1,
    )  # [B, F, m + S]: dlogp/dz contributions (the loss cotangent c enters here)
    f_idx = jnp.broadcast_to(jnp.arange(F)[None, :, None], rows.shape)
    w = kernel[f_idx, rows]  # [B, F, m + S, D] gathered rows
    d_feat = jnp.einsum("bfr,bfrd->bd", vals, w)
    contrib = vals[..., None] * feat[:, None, None, :]  # [B, F, m + S, D]
    d_kernel = jnp.zeros_like(kernel).at[f_idx.reshape(-1), rows.reshape(-1)].add(contrib.reshape(-1, feat.shape[-1]))
    return d_feat, d_kernel, (jnp.zeros_like(logp), np.zeros(idx.shape, jax.dtypes.float0)), None


sampled_joint_log_prob.defvjp(_sjlp_fwd, _sjlp_bwd)


class OrigGenerator(nn.Module):
    """The original's ``SimpleNetwork`` (MU, MAX and softmax generators): two 3x3 convolutions
    (``channels`` filters, bias, NO activation: the logits are affine in the map), flatten,
    and per facility a bias-free Dense to ``m * K`` with one softmax over candidates x cells
    jointly (``joint_heads``; kernel ``params["heads"] [F, m K, D]``). Keras initialisation
    (Glorot-uniform kernels, zero biases). ``obs [..., H, W, C]`` -> ``{"logits": [..., m, F,
    K], "log_mass": [..., m, F]}``; ``features_only=True`` gives the flattened features
    ``[..., D]``. The original's L2 kernel regularisers are not applied: its training
    loops never add ``model.losses`` to the loss."""

    n_heads: int
    action_shape: tuple[int, ...]
    channels: int = 32

    @nn.compact
    def __call__(self, obs: jax.Array, features_only: bool = False):
        F, K = self.action_shape
        x = PatchConv(self.channels, _glorot)(obs)
        x = PatchConv(self.channels, _glorot)(x)
        x = x.reshape(x.shape[:-3] + (-1,))
        if features_only:
            return x
        kernel = self.param("heads", _per_head_glorot, (F, self.n_heads * K, x.shape[-1]))
        return joint_heads(x, kernel, self.n_heads, K)


class OrigPolicyNetwork(nn.Module):
    """The original's ``SimplePolicyNetwork`` (the plain-policy baseline): a 3x3 convolution
    with ``2 * channels`` filters and ReLU, one residual block (1x1 conv to ``channels`` ->
    batch norm -> 3x3 conv -> batch norm -> 1x1 conv to ``2 * channels`` -> batch norm, no
    activations inside; ``relu(input + block)``), flatten, and per facility a bias-free Dense to
    K cells with a softmax (one head, shared by the m i.i.d. candidates). Batch norm as Keras':
    momentum 0.99, epsilon 1e-3, batch statistics when ``train`` (then ``batch_stats`` is
    mutable), running averages otherwise. ``obs [..., H, W, C]`` -> ``{"logits": [..., 1, F, K]}``.
    Original: ``channels`` = 32 (64 / 32 / 64 filters)."""

    action_shape: tuple[int, ...]
    channels: int = 32

    @nn.compact
    def __call__(self, obs: jax.Array, train: bool = False) -> Dist:
        F, K = self.action_shape
        wide, narrow = 2 * self.channels, self.channels
        bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)
        x = nn.relu(PatchConv(wide, _glorot)(obs))
        y = bn()(nn.Dense(narrow, kernel_init=_glorot)(x))  # 1x1 convolution
        y = bn()(PatchConv(narrow, _glorot)(y))
        y = bn()(nn.Dense(wide, kernel_init=_glorot)(y))
        x = nn.relu(x + y)
        x = x.reshape(x.shape[:-3] + (-1,))
        kernel = self.param("heads", _per_head_glorot, (F, K, x.shape[-1]))
        logits = jnp.einsum("...d,fkd->...fk", x, kernel)
        return {"logits": jax.nn.log_softmax(logits, -1)[..., None, :, :]}


def expand_heads(dist: Dist, m: int) -> Dist:
    """Broadcast one head to ``m`` i.i.d. candidates (plain policy); ``m`` heads pass through."""
    n = next(iter(dist.values())).shape[0]
    if n == m:
        return dist
    if n != 1:
        raise ValueError(f"generator has {n} heads; cannot make {m} candidates from it")
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (m,) + x.shape[1:]), dist)


def heads(kind: str, dist: Dist) -> distrax.Distribution:
    """The m heads as one distrax distribution: batch shape [m], event [F] (categorical,
    ``Independent(Categorical)``) or [d] (``Independent(Beta)`` / ``Independent(Normal)``)."""
    if kind == "categorical":
        return distrax.Independent(distrax.Categorical(logits=dist["logits"]), 1)
    if kind == "beta":
        return distrax.Independent(distrax.Beta(dist["alpha"], dist["beta"]), 1)
    if kind == "gaussian":
        return distrax.Independent(distrax.Normal(dist["mean"], jnp.exp(dist["log_std"])), 1)
    raise ValueError(f"unknown head kind {kind!r}")


def sample(key: jax.Array, kind: str, dist: Dist) -> jax.Array:
    """One action per head: ``int32 [m, F]`` or ``float [m, d]``. Continuous samples are
    reparametrised (Beta through ``jax.random.beta``'s implicit gradient); wrap ``dist`` in
    ``stop_gradient`` for score-function use."""
    a = heads(kind, dist).sample(seed=key)
    return a.astype(jnp.int32) if kind == "categorical" else a


def log_prob(kind: str, dist: Dist, a: jax.Array) -> jax.Array:
    """``log pi_i(a_i | s)`` per head, ``[m]`` (summed over factors / dimensions); Beta
    actions are clipped into ``[1e-6, 1 - 1e-6]`` first. Heads of ``OrigGenerator`` carry
    ``log_mass [m, F]`` (candidate i's share of facility f's joint softmax), which is added:
    their log-probability is the original's ``sum_f log p_f(i, a_f)``, not normalised per
    candidate."""
    if kind == "beta":
        a = jnp.clip(a, 1e-6, 1 - 1e-6)
    lp = heads(kind, dist).log_prob(a)
    if "log_mass" in dist:  # the original's joint softmax: log pi_i(a) = sum_f log p_f(i, a_f)
        lp = lp + dist["log_mass"].sum(-1)
    return lp


def mode(kind: str, dist: Dist) -> jax.Array:
    """Most likely action of each head (greedy candidates), ``[m, F]`` or ``[m, d]``.
    Beta: ours, (alpha - 1) / (alpha + beta - 2) clipped (distrax gives NaN at alpha = beta = 1)."""
    if kind == "beta":
        a, b = dist["alpha"], dist["beta"]
        return jnp.clip((a - 1) / jnp.maximum(a + b - 2, 1e-6), 0.0, 1.0)
    out = heads(kind, dist).mode()
    return out.astype(jnp.int32) if kind == "categorical" else out


def head_means(kind: str, dist: Dist) -> jax.Array:
    """Expected action per continuous head ``[m, d]``."""
    if kind not in ("beta", "gaussian"):
        raise ValueError(f"head_means is for continuous heads, got {kind!r}")
    return heads(kind, dist).mean()


def diversity(kind: str, dist: Dist) -> jax.Array:
    """Mean pairwise diversity D of the m heads (scalar, differentiable).

    Categorical: ``D = mean_{i<j} mean_f (1 - sum_c pi_i^f(c) pi_j^f(c))``, the probability
    that candidates i and j place facility f on different cells. Continuous:
    ``D = mean_{i<j} |E[a_i] - E[a_j]|_2``, the mean distance between the heads' means.
    One head gives ``D = 0``.
    """
    m = next(iter(dist.values())).shape[0]
    if m < 2:
        return jnp.zeros(())
    iu, ju = jnp.triu_indices(m, k=1)
    if kind == "categorical":
        p = jax.nn.softmax(dist["logits"], axis=-1)  # [m, F, K]
        overlap = jnp.einsum("ifk,jfk->ijf", p, p)  # [m, m, F]
        return jnp.mean(1.0 - overlap[iu, ju])
    mu = head_means(kind, dist)
    diff = mu[iu] - mu[ju]
    return jnp.mean(jnp.sqrt(jnp.sum(diff**2, -1) + 1e-12))


def default_head(action_kind: str) -> str:
    return "categorical" if action_kind == "discrete" else "gaussian"


def check_head(kind: str, action_kind: str) -> None:
    if kind not in HEAD_KINDS:
        raise ValueError(f"unknown head {kind!r}; expected one of {HEAD_KINDS}")
    if (action_kind == "discrete") != (kind == "categorical"):
        raise ValueError(f"head {kind!r} does not fit a {action_kind} action space")

