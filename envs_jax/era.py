"""ERA: emergency resource allocation on a graph (IAR, Chen et al., NeurIPS 2023, App. E).

A defender places ``L = num_rsc`` resources on the ``K = num_tgt`` nodes of a graph every
step; an attacker then hits one node. Ids (``envs_jax.registry``): ``ERA-v1``..``ERA-v5``
(constrained, with move costs), ``ERA-nocstr-v5`` (no validity rules, no move costs) and
``ERA-partial`` (:class:`EraPartial`, below). Graphs, payoffs and attacker plans are the
original's (``data/era/seqssg_v*.json``; the original calls the game "SeqSSG"); the paper's
ERA-vN is ``seqssg_vN`` (Table A.9: v1 (3 resources, 6 nodes, req_dist 1), v2 (3, 7, 1),
v3 (3, 8, 2), v4 (3, 9, 2), v5 (3, 10, 3)).

Dynamics of one step (``step_env``), as the original code behaves:

1. Attacker. Let ``avail`` be the nodes NOT attacked at the previous step (all nodes on the
   first step of an episode). With probability ``atk_eps`` = 0.05 the attacked node ``z`` is
   uniform over ``avail``; otherwise ``z ~ softmax_{n in avail}(u_c(n))`` with
   ``u_c(n) = (atk_rew + atk_plt) / 2`` of payoff row ``idx_tgt[c][n]``, where the plan
   ``c ~ dist_payoff`` (3 plans). The attacker does not see the defender's move.
   *When the plan is drawn* (``plan_draw``): ``"step"`` (default) draws a fresh plan for
   every attack, which is what the original does (its payoff-matrix property samples a plan
   each time the attacker reads it; the paper's App. E describes these ``-payoff-``
   configurations, while the original's published ERA command (``scripts.sh``) runs
   ``SeqSSG-vN``, registered with the first plan only: the attack probabilities differ by
   < 0.02 per node, the optimum by < 1 return; benchmarks/RESULTS_iar.md). The data's ``dist_payoff`` is a plain probability vector and says
   nothing about timing. With per-step plans the attack law is the mixture
   ``sum_c dist_payoff[c] softmax(u_c)``, so the environment stays Markov in the observation;
   we sample ``z`` from that exact mixture in one draw (same law as plan-then-node).
   ``"episode"`` draws one plan at reset and keeps it (``state.plan``) for the episode: a
   hidden, persistent attacker type, i.e. a partially observed variant.
2. Validity of the defender's action ``a`` (``is_valid``): (a) every resource moves at most
   ``req_hop`` = 3 hops, ``hop(pos[l], a[l]) <= req_hop`` (BFS distances; the paper's App. E
   text says "move to a neighbouring node", the original and the paper's runs use 3 hops);
   (b) every pair ``(i, j)`` in ``def_constraints`` ends within ``req_dist`` hops,
   ``hop(a[i], a[j]) <= req_dist``. Actions outside ``[0, K)`` are never valid.
3. Valid action: resources move to ``a``; reward ``def_rew[z]`` if a resource sits on ``z``,
   else ``def_plt[z]``, minus ``sum_l cost(pos[l] -> a[l])``. ``move_cost="bfs_path"``
   (default, the original) charges the summed edge cost along the fewest-hop path (BFS,
   ascending-index tie-break = ``networkx.shortest_path``); ``"min_cost"`` charges the least
   edge-cost path. They differ on 8 ordered node pairs of v2 and 30 of v5 (v5 0->1: 0.13
   direct vs 0.07 via node 2).
4. Invalid action (the original): resources stay where they are, no move cost, no penalty;
   ``z`` counts as protected if a resource sits on it and rule (b) holds for the current
   positions, with probability ``protect_prob_invalid`` = 0.5 if a resource sits on it but
   (b) fails, never if no resource sits on it.
5. ``ERA-nocstr-v5``: every in-range action is valid (executed as given), no move cost.

Episodes: 100 steps, ended only by truncation (``params.max_steps_in_episode``; gymnax's
``step`` auto-resets). Reset: each resource on a uniform random node (independently, so
resources may share a node and the start may break rule (b), as in the original);
``params.fixed_start=True`` starts from the data's evaluation positions
(``attr_for_testing.init_state``): entry ``start_index`` if it is >= 0, else a uniform one
(the original's evaluation gives eval env ``i`` entry ``i % n`` for all its episodes: vmap
``start_index`` to reproduce that, or call ``reset_to``).

Observation (float32, shape ``(K * (L + 2 + K),)``): the original's per-node table
``(K, L + 2 + K)`` flattened row-major (node 0's row first). Row ``n``:

    col 0          defended: 1.0 if any resource is on node n, else 0.0
    cols 1..L      the indices of the resources on node n, ascending, padded with L
    col L + 1      attacked: 1.0 if node n was attacked at the previous step (0 after reset)
    cols L+2..     adjacency row n of the graph (0/1)

``Era.obs_table(obs)`` reshapes it back to ``(..., K, L + 2 + K)``.

Action: int array of shape ``(L,)``, ``a[l]`` = node of resource ``l``; ``action_space`` is
:class:`envs_jax.spaces.MultiDiscrete` (why not a gymnax ``Box``: see that module).
``num_actions`` = ``K ** L`` (joint actions; ``all_actions`` lists them, resource 0 the most
significant digit).

Data note: ``seqssg_v5.json`` row 1 has ``def_plt = +1.12`` (every other row has
``def_plt = -def_rew``), so an unprotected attack on node 1 of ERA-v5 pays the defender
+1.12. It is the original's data and the original's runs used it; kept as it is.
"""

