"""``PASPO-compute-9-v0``: distributing compute tasks across servers (our model after Winkel et al. 2024).

The paper's ``PASPO-compute-9`` is the original's env (``envs_jax.paspo_compute_orig``); this
is the variant the project used before (its results in ``benchmarks/RESULTS_paspo.md`` refer
to it).

Data: ``data/paspo_compute_9_servers.json`` (the reference's 9 servers with fixed CPU
frequencies ``f_j``, 9 users with task size ``B_u`` bits, ``C_u`` cycles and a Poisson rate of
``lambda_u`` tasks per 0.01 s interval). Constraints: the reference polytope ``compute9``.

One step = one task. The observation shows the next task (its user, size) and the servers'
queues; the action ``a`` (9 shares on the simplex) splits that task: server ``j`` receives
``a_j B`` bits and ``a_j C`` cycles. The model (our reading of the reference description,
written from it):

- transmission: the task's parts go out together over the user's uplink of
  ``bandwidth = 1e9`` bit/s, sharing it in proportion to their sizes, so every part arrives
  after ``t_tx = B / bandwidth`` (the ``bits / 1e9`` term of the deadline);
- each server is a FIFO queue: ``q_j >= 0`` is the time until server ``j`` has finished the
  work it already holds. A part starts at ``max(q_j, t_tx)`` and runs ``a_j C / f_j``, so
  it finishes at ``T_j = max(q_j, t_tx) + a_j C / f_j``;
- the task is done when its last non-empty part is done, ``T = max_{j : a_j > 0} T_j``; the
  reward is 1 if ``T <= D = 3 (B / 1e9 + C / sum_j f_j)`` (3 x the time the whole task would
  take on one 1 Gbit/s link and all servers' cycles at once), else 0. Every part with
  ``a_j > 0`` is executed and waited for, however small;
- queues: ``q_j <- T_j`` for servers that got a part; then the clock advances to the next
  arrival of the superposed Poisson processes, ``dt ~ Exp(Lambda)``,
  ``Lambda = sum_u lambda_u / 0.01 s`` (9000 tasks/s), and ``q_j <- max(q_j - dt, 0)``; the
  next task's user is ``u ~ Categorical(lambda_u / sum lambda)``, its bits and cycles uniform
  in the user's ``[lower, upper]`` limits (equal in the reference data, so fixed per user).

With the reference numbers the system is loaded at about 90% of its total cycle rate, and
the constraints keep the fastest servers (0 and 4) below ~37% each, so queues build up
unless the policy balances them.

Episode: ``max_steps_in_episode = 100`` tasks (our choice; the reference gives none), queues
empty at reset; the 100th task ends the episode (``terminated`` and ``truncated`` both True;
the remaining-time fraction is in the observation).

``info`` adds ``completion_time`` (T), ``deadline`` (D) and ``inter_arrival`` (dt), seconds.

Observation (float32, 21): ``q_j / D`` clipped to ``[0, queue_obs_clip]`` (9; 1 means a
server's backlog alone uses up the current task's deadline), one-hot of the task's user (9),
``B / max_u B_u``, ``C / max_u C_u``, and the fraction of the episode left.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from envs_jax.allocation import AllocationEnv, data_path, load_polytope

NUM_SERVERS = 9
NUM_USERS = 9


@struct.dataclass
class ComputeState:
    queue: jax.Array  # (9,) seconds until each server has finished its current work
    user: jax.Array  # int32: user of the task to be allocated now
    bits: jax.Array  # float32: its data size B (bits)
    cycles: jax.Array  # float32: its work C (CPU cycles)
    time: int = 0


@struct.dataclass
class ComputeParams:
    A: jax.Array  # (5, 9) constraint rows (compute9), A a <= b
    b: jax.Array  # (5,)
    freq: jax.Array  # (9,) server CPU frequencies f_j (Hz)
    bits_low: jax.Array  # (9,) per-user task size limits (bits)
    bits_high: jax.Array  # (9,)
    cycles_low: jax.Array  # (9,) per-user task work limits (cycles)
    cycles_high: jax.Array  # (9,)
    rate: jax.Array  # (9,) Poisson rate per user: tasks per interval
    interval: float = 0.01  # seconds per rate interval (reference: 0.01 s)
    bandwidth: float = 1e9  # uplink bit/s; deadline uses bits / 1e9 (reference)
    deadline_factor: float = 3.0  # D = 3 (B / 1e9 + C / sum f) (reference)
    queue_obs_clip: float = 10.0  # observation shows q_j / D clipped to [0, this]
    violation_penalty: float = 0.0  # reward -= penalty * info["violation"]; 0 = only measure
    max_steps_in_episode: int = 100  # tasks per episode (our choice)


def load_compute_config() -> dict[str, np.ndarray]:
    """The reference servers and users as float64 numpy arrays (commas in numbers removed)."""
    with data_path("paspo_compute_9_servers.json").open("r") as f:
        raw = json.load(f)

    def num(x) -> float:
        return float(str(x).replace(",", ""))

    servers = [raw["server_config"][str(j)] for j in range(len(raw["server_config"]))]
    users = [raw["user_config"][str(u)] for u in range(len(raw["user_config"]))]
    freq_low = np.array([num(s["server_max_frequency_lower_limit_hz"]) for s in servers])
    freq_high = np.array([num(s["server_max_frequency_upper_limit_hz"]) for s in servers])
    if not np.allclose(freq_low, freq_high):
        raise ValueError("varying server frequencies are not supported (reference: fixed)")
    intervals = np.array([num(u["interval_length_in_sec"]) for u in users])
    if not np.allclose(intervals, intervals[0]):
        raise ValueError("users with different rate intervals are not supported")
    return {
        "freq": freq_low,
        "bits_low": np.array([num(u["task_data_size_lower_limit_bits"]) for u in users]),
        "bits_high": np.array([num(u["task_data_size_upper_limit_bits"]) for u in users]),
        "cycles_low": np.array([num(u["task_computing_size_lower_limit_cycles"]) for u in users]),
        "cycles_high": np.array([num(u["task_computing_size_upper_limit_cycles"]) for u in users]),
        "rate": np.array([num(u["average_number_task_spawning_per_interval"]) for u in users]),
        "interval": float(intervals[0]),
    }


def deadline(bits, cycles, params: ComputeParams):
    """``D = deadline_factor * (B / bandwidth + C / sum_j f_j)`` (seconds)."""
    return params.deadline_factor * (bits / params.bandwidth + cycles / jnp.sum(params.freq))


def finish_times(queue, bits, cycles, a, params: ComputeParams):
    """``T_j = max(q_j, B / bandwidth) + a_j C / f_j`` for every server (seconds, (9,))."""
    t_tx = bits / params.bandwidth
    return jnp.maximum(queue, t_tx) + a * cycles / params.freq


class PaspoCompute(AllocationEnv):
    """Compute-workload allocation (see module docstring)."""

    def __init__(
        self,
        *,
        normalize_rows: bool = True,
        max_steps_in_episode: int = 100,
        deadline_factor: float = 3.0,
        bandwidth: float = 1e9,
        queue_obs_clip: float = 10.0,
        violation_penalty: float = 0.0,
        name_suffix: str = "-v0",
    ):
        """``PASPO-compute-9-v0`` from the reference data; it builds its own ``default_params``."""
        super().__init__()
        self.name_suffix = str(name_suffix)
        if max_steps_in_episode < 1:
            raise ValueError(f"max_steps_in_episode must be positive, got {max_steps_in_episode}")
        if not (deadline_factor > 0 and bandwidth > 0 and queue_obs_clip > 0):
            raise ValueError("deadline_factor, bandwidth and queue_obs_clip must be positive")
        self.num_entities = NUM_SERVERS
        cfg = load_compute_config()
        A, b = load_polytope("compute9", normalize=normalize_rows)
        self.exact_constraints = (np.asarray(A, np.float64), np.asarray(b, np.float64))
        f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        self._params = ComputeParams(
            A=f32(A),
            b=f32(b),
            freq=f32(cfg["freq"]),
            bits_low=f32(cfg["bits_low"]),
            bits_high=f32(cfg["bits_high"]),
            cycles_low=f32(cfg["cycles_low"]),
            cycles_high=f32(cfg["cycles_high"]),
            rate=f32(cfg["rate"]),
            interval=cfg["interval"],
            bandwidth=float(bandwidth),
            deadline_factor=float(deadline_factor),
            queue_obs_clip=float(queue_obs_clip),
            violation_penalty=float(violation_penalty),
            max_steps_in_episode=int(max_steps_in_episode),
        )

    @property
    def name(self) -> str:
        return f"PASPO-compute-9{self.name_suffix}"

    @property
    def default_params(self) -> ComputeParams:
        """The params this env was built with."""
        return self._params

    def _new_task(self, key, params: ComputeParams):
        """Draw the next task: user ~ rate, bits and cycles uniform in the user's limits."""
        k_user, k_bits, k_cycles = jax.random.split(key, 3)
        user = jax.random.categorical(k_user, jnp.log(params.rate)).astype(jnp.int32)
        bits = jax.random.uniform(k_bits, (), minval=params.bits_low[user], maxval=params.bits_high[user])
        cycles = jax.random.uniform(
            k_cycles, (), minval=params.cycles_low[user], maxval=params.cycles_high[user]
        )
        return user, bits, cycles

    def _transition(self, key, state, a, params):
        T = finish_times(state.queue, state.bits, state.cycles, a, params)
        used = a > 0.0
        completion = jnp.max(jnp.where(used, T, 0.0))
        D = deadline(state.bits, state.cycles, params)
        reward = (completion <= D).astype(jnp.float32)
        k_dt, k_task = jax.random.split(key)
        total_rate = jnp.sum(params.rate) / params.interval  # tasks per second
        dt = jax.random.exponential(k_dt) / total_rate
        queue = jnp.maximum(jnp.where(used, T, state.queue) - dt, 0.0)
        user, bits, cycles = self._new_task(k_task, params)
        new_state = ComputeState(queue=queue, user=user, bits=bits, cycles=cycles, time=state.time + 1)
        info = {"completion_time": completion, "deadline": D, "inter_arrival": dt}
        return self.get_obs(new_state, params), new_state, reward, self.is_terminated(new_state, params), info

    def reset_env(self, key, params):
        user, bits, cycles = self._new_task(key, params)
        state = ComputeState(
            queue=jnp.zeros(NUM_SERVERS, jnp.float32), user=user, bits=bits, cycles=cycles, time=0
        )
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        """``[clip(q / D), onehot(user), B / max B, C / max C, steps left / max steps]`` (21,)."""
        params = self.default_params if params is None else params
        D = deadline(state.bits, state.cycles, params)
        left = 1.0 - state.time / params.max_steps_in_episode
        return jnp.concatenate(
            [
                jnp.clip(state.queue / D, 0.0, params.queue_obs_clip),
                jax.nn.one_hot(state.user, NUM_USERS),
                jnp.stack(
                    [
                        state.bits / jnp.max(params.bits_high),
                        state.cycles / jnp.max(params.cycles_high),
                        jnp.asarray(left, jnp.float32),
                    ]
                ),
            ]
        ).astype(jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.asarray(state.time >= params.max_steps_in_episode)

    def observation_space(self, params=None) -> spaces.Box:
        params = self.default_params if params is None else params
        high = jnp.concatenate(
            [jnp.full(NUM_SERVERS, params.queue_obs_clip), jnp.ones(NUM_USERS + 3)]
        ).astype(jnp.float32)
        return spaces.Box(jnp.zeros_like(high), high, (NUM_SERVERS + NUM_USERS + 3,), jnp.float32)

    def state_space(self, params=None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "queue": spaces.Box(
                    jnp.zeros(NUM_SERVERS), jnp.full(NUM_SERVERS, jnp.inf), (NUM_SERVERS,), jnp.float32
                ),
                "user": spaces.Discrete(NUM_USERS),
                "bits": spaces.Box(jnp.min(params.bits_low), jnp.max(params.bits_high), (), jnp.float32),
                "cycles": spaces.Box(jnp.min(params.cycles_low), jnp.max(params.cycles_high), (), jnp.float32),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def make_compute(**kwargs) -> tuple[PaspoCompute, ComputeParams]:
    """``(env, env.default_params)`` for ``PASPO-compute-9-v0``; keywords: :class:`PaspoCompute`."""
    env = PaspoCompute(**kwargs)
    return env, env.default_params


__all__ = ["ComputeParams", "ComputeState", "PaspoCompute", "deadline", "finish_times", "make_compute"]
