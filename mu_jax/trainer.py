"""Training a candidate-action generator (Ahmad, Lelis, Bowling 2020) as a ``Trainer``
(``ppo_jax.trainer``'s contract: ``init(key)``, ``run(state, n)`` jittable and vmappable over
seeds, ``num_updates``, ``steps_per_update`` = ``batch_size``, ``finalize(states, run_dir)``).

One update: ``batch_size`` states, m candidates each from the generator, scored with the
domain's noise-free Q(s, a), one Adam step on the objective (``mu_jax.objectives``).
Metric ``return`` = mean_s max_i Q(s, a_i) (the paper's measure). ``finalize`` writes
``coverage.png`` (seed App. B) and ``action_ordering.png`` (seed App. C).

Example::

    trainer = make_trainer(Config(total_steps=100), "MU-location")
    state, metrics = jax.jit(trainer.run, static_argnums=1)(trainer.init(key), 100)
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from envs_jax.contracts import CandidateDomain, require
from mu_jax import generator as gen
from mu_jax import objectives as obj
from mu_jax.search import kr_ucb_search, ucb_search
from ppo_jax.config import check_config


@dataclass(frozen=True)
class Config:
    objective: str = "mu"  # "mu" | "max" | "policy" | "diversity" (paper's four generators) | "softmax" (orig code's)
    num_candidates: int = 8  # m, candidate actions per state (orig: arms = 8)
    batch_size: int = 32  # states per update (orig: 32)
    lr: float = 1e-5  # Adam learning rate (orig: 1e-5)
    total_steps: int = 80_000  # updates in the budget (orig: 80,000 iterations)
    channels: int = 32  # channels of both 3x3 conv layers of the generator (orig: 32)
    head: str = "auto"  # "categorical" | "beta" | "gaussian"; auto: categorical if discrete else gaussian
    head_layer: str = "dense"  # "dense" (paper/orig) | "spatial" (per-cell logits; images of the action space)
    gradient: str = "auto"  # "score" | "pathwise"; auto: score for discrete, pathwise for continuous
    estimator: str = "paper"  # "paper" | "orig" (orig code's MU/MAX/policy transforms of Q * log pi)
    network: str = "ours"  # "ours" (ReLU convs, per-candidate softmax) | "orig" (orig networks.py; see generator.py)
    softmax_tau: float = 0.01  # temperature of the orig code's softmax objective
    head_grad_samples: int = 0  # network "orig": > 0 = sparse unbiased head backward with that many draws (0: exact)
    diversity_weight: float = 0.1  # lambda of the diversity-regularised objective
    baseline: bool = False  # leave-one-out batch baseline in score-function losses (not in the paper)
    eval_states: int = 256  # held-out states for finalize's figures
    search_budget: int = 64  # UCB pulls per state for the action-ordering histogram
    ucb_c: float = 1.0  # UCB exploration constant c
    search_noise_std: float = -1.0  # std of the reward noise the search sees; < 0: the env's own


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    key: jax.Array
    update: jax.Array  # () updates done so far


class MUTrainer:
    """Generator training on one MU domain (see the module docstring)."""

    def __init__(self, config: Config, env_id: str, env=None, env_params=None):
        _validate(config)
        if env is None:
            from envs_jax.registry import make

            env, env_params = make(env_id)
        require(env, CandidateDomain, who="MUTrainer (use MU-location or MU-peaks2d)")
        if len(env.observation_space(env_params).shape) != 3:
            raise ValueError(
                f"MUTrainer's conv generator needs an image observation (H, W, C); {env_id} gives "
                f"{env.observation_space(env_params).shape}. MU-curling's generators and KR-UCT are in "
                "mu_jax.curling (python -m benchmarks.mu_curling)"
            )
        self.config = config
        self.env_id = env_id
        self.env = env
        self.env_params = env_params
        self.action_kind, self.action_shape = env.action_spec
        self.head = gen.default_head(self.action_kind) if config.head == "auto" else config.head
        gen.check_head(self.head, self.action_kind)
        grad = config.gradient
        if grad == "auto":
            grad = "score" if self.action_kind == "discrete" or config.objective == "softmax" else "pathwise"
        if grad == "pathwise" and self.action_kind == "discrete":
            raise ValueError("pathwise gradients need continuous actions; use gradient='score' for discrete domains")
        self.gradient = grad
        self.m = config.num_candidates
        self.n_heads = 1 if config.objective == "policy" else self.m
        self.uses_batch_norm = False
        if config.network == "orig":
            if self.head != "categorical" or config.head_layer != "dense":
                raise ValueError("Config.network='orig' is the location game's network: categorical heads, head_layer='dense'")
            if config.objective == "policy":
                self.net = gen.OrigPolicyNetwork(tuple(self.action_shape), config.channels)
                self.uses_batch_norm = True
            else:
                self.net = gen.OrigGenerator(self.n_heads, tuple(self.action_shape), config.channels)
        else:
            self.net = gen.Generator(self.n_heads, self.head, tuple(self.action_shape), config.channels, head_layer=config.head_layer)
        self.optimizer = optax.adam(config.lr)
        self.num_updates = int(config.total_steps)
        self.steps_per_update = int(config.batch_size)

    # --- pieces ---------------------------------------------------------------------
    def sample_states(self, key: jax.Array, n: int):
        return jax.vmap(self.env.sample_state, in_axes=(0, None))(jax.random.split(key, n), self.env_params)

    def observe(self, states) -> jax.Array:
        return jax.vmap(lambda s: self.env.get_obs(s, self.env_params))(states)

    def q_values(self, states, actions: jax.Array) -> jax.Array:
        """``Q(s, a_i)`` for ``actions [B, m, ...]`` -> ``[B, m]``."""
        q1 = lambda s, a: self.env.expected_reward(s, a, self.env_params)
        return jax.vmap(jax.vmap(q1, in_axes=(None, 0)))(states, actions)

    def heads(self, params, states, train: bool = False):
        """Head parameters for every candidate, ``[B, m, ...]`` (the policy head broadcast).

        ``params`` are the network's variables. With batch norm (``network="orig"``'s policy),
        ``train`` normalises with the batch's statistics and returns ``(dist, new_batch_stats)``;
        otherwise running averages are used. Without batch norm ``train`` returns ``(dist, None)``.
        """
        obs = self.observe(states)
        new_stats = None
        if self.uses_batch_norm and train:
            dist, upd = self.net.apply(params, obs, train=True, mutable=["batch_stats"])
            new_stats = upd["batch_stats"]
        else:
            dist = self.net.apply(params, obs)
        dist = jax.vmap(lambda d: gen.expand_heads(d, self.m))(dist)
        return (dist, new_stats) if train else dist

    def candidates(self, params, key: jax.Array, states, greedy: bool = False) -> jax.Array:
        """The generator's m candidates for each state, ``[B, m, ...]`` (sampled, or modes)."""
        dist = jax.lax.stop_gradient(self.heads(params, states))
        if greedy:
            return jax.vmap(lambda d: gen.mode(self.head, d))(dist)
        B = next(iter(dist.values())).shape[0]
        return jax.vmap(lambda k, d: gen.sample(k, self.head, d))(jax.random.split(key, B), dist)

    def loss(self, params, key: jax.Array, states):
        """``(loss, metrics)``; with batch norm ``metrics["batch_stats"]`` holds the new statistics."""
        cfg = self.config
        if cfg.head_grad_samples > 0:
            return self._loss_sparse_heads(params, key, states)
        dist, new_stats = self.heads(params, states, train=True)
        B = next(iter(dist.values())).shape[0]
        keys = jax.random.split(key, B)
        div = jax.vmap(lambda d: gen.diversity(self.head, d))(dist)
        if self.gradient == "score":
            a = jax.vmap(lambda k, d: gen.sample(k, self.head, d))(keys, jax.lax.stop_gradient(dist))
            logp = jax.vmap(lambda d, x: gen.log_prob(self.head, d, x))(dist, a)
            q = self.q_values(states, a)
            loss = obj.score_loss(cfg.objective, q, logp, div, cfg.diversity_weight, cfg.estimator, cfg.baseline,
                                  cfg.softmax_tau)
        else:
            a = jax.vmap(lambda k, d: gen.sample(k, self.head, d))(keys, dist)
            q = self.q_values(states, a)
            loss = obj.pathwise_loss(cfg.objective, q, div, cfg.diversity_weight)
        return loss, self._metrics(q, div, new_stats)

    def _loss_sparse_heads(self, params, key: jax.Array, states):
        """``loss`` for ``network="orig"`` with ``head_grad_samples`` = S > 0: the same value; the
        head's backward pass is ``gen.sampled_joint_log_prob``'s (unbiased, sparse)."""
        cfg = self.config
        F, K = self.action_shape
        k_sample, k_grad = jax.random.split(key)
        feat = self.net.apply(params, self.observe(states), features_only=True)  # [B, D]
        kernel = params["params"]["heads"]
        dist = gen.joint_heads(jax.lax.stop_gradient(feat), jax.lax.stop_gradient(kernel), self.m, K)
        B = feat.shape[0]
        a = jax.vmap(lambda k, d: gen.sample(k, self.head, d))(jax.random.split(k_sample, B), dist)  # [B, m, F]
        table = jnp.swapaxes(dist["logits"], 1, 2).reshape(B, F, self.m * K)  # log p_f(i, c), [B, F, m K]
        idx = jnp.arange(self.m)[None, :, None] * K + a  # [B, m, F]
        logp = gen.sampled_joint_log_prob(feat, kernel, (table, idx), k_grad, cfg.head_grad_samples)
        q = self.q_values(states, a)
        loss = obj.score_loss(cfg.objective, q, logp, None, 0.0, cfg.estimator, cfg.baseline, cfg.softmax_tau)
        return loss, self._metrics(q, jax.vmap(lambda d: gen.diversity(self.head, d))(dist), None)

    def _metrics(self, q, div, new_stats):
        q = jax.lax.stop_gradient(q)
        metrics = {
            "return": q.max(-1).mean(),
            "mean_candidate": q.mean(),
            "diversity": jax.lax.stop_gradient(div).mean(),
            "best_index": jnp.argmax(q, -1).astype(jnp.float32).mean(),
        }
        if new_stats is not None:
            metrics["batch_stats"] = new_stats
        return metrics

    # --- the Trainer contract -------------------------------------------------------
    def init(self, key: jax.Array) -> TrainState:
        k_net, key = jax.random.split(key)
        obs = jnp.zeros((1,) + tuple(self.env.observation_space(self.env_params).shape), jnp.float32)
        params = self.net.init(k_net, obs)  # {"params": ...} (+ "batch_stats" with batch norm)
        return TrainState(params, self.optimizer.init({"params": params["params"]}), key, jnp.zeros((), jnp.int32))

    def update(self, state: TrainState) -> tuple[TrainState, dict]:
        key, k_states, k_loss = jax.random.split(state.key, 3)
        states = self.sample_states(k_states, self.config.batch_size)
        trainable = {"params": state.params["params"]}  # Adam's variables (not batch_stats)
        loss_fn = lambda p: self.loss({**state.params, **p}, k_loss, states)
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, trainable)
        params = {**state.params, **optax.apply_updates(trainable, updates)}
        if "batch_stats" in metrics:
            params["batch_stats"] = metrics.pop("batch_stats")
        metrics = {**metrics, "loss": loss}
        return TrainState(params, opt_state, key, state.update + 1), metrics

    def run(self, state: TrainState, num_updates: int) -> tuple[TrainState, dict]:
        return jax.lax.scan(lambda s, _: self.update(s), state, None, length=num_updates)

    # --- evaluation -----------------------------------------------------------------
    def search_params(self):
        if self.config.search_noise_std < 0:
            return self.env_params
        return self.env_params.replace(noise_std=self.config.search_noise_std)

    def evaluate(
        self,
        params,
        key: jax.Array,
        states,
        budget: int | None = None,
        kr_ucb: bool = False,
        noise_std=None,
        kr_recommend: str = "visits",
    ) -> dict:
        """Candidates and their values on ``states``, plus UCB (and KR-UCB) search results.

        The searches see rewards with noise std ``noise_std`` (default: ``search_params()``).

        Returns ``actions [B, m, ...]``, ``q [B, m]``, ``best`` (``max_i Q``, ``[B]``),
        ``best_index [B]``, ``ucb_index [B]``, ``ucb_value [B]`` (Q of UCB's recommendation)
        and, with ``kr_ucb``, ``kr_value [B]`` and ``kr_index [B]`` (index in KR-UCB's pool;
        ``>= m`` means a widened action).
        """
        budget = self.config.search_budget if budget is None else budget
        k_cand, k_search, k_kr = jax.random.split(key, 3)
        actions = self.candidates(params, k_cand, states)
        q = self.q_values(states, actions)
        sp = self.search_params() if noise_std is None else self.env_params.replace(noise_std=noise_std)
        B = q.shape[0]

        def ucb_one(k, s, acts):
            res = ucb_search(k, lambda kk, i: self.env.noisy_reward(kk, s, acts[i], sp), self.m, budget, self.config.ucb_c)
            return res.choice

        ucb_idx = jax.vmap(ucb_one)(jax.random.split(k_search, B), states, actions)
        out = {
            "actions": actions,
            "q": q,
            "best": q.max(-1),
            "best_index": jnp.argmax(q, -1),
            "ucb_index": ucb_idx,
            "ucb_value": jnp.take_along_axis(q, ucb_idx[:, None], -1)[:, 0],
        }
        if kr_ucb:
            if self.action_kind != "continuous":
                raise ValueError("KR-UCB searches continuous actions; this domain is discrete")

            def kr_one(k, s, acts):
                res = kr_ucb_search(
                    k, lambda kk, a: self.env.noisy_reward(kk, s, a, sp), acts, budget, recommend=kr_recommend
                )
                return self.env.expected_reward(s, res.choice, self.env_params), res.choice_index

            kv, ki = jax.vmap(kr_one)(jax.random.split(k_kr, B), states, actions)
            out["kr_value"], out["kr_index"] = kv, ki
        return out

    def test_states(self):
        """The held-out states of ``finalize`` (``eval_states`` of them, fixed key)."""
        return self.sample_states(jax.random.PRNGKey(12345), self.config.eval_states)

    @functools.cached_property
    def evaluate_jit(self):
        """``jax.jit(evaluate)`` (budget, kr_ucb, kr_recommend static), compiled once per trainer."""
        return jax.jit(self.evaluate, static_argnames=("budget", "kr_ucb", "kr_recommend"))

    def finalize(self, states: TrainState, run_dir) -> None:
        """Write ``coverage.png`` and ``action_ordering.png`` (+ their numbers) into ``run_dir``."""
        from mu_jax import plots

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        test_states = self.test_states()
        n_seeds = jax.tree.leaves(states.params)[0].shape[0]
        results = [
            self.evaluate_jit(jax.tree.map(lambda x: x[i], states.params), jax.random.PRNGKey(i), test_states)
            for i in range(n_seeds)
        ]
        name = f"{self.config.objective} ({self.env_id}, m={self.m})"
        plots.coverage_figure(
            {name: np.asarray(results[0]["actions"])}, self.action_kind, self.env, run_dir / "coverage.png"
        )
        best = np.concatenate([np.asarray(r["best_index"]) for r in results])
        ucb = np.concatenate([np.asarray(r["ucb_index"]) for r in results])
        plots.ordering_figure({name: (best, ucb)}, self.m, run_dir / "action_ordering.png")
        summary = {
            "objective": self.config.objective,
            "best_candidate_value": float(np.mean([np.asarray(r["best"]).mean() for r in results])),
            "ucb_value": float(np.mean([np.asarray(r["ucb_value"]).mean() for r in results])),
            "best_index_hist": np.bincount(best, minlength=self.m).tolist(),
            "ucb_index_hist": np.bincount(ucb, minlength=self.m).tolist(),
        }
        (run_dir / "mu_summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def _validate(config: Config) -> None:
    check_config(
        config,
        choices={"objective": obj.OBJECTIVES, "estimator": obj.ESTIMATORS, "gradient": obj.GRADIENTS + ("auto",),
                 "network": gen.NETWORKS,
                 "head_layer": ("dense", "spatial"), "head": gen.HEAD_KINDS + ("auto",)},
        positive_ints=("num_candidates", "batch_size", "total_steps", "channels", "eval_states", "search_budget"),
        positive=("lr", "softmax_tau"),
    )
    if config.head_grad_samples < 0:
        raise ValueError(f"Config.head_grad_samples must be >= 0, got {config.head_grad_samples}")
    if config.head_grad_samples > 0 and (config.network != "orig" or config.objective not in ("mu", "max", "softmax")):
        raise ValueError("Config.head_grad_samples > 0 needs network='orig' and objective mu, max or softmax")
    if config.objective == "softmax" and config.gradient == "pathwise":
        raise ValueError("Config.objective='softmax' (the original's) has score-function gradients only")
    if config.objective == "softmax" and config.baseline:
        raise ValueError("Config.baseline does not apply to the softmax objective (the original's, without one)")
    if config.search_budget < config.num_candidates:
        raise ValueError(
            f"Config.search_budget ({config.search_budget}) must be >= num_candidates ({config.num_candidates})"
        )
    if config.baseline and config.estimator == "orig":
        raise ValueError("Config.baseline applies to the paper's estimators; the orig estimator has none")
    if config.baseline and config.batch_size < 2:
        raise ValueError("Config.baseline (leave-one-out) needs batch_size >= 2")


def make_trainer(config: Config, env_id: str) -> MUTrainer:
    """Build the generator ``Trainer`` for ``env_id`` (``MU-location`` or ``MU-peaks2d``)."""
    return MUTrainer(config, env_id)


def config_dict(config: Config) -> dict:
    return dataclasses.asdict(config)