from __future__ import annotations

import importlib.resources
import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from envs_jax.graphs import bfs_path_costs, check_graph, hop_distances, min_path_costs
from envs_jax.spaces import MultiDiscrete

ERA_VERSIONS = tuple(range(1, 11))  # data files shipped; the paper uses v1..v5
REQ_HOP = 3  # original: every moved resource may travel up to 3 hops
ATK_EPS = 0.05  # original: probability of a uniform (non-quantal-response) attack
PROTECT_PROB_INVALID = 0.5  # original: protection chance after an invalid action when (b) fails
EPISODE_STEPS = 100  # original: gym TimeLimit of 100 steps


def _obs_table(pos: jax.Array, attacked: jax.Array, adj: jax.Array, num_tgt: int) -> jax.Array:
    """(K, L + 2 + K) per-node table (see module docstring) for positions ``pos`` (L,)."""
    num_rsc = pos.shape[0]
    nodes = jnp.arange(num_tgt)
    here = pos[None, :] == nodes[:, None]  # (K, L)
    defended = here.any(axis=1)
    slots = jnp.sort(jnp.where(here, jnp.arange(num_rsc)[None, :], num_rsc), axis=1)
    hit = nodes == attacked
    return jnp.concatenate(
        [defended[:, None], slots, hit[:, None], adj], axis=1, dtype=jnp.float32
    )


# ================================================================================== ERA
@struct.dataclass
class EraState:
    pos: jax.Array  # (L,) int32 node of each resource
    attacked: jax.Array  # () int32 node attacked at the previous step; K = none (after reset)
    plan: jax.Array  # () int32 attacker plan of the episode (plan_draw="episode"; else unused, 0)
    time: int  # steps taken in this episode


@struct.dataclass
class EraParams:
    payoff: jax.Array  # (K, 4) per node (def_rew, def_plt, atk_rew, atk_plt), as stored
    atk_util: jax.Array  # (P, K) attacker utility per plan: mean(atk_rew, atk_plt) of row idx_tgt[c][n]
    plan_probs: jax.Array  # (P,) dist_payoff, probability of each attacker plan
    move_ok: jax.Array  # (K, K) bool, hop(i, j) <= req_hop: rule (a)
    dist_ok: jax.Array  # (K, K) bool, hop(i, j) <= req_dist: rule (b)
    move_cost: jax.Array  # (K, K) float32 cost of moving one resource i -> j
    adj: jax.Array  # (K, K) float32 adjacency (the observation's last K columns)
    init_states: jax.Array  # (n_init, L) int32 evaluation start positions (attr_for_testing)
    atk_eps: float = ATK_EPS  # probability of a uniform attack over the available nodes
    protect_prob_invalid: float = PROTECT_PROB_INVALID  # see rule 4 of the module docstring
    fixed_start: bool = False  # reset from init_states instead of uniform random positions
    start_index: int = -1  # with fixed_start: this init_states entry if >= 0, else a uniform one
    max_steps_in_episode: int = EPISODE_STEPS  # truncation


