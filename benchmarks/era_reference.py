"""ERA reference returns: exact values of simple and optimal policies, two attacker models.

Issue 21 investigation ("why our ERA-v3 baselines score above the paper's"). Three
independent computations of the expected 100-step return from a uniform random start:

1. ``exact_values`` -- exact finite-horizon dynamic programming on the full state
   ``(positions (K^L), node attacked last step (K + 1, K = none))`` with the step rules
   written here from a reading of the original (cameron-chen/flow-iar,
   ``envs/gym_seqssg/game_env_base.py``; not copied, and not using ``envs_jax``'s graph or
   attacker code). Policies: ``stay`` (action = current positions), ``uniform_valid``
   (uniform over the valid joint actions), ``uniform_any`` (uniform over all K^L joint actions,
   invalid ones handled by the original's invalid rule), ``best_fixed`` (move to the one
   rule-(b) triple with the best long-run attack payoff, then stay there), ``optimal_valid`` (the best policy
   that only plays valid actions: the MASK policy class's ceiling) and ``optimal_any``.
   The DP is time-dependent (horizon 100); the observation lacks the time step, so the
   optimum is an upper bound on any observation-based policy (the gap is tiny: last steps).
2. ``mc_numpy`` -- a step-by-step numpy simulation following the original's control flow
   (epsilon draw, attacker plan drawn through the payoff property, validity, move / stay),
   to check the DP's expectations.
3. ``mc_jax`` -- the same policies in our ``envs_jax.era`` environment (jit, vmapped
   episodes), to check that our env and the original's rules give the same numbers.

Attacker models (``attacker``):
- ``"mixture"`` -- ``SeqSSG-payoff-vN``: three payoff plans (``att_param``), a fresh plan per
  attack. This is what ``envs_jax.era.make_era`` (ERA-vN, ``plan_draw="step"``) implements.
- ``"single"`` -- ``SeqSSG-vN``: the original's registration of ``SeqSSG-v2``..``v10``
  does not pass ``att_param``, so the attacker uses the stored payoff order only. This is
  the env id of the original's published ERA commands (``scripts.sh``: ``--env_id
  SeqSSG-v3``). In our env: ``params.replace(atk_util=u[None], plan_probs=[1.0])``.

Run: ``python -m benchmarks.era_reference [--versions 3 4] [--episodes 300]``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import deque

import numpy as np

HORIZON = 100
ATK_EPS = 0.05
REQ_HOP = 3
PROTECT_PROB_INVALID = 0.5


# ------------------------------------------------------------------ original's rules (numpy)
def _bfs_first_paths(adj: np.ndarray, src: int) -> dict[int, list[int]]:
    """Fewest-hop path from ``src`` to each reachable node: BFS visiting neighbours in
    ascending index, first discovery wins (what networkx.shortest_path returns for an
    unweighted graph built from a numpy matrix)."""
    paths = {src: [src]}
    q = deque([src])
    while q:
        u = q.popleft()
        for v in np.flatnonzero(adj[u]):
            v = int(v)
            if v not in paths:
                paths[v] = paths[u] + [v]
                q.append(v)
    return paths


class OrigEra:
    """The original's ERA step rules for one data file, in numpy (see module docstring)."""

    def __init__(self, data: dict, attacker: str, req_hop: int = REQ_HOP):
        if attacker not in ("mixture", "single"):
            raise ValueError(f"attacker must be 'mixture' or 'single', got {attacker!r}")
        self.K, self.L = int(data["num_tgt"]), int(data["num_rsc"])
        K = self.K
        adj = np.asarray(data["adj_matrix"], dtype=int)
        cost = np.asarray(data["cost_matrix"], dtype=float)
        self.payoff = np.asarray(data["payoff_matrix"], dtype=float)
        req_dist = int(data.get("req_dist", 1))
        self.pairs = np.asarray(data["def_constraints"], dtype=int).reshape(-1, 2)
        hops = np.full((K, K), -1)
        self.path_cost = np.zeros((K, K))
        for i in range(K):
            for j, p in _bfs_first_paths(adj, i).items():
                hops[i, j] = len(p) - 1
                self.path_cost[i, j] = sum(cost[p[k], p[k + 1]] for k in range(len(p) - 1))
        self.move_ok = (hops > -1) & (hops <= req_hop)
        self.dist_ok = (hops > -1) & (hops <= req_dist)
        # attacker plans: each is a permutation of the attacker columns
        if attacker == "single":
            plans, probs = [np.arange(K)], np.ones(1)
        else:
            plans = [np.asarray(r) for r in data["att_param"]["idx_tgt"]]
            probs = np.asarray(data["att_param"]["dist_payoff"], dtype=float)
        self.atk_util = np.stack([self.payoff[:, 2:][idx].mean(axis=1) for idx in plans])  # (P, K)
        self.plan_probs = probs
        # every joint action, resource 0 most significant (K^L, L)
        self.actions = np.array(list(itertools.product(range(K), repeat=self.L)), dtype=int)

    # -- attacker law given the node attacked last step (K = none)
    def attack_law(self, prev: int) -> np.ndarray:
        K = self.K
        avail = np.arange(K) != prev
        law = ATK_EPS * avail / avail.sum()
        for c, pc in enumerate(self.plan_probs):
            u = np.where(avail, self.atk_util[c], -np.inf)
            e = np.exp(u - u[avail].max())
            law = law + (1 - ATK_EPS) * pc * e / e.sum()
        return law

    def pairs_ok(self, pos: np.ndarray) -> np.ndarray:
        """Rule (b) for positions (..., L)."""
        ok = np.ones(pos.shape[:-1], dtype=bool)
        for i, j in self.pairs:
            ok &= self.dist_ok[pos[..., i], pos[..., j]]
        return ok

    def valid(self, pos: np.ndarray, acts: np.ndarray) -> np.ndarray:
        """Rules (a) + (b): moved resources within REQ_HOP hops (unmoved ones need nothing),
        pairs within req_dist. pos (L,), acts (N, L) -> (N,)."""
        moved = acts != pos[None, :]
        hop_ok = np.all(~moved | self.move_ok[pos[None, :], acts], axis=1)
        return hop_ok & self.pairs_ok(acts)

    # -- one step, the original's control flow
    def step(self, rng: np.random.Generator, pos: np.ndarray, prev: int, act: np.ndarray):
        K = self.K
        avail = np.flatnonzero(np.arange(K) != prev)
        if rng.random() < ATK_EPS:
            z = int(rng.choice(avail))
        else:
            c = rng.choice(len(self.plan_probs), p=self.plan_probs)  # the payoff property
            u = self.atk_util[c][avail]
            p = np.exp(u - u.max())
            z = int(rng.choice(avail, p=p / p.sum()))
        if self.valid(pos, act[None])[0]:
            protected = bool(np.any(act == z))
            r = self.payoff[z, 0] if protected else self.payoff[z, 1]
            r -= self.path_cost[pos, act].sum()
            return r, act.copy(), z
        on = bool(np.any(pos == z))
        if not on:
            protected = False
        elif self.pairs_ok(pos):
            protected = True
        else:
            protected = rng.random() < PROTECT_PROB_INVALID
        return (self.payoff[z, 0] if protected else self.payoff[z, 1]), pos, z


