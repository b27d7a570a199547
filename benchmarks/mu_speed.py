"""Cost of one generator update at the paper's budget (issue 19, "Speed"): XLA's FLOP and byte
counts of one update (a single ``update``, not the scan: cost analysis counts a scan body
once) and the CPU and wall time of ``--updates`` updates inside ``Trainer.run``'s scan, for
the original's network with the exact head backward and with the sparse unbiased one
(``head_grad_samples``), and per component (forward, backward, Adam) of the exact one.

    python -m benchmarks.mu_speed --updates 200
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import optax

from mu_jax.trainer import Config, make_trainer


def cpu_s() -> float:
    t = os.times()
    return t[0] + t[1]


def timed(fn, *args, n: int):
    out = fn(*args)
    jax.block_until_ready(out)
    c0, w0 = cpu_s(), time.time()
    for _ in range(n):
        out = fn(*args)
    jax.block_until_ready(out)
    return (cpu_s() - c0) / n, (time.time() - w0) / n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=200)
    ap.add_argument("--variants", default="ours,orig,orig_s1,orig_s4")
    ap.add_argument("--components", action="store_true")
    args = ap.parse_args(argv)
    variants = {"ours": dict(), "orig": dict(network="orig"), "orig_s1": dict(network="orig", head_grad_samples=1),
                "orig_s4": dict(network="orig", head_grad_samples=4)}
    for name in [v for v in args.variants.split(",") if v]:
        tr = make_trainer(Config(**variants[name]), "MU-location")
        s = tr.init(jax.random.PRNGKey(0))
        ca = jax.jit(tr.update).lower(s).compile().cost_analysis()
        ca = ca[0] if isinstance(ca, list) else ca
        run = jax.jit(lambda st: tr.run(st, args.updates)[0])
        c, w = timed(run, s, n=1)
        rec = {"variant": name, "gflop_per_update": round(ca["flops"] / 1e9, 3),
               "mbytes_per_update": round(ca.get("bytes accessed", 0) / 1e6, 1),
               "cpu_ms_per_update": round(c / args.updates * 1e3, 2), "wall_ms_per_update": round(w / args.updates * 1e3, 2),
               "cpu_min_80k": round(c / args.updates * 80_000 / 60, 1), "load1": os.getloadavg()[0]}
        print(json.dumps(rec), flush=True)
    if args.components:
        tr = make_trainer(Config(network="orig"), "MU-location")
        s = tr.init(jax.random.PRNGKey(0))
        states = tr.sample_states(jax.random.PRNGKey(1), 32)
        fwd = jax.jit(lambda p: tr.heads(p, states))
        grad = jax.jit(lambda p: jax.grad(lambda pp: tr.loss(pp, jax.random.PRNGKey(2), states)[0])(p))
        opt = optax.adam(1e-5)
        adam = jax.jit(lambda p, st, g: opt.update(g, st, p))
        g = grad(s.params)
        for cname, fn, a in (("forward", fwd, (s.params,)), ("forward+backward", grad, (s.params,)),
                             ("adam", adam, (s.params, s.opt_state, g))):
            c, w = timed(fn, *a, n=20)
            print(json.dumps({"component": cname, "cpu_ms": round(c * 1e3, 2), "wall_ms": round(w * 1e3, 2),
                              "load1": os.getloadavg()[0]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
