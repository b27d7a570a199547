"""Return of fixed allocations on ``PASPO-compute-9`` (the original's rules): shares
proportional to the CPU frequencies (infeasible), their Euclidean projection onto the compute9
polytope (feasible, "load balanced") and the uniform allocation, over N episodes (default 1000).

    python benchmarks/paspo_compute_fixed.py 1000
"""
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

import envs_jax

env, p = envs_jax.make('PASPO-compute-9')
A, b = env.exact_constraints
f = np.asarray(p.freq, np.float64); target = f / f.sum()
res = minimize(lambda x: np.sum((x - target) ** 2), np.full(9, 1 / 9), jac=lambda x: 2 * (x - target),
               constraints=[{"type": "ineq", "fun": lambda x: b - A @ x - 1e-7, "jac": lambda x: -A},
                            {"type": "eq", "fun": lambda x: x.sum() - 1, "jac": lambda x: np.ones((1, 9))}],
               bounds=[(0, 1)] * 9, method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
proj = res.x
def run(a, n=int(sys.argv[1]) if len(sys.argv) > 1 else 1000):
    a = jnp.asarray(a, jnp.float32)
    def episode(key):
        obs, s = env.reset(key, p)
        def body(c, k):
            s, R, done = c
            obs, s2, r, term, info = env.step_env(k, s, a, p)
            return (s2, R + jnp.where(done, 0., r), done | term), None
        (s, R, done), _ = jax.lax.scan(body, (s, 0., False), jax.random.split(key, p.max_steps_in_episode))
        return R, s.num_tasks
    t = time.time()
    R, N = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(1), n))
    R, N = np.asarray(R), np.asarray(N)
    return R.mean(), R.std() / np.sqrt(n), N.mean(), N.var(), (R / N).mean(), time.time() - t
print("proj", np.round(proj, 4), "feasible", bool(env.is_valid(None, jnp.asarray(proj, jnp.float32), p)))
for name, a in [("freq-proportional (infeasible)", target), ("projected onto compute9", proj), ("uniform", np.full(9, 1 / 9))]:
    m, se, nm, nv, frac, wall = run(a)
    print(f"{name}: return {m:.2f} +- {se:.2f} (SE), tasks mean {nm:.2f} var {nv:.1f}, on-time fraction {frac:.3f}, wall {wall:.1f}s")
