"""Every registered env works with gymnax 1.0.1's own wrappers and keeps the contracts it claims.

A client written for gymnax (PureJaxRL: ``FlattenObservationWrapper``, ``LogWrapper`` and the
five-value ``LegacyStepAPIWrapper``, all under ``jit`` and ``vmap``; or a Gymnasium user through
``GymnaxToGymWrapper``) must work on every id of ``envs_jax.registry``; ``make(env.name)``
rebuilds the env; what the env offers algorithms is exactly what the table below (written from
the papers' needs, not read from the code) says, and each claim holds on visited states.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces
from gymnax.environments.spaces import gymnax_space_to_gym_space as to_gym
from gymnax.wrappers import FlattenObservationWrapper, GymnaxToGymWrapper, LegacyStepAPIWrapper, LogWrapper

from envs_jax import contracts as C
from envs_jax import make, registered_ids
from envs_jax.spaces import MultiDiscrete

IDS = registered_ids()
PROTOCOLS = (
    C.LinearConstraints, C.ValidityOracle, C.ValidMask, C.Costs, C.FixedStarts, C.CandidateDomain,
    C.Tabular, C.TabularLayout, C.TrialSchedule, C.FixedHorizon, C.KnownMemories,
)
NUM_ENVS, NUM_STEPS = 2, 3  # few: compile time dominates
# Compile time dominates, so CI steps one env per family (together they claim every protocol
# but MU's, which the first test checks without stepping); -m slow steps every id. Keys are
# typed (``jax.random.key``, as GymnaxToGymWrapper uses) with the ``unsafe_rbg`` implementation,
# whose programs compile faster than threefry's; the envs take either.
CI_STEP_IDS = {"Probe-cost", "PASPO-synth-7", "ERA-partial", "DRA-huys"}  # every protocol but MU's
CI_GYM_IDS = {"DRA-maze", "Safe-bandit-box"}


def _ids(ci: set) -> list:
    return [i if i in ci else pytest.param(i, marks=pytest.mark.slow) for i in IDS]


def _key(seed: int) -> jax.Array:
    return jax.random.key(seed, impl="unsafe_rbg")


def claims(env_id: str) -> set:
    """What each env offers (independent table)."""
    if env_id == "PASPO-portfolio-13":  # the original's: 200 fixed evaluation trajectories
        return {C.LinearConstraints, C.ValidityOracle, C.Costs, C.FixedStarts}
    if env_id.startswith("PASPO-"):  # also the -v0 ids and synth-20/50/100
        return {C.LinearConstraints, C.ValidityOracle, C.Costs}
    if env_id == "ERA-partial":
        return {C.ValidityOracle, C.ValidMask, C.Costs}
    if env_id.startswith("ERA-"):
        return {C.ValidityOracle, C.ValidMask, C.Costs, C.FixedStarts}
    if env_id.startswith("Pistonball-"):
        return {C.ValidityOracle, C.ValidMask, C.Costs}
    if env_id.startswith("DRA-"):
        dra = {C.Tabular, C.TabularLayout, C.TrialSchedule, C.FixedHorizon}
        return dra | {C.KnownMemories} if env_id == "DRA-huys" else dra
    if env_id == "MU-curling":  # the hammer shot: one continuous throw (v, angle, turn)
        return {C.CandidateDomain}
    if env_id.startswith("MU-"):
        return {C.CandidateDomain}
    if env_id in ("Probe-cost", "Safe-bandit", "Safe-bandit-box"):
        return {C.Costs, C.FixedStarts}
    if env_id.startswith("Probe-"):
        return {C.FixedStarts}
    if env_id == "Toy-Partial":  # unconstrained POMDP, numbered starts (1a / 1b)
        return {C.FixedStarts}
    raise AssertionError(f"{env_id} is missing from this test's table")


@functools.lru_cache(maxsize=None)
def built(env_id):
    return make(env_id)


def _same_params(p, q) -> bool:
    leaves_p, tree_p = jax.tree_util.tree_flatten(p)
    leaves_q, tree_q = jax.tree_util.tree_flatten(q)
    return tree_p == tree_q and all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(leaves_p, leaves_q))


@pytest.mark.parametrize("env_id", IDS)
def test_name_round_trips_and_contracts_match_the_table(env_id):
    env, params = built(env_id)
    assert env.name == env_id
    env2, params2 = make(env.name)
    assert type(env2) is type(env) and _same_params(params2, params) and _same_params(env.default_params, params)
    offered = {p for p in PROTOCOLS if isinstance(env, p)}
    assert offered == claims(env_id), sorted(p.__name__ for p in offered ^ claims(env_id))
    # gymnax wrappers forward attributes, so a wrapped env keeps its contracts.
    wrapped = LegacyStepAPIWrapper(LogWrapper(FlattenObservationWrapper(env)))
    assert {p for p in PROTOCOLS if isinstance(wrapped, p)} == offered
    if isinstance(env, C.CandidateDomain):  # action_spec describes the action space
        kind, shape = env.action_spec
        act_space = env.action_space(params)
        if kind == "discrete":
            assert isinstance(act_space, MultiDiscrete) and act_space.nvec.tolist() == [shape[1]] * shape[0]
        else:
            assert isinstance(act_space, spaces.Box) and act_space.shape == shape
    # Every space exists and converts to Gymnasium (gymnax has no MultiDiscrete conversion).
    to_gym(env.observation_space(params))
    env.state_space(params)
    if not isinstance(env.action_space(params), MultiDiscrete):
        to_gym(env.action_space(params))


@pytest.mark.parametrize("env_id", _ids(CI_STEP_IDS))
def test_gymnax_wrappers_step_every_env_under_jit_and_vmap(env_id):
    env, params = built(env_id)
    obs_space, act_space, state_space = env.observation_space(params), env.action_space(params), env.state_space(params)
    wrapped = LegacyStepAPIWrapper(LogWrapper(FlattenObservationWrapper(env)))
    flat_dim = int(np.prod(obs_space.shape))
    assert wrapped.observation_space(params).shape == (flat_dim,)
    batch = functools.partial(jax.vmap, in_axes=(0, 0, 0, None))

    def visit(obs, log_state, candidates):
        """Per env: obs and state inside their spaces, and the claims that need a state
        (the oracle on this step's sampled actions, all envs', as candidates)."""
        s = log_state.env_state
        obs = obs.reshape(obs_space.shape)
        out = {"obs_ok": obs_space.contains(obs), "state_ok": state_space.contains(s), "state": s}
        if isinstance(env, C.ValidityOracle):
            out["valid"] = jax.vmap(lambda a: env.is_valid(s, a, params))(candidates)
            if isinstance(env, C.ValidMask):
                out["mask"] = env.valid_mask(s, candidates, params)
        if isinstance(env, C.LinearConstraints):
            out["A"], out["b"] = env.constraints(s, params)
        if isinstance(env, C.Tabular):
            out["row"] = env.tabular_index(obs, params)
        return out

    @jax.jit
    def run(key):
        k_reset, k_start, k_steps = jax.random.split(key, 3)
        obs, state = jax.vmap(wrapped.reset, in_axes=(0, None))(jax.random.split(k_reset, NUM_ENVS), params)

        def step(carry, k):
            obs, state = carry
            keys = jax.random.split(k, 2 * NUM_ENVS)
            action = jax.vmap(act_space.sample)(keys[:NUM_ENVS])
            seen = jax.vmap(visit, in_axes=(0, 0, None))(obs, state, action)
            obs, state, reward, done, info = batch(wrapped.step)(keys[NUM_ENVS:], state, action, params)
            return (obs, state), (seen, reward, done, info)

        carry, (seen, reward, done, info) = jax.lax.scan(step, (obs, state), jax.random.split(k_steps, NUM_STEPS))
        obs, state = carry
        starts = None
        if isinstance(env, C.FixedStarts):
            start_obs, start_state = jax.vmap(env.reset_to, in_axes=(0, None, 0))(
                jax.random.split(k_start, NUM_ENVS), params, jnp.arange(NUM_ENVS))
            starts = jax.vmap(obs_space.contains)(start_obs), jax.vmap(state_space.contains)(start_state)
        last_obs = obs.reshape((NUM_ENVS,) + tuple(obs_space.shape))
        last = jax.vmap(obs_space.contains)(last_obs), jax.vmap(state_space.contains)(state.env_state)
        return obs, last, seen, reward, done, info, starts

    obs, last, seen, reward, done, info, starts = run(_key(0))
    assert obs.shape == (NUM_ENVS, flat_dim)
    gym_obs_space = to_gym(obs_space)
    assert all(gym_obs_space.contains(np.asarray(o).reshape(obs_space.shape)) for o in obs)
    assert reward.shape == done.shape == (NUM_STEPS, NUM_ENVS) and done.dtype == jnp.bool_
    assert np.isfinite(np.asarray(reward)).all()
    assert info["returned_episode_returns"].shape == (NUM_STEPS, NUM_ENVS)  # LogWrapper's
    assert np.asarray(seen["obs_ok"]).all() and np.asarray(seen["state_ok"]).all()
    assert np.asarray(last[0]).all() and np.asarray(last[1]).all()
    if starts is not None:
        assert np.asarray(starts[0]).all() and np.asarray(starts[1]).all()
    state = jax.tree_util.tree_map(lambda x: x[0, 0], seen["state"])
    assert {f.name for f in dataclasses.fields(state)} == set(state_space.spaces)  # every field has a space

    if isinstance(env, C.Costs):  # the declaration equals what step reports
        cost = np.asarray(info[C.COST_KEY])
        assert cost.shape in ((NUM_STEPS, NUM_ENVS), (NUM_STEPS, NUM_ENVS, env.num_costs))
        assert cost.size == NUM_STEPS * NUM_ENVS * env.num_costs and (cost >= 0).all()
    else:
        assert C.COST_KEY not in info
    if isinstance(env, C.ValidityOracle):
        assert seen["valid"].dtype == jnp.bool_ and seen["valid"].shape == (NUM_STEPS, NUM_ENVS, NUM_ENVS)
    if isinstance(env, C.ValidMask):
        np.testing.assert_array_equal(seen["mask"], seen["valid"])
    if isinstance(env, C.LinearConstraints):
        n = env.num_entities
        m = seen["b"].shape[-1]
        assert seen["A"].shape == (NUM_STEPS, NUM_ENVS, m, n) and seen["A"].dtype == jnp.float32
        if env.exact_constraints is not None:  # float64 rows that round to the params' rows
            A64, b64 = env.exact_constraints
            assert A64.dtype == b64.dtype == np.float64
            np.testing.assert_array_equal(A64.astype(np.float32), np.asarray(seen["A"][0, 0]))
            np.testing.assert_array_equal(b64.astype(np.float32), np.asarray(seen["b"][0, 0]))
    if isinstance(env, C.Tabular):
        rows = np.asarray(seen["row"])
        assert ((rows >= 0) & (rows < env.num_tabular_states(params))).all()


@pytest.mark.parametrize("env_id", _ids(CI_GYM_IDS))
def test_gymnasium_wrapper_steps(env_id):
    """``GymnaxToGymWrapper`` resets and steps the env; its action space converts where gymnax
    can convert it (it has no MultiDiscrete: ERA and MU-location keep a gymnax action space)."""
    env, params = built(env_id)
    gym_env = GymnaxToGymWrapper(env, params, seed=0)
    obs, _ = gym_env.reset(seed=1)
    assert gym_env.observation_space.contains(np.asarray(obs))
    act_space = env.action_space(params)
    if isinstance(act_space, MultiDiscrete):
        action = act_space.sample(_key(2))
    else:
        gym_env.action_space.seed(0)
        action = gym_env.action_space.sample()
    obs, reward, terminated, truncated, _ = gym_env.step(action)
    assert gym_env.observation_space.contains(np.asarray(obs)) and np.isfinite(float(reward))


def test_multidiscrete_samples_every_value_including_the_upper_one():
    """MU-location's action space reaches its last cell (gymnax's int Box never samples ``high``)."""
    env, params = built("MU-location")
    space = env.action_space(params)
    draws = np.asarray(jax.vmap(space.sample)(jax.random.split(_key(0), 3000)))
    n = env.size * env.size
    assert draws.shape == (3000, env.n_facilities) and draws.dtype == np.int32
    for f in range(env.n_facilities):  # P(a value unseen) <= 100 (0.99)^3000 < 1e-10
        assert set(draws[:, f].tolist()) == set(range(n))
    assert bool(space.contains(jnp.full(env.n_facilities, n - 1)))
    assert not bool(space.contains(jnp.full(env.n_facilities, n)))


def test_cost_channel_key_is_the_engines():
    from ppo_jax.engine import COST_KEY

    assert C.COST_KEY == COST_KEY


def test_require_names_the_protocol_and_every_missing_member():
    cartpole, _ = make("CartPole-v1")
    assert C.require(built("PASPO-synth-7")[0], C.LinearConstraints) is built("PASPO-synth-7")[0]
    with pytest.raises(C.ContractError) as e:
        C.require(cartpole, C.LinearConstraints, who="PASPO")
    msg = str(e.value)
    for word in ("PASPO", "CartPole-v1", "LinearConstraints", "constraints", "exact_constraints", "num_entities"):
        assert word in msg
    assert isinstance(e.value, ValueError)
    with pytest.raises(TypeError, match="protocol"):
        C.require(cartpole, int)


def test_algorithms_raise_the_contract_error():
    from dra_jax.agent import tabular_task
    from iar_jax.baselines import MaskPolicy
    from mu_jax.trainer import Config, MUTrainer
    from paspo_jax.policy import PASPOPolicy

    cartpole, cp_params = make("CartPole-v1")
    probe, probe_params = built("Probe-constant")
    cases = [
        (lambda: PASPOPolicy(cartpole, cp_params), "LinearConstraints"),
        (lambda: MaskPolicy(probe, probe_params, masking="on"), "ValidityOracle"),
        (lambda: tabular_task(cartpole, cp_params), "Tabular"),
        (lambda: tabular_task(*built("DRA-maze"), known_memories=True), "KnownMemories"),
        (lambda: MUTrainer(Config(), "Probe-constant"), "CandidateDomain"),
    ]
    for build, protocol in cases:
        with pytest.raises(C.ContractError, match=f"contracts.{protocol}"):
            build()
