"""Pistonball in pure JAX: PettingZoo's butterfly ``pistonball``, controlled centrally (IAR, App. B-C).

A ball (radius 40 px) lies on a row of ``n`` pistons between four walls; every step each
piston moves down, stays or moves up by 4 px; the ball should reach the left wall. Ids
(``envs_jax.registry``): ``Pistonball-v1/v2/v3`` (5/8/10 pistons, no constraint) and
``Pistonball-cstr-v1`` (5 pistons, all constrained), ``Pistonball-cstr-v2`` (8 pistons,
pistons 0-3 constrained), as the IAR original registers them (its ``PistonballCstr-v0/v1``).

Geometry (pixels, y grows downwards, as PettingZoo): screen ``W = 80 + 40 n`` by 560; walls
are segments of radius 1 on the rectangle ``[40, W-40] x [40, 520]``; piston ``i`` is a
kinematic segment of radius 5 from ``(45 + 40 i, y_i)`` to ``(75 + 40 i, y_i)`` with
``y_i in [427, 491]`` (17 positions, 4 px apart). Action ``a_i in {0, 1, 2}``: ``y_i <-
clip(y_i + 4 (1 - a_i))`` (0 = down, 1 = stay, 2 = up).

Physics: PettingZoo (pymunk/Chipmunk) steps its world once *per piston*: the AEC env moves
piston ``i`` and then calls ``space.step(1/20)``, ``i = 0..n-1``, so one env step is ``n``
physics steps of ``dt = 0.05`` s, piston ``i`` moving before the ``i``-th. We reproduce
Chipmunk 7's step for one dynamic circle (mass 0.75, moment ``m R^2 / 2``) against static
and kinematic segments (:func:`chipmunk_step`):

1. positions: ``p += (v + v_bias) dt``, ``angle += (w + w_bias) dt``; biases reset to 0;
2. contacts: circle vs capsule, closest point, normal ``n`` from ball to shape, contact
   depth ``d = |c - q| - (R + r_seg)`` (< 0: overlapping); per contact ``bias = -beta
   min(0, d + slop) / dt`` with ``beta = 1 - collision_bias ** dt`` (collision_bias 1e-4,
   slop 0.1), ``bounce = e v_n`` with ``e = 1.5 * 0 = 0`` (Chipmunk multiplies the
   elasticities; walls and pistons have the default 0, so the ball's 1.5 has no effect) and
   friction ``mu = 0.3 * 0.64 = 0.192`` (also a product);
3. velocities: ``v += g dt`` (g = 750 px/s^2 downwards, no damping);
4. warm start: contacts that also touched at the previous physics step re-apply their
   accumulated impulses;
5. 10 Gauss-Seidel iterations of Chipmunk's sequential impulses per contact: a bias
   (position-correcting, not kept as velocity) impulse ``jb = max(jb + (bias - v_bias_n)
   m_n, 0)``, a normal impulse ``jn = max(jn - (bounce + v_n) m_n, 0)`` and Coulomb friction
   ``|jt| <= mu jn`` with ``m_n = m``, ``m_t = 1 / (1/m + R^2/I) = m / 3``.

Pistons are teleported (position set, velocity 0), as PettingZoo does: a rising piston
pushes the ball out of the overlap through the bias velocity only; the ball rolls left
when pistons form a slope (contact normals tilt) and through friction with its spin.

Reward (the IAR original: ``pistonball_v4`` of PettingZoo 1.12.0; its wrapper averages the
pistons' rewards, which are all equal): with ``x_t = int(ball_x - 40)`` (left edge, pixels)
after step ``t`` and ``D = x_0 - 40`` at reset,

    r_t = 100 (x_{t-1} - x_t) / D  - 0.1 [not terminated at t].

Termination: ``x_t <= 41`` (the ball touches the left wall); truncation after
``max_cycles = 125`` steps. ``rules="v6"`` uses PettingZoo 1.27's ``pistonball_v6``
instead (``x_t`` clipped at 40; terminated when ``x_t + vx dt <= 41``), for comparing
with the installed PettingZoo.

Constraint (constrained ids, the original's ``_no_moveup_check``): let ``k`` be the piston
whose left end ``45 + 40 k`` is closest to ``x`` (= ``int(ball_x - 40)``; first index on
ties) and ``k0 = max(k - 1, 0)`` (the leftmost of PettingZoo's "nearby pistons"). An action
is invalid iff a constrained piston ``i < k0`` moves up (``a_i = 2``). Invalid actions are
executed as all pistons down (the original's "conservative" substitute, action 0 for every
piston; ``invalid="execute"`` runs them as given) and cost 1 (``info["cost"]``).

Observation: ``obs_type="vector"`` (default): float32 ``(5 + 2n,)`` = ``[ball_x / W,
ball_y / 560, vx / 1000, vy / 1000, w / (6 pi), (y_i - 427) / 64 for each piston, 1 if
piston i is left of the ball (i < k0) for each piston]``. ``obs_type="image"``: the screen
rendered in grayscale and downscaled to ``(96, 96, 1)`` in [0, 1] (the original's
``global_processed``: cv2 gray + INTER_AREA resize), drawn analytically with 4x4
supersampling; sprites are drawn as boxes of their mean gray (ids ``Pistonball-image-*``;
read by ``encoder="cnn"`` of ``iar_jax``, ``iar_jax/cnn_encoder.py``).

Simplifications against pymunk (their effect is measured in benchmarks/RESULTS_iar.md):
float32; the Gauss-Seidel order of contacts is fixed (pistons right to left, then walls;
Chipmunk's arbiter order comes from its bounding-box tree's pair cache and changes from step
to step: logged on pistonball_v6, 8 pistons, the same two pistons came in either order; right
to left kept more starts within 1 px of PettingZoo than left to right); only the 4 pistons around the ball
are tested for contact (no other can reach it); accumulated impulses are zeroed when a
contact breaks (Chipmunk keeps them for 3 steps); no sleeping, no bounding-box pass.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from envs_jax.spaces import MultiDiscrete

# PettingZoo pistonball geometry and physics defaults (pixels, seconds).
SCREEN_H = 560
WALL = 40  # wall width; walls are segments on x = 40, x = W - 40, y = 40, y = 520
WALL_RADIUS = 1.0
PISTON_W = 40
PISTON_R = 5.0  # segment radius of a piston head
BALL_R = 40.0
Y_MAX = 491.0  # lowest piston position: 560 - 40 - (40 - 11)
PX_PER_POS = 4.0
N_POS = 16
Y_MIN = Y_MAX - N_POS * PX_PER_POS  # 427, highest position
GRAVITY = 750.0
DT = 1.0 / 20.0
ITERATIONS = 10
COLLISION_BIAS = 1e-4
COLLISION_SLOP = 0.1  # pymunk default
SHAPE_FRICTION = 0.64  # walls and pistons
SHAPE_ELASTICITY = 0.0  # walls and pistons (pymunk default)
MAX_CYCLES = 125
WINDOW = 4  # pistons tested for contact around the ball
VERSIONS = {  # id suffix -> (n_pistons, constrained piston indices or None)
    "v1": (5, None),
    "v2": (8, None),
    "v3": (10, None),
    "cstr-v1": (5, (0, 1, 2, 3, 4)),
    "cstr-v2": (8, (0, 1, 2, 3)),
}
IMAGE_SIZE = 96


@struct.dataclass
class PistonballState:
    piston_y: jax.Array  # (n,) float32 y of each piston segment (427 = top, 491 = bottom)
    ball_p: jax.Array  # (2,) ball centre (x, y)
    ball_v: jax.Array  # (2,) ball velocity, px/s
    ball_angle: jax.Array  # () radians (drawn only)
    ball_w: jax.Array  # () angular velocity, rad/s
    v_bias: jax.Array  # (2,) Chipmunk's bias velocity (consumed by the next position update)
    w_bias: jax.Array  # () bias angular velocity
    jn: jax.Array  # (n + 4,) accumulated normal impulse per shape (pistons, then 4 walls)
    jt: jax.Array  # (n + 4,) accumulated friction impulse per shape
    touching: jax.Array  # (n + 4,) bool, the shape touched the ball at the last physics step
    last_x: jax.Array  # () int32 int(ball_x - 40) after the previous env step
    distance: jax.Array  # () float32 x_0 - 40 at reset (the reward's scale D)
    time: int  # env steps taken in this episode


@struct.dataclass
class PistonballParams:
    ball_mass: float = 0.75
    ball_friction: float = 0.3
    ball_elasticity: float = 1.5
    time_penalty: float = -0.1
    random_drop: bool = True  # random ball start offsets
    random_rotate: bool = True  # random initial spin in [-6 pi, 6 pi]
    max_steps_in_episode: int = MAX_CYCLES


def _cross(a: jax.Array, b: jax.Array) -> jax.Array:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _perp(a: jax.Array) -> jax.Array:
    return jnp.stack([-a[..., 1], a[..., 0]], axis=-1)


def segments(piston_y: jax.Array, n: int, idx: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Endpoints ``A, B (K, 2)`` and radii ``(K,)`` of shapes ``idx`` (K,): ``0..n-1`` pistons,
    ``n..n+3`` the left, right, top and bottom walls."""
    width = 2 * WALL + PISTON_W * n
    px = WALL + PISTON_R + PISTON_W * jnp.arange(n, dtype=jnp.float32)
    pa = jnp.stack([px, piston_y], -1)
    pb = jnp.stack([px + PISTON_W - 2 * PISTON_R, piston_y], -1)
    lo, hi_x, hi_y = float(WALL), float(width - WALL), float(SCREEN_H - WALL)
    wa = jnp.array([[lo, lo], [hi_x, lo], [lo, lo], [lo, hi_y]], jnp.float32)
    wb = jnp.array([[lo, hi_y], [hi_x, hi_y], [hi_x, lo], [hi_x, hi_y]], jnp.float32)
    A = jnp.concatenate([pa, wa])[idx]
    B = jnp.concatenate([pb, wb])[idx]
    r = jnp.concatenate([jnp.full((n,), PISTON_R), jnp.full((4,), WALL_RADIUS)])[idx]
    return A, B, r