# ------------------------------------------------------------------ exact DP
def exact_values(env: OrigEra, horizon: int = HORIZON) -> dict[str, float]:
    """Expected return from a uniform random start (positions uniform per resource, no
    previous attack) for each policy of the module docstring, by backward induction."""
    K, A = env.K, env.actions
    n = A.shape[0]
    law = np.stack([env.attack_law(q) for q in range(K + 1)])  # (K+1, K)
    cover = (A[:, :, None] == np.arange(K)[None, None, :]).any(axis=1)  # (n, K)
    R, P = env.payoff[:, 0], env.payoff[:, 1]
    util_cov = np.where(cover, R[None], P[None])  # (n, K) reward if attack on z, valid move
    G = law @ util_cov.T  # (K+1, n): expected attack payoff of ending at a
    C = env.path_cost[A[:, None, :], A[None, :, :]].sum(-1)  # (n from, n to) move cost
    V = np.stack([env.valid(A[i], A) for i in range(n)])  # (n from, n to) validity
    okp = env.pairs_ok(A)  # (n,)
    pprot = cover * np.where(okp, 1.0, PROTECT_PROB_INVALID)[:, None]  # (n, K) invalid rule
    util_inv = pprot * R[None] + (1 - pprot) * P[None]
    H = (law @ util_inv.T).T  # (n, K+1): expected payoff of an invalid action at p
    imm_valid = G[None, :, :] - C[:, None, :]  # (n p, K+1 q, n a)
    # best fixed allocation: the rule-(b)-satisfying triple with the best long-run attack payoff
    # (stationary law of the attacked node, a Markov chain the defender does not influence)
    T = law[:K]  # (K, K): previous attack -> this attack
    evals, evecs = np.linalg.eig(T.T)
    pi = np.real(evecs[:, np.argmin(np.abs(evals - 1.0))])
    pi = pi / pi.sum()
    per_step = pi @ G[:K]  # (n,)
    fixed = int(np.argmax(np.where(okp, per_step, -np.inf)))
    out = {}
    for name in ("stay", "uniform_valid", "uniform_any", "best_fixed", "optimal_valid", "optimal_any"):
        val = np.zeros((n, K + 1))  # V_{T}(p, q) = 0
        for _ in range(horizon):
            W = law @ val[:, :K].T  # (K+1, n): E_z V(a, z) given q
            Qv = imm_valid + W[None, :, :]  # (n, K+1, n)
            Qi = H + W.T  # (n, K+1): invalid -> stay at p
            Qv_masked = np.where(V[:, None, :], Qv, -np.inf)
            nvalid = V.sum(1)
            if name == "stay":
                diag = Qv[np.arange(n), :, np.arange(n)]  # (n, K+1)
                new = np.where(V[np.arange(n), np.arange(n)][:, None], diag, Qi)
            elif name == "best_fixed":  # go to the fixed triple (if valid from p), else stay
                go = V[:, fixed]
                stay = np.where(V[np.arange(n), np.arange(n)][:, None], Qv[np.arange(n), :, np.arange(n)], Qi)
                new = np.where(go[:, None], Qv[:, :, fixed], stay)
            elif name == "uniform_valid":
                new = np.where(V[:, None, :], Qv, 0.0).sum(-1) / nvalid[:, None]
            elif name == "uniform_any":
                new = (np.where(V[:, None, :], Qv, 0.0).sum(-1) + (n - nvalid)[:, None] * Qi) / n
            elif name == "optimal_valid":
                new = Qv_masked.max(-1)
            else:
                new = np.maximum(Qv_masked.max(-1), Qi)
            val = new
        out[name] = float(val[:, K].mean())  # uniform start, no previous attack
    out["best_fixed_triple"] = A[fixed].tolist()
    out["best_fixed_per_step"] = float(per_step[fixed])
    return out