class Era(environment.Environment[EraState, EraParams]):
    """ERA on one graph; see the module docstring for the dynamics, layout and choices.

    Static structure lives on the instance: ``num_tgt`` (K), ``num_rsc`` (L),
    ``def_constraints`` ((C, 2) resource pairs), ``constrained``, ``has_cost``,
    ``plan_draw``. Numbers live in :class:`EraParams` (vmappable). Contracts
    (``envs_jax.contracts``): ``ValidMask``, ``Costs`` (one cost: 1 for an invalid action),
    ``FixedStarts``.
    """

    num_costs = 1

    def __init__(
        self,
        num_tgt: int,
        num_rsc: int,
        def_constraints: np.ndarray,
        default_params: EraParams,
        constrained: bool = True,
        has_cost: bool = True,
        plan_draw: str = "step",
        name: str = "ERA",
    ):
        super().__init__()
        if plan_draw not in ("step", "episode"):
            raise ValueError(f"plan_draw must be 'step' or 'episode', got {plan_draw!r}")
        self.num_tgt = int(num_tgt)
        self.num_rsc = int(num_rsc)
        self.def_constraints = np.asarray(def_constraints, dtype=np.int32).reshape(-1, 2)
        self.constrained = bool(constrained)
        self.has_cost = bool(has_cost)
        self.plan_draw = plan_draw
        self._name = name
        self._default_params = default_params

    # ------------------------------------------------------------------ gymnax surface
    @property
    def default_params(self) -> EraParams:
        return self._default_params

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        """Number of joint actions, ``K ** L``."""
        return self.num_tgt**self.num_rsc

    def action_space(self, params: EraParams | None = None) -> MultiDiscrete:
        return MultiDiscrete([self.num_tgt] * self.num_rsc)

    def observation_space(self, params: EraParams | None = None) -> spaces.Box:
        n = self.num_tgt * (self.num_rsc + 2 + self.num_tgt)
        return spaces.Box(0.0, float(self.num_rsc), (n,), jnp.float32)

    def state_space(self, params: EraParams | None = None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "pos": MultiDiscrete([self.num_tgt] * self.num_rsc),
                "attacked": spaces.Discrete(self.num_tgt + 1),  # K = none (after reset)
                "plan": spaces.Discrete(int(params.plan_probs.shape[0])),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )

    def is_terminated(self, state: EraState, params: EraParams) -> jax.Array:
        return jnp.array(False)

    def get_obs(self, state: EraState, params: EraParams | None = None, key=None) -> jax.Array:
        params = self.default_params if params is None else params
        return _obs_table(state.pos, state.attacked, params.adj, self.num_tgt).reshape(-1)

    def obs_table(self, obs: jax.Array) -> jax.Array:
        """Flat observation(s) ``(..., K*(L+2+K))`` -> per-node table ``(..., K, L+2+K)``."""
        return obs.reshape(*obs.shape[:-1], self.num_tgt, self.num_rsc + 2 + self.num_tgt)

    # ------------------------------------------------------------------ constraints
    def _pairs_ok(self, pos: jax.Array, params: EraParams) -> jax.Array:
        """Rule (b) for positions ``pos`` (L,)."""
        if self.def_constraints.shape[0] == 0:
            return jnp.array(True)
        i, j = self.def_constraints[:, 0], self.def_constraints[:, 1]
        return jnp.all(params.dist_ok[pos[i], pos[j]])

    def satisfies_rules(self, state: EraState, action: jax.Array, params: EraParams) -> jax.Array:
        """Rules (a) and (b) and the range check, whether or not this env enforces them."""
        a = jnp.asarray(action).astype(jnp.int32)
        in_range = jnp.all((a >= 0) & (a < self.num_tgt))
        a = jnp.clip(a, 0, self.num_tgt - 1)
        hop_ok = jnp.all(params.move_ok[state.pos, a])
        return in_range & hop_ok & self._pairs_ok(a, params)

    def is_valid(self, state: EraState, action: jax.Array, params: EraParams) -> jax.Array:
        """Valid-action oracle: () bool for one state and one action ``(L,)`` int.

        Constrained envs: rules (a), (b) and ``0 <= a < K`` (two small gathers from
        precomputed (K, K) tables). ``ERA-nocstr``: the range check only. Pure and jittable;
        ``jax.vmap`` it over candidate actions (``valid_mask``) and/or states.
        """
        if self.constrained:
            return self.satisfies_rules(state, action, params)
        a = jnp.asarray(action)
        return jnp.all((a >= 0) & (a < self.num_tgt))

    def valid_mask(self, state: EraState, actions: jax.Array, params: EraParams) -> jax.Array:
        """``is_valid`` of ``actions`` (S, L) for one state -> (S,) bool."""
        return jax.vmap(self.is_valid, in_axes=(None, 0, None))(state, actions, params)

    def all_actions(self) -> jax.Array:
        """(K ** L, L) int32 every joint action; index = sum_l a[l] K^(L-1-l)."""
        grids = np.indices((self.num_tgt,) * self.num_rsc).reshape(self.num_rsc, -1).T
        return jnp.asarray(grids, dtype=jnp.int32)

    # ------------------------------------------------------------------ attacker
    def attack_probs(self, state: EraState, params: EraParams) -> jax.Array:
        """(K,) law of the node attacked at the next step (rule 1 of the module docstring)."""
        avail = jnp.arange(self.num_tgt) != state.attacked
        uniform = avail / avail.sum()
        logits = jnp.where(avail[None, :], params.atk_util, -jnp.inf)  # (P, K)
        per_plan = jax.nn.softmax(logits, axis=-1)
        if self.plan_draw == "step":
            quantal = params.plan_probs @ per_plan
        else:
            quantal = per_plan[state.plan]
        return params.atk_eps * uniform + (1.0 - params.atk_eps) * quantal

    # ------------------------------------------------------------------ dynamics
    def step_env(self, key, state: EraState, action, params: EraParams):
        """One step; ``info``: ``valid`` (bool, the env executed the action), ``violation`` and
        ``cost`` (float32, 1.0 for an invalid action), ``protected`` (bool), ``rules_ok`` (bool,
        rules (a)+(b) hold, reported by the no-constraint variant too), ``attacked`` (int)."""
        k_atk, k_protect = jax.random.split(key)
        a = jnp.asarray(action).astype(jnp.int32).reshape(self.num_rsc)
        rules_ok = self.satisfies_rules(state, a, params)
        valid = self.is_valid(state, a, params)
        a = jnp.clip(a, 0, self.num_tgt - 1)

        z = jax.random.categorical(k_atk, jnp.log(self.attack_probs(state, params)))
        def_rew, def_plt = params.payoff[z, 0], params.payoff[z, 1]

        # Valid: move, protected if any resource lands on z, pay the move cost.
        protected_valid = jnp.any(a == z)
        cost = jnp.sum(params.move_cost[state.pos, a]) if self.has_cost else jnp.float32(0.0)
        # Invalid (original): stay; protected if on z and rule (b) holds, else by chance.
        lucky = jax.random.uniform(k_protect) < params.protect_prob_invalid
        protected_invalid = jnp.any(state.pos == z) & (self._pairs_ok(state.pos, params) | lucky)

        protected = jnp.where(valid, protected_valid, protected_invalid)
        reward = jnp.where(protected, def_rew, def_plt) - jnp.where(valid, cost, 0.0)
        new_state = state.replace(
            pos=jnp.where(valid, a, state.pos),
            attacked=z.astype(jnp.int32),
            time=state.time + 1,
        )
        info = {
            "valid": valid,
            "violation": jnp.where(valid, 0.0, 1.0).astype(jnp.float32),
            "cost": jnp.where(valid, 0.0, 1.0).astype(jnp.float32),  # invalid action: cost 1 (engine's cost channel)
            "protected": protected,
            "rules_ok": rules_ok,
            "attacked": z.astype(jnp.int32),
        }
        obs = self.get_obs(new_state, params)
        return obs, new_state, reward.astype(jnp.float32), jnp.array(False), info

    def reset_env(self, key, params: EraParams):
        k_pos, k_idx, k_plan = jax.random.split(key, 3)
        random_pos = jax.random.randint(k_pos, (self.num_rsc,), 0, self.num_tgt, dtype=jnp.int32)
        n_init = params.init_states.shape[0]
        idx = jnp.where(
            params.start_index >= 0,
            jnp.asarray(params.start_index) % n_init,
            jax.random.randint(k_idx, (), 0, n_init),
        )
        pos = jnp.where(params.fixed_start, params.init_states[idx], random_pos).astype(jnp.int32)
        if self.plan_draw == "episode":
            plan = jax.random.categorical(k_plan, jnp.log(params.plan_probs)).astype(jnp.int32)
        else:
            plan = jnp.int32(0)
        state = EraState(pos=pos, attacked=jnp.int32(self.num_tgt), plan=plan, time=jnp.int32(0))
        return self.get_obs(state, params), state

    def reset_to(self, key, params: EraParams, index):
        """Reset from evaluation start ``init_states[index % n_init]`` (the original's
        evaluation env ``index``)."""
        return self.reset_env(key, params.replace(fixed_start=True, start_index=index))


