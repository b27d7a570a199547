"""Conditional normalizing flows of IAR's argmax-flow policy (seed Sec. 3, App. A) on distrax.

Generator p(u|s), u in R^D (D = L K; row l = the K scores of action dimension l):

    z ~ N(mu(c), diag sigma(c)^2),   u = f(z; c),   f = Chain([perm, coupling, ActNorm] x T)
    log p(u|s) = log N(z; mu, sigma) - log |det df/dz|

Posterior q(u|a, s) (App. A.3): a Gaussian on (c, one-hot a), optional couplings, then the
row-wise ``SoftThreshold`` (argmax v_l = a_l). Invariant: an untrained flow is its Gaussian
base. ``normal_log_prob`` is ours (in log sigma; distrax's Normal takes sigma).

Example: ``u, log_p = flow.apply(params, eps, ctx, method=ConditionalFlow.sample)``, eps (D,).
"""

from __future__ import annotations

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from iar_jax.soft_threshold import soft_threshold_rows, soft_threshold_rows_inverse
from ppo_jax.linalg import orthogonal

LOG_SIGMA_MIN, LOG_SIGMA_MAX = -5.0, 2.0  # clip of the Gaussians' log standard deviations
_LOG_2PI = float(np.log(2.0 * np.pi))


def normal_log_prob(x: jax.Array, mu: jax.Array, log_sigma: jax.Array) -> jax.Array:
    """Summed log-density of a diagonal Gaussian: x, mu, log_sigma (D,) -> ()."""
    return jnp.sum(-0.5 * jnp.square((x - mu) * jnp.exp(-log_sigma)) - log_sigma - 0.5 * _LOG_2PI)


class ActNorm(nn.Module):
    """Glow's ActNorm (Kingma & Dhariwal 2018, Table 1): ``y = x exp(s) + bias`` on x (..., dim),
    ``s`` soft-clamped to +-``scale_clamp``, log|det| = sum(s); ``distrax.Block(ScalarAffine)``."""

    dim: int
    scale_clamp: float = 3.0

    def setup(self):
        self.log_scale_raw = self.param("log_scale", nn.initializers.zeros, (self.dim,))
        self.bias = self.param("bias", nn.initializers.zeros, (self.dim,))

    def bijector(self) -> distrax.Bijector:
        s = self.scale_clamp * jnp.tanh(self.log_scale_raw / self.scale_clamp)
        return distrax.Block(distrax.ScalarAffine(shift=self.bias, log_scale=s), 1)

    def forward(self, x):
        return self.bijector().forward_and_log_det(x)

    def inverse(self, y):
        return self.bijector().inverse_and_log_det(y)


class AffineCoupling(nn.Module):
    """RealNVP coupling (Dinh et al. 2017, Eq. 4-6) as a ``distrax.SplitCoupling`` on x (dim,):
    ``y_2 = x_2 exp(s(x_1, c)) + t(x_1, c)``, x_1 = x[:dim // 2], log|det| = sum(s)."""

    dim: int
    hidden: int
    scale_clamp: float = 3.0

    def setup(self):
        self.d1 = self.dim // 2
        d2 = self.dim - self.d1
        self.h1 = nn.Dense(self.hidden)
        self.h2 = nn.Dense(self.hidden)
        self.out = nn.Dense(2 * d2, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros)

    def _shift_scale(self, x1, ctx, split=True):
        """(log_s, t) for x_1 (d1,); ``ctx`` None: unconditional. ``split``: h1([x_1, c]) =
        x_1 W_x + (c W_c + b), the bracket computed once per context under ``vmap``."""
        if ctx is None:
            h = self.h1(x1)
        elif split and not self.is_initializing():
            w, b = self.h1.variables["params"]["kernel"], self.h1.variables["params"]["bias"]
            h = x1 @ w[: x1.shape[0]] + (ctx @ w[x1.shape[0] :] + b)
        else:
            h = self.h1(jnp.concatenate([x1, ctx]))
        h = nn.relu(self.h2(nn.relu(h)))
        log_s, t = jnp.split(self.out(h), 2)
        log_s = self.scale_clamp * jnp.tanh(log_s / self.scale_clamp)
        return log_s, t

    def bijector(self, ctx, split=True) -> distrax.Bijector:
        return distrax.SplitCoupling(
            self.d1, 1, lambda x1: self._shift_scale(x1, ctx, split),
            lambda p: distrax.ScalarAffine(shift=p[1], log_scale=p[0]),
        )

    def forward(self, x, ctx, split=True):
        return self.bijector(ctx, split).forward_and_log_det(x)

    def inverse(self, y, ctx, split=True):
        return self.bijector(ctx, split).inverse_and_log_det(y)


