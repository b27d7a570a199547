"""Appendix C without a network: which candidate index ends up selected when each map has its
own tabular generator (logits ``[m, F, K]``), trained to convergence with a given estimator.

Isolates the estimator and the head parametrisation from the network and the budget (issue
19): ``--estimator paper`` (Theorem 1: u_1 = Q(a_1), u_i = (Q(a_i) - max_{j<i} Q(a_j))^+) or
``orig`` (the original code's MU transform of Q log pi); ``--heads ours`` (one softmax per
candidate and facility) or ``joint`` (the original's one softmax per facility over candidates
x cells). Maps are vmapped, each with its own logits and Adam state; every update draws
``--batch`` candidate sets per map. Printed: histogram of the best candidate's index over maps
x draws (ties to the lowest index), and of the index of the most probable candidates' best.

    python -m benchmarks.mu_ordering_tabular --estimator paper --heads ours
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from envs_jax.registry import make
from mu_jax import generator as gen
from mu_jax import objectives as obj


def head_dist(theta, heads: str, m: int, K: int):
    if heads == "joint":  # theta [F, m K]
        return gen.joint_heads(jnp.ones((1,)), theta[:, :, None], m, K)
    return {"logits": theta}  # [m, F, K]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--estimator", default="paper", choices=("paper", "orig"))
    ap.add_argument("--heads", default="ours", choices=("ours", "joint"))
    ap.add_argument("--baseline", action="store_true", help="leave-one-out baseline over the batch of draws")
    ap.add_argument("--maps", type=int, default=64)
    ap.add_argument("--m", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    env, params = make("MU-location")
    F, K = env.action_spec[1]
    m = args.m
    states = jax.vmap(env.sample_state, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), args.maps), params)
    shape = (F, m * K) if args.heads == "joint" else (m, F, K)
    theta = jnp.zeros((args.maps,) + shape)
    opt = optax.adam(args.lr)
    q1 = lambda s, a: env.expected_reward(s, a, params)

    def loss(th, key, s):
        dist = head_dist(th, args.heads, m, K)
        a = jax.vmap(lambda k: gen.sample(k, "categorical", jax.lax.stop_gradient(dist)))(jax.random.split(key, args.batch))
        logp = jax.vmap(lambda x: gen.log_prob("categorical", dist, x))(a)  # [B, m]
        q = jax.vmap(jax.vmap(q1, in_axes=(None, 0)), in_axes=(None, 0))(s, a)  # [B, m]
        return obj.score_loss("mu", q, logp, estimator=args.estimator, baseline=args.baseline)

    def step(carry, key):
        th, st = carry
        keys = jax.random.split(key, args.maps)
        g = jax.vmap(jax.grad(loss))(th, keys, states)
        upd, st = jax.vmap(opt.update)(g, st)
        return (optax.apply_updates(th, upd), st), None

    def evaluate(th, key):
        def one(t, k, s):
            dist = head_dist(t, args.heads, m, K)
            a = jax.vmap(lambda kk: gen.sample(kk, "categorical", dist))(jax.random.split(k, 16))
            q = jax.vmap(jax.vmap(q1, in_axes=(None, 0)), in_axes=(None, 0))(s, a)  # [16, m]
            qg = jax.vmap(q1, in_axes=(None, 0))(s, gen.mode("categorical", dist))  # [m]
            return jnp.argmax(q, -1), jnp.argmax(qg), q.mean(0), q.max(-1).mean()
        return jax.vmap(one)(th, jax.random.split(key, args.maps), states)

    run = jax.jit(lambda c, k: jax.lax.scan(step, c, jax.random.split(k, args.every))[0])
    ev = jax.jit(evaluate)
    carry = (theta, jax.vmap(opt.init)(theta))
    key = jax.random.PRNGKey(0)
    t0 = time.time()
    recs = []
    for u in range(0, args.steps + 1, args.every):
        if u:
            key, k = jax.random.split(key)
            carry = run(carry, k)
        bi, gi, qmean, best = ev(carry[0], jax.random.PRNGKey(99))
        rec = {"update": u, "best_hist": (np.bincount(np.asarray(bi).ravel(), minlength=m) / bi.size).round(3).tolist(),
               "greedy_best_hist": (np.bincount(np.asarray(gi), minlength=m) / gi.size).round(3).tolist(),
               "mean_q_per_index": np.asarray(qmean).mean(0).round(4).tolist(), "best": float(best.mean()),
               "wall_s": round(time.time() - t0, 1), "args": vars(args)}
        recs.append(rec)
        print(json.dumps({k: rec[k] for k in ("update", "best", "best_hist", "greedy_best_hist", "mean_q_per_index")}), flush=True)
    if args.out:
        with open(args.out, "a") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
