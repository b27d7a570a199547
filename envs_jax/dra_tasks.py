"""Tasks of Patel, Acerbi & Pouget (NeurIPS 2020), "Dynamic allocation of limited memory
resources in reinforcement learning", in the gymnax API.

Three tabular tasks, each exposing, besides the gymnax methods, the small interface the
tabular DRA agent (``dra_jax``) reads:

* ``num_tabular_states(params) -> int`` and ``tabular_index(obs, params) -> int32``: the row
  of the agent's ``q``/``sigma`` tables an observation belongs to;
* ``tabular_grid_shape(params) -> tuple``: how those rows lay out on a picture
  (maze cells, (position, velocity) cells, (moves left, state));
* ``params_for_trial(params, trial) -> params``: the parameters in force at a given trial
  (the maze's switch; identity elsewhere);
* ``dra_horizon(params) -> float``: the task's horizon, the fixed ``T`` of note Eq. 10
  (``dra_jax.objectives``): Huys ``depth``, MountainCar 200 (its time limit), maze
  ``MAZE_HORIZON`` = 19 (the maze has no horizon: episodes end at the goal; 19 is the
  length of a converged DRA agent's episode under the original's settings, 18.6 measured);
* Huys only, ``known_memories(params) -> (mask, q, sigma)``: the memories of the last move
  (immediate rewards), which the original's ``train_fig3.py`` holds fixed at the known
  rewards with sigma = 1.

Tasks:

* ``make_maze``: the 6x9 grid world (start (2,0), goal (0,8) worth +10, -1 for every other
  move, bumping into a wall or obstacle included); at trial ``switch_trial`` (3000) the
  obstacle (0,7) disappears and the goal moves to (0,6). The original lets an episode run
  until the goal; a jitted loop needs a bound, so ``max_steps_in_episode`` (default 1000,
  far above the ~20 steps of a trained agent) truncates.
* ``make_huys``: the planning task of Huys et al. (2012) used in the paper: 6 states,
  2 actions (each state has two successors), 3 moves per episode, rewards on transitions.
  Unrolled by moves left: the tabular state is (moves left, state), 6 x depth rows.
* ``make_mountaincar``: gymnax ``MountainCar-v0`` whose observation is the original's
  discretisation ``round((obs - low) * [10, 100])``: a 19 x 15 (position, velocity) grid.

Contracts (``envs_jax.contracts``): ``Tabular``, ``TabularLayout``, ``TrialSchedule``,
``FixedHorizon``; Huys also ``KnownMemories``. Observation spaces are int32 ``Box``es with
array ``low`` and ``high``: gymnax 1.0.1's gym conversion fails on a scalar ``low`` next to an
array ``high`` (it reads ``low.size`` when ``high`` is an array).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces
from gymnax.environments.classic_control.mountain_car import MountainCar

# --------------------------------------------------------------------------------------
# Maze (paper Fig. 1; the original's layout, after Mattar & Daw 2018).
# --------------------------------------------------------------------------------------
MAZE_HEIGHT = 6
MAZE_WIDTH = 9
MAZE_START = (2, 0)
MAZE_GOAL = (0, 8)
MAZE_GOAL_AFTER = (0, 6)
MAZE_OBSTACLES = ((1, 2), (2, 2), (3, 2), (0, 7), (1, 7), (2, 7), (4, 5))
MAZE_REMOVED_AT_SWITCH = ((0, 7),)
MAZE_GOAL_REWARD = 10.0
MAZE_STEP_REWARD = -1.0
# Actions as in the original: up, down, left, right (row, col) moves.
MAZE_MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int32)
# Eq. 10's fixed T on the maze: a converged agent's episode length (see the module docstring).
MAZE_HORIZON = 19.0


def _obstacle_mask(obstacles) -> np.ndarray:
    mask = np.zeros((MAZE_HEIGHT, MAZE_WIDTH), dtype=bool)
    for r, c in obstacles:
        mask[r, c] = True
    return mask


MAZE_OBSTACLE_MASK = _obstacle_mask(MAZE_OBSTACLES)
MAZE_OBSTACLE_MASK_AFTER = _obstacle_mask(
    [o for o in MAZE_OBSTACLES if o not in MAZE_REMOVED_AT_SWITCH]
)


@struct.dataclass
class MazeState(environment.EnvState):
    pos: jax.Array  # (2,) int32: (row, col)
    time: int


@struct.dataclass
class MazeParams(environment.EnvParams):
    max_steps_in_episode: int = 1000  # orig: unbounded (episode ends only at the goal)
    switch_trial: int = 3000  # trial at which (0,7) opens and the goal moves to (0,6)
    switched: bool = False  # layout in force: False = before the switch, True = after


class DRAMaze(environment.Environment[MazeState, MazeParams]):
    """The 6x9 maze of the DRA paper, with the obstacle/goal switch."""

    @property
    def default_params(self) -> MazeParams:
        return MazeParams()

    # Layout in force ------------------------------------------------------------------
    def obstacles(self, params: MazeParams) -> jax.Array:
        """(6, 9) bool mask of obstacles in force under ``params``."""
        return jnp.where(
            params.switched, jnp.asarray(MAZE_OBSTACLE_MASK_AFTER), jnp.asarray(MAZE_OBSTACLE_MASK)
        )

    def goal(self, params: MazeParams) -> jax.Array:
        """(2,) int32 goal cell in force under ``params``."""
        return jnp.where(
            params.switched,
            jnp.asarray(MAZE_GOAL_AFTER, dtype=jnp.int32),
            jnp.asarray(MAZE_GOAL, dtype=jnp.int32),
        )

    def params_for_trial(self, params: MazeParams, trial) -> MazeParams:
        """Parameters in force at ``trial`` (0-based): switched from ``switch_trial`` on."""
        return params.replace(switched=jnp.asarray(trial) >= params.switch_trial)

    # gymnax API -----------------------------------------------------------------------
    def step_env(self, key, state: MazeState, action, params: MazeParams):
        move = jnp.asarray(MAZE_MOVES)[action]
        cand = state.pos + move
        cand = jnp.clip(cand, 0, jnp.array([MAZE_HEIGHT - 1, MAZE_WIDTH - 1]))
        blocked = self.obstacles(params)[cand[0], cand[1]]
        pos = jnp.where(blocked, state.pos, cand).astype(jnp.int32)
        at_goal = jnp.all(pos == self.goal(params))
        reward = jnp.where(at_goal, MAZE_GOAL_REWARD, MAZE_STEP_REWARD).astype(jnp.float32)
        new_state = MazeState(pos=pos, time=state.time + 1)
        terminated = self.is_terminated(new_state, params)
        return (
            jax.lax.stop_gradient(self.get_obs(new_state, params)),
            jax.lax.stop_gradient(new_state),
            reward,
            terminated,
            {"discount": 1.0 - terminated.astype(jnp.float32)},
        )

    def reset_env(self, key, params: MazeParams):
        state = MazeState(pos=jnp.asarray(MAZE_START, dtype=jnp.int32), time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state: MazeState, params=None, key=None) -> jax.Array:
        """(row, col) as int32."""
        return state.pos

    def is_terminated(self, state: MazeState, params: MazeParams) -> jax.Array:
        return jnp.all(state.pos == self.goal(params))

    @property
    def name(self) -> str:
        return "DRA-maze"

    @property
    def num_actions(self) -> int:
        return 4

    def action_space(self, params: MazeParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def observation_space(self, params: MazeParams) -> spaces.Box:
        return spaces.Box(jnp.zeros(2, jnp.int32), jnp.array([MAZE_HEIGHT - 1, MAZE_WIDTH - 1]), (2,), jnp.int32)

    def state_space(self, params: MazeParams) -> spaces.Dict:
        return spaces.Dict(
            {
                "pos": self.observation_space(params),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )

    # Tabular interface ----------------------------------------------------------------
    def num_tabular_states(self, params: MazeParams | None = None) -> int:
        return MAZE_HEIGHT * MAZE_WIDTH

    def tabular_index(self, obs: jax.Array, params: MazeParams | None = None) -> jax.Array:
        """Row-major cell index ``row * 9 + col``."""
        return (obs[..., 0] * MAZE_WIDTH + obs[..., 1]).astype(jnp.int32)

    def dra_horizon(self, params: MazeParams | None = None) -> float:
        """Eq. 10's fixed T: ``MAZE_HORIZON`` (the maze itself has no horizon)."""
        return MAZE_HORIZON

    def tabular_grid_shape(self, params: MazeParams | None = None) -> tuple[int, int]:
        return (MAZE_HEIGHT, MAZE_WIDTH)


