"""Engine capabilities: the cost channel (cost critic, cost GAE, cost metrics), the update-rule
hook, evaluation runs inside the compiled program, one compiled chunk program per run, and
several processes (jax.distributed) following the single-process curve."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs_jax
import train as train_cli
from ppo_jax.config import PPOConfig
from ppo_jax.engine import make_train
from ppo_jax.policy import MLPActorCritic
from ppo_jax.update import MinibatchUpdate, UpdateRule

ROOT = Path(__file__).resolve().parents[1]
CFG = PPOConfig(total_timesteps=20_000, num_envs=8, num_steps=16, lr=3e-3, anneal_lr=False, gamma=0.9)


def _trainer(env_id, cfg=CFG, **kw):
    env, params = envs_jax.make(env_id)
    return make_train(cfg, env, params, MLPActorCritic(env.action_space(params)), **kw)


# -- costs ------------------------------------------------------------------------------------
def test_cost_critic_learns_the_known_cost_values_of_the_probe():
    """Probe-cost: V^c(+1) = (1, 1), V^c(-1) = (0, 1) (one-step episodes), learned within 0.1."""
    train = _trainer("Probe-cost", CFG.replace(cost_critic=True))
    state, metrics = jax.jit(train)(jax.random.PRNGKey(0))
    for obs, expected in ((1.0, (1.0, 1.0)), (-1.0, (0.0, 1.0))):
        got = np.asarray(train.cost_value(state.cost_params, jnp.array([obs], jnp.float32)))
        np.testing.assert_allclose(got, expected, atol=0.1)
    # Metrics: an episode costs [obs > 0] + 1, i.e. 1.5 on average; per step the same.
    assert abs(float(np.mean(metrics["cost_return"][-20:])) - 1.5) < 0.1
    assert abs(float(np.mean(metrics["cost_rate"][-20:])) - 1.5) < 0.1
    assert np.all(np.isfinite(metrics["cost_value_loss"]))


def test_no_cost_critic_unless_asked_and_a_clear_error_without_costs():
    plain = _trainer("Probe-cost", CFG.replace(total_timesteps=8 * 16 * 2))
    state, metrics = jax.eval_shape(plain, jax.random.PRNGKey(0))  # traced, not compiled
    assert plain.cost_critic is None and state.cost_params == () and state.cost_opt_state == ()
    assert "cost_return" in metrics and "cost_rate" in metrics and "cost_value_loss" not in metrics
    with pytest.raises(ValueError, match="reports no info\\['cost'\\]"):
        _trainer("Probe-constant", CFG.replace(cost_critic=True))


# -- update-rule hook -------------------------------------------------------------------------
class _Multiplier(MinibatchUpdate):
    """lambda += eta * (episode cost return of the second cost - d) once per update, before the
    epochs; counts post_epoch calls."""

    eta, d = 0.25, 0.2

    def init(self, engine, params, cost_params):
        return {"lam": jnp.ones(()), "epochs": jnp.zeros((), jnp.int32)}

    def pre_update(self, engine, ustate, batch, stats, key):
        lam = jnp.maximum(ustate.extra["lam"] + self.eta * (stats["cost_return"][1] - self.d), 0.0)
        return ustate.replace(extra={**ustate.extra, "lam": lam}), {"lam": lam}

    def post_epoch(self, engine, ustate, batch, stats, key):
        return ustate.replace(extra={**ustate.extra, "epochs": ustate.extra["epochs"] + 1}), {}


def test_pre_update_and_post_epoch_hooks_follow_the_closed_form():
    cfg = CFG.replace(total_timesteps=8 * 16 * 5, update_epochs=3)
    train = _trainer("Probe-cost", cfg, update=_Multiplier())
    state, metrics = jax.jit(train)(jax.random.PRNGKey(1))
    k = np.arange(1, 6)
    np.testing.assert_allclose(metrics["lam"], 1.0 + k * 0.25 * (1.0 - 0.2), rtol=1e-6)
    assert int(state.extra["epochs"]) == 5 * 3


class _CriticOnly(MinibatchUpdate):
    """Replaces the whole step: the actor is left alone, only the critics regress (CPO's shape)."""

    def __call__(self, engine, ustate, batch, stats, key):
        ustate, aux = self.critic_epochs(engine, ustate, batch, key)
        return ustate, {"value_loss": aux["value_loss"].mean(), "nonfinite": aux["nonfinite"].sum()}


def test_a_rule_that_replaces_the_minibatch_step_keeps_the_engine_around_it():
    cfg = CFG.replace(eval_every=5, eval_episodes=4)
    train = _trainer("Probe-constant", cfg, update=_CriticOnly())
    s0 = train.init(jax.random.PRNGKey(2))
    state, metrics = jax.jit(lambda s: train.run(s, train.num_updates, 0))(s0)
    jax.tree.map(np.testing.assert_array_equal, state.params["actor"], s0.params["actor"])  # actor untouched
    assert abs(float(train.policy.value(state.params, jnp.zeros((1,)))) - 1.0) < 0.1  # critic learned V = 1
    assert float(metrics["return"][-1]) == 1.0 and np.isfinite(metrics["eval/return"][4])  # rollout + eval ran
    with pytest.raises(TypeError, match="UpdateRule"):
        _trainer("Probe-constant", update=lambda *a: None)
    assert isinstance(_CriticOnly(), UpdateRule)


# -- evaluation ---------------------------------------------------------------------------------
def test_evaluation_does_not_perturb_training_and_runs_every_eval_every_updates():
    base = CFG.replace(total_timesteps=8 * 16 * 6)
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    s_plain, m_plain = jax.jit(jax.vmap(_trainer("Probe-action-reward", base)))(keys)
    evaluated = _trainer("Probe-action-reward", base.replace(eval_every=2, eval_episodes=6))
    s_eval, m_eval = jax.jit(jax.vmap(evaluated))(keys)
    jax.tree.map(np.testing.assert_array_equal, s_plain.params, s_eval.params)
    np.testing.assert_array_equal(m_plain["return"], m_eval["return"])
    done = np.isfinite(m_eval["eval/return"])
    assert done.tolist() == [[False, True] * 3] * 2
    assert np.all(m_eval["eval/length"][done] == 1.0)


def test_greedy_evaluation_of_the_trained_probe_scores_the_optimum():
    cfg = CFG.replace(total_timesteps=8 * 16 * 150, eval_every=50, eval_episodes=16, eval_mode="greedy")
    _, metrics = jax.jit(_trainer("Probe-action-reward", cfg))(jax.random.PRNGKey(0))
    assert np.isnan(metrics["eval/return"][-2]) and float(metrics["eval/return"][-1]) == 1.0  # optimal in every episode


def test_fixed_evaluation_starts_are_used_where_the_env_offers_them():
    """Probe-obs-reward with reset_to: starts alternate +1 / -1, so 20 episodes return exactly 0
    whatever the policy; random starts almost never do."""
    cfg = CFG.replace(total_timesteps=8 * 16 * 4, eval_every=1, eval_episodes=20)
    _, fixed = jax.jit(_trainer("Probe-obs-reward", cfg))(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(fixed["eval/return"], 0.0)
    _, random = jax.jit(_trainer("Probe-obs-reward", cfg.replace(eval_fixed_starts="off")))(jax.random.PRNGKey(0))
    assert np.any(random["eval/return"] != 0.0)
    with pytest.raises(ValueError, match="reset_to"):
        _trainer("CartPole-v1", cfg.replace(eval_fixed_starts="on"))


# -- one compiled chunk program ---------------------------------------------------------------
def test_the_last_shorter_chunk_reuses_the_compiled_program(tmp_path, capsys):
    """One chunk program per run; ``--compile-cache DIR`` stores the run's programs and a
    second identical run loads them (it stores nothing new) and computes the same metrics."""
    cache = tmp_path / "xla"
    args = ["--algo", "ppo", "--env", "Probe-cost", "--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2",
            "--total-timesteps", str(32 * 11), "--log-every", "4", "--eval-every", "3", "--eval-episodes", "4",
            "--compile-cache", str(cache)]
    before = jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # store even tiny programs
    try:
        assert train_cli.main([*args, "--out", str(tmp_path / "run")]) == 0
        err = capsys.readouterr().err
        assert err.count("compiled") == 1, err  # 11 updates in chunks 4, 4, 3: one program
        rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
        assert [r["update"] for r in rows] == list(range(1, 12))
        assert [r["eval/return"][0] is not None for r in rows] == [(u % 3 == 0) for u in range(1, 12)]
        assert all(r["cost_return"][0] is not None for r in rows)
        stored = sorted(p.name for p in cache.iterdir())
        assert any(n.startswith("jit_init") for n in stored) and len(stored) >= 2, stored

        assert train_cli.main([*args, "--out", str(tmp_path / "again")]) == 0
        assert sorted(p.name for p in cache.iterdir()) == stored  # both programs came from the cache
        again = [json.loads(line) for line in (tmp_path / "again" / "metrics.jsonl").read_text().splitlines()]
        drop = lambda r: {k: v for k, v in r.items() if k != "steps_per_sec"}
        assert [drop(r) for r in again] == [drop(r) for r in rows]
    finally:
        from jax.experimental.compilation_cache import compilation_cache

        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])
        compilation_cache.reset_cache()


