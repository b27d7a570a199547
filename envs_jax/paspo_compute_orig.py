"""``PASPO-compute-9``: the original's compute-offloading env (niklasdbs/paspo
``iot-computation-gym/.../iot_computation_env.py``, parameter set ``parameter_set_9_9_id_0``).

Data: ``data/paspo_compute_9_servers.json`` (9 servers with fixed CPU frequencies ``f_k``;
9 users, each with task size ``B_u`` bits, work ``C_u`` cycles and a Poisson rate of
``lambda_u = 10`` tasks per ``0.01`` s interval). Constraints: the reference polytope ``compute9``.

Episode (the original's rules):

- at reset every user ``u`` draws its task's bits and cycles once (integers uniform in its
  ``[lower, upper]`` limits; equal in the reference data) and its arrivals in one interval:
  exponential gaps of mean ``1 / lambda_u`` (in units of the interval) until their sum
  reaches 1, arrival times ``= cumulative sum * 0.01 s``. All users' arrivals, sorted by time,
  are the episode's tasks: ``N ~ Poisson(sum_u lambda_u) = Poisson(90)`` tasks, one step each;
  the step that allocates the last task ends the episode (``terminated``). Buffers hold at most
  ``max_steps_in_episode`` tasks (default ``ceil(90 + 8 sqrt(90)) = 166``; ``P(N > 166) ~ 1e-13``:
  later arrivals would be dropped) and ``max_arrivals_per_user`` gaps per user;
- task ``u`` has the deadline ``D_u = 3 (B_u / 1e9 + C_u / sum_k f_k)`` (seconds after its
  arrival);
- server ``k`` keeps ``L_k``, the completion time of the last work it was given (0 at reset).
  The action ``a`` (9 shares) is rounded to 6 digits; part ``k`` of the task arriving at time
  ``t`` has ``b_k = floor(a_k B)`` bits and ``c_k = floor(a_k C)`` cycles, is transmitted in
  ``b_k / 1e9`` s, starts at ``max(t + b_k / 1e9, L_k)`` and completes at
  ``T_k = max(t + b_k / 1e9, L_k) + c_k / f_k``; then ``L_k <- T_k`` for *every* server (a
  server given a share of 0 gets an empty part: ``T_k = max(t, L_k)``, so it still delays the
  task until its queue is done);
- reward 1 if ``t + D_u > max_k T_k`` (all nine servers), else 0.

Observation (float32, 18; the original's dict flattened in ``gym.spaces.Dict``'s sorted key
order): ``1000 L`` (9; absolute completion times in milliseconds, 0 at reset), then for the
next 3 tasks (the first is the one the action allocates; zeros past the last task) their bits
(3), cycles (3) and deadlines ``D`` in seconds (3). The values are raw (bits ~ 1e5, cycles
~ 1e6, deadlines ~ 1e-3): the original trains with RLlib's running mean/std observation
filter, which ``PPOConfig(normalize_obs=True)`` provides (the ``paper`` preset of
``--algo paspo`` sets it for this env).
The engine's filter matches the original better than per-env statistics kept in the env
state would: RLlib keeps one ``MeanStdFilter`` per rollout worker, shared by the worker's 8
envs and copied to the evaluation worker; the engine's running mean/std is likewise one set of
statistics over all envs of the batch, used frozen in evaluation.

Differences from the original that do not change the task: times are float32 (the original:
float64; round-off ~1e-9 s against deadlines ~1e-3 s); the original seeds every env copy
with the same ``seed=1`` (RLlib builds its 8 envs from one config), so its 8 parallel envs see
the same task streams; here every env draws its own. ``info`` adds ``completion_time``
(``max_k T_k``), ``deadline`` (``t + D_u``), ``arrival`` (``t``) and ``num_tasks`` (``N``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from envs_jax.allocation import AllocationEnv, load_polytope
from envs_jax.paspo_compute import load_compute_config

NUM_SERVERS = 9
NUM_USERS = 9
NUM_SHOWN = 3  # tasks shown in the observation (original: number_tasks_to_show_queue = 3)


@struct.dataclass
class ComputeOrigState:
    arrival: jax.Array  # (max_tasks,) arrival times (s) of the episode's tasks, sorted; 0 past N
    user: jax.Array  # (max_tasks,) int32 user of each task
    bits: jax.Array  # (9,) float32 task bits of each user (drawn at reset)
    cycles: jax.Array  # (9,) float32 task cycles of each user
    num_tasks: jax.Array  # int32: N, tasks in this episode
    last: jax.Array  # (9,) completion time (s) of the last part given to each server
    time: int = 0  # index of the next task


@struct.dataclass
class ComputeOrigParams:
    A: jax.Array  # (5, 9) constraint rows (compute9), A a <= b
    b: jax.Array  # (5,)
    freq: jax.Array  # (9,) server CPU frequencies f_k (Hz)
    bits_low: jax.Array  # (9,) per-user task bits limits (inclusive)
    bits_high: jax.Array  # (9,)
    cycles_low: jax.Array  # (9,) per-user task cycles limits (inclusive)
    cycles_high: jax.Array  # (9,)
    rate: jax.Array  # (9,) Poisson rate per user: tasks per interval
    interval: float = 0.01  # seconds per interval (original: 0.01 s)
    bandwidth: float = 1e9  # bit/s of every server's link (original)
    deadline_factor: float = 3.0  # D = 3 (B / 1e9 + C / sum f) (original)
    action_digits: int = 6  # the original rounds the shares to 6 digits
    violation_penalty: float = 0.0  # reward -= penalty * info["violation"]; 0 = only measure
    max_steps_in_episode: int = 166  # task buffer (module docstring)


def default_max_tasks(total_rate: float) -> int:
    """``ceil(R + 8 sqrt(R))`` for ``R`` expected tasks per episode (166 for R = 90)."""
    return int(math.ceil(total_rate + 8.0 * math.sqrt(total_rate)))


class PaspoComputeOrig(AllocationEnv):
    """The original's compute-offloading env (module docstring)."""

    def __init__(
        self,
        *,
        normalize_rows: bool = True,
        max_steps_in_episode: int | None = None,
        max_arrivals_per_user: int | None = None,
        violation_penalty: float = 0.0,
    ):
        """``PASPO-compute-9``. ``max_steps_in_episode``: the task buffer (default
        :func:`default_max_tasks`); ``max_arrivals_per_user``: gaps drawn per user (default
        ``ceil(lambda + 10 sqrt(lambda) + 10)`` for the largest rate, 42 for lambda = 10)."""
        super().__init__()
        self.num_entities = NUM_SERVERS
        cfg = load_compute_config()
        A, b = load_polytope("compute9", normalize=normalize_rows)
        self.exact_constraints = (np.asarray(A, np.float64), np.asarray(b, np.float64))
        rate = cfg["rate"]
        if max_steps_in_episode is None:
            max_steps_in_episode = default_max_tasks(float(rate.sum()))
        if max_arrivals_per_user is None:
            lam = float(rate.max())
            max_arrivals_per_user = int(math.ceil(lam + 10.0 * math.sqrt(lam) + 10.0))
        if not (isinstance(max_steps_in_episode, int) and max_steps_in_episode >= NUM_SHOWN):
            raise ValueError(f"max_steps_in_episode must be an integer >= {NUM_SHOWN}, got {max_steps_in_episode!r}")
        if not (isinstance(max_arrivals_per_user, int) and max_arrivals_per_user >= 1):
            raise ValueError(f"max_arrivals_per_user must be a positive integer, got {max_arrivals_per_user!r}")
        self.max_arrivals_per_user = max_arrivals_per_user
        self.max_tasks = int(max_steps_in_episode)  # static buffer size (shapes)
        f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        self._params = ComputeOrigParams(
            A=f32(A), b=f32(b), freq=f32(cfg["freq"]),
            bits_low=f32(cfg["bits_low"]), bits_high=f32(cfg["bits_high"]),
            cycles_low=f32(cfg["cycles_low"]), cycles_high=f32(cfg["cycles_high"]),
            rate=f32(rate), interval=cfg["interval"],
            violation_penalty=float(violation_penalty),
            max_steps_in_episode=int(max_steps_in_episode),
        )

    @property
    def name(self) -> str:
        return "PASPO-compute-9"

    @property
    def default_params(self) -> ComputeOrigParams:
        return self._params

    # -- pieces ------------------------------------------------------------------------
    def deadlines(self, state, params) -> jax.Array:
        """``D_u = deadline_factor (B_u / bandwidth + C_u / sum_k f_k)`` per user (s), (9,)."""
        return params.deadline_factor * (state.bits / params.bandwidth + state.cycles / jnp.sum(params.freq))

    def part_completion(self, now, last, bits, cycles, a, params):
        """``T_k = max(now + floor(a_k B) / bandwidth, L_k) + floor(a_k C) / f_k`` (s), (9,),
        with ``a`` rounded to ``action_digits`` digits first."""
        scale = 10.0 ** params.action_digits
        w = jnp.round(a * scale) / scale
        part_bits = jnp.floor(bits * w)
        part_cycles = jnp.floor(cycles * w)
        begin = jnp.maximum(now + part_bits / params.bandwidth, last)
        return begin + part_cycles / params.freq

    def _draw_episode(self, key, params):
        k_bits, k_cycles, k_gaps = jax.random.split(key, 3)
        bits = jnp.floor(jax.random.uniform(k_bits, (NUM_USERS,), minval=params.bits_low, maxval=params.bits_high + 1.0))
        cycles = jnp.floor(jax.random.uniform(k_cycles, (NUM_USERS,), minval=params.cycles_low,
                                              maxval=params.cycles_high + 1.0))
        bits = jnp.minimum(bits, params.bits_high)  # float32 rounding at the top edge
        cycles = jnp.minimum(cycles, params.cycles_high)
        K, cap = self.max_arrivals_per_user, self.max_tasks
        gaps = jax.random.exponential(k_gaps, (NUM_USERS, K)) / params.rate[:, None]
        cum = jnp.cumsum(gaps, axis=1)  # in units of the interval
        valid = (cum < 1.0).ravel()
        times = jnp.where(valid, (cum * params.interval).ravel(), jnp.inf)
        users = jnp.repeat(jnp.arange(NUM_USERS, dtype=jnp.int32), K)
        order = jnp.argsort(times)[:cap]
        n = jnp.minimum(valid.sum(), cap).astype(jnp.int32)
        arrival = jnp.where(jnp.arange(cap) < n, times[order], 0.0)
        return arrival, users[order], bits, cycles, n

    # -- gymnax ------------------------------------------------------------------------
    def _transition(self, key, state, a, params):
        del key
        cap = self.max_tasks
        i = jnp.minimum(state.time, cap - 1)
        now, u = state.arrival[i], state.user[i]
        T = self.part_completion(now, state.last, state.bits[u], state.cycles[u], a, params)
        completion = jnp.max(T)
        due = now + self.deadlines(state, params)[u]
        reward = (due > completion).astype(jnp.float32)
        new_state = state.replace(last=T, time=state.time + 1)
        info = {"completion_time": completion, "deadline": due, "arrival": now, "num_tasks": state.num_tasks}
        return self.get_obs(new_state, params), new_state, reward, self.is_terminated(new_state, params), info

    def reset_env(self, key, params):
        arrival, user, bits, cycles, n = self._draw_episode(key, params)
        state = ComputeOrigState(arrival=arrival, user=user, bits=bits, cycles=cycles, num_tasks=n,
                                 last=jnp.zeros((NUM_SERVERS,), jnp.float32), time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        """``[1000 L (9), bits (3), cycles (3), deadlines (3)]`` of the next 3 tasks, (18,)."""
        params = self.default_params if params is None else params
        cap = self.max_tasks
        idx = state.time + jnp.arange(NUM_SHOWN)
        shown = idx < state.num_tasks
        u = state.user[jnp.minimum(idx, cap - 1)]
        pick = lambda x: jnp.where(shown, x[u], 0.0)  # noqa: E731
        return jnp.concatenate([
            1000.0 * state.last, pick(state.bits), pick(state.cycles), pick(self.deadlines(state, params)),
        ]).astype(jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.asarray(state.time >= state.num_tasks)

    def observation_space(self, params=None) -> spaces.Box:
        n = NUM_SERVERS + 3 * NUM_SHOWN
        return spaces.Box(jnp.zeros(n), jnp.full(n, jnp.inf), (n,), jnp.float32)

    def state_space(self, params=None) -> spaces.Dict:
        cap = self.max_tasks
        inf = lambda shape: spaces.Box(0.0, jnp.inf, shape, jnp.float32)  # noqa: E731
        return spaces.Dict({
            "arrival": inf((cap,)), "user": spaces.Box(0, NUM_USERS - 1, (cap,), jnp.int32),
            "bits": inf((NUM_USERS,)), "cycles": inf((NUM_USERS,)),
            "num_tasks": spaces.Discrete(cap + 1), "last": inf((NUM_SERVERS,)), "time": spaces.Discrete(cap + 1),
        })


def make_compute_orig(**kwargs) -> tuple[PaspoComputeOrig, ComputeOrigParams]:
    """``(env, env.default_params)`` for ``PASPO-compute-9``; keywords: :class:`PaspoComputeOrig`."""
    env = PaspoComputeOrig(**kwargs)
    return env, env.default_params


__all__ = ["ComputeOrigParams", "ComputeOrigState", "PaspoComputeOrig", "default_max_tasks", "make_compute_orig"]