def make_maze(**kwargs: Any):
    """``(DRAMaze(), MazeParams(**kwargs))``; e.g. ``make_maze(switch_trial=10**9)`` never switches."""
    return DRAMaze(), MazeParams(**kwargs)


# --------------------------------------------------------------------------------------
# Huys planning task (Huys et al. 2012; paper Fig. 3). 1-indexed in the paper, 0 here.
# --------------------------------------------------------------------------------------
# HUYS_SUCC[s, a]: successor of state s under action a; HUYS_REWARD[s, a]: its reward.
# Rewards (1-indexed): 1->2 +140, 1->4 +20, 2->3 -20, 2->5 -70, 3->4 -20, 3->6 -70,
# 4->2 +20, 4->5 -20, 5->1 -70, 5->6 -20, 6->1 -20, 6->3 +20. Action 0 goes to the
# lower-numbered successor (the orig's ordering of the transition-matrix row).
HUYS_SUCC = np.array([[1, 3], [2, 4], [3, 5], [1, 4], [0, 5], [0, 2]], dtype=np.int32)
HUYS_REWARD = np.array(
    [[140.0, 20.0], [-20.0, -70.0], [-20.0, -70.0], [20.0, -20.0], [-70.0, -20.0], [-20.0, 20.0]],
    dtype=np.float32,
)
HUYS_NUM_NODES = 6