def contact_shapes(ball_x: jax.Array, n: int) -> jax.Array:
    """Indices (WINDOW + 4,) of the shapes that can touch a ball centred at ``ball_x``:
    piston ``i`` spans x in [40 + 40 i, 80 + 40 i], the ball [x - 40, x + 40], so only
    ``i in ((x - 120) / 40, x / 40)`` (at most 3) can; we test 4 from ``floor((x-120)/40)+1``,
    right to left (the Gauss-Seidel order), then the 4 walls."""
    k = min(WINDOW, n)
    i0 = jnp.clip(jnp.floor((ball_x - 120.0) / PISTON_W).astype(jnp.int32) + 1, 0, n - k)
    return jnp.concatenate([i0 + jnp.arange(k - 1, -1, -1, dtype=jnp.int32), n + jnp.arange(4, dtype=jnp.int32)])


def chipmunk_step(state: PistonballState, params: PistonballParams, n: int, dt: float = DT) -> PistonballState:
    """One ``space.step(dt)`` of Chipmunk 7 for the ball against pistons and walls (module
    docstring, items 1-5). Pistons do not move here (the caller sets ``piston_y``)."""
    m = jnp.float32(params.ball_mass)
    inertia = m * BALL_R**2 / 2.0  # pymunk.moment_for_circle(m, 0, R)
    m_inv, i_inv = 1.0 / m, 1.0 / inertia
    mu = params.ball_friction * SHAPE_FRICTION
    e = params.ball_elasticity * SHAPE_ELASTICITY
    beta = 1.0 - COLLISION_BIAS**dt

    # 1. positions (with the previous step's velocities and bias velocities)
    p = state.ball_p + (state.ball_v + state.v_bias) * dt
    angle = state.ball_angle + (state.ball_w + state.w_bias) * dt
    v_prev, w_prev = state.ball_v, state.ball_w

    # 2. contacts (circle = shape a, segment = shape b; n points from the ball to the segment)
    idx = contact_shapes(p[0], n)
    A, B, rs = segments(state.piston_y, n, idx)
    seg = B - A
    t = jnp.clip(jnp.sum(seg * (p - A), -1) / jnp.sum(seg * seg, -1), 0.0, 1.0)
    closest = A + seg * t[:, None]
    delta = closest - p
    dist_c = jnp.sqrt(jnp.sum(delta * delta, -1))
    active = dist_c < BALL_R + rs
    normal = delta / jnp.maximum(dist_c, 1e-12)[:, None]
    depth = dist_c - (BALL_R + rs)  # < 0 when overlapping
    r1 = normal * BALL_R  # contact point on the ball, relative to its centre
    bias = -beta * jnp.minimum(0.0, depth + COLLISION_SLOP) / dt
    rn = _cross(r1, normal)
    rt = _cross(r1, _perp(normal))
    n_mass = 1.0 / (m_inv + i_inv * rn * rn)
    t_mass = 1.0 / (m_inv + i_inv * rt * rt)
    vel_at = lambda v, w: v[None, :] + _perp(r1) * w  # ball velocity at each contact point
    bounce = jnp.sum(-vel_at(v_prev, w_prev) * normal, -1) * e

    # 3. velocities
    v = v_prev + jnp.array([0.0, GRAVITY], jnp.float32) * dt
    w = w_prev

    # 4. warm start from the previous physics step's accumulated impulses
    cont = active & state.touching[idx]
    jn0 = jnp.where(cont, state.jn[idx], 0.0)
    jt0 = jnp.where(cont, state.jt[idx], 0.0)
    j_warm = normal * jn0[:, None] + _perp(normal) * jt0[:, None]  # impulse on the segment
    v = v - jnp.sum(j_warm, 0) * m_inv
    w = w - jnp.sum(_cross(r1, j_warm)) * i_inv

    # 5. sequential impulses (Gauss-Seidel over contacts, ITERATIONS sweeps)
    def contact(k, carry):
        v, w, vb, wb, jn, jt, jb = carry
        nk, r1k, on = normal[k], r1[k], active[k]
        vr = -(v + _perp(r1k) * w)  # segment (at rest) minus ball
        vbr = -(vb + _perp(r1k) * wb)
        vrn, vrt, vbn = jnp.dot(vr, nk), jnp.dot(vr, _perp(nk)), jnp.dot(vbr, nk)
        jb_new = jnp.maximum(jb[k] + (bias[k] - vbn) * n_mass[k], 0.0)
        jn_new = jnp.maximum(jn[k] - (bounce[k] + vrn) * n_mass[k], 0.0)
        jt_max = mu * jn_new
        jt_new = jnp.clip(jt[k] - vrt * t_mass[k], -jt_max, jt_max)
        d_jb = jnp.where(on, jb_new - jb[k], 0.0)
        d_j = jnp.where(on, 1.0, 0.0) * (nk * (jn_new - jn[k]) + _perp(nk) * (jt_new - jt[k]))
        vb = vb - nk * d_jb * m_inv
        wb = wb - _cross(r1k, nk * d_jb) * i_inv
        v = v - d_j * m_inv
        w = w - _cross(r1k, d_j) * i_inv
        jn = jn.at[k].set(jnp.where(on, jn_new, 0.0))
        jt = jt.at[k].set(jnp.where(on, jt_new, 0.0))
        jb = jb.at[k].set(jnp.where(on, jb_new, 0.0))
        return v, w, vb, wb, jn, jt, jb

    n_c = idx.shape[0]
    sweep = lambda _, c: jax.lax.fori_loop(0, n_c, contact, c)
    carry = (v, w, jnp.zeros(2, jnp.float32), jnp.float32(0.0), jn0, jt0, jnp.zeros(n_c, jnp.float32))
    v, w, vb, wb, jn, jt, _ = jax.lax.fori_loop(0, ITERATIONS, sweep, carry)

    n_shapes = n + 4
    touching = jnp.zeros(n_shapes, bool).at[idx].set(active)
    return state.replace(
        ball_p=p, ball_v=v, ball_angle=angle, ball_w=w, v_bias=vb, w_bias=wb,
        jn=jnp.zeros(n_shapes, jnp.float32).at[idx].set(jn),
        jt=jnp.zeros(n_shapes, jnp.float32).at[idx].set(jt),
        touching=touching,
    )


