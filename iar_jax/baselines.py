"""Baselines of the IAR paper's experiments (seed Sec. 5) as ``ppo_jax`` policies.

- ``MaskPolicy`` (MASK): one categorical over the K^L joint actions, invalid ones masked
  with the env's oracle (mask stored per step); exact log-prob and entropy; K^L <= ~1000.
- ``FactoredPolicy`` (Factored + IAR): pi(a|s) = prod_l pi_l(a_l|s) with rejection.
- ``ARPolicy`` (AR + IAR): pi(a|s) = prod_l pi_l(a_l|s, a_<l) with rejection.

Log-probs are exact. Entropy: MASK exact; Factored exact for the unmasked pi; AR the
chain-rule estimate sum_l H(pi_l(.|s, a_<l)) along the executed action.

Each takes ``encoder``: ``"mlp"`` (default; the flat observation, a separate MLP critic) or
``"gcn"`` (ERA only: the original's graph encoder ``iar_jax.graph_encoder.GraphEncoder``
whose features f (context_dim,) feed the actor heads and a linear critic Dense(1)(f),
orthogonal gain 1; actor and critic share the encoder). Any other env with ``"gcn"``
raises ``ValueError`` at construction. ``"cnn"`` (image envs, e.g. Pistonball-image-*): the
original's Pistonball features extractor, SB3's NatureCNN (``iar_jax.cnn_encoder``), whose
features f (context_dim,) are shared by the actor and the critic with the original's
``net_arch=[dict(pi=[64], vf=[64])]``: heads on tanh(Dense(64)(f)); value =
Dense(1)(tanh(Dense(64)(f))). A non-image env with ``"cnn"`` raises ``ValueError``.

Example::

    pol = FactoredPolicy(env, env_params, num_candidates=32)  # env: ERA-v1
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from envs_jax.contracts import ValidityOracle, require
from iar_jax.actions import ActionLayout, has_constraints, valid_mask
from iar_jax.cnn_encoder import CNNEncoder, image_shape_of
from iar_jax.graph_encoder import GraphEncoder
from iar_jax.rejection import RejectionPolicy, onehot_prefix
from ppo_jax.linalg import orthogonal
from ppo_jax.nn import MLP
from ppo_jax.policy import Act, Evaluation, Policy


ENCODERS = ("mlp", "gcn", "cnn")
SHARED_ENCODERS = ("gcn", "cnn")  # features shared by actor and critic
CNN_HEAD = (64,)  # the original's net_arch pi=[64], vf=[64] after NatureCNN (repo1/utils/util.py)


def check_encoder(encoder: str, env, env_params, layout: ActionLayout) -> None:
    """``encoder`` is one of ``ENCODERS``; ``"gcn"`` needs ERA's observation, the node table
    of K (L + 2 + K) entries (``iar_jax.graph_encoder``). Raises ``ValueError`` otherwise."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    if encoder == "cnn":
        image_shape_of(env, env_params)  # one clear ValueError off image envs
        return
    if encoder != "gcn":
        return
    k, lr = layout.num_cls, layout.num_rsc
    need = k * (lr + 2 + k)
    space = env.observation_space(env_params)
    shape = tuple(getattr(space, "shape", None) or ())
    if layout.scalar or int(np.prod(shape, dtype=np.int64)) != need:
        raise ValueError(
            f"encoder='gcn' (the original IAR code's graph encoder) supports ERA envs only: it needs an "
            f"observation of K (L + 2 + K) = {need} entries (K={k} nodes, L={lr} resources), but "
            f"{type(env).__name__} observes shape {shape}; use encoder='mlp'"
        )


class _SharedGraphCritic:
    """Mixin for ``RejectionPolicy`` subclasses with ``encoder="gcn"``: params ``encoder``
    (GraphEncoder) + the actor's + ``critic`` = Dense(1) on the shared features
    f = ``features(params, obs)``; with ``"mlp"`` ``init`` / ``value`` are the base class's."""

    encoder_kind = "mlp"

    def _use_graph_encoder(self, encoder: str, context_dim: int) -> None:
        """Validate ``encoder``; for ``"gcn"`` build ``self.encoder`` and the linear critic."""
        check_encoder(encoder, self.env, self.env_params, self.layout)
        self.encoder_kind = encoder
        if encoder == "gcn":
            lay = self.layout
            self.encoder = GraphEncoder(lay.num_cls, lay.num_rsc, hidden=64, out=context_dim)
            self.critic = nn.Dense(1, kernel_init=orthogonal(1.0))  # SB3's value_net gain
        elif encoder == "cnn":
            self.encoder = CNNEncoder(image_shape_of(self.env, self.env_params), features=context_dim)
            self.critic = MLP(CNN_HEAD, 1, "tanh", out_scale=1.0)

    def features(self, params, obs):
        """The shared features (context_dim,) of a flat observation (gcn / cnn only)."""
        return self.encoder.apply(params["encoder"], obs)

    def init(self, key, obs, env_state=None, env_params=None):
        if self.encoder_kind not in SHARED_ENCODERS:
            return super().init(key, obs, env_state, env_params)
        k_actor, k_critic = jax.random.split(key)
        x = jnp.ravel(obs).astype(jnp.float32)
        actor = self.init_actor(k_actor, x)
        return {**actor, "critic": self.critic.init(k_critic, self.features(actor, x))}

    def value(self, params, obs):
        if self.encoder_kind not in SHARED_ENCODERS:
            return super().value(params, obs)
        return self.critic.apply(params["critic"], self.features(params, jnp.ravel(obs).astype(jnp.float32)))[0]


