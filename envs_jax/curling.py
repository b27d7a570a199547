"""Curling hammer shot (``MU-curling``): the last stone of an end, pure JAX, jittable, vmappable.

The domain of Yee, Lisy and Bowling (IJCAI 2016, "Monte Carlo Tree Search in Continuous
Action Spaces with Execution Uncertainty"), Ahmad, Holte and Bowling (IJCAI 2016, "Action
Selection for Hammer Shots in Curling") and of the curling experiments of Ahmad, Lelis and
Bowling (NeurIPS 2020, marginal utility). A state is the stones left in play before the
hammer (up to 7 of the thrower's, up to 8 of the opponent's); one action throws the 16th
stone; the reward is the end's score for the thrower (``-8 .. 8``). One-step gymnax episode,
as the other MU domains (``envs_jax.mu_domains``), with the ``CandidateDomain`` functions.

Geometry (metres; World Curling rules). The stone is released at the origin ``(0, 0)`` (the
hack's centre line) heading along ``+y``; ``x`` is lateral. Button (tee) at ``(0, 38.405)``
(hack to tee, 126 ft); far hog line ``y = 32.004`` (21 ft before the tee); back line
``y = 40.234`` (6 ft behind the tee); side lines ``|x| = 2.375`` (sheet 4.75 m wide); house
radius 1.829 m (6 ft); stone radius 0.145 m (0.914 m circumference), equal masses.

Action (``float32 [3]`` in ``[0, 1]^3``, the MU domains' normalised convention):
``v = v_min + a_0 (v_max - v_min)`` release speed (m/s), ``theta = -theta_max + 2 a_1
theta_max`` release angle (rad, positive toward ``+x``), turn ``s = +1`` (counter-clockwise,
curls toward ``-x``) if ``a_2 >= 0.5`` else ``s = -1`` (clockwise, curls toward ``+x``).
Execution noise (on velocity and angle, never on the turn): ``v + sigma_v eps_v``,
``theta + sigma_theta eps_theta`` with ``eps`` standard normal (``noise_df = 0``) or Student-t
with ``noise_df`` degrees of freedom (Ahmad et al. 2016 use a heavy-tailed Student-t fitted to
Olympic players; the papers' noise parameters are not published in what we could read, so
``sigma_v`` = 0.015 m/s (about 0.45 m of length on a draw) and ``sigma_theta`` = 0.004 rad
(about 0.15 m of line at the house) are ours).

Stone motion (our closed-form model; the papers' simulator is Chipmunk 2-D with a curl model
after Denny 2002 / Jensen and Shegelski 2004, whose constants are not published). Friction
of constant magnitude whose component along the motion decelerates at ``a`` (``mu g``) and
whose lateral component is ``s k a`` (the curl), so with speed ``u`` and heading ``phi``::

    du/dt = -a,    dphi/dt = s k a / u       (heading turns fastest as the stone slows)

Written with complex positions ``z = x + i y`` this integrates exactly: from speed ``u`` and
heading ``phi`` to speed ``u' = max(u - a dt, 0)``::

    z' - z = e^{i phi} (u^2 - u'^2 e^{i s k ln(u / u')}) / (a (2 - i s k))
    phi'   = phi + s k ln(u / u')

A lone stone therefore stops at ``z_stop = e^{i phi_0} v^2 / (a (2 - i s k))``: distance
``v^2 / (a sqrt(4 + k^2))`` at angle ``s atan(k / 2)`` (counter-clockwise) from the release heading (the
draw's curl). ``a`` = 0.0797 m/s^2 gives 14 s hog-to-hog for a draw to the button (a usual
ice speed); ``k`` = 0.05 curls a draw to the button by about 0.96 m. Struck stones get no
spin (``s = 0``: they slide straight); the thrower keeps its spin.

Integration: free motion is exact (above), so the step only has to catch contacts. The
thrown stone is moved analytically to ``y_gate`` (``2 R`` before the nearest stone or the far
hog line, whichever comes first); then a ``lax.while_loop`` steps every stone by
``dt = clip(max_move / max speed, dt_min, dt_max)`` (a stone moves at most ``max_move`` per
step), resolves contacts and removes stones, until all stones rest or ``max_steps``.

Collisions: equal-mass discs, frictionless contact, impulse along the line of centres with
restitution ``e`` (``restitution``): for each overlapping pair ``(i, j)`` approaching along
``n = (p_j - p_i)/|p_j - p_i|``, ``J = (1 + e)/2 max(0, -(v_j - v_i).n)``, ``v_i -= J n``,
``v_j += J n`` (all pairs at once: every impulse acts on two stones with opposite signs, so
momentum is conserved exactly); overlaps are then pushed apart along ``n`` (half each).

Out of play: a stone is removed when it touches a side line (``|x| + R > 2.375``) or has
completely crossed the back line (``y - R > 40.234``); at rest, a stone not completely beyond
the far hog line (``y - R < 32.004``) is removed (the hog-line rule; only the thrown stone
can end there).

Scoring (standard rules): a stone counts if any part of it is in the house
(``|p - button| <= 1.829 + R``); the team with the counting stone nearest the button scores
one point per counting stone nearer than the other team's nearest counting stone. The
reward is that score, positive when the thrower scores.

Test positions (our choice: Ahmad et al. 2016 used 397 tuning and 515 test hammer-shot
positions recorded at the 2010 Olympics, not published): the thrower has ``U{0..max_own}`` stones and the opponent ``U{1..max_opp}``, each
placed in the house (probability ``p_house``, uniform on the disc of radius 1.829 m around
the button) or as a guard (uniform on ``|x| <= 1.2``, ``32.004 + R <= y <= 36.576 - R``, the
free-guard zone), without overlap (first of ``placement_tries`` draws that overlaps no
placed stone; a stone none of whose draws fit is left out).

Slots: stone 0 is the thrown stone, 1..7 the thrower's, 8..15 the opponent's (``N_STONES`` =
16). Observation ``float32 [15, 4]``: per stone in place ``(x, y - y_tee, own, in play)`` in
metres (out-of-play rows are zero).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

# --- sheet geometry (m) --------------------------------------------------------------
STONE_RADIUS = 0.145
HOUSE_RADIUS = 1.829
TEE_Y = 38.405  # hack (release point) to tee
HOG_Y = TEE_Y - 6.401  # far hog line, 21 ft before the tee
BACK_Y = TEE_Y + 1.829  # back line, 6 ft behind the tee
HALF_WIDTH = 2.375  # sheet 4.75 m wide
HOUSE_FRONT_Y = TEE_Y - HOUSE_RADIUS
N_OWN, N_OPP = 7, 8  # stones already thrown by the hammer team / the other team
N_STONES = 1 + N_OWN + N_OPP
TEAM = jnp.asarray([0] * (1 + N_OWN) + [1] * N_OPP, jnp.int32)  # 0 thrower, 1 opponent


@struct.dataclass
class CurlingParams:
    decel: float = 0.0797  # a = mu g (m/s^2): 14 s hog-to-hog for a draw to the button
    curl: float = 0.05  # k: lateral / longitudinal friction ratio (draw curls ~0.96 m)
    restitution: float = 0.9  # e of stone-stone impacts
    v_min: float = 2.0  # release speed range (m/s): short of the hog line .. hard takeout
    v_max: float = 4.0
    theta_max: float = 0.08  # release angle range [-theta_max, theta_max] (rad)
    sigma_v: float = 0.015  # execution noise std on the speed (m/s)
    sigma_theta: float = 0.004  # execution noise std on the angle (rad)
    noise_df: float = 0.0  # 0: Gaussian noise; > 0: Student-t with this many degrees of freedom
    max_own: int = 3  # test positions: thrower's stones ~ U{0..max_own}
    max_opp: int = 4  # opponent's stones ~ U{1..max_opp}
    p_house: float = 0.7  # probability a placed stone is in the house (else a guard)
    max_move: float = 0.02  # integrator: most a stone moves in one step (m)
    dt_min: float = 1e-3
    dt_max: float = 0.1
    max_steps_in_episode: int = 1  # one throw per episode


@struct.dataclass
class CurlingState:
    pos: jax.Array  # [16, 2] stone centres (slot 0, the thrown stone, is unused before the throw)
    active: jax.Array  # [16] bool, stone in play
    time: int = 0


# --------------------------------------------------------------------------------------
# Motion model
# --------------------------------------------------------------------------------------


def free_motion(pos, vel, spin, dt, decel, curl):
    """Exact motion of non-touching stones over ``dt`` (module docstring's closed form).

    ``pos, vel [..., 2]``, ``spin [...]`` in {-1, 0, 1}; returns ``(pos', vel')``.
    """
    u = jnp.sqrt(jnp.sum(vel**2, -1))
    phi = jnp.arctan2(vel[..., 1], vel[..., 0])
    u_new = jnp.maximum(u - decel * dt, 0.0)
    moving = u > 0
    safe_u = jnp.where(moving, u, 1.0)
    ratio = jnp.where(u_new > 0, u_new / safe_u, 1.0)
    sk = spin * curl
    turn = jnp.where(u_new > 0, -sk * jnp.log(ratio), 0.0)  # s k ln(u / u')
    # z' - z = e^{i phi} (u^2 - u'^2 e^{i turn}) / (a (2 - i s k))
    num_re = u**2 - u_new**2 * jnp.cos(turn)
    num_im = -(u_new**2) * jnp.sin(turn)
    den = decel * (4.0 + sk**2)  # 1 / (2 - i sk) = (2 + i sk) / (4 + sk^2)
    q_re = (num_re * 2.0 - num_im * sk) / den
    q_im = (num_re * sk + num_im * 2.0) / den
    c, s = jnp.cos(phi), jnp.sin(phi)
    dz = jnp.stack([c * q_re - s * q_im, s * q_re + c * q_im], -1)
    dz = jnp.where(moving[..., None], dz, 0.0)
    phi_new = phi + turn
    vel_new = u_new[..., None] * jnp.stack([jnp.cos(phi_new), jnp.sin(phi_new)], -1)
    return pos + dz, vel_new


def lone_stop(v0, theta, spin, decel, curl):
    """Resting point ``[2]`` of a lone stone released at the origin (closed form)."""
    phi0 = math.pi / 2 - theta
    sk = spin * curl
    scale = v0**2 / (decel * (4.0 + sk**2))
    q = jnp.stack([2.0 * scale, sk * scale])  # v^2 / (a (2 - i sk))
    c, s = jnp.cos(phi0), jnp.sin(phi0)
    return jnp.stack([c * q[0] - s * q[1], s * q[0] + c * q[1]])


def _state_at_speed(v0, theta, spin, u, decel, curl):
    """Position and velocity of a lone stone when its speed has fallen to ``u``."""
    phi0 = math.pi / 2 - theta
    vel0 = v0 * jnp.stack([jnp.cos(phi0), jnp.sin(phi0)])
    dt = (v0 - u) / decel
    return free_motion(jnp.zeros(2), vel0, spin, dt, decel, curl)


def release(v0, theta, spin, y_gate, decel, curl, iters: int = 40):
    """Thrown stone moved analytically to ``y = y_gate`` (bisection on the speed there), or
    to its resting point if it stops before. Returns ``(pos [2], vel [2])``."""
    stop = lone_stop(v0, theta, spin, decel, curl)
    reaches = stop[1] > y_gate

    def body(_, lo_hi):
        lo, hi = lo_hi  # speed bracket: y(lo) >= y_gate > y(hi)
        mid = 0.5 * (lo + hi)
        y_mid = _state_at_speed(v0, theta, spin, mid, decel, curl)[0][1]
        return jnp.where(y_mid >= y_gate, mid, lo), jnp.where(y_mid >= y_gate, hi, mid)

    lo, _ = jax.lax.fori_loop(0, iters, body, (jnp.zeros(()), jnp.asarray(v0, jnp.float32)))
    pos, vel = _state_at_speed(v0, theta, spin, lo, decel, curl)
    return jnp.where(reaches, pos, stop), jnp.where(reaches, vel, 0.0)


def collide(pos, vel, active, restitution):
    """All contacts at once (module docstring): impulses along the line of centres, then the
    overlaps pushed apart. ``pos, vel [N, 2]``, ``active [N]``; returns ``(pos', vel', hit [N])``."""
    d = pos[None, :, :] - pos[:, None, :]  # d_ij = p_j - p_i
    dist = jnp.sqrt(jnp.sum(d**2, -1) + 1e-12)
    n = d / dist[..., None]
    pair = active[:, None] & active[None, :] & ~jnp.eye(pos.shape[0], dtype=bool)
    touching = pair & (dist < 2 * STONE_RADIUS)
    v_rel_n = jnp.sum((vel[None, :, :] - vel[:, None, :]) * n, -1)  # (v_j - v_i) . n_ij
    J = jnp.where(touching, 0.5 * (1.0 + restitution) * jnp.maximum(-v_rel_n, 0.0), 0.0)
    vel = vel - jnp.sum(J[..., None] * n, axis=1)
    overlap = jnp.where(touching, 2 * STONE_RADIUS - dist, 0.0)
    pos = pos - jnp.sum(0.5 * overlap[..., None] * n, axis=1)
    return pos, vel, (J > 0).any(1)


def in_play_bounds(pos):
    """Stones still on the sheet: not touching a side line, not completely past the back line."""
    return (jnp.abs(pos[..., 0]) + STONE_RADIUS <= HALF_WIDTH) & (pos[..., 1] - STONE_RADIUS <= BACK_Y)


def simulate(pos, active, v0, theta, turn, params: CurlingParams, max_steps: int = 4000):
    """Throw stone 0 with speed ``v0``, angle ``theta``, spin ``turn`` (+-1) into the stones
    ``pos [16, 2]`` (``active [16]``; slot 0 ignored) and run until every stone rests.

    Returns ``(pos [16, 2], active [16], steps)``: the resting position of every stone and
    which are still in play (hog-line rule applied).
    """
    R = STONE_RADIUS
    others = active.at[0].set(False)
    nearest_y = jnp.min(jnp.where(others, pos[:, 1], jnp.inf))
    y_gate = jnp.minimum(HOG_Y, nearest_y) - 2 * R - 1e-3
    p0, v0vec = release(v0, theta, turn, y_gate, params.decel, params.curl)
    pos = pos.at[0].set(p0)
    vel = jnp.zeros_like(pos).at[0].set(v0vec)
    spin = jnp.zeros(pos.shape[0]).at[0].set(turn)
    active = others.at[0].set(True)
    active = active & in_play_bounds(pos)

    def cond(c):
        _, vel, active, i = c
        return (i < max_steps) & jnp.any(active & (jnp.sum(vel**2, -1) > 0))

    def body(c):
        pos, vel, active, i = c
        speed = jnp.sqrt(jnp.sum(vel**2, -1))
        vmax = jnp.max(jnp.where(active, speed, 0.0))
        dt = jnp.clip(params.max_move / jnp.maximum(vmax, 1e-6), params.dt_min, params.dt_max)
        pos, vel = free_motion(pos, vel, spin, dt, params.decel, params.curl)
        pos, vel, _ = collide(pos, vel, active, params.restitution)
        active = active & in_play_bounds(pos)
        vel = jnp.where(active[:, None], vel, 0.0)
        return pos, vel, active, i + 1

    pos, vel, active, steps = jax.lax.while_loop(cond, body, (pos, vel, active, jnp.asarray(0)))
    active = active & (pos[:, 1] - R >= HOG_Y)
    return pos, active, steps


def score(pos, active, team=TEAM):
    """End score for team 0 (the thrower): ``pos [N, 2]``, ``active [N]`` (module docstring)."""
    d = jnp.sqrt(jnp.sum((pos - jnp.asarray([0.0, TEE_Y])) ** 2, -1))
    counts = active & (d <= HOUSE_RADIUS + STONE_RADIUS)
    d = jnp.where(counts, d, jnp.inf)
    best_own = jnp.min(jnp.where(team == 0, d, jnp.inf))
    best_opp = jnp.min(jnp.where(team == 1, d, jnp.inf))
    own_pts = jnp.sum((team == 0) & counts & (d < best_opp))
    opp_pts = jnp.sum((team == 1) & counts & (d < best_own))
    return (own_pts - opp_pts).astype(jnp.float32)


# --------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------


def decode_action(action, params: CurlingParams):
    """``[0, 1]^3`` action -> ``(v, theta, turn)`` (module docstring). Out-of-range values are clipped."""
    a = jnp.clip(jnp.asarray(action, jnp.float32), 0.0, 1.0)
    v = params.v_min + a[..., 0] * (params.v_max - params.v_min)
    theta = params.theta_max * (2.0 * a[..., 1] - 1.0)
    turn = jnp.where(a[..., 2] >= 0.5, 1.0, -1.0)
    return v, theta, turn


def encode_action(v, theta, turn, params: CurlingParams):
    """Inverse of ``decode_action`` (turn +1 -> 0.75, -1 -> 0.25); not clipped."""
    a0 = (v - params.v_min) / (params.v_max - params.v_min)
    a1 = 0.5 * (theta / params.theta_max + 1.0)
    a2 = jnp.where(turn > 0, 0.75, 0.25)
    return jnp.stack(jnp.broadcast_arrays(a0, a1, a2), -1).astype(jnp.float32)


def execution_noise(key, params: CurlingParams):
    """``(eps_v, eps_theta)``: standard normal, or Student-t when ``noise_df > 0``."""
    kn, kt = jax.random.split(key)
    normal = jax.random.normal(kn, (2,))
    df = jnp.maximum(params.noise_df, 1e-3)
    student = jax.random.t(kt, df, (2,))
    return jnp.where(params.noise_df > 0, student, normal)


def draw_action(target, turn, params: CurlingParams):
    """Noise-free ``(v, theta)`` that stops a lone stone of spin ``turn`` at ``target [2]``.

    Inverts ``lone_stop``: ``v^2 = a |z| sqrt(4 + k^2)``, heading ``arg z - s atan(k / 2)``.
    """
    sk = turn * params.curl
    r = jnp.sqrt(jnp.sum(target**2, -1))
    v = jnp.sqrt(params.decel * r * jnp.sqrt(4.0 + sk**2))
    phi0 = jnp.arctan2(target[..., 1], target[..., 0]) - jnp.arctan2(sk, 2.0)
    return v, math.pi / 2 - phi0


def hit_action(target, turn, speed, params: CurlingParams, iters: int = 40):
    """Noise-free ``(v, theta)`` whose lone stone passes through ``target [2]`` at ``speed``.

    Bisection on the release speed for ``|z(speed)| = |target|`` (``|z|`` grows with ``v``),
    then the heading that rotates ``z(speed)`` onto the target.
    """
    r = jnp.sqrt(jnp.sum(target**2, -1))

    def displacement(v):  # z(u = speed) for heading 0, as (re, im)
        pos, _ = free_motion(jnp.zeros(2), jnp.stack([v, 0.0]), turn, (v - speed) / params.decel, params.decel, params.curl)
        return pos

    def body(_, lo_hi):
        lo, hi = lo_hi
        mid = 0.5 * (lo + hi)
        far = jnp.sqrt(jnp.sum(displacement(mid) ** 2)) >= r
        return jnp.where(far, lo, mid), jnp.where(far, mid, hi)

    lo, hi = jax.lax.fori_loop(0, iters, body, (jnp.asarray(speed, jnp.float32), jnp.asarray(20.0, jnp.float32)))
    v = 0.5 * (lo + hi)
    z = displacement(v)
    phi0 = jnp.arctan2(target[1], target[0]) - jnp.arctan2(z[1], z[0])
    return v, math.pi / 2 - phi0


# --------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------


class CurlingHammer(environment.Environment):
    """The hammer shot (module docstring): gymnax API plus the ``CandidateDomain`` functions."""

    def __init__(self, placement_tries: int = 16, max_sim_steps: int = 4000):
        super().__init__()
        if placement_tries < 1 or max_sim_steps < 1:
            raise ValueError(f"curling needs placement_tries >= 1 and max_sim_steps >= 1, got {placement_tries}, {max_sim_steps}")
        self.placement_tries = placement_tries
        self.max_sim_steps = max_sim_steps

    # --- CandidateDomain ------------------------------------------------------------
    @property
    def action_spec(self) -> tuple[str, tuple[int]]:
        return ("continuous", (3,))

    def sample_state(self, key: jax.Array, params: CurlingParams) -> CurlingState:
        """A test position (module docstring, "Test positions")."""
        k_n, k_place = jax.random.split(key)
        k_own, k_opp = jax.random.split(k_n)
        n_own = jax.random.randint(k_own, (), 0, params.max_own + 1)
        n_opp = jax.random.randint(k_opp, (), 1, params.max_opp + 1)
        slot = jnp.arange(N_STONES)
        wanted = ((slot >= 1) & (slot <= n_own)) | ((slot > N_OWN) & (slot <= N_OWN + n_opp))
        tries = self.placement_tries

        def one(carry, inp):
            pos_all, act_all = carry
            i, k = inp
            kh, kr, kt, kg = jax.random.split(k, 4)
            in_house = jax.random.uniform(kh, (tries,)) < params.p_house
            rad = HOUSE_RADIUS * jnp.sqrt(jax.random.uniform(kr, (tries,)))
            ang = 2 * math.pi * jax.random.uniform(kt, (tries,))
            house = jnp.stack([rad * jnp.cos(ang), TEE_Y + rad * jnp.sin(ang)], -1)
            g = jax.random.uniform(kg, (tries, 2))
            guard_y = HOG_Y + STONE_RADIUS + 1e-3 + g[:, 1] * (HOUSE_FRONT_Y - HOG_Y - 2 * STONE_RADIUS - 2e-3)
            guard = jnp.stack([-1.2 + 2.4 * g[:, 0], guard_y], -1)
            cand = jnp.where(in_house[:, None], house, guard)
            d = jnp.sqrt(jnp.sum((cand[:, None, :] - pos_all[None, :, :]) ** 2, -1))
            free = ~jnp.any((d < 2 * STONE_RADIUS + 1e-3) & act_all[None, :], axis=1)
            ok = wanted[i] & free.any()
            p = jnp.where(ok, cand[jnp.argmax(free)], 0.0)
            return (pos_all.at[i].set(p), act_all.at[i].set(ok)), None

        init = (jnp.zeros((N_STONES, 2), jnp.float32), jnp.zeros(N_STONES, bool))
        keys = jax.random.split(k_place, N_STONES)
        (pos, active), _ = jax.lax.scan(one, init, (slot, keys))
        return CurlingState(pos=pos, active=active, time=0)

    def outcome(self, state: CurlingState, action: jax.Array, params: CurlingParams, noise=None):
        """Resting ``(pos [16, 2], active [16])`` after the throw; ``noise = (eps_v, eps_theta)``."""
        v, theta, turn = decode_action(action, params)
        if noise is not None:
            v = v + params.sigma_v * noise[0]
            theta = theta + params.sigma_theta * noise[1]
        pos, active, _ = simulate(state.pos, state.active, v, theta, turn, params, self.max_sim_steps)
        return pos, active

    def expected_reward(self, state: CurlingState, action: jax.Array, params: CurlingParams) -> jax.Array:
        """The score of the shot executed without noise (the deterministic outcome; the
        expectation over execution noise is ``mean_reward``)."""
        return score(*self.outcome(state, action, params))

    def noisy_reward(self, key: jax.Array, state: CurlingState, action: jax.Array, params: CurlingParams) -> jax.Array:
        """The score of the shot executed with one draw of execution noise."""
        return score(*self.outcome(state, action, params, execution_noise(key, params)))

    def mean_reward(self, key: jax.Array, state: CurlingState, action: jax.Array, params: CurlingParams, n: int = 64) -> jax.Array:
        """Monte Carlo ``E_noise[score]`` over ``n`` executions (the paper's measure of a shot)."""
        keys = jax.random.split(key, n)
        return jax.vmap(lambda k: self.noisy_reward(k, state, action, params))(keys).mean()

    # --- gymnax API -----------------------------------------------------------------
    @property
    def default_params(self) -> CurlingParams:
        return CurlingParams()

    def step_env(self, key, state, action, params):
        reward = self.noisy_reward(key, state, action, params)
        state = state.replace(time=state.time + 1)
        done = self.is_terminal(state, params)
        return jax.lax.stop_gradient(self.get_obs(state, params)), jax.lax.stop_gradient(state), reward, done, {}

    def reset_env(self, key, params):
        state = self.sample_state(key, params)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        """``float32 [15, 4]``: ``(x, y - y_tee, own, in play)`` per placed stone (slots 1..15)."""
        pos, act = state.pos[1:], state.active[1:]
        own = (TEAM[1:] == 0).astype(jnp.float32)
        rows = jnp.stack([pos[:, 0], pos[:, 1] - TEE_Y, own, jnp.ones_like(own)], -1)
        return jnp.where(act[:, None], rows, 0.0).astype(jnp.float32)

    def is_terminal(self, state, params) -> jax.Array:
        return jnp.asarray(state.time >= 1)

    @property
    def name(self) -> str:
        return "MU-curling"

    @property
    def num_actions(self) -> int:
        return 3  # action dimension (continuous)

    def action_space(self, params=None):
        return spaces.Box(0.0, 1.0, (3,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-BACK_Y, BACK_Y, (N_STONES - 1, 4), jnp.float32)

    def state_space(self, params=None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "pos": spaces.Box(-HALF_WIDTH, BACK_Y + STONE_RADIUS, (N_STONES, 2), jnp.float32),
                "active": spaces.Box(0, 1, (N_STONES,), jnp.bool_),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def make_curling(placement_tries: int = 16, max_sim_steps: int = 4000, **param_overrides):
    """Factory ``(env, env_params)`` for ``MU-curling``; keywords override ``CurlingParams``."""
    env = CurlingHammer(placement_tries, max_sim_steps)
    params = env.default_params
    unknown = sorted(set(param_overrides) - set(params.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for CurlingParams; known: {sorted(params.__dataclass_fields__)}")
    return env, params.replace(**param_overrides)
