"""MU-curling (envs_jax/curling.py) against independent references: a numpy RK4 integration of
the motion ODE, the closed-form two-disc impulse, mirror images, hand-scored positions."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs_jax import curling as C
from envs_jax import make

ENV, P = make("MU-curling")
EMPTY = C.CurlingState(pos=jnp.zeros((C.N_STONES, 2)), active=jnp.zeros(C.N_STONES, bool))


def _rk4_stop(v0, theta, s, a, k, dt=2e-3):
    """Resting point of du/dt = -a, dphi/dt = s k a / u (numpy RK4 in time, independent of
    the closed form). ``u`` is integrated as ``max(u, 1e-9)`` near the stop."""
    y = np.array([0.0, 0.0, v0, math.pi / 2 - theta])  # x, y, u, phi

    def f(y):
        u = max(y[2], 1e-9)
        return np.array([u * math.cos(y[3]), u * math.sin(y[3]), -a, s * k * a / u])

    t_stop = v0 / a
    n = int(t_stop / dt)
    for _ in range(n):
        k1 = f(y); k2 = f(y + dt / 2 * k1); k3 = f(y + dt / 2 * k2); k4 = f(y + dt * k3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    rest = t_stop - n * dt  # last partial step: the stone stops within it
    y[0] += y[2] * math.cos(y[3]) * rest / 2
    y[1] += y[2] * math.sin(y[3]) * rest / 2
    return y[:2]


_sim = jax.jit(lambda pos, act, v, th, s: C.simulate(pos, act, v, th, s, P))  # one compile, shared
_hit = jax.jit(C.hit_action)


@pytest.mark.parametrize("v0,theta,s", [(2.45, 0.0, 1.0), (2.45, 0.0, -1.0), (2.3, 0.03, 1.0), (2.5, -0.02, -1.0), (2.6, 0.0, 1.0)])
def test_lone_stone_stops_where_the_motion_ode_says(v0, theta, s):
    ref = _rk4_stop(v0, theta, s, P.decel, P.curl)
    pos, act, _ = _sim(EMPTY.pos, EMPTY.active, v0, theta, s)
    if ref[1] - C.STONE_RADIUS <= C.BACK_Y:  # at rest on the sheet (else removed in flight)
        np.testing.assert_allclose(np.asarray(pos[0]), ref, atol=5e-3)  # 5 mm after ~38 m
    # closed form: distance v^2 / (a sqrt(4 + k^2)), curl angle s atan(k/2) off the release line
    r = v0**2 / (P.decel * math.sqrt(4 + P.curl**2))
    ang = math.pi / 2 - theta + s * math.atan(P.curl / 2)
    np.testing.assert_allclose(ref, [r * math.cos(ang), r * math.sin(ang)], atol=5e-3)
    in_play = C.HOG_Y <= ref[1] - C.STONE_RADIUS <= C.BACK_Y and abs(ref[0]) + C.STONE_RADIUS <= C.HALF_WIDTH
    assert bool(act[0]) == in_play


def test_draw_to_the_button_curls_about_a_metre_and_takes_14_s_hog_to_hog():
    v, th = C.draw_action(jnp.asarray([0.0, C.TEE_Y]), 1.0, P)
    pos, act, _ = _sim(EMPTY.pos, EMPTY.active, v, th, 1.0)
    np.testing.assert_allclose(np.asarray(pos[0]), [0.0, C.TEE_Y], atol=5e-3)
    straight = _rk4_stop(float(v), float(th), 0.0, P.decel, 0.0)  # same release, no curl
    assert 0.8 < straight[0] - 0.0 < 1.1  # counter-clockwise curls toward -x: aim to +x
    a = P.decel  # hog-to-hog time of a draw to the tee: (v(near hog) - v(far hog)) / a
    d_near, d_far = C.TEE_Y - (C.HOG_Y - 21.945), C.TEE_Y - C.HOG_Y
    assert abs((math.sqrt(2 * a * d_near) - math.sqrt(2 * a * d_far)) / a - 14.0) < 0.2


def _two(p1, v1, p2, v2):
    pos = jnp.asarray([p1, p2], jnp.float32)
    vel = jnp.asarray([v1, v2], jnp.float32)
    return C.collide(pos, vel, jnp.ones(2, bool), P.restitution)


def test_head_on_impact_matches_the_restitution_law():
    e, u = P.restitution, 2.0
    pos, vel, hit = _two([0.0, 0.0], [0.0, u], [0.0, 2 * C.STONE_RADIUS - 1e-3], [0.0, 0.0])
    np.testing.assert_allclose(np.asarray(vel), [[0, (1 - e) / 2 * u], [0, (1 + e) / 2 * u]], atol=1e-5)
    assert bool(hit.all())
    np.testing.assert_allclose(np.asarray(vel.sum(0)), [0.0, u], atol=1e-5)  # momentum


@pytest.mark.parametrize("offset", [0.05, 0.15, 0.25])
def test_glancing_impact_conserves_momentum_and_loses_energy_by_restitution(offset):
    e = P.restitution
    u = np.array([0.3, 1.7])
    p2 = np.array([offset, math.sqrt((2 * C.STONE_RADIUS - 1e-3) ** 2 - offset**2)])
    pos, vel, _ = _two([0.0, 0.0], u, p2, [0.0, 0.0])
    vel = np.asarray(vel, np.float64)
    np.testing.assert_allclose(vel.sum(0), u, atol=1e-5)
    n = p2 / np.linalg.norm(p2)
    un = u @ n
    ke_before, ke_after = 0.5 * u @ u, 0.5 * (vel**2).sum()
    np.testing.assert_allclose(ke_before - ke_after, (1 - e**2) / 4 * un**2, atol=1e-5)
    np.testing.assert_allclose(vel[1], (1 + e) / 2 * un * n, atol=1e-5)  # struck stone leaves along n
    # overlap removed, centre of mass kept
    pos = np.asarray(pos)
    np.testing.assert_allclose(np.linalg.norm(pos[1] - pos[0]), 2 * C.STONE_RADIUS, atol=1e-5)
    np.testing.assert_allclose(pos.mean(0), p2 / 2, atol=1e-6)


def test_separating_or_distant_stones_get_no_impulse():
    _, vel, hit = _two([0.0, 0.0], [0.0, -1.0], [0.0, 0.28], [0.0, 0.0])  # overlapping, moving apart
    np.testing.assert_allclose(np.asarray(vel), [[0, -1], [0, 0]])
    _, vel, hit2 = _two([0.0, 0.0], [0.0, 1.0], [0.0, 0.5], [0.0, 0.0])
    assert not bool(hit.any()) and not bool(hit2.any())


def test_takeout_through_the_full_simulator_transfers_momentum_and_removes_the_stone():
    pos = EMPTY.pos.at[9].set(jnp.asarray([0.0, C.TEE_Y]))
    act = EMPTY.active.at[9].set(True)
    v, th = _hit(jnp.asarray([0.0, C.TEE_Y]), 1.0, 2.0, P)
    out, alive, _ = _sim(pos, act, v, th, 1.0)
    assert not bool(alive[9])  # struck at ~2 m/s: leaves through the back line
    assert bool(alive[0]) and abs(float(out[0, 1]) - C.TEE_Y) < 0.3  # hit-and-stay
    assert float(C.score(out, alive)) == 1.0


def _mirror(state):
    return state.replace(pos=state.pos * jnp.asarray([-1.0, 1.0]))


def _mirror_case(st, turn, speed):
    target = st.pos[int(np.argmax(np.asarray(st.active)))]
    v, th = _hit(target, turn, speed, P)
    a = _sim(st.pos, st.active, v, th, turn)
    b = _sim(st.pos * jnp.asarray([-1.0, 1.0]), st.active, v, -th, -turn)
    np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))
    live = np.asarray(a[1])
    np.testing.assert_allclose((np.asarray(a[0]) * [-1, 1])[live], np.asarray(b[0])[live], atol=2e-3)
    return int(np.asarray(st.active).sum()) + 1 - int(live.sum())  # stones removed by the shot


@pytest.mark.parametrize("n", [2, pytest.param(8, marks=pytest.mark.slow)])
def test_spin_and_angle_mirror_to_the_mirrored_end(n):
    """Mirroring x, the angle and the turn mirrors every resting stone (shots aimed at stones,
    so collisions happen; the slow variant runs more positions)."""
    removed = 0
    for i, k in enumerate(jax.random.split(jax.random.key(3), n)):
        removed += _mirror_case(ENV.sample_state(k, P), 1.0 if i % 2 else -1.0, 0.5 + 0.3 * i)
    assert removed >= 1


def _state(own=(), opp=()):
    pos, act = np.zeros((C.N_STONES, 2), np.float32), np.zeros(C.N_STONES, bool)
    for i, p in enumerate(own):
        pos[1 + i], act[1 + i] = p, True
    for i, p in enumerate(opp):
        pos[1 + C.N_OWN + i], act[1 + C.N_OWN + i] = p, True
    return jnp.asarray(pos), jnp.asarray(act)


@pytest.mark.parametrize(
    "own,opp,expected",
    [
        ([(0.0, C.TEE_Y + 0.1)], [(0.0, C.TEE_Y + 0.5)], 1),
        ([(0.0, C.TEE_Y + 0.1), (0.3, C.TEE_Y), (1.5, C.TEE_Y)], [(0.0, C.TEE_Y - 1.0)], 2),
        ([(0.0, C.TEE_Y + 1.2)], [(0.2, C.TEE_Y), (0.0, C.TEE_Y - 0.6), (0.9, C.TEE_Y + 0.7)], -3),
        ([], [], 0),
        ([(0.0, C.TEE_Y - 3.0)], [], 0),  # a guard does not count
        ([(0.0, C.TEE_Y + C.HOUSE_RADIUS + 0.14)], [], 1),  # edge of the stone over the 12-foot
        ([(0.0, C.TEE_Y + C.HOUSE_RADIUS + 0.15)], [], 0),  # just outside
        ([], [(0.5, C.TEE_Y)], -1),
    ],
)
def test_scoring_on_hand_placed_positions(own, opp, expected):
    pos, act = _state(own, opp)
    assert float(C.score(pos, act)) == expected


def test_out_of_play_rules():
    short = C.draw_action(jnp.asarray([0.0, C.HOG_Y - 0.5]), 1.0, P)
    side = C.draw_action(jnp.asarray([2.35, C.TEE_Y]), 1.0, P)
    through = C.draw_action(jnp.asarray([0.0, C.BACK_Y + 1.0]), 1.0, P)
    for v, th in (short, side, through):
        _, alive, _ = _sim(EMPTY.pos, EMPTY.active, v, th, 1.0)
        assert not bool(alive[0])


def test_sampled_positions_are_legal_and_scores_bounded():
    keys = jax.random.split(jax.random.key(0), 64)
    states = jax.jit(jax.vmap(lambda k: ENV.sample_state(k, P)))(keys)
    pos, act = np.asarray(states.pos), np.asarray(states.active)
    assert not act[:, 0].any()
    n_own, n_opp = act[:, 1 : 1 + C.N_OWN].sum(1), act[:, 1 + C.N_OWN :].sum(1)
    assert (n_own <= P.max_own).all() and (n_opp >= 1).all() and (n_opp <= P.max_opp).all()
    assert set(n_own.tolist()) == set(range(P.max_own + 1)) and set(n_opp.tolist()) == set(range(1, P.max_opp + 1))
    for p, a in zip(pos, act):
        q = p[a]
        d = np.linalg.norm(q[:, None] - q[None], axis=-1) + np.eye(len(q)) * 9
        assert (d >= 2 * C.STONE_RADIUS).all() and (q[:, 1] - C.STONE_RADIUS >= C.HOG_Y).all()
    for i in range(4):  # random throws: integer scores within -8..8
        v, th, turn = C.decode_action(jax.random.uniform(jax.random.key(i), (3,)), P)
        r = float(C.score(*_sim(states.pos[i], states.active[i], v, th, turn)[:2]))
        assert r == round(r) and abs(r) <= 8


@pytest.mark.slow
def test_env_rewards_under_jit_and_vmap():
    keys = jax.random.split(jax.random.key(0), 16)
    states = jax.vmap(lambda k: ENV.sample_state(k, P))(keys)
    f = jax.jit(jax.vmap(lambda k, s: ENV.noisy_reward(k, s, jax.random.uniform(k, (3,)), P)))
    r = np.asarray(f(keys, states))
    assert np.isfinite(r).all() and (np.abs(r) <= 8).all() and (r == np.round(r)).all()


def test_draw_and_hit_inverses():
    @jax.jit
    def check(tgt, turn):
        v, th = C.draw_action(tgt, turn, P)
        stop = C.lone_stop(v, th, turn, P.decel, P.curl)
        v, th = _hit(tgt, turn, 1.5, P)
        return stop, C._state_at_speed(v, th, turn, 1.5, P.decel, P.curl)

    for turn in (1.0, -1.0):
        for tgt in ([0.4, C.TEE_Y - 0.5], [-0.8, C.TEE_Y + 0.6]):
            stop, (pos, vel) = check(jnp.asarray(tgt), turn)
            np.testing.assert_allclose(np.asarray(stop), tgt, atol=1e-3)
            np.testing.assert_allclose(np.asarray(pos), tgt, atol=2e-3)
            np.testing.assert_allclose(float(jnp.linalg.norm(vel)), 1.5, atol=1e-3)


@pytest.mark.slow  # compiling the Student-t sampler costs ~5 s
def test_execution_noise_spreads_by_sigma_and_student_t_has_heavier_tails():
    keys = jax.random.split(jax.random.key(5), 2000)
    noise = jax.jit(jax.vmap(C.execution_noise, in_axes=(0, None)))
    g, t = np.asarray(noise(keys, P)), np.asarray(noise(keys, P.replace(noise_df=3.0)))
    # P(|N| > 3) = 0.0027, P(|t_3| > 3) = 0.058
    assert abs(g.std() - 1) < 0.06 and (np.abs(g) > 3).mean() < 0.01 and 0.04 < (np.abs(t) > 3).mean() < 0.08


def test_bad_parameter_names_raise_one_clear_error():
    with pytest.raises(ValueError, match="unknown parameter.*sigma_x"):
        make("MU-curling", sigma_x=1.0)