def _categorical_entropy(logp: jax.Array) -> jax.Array:
    """Entropy of categoricals given log-probabilities (..., K) with -inf allowed."""
    p = jnp.exp(logp)
    return -jnp.sum(jnp.where(p > 0, p * jnp.where(p > 0, logp, 0.0), 0.0), axis=-1)


class MaskPolicy(Policy):
    """MASK: a categorical over the K^L joint actions with invalid ones masked (module doc).

    ``extras["mask"]`` (K^L,) bool per step. When no joint action is valid the mask is
    lifted (all allowed) and the step counted in ``metrics["no_valid"]``;
    ``metrics["valid_fraction"]`` is the fraction of valid joint actions in the state.

    ``encoder``: ``"mlp"`` (default) logits = MLP(hidden, context_dim) of the flat obs, a
    separate MLP critic; ``"gcn"`` (the original's MaskablePPO with its graph features
    extractor and ``net_arch=[]``, ERA only): features f = GraphEncoder(obs) (context_dim,),
    logits = Dense(K^L)(f) (orthogonal, gain 0.01, as SB3's action net), value = Dense(1)(f)
    (gain 1): actor and critic share the encoder; ``"cnn"`` (image envs): f = NatureCNN(obs),
    logits = MLP(64 tanh -> K^L, gain 0.01)(f), value = MLP(64 tanh -> 1)(f) (module doc).
    """

    def __init__(
        self,
        env,
        env_params,
        *,
        hidden: int = 128,
        context_dim: int = 64,
        critic_hidden: Sequence[int] = (64, 64),
        masking: str = "auto",
        encoder: str = "mlp",
    ):
        if masking not in ("auto", "on", "off"):
            raise ValueError(f"masking must be 'auto', 'on' or 'off', got {masking!r}")
        self.env, self.env_params = env, env_params
        self.layout = ActionLayout.for_env(env, env_params)
        check_encoder(encoder, env, env_params, self.layout)  # gcn: ERA only, one clear error
        self.use_mask = masking == "on" or (masking == "auto" and has_constraints(env))
        if self.use_mask:
            require(env, ValidityOracle, who="masking='on'")
        self.actions = self.layout.all_actions()  # (A, L)
        self.encoder_kind = encoder
        if encoder == "gcn":
            lay = self.layout
            self.encoder = GraphEncoder(lay.num_cls, lay.num_rsc, hidden=64, out=context_dim)
            self.actor = nn.Dense(lay.num_joint, kernel_init=orthogonal(0.01))
            self.critic = nn.Dense(1, kernel_init=orthogonal(1.0))
        elif encoder == "cnn":  # the original's NatureCNN + net_arch [dict(pi=[64], vf=[64])]
            self.encoder = CNNEncoder(image_shape_of(env, env_params), features=context_dim)
            self.actor = MLP(CNN_HEAD, self.layout.num_joint, "tanh", out_scale=0.01)
            self.critic = MLP(CNN_HEAD, 1, "tanh", out_scale=1.0)
        else:
            self.actor = MLP((hidden, context_dim), self.layout.num_joint, "tanh", out_scale=0.01)
            self.critic = MLP(tuple(critic_hidden), 1, "tanh", out_scale=1.0)

    def _features(self, params, obs):
        """The actor's and critic's input: the flat obs, or the shared graph / CNN features."""
        x = jnp.ravel(obs).astype(jnp.float32)
        return self.encoder.apply(params["encoder"], x) if self.encoder_kind in SHARED_ENCODERS else x

    def init(self, key, obs, env_state=None, env_params=None):
        k_a, k_c, k_e = jax.random.split(key, 3)
        params = {}
        if self.encoder_kind in SHARED_ENCODERS:
            params["encoder"] = self.encoder.init(k_e, jnp.ravel(obs).astype(jnp.float32))
        f = self._features(params, obs)
        return {**params, "actor": self.actor.init(k_a, f), "critic": self.critic.init(k_c, f)}

    def value(self, params, obs):
        return self.critic.apply(params["critic"], self._features(params, obs))[0]

    def masked_log_probs(self, params, obs, mask):
        """log pi(.|s) over the K^L joint actions (A,), -inf where ``mask`` is False."""
        logits = self.actor.apply(params["actor"], self._features(params, obs))
        return jax.nn.log_softmax(jnp.where(mask, logits, -jnp.inf))

    def _mask(self, env_state, env_params):
        num = self.layout.num_joint
        if not self.use_mask:
            return jnp.ones((num,), bool), jnp.ones((num,), bool)
        env_params = self.env_params if env_params is None else env_params
        valid = valid_mask(self.env, self.layout, env_state, self.actions, env_params)
        return valid, jnp.where(valid.any(), valid, True)

    def act(self, params, key, obs, env_state=None, env_params=None) -> Act:
        valid, mask = self._mask(env_state, env_params)
        logp = self.masked_log_probs(params, obs, mask)
        idx = jax.random.categorical(key, logp)
        metrics = {"valid_fraction": valid.mean(), "no_valid": (~valid.any()).astype(jnp.float32)}
        return Act(self.layout.to_env(self.actions[idx]), logp[idx], self.value(params, obs), {"mask": mask}, metrics)

    def evaluate(self, params, key, obs, action, extras) -> Evaluation:
        logp = self.masked_log_probs(params, obs, extras["mask"])
        idx = self.layout.joint_index(self.layout.from_env(action))
        return Evaluation(logp[idx], _categorical_entropy(logp), self.value(params, obs))

    def greedy(self, params, obs, env_state=None, env_params=None):
        _, mask = self._mask(env_state, env_params)
        return self.layout.to_env(self.actions[jnp.argmax(self.masked_log_probs(params, obs, mask))])