def test_the_compile_cache_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert train_cli.compile_cache_dir(None) == tmp_path / "xdg" / "constrained-actions-jax" / "xla"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "env"))
    assert train_cli.compile_cache_dir(None) == tmp_path / "env"
    assert train_cli.compile_cache_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert train_cli.compile_cache_dir("off") is None


# -- several processes ------------------------------------------------------------------------
_WORKER = textwrap.dedent(
    """
    import sys
    import jax
    pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if pid >= 0:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    import numpy as np, envs_jax
    from jax.experimental import multihost_utils
    from ppo_jax.config import PPOConfig
    from ppo_jax.engine import make_train, device_mesh
    from ppo_jax.policy import MLPActorCritic
    assert jax.device_count() == 2, jax.devices()
    env, params = envs_jax.make("CartPole-v1")
    cfg = PPOConfig(total_timesteps=8 * 32 * 3, num_envs=8, num_steps=32, eval_every=3, eval_episodes=4)
    train = make_train(cfg, env, params, MLPActorCritic(env.action_space(params)), mesh=device_mesh(jax.devices()))
    state, metrics = jax.jit(train)(jax.random.PRNGKey(0))
    if pid >= 0:
        assert len(state.obs.sharding.device_set) == 2 and jax.process_count() == 2
        metrics = multihost_utils.process_allgather(metrics, tiled=True)
    if pid < 0:  # the reference process also runs the same config on one device
        one = make_train(cfg, env, params, MLPActorCritic(env.action_space(params)))
        _, m1 = jax.jit(one)(jax.random.PRNGKey(0))
        metrics = {**metrics, **{"one_device/" + k: v for k, v in m1.items()}}
    if pid <= 0:
        np.savez(out, **{k.replace("/", "_"): np.asarray(v) for k, v in metrics.items()})
    print("OK", pid)
    """
)


def test_two_processes_and_two_devices_follow_the_single_device_curve(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    # Three tiny runs: compile time is all their cost, so XLA's backend optimisation is off.
    fast = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT), "XLA_FLAGS": fast}
    multi = tmp_path / "multi.npz"
    procs = [subprocess.Popen([sys.executable, str(script), str(i), port, str(multi)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in (0, 1)]
    single = tmp_path / "single.npz"
    ref = subprocess.run([sys.executable, str(script), "-1", port, str(single)], cwd=ROOT, capture_output=True, text=True,
                         env={**env, "XLA_FLAGS": fast + " --xla_force_host_platform_device_count=2"}, timeout=400)
    try:
        outputs = [p.communicate(timeout=400)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert ref.returncode == 0, ref.stderr[-2000:]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-2000:] for o in outputs)
    a, b = np.load(multi), np.load(single)
    for key in ("return", "loss", "eval_return"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-3, atol=1e-4, err_msg=key)  # 2 processes = 2 devices
        np.testing.assert_allclose(b[key], b["one_device_" + key], rtol=1e-3, atol=1e-4, err_msg=key)  # = 1 device
