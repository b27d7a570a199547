"""Curling hammer shot: KR-UCT over generated candidates (Yee, Lisy, Bowling 2016) and the
candidate generators the MU paper compares (Ahmad, Lelis, Bowling 2020) on ``MU-curling``.

KR-UCT (one decision node: the hammer ends the end, so the tree is its root). Actions ``a``
carry statistics ``n_a`` (executions) and ``vbar_a`` (mean reward). With the kernel ``K(a, b)``
(the execution model: how likely an intended ``a`` is executed as ``b``; here the Gaussian
density of the execution noise, unnormalised, zero across turns)::

    W(a)     = sum_b K(a, b) n_b                                   (kernel visits)
    E[v | a] = sum_b K(a, b) n_b vbar_b / W(a)                     (kernel regression)
    select     argmax_a E[v | a] + C sqrt(log(sum_b W(b)) / W(a))
    widen      while |A| < k t^alpha: add argmin_{b : K(a_sel, b) > tau} W(b)

(every candidate is executed once first). The argmin is taken over ``n_proposals`` uniform
draws in the ellipse ``{b : K(a_sel, b) > tau}`` (our way of taking it). Recommendation after the budget: the most executed action (``"visits"``, ties by
``E[v|a]``), the largest ``W`` (``"kernel_visits"``), or the largest lower bound
``E[v|a] - C sqrt(log(sum W) / W(a))`` (``"lcb"``).

Generators (each maps a state to ``m`` candidate actions in ``[0, 1]^3``, ``envs_jax.curling``):

* ``handcoded_candidates``: the domain-knowledge shots of Yee et al. as we read them: for
  each turn, a draw to the button, a takeout of every opponent stone (hit its centre at
  ``hit_speed``) and a freeze draw to the front of every own stone (``2 * 16`` slots, the
  unused masked);
* ``CurlingGenerator`` + ``train_generator``: a small network on the stone list (MLP on the
  ``[15, 4]`` observation) with ``m`` Gaussian heads on ``(v, theta)`` and a Bernoulli turn
  per head, trained by the score-function surrogates of ``mu_jax.objectives`` (``mu``, ``max``;
  ``policy``: one head, ``m`` i.i.d. samples), with ``Q`` one noisy execution of each candidate.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from envs_jax import curling as C
from mu_jax import objectives
from mu_jax.search import RECOMMEND, KRUCTResult, kr_uct, pool_size  # noqa: F401  (the generic KR-UCT)

def gaussian_kernel(scales: jax.Array, discrete_dims: tuple[int, ...] = ()):
    """``K(a, b) = exp(-1/2 sum_j ((a_j - b_j) / scale_j)^2)`` over continuous dims, times
    ``1[a_j and b_j on the same side of 0.5]`` for each of ``discrete_dims``."""
    scales = jnp.asarray(scales, jnp.float32)
    cont = [j for j in range(scales.shape[0]) if j not in discrete_dims]

    def kernel(A, B):
        diff = (A[:, None, cont] - B[None, :, cont]) / scales[jnp.asarray(cont)]
        k = jnp.exp(-0.5 * jnp.sum(diff**2, -1))
        for j in discrete_dims:
            k = k * ((A[:, None, j] >= 0.5) == (B[None, :, j] >= 0.5))
        return k

    return kernel


def ellipse_proposals(scales: jax.Array, tau: float, fixed_dims: tuple[int, ...] = (), low: float = 0.0, high: float = 1.0):
    """Uniform points in ``{b : K(centre, b) > tau}`` of ``gaussian_kernel(scales)`` (the
    ellipse of Mahalanobis radius ``sqrt(2 ln(1 / tau))``); ``fixed_dims`` (discrete) stay at
    the centre. Clipped to ``[low, high]``."""
    if not 0.0 < tau < 1.0:
        raise ValueError(f"widening threshold tau must lie in (0, 1), got {tau}")
    radius = math.sqrt(2.0 * math.log(1.0 / tau))

    def propose(key, centre, n):
        d = centre.shape[-1]
        free = jnp.asarray([j not in fixed_dims for j in range(d)], jnp.float32)
        k1, k2 = jax.random.split(key)
        direction = jax.random.normal(k1, (n, d)) * free
        direction = direction / jnp.maximum(jnp.linalg.norm(direction, axis=-1, keepdims=True), 1e-12)
        rad = radius * jax.random.uniform(k2, (n, 1)) ** (1.0 / max(d - len(fixed_dims), 1))
        return jnp.clip(centre[None, :] + rad * direction * jnp.asarray(scales, jnp.float32) * free, low, high)

    return propose


def curling_kernel_scales(params: C.CurlingParams) -> jax.Array:
    """Execution-noise std in the ``[0, 1]^3`` action coordinates (turn: exact, 0)."""
    return jnp.asarray([params.sigma_v / (params.v_max - params.v_min), params.sigma_theta / (2 * params.theta_max), 0.0])


def curling_search(key, env, state, candidates, params, budget: int, valid=None, tau: float = 0.5, **kw) -> KRUCTResult:
    """KR-UCT on one curling state: kernel = the execution noise (``curling_kernel_scales``,
    turns never share), rewards = one noisy execution each."""
    scales = curling_kernel_scales(params).at[2].set(1.0)  # dim 2 (turn) is discrete
    kernel = gaussian_kernel(scales, discrete_dims=(2,))
    propose = ellipse_proposals(scales, tau, fixed_dims=(2,))
    return kr_uct(key, lambda k, a: env.noisy_reward(k, state, a, params), candidates, budget, kernel, propose, valid, **kw)


# --------------------------------------------------------------------------------------
# Hand-coded generator (Yee et al.)
# --------------------------------------------------------------------------------------


def handcoded_candidates(state: C.CurlingState, params: C.CurlingParams, hit_speed: float = 2.0):
    """``(actions [32, 3], valid [32])``: per turn (+1 then -1) a draw to the button, then per
    stone slot 1..15 a takeout (opponent stone: pass through its centre at ``hit_speed`` m/s)
    or a freeze (own stone: stop touching it on the near side). Slots of stones out of play
    are invalid; all actions are clipped into ``[0, 1]^3``."""
    button = jnp.asarray([0.0, C.TEE_Y])
    own = C.TEAM[1:] == 0
    pos, act = state.pos[1:], state.active[1:]
    freeze_at = pos - jnp.asarray([0.0, 2 * C.STONE_RADIUS + 0.01])

    def per_turn(turn):
        v_b, th_b = C.draw_action(button, turn, params)
        v_f, th_f = jax.vmap(lambda p: C.draw_action(p, turn, params))(freeze_at)
        v_h, th_h = jax.vmap(lambda p: C.hit_action(p, turn, hit_speed, params))(pos)
        v = jnp.concatenate([v_b[None], jnp.where(own, v_f, v_h)])
        th = jnp.concatenate([th_b[None], jnp.where(own, th_f, th_h)])
        return C.encode_action(v, th, jnp.full(v.shape, turn), params)

    actions = jnp.concatenate([per_turn(1.0), per_turn(-1.0)], 0)
    valid = jnp.concatenate([jnp.ones(1, bool), act] * 2)
    return jnp.clip(actions, 0.0, 1.0), valid


# --------------------------------------------------------------------------------------
# Learned generators (MU, MAX, policy)
# --------------------------------------------------------------------------------------


class CurlingGenerator(nn.Module):
    """Observation ``[..., 15, 4]`` -> ``m`` heads: ``mean [..., m, 2]`` (sigmoid, the
    normalised ``(v, theta)``), ``log_std [..., m, 2]`` (learned, state free), ``turn_logit
    [..., m]`` (probability of turn +1)."""

    n_heads: int
    hidden: int = 128
    init_log_std: float = math.log(0.1)

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape(obs.shape[:-2] + (-1,))
        x = nn.relu(nn.Dense(self.hidden)(x))
        x = nn.relu(nn.Dense(self.hidden)(x))
        out = nn.Dense(self.n_heads * 3, kernel_init=nn.initializers.variance_scaling(0.01, "fan_in", "truncated_normal"))(x)
        out = out.reshape(x.shape[:-1] + (self.n_heads, 3))
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.n_heads, 2))
        mean = jax.nn.sigmoid(out[..., :2])
        return {"mean": mean, "log_std": jnp.broadcast_to(log_std, mean.shape), "turn_logit": out[..., 2]}


def head_sample(key, dist, m: int):
    """``m`` candidates ``[m, 3]`` from the heads (one head: ``m`` i.i.d. samples)."""
    dist = jax.tree.map(lambda x: jnp.broadcast_to(x, (m,) + x.shape[1:]) if x.shape[0] == 1 else x, dist)
    k1, k2 = jax.random.split(key)
    vt = dist["mean"] + jnp.exp(dist["log_std"]) * jax.random.normal(k1, dist["mean"].shape)
    turn = jax.random.bernoulli(k2, jax.nn.sigmoid(dist["turn_logit"])).astype(jnp.float32)
    return jnp.concatenate([vt, (0.25 + 0.5 * turn)[:, None]], -1), dist


def head_log_prob(dist, a):
    """``log pi_i(a_i)`` per head ``[m]``: Gaussian on ``(v, theta)`` plus Bernoulli turn."""
    std = jnp.exp(dist["log_std"])
    lp = -0.5 * ((a[:, :2] - dist["mean"]) / std) ** 2 - dist["log_std"] - 0.5 * math.log(2 * math.pi)
    turn = a[:, 2] >= 0.5
    lt = jnp.where(turn, jax.nn.log_sigmoid(dist["turn_logit"]), jax.nn.log_sigmoid(-dist["turn_logit"]))
    return lp.sum(-1) + lt


def head_modes(dist):
    """Most likely action of each head ``[n_heads, 3]``."""
    turn = (dist["turn_logit"] >= 0).astype(jnp.float32)
    return jnp.concatenate([dist["mean"], (0.25 + 0.5 * turn)[:, None]], -1)


class GenConfig(NamedTuple):
    objective: str = "mu"  # mu | max | policy
    m: int = 8  # candidates per state
    batch: int = 16  # states per update
    steps: int = 200  # updates
    lr: float = 3e-4  # Adam
    hidden: int = 128
    baseline: bool = True  # leave-one-out batch baseline on the score weights


def train_generator(key, env, params, cfg: GenConfig):
    """Train a ``CurlingGenerator`` with the score-function surrogate of ``cfg.objective``
    (``mu_jax.objectives.score_loss``); ``Q`` = one noisy execution per candidate.
    Returns ``(net, variables, history [steps] of the batch mean of max_i Q)``."""
    if cfg.objective not in ("mu", "max", "policy"):
        raise ValueError(f"objective must be mu, max or policy, got {cfg.objective!r}")
    n_heads = 1 if cfg.objective == "policy" else cfg.m
    net = CurlingGenerator(n_heads, cfg.hidden)
    k_init, k_train = jax.random.split(key)
    obs0 = env.get_obs(env.sample_state(k_init, params), params)
    variables = net.init(k_init, obs0[None])
    opt = optax.adam(cfg.lr)
    opt_state = opt.init(variables)

    def one_state(variables, k):
        ks, ka, kq = jax.random.split(k, 3)
        state = env.sample_state(ks, params)
        obs = env.get_obs(state, params)
        dist = jax.tree.map(lambda x: x[0], net.apply(variables, obs[None]))
        a, _ = head_sample(ka, jax.lax.stop_gradient(dist), cfg.m)
        q = jax.vmap(lambda kk, aa: env.noisy_reward(kk, state, aa, params))(jax.random.split(kq, cfg.m), a)
        return obs, a, q

    @jax.jit
    def update(variables, opt_state, k):
        obs, a, q = jax.vmap(one_state, in_axes=(None, 0))(variables, jax.random.split(k, cfg.batch))

        def loss_fn(variables):
            dist = net.apply(variables, obs)  # [B, heads, ...]
            dist = jax.tree.map(lambda x: jnp.broadcast_to(x, x.shape[:1] + (cfg.m,) + x.shape[2:]), dist)
            logp = jax.vmap(head_log_prob)(dist, a)
            return objectives.score_loss(cfg.objective, q, logp, baseline=cfg.baseline)

        grads = jax.grad(loss_fn)(variables)
        updates, opt_state = opt.update(grads, opt_state, variables)
        return optax.apply_updates(variables, updates), opt_state, q.max(-1).mean()

    hist = []
    for t in range(cfg.steps):
        variables, opt_state, best = update(variables, opt_state, jax.random.fold_in(k_train, t))
        hist.append(best)
    return net, variables, jnp.stack(hist)


def generator_candidates(net, variables, env, state, params, m: int, key=None):
    """Candidates ``[m, 3]`` of a trained generator: the heads' modes (``m`` heads) or ``m``
    samples of the single policy head (needs ``key``)."""
    dist = jax.tree.map(lambda x: x[0], net.apply(variables, env.get_obs(state, params)[None]))
    if dist["mean"].shape[0] == m:
        return head_modes(dist)
    if key is None:
        raise ValueError("a one-head (policy) generator needs a key to sample its m candidates")
    return head_sample(key, dist, m)[0]