class FactoredPolicy(_SharedGraphCritic, RejectionPolicy):
    """Independent categoricals per dimension + invalid-action rejection (module doc):
    pi(a|s) = prod_l softmax(z_l)[a_l] with logits z (L, K).

    ``encoder="mlp"`` (default): z = MLP(hidden, context_dim -> L K) of the flat obs (tanh,
    output gain 0.01), a separate MLP critic (``critic_hidden``); params ``actor``, ``critic``.
    ``encoder="gcn"`` (ERA only): f = GraphEncoder(obs) (context_dim,), z = Dense(L K)(f)
    (orthogonal gain 0.01, SB3's MultiDiscrete action net), value = Dense(1)(f) (gain 1);
    params ``encoder``, ``actor``, ``critic``. Followed from the original: it has no Factored
    policy in its released code (cameron-chen/flow-iar ``repo1/policies/policy.py`` offers
    flow, mask, joint and SB3's ``MlpPolicy``; ``repo1/utils/rl_algo/a2c.py``'s ``A2C_Rej``
    samples through ``policy.flow_net``), so the layout is the one its ``-fea_ext gnn``
    applies to every policy (``repo1/utils/util.py``: ``net_arch = []``, i.e. SB3 heads
    directly on the shared features extractor), as ``MaskPolicy(encoder="gcn")``."""

    def __init__(self, env, env_params, *, hidden: int = 128, context_dim: int = 64, encoder: str = "mlp",
                 **rejection_kwargs):
        super().__init__(env, env_params, **rejection_kwargs)
        lay = self.layout
        self._use_graph_encoder(encoder, context_dim)
        if self.encoder_kind == "gcn":
            self.actor = nn.Dense(lay.dim, kernel_init=orthogonal(0.01))
        elif self.encoder_kind == "cnn":
            self.actor = MLP(CNN_HEAD, lay.dim, "tanh", out_scale=0.01)
        else:
            self.actor = MLP((hidden, context_dim), lay.dim, "tanh", out_scale=0.01)

    def init_actor(self, key, obs):
        if self.encoder_kind not in SHARED_ENCODERS:
            return {"actor": self.actor.init(key, obs)}
        k_e, k_a = jax.random.split(key)
        enc = self.encoder.init(k_e, obs)
        return {"encoder": enc, "actor": self.actor.init(k_a, self.encoder.apply(enc, obs))}

    def context(self, params, obs):
        """Per-dimension log-probabilities (L, K)."""
        lay = self.layout
        h = self.features(params, obs) if self.encoder_kind in SHARED_ENCODERS else obs
        return jax.nn.log_softmax(self.actor.apply(params["actor"], h).reshape(lay.num_rsc, lay.num_cls))

    def sample_actions(self, params, key, ctx, n):
        return jax.random.categorical(key, ctx, axis=-1, shape=(n, self.layout.num_rsc)).astype(jnp.int32)

    def log_probs(self, params, key, ctx, actions, extras):
        rows = jnp.arange(self.layout.num_rsc)
        return jax.vmap(lambda a: ctx[rows, a].sum())(actions), {}

    def entropy(self, params, ctx, a, log_pi_a):
        return _categorical_entropy(ctx).sum()

    def mode_action(self, params, ctx):
        return jnp.argmax(ctx, axis=-1).astype(jnp.int32)