def nearest_piston(ball_x: jax.Array, n: int) -> jax.Array:
    """PettingZoo's closest piston to ``int(ball_x - 40)``: argmin over i of ``|45 + 40 i - x|``
    (first on ties), int32."""
    x = jnp.floor(ball_x - BALL_R)
    left = WALL + PISTON_R + PISTON_W * jnp.arange(n, dtype=jnp.float32)
    return jnp.argmin(jnp.abs(left - x)).astype(jnp.int32)


class Pistonball(environment.Environment[PistonballState, PistonballParams]):
    """Centrally controlled Pistonball; dynamics, reward and rules in the module docstring.

    Static structure on the instance: ``n_pistons``, ``constrained_mask`` ((n,) bool),
    ``constrained``, ``rules`` ("iar" or "v6"), ``invalid`` ("all_down" or "execute"),
    ``obs_type`` ("vector" or "image"). Contracts (``envs_jax.contracts``): ``ValidMask``,
    ``Costs`` (one cost: 1 for an invalid action).
    """

    num_costs = 1

    def __init__(
        self,
        n_pistons: int,
        constrained_pistons=None,
        *,
        rules: str = "iar",
        invalid: str = "all_down",
        obs_type: str = "vector",
        name: str = "Pistonball",
        default_params: PistonballParams | None = None,
    ):
        super().__init__()
        if int(n_pistons) < 2:
            raise ValueError(f"n_pistons must be >= 2 (PettingZoo asserts it), got {n_pistons}")
        if rules not in ("iar", "v6"):
            raise ValueError(f"rules must be 'iar' (pistonball_v4, the IAR original) or 'v6', got {rules!r}")
        if invalid not in ("all_down", "execute"):
            raise ValueError(f"invalid must be 'all_down' (the original) or 'execute', got {invalid!r}")
        if obs_type not in ("vector", "image"):
            raise ValueError(f"obs_type must be 'vector' or 'image', got {obs_type!r}")
        self.n_pistons = int(n_pistons)
        mask = np.zeros(self.n_pistons, bool)
        if constrained_pistons is not None:
            idx = np.asarray(constrained_pistons, dtype=np.int64).reshape(-1)
            if ((idx < 0) | (idx >= self.n_pistons)).any():
                raise ValueError(f"constrained_pistons must lie in [0, {self.n_pistons}), got {idx.tolist()}")
            mask[idx] = True
        self.constrained_mask = mask
        self.constrained = bool(mask.any())
        self.rules, self.invalid, self.obs_type = rules, invalid, obs_type
        self.width = 2 * WALL + PISTON_W * self.n_pistons
        self._name = name
        self._default_params = PistonballParams() if default_params is None else default_params

    # ------------------------------------------------------------------ gymnax surface
    @property
    def default_params(self) -> PistonballParams:
        return self._default_params

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        """Joint actions, ``3 ** n``."""
        return 3**self.n_pistons

    def action_space(self, params: PistonballParams | None = None) -> MultiDiscrete:
        return MultiDiscrete([3] * self.n_pistons)

    def observation_space(self, params: PistonballParams | None = None) -> spaces.Box:
        if self.obs_type == "image":
            return spaces.Box(0.0, 1.0, (IMAGE_SIZE, IMAGE_SIZE, 1), jnp.float32)
        return spaces.Box(-1e3, 1e3, (5 + 2 * self.n_pistons,), jnp.float32)

    def state_space(self, params: PistonballParams | None = None) -> spaces.Dict:
        params = self.default_params if params is None else params
        n, big = self.n_pistons, 1e6
        box = lambda shape, lo=-big, hi=big: spaces.Box(lo, hi, shape, jnp.float32)
        return spaces.Dict(
            {
                "piston_y": box((n,), Y_MIN, Y_MAX),
                "ball_p": box((2,)), "ball_v": box((2,)), "ball_angle": box(()), "ball_w": box(()),
                "v_bias": box((2,)), "w_bias": box(()), "jn": box((n + 4,), 0.0, big), "jt": box((n + 4,)),
                "touching": spaces.Box(0, 1, (n + 4,), jnp.bool_),
                "last_x": spaces.Box(-big, big, (), jnp.int32),
                "distance": box(()),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )

    def ball_left_x(self, state: PistonballState) -> jax.Array:
        """x = int(ball_x - 40) (``rules="v6"``: clipped at the wall, 40), int32."""
        x = jnp.floor(state.ball_p[0] - BALL_R).astype(jnp.int32)
        return jnp.maximum(x, WALL) if self.rules == "v6" else x

    def is_terminated(self, state: PistonballState, params: PistonballParams) -> jax.Array:
        x = self.ball_left_x(state).astype(jnp.float32)
        if self.rules == "v6":
            x = x + state.ball_v[0] * DT
        return x <= WALL + 1

    def left_of_ball(self, state: PistonballState) -> jax.Array:
        """(n,) bool: piston i is left of the ball's nearby pistons (``i < k0``)."""
        k0 = jnp.maximum(nearest_piston(state.ball_p[0], self.n_pistons) - 1, 0)
        return jnp.arange(self.n_pistons) < k0

    def get_obs(self, state: PistonballState, params: PistonballParams | None = None, key=None) -> jax.Array:
        if self.obs_type == "image":
            return self.render_image(state)
        ball = jnp.stack([
            state.ball_p[0] / self.width, state.ball_p[1] / SCREEN_H,
            state.ball_v[0] / 1000.0, state.ball_v[1] / 1000.0, state.ball_w / (6 * math.pi),
        ])
        heights = (state.piston_y - Y_MIN) / (Y_MAX - Y_MIN)
        return jnp.concatenate([ball, heights, self.left_of_ball(state).astype(jnp.float32)]).astype(jnp.float32)

    # ------------------------------------------------------------------ constraint
    def is_valid(self, state: PistonballState, action: jax.Array, params: PistonballParams) -> jax.Array:
        """() bool: ``action`` (n,) is in range and (constrained ids) no constrained piston left
        of the ball moves up. Pure, jittable, vmappable."""
        a = jnp.asarray(action).astype(jnp.int32).reshape(self.n_pistons)
        ok = jnp.all((a >= 0) & (a < 3))
        if self.constrained:
            up_left = (a == 2) & self.left_of_ball(state) & jnp.asarray(self.constrained_mask)
            ok = ok & ~jnp.any(up_left)
        return ok

    def valid_mask(self, state: PistonballState, actions: jax.Array, params: PistonballParams) -> jax.Array:
        """``is_valid`` of ``actions`` (S, n) in one state -> (S,) bool."""
        return jax.vmap(self.is_valid, in_axes=(None, 0, None))(state, actions, params)

    def all_actions(self) -> jax.Array:
        """(3 ** n, n) int32 every joint action, piston 0 the most significant digit."""
        grids = np.indices((3,) * self.n_pistons).reshape(self.n_pistons, -1).T
        return jnp.asarray(grids, dtype=jnp.int32)

    # ------------------------------------------------------------------ dynamics
    def physics(self, state: PistonballState, action: jax.Array, params: PistonballParams) -> PistonballState:
        """Move piston i then take one physics step, i = 0..n-1 (PettingZoo's AEC cycle)."""

        def agent_turn(i, s):
            y = jnp.clip(s.piston_y[i] + PX_PER_POS * (1 - action[i]), Y_MIN, Y_MAX)
            return chipmunk_step(s.replace(piston_y=s.piston_y.at[i].set(y)), params, self.n_pistons)

        return jax.lax.fori_loop(0, self.n_pistons, agent_turn, state)

    def step_env(self, key, state: PistonballState, action, params: PistonballParams):
        """One env step (n physics steps); ``info``: ``valid`` (bool), ``violation`` and ``cost``
        (float32, 1.0 for an invalid action), ``ball_x`` (float32, the ball's centre)."""
        a = jnp.asarray(action).astype(jnp.int32).reshape(self.n_pistons)
        valid = self.is_valid(state, a, params)
        a = jnp.clip(a, 0, 2)
        if self.constrained and self.invalid == "all_down":
            a = jnp.where(valid, a, 0)
        s = self.physics(state, a, params)
        x = self.ball_left_x(s)
        s = s.replace(last_x=x, time=state.time + 1)
        terminated = self.is_terminated(s, params)
        reward = (state.last_x - x).astype(jnp.float32) * (100.0 / state.distance)
        reward = reward + jnp.where(terminated, 0.0, params.time_penalty)
        violation = jnp.where(valid, 0.0, 1.0).astype(jnp.float32)
        info = {"valid": valid, "violation": violation, "cost": violation, "ball_x": s.ball_p[0]}
        return self.get_obs(s, params), s, reward.astype(jnp.float32), terminated, info

    def state_from(
        self, piston_y, ball_p, ball_w=0.0, ball_v=(0.0, 0.0), ball_angle=0.0,
    ) -> PistonballState:
        """A fresh episode's state at given positions (as after PettingZoo's reset)."""
        n = self.n_pistons
        ball_p = jnp.asarray(ball_p, jnp.float32).reshape(2)
        state = PistonballState(
            piston_y=jnp.asarray(piston_y, jnp.float32).reshape(n),
            ball_p=ball_p,
            ball_v=jnp.asarray(ball_v, jnp.float32).reshape(2),
            ball_angle=jnp.float32(ball_angle), ball_w=jnp.float32(ball_w),
            v_bias=jnp.zeros(2, jnp.float32), w_bias=jnp.float32(0.0),
            jn=jnp.zeros(n + 4, jnp.float32), jt=jnp.zeros(n + 4, jnp.float32),
            touching=jnp.zeros(n + 4, bool),
            last_x=jnp.int32(0), distance=jnp.float32(1.0), time=jnp.int32(0),
        )
        x0 = self.ball_left_x(state)
        return state.replace(last_x=x0, distance=(x0 - WALL).astype(jnp.float32))

    def reset_env(self, key, params: PistonballParams):
        """PettingZoo's reset: pistons at ``491 - 4 k``, ``k ~ U{0..7}`` (lower half); ball at
        ``x = W - 110 + h`` (at least 81), ``y = 410 + v``, ``h ~ U{-30..30}``, ``v ~ U{-15..15}``
        (0 without ``random_drop``), spin ``~ U(-6 pi, 6 pi)`` (0 without ``random_rotate``), at rest."""
        n = self.n_pistons
        u = jax.random.uniform(key, (n + 3,))  # one draw, split into the integer and real variates
        k = jnp.minimum(jnp.floor(u[:n] * (N_POS // 2)), N_POS // 2 - 1)
        piston_y = Y_MAX - PX_PER_POS * k
        h = jnp.minimum(jnp.floor(u[n] * 61.0), 60.0) - 30.0
        v = jnp.minimum(jnp.floor(u[n + 1] * 31.0), 30.0) - 15.0
        h, v = jnp.where(params.random_drop, h, 0.0), jnp.where(params.random_drop, v, 0.0)
        x = jnp.maximum(self.width - WALL - BALL_R - 30.0 + h, WALL + BALL_R + 1.0)
        y = SCREEN_H - WALL - 23.0 - BALL_R - 0.5 * PX_PER_POS * N_POS - 15.0 + v
        w = jnp.where(params.random_rotate, (2.0 * u[n + 2] - 1.0) * 6 * math.pi, 0.0)
        state = self.state_from(piston_y, jnp.stack([x, y]), ball_w=w)
        return self.get_obs(state, params), state

    # ------------------------------------------------------------------ image
    def render_image(self, state: PistonballState, size: int = IMAGE_SIZE, supersample: int = 4) -> jax.Array:
        """Grayscale screen, area-averaged to ``(size, size, 1)`` in [0, 1] (module docstring)."""
        W, H = float(self.width), float(SCREEN_H)
        ss = supersample
        ys = (jnp.arange(size * ss, dtype=jnp.float32) + 0.5) * (H / (size * ss))
        xs = (jnp.arange(size * ss, dtype=jnp.float32) + 0.5) * (W / (size * ss))
        X, Y = jnp.meshgrid(xs, ys)  # (size*ss, size*ss), row = y
        gray = lambda rgb: (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])
        inside = lambda x0, x1, y0, y1: (X >= x0) & (X < x1) & (Y >= y0) & (Y < y1)
        img = jnp.full(X.shape, gray((58, 64, 65)), jnp.float32)
        img = jnp.where(inside(WALL / 2, W - WALL / 2, WALL / 2, H - WALL / 2), gray((68, 76, 77)), img)
        img = jnp.where(inside(WALL, W - WALL, WALL, H - WALL - 23), 255.0, img)  # render_rect
        blue = gray((65, 159, 221))
        bx, by = jnp.floor(state.ball_p[0]), jnp.floor(state.ball_p[1])
        img = jnp.where((X - bx) ** 2 + (Y - by) ** 2 <= BALL_R**2, blue, img)
        # spin marker: a 3 px line from the centre along the ball's angle
        d = jnp.stack([jnp.cos(state.ball_angle), jnp.sin(state.ball_angle)])
        along = (X - bx) * d[0] + (Y - by) * d[1]
        across = jnp.abs(-(X - bx) * d[1] + (Y - by) * d[0])
        img = jnp.where((along >= 0) & (along <= BALL_R - 1) & (across <= 1.5), gray((58, 64, 65)), img)
        for i in range(self.n_pistons):  # piston bodies (sprite mean gray 207), rods, heads (147)
            x0, py = WALL + PISTON_W * i, state.piston_y[i]
            img = jnp.where(inside(x0, x0 + PISTON_W, H - WALL - 23, H - WALL), 207.4, img)
            img = jnp.where(inside(x0 + PISTON_R + 6, x0 + PISTON_R + 24, py + 6, H - WALL - 6), blue, img)
            img = jnp.where(inside(x0, x0 + PISTON_W, py - PISTON_R, py + 6), 146.6, img)
        img = img.reshape(size, ss, size, ss).mean(axis=(1, 3)) / 255.0
        return img[:, :, None]


def make_pistonball(
    version: str = "v1",
    *,
    rules: str = "iar",
    invalid: str = "all_down",
    obs_type: str = "vector",
    n_pistons: int | None = None,
    constrained_pistons=None,
    **param_overrides,
) -> tuple[Pistonball, PistonballParams]:
    """``(env, params)`` for ``Pistonball-{version}``, version in ``v1, v2, v3, cstr-v1,
    cstr-v2`` (module docstring); ``n_pistons`` / ``constrained_pistons`` override the
    version's; other keywords override :class:`PistonballParams` fields."""
    if version not in VERSIONS:
        raise ValueError(f"Pistonball version must be one of {sorted(VERSIONS)}, got {version!r}")
    n, cstr = VERSIONS[version]
    n = n if n_pistons is None else int(n_pistons)
    cstr = cstr if constrained_pistons is None else constrained_pistons
    fields = set(PistonballParams.__dataclass_fields__)
    unknown = sorted(set(param_overrides) - fields)
    if unknown:
        raise ValueError(f"unknown Pistonball parameter(s) {unknown}; known: {sorted(fields)}")
    params = PistonballParams(**param_overrides)
    if params.ball_mass <= 0 or params.ball_friction < 0 or params.ball_elasticity < 0:
        raise ValueError("ball_mass must be > 0, ball_friction and ball_elasticity >= 0")
    env = Pistonball(
        n, cstr, rules=rules, invalid=invalid, obs_type=obs_type,
        name=f"Pistonball-image-{version}" if obs_type == "image" else f"Pistonball-{version}",  # registry ids
        default_params=params,
    )
    return env, params