def load_era_data(version: int) -> dict:
    """The stored original config ``seqssg_v{version}.json`` as a dict."""
    if version not in ERA_VERSIONS:
        raise ValueError(f"ERA version must be one of {ERA_VERSIONS}, got {version!r}")
    path = importlib.resources.files("envs_jax") / "data" / "era" / f"seqssg_v{version}.json"
    with path.open("r") as f:
        return json.load(f)


def make_era(
    version: int,
    constrained: bool = True,
    *,
    plan_draw: str = "step",
    move_cost: str = "bfs_path",
    fixed_start: bool = False,
    req_hop: int = REQ_HOP,
    req_dist: int | None = None,
    atk_eps: float = ATK_EPS,
    protect_prob_invalid: float = PROTECT_PROB_INVALID,
    max_steps_in_episode: int = EPISODE_STEPS,
) -> tuple[Era, EraParams]:
    """``(env, params)`` for ``ERA-v{version}`` (or ``ERA-nocstr-v{version}`` with
    ``constrained=False``: no validity rules, no move cost).

    ``req_dist`` defaults to the data's (1 where the file has none, v2, as the original);
    ``plan_draw`` in {"step" (original), "episode"}; ``move_cost`` in {"bfs_path"
    (original), "min_cost"}; ``fixed_start`` starts episodes from the evaluation positions.
    """
    if move_cost not in ("bfs_path", "min_cost"):
        raise ValueError(f"move_cost must be 'bfs_path' or 'min_cost', got {move_cost!r}")
    if int(req_hop) < 0 or (req_dist is not None and int(req_dist) < 0):
        raise ValueError(f"req_hop and req_dist must be >= 0, got {req_hop}, {req_dist}")
    if not 0.0 <= atk_eps <= 1.0 or not 0.0 <= protect_prob_invalid <= 1.0:
        raise ValueError("atk_eps and protect_prob_invalid must lie in [0, 1]")
    d = load_era_data(version)
    num_tgt, num_rsc = int(d["num_tgt"]), int(d["num_rsc"])
    adj, cost = check_graph(np.asarray(d["adj_matrix"]), np.asarray(d["cost_matrix"]))
    payoff = np.asarray(d["payoff_matrix"], dtype=np.float64)
    if payoff.shape != (num_tgt, 4) or adj.shape != (num_tgt, num_tgt):
        raise ValueError(f"ERA v{version}: payoff {payoff.shape} / adjacency {adj.shape} do not match num_tgt={num_tgt}")
    req_dist = int(d.get("req_dist", 1) if req_dist is None else req_dist)

    hops = hop_distances(adj)
    reach = hops >= 0
    path_cost = bfs_path_costs(adj, cost) if move_cost == "bfs_path" else min_path_costs(adj, cost)
    path_cost = np.where(reach, path_cost, 0.0)  # unreachable moves are never valid

    att = d.get("att_param")
    if att is None:  # one plan: the stored order
        idx_tgt, plan_probs = np.arange(num_tgt)[None, :], np.ones(1)
    else:
        idx_tgt = np.asarray(att["idx_tgt"], dtype=np.int64)
        plan_probs = np.asarray(att["dist_payoff"], dtype=np.float64)
    if idx_tgt.shape[1] != num_tgt or not (np.sort(idx_tgt, axis=1) == np.arange(num_tgt)).all():
        raise ValueError(f"ERA v{version}: every idx_tgt row must be a permutation of the nodes")
    if not np.isclose(plan_probs.sum(), 1.0) or (plan_probs < 0).any():
        raise ValueError(f"ERA v{version}: dist_payoff must be a probability vector")
    atk_util = payoff[:, 2:4].mean(axis=1)[idx_tgt]  # (P, K): node n gets row idx_tgt[c][n]

    init = d.get("attr_for_testing", {}).get("init_state", {})
    init_states = np.asarray([init[k] for k in sorted(init, key=int)], dtype=np.int32)
    if init_states.size == 0:
        init_states = np.zeros((1, num_rsc), dtype=np.int32)
    pairs = np.asarray(d["def_constraints"], dtype=np.int32).reshape(-1, 2)
    if ((pairs < 0) | (pairs >= num_rsc)).any() or ((init_states < 0) | (init_states >= num_tgt)).any():
        raise ValueError(f"ERA v{version}: def_constraints / init_state out of range")

    params = EraParams(
        payoff=jnp.asarray(payoff, jnp.float32),
        atk_util=jnp.asarray(atk_util, jnp.float32),
        plan_probs=jnp.asarray(plan_probs, jnp.float32),
        move_ok=jnp.asarray(reach & (hops <= int(req_hop))),
        dist_ok=jnp.asarray(reach & (hops <= req_dist)),
        move_cost=jnp.asarray(path_cost, jnp.float32),
        adj=jnp.asarray(adj, jnp.float32),
        init_states=jnp.asarray(init_states),
        atk_eps=float(atk_eps),
        protect_prob_invalid=float(protect_prob_invalid),
        fixed_start=bool(fixed_start),
        max_steps_in_episode=int(max_steps_in_episode),
    )
    name = f"ERA-v{version}" if constrained else f"ERA-nocstr-v{version}"
    env = Era(
        num_tgt, num_rsc, pairs, params,
        constrained=constrained, has_cost=constrained, plan_draw=plan_draw, name=name,
    )
    return env, params