# ------------------------------------------------------------------ Monte Carlo (numpy)
def mc_numpy(env: OrigEra, policy: str, episodes: int, seed: int) -> tuple[float, float]:
    """(mean, standard error) of the 100-step return, the original's step rules."""
    rng = np.random.default_rng(seed)
    rets = np.empty(episodes)
    for e in range(episodes):
        pos, prev, ret = rng.integers(0, env.K, env.L), env.K, 0.0
        for _ in range(HORIZON):
            if policy == "stay":
                act = pos.copy()
            else:
                ok = np.flatnonzero(env.valid(pos, env.actions))
                act = env.actions[rng.choice(ok)]
            r, pos, prev = env.step(rng, pos, prev, act)
            ret += r
        rets[e] = ret
    return float(rets.mean()), float(rets.std(ddof=1) / np.sqrt(episodes))


# ------------------------------------------------------------------ Monte Carlo (our env)
def mc_jax(version: int, attacker: str, policy: str, episodes: int, seed: int) -> tuple[float, float]:
    """(mean, standard error) of the 100-step return in ``envs_jax.era`` (jit, vmapped)."""
    import jax
    import jax.numpy as jnp

    from envs_jax.era import make_era

    env, params = make_era(version)
    if attacker == "single":
        u = params.payoff[:, 2:4].mean(axis=1)
        params = params.replace(atk_util=u[None, :], plan_probs=jnp.ones(1, jnp.float32))
    acts = env.all_actions()

    def episode(key):
        k0, key = jax.random.split(key)
        _, state = env.reset_env(k0, params)

        def body(carry, k):
            state, ret = carry
            ka, ks = jax.random.split(k)
            if policy == "stay":
                a = state.pos
            else:
                mask = env.valid_mask(state, acts, params)
                a = acts[jax.random.categorical(ka, jnp.where(mask, 0.0, -jnp.inf))]
            _, state, r, _, _ = env.step_env(ks, state, a, params)
            return (state, ret + r), None

        (_, ret), _ = jax.lax.scan(body, (state, jnp.float32(0.0)), jax.random.split(key, HORIZON))
        return ret

    rets = np.asarray(jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(seed), episodes)))
    return float(rets.mean()), float(rets.std(ddof=1) / np.sqrt(episodes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", type=int, nargs="+", default=[3, 4])
    ap.add_argument("--episodes", type=int, default=300, help="Monte Carlo episodes per cell")
    ap.add_argument("--no-mc", action="store_true", help="exact DP values only")
    ap.add_argument(
        "--req-hop", type=int, default=REQ_HOP,
        help="rule (a) hop limit (original 3; the paper's App. E text: 1, 'move only to a neighbouring node'); "
        "the envs_jax Monte Carlo check always uses our env's default (3)",
    )
    args = ap.parse_args()

    from envs_jax.era import load_era_data

    for v in args.versions:
        data = load_era_data(v)
        for ai, attacker in enumerate(("mixture", "single")):
            env = OrigEra(data, attacker, req_hop=args.req_hop)
            t0 = time.time()
            ex = exact_values(env)
            line = ", ".join(f"{k} {x:.2f}" if isinstance(x, float) else f"{k} {x}" for k, x in ex.items())
            print(f"ERA-v{v} attacker={attacker} req_hop={args.req_hop} exact: {line}  ({time.time() - t0:.1f} s)", flush=True)
            print(f"  attack law, no previous attack: {np.round(env.attack_law(env.K), 3).tolist()}")
            if args.no_mc or args.req_hop != REQ_HOP:
                continue
            for policy in ("stay", "uniform_valid"):
                t0 = time.time()
                m, s = mc_numpy(env, policy, args.episodes, seed=10 * v + ai)
                t1 = time.time()
                mj, sj = mc_jax(v, attacker, policy, args.episodes, seed=10 * v + ai)
                t2 = time.time()
                print(
                    f"  {policy}: exact {ex[policy]:.2f} | numpy MC {m:.2f} +- {s:.2f} ({t1 - t0:.0f} s)"
                    f" | envs_jax MC {mj:.2f} +- {sj:.2f} ({t2 - t1:.0f} s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