class ARHeads(nn.Module):
    """L heads; head l maps (context, one-hots of a_<l) -> K logits."""

    num_rsc: int
    num_cls: int
    hidden: int = 128

    def setup(self):
        self.hid = [nn.Dense(self.hidden) for _ in range(self.num_rsc)]
        self.out = [
            nn.Dense(self.num_cls, kernel_init=orthogonal(0.01)) for _ in range(self.num_rsc)
        ]

    def head(self, l: int, ctx, prefix):
        return self.out[l](nn.tanh(self.hid[l](jnp.concatenate([ctx, prefix]))))

    def __call__(self, ctx, a):
        """Teacher-forced logits (L, K) of action ``a`` (L,)."""
        prefix = onehot_prefix(a, self.num_cls)
        return jnp.stack([self.head(l, ctx, prefix[l]) for l in range(self.num_rsc)])

    def sample(self, ctx, key):
        """One action (L,) drawn head by head."""
        a = jnp.zeros((self.num_rsc,), jnp.int32)
        for l, k in enumerate(jax.random.split(key, self.num_rsc)):
            logits = self.head(l, ctx, onehot_prefix(a, self.num_cls)[l])
            a = a.at[l].set(jax.random.categorical(k, logits).astype(jnp.int32))
        return a

    def greedy(self, ctx):
        a = jnp.zeros((self.num_rsc,), jnp.int32)
        for l in range(self.num_rsc):
            logits = self.head(l, ctx, onehot_prefix(a, self.num_cls)[l])
            a = a.at[l].set(jnp.argmax(logits).astype(jnp.int32))
        return a


class ARPolicy(_SharedGraphCritic, RejectionPolicy):
    """Autoregressive categoricals + invalid-action rejection (module doc):
    pi(a|s) = prod_l softmax(head_l(c, onehot(a_<l)))[a_l] with context c (context_dim,).

    ``encoder="mlp"`` (default): c = MLP(hidden -> context_dim) of the flat obs, a separate
    MLP critic; ``encoder="gcn"`` (ERA only): c = GraphEncoder(obs), value = Dense(1)(c)
    (orthogonal gain 1), the critic sharing the encoder. Params ``encoder``, ``heads``,
    ``critic`` in both; the heads (``ARHeads``, width ``hidden``) are the same. Followed
    from the original: its released code has no AR policy (its ``flow_type="ar"`` is an
    autoregressive latent flow, not this baseline; see ``FactoredPolicy``), so the shared
    features and linear critic are its ``-fea_ext gnn`` rule (``repo1/utils/util.py``:
    ``net_arch = []``). ``encoder="cnn"`` (image envs): c = NatureCNN(obs), value =
    MLP(64 tanh -> 1)(c) (module doc)."""

    def __init__(self, env, env_params, *, hidden: int = 128, context_dim: int = 64, encoder: str = "mlp",
                 **rejection_kwargs):
        super().__init__(env, env_params, **rejection_kwargs)
        lay = self.layout
        self.encoder = MLP((hidden,), context_dim, "tanh", out_scale=1.0)
        self._use_graph_encoder(encoder, context_dim)  # gcn / cnn: replaces the encoder and critic
        self.heads = ARHeads(lay.num_rsc, lay.num_cls, hidden)

    def init_actor(self, key, obs):
        k_e, k_h = jax.random.split(key)
        enc = self.encoder.init(k_e, obs)
        ctx = self.encoder.apply(enc, obs)
        return {"encoder": enc, "heads": self.heads.init(k_h, ctx, jnp.zeros((self.layout.num_rsc,), jnp.int32))}

    def context(self, params, obs):
        return self.encoder.apply(params["encoder"], obs)

    def _logp(self, params, ctx, a):
        return jax.nn.log_softmax(self.heads.apply(params["heads"], ctx, a))  # (L, K)

    def sample_actions(self, params, key, ctx, n):
        keys = jax.random.split(key, n)
        return jax.vmap(lambda k: self.heads.apply(params["heads"], ctx, k, method=ARHeads.sample))(keys)

    def log_probs(self, params, key, ctx, actions, extras):
        rows = jnp.arange(self.layout.num_rsc)
        return jax.vmap(lambda a: self._logp(params, ctx, a)[rows, a].sum())(actions), {}

    def entropy(self, params, ctx, a, log_pi_a):
        return _categorical_entropy(self._logp(params, ctx, a)).sum()

    def mode_action(self, params, ctx):
        return self.heads.apply(params["heads"], ctx, method=ARHeads.greedy)