@struct.dataclass
class HuysState(environment.EnvState):
    node: jax.Array  # int32 in 0..5
    moves_left: jax.Array  # int32 in 0..depth
    time: int


@struct.dataclass
class HuysParams(environment.EnvParams):
    max_steps_in_episode: int = 3  # = depth; the episode ends by itself after depth moves


class HuysPlanning(environment.Environment[HuysState, HuysParams]):
    """Huys planning task unrolled by moves left: tabular state (moves left, node)."""

    def __init__(self, depth: int = 3):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = int(depth)

    @property
    def default_params(self) -> HuysParams:
        return HuysParams(max_steps_in_episode=self.depth)

    def params_for_trial(self, params: HuysParams, trial) -> HuysParams:
        return params

    def step_env(self, key, state: HuysState, action, params: HuysParams):
        succ = jnp.asarray(HUYS_SUCC)[state.node, action]
        reward = jnp.asarray(HUYS_REWARD)[state.node, action]
        new_state = HuysState(node=succ, moves_left=state.moves_left - 1, time=state.time + 1)
        terminated = self.is_terminated(new_state, params)
        return (
            jax.lax.stop_gradient(self.get_obs(new_state, params)),
            jax.lax.stop_gradient(new_state),
            reward,
            terminated,
            {"discount": 1.0 - terminated.astype(jnp.float32)},
        )

    def reset_env(self, key, params: HuysParams):
        node = jax.random.randint(key, (), 0, HUYS_NUM_NODES, dtype=jnp.int32)
        state = HuysState(node=node, moves_left=jnp.asarray(self.depth, jnp.int32), time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state: HuysState, params=None, key=None) -> jax.Array:
        """(node, moves_left) as int32."""
        return jnp.stack([state.node, state.moves_left]).astype(jnp.int32)

    def is_terminated(self, state: HuysState, params: HuysParams) -> jax.Array:
        return state.moves_left <= 0

    @property
    def name(self) -> str:
        return "DRA-huys"

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: HuysParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params: HuysParams) -> spaces.Box:
        return spaces.Box(jnp.zeros(2, jnp.int32), jnp.array([HUYS_NUM_NODES - 1, self.depth]), (2,), jnp.int32)

    def state_space(self, params: HuysParams) -> spaces.Dict:
        return spaces.Dict(
            {
                "node": spaces.Discrete(HUYS_NUM_NODES),
                "moves_left": spaces.Discrete(self.depth + 1),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )

    def num_tabular_states(self, params: HuysParams | None = None) -> int:
        return HUYS_NUM_NODES * self.depth

    def tabular_index(self, obs: jax.Array, params: HuysParams | None = None) -> jax.Array:
        """``(depth - moves_left) * 6 + node``; terminal observations (0 moves left) map
        past the table (callers mask them)."""
        return ((self.depth - obs[..., 1]) * HUYS_NUM_NODES + obs[..., 0]).astype(jnp.int32)

    def tabular_grid_shape(self, params: HuysParams | None = None) -> tuple[int, int]:
        return (self.depth, HUYS_NUM_NODES)

    def dra_horizon(self, params: HuysParams | None = None) -> float:
        """Every episode has exactly ``depth`` moves."""
        return float(self.depth)

    def known_memories(self, params: HuysParams | None = None):
        """The last move's memories, known exactly in the original's ``train_fig3.py``:
        ``(mask (S, 2) bool, q (S, 2), sigma (S, 2))`` with ``mask`` true on the rows with one
        move left, ``q`` there the immediate rewards ``HUYS_REWARD`` and ``sigma`` 1."""
        S = self.num_tabular_states(params)
        last = np.zeros((S, 2), bool)
        last[(self.depth - 1) * HUYS_NUM_NODES:] = True
        q = np.zeros((S, 2), np.float32)
        q[(self.depth - 1) * HUYS_NUM_NODES:] = HUYS_REWARD
        return last, q, np.ones((S, 2), np.float32)


def make_huys(depth: int = 3, **kwargs: Any):
    """``(HuysPlanning(depth), HuysParams(max_steps_in_episode=depth, **kwargs))``."""
    env = HuysPlanning(depth)
    return env, HuysParams(**{"max_steps_in_episode": depth, **kwargs})


# --------------------------------------------------------------------------------------
# MountainCar discretised as in the original DRA code (paper Fig. 2).
# --------------------------------------------------------------------------------------
MC_SCALE = np.array([10.0, 100.0], dtype=np.float32)
MC_GRID = (19, 15)


class DiscretisedMountainCar(MountainCar):
    """gymnax MountainCar-v0 (dynamics, reward -1, 200 steps) observed on a 19x15 grid:
    ``obs = round((position - min_position) * 10, (velocity + max_speed) * 100)``."""

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        if params is None:
            params = self.default_params
        low = jnp.array([params.min_position, -params.max_speed])
        raw = jnp.array([state.position, state.velocity])
        idx = jnp.round((raw - low) * jnp.asarray(MC_SCALE)).astype(jnp.int32)
        return jnp.clip(idx, 0, jnp.array([MC_GRID[0] - 1, MC_GRID[1] - 1]))

    def params_for_trial(self, params, trial):
        return params

    @property
    def name(self) -> str:
        return "DRA-mountaincar"

    def observation_space(self, params) -> spaces.Box:
        return spaces.Box(jnp.zeros(2, jnp.int32), jnp.array([MC_GRID[0] - 1, MC_GRID[1] - 1]), (2,), jnp.int32)

    def num_tabular_states(self, params=None) -> int:
        return MC_GRID[0] * MC_GRID[1]

    def tabular_index(self, obs: jax.Array, params=None) -> jax.Array:
        return (obs[..., 0] * MC_GRID[1] + obs[..., 1]).astype(jnp.int32)

    def tabular_grid_shape(self, params=None) -> tuple[int, int]:
        return MC_GRID

    def dra_horizon(self, params=None) -> float:
        """The time limit (200 steps)."""
        return float((params or self.default_params).max_steps_in_episode)


def make_mountaincar(**kwargs: Any):
    """``(DiscretisedMountainCar(), EnvParams(**kwargs))`` (gymnax MountainCar params)."""
    env = DiscretisedMountainCar()
    return env, env.default_params.replace(**kwargs) if kwargs else env.default_params