def permutation(perm: np.ndarray) -> distrax.Bijector:
    """``x -> x[..., perm]`` (log-det 0) as a ``distrax.Lambda`` (distrax has no permutation bijector)."""
    perm = np.asarray(perm)
    inv = np.argsort(perm)
    zero = lambda x: jnp.zeros(x.shape[:-1], x.dtype)
    return distrax.Lambda(forward=lambda x: x[..., perm], inverse=lambda y: y[..., inv],
                          forward_log_det_jacobian=zero, inverse_log_det_jacobian=zero,
                          event_ndims_in=1, event_ndims_out=1, is_constant_jacobian=True)


def _permutations(dim: int, num_layers: int, seed: int) -> list[np.ndarray]:
    """Fixed permutations (static, from ``seed``): layer i's output is ``x[perm_i]``."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(dim) for _ in range(num_layers)]


class CouplingStack(nn.Module):
    """``num_layers`` blocks ActNorm -> conditional coupling -> fixed permutation, a
    ``distrax.Chain`` on x (dim,); 0 layers: the identity (log-det 0)."""

    dim: int
    num_layers: int
    hidden: int
    actnorm: bool = True
    seed: int = 0  # permutations

    def setup(self):
        if self.dim < 2 and self.num_layers > 0:
            raise ValueError(f"coupling layers need at least 2 coordinates, got D = {self.dim}")
        self.norms = [ActNorm(self.dim) for _ in range(self.num_layers)] if self.actnorm else []
        self.couplings = [AffineCoupling(self.dim, self.hidden) for _ in range(self.num_layers)]
        self.perms = _permutations(self.dim, self.num_layers, self.seed)

    def bijector(self, ctx, split=True) -> distrax.Bijector | None:
        """The stack as one ``distrax.Chain`` (None for 0 layers). ``ctx`` None: unconditional
        couplings; ``split``: see ``AffineCoupling._shift_scale``."""
        layers = []  # in order of application; Chain applies its list last to first
        for i in range(self.num_layers):
            if self.actnorm:
                layers.append(self.norms[i].bijector())
            layers += [self.couplings[i].bijector(ctx, split), permutation(self.perms[i])]
        return distrax.Chain(layers[::-1]) if layers else None

    def forward(self, x, ctx, split=True):
        chain = self.bijector(ctx, split)
        return (x, jnp.zeros(())) if chain is None else chain.forward_and_log_det(x)

    def inverse(self, y, ctx, split=True):
        chain = self.bijector(ctx, split)
        return (y, jnp.zeros(())) if chain is None else chain.inverse_and_log_det(y)

    def __call__(self, x, ctx):
        y, _ = self.forward(x, ctx)
        return self.inverse(y, ctx)


class ConditionalFlow(nn.Module):
    """Generator p(u | s) over u in R^D (module docstring). All methods act on one state:
    ``ctx`` (C,), ``eps`` / ``z`` / ``u`` (D,)."""

    dim: int
    num_layers: int = 4  # paper: 4 conditional affine coupling layers with ActNorm
    hidden: int = 128  # paper: 128
    base_init_scale: float = 0.01  # orthogonal-init gain of the base's (mu, log sigma) head
    split_context: bool = True  # couplings' context term once per state (``AffineCoupling``)

    def setup(self):
        self.base = nn.Dense(2 * self.dim, kernel_init=orthogonal(self.base_init_scale))
        self.stack = CouplingStack(self.dim, self.num_layers, self.hidden, actnorm=True, seed=0)

    def base_params(self, ctx):
        """(mu (D,), log_sigma (D,)) of the conditional Gaussian base."""
        mu, log_sigma = jnp.split(self.base(ctx), 2)
        return mu, jnp.clip(log_sigma, LOG_SIGMA_MIN, LOG_SIGMA_MAX)

    def forward(self, z, ctx):
        """Base point z -> u, with log|det du/dz|."""
        return self.stack.forward(z, ctx, self.split_context)

    def inverse(self, u, ctx):
        """u -> base point z, with log|det dz/du|."""
        return self.stack.inverse(u, ctx, self.split_context)

    def sample(self, eps, ctx):
        """Reparameterised sample from standard normal noise ``eps`` (D,): ``(u, log p(u|s))``."""
        mu, log_sigma = self.base_params(ctx)
        z = mu + jnp.exp(log_sigma) * eps
        u, log_det = self.forward(z, ctx)
        return u, normal_log_prob(z, mu, log_sigma) - log_det

    def mode_point(self, ctx):
        """The image of the base mean, f(mu(c)): a deterministic representative u."""
        mu, _ = self.base_params(ctx)
        return self.forward(mu, ctx)[0]

    def log_prob(self, u, ctx):
        """log p(u | s) by the change of variables through the inverse flow."""
        mu, log_sigma = self.base_params(ctx)
        z, log_det = self.inverse(u, ctx)
        return normal_log_prob(z, mu, log_sigma) + log_det

    def __call__(self, eps, ctx):
        u, _ = self.sample(eps, ctx)
        return self.log_prob(u, ctx)


class ConditionalPosterior(nn.Module):
    """Variational posterior q(u | a, s) with the soft threshold (module docstring).

    ``context(ctx, a)`` embeds (state context, one-hot action) once per action; ``sample``
    maps noise ``eps`` (D,) to ``(v (L, K), log q(v | a, s))`` with ``argmax v_l = a_l``.
    """

    num_rsc: int  # L
    num_cls: int  # K
    hidden: int = 128
    context_dim: int = 64
    num_layers: int = 2  # the original: 2 coupling layers after the Gaussian; 0 = Gaussian only
    base_init_scale: float = 0.01
    context_hidden: int = 0  # hidden width of the context network (0: ``hidden``, which the couplings use)
    conditional_couplings: bool = True  # couplings see the context (False: the original's)
    split_context: bool = True  # couplings' context term once per action (``AffineCoupling``)

    def setup(self):
        dim = self.num_rsc * self.num_cls
        self.e1 = nn.Dense(self.context_hidden or self.hidden)
        self.e2 = nn.Dense(self.context_dim)
        self.gauss = nn.Dense(2 * dim, kernel_init=orthogonal(self.base_init_scale))
        self.stack = CouplingStack(dim, self.num_layers, self.hidden, actnorm=True, seed=1)

    def context(self, ctx, a):
        onehot = jax.nn.one_hot(a, self.num_cls).reshape(-1)
        return nn.tanh(self.e2(nn.relu(self.e1(jnp.concatenate([ctx, onehot])))))

    def sample(self, h, eps, a):
        """Noise ``eps`` (D,) -> ``(v (L, K), log q(v | a, s))`` for embedded context ``h``."""
        mu, log_sigma = jnp.split(self.gauss(h), 2)
        log_sigma = jnp.clip(log_sigma, LOG_SIGMA_MIN, LOG_SIGMA_MAX)
        u0 = mu + jnp.exp(log_sigma) * eps
        log_q0 = normal_log_prob(u0, mu, log_sigma)
        u, ld_stack = self.stack.forward(u0, h if self.conditional_couplings else None, self.split_context)
        v, ld_thr = soft_threshold_rows(u.reshape(self.num_rsc, self.num_cls), a)
        return v, log_q0 - ld_stack - ld_thr

    def log_prob(self, h, v, a):
        """log q(v | a, s) of a given ``v`` (L, K) with ``argmax v_l = a_l`` (by inversion)."""
        mu, log_sigma = jnp.split(self.gauss(h), 2)
        log_sigma = jnp.clip(log_sigma, LOG_SIGMA_MIN, LOG_SIGMA_MAX)
        u, ld_thr_inv = soft_threshold_rows_inverse(v, a)
        u0, ld_stack_inv = self.stack.inverse(
            u.reshape(-1), h if self.conditional_couplings else None, self.split_context
        )
        return normal_log_prob(u0, mu, log_sigma) + ld_stack_inv + ld_thr_inv

    def __call__(self, ctx, eps, a):
        h = self.context(ctx, a)
        return self.sample(h, eps, a)


def log_weights(
    flow: ConditionalFlow,
    flow_params,
    posterior: ConditionalPosterior,
    posterior_params,
    ctx: jax.Array,
    a: jax.Array,
    eps: jax.Array,
    ctx_q: jax.Array | None = None,
) -> jax.Array:
    """Importance log-weights log w_i = log p(v_i | s) - log q(v_i | a, s), v_i ~ q(. | a, s).

    ``ctx`` (C,) state context of the generator, ``a`` (L,) int action, ``eps`` (N, D)
    standard normal noise -> (N,); ``ctx_q`` the posterior's context (default ``ctx``).
    E_q[w] = p(a | s) = P_{u ~ p(.|s)}(argmax u_l = a_l for all l) (App. A).
    """
    ctx_q = ctx if ctx_q is None else ctx_q
    h = posterior.apply(posterior_params, ctx_q, a, method=ConditionalPosterior.context)

    def one(e):
        v, log_q = posterior.apply(posterior_params, h, e, a, method=ConditionalPosterior.sample)
        log_p = flow.apply(flow_params, v.reshape(-1), ctx, method=ConditionalFlow.log_prob)
        return log_p - log_q

    return jax.vmap(one)(eps)


def elbo_cubo(log_w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """From log-weights (..., N): ELBO = mean log w, CUBO = 1/2 log mean exp(2 log w)
    (chi^2 upper bound, Dieng et al. 2017, with n = 2; seed Table A.1)."""
    n = log_w.shape[-1]
    elbo = jnp.mean(log_w, axis=-1)
    cubo = 0.5 * (jax.nn.logsumexp(2.0 * log_w, axis=-1) - jnp.log(n))
    return elbo, cubo


def iwae(log_w: jax.Array) -> jax.Array:
    """log mean w over the last axis (importance-weighted bound; ELBO <= IWAE <= CUBO)."""
    return jax.nn.logsumexp(log_w, axis=-1) - jnp.log(log_w.shape[-1])

