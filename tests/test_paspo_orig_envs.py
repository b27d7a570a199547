"""The paper's PASPO ids follow the original code's rules (niklasdbs/paspo), checked against
independent references: the shipped test triples of the original's reward MLP, a numpy replay
of the original's server queues (lists of parts, popped as in ``Server.process_new_current_time``),
Poisson statistics of the arrivals, and the HMM's closed-form expected returns."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs_jax
from envs_jax.paspo_compute_orig import ComputeOrigState
from envs_jax.paspo_portfolio import load_hmm
from envs_jax.paspo_portfolio_orig import generate_eval_trajectories, load_eval_trajectories
from envs_jax.paspo_synth_orig import SynthOrigState, load_reward_mlp


# Each env is built once with one jitted ``step_env`` (compile time dominates these tests).
def _built(env_id):
    env, params = envs_jax.make(env_id)
    return env, params, jax.jit(env.step_env)


@pytest.fixture(scope="module")
def synth():
    return _built("PASPO-synth-7")


@pytest.fixture(scope="module")
def compute():
    return _built("PASPO-compute-9")


@pytest.fixture(scope="module")
def portfolio():
    return _built("PASPO-portfolio-13")


# ------------------------------------------------------------------------------- synth
def test_synth_rewards_match_the_originals_step(synth):
    env, params, _ = synth
    d = load_reward_mlp()
    assert d["W1"].shape == (32, 8) and float(d["scale"]) == 30.0

    def reward(s, a):
        state = SynthOrigState(s=jnp.asarray(s, jnp.int32), time=s)
        return env.step_env(jax.random.PRNGKey(0), state, a, params)[2]

    got = jax.jit(jax.vmap(reward))(jnp.asarray(d["test_states"]), jnp.asarray(d["test_actions"]))
    np.testing.assert_allclose(np.asarray(got), d["test_rewards"], atol=2e-5, rtol=0)
    assert set(np.unique(d["test_states"])) == {0, 1}


def test_synth_episode_is_state_0_then_1(synth):
    env, params, step = synth
    obs, state = env.reset(jax.random.PRNGKey(3), params)
    np.testing.assert_array_equal(obs, [1, 0, 0])
    a = jnp.full(7, 1 / 7)
    obs, state, r0, term, _ = step(jax.random.PRNGKey(4), state, a, params)
    np.testing.assert_array_equal(obs, [0, 1, 0])
    assert not bool(term)
    obs, state, r1, term, _ = step(jax.random.PRNGKey(5), state, a, params)
    np.testing.assert_array_equal(obs, [0, 0, 1])
    assert bool(term)
    d = load_reward_mlp()  # the uniform allocation is the first triple of each state
    for s, r in ((0, r0), (1, r1)):
        i = np.flatnonzero((d["test_states"] == s) & np.all(np.isclose(d["test_actions"], 1 / 7), axis=1))[0]
        assert abs(float(r) - d["test_rewards"][i]) < 2e-5


# ------------------------------------------------------------------------------- compute
def test_compute_episode_length_is_poisson_arrivals_in_one_interval(compute):
    env, params, _ = compute
    states = jax.jit(jax.vmap(lambda k: env.reset(k, params)[1]))(jax.random.split(jax.random.PRNGKey(0), 4000))
    n = np.asarray(states.num_tasks)
    lam = float(np.sum(params.rate))  # 9 users x 10 per interval = 90
    assert lam == 90.0
    # N ~ Poisson(90): mean and variance (SE of the mean 0.15, of the variance ~2.1)
    assert abs(n.mean() - lam) < 4 * np.sqrt(lam / n.size)
    assert abs(n.var() - lam) < 4 * lam * np.sqrt(2 / n.size) + 1
    # P(N <= 80) of Poisson(90), summed exactly
    from scipy.stats import poisson

    assert abs((n <= 80).mean() - poisson.cdf(80, lam)) < 4 * np.sqrt(0.15 * 0.85 / n.size)
    # arrivals sorted inside the 0.01 s window; each user's count ~ Poisson(10)
    arr, users = np.asarray(states.arrival), np.asarray(states.user)
    valid = np.arange(arr.shape[1])[None] < n[:, None]
    assert np.all(arr[valid] >= 0) and np.all(arr[valid] < 0.01)
    assert np.all(np.diff(np.where(valid, arr, 1.0), axis=1)[valid[:, 1:]] >= 0)
    per_user = np.stack([((users == u) & valid).sum(1) for u in range(9)], 1)
    assert abs(per_user.mean() - 10) < 0.1 and abs(per_user.var() - 10) < 0.6


def _original_episode(arrival, user, bits, cycles, freq, actions):
    """The original's rules in numpy, float64: server queues as lists of (completion) times,
    parts popped when completed before the current time; rewards and server observations."""
    queues = [[] for _ in freq]
    rewards, obs = [], []
    for t, u, a in zip(arrival, user, actions):
        for q in queues:  # process_new_current_time
            while q and q[0] < t:
                q.pop(0)
        a = np.round(a.astype(np.float64), 6)
        done = []
        for k, q in enumerate(queues):
            part_bits, part_cycles = int(bits[u] * a[k]), int(cycles[u] * a[k])
            tx = part_bits / 1e9
            if not q:
                begin = t + tx
            else:
                delta = q[-1] - t
                begin = q[-1] if tx < delta else t + tx
            q.append(begin + part_cycles / freq[k])
            done.append(q[-1])
        deadline = 3.0 * (bits[u] / 1e9 + cycles[u] / freq.sum())
        rewards.append(1.0 if t + deadline > max(done) else 0.0)
        obs.append([1000 * q[-1] if q else 0.0 for q in queues])
    return np.array(rewards), np.array(obs)


def test_compute_matches_a_replay_of_the_original_queues(compute):
    env, params, step = compute
    _, state = env.reset(jax.random.PRNGKey(11), params)
    n = int(state.num_tasks)
    rng = np.random.default_rng(0)
    # a mix of concentrated, sparse (zero shares) and spread allocations
    actions = rng.dirichlet(np.full(9, 0.3), size=n).astype(np.float32)
    actions[::7] = np.eye(9, dtype=np.float32)[rng.integers(0, 9, size=len(actions[::7]))]

    r, obs, term, s = [], [], [], state
    for a in actions:
        o, s, rew, t, _ = step(jax.random.PRNGKey(0), s, jnp.asarray(a), params)
        r.append(float(rew)), obs.append(np.asarray(o)), term.append(bool(t))
    want_r, want_obs = _original_episode(
        np.asarray(state.arrival[:n], np.float64), np.asarray(state.user[:n]), np.asarray(state.bits, np.float64),
        np.asarray(state.cycles, np.float64), np.asarray(params.freq, np.float64), actions)
    assert 0 < want_r.sum() < n  # the check sees both outcomes
    np.testing.assert_array_equal(np.asarray(r), want_r)
    np.testing.assert_allclose(np.asarray(obs)[:, :9], want_obs, rtol=1e-5, atol=1e-6)
    assert np.flatnonzero(np.asarray(term)).tolist() == [n - 1]  # ends with its last task


def test_compute_part_transmission_and_max_over_servers(compute):
    env, params, step = compute
    f = np.asarray(params.freq, np.float64)
    bits, cycles = np.full(9, 400_000.0, np.float32), np.full(9, 1_500_000.0, np.float32)
    now = 0.004
    state = ComputeOrigState(
        arrival=jnp.zeros(env.max_tasks).at[0].set(now), user=jnp.zeros(env.max_tasks, jnp.int32),
        bits=jnp.asarray(bits), cycles=jnp.asarray(cycles), num_tasks=jnp.asarray(2, jnp.int32),
        last=jnp.zeros(9), time=0)
    a = np.array([0.5, 0, 0, 0, 0.25, 0, 0, 0, 0.25], np.float32)
    _, s1, r, _, info = step(jax.random.PRNGKey(0), state, jnp.asarray(a), params)
    # part j carries a_j * B bits: transmitted in a_j B / 1e9 s (not the whole task's B / 1e9)
    want = now + np.floor(a * 400_000) / 1e9 + np.floor(a * 1_500_000) / f
    want[a == 0] = now
    np.testing.assert_allclose(np.asarray(s1.last), want, rtol=1e-6)
    D = 3 * (400_000 / 1e9 + 1_500_000 / f.sum())
    assert float(r) == float(now + D > want.max()) == 1.0
    # a server given a share of 0 still delays the task until its queue is done
    busy = state.replace(last=jnp.zeros(9).at[3].set(now + 2 * D))
    _, s2, r2, _, info2 = step(jax.random.PRNGKey(0), busy, jnp.asarray(a), params)
    assert float(info2["completion_time"]) == pytest.approx(now + 2 * D, rel=1e-6)
    assert float(r2) == 0.0


# ------------------------------------------------------------------------------- portfolio
def _hmm_means_by_month(months: int):
    """E[r_t] (months, 12) of the HMM: regime law startprob T^t, then the regime means."""
    hmm = load_hmm()
    p = hmm["startprob"] / hmm["startprob"].sum()
    out = []
    for _ in range(months):
        out.append(p @ hmm["means"])
        p = p @ hmm["transmat"]
    return np.array(out)


def _run_fixed(env, params, a, keys):
    a = jnp.asarray(a, jnp.float32)

    def episode(key):
        obs, s = env.reset(key, params)

        def body(c, k):
            s, done = c
            obs, s, r, term, _ = env.step_env(k, s, a, params)
            return (s, done | term), (r, term, done)

        (s, _), (r, term, done) = jax.lax.scan(body, (s, False), jax.random.split(key, 15))
        return r, term, done, s, obs

    return jax.jit(jax.vmap(episode))(keys)


def test_portfolio_13_steps_fee_free_return_first_reward_from_z1(portfolio):
    env, params, _ = portfolio
    a = np.zeros(13, np.float32)
    a[[0, 1, 5, 9]] = [0.2, 0.5, 0.2, 0.1]  # cash, MSFT, NVDA, AMZN
    K = 6000
    r, term, done, s, obs0 = _run_fixed(env, params, a, jax.random.split(jax.random.PRNGKey(2), K))
    r, term = np.asarray(r, np.float64), np.asarray(term)
    assert np.all(term[:, 12]) and not np.any(term[:, :12])  # the 13th step ends the episode
    mu = _hmm_means_by_month(14)  # month 0 = the reset month (shown, never rewarded)
    want = mu[1:14] @ a[1:]  # expected reward of steps 1..13: regimes z_1..z_13
    got = r[:, :13].mean(0)
    se = r[:, :13].std(0) / np.sqrt(K)
    assert np.all(np.abs(got - want) < 4.5 * se), (got, want, se)
    # the reset month's regime is z_0 = 1 (startprob): rewarding it would give a . means[1]
    wrong = mu[0] @ a[1:]
    assert abs(got[0] - wrong) > 8 * se[0]
    total = r[:, :13].sum(1)
    assert abs(total.mean() - want.sum()) < 4.5 * total.std() / np.sqrt(K)


def test_portfolio_reward_wealth_weights_are_the_originals_step(portfolio):
    env, params, step = portfolio
    obs, s = env.reset(jax.random.PRNGKey(7), params)
    obs = np.asarray(obs)
    assert obs.shape == (27,) and obs[0] == 100.0 and obs[1] == 1.0 and obs[14] == 0.0
    rng = np.random.default_rng(1)
    wealth, w = 100.0, np.eye(13)[0]
    for t in range(13):
        a = rng.dirichlet(np.ones(13)).astype(np.float32)
        obs, s, r, term, _ = step(jax.random.PRNGKey(100 + t), s, jnp.asarray(a), params)
        R = np.asarray(obs[14:], np.float64)  # the month's returns, cash first
        assert R[0] == 0.0
        assert float(r) == pytest.approx(a @ R, abs=1e-6)  # no fee although the weights change
        wealth *= 1 + a @ R
        w = a * (1 + R) / np.sum(a * (1 + R))
        np.testing.assert_allclose(np.asarray(obs[1:14]), w, atol=1e-6)
        assert float(obs[0]) == pytest.approx(wealth, rel=1e-5)
        assert bool(term) == (t == 12)


def test_portfolio_fixed_evaluation_trajectories(portfolio):
    env, params, step = portfolio
    R, Z = load_eval_trajectories()
    assert R.shape == (200, 14, 12) and Z.shape == (200, 14)
    R2, Z2 = generate_eval_trajectories(num=20)  # the shipped file is this seeded draw (its first 20)
    np.testing.assert_array_equal(R[:20], R2)
    np.testing.assert_array_equal(Z[:20], Z2)
    # replay: trajectory i's month 0 is shown at reset, months 1..13 are the 13 rewards
    a = np.full(13, 1 / 13, np.float32)
    reset_to = jax.jit(env.reset_to)
    for i, k in ((5, 5), (205, 5), (199, 199)):  # index wraps around mod 200
        obs, s = reset_to(jax.random.PRNGKey(i), params, i)
        np.testing.assert_allclose(np.asarray(obs)[14:], np.r_[0.0, R[k, 0]], rtol=1e-6)
        rewards = []
        for t in range(13):
            obs, s, r, term, _ = step(jax.random.PRNGKey(t), s, jnp.asarray(a), params)
            rewards.append(float(r))
        np.testing.assert_allclose(rewards, R[k, 1:14] @ a[1:], atol=1e-6)
        assert bool(term)