# ========================================================================== ERA-partial
PARTIAL_NUM_TGT = 3  # Table A.9: 3 nodes
PARTIAL_NUM_RSC = 2  # Table A.9: 2 resources
PARTIAL_REQ_DIST = 1  # Table A.9: "1 hop" (the column that is req_dist for v1..v5)


@struct.dataclass
class EraPartialState:
    target: jax.Array  # () int32 hidden state: the node the attacker hits at this step
    time: int  # steps taken in this episode


@struct.dataclass
class EraPartialParams:
    payoff: jax.Array  # (3, 2) per node (def_rew, def_plt)
    dist_ok: jax.Array  # (3, 3) bool, hop(i, j) <= req_dist: the pair rule
    adj: jax.Array  # (3, 3) float32 adjacency of the path 0 - 1 - 2
    atk_eps: float = ATK_EPS  # probability of a uniform attack over all 3 nodes
    max_steps_in_episode: int = EPISODE_STEPS  # truncation


class EraPartial(environment.Environment[EraPartialState, EraPartialParams]):
    """ERA-partial (paper Table A.9: 2 resources, 3 nodes, 1 hop; App. E: partially
    observed, 3 hidden states, one observation, needs a stochastic policy). The original
    code for it was not published; this is our design from that description.

    - Graph: the path 0 - 1 - 2. Action: int array (2,), the node of each resource.
      Valid iff the two resources end within ``req_dist`` = 1 hop of each other (rule (b)
      with the pair (0, 1)): every joint action except (0, 2) and (2, 0). Rule (a) is moot
      (3 hops exceed the diameter, and positions are not part of the state).
    - Hidden state ``target`` in {0, 1, 2}: the node attacked at this step (3 hidden
      states). The attacker is a Stackelberg follower that watched the defender's previous
      allocation: after an allocation covering the node set C, the next target is uniform
      over the uncovered nodes {0, 1, 2} minus C with probability 1 - ``atk_eps``, uniform
      over all 3 nodes with probability ``atk_eps`` = 0.05. An invalid action deploys
      nothing (C is empty). The first target of an episode is uniform.
    - Reward: ``def_rew`` = +1 if the action is valid and covers the target, else
      ``def_plt`` = -1. No move cost (positions are not tracked). 100-step episodes.
    - Observation: always the same vector, the ERA per-node table (module docstring) with
      nothing defended (slots all padding), nothing attacked, and the adjacency: shape (21,).

    Why a stochastic policy is needed: a policy sees one observation, so it is one law pi
    over the 9 joint actions, drawn i.i.d. each step; the target after step 1 is then
    i.i.d. with law m_pi(z) = sum_a pi(a) q(z | a), independent of the current action.
    A deterministic policy (one fixed action) is always attacked where it leaves a gap:
    the best one, (0, 1) or (1, 2), earns -1 + 4 eps / 3 (= -0.933) per step after the
    first, while pi = 1/2 (0, 1) + 1/2 (1, 2) earns +eps / 3 (= +0.017); the best law we
    found numerically (about 0.47 (0, 1) + 0.28 (1, 2) + 0.25 (2, 2)) earns about +0.071.
    Over a 100-step episode: best deterministic -92.07, the 1/2-1/2 mixture +1.98, that
    law about +7.24. With the target visible, covering it would be a deterministic optimum:
    the aliasing is what forces randomising. ``tests/test_era.py`` checks the gap by
    enumerating the deterministic policies.
    """

    num_tgt = PARTIAL_NUM_TGT
    num_rsc = PARTIAL_NUM_RSC
    num_costs = 1  # info["cost"]: 1 for an invalid action
    def_constraints = np.array([[0, 1]], dtype=np.int32)
    constrained = True

    def __init__(self, default_params: EraPartialParams):
        super().__init__()
        self._default_params = default_params

    @property
    def default_params(self) -> EraPartialParams:
        return self._default_params

    @property
    def name(self) -> str:
        return "ERA-partial"

    @property
    def num_actions(self) -> int:
        return self.num_tgt**self.num_rsc

    def action_space(self, params: EraPartialParams | None = None) -> MultiDiscrete:
        return MultiDiscrete([self.num_tgt] * self.num_rsc)

    def observation_space(self, params: EraPartialParams | None = None) -> spaces.Box:
        n = self.num_tgt * (self.num_rsc + 2 + self.num_tgt)
        return spaces.Box(0.0, float(self.num_rsc), (n,), jnp.float32)

    def state_space(self, params: EraPartialParams | None = None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {"target": spaces.Discrete(self.num_tgt), "time": spaces.Discrete(params.max_steps_in_episode)}
        )

    def is_terminated(self, state: EraPartialState, params: EraPartialParams) -> jax.Array:
        return jnp.array(False)

    def get_obs(self, state, params: EraPartialParams | None = None, key=None) -> jax.Array:
        """The one observation: no resource shown (slots = padding), no attack, adjacency."""
        params = self.default_params if params is None else params
        nowhere = jnp.full((self.num_rsc,), self.num_tgt, dtype=jnp.int32)
        return _obs_table(nowhere, jnp.int32(self.num_tgt), params.adj, self.num_tgt).reshape(-1)

    def obs_table(self, obs: jax.Array) -> jax.Array:
        return obs.reshape(*obs.shape[:-1], self.num_tgt, self.num_rsc + 2 + self.num_tgt)

    def is_valid(self, state, action: jax.Array, params: EraPartialParams) -> jax.Array:
        """() bool: in range and the two resources within 1 hop (state-independent)."""
        a = jnp.asarray(action).astype(jnp.int32)
        in_range = jnp.all((a >= 0) & (a < self.num_tgt))
        a = jnp.clip(a, 0, self.num_tgt - 1)
        return in_range & params.dist_ok[a[0], a[1]]

    def valid_mask(self, state, actions: jax.Array, params: EraPartialParams) -> jax.Array:
        return jax.vmap(self.is_valid, in_axes=(None, 0, None))(state, actions, params)

    def all_actions(self) -> jax.Array:
        grids = np.indices((self.num_tgt,) * self.num_rsc).reshape(self.num_rsc, -1).T
        return jnp.asarray(grids, dtype=jnp.int32)

    def next_target_probs(self, action: jax.Array, valid: jax.Array, params: EraPartialParams) -> jax.Array:
        """(3,) law of the next target after ``action`` (nothing covered if not ``valid``)."""
        covered = valid & (jnp.arange(self.num_tgt)[:, None] == action[None, :]).any(axis=1)
        gap = ~covered  # never empty: 2 resources, 3 nodes
        return params.atk_eps / self.num_tgt + (1.0 - params.atk_eps) * gap / gap.sum()

    def step_env(self, key, state: EraPartialState, action, params: EraPartialParams):
        """``info``: ``valid``, ``violation`` and ``cost`` (float32), ``protected``, ``attacked``."""
        a = jnp.asarray(action).astype(jnp.int32).reshape(self.num_rsc)
        valid = self.is_valid(state, a, params)
        a = jnp.clip(a, 0, self.num_tgt - 1)
        z = state.target
        protected = valid & jnp.any(a == z)
        reward = jnp.where(protected, params.payoff[z, 0], params.payoff[z, 1])
        nxt = jax.random.categorical(key, jnp.log(self.next_target_probs(a, valid, params)))
        new_state = state.replace(target=nxt.astype(jnp.int32), time=state.time + 1)
        info = {
            "valid": valid,
            "violation": jnp.where(valid, 0.0, 1.0).astype(jnp.float32),
            "cost": jnp.where(valid, 0.0, 1.0).astype(jnp.float32),  # invalid action: cost 1 (engine's cost channel)
            "protected": protected,
            "attacked": z,
        }
        return self.get_obs(new_state, params), new_state, reward.astype(jnp.float32), jnp.array(False), info

    def reset_env(self, key, params: EraPartialParams):
        target = jax.random.randint(key, (), 0, self.num_tgt, dtype=jnp.int32)
        state = EraPartialState(target=target, time=jnp.int32(0))
        return self.get_obs(state, params), state


def make_era_partial(
    *,
    atk_eps: float = ATK_EPS,
    def_rew: float = 1.0,
    def_plt: float = -1.0,
    max_steps_in_episode: int = EPISODE_STEPS,
) -> tuple[EraPartial, EraPartialParams]:
    """``(env, params)`` for ``ERA-partial`` (design in :class:`EraPartial`)."""
    if not 0.0 <= atk_eps < 1.0:
        raise ValueError(f"atk_eps must lie in [0, 1) (at 1 the attacker ignores the defender), got {atk_eps}")
    if not def_rew > def_plt:
        raise ValueError(f"def_rew must exceed def_plt, got {def_rew} <= {def_plt}")
    adj = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    hops = hop_distances(adj)
    params = EraPartialParams(
        payoff=jnp.asarray(np.tile([def_rew, def_plt], (PARTIAL_NUM_TGT, 1)), jnp.float32),
        dist_ok=jnp.asarray(hops <= PARTIAL_REQ_DIST),
        adj=jnp.asarray(adj, jnp.float32),
        atk_eps=float(atk_eps),
        max_steps_in_episode=int(max_steps_in_episode),
    )
    return EraPartial(params), params
