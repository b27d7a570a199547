"""IAR's argmax-flow policy (Chen et al., NeurIPS 2023; seed Sec. 3-4, App. A) on the PPO engine.

Generator u ~ p(u|s) (``ConditionalFlow``), action a_l = argmax_k u_{l,k}; with N samples
v_i ~ q(.|a, s) (``ConditionalPosterior``), log w_i = log p(v_i|s) - log q(v_i|a, s):

    ELBO = mean_i log w_i  <=  log pi(a|s)  <=  CUBO = 1/2 log mean_i w_i^2   (N -> inf)
    log pi(a|s) ~= alpha ELBO + (1 - alpha) CUBO                              (seed Table A.1)

``log_prob`` is this sandwich inside ``iar_jax.rejection``'s surrogate; ``extra_loss`` fits
the posterior (ELBO) and alpha. Invariants: the policy gradient trains the generator only
(unless ``pg_posterior``); with ``common_noise`` the PPO ratio starts at exactly 1.
Reasons and costs of the options: benchmarks/RESULTS_iar.md.

Example: ``out = pol.act(pol.init(key, obs), key, obs, env_state, env_params)``, out.action (L,).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from iar_jax.cnn_encoder import CNNEncoder, image_shape_of
from iar_jax.flows import ConditionalFlow, ConditionalPosterior, elbo_cubo, iwae, log_weights
from iar_jax.graph_encoder import GraphEncoder
from iar_jax.rejection import RejectionPolicy, score_function_entropy
from ppo_jax.nn import MLP
from ppo_jax.policy import Batch

ALPHA_MODES = ("static", "trainable", "adaptive")
ALPHA_OBJECTIVES = ("calibration", "policy", "none")
ENCODERS = ("mlp", "gcn", "cnn")
SHARED_ENCODERS = ("gcn", "cnn")  # features shared with the critic (the original)
ELBO_PAIRS = ("generator", "rollout")


class AlphaNet(nn.Module):
    """alpha = sigmoid(MLP(0.1 * (ELBO, CUBO))), starting at ``alpha_init`` for any input."""

    hidden: int = 16
    alpha_init: float = 0.5

    @nn.compact
    def __call__(self, elbo, cubo):
        x = 0.1 * jnp.stack([elbo, cubo])
        h = nn.tanh(nn.Dense(self.hidden)(x))
        logit0 = float(np.log(self.alpha_init / (1.0 - self.alpha_init)))
        out = nn.Dense(1, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.constant(logit0))(h)
        return jax.nn.sigmoid(out[0])


class IARPolicy(RejectionPolicy):
    """The flow policy; params ``encoder``, ``flow``, ``posterior``, ``alpha``, ``critic``.
    Options: ``num_posterior_samples`` N; ``alpha_mode`` static | trainable | adaptive,
    ``alpha_init``, ``alpha_objective`` calibration | policy | none, ``alpha_target_samples``;
    ``elbo_pairs`` generator | rollout, ``elbo_trains_generator``, ``elbo_grad_samples``;
    ``pg_posterior``; networks ``flow_layers`` / ``flow_hidden`` (paper 4 / 128),
    ``context_dim``, ``encoder`` mlp | gcn | cnn, ``posterior_*``; rejection: ``RejectionPolicy``.
    ``encoder="cnn"`` (image envs, e.g. Pistonball-image-*): context = NatureCNN(obs)
    (``iar_jax.cnn_encoder``, context_dim features), shared with the critic
    value = Dense(1)(tanh(Dense(64)(context))) (the original's ``net_arch=[dict(vf=[64])]``)."""

    log_prob_exact = False  # log_prob is the sandwich estimate, not log pi (tests/test_policy_contract.py)

    def __init__(
        self,
        env,
        env_params,
        *,
        num_posterior_samples: int = 4,
        flow_layers: int = 4,
        flow_hidden: int = 128,
        context_dim: int = 64,
        encoder_hidden: int = 128,
        posterior_layers: int = 2,
        posterior_hidden: int = 0,
        posterior_conditional: bool = True,
        split_context: bool = True,
        pg_posterior: bool = False,
        elbo_grad_samples: int = 0,
        encoder: str = "mlp",
        alpha_mode: str = "adaptive",
        alpha_init: float = 0.5,
        alpha_objective: str = "calibration",
        alpha_target_samples: int = 16,
        alpha_coef: float = 1.0,
        elbo_coef: float = 1.0,
        elbo_pairs: str = "generator",
        elbo_trains_generator: bool = True,
        common_noise: bool = True,
        **rejection_kwargs,
    ):
        super().__init__(env, env_params, **rejection_kwargs)
        if alpha_mode not in ALPHA_MODES:
            raise ValueError(f"alpha_mode must be one of {ALPHA_MODES}, got {alpha_mode!r}")
        if alpha_objective not in ALPHA_OBJECTIVES:
            raise ValueError(f"alpha_objective must be one of {ALPHA_OBJECTIVES}, got {alpha_objective!r}")
        if elbo_pairs not in ELBO_PAIRS:
            raise ValueError(f"elbo_pairs must be one of {ELBO_PAIRS}, got {elbo_pairs!r}")
        lo = 0.0 if alpha_mode == "static" else 1e-6
        if not lo <= alpha_init <= 1.0 - lo:
            raise ValueError(f"alpha_init must lie in [0, 1] (open interval unless static), got {alpha_init}")
        for name, value in (("num_posterior_samples", num_posterior_samples), ("context_dim", context_dim),
                            ("flow_hidden", flow_hidden), ("encoder_hidden", encoder_hidden)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        if not isinstance(posterior_hidden, int) or posterior_hidden < 0:
            raise ValueError(f"posterior_hidden must be a non-negative int (0 = flow_hidden), got {posterior_hidden!r}")
        if not isinstance(elbo_grad_samples, int) or elbo_grad_samples < 0:
            raise ValueError(f"elbo_grad_samples must be a non-negative int (0 = all), got {elbo_grad_samples!r}")
        if flow_layers < 0 or posterior_layers < 0:
            raise ValueError(f"flow_layers and posterior_layers must be >= 0, got {flow_layers}, {posterior_layers}")
        learns = alpha_mode != "static" and alpha_objective == "calibration"
        if learns and alpha_target_samples < num_posterior_samples:
            raise ValueError(
                f"alpha_target_samples ({alpha_target_samples}) must be >= num_posterior_samples ({num_posterior_samples})"
            )
        self.num_samples = num_posterior_samples
        self.alpha_mode, self.alpha_init, self.alpha_objective = alpha_mode, float(alpha_init), alpha_objective
        self.alpha_learns_by_calibration = learns
        self.alpha_target_samples = alpha_target_samples
        self.alpha_coef, self.elbo_coef = float(alpha_coef), float(elbo_coef)
        self.elbo_pairs, self.elbo_trains_generator = elbo_pairs, bool(elbo_trains_generator)
        self.common_noise = bool(common_noise)
        self.pg_posterior = bool(pg_posterior)
        # samples per state of the ELBO term: the calibration target's when alpha calibrates,
        # else N, or fewer (``elbo_grad_samples`` < N: only those are drawn; the original: 1)
        if learns:
            self.elbo_samples = alpha_target_samples
        else:
            self.elbo_samples = min(elbo_grad_samples, num_posterior_samples) if elbo_grad_samples else num_posterior_samples
        self.elbo_grad_samples = min(elbo_grad_samples, self.elbo_samples) if elbo_grad_samples else self.elbo_samples
        lay = self.layout
        self.encoder_kind = encoder
        if encoder == "gcn":  # the original's graph encoder, features shared with the critic
            self.encoder = GraphEncoder(lay.num_cls, lay.num_rsc, hidden=64, out=context_dim)
            self.critic = nn.Dense(1)
        elif encoder == "cnn":  # the original's NatureCNN, features shared with the critic
            self.encoder = CNNEncoder(image_shape_of(env, env_params), features=context_dim)
            self.critic = MLP((64,), 1, "tanh", out_scale=1.0)
        else:
            self.encoder = MLP((encoder_hidden,), context_dim, "tanh", out_scale=1.0)
        self.flow = ConditionalFlow(lay.dim, flow_layers, flow_hidden, split_context=split_context)
        self.posterior = ConditionalPosterior(
            lay.num_rsc, lay.num_cls, posterior_hidden or flow_hidden, context_dim, posterior_layers,
            context_hidden=flow_hidden, conditional_couplings=posterior_conditional, split_context=split_context,
        )
        self.alpha_net = AlphaNet(alpha_init=self.alpha_init if alpha_mode == "adaptive" else 0.5)

    # -- parameters ----------------------------------------------------------------------
    def init_actor(self, key, obs):
        k_enc, k_flow, k_post, k_alpha = jax.random.split(key, 4)
        lay = self.layout
        enc = self.encoder.init(k_enc, obs)
        ctx = self.encoder.apply(enc, obs)
        flow = self.flow.init(k_flow, jnp.zeros((lay.dim,)), ctx)
        post = self.posterior.init(k_post, ctx, jnp.zeros((lay.dim,)), jnp.zeros((lay.num_rsc,), jnp.int32))
        if self.alpha_mode == "adaptive":
            alpha = self.alpha_net.init(k_alpha, jnp.zeros(()), jnp.zeros(()))
        else:
            a0 = min(max(self.alpha_init, 1e-6), 1.0 - 1e-6)
            alpha = {"logit": jnp.asarray(np.log(a0 / (1.0 - a0)), jnp.float32)}
        return {"encoder": enc, "flow": flow, "posterior": post, "alpha": alpha}

    def alpha(self, params, elbo, cubo, train: bool):
        """alpha per estimate: ``elbo``, ``cubo`` (n,) -> (n,). ``train``: gradients reach
        the alpha parameters (never for ``static``); ELBO/CUBO inputs are constants."""
        elbo, cubo = jax.lax.stop_gradient(elbo), jax.lax.stop_gradient(cubo)
        if self.alpha_mode == "static":
            return jnp.full_like(elbo, self.alpha_init)
        p = params["alpha"] if train else jax.lax.stop_gradient(params["alpha"])
        if self.alpha_mode == "trainable":
            return jnp.broadcast_to(jax.nn.sigmoid(p["logit"]), elbo.shape)
        return jax.vmap(lambda e, c: self.alpha_net.apply(p, e, c))(elbo, cubo)

    def init(self, key, obs, env_state=None, env_params=None):
        if self.encoder_kind not in SHARED_ENCODERS:
            return super().init(key, obs, env_state, env_params)
        k_actor, k_critic = jax.random.split(key)
        x = jnp.ravel(obs).astype(jnp.float32)
        actor = self.init_actor(k_actor, x)
        ctx = self.encoder.apply(actor["encoder"], x)
        return {**actor, "critic": self.critic.init(k_critic, ctx)}

    def value(self, params, obs):
        if self.encoder_kind not in SHARED_ENCODERS:
            return super().value(params, obs)
        ctx = self.context(params, jnp.ravel(obs).astype(jnp.float32))  # shared features (the original)
        return self.critic.apply(params["critic"], ctx)[0]

    # -- RejectionPolicy hooks -------------------------------------------------------------
    def context(self, params, obs):
        return self.encoder.apply(params["encoder"], obs)

    def candidate_noise(self, key, n):
        return jax.random.normal(key, (n, self.layout.dim))

    def actions_from_noise(self, params, ctx, eps):
        lay, n = self.layout, eps.shape[0]
        u, _ = jax.vmap(lambda e: self.flow.apply(params["flow"], e, ctx, method=ConditionalFlow.sample))(eps)
        u = jax.lax.stop_gradient(u)
        return jnp.argmax(u.reshape(n, lay.num_rsc, lay.num_cls), axis=-1).astype(jnp.int32)

    def sample_actions(self, params, key, ctx, n):
        return self.actions_from_noise(params, ctx, self.candidate_noise(key, n))

    def noise_extras(self, key):
        return {"seed": jax.random.bits(key, (), jnp.uint32)} if self.common_noise else {}

    def _noise_key(self, key, extras):
        if self.common_noise and extras is not None and "seed" in extras:
            return jax.random.fold_in(jax.random.PRNGKey(0), extras["seed"])
        return key

    def log_weights(
        self, params, key, ctx, actions, num_samples, *, generator_grad=True, posterior_grad=False,
        context_grad_q=False, grad_samples=None,
    ):
        """(n, num_samples) log w for ``actions`` (n, L) at one state context ``ctx``.
        The posterior sees a stopped-gradient context unless ``context_grad_q``.
        ``grad_samples`` g < num_samples: only the first g samples carry gradients (the rest
        are computed with stopped parameters, forward only); the values are unchanged."""
        flow_p = params["flow"] if generator_grad else jax.lax.stop_gradient(params["flow"])
        ctx_p = ctx if generator_grad else jax.lax.stop_gradient(ctx)
        post_p = params["posterior"] if posterior_grad else jax.lax.stop_gradient(params["posterior"])
        ctx_q = ctx if context_grad_q else jax.lax.stop_gradient(ctx)
        eps = jax.random.normal(key, (actions.shape[0], num_samples, self.layout.dim))

        def run(fp, cp, pp, cq, e):
            one = lambda a, e1: log_weights(self.flow, fp, self.posterior, pp, cp, a, e1, ctx_q=cq)
            return jax.vmap(one)(actions, e)

        if grad_samples is None or grad_samples >= num_samples:
            return run(flow_p, ctx_p, post_p, ctx_q, eps)
        sg = jax.lax.stop_gradient
        live = run(flow_p, ctx_p, post_p, ctx_q, eps[:, :grad_samples])
        rest = run(sg(flow_p), sg(ctx_p), sg(post_p), sg(ctx_q), eps[:, grad_samples:])
        return jnp.concatenate([live, rest], axis=1)

    def log_probs(self, params, key, ctx, actions, extras):
        """Sandwich estimates of log pi(a|s) for ``actions`` (n, L) -> ((n,), aux)."""
        lw = self.log_weights(
            params, self._noise_key(key, extras), ctx, actions, self.num_samples,
            posterior_grad=self.pg_posterior, context_grad_q=self.pg_posterior,
        )
        elbo, cubo = elbo_cubo(lw)
        alpha = self.alpha(params, elbo, cubo, train=self.alpha_objective == "policy")
        return alpha * elbo + (1.0 - alpha) * cubo, {"elbo": elbo, "cubo": cubo, "alpha": alpha}

    def entropy(self, params, ctx, a, log_pi_a):
        return score_function_entropy(log_pi_a)

    def mode_action(self, params, ctx):
        lay = self.layout
        u = self.flow.apply(params["flow"], ctx, method=ConditionalFlow.mode_point)
        return jnp.argmax(u.reshape(lay.num_rsc, lay.num_cls), axis=-1).astype(jnp.int32)

    # -- the flow's own training terms -----------------------------------------------------
    def extra_loss(self, params, key, batch: Batch):
        """-elbo_coef * ELBO of (state, action) pairs + alpha_coef * (sandwich - IWAE target)^2
        -> (scalar, metrics ``iar/elbo``, ``iar/cubo``, ``iar/iwae``, ``iar/alpha``, ...)."""
        lay = self.layout
        obs = batch.obs.reshape(batch.obs.shape[0], -1).astype(jnp.float32)
        num = obs.shape[0]
        k_a, k_w = jax.random.split(key)
        ctx = jax.vmap(lambda x: self.context(params, x))(obs)
        if self.elbo_pairs == "rollout":
            actions = jax.vmap(lay.from_env)(batch.action)
        else:
            frozen = jax.lax.stop_gradient(params)
            actions = jax.vmap(lambda k, c: self.sample_actions(frozen, k, c, 1)[0])(jax.random.split(k_a, num), ctx)
        n_s, g = self.elbo_samples, self.elbo_grad_samples
        lw = jax.vmap(
            lambda k, c, a: self.log_weights(
                params, k, c, a[None], n_s, generator_grad=self.elbo_trains_generator, posterior_grad=True,
                grad_samples=g,
            )[0]
        )(jax.random.split(k_w, num), ctx, actions)  # (B, n_s)
        elbo_loss = -jnp.mean(lw[:, :g])  # the samples with gradients: same expected gradient as all n_s
        lw_sg = jax.lax.stop_gradient(lw)
        elbo, cubo = elbo_cubo(lw_sg[:, : self.num_samples])
        metrics = {"iar/elbo": elbo.mean(), "iar/cubo": cubo.mean(), "iar/iwae": iwae(lw_sg[:, : self.num_samples]).mean()}
        loss = self.elbo_coef * elbo_loss
        if self.alpha_learns_by_calibration:
            target = iwae(lw_sg)
            alpha = self.alpha(params, elbo, cubo, train=True)
            alpha_loss = jnp.mean(jnp.square(alpha * elbo + (1.0 - alpha) * cubo - target))
            loss = loss + self.alpha_coef * alpha_loss
            metrics.update({"iar/alpha": alpha.mean(), "iar/alpha_loss": alpha_loss, "iar/iwae_target": target.mean()})
        else:
            metrics["iar/alpha"] = self.alpha(params, elbo, cubo, train=False).mean()
        return loss, metrics
