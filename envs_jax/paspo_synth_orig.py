"""``PASPO-synth-7``: the original's synthetic benchmark (niklasdbs/paspo ``src/envs/synth_env.py``).

Rules (the original's ``SynthEnv(n_dimension=7, n_states=2, env_gen_seed=1,
use_mlp_reward_function=True)`` as its run config builds it, without a polytope):

- deterministic 2-step episode: state 0 at reset, state 1 after the first step, state 2 (the
  terminal slot) after the second, which ends the episode (``terminated``; gymnax also reports
  ``truncated`` at the same step);
- observation: one-hot of the state over 3 slots, float32 (3,) (``[1,0,0]``, ``[0,1,0]``,
  ``[0,0,1]``);
- reward of allocation ``a`` (7,) in state ``s``:

      r(s, a) = 30 * (W3 relu(W2 relu(W1 x + b1) + b2) + b3)[0],   x = [float(s), a_0, ..., a_6]

  (8 inputs: the state *index* as one scalar). ``W*`` / ``b*`` are the exact weights of the
  original's reward MLP (torch seed 1: hidden layers xavier-normal, last layer ``W ~ U(0, 0.1)``,
  ``b = 0.3 * U(0, 1)``), shipped in ``data/paspo_synth7_reward_mlp.npz`` (torch ``Linear``
  shapes ``(out, in)``) with 46 test triples from the original's ``step()``. All rewards are
  >= 0; about 5.4 to 7.2 per step;
- no penalty for infeasible actions (the original env is built without the polytope); like every
  ``AllocationEnv`` the violation of the ``synth7`` polytope is measured in ``info``. An action
  off the simplex is mapped onto it first (``envs_jax.allocation.to_simplex``; the original
  would feed it to the MLP as it is: PASPO's actions are on the simplex).

Constraints: the reference polytope ``synth7`` (611 rows, 4.8% of the simplex).

The scaling ids ``PASPO-synth-20/50/100`` keep the ``-v0`` dynamics of ``envs_jax.paspo_synth``
(random state, one-hot MLP input, numpy-drawn weights): the original's weights exist only for
7 entities (its ``n_dimension`` changes the MLP's input and so the torch draws).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from envs_jax.allocation import AllocationEnv, data_path, load_polytope

NUM_ENTITIES = 7
NUM_STATES = 2  # states 0 and 1; slot 2 of the observation marks the terminal state
MLP_FILE = "paspo_synth7_reward_mlp.npz"


@struct.dataclass
class SynthOrigState:
    s: jax.Array  # int32 in {0, 1, 2}: the current state (2 = terminal)
    time: int = 0


@struct.dataclass
class SynthOrigParams:
    A: jax.Array  # (611, 7) constraint rows (synth7), A a <= b
    b: jax.Array  # (611,)
    W1: jax.Array  # (32, 8) torch Linear shape (out, in)
    b1: jax.Array  # (32,)
    W2: jax.Array  # (16, 32)
    b2: jax.Array  # (16,)
    W3: jax.Array  # (1, 16)
    b3: jax.Array  # (1,)
    reward_scale: float = 30.0  # r = 30 * MLP([s, a]) (original)
    violation_penalty: float = 0.0  # reward -= penalty * info["violation"]; 0 = only measure
    max_steps_in_episode: int = NUM_STATES  # 2 steps (original)


def load_reward_mlp() -> dict[str, np.ndarray]:
    """The shipped npz: ``W1..b3`` (float32, torch shapes), ``scale``, ``note`` and the test
    triples ``test_states`` (46,), ``test_actions`` (46, 7), ``test_rewards`` (46,)."""
    with data_path(MLP_FILE).open("rb") as f:
        data = np.load(f)
        return {k: np.asarray(data[k]) for k in data.files}


def reward_mlp(s, a, params: SynthOrigParams) -> jax.Array:
    """``reward_scale * MLP([float(s), a])``, float32 scalar (module docstring)."""
    x = jnp.concatenate([jnp.asarray(s, jnp.float32)[None], jnp.asarray(a, jnp.float32)])
    h = jax.nn.relu(params.W1 @ x + params.b1)
    h = jax.nn.relu(params.W2 @ h + params.b2)
    return params.reward_scale * (params.W3 @ h + params.b3)[0]


class PaspoSynthOrig(AllocationEnv):
    """The original's synthetic benchmark, 7 entities (module docstring)."""

    def __init__(self, *, normalize_rows: bool = True, violation_penalty: float = 0.0):
        """``PASPO-synth-7``; it builds its own ``default_params`` from the shipped weights."""
        super().__init__()
        self.num_entities = NUM_ENTITIES
        A, b = load_polytope("synth7", normalize=normalize_rows)
        self.exact_constraints = (np.asarray(A, np.float64), np.asarray(b, np.float64))
        mlp = load_reward_mlp()
        self._params = SynthOrigParams(
            A=jnp.asarray(A, jnp.float32),
            b=jnp.asarray(b, jnp.float32),
            **{k: jnp.asarray(mlp[k], jnp.float32) for k in ("W1", "b1", "W2", "b2", "W3", "b3")},
            reward_scale=float(mlp["scale"]),
            violation_penalty=float(violation_penalty),
        )

    @property
    def name(self) -> str:
        return "PASPO-synth-7"

    @property
    def default_params(self) -> SynthOrigParams:
        return self._params

    def _transition(self, key, state, a, params):
        del key
        r = reward_mlp(state.s, a, params)
        new_state = SynthOrigState(s=state.s + 1, time=state.time + 1)
        return self.get_obs(new_state), new_state, r, self.is_terminated(new_state, params), {}

    def reset_env(self, key, params):
        del key
        state = SynthOrigState(s=jnp.zeros((), jnp.int32), time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        """One-hot of the state over 3 slots (the third marks terminal), float32 (3,)."""
        return jax.nn.one_hot(state.s, NUM_STATES + 1, dtype=jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.asarray(state.s >= NUM_STATES)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (NUM_STATES + 1,), jnp.float32)

    def state_space(self, params=None) -> spaces.Dict:
        return spaces.Dict({"s": spaces.Discrete(NUM_STATES + 1), "time": spaces.Discrete(NUM_STATES + 1)})


def make_synth_orig(**kwargs) -> tuple[PaspoSynthOrig, SynthOrigParams]:
    """``(env, env.default_params)`` for ``PASPO-synth-7``; keywords: :class:`PaspoSynthOrig`."""
    env = PaspoSynthOrig(**kwargs)
    return env, env.default_params


__all__ = ["PaspoSynthOrig", "SynthOrigParams", "SynthOrigState", "load_reward_mlp", "make_synth_orig", "reward_mlp"]
