"""``PASPO-synth-7-v0`` and ``PASPO-synth-20/50/100``: our synthetic allocation benchmark after Winkel et al. (2024).

The paper's ``PASPO-synth-7`` is the original's env (``envs_jax.paspo_synth_orig``); this module
is the variant the project used before (``-v0``; its results in ``benchmarks/RESULTS_paspo.md``
refer to it), and the scaling ids N in {20, 50, 100} keep it (the original's MLP weights exist
only for N = 7).

Each episode has ``max_steps_in_episode = 2`` steps. The state is one of 3 values, shown
one-hot; it is drawn uniformly at reset and again after every step. The reward of allocating
``a`` (n entities) in state ``s`` is

    r(s, a) = 30 * f([onehot(s), a]),   f = Linear(3+n, 32) - ReLU - Linear(32, 16) - ReLU - Linear(16, 1),

a fixed random MLP whose weights are drawn from ``mlp_seed`` in numpy at construction with
PyTorch's ``nn.Linear`` default initialisation (weights and biases ~ U(-1/sqrt(fan_in),
+1/sqrt(fan_in))) and stored in the env params (so they can be vmapped or swapped).

Note on sizes: the reference describes the MLP as "8 -> 32 -> 16 -> 1" for 7 entities while
also calling the state a one-hot of 3, which gives an input of 3 + 7 = 10. We follow the
one-hot description (input ``3 + n``); ``state_input="index"`` feeds the state as one scalar
``s`` in {0, 1, 2} instead, which gives the "8" (``1 + n``) of that description.

Constraints: ``n = 7`` uses the reference polytope ``synth7`` (611 rows, 4.8% of the simplex);
any other ``n`` (the scaling study, N in {20, 50, 100}) uses a random polytope from
:func:`random_polytope` with ``polytope_seed``. ``polytope="random"`` forces a random polytope
for ``n = 7`` too.

The episode ends at ``max_steps_in_episode``: that is the task's horizon, so the last step
reports ``terminated = True`` (no bootstrapping; the paper trains with gamma = 1) and gymnax
reports ``truncated = True`` at the same step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from envs_jax.allocation import AllocationEnv, load_polytope

NUM_STATES = 3  # one-hot state of 3 (paper, synthetic benchmark)
HIDDEN = (32, 16)  # hidden widths of the reward MLP


@struct.dataclass
class SynthState:
    s: jax.Array  # int32 in {0, 1, 2}: the current state
    time: int = 0


@struct.dataclass
class SynthParams:
    A: jax.Array  # (m, n) constraint rows, A a <= b
    b: jax.Array  # (m,)
    W1: jax.Array  # (3 + n, 32) or (1 + n, 32): reward MLP, first layer
    b1: jax.Array  # (32,)
    W2: jax.Array  # (32, 16)
    b2: jax.Array  # (16,)
    W3: jax.Array  # (16, 1)
    b3: jax.Array  # (1,)
    reward_scale: float = 30.0  # r = 30 * MLP([state, a]) (reference)
    violation_penalty: float = 0.0  # reward -= penalty * info["violation"]; 0 = only measure
    max_steps_in_episode: int = 2  # 2-step episodes (reference)


# --------------------------------------------------------------------------- generators
def reward_mlp_params(n_in: int, seed: int) -> dict[str, np.ndarray]:
    """Weights of the fixed reward MLP ``n_in -> 32 -> 16 -> 1`` (float32 numpy).

    PyTorch ``nn.Linear`` default init: weight and bias ~ U(-k, k), k = 1/sqrt(fan_in). Weights
    are stored as (fan_in, fan_out) so that a layer is ``x @ W + b``.
    """
    rng = np.random.default_rng(seed)
    sizes = (n_in, *HIDDEN, 1)
    out = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        k = 1.0 / np.sqrt(fan_in)
        out[f"W{i}"] = rng.uniform(-k, k, size=(fan_in, fan_out)).astype(np.float32)
        out[f"b{i}"] = rng.uniform(-k, k, size=(fan_out,)).astype(np.float32)
    return out


def random_polytope(
    n: int,
    seed: int = 0,
    num_constraints: int | None = None,
    keep_fraction: float = 0.1,
    num_samples: int = 20_000,
) -> tuple[np.ndarray, np.ndarray]:
    """A random polytope ``{a on the simplex : A a <= b}`` with a non-empty interior (numpy).

    Generator (all numpy, ``np.random.default_rng(seed)``):

    1. an interior point ``x0 = (1/n + y) / 2`` with ``y ~ Dirichlet(1)`` (strictly inside
       the simplex);
    2. ``m = num_constraints`` (default ``n``) random directions ``d_k``: standard normal,
       centred to sum 0 (the component along the ones vector is constant on the simplex) and
       scaled to unit norm;
    3. offsets ``b_k = max(q-quantile of d_k . Y, d_k . x0 + 0.05 * spread_k)`` over
       ``num_samples`` uniform simplex points ``Y ~ Dirichlet(1)``, with
       ``q = keep_fraction ** (1/m)`` (so that, were the cuts independent, about
       ``keep_fraction`` of the simplex would remain) and ``spread_k`` the interquartile range
       of ``d_k . Y``.

    Every halfspace keeps ``x0`` strictly inside, so the polytope is non-empty with an
    interior; each cuts a fraction ``1 - q`` of the simplex's volume (about 11% for n = 20,
    5% for n = 50, 2% for n = 100 with the defaults). The cuts overlap, so with the defaults
    about 14-16% of the simplex remains (measured for n = 20, 50, 100, seeds 0-3), and every
    vertex of the simplex is cut, so concentrated allocations are constrained. The same ``(n, seed, ...)`` gives
    the same polytope. Rows have unit norm.
    """
    if n < 2:
        raise ValueError(f"random_polytope needs n >= 2 entities, got {n}")
    if not 0.0 < keep_fraction < 1.0:
        raise ValueError(f"keep_fraction must lie in (0, 1), got {keep_fraction}")
    m = n if num_constraints is None else int(num_constraints)
    if m < 1:
        raise ValueError(f"num_constraints must be positive, got {num_constraints}")
    rng = np.random.default_rng(seed)
    x0 = 0.5 * (np.full(n, 1.0 / n) + rng.dirichlet(np.ones(n)))
    D = rng.standard_normal((m, n))
    D -= D.mean(axis=1, keepdims=True)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Y = rng.dirichlet(np.ones(n), size=num_samples)
    proj = Y @ D.T  # (num_samples, m)
    q = keep_fraction ** (1.0 / m)
    quantile = np.quantile(proj, q, axis=0)
    spread = np.quantile(proj, 0.75, axis=0) - np.quantile(proj, 0.25, axis=0)
    b = np.maximum(quantile, D @ x0 + 0.05 * spread)
    return D, b


# --------------------------------------------------------------------------- environment
class PaspoSynth(AllocationEnv):
    """Synthetic allocation benchmark (see module docstring)."""

    def __init__(
        self,
        n: int = 7,
        seed: int = 0,
        *,
        mlp_seed: int | None = None,
        polytope: str = "auto",
        polytope_seed: int | None = None,
        num_constraints: int | None = None,
        keep_fraction: float = 0.1,
        normalize_rows: bool = True,
        state_input: str = "one_hot",
        reward_scale: float = 30.0,
        violation_penalty: float = 0.0,
        max_steps_in_episode: int = 2,
        name_suffix: str = "",
    ):
        """``PASPO-synth-n``; it builds its own default params (``default_params``).

        ``seed`` seeds both the reward MLP and (for random polytopes) the polytope unless
        ``mlp_seed`` / ``polytope_seed`` are given. ``polytope``: ``"auto"`` (reference ``synth7``
        for n = 7, random otherwise), ``"reference"`` (n must be 7) or ``"random"``.
        ``num_constraints`` / ``keep_fraction``: see :func:`random_polytope`.
        """
        super().__init__()
        n = int(n)
        if n < 2:
            raise ValueError(f"PASPO-synth needs n >= 2 entities, got {n}")
        if state_input not in ("one_hot", "index"):
            raise ValueError(f"state_input must be 'one_hot' or 'index', got {state_input!r}")
        if polytope not in ("auto", "reference", "random"):
            raise ValueError(f"polytope must be 'auto', 'reference' or 'random', got {polytope!r}")
        if polytope == "reference" and n != 7:
            raise ValueError(f"the reference polytope synth7 has 7 entities, got n = {n}")
        if max_steps_in_episode < 1:
            raise ValueError(f"max_steps_in_episode must be positive, got {max_steps_in_episode}")
        self.num_entities = n
        self.name_suffix = str(name_suffix)
        self.state_input = state_input
        if polytope == "reference" or (polytope == "auto" and n == 7):
            A, b = load_polytope("synth7", normalize=normalize_rows)
        else:
            A, b = random_polytope(
                n,
                seed=seed if polytope_seed is None else polytope_seed,
                num_constraints=num_constraints,
                keep_fraction=keep_fraction,
            )
        self.exact_constraints = (np.asarray(A, np.float64), np.asarray(b, np.float64))
        n_in = (NUM_STATES if state_input == "one_hot" else 1) + n
        mlp = reward_mlp_params(n_in, seed if mlp_seed is None else mlp_seed)
        self._params = SynthParams(
            A=jnp.asarray(A, jnp.float32),
            b=jnp.asarray(b, jnp.float32),
            **{k: jnp.asarray(v) for k, v in mlp.items()},
            reward_scale=float(reward_scale),
            violation_penalty=float(violation_penalty),
            max_steps_in_episode=int(max_steps_in_episode),
        )

    @property
    def name(self) -> str:
        return f"PASPO-synth-{self.num_entities}{self.name_suffix}"

    @property
    def default_params(self) -> SynthParams:
        """The params this env was built with."""
        return self._params

    def reward_input(self, s: jax.Array, a: jax.Array) -> jax.Array:
        """MLP input ``[onehot(s), a]`` (or ``[s, a]`` with ``state_input='index'``)."""
        if self.state_input == "one_hot":
            head = jax.nn.one_hot(s, NUM_STATES, dtype=jnp.float32)
        else:
            head = jnp.asarray(s, jnp.float32)[None]
        return jnp.concatenate([head, a.astype(jnp.float32)])

    def reward(self, s: jax.Array, a: jax.Array, params: SynthParams) -> jax.Array:
        """``r(s, a) = reward_scale * MLP([state, a])``."""
        x = self.reward_input(s, a)
        h = jax.nn.relu(x @ params.W1 + params.b1)
        h = jax.nn.relu(h @ params.W2 + params.b2)
        return params.reward_scale * (h @ params.W3 + params.b3)[0]

    def _transition(self, key, state, a, params):
        r = self.reward(state.s, a, params)
        s_next = jax.random.randint(key, (), 0, NUM_STATES, dtype=jnp.int32)
        new_state = SynthState(s=s_next, time=state.time + 1)
        terminated = self.is_terminated(new_state, params)
        return self.get_obs(new_state), new_state, r, terminated, {}

    def reset_env(self, key, params):
        state = SynthState(s=jax.random.randint(key, (), 0, NUM_STATES, dtype=jnp.int32), time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        """One-hot of the state, float32 (3,)."""
        return jax.nn.one_hot(state.s, NUM_STATES, dtype=jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.asarray(state.time >= params.max_steps_in_episode)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (NUM_STATES,), jnp.float32)

    def state_space(self, params=None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict({"s": spaces.Discrete(NUM_STATES), "time": spaces.Discrete(params.max_steps_in_episode)})


def make_synth(n: int = 7, seed: int = 0, **kwargs) -> tuple[PaspoSynth, SynthParams]:
    """``(env, env.default_params)`` for ``PASPO-synth-n``; keywords: :class:`PaspoSynth`."""
    env = PaspoSynth(n, seed, **kwargs)
    return env, env.default_params


__all__ = ["PaspoSynth", "SynthParams", "SynthState", "make_synth", "random_polytope", "reward_mlp_params"]
