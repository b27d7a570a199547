"""train.py: run directory contents, resume after SIGKILL, clear errors (exit code 2)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import train as train_cli
from ppo_jax.run import Checkpoints

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--algo", "ppo", "--env", "CartPole-v1", "--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2", "--update-epochs", "2"]


def _run(args, **kw):
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, **kw
    )


def _final_params(run_dir: Path):
    ckpts = Checkpoints(run_dir / "checkpoints")
    step = ckpts.latest()
    # Restore without a template: orbax returns plain numpy leaves.
    state = ckpts.manager.restore(step)
    ckpts.close()
    return step, state["params"]


def test_run_directory_has_config_metrics_curve_and_checkpoints(tmp_path, capsys):
    out = tmp_path / "run"
    code = train_cli.main([*SMALL, "--total-timesteps", "1280", "--num-seeds", "2", "--out", str(out), "--log-every", "5"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "ppo" and config["env"] == "CartPole-v1" and config["num_seeds"] == 2
    assert config["configs"]["ppo"]["num_envs"] == 4 and config["configs"]["ppo"]["num_steps"] == 16
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == list(range(1, 21))  # 1280 / (4*16)
    assert rows[-1]["env_steps"] == 1280
    for key in ("return", "length", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac",
                "explained_variance", "violation_rate"):
        assert len(rows[-1][key]) == 2, key
    assert rows[-1]["steps_per_sec"] > 0
    assert (out / "curve.png").stat().st_size > 1000
    assert Checkpoints(out / "checkpoints").latest() == 20
    err = capsys.readouterr().err
    assert "steps/s" in err and "return" in err  # the progress line


def test_resume_after_sigkill_ends_with_the_same_parameters(tmp_path):
    args = [*SMALL, "--total-timesteps", str(64 * 240), "--log-every", "10", "--checkpoint-every", "20", "--seed", "5"]
    # The three processes run the same programs: JAX's persistent compilation cache compiles
    # them once (identical HLO -> identical executable; only the test's wall time changes).
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    straight = tmp_path / "straight"
    assert _run([*args, "--out", str(straight)], env=env).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args, "--out", str(killed)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    ckpt_dir = killed / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        steps = [int(p.name) for p in ckpt_dir.glob("*") if p.name.isdigit()] if ckpt_dir.exists() else []
        if any(s >= 40 for s in steps):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted_at = Checkpoints(ckpt_dir).latest()
    assert interrupted_at is not None and interrupted_at < 240

    resumed = _run(["--resume", str(killed)], env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed {killed} at update {interrupted_at}" in resumed.stderr

    step_a, params_a = _final_params(straight)
    step_b, params_b = _final_params(killed)
    assert step_a == step_b == 240
    jax.tree.map(np.testing.assert_array_equal, params_a, params_b)
    rows_a = (straight / "metrics.jsonl").read_text().splitlines()
    rows_b = (killed / "metrics.jsonl").read_text().splitlines()
    assert len(rows_a) == len(rows_b) == 240
    strip = lambda r: {k: v for k, v in json.loads(r).items() if k != "steps_per_sec"}
    assert [strip(r) for r in rows_a] == [strip(r) for r in rows_b]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--algo", "nope"], "unknown algorithm 'nope'"),
        (["--env", "Nope-v0"], "unknown env id 'Nope-v0'"),
        (["--num-minibatches", "3"], "not divisible by num_minibatches = 3"),
        (["--num-envs", "0"], "num_envs must be a positive integer"),
        (["--num-seeds", "0"], "--num-seeds must be positive"),
        (["--lr", "abc"], "--lr"),
        (["--resume", "/nonexistent/run"], "not a run directory"),
    ],
)
def test_bad_input_gives_one_error_line_and_exit_code_2(args, message, capsys, tmp_path):
    code = train_cli.main([*args, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    from envs_jax.probes import make_probe
    from ppo_jax.engine import make_train
    from ppo_jax.policy import MLPActorCritic

    def build(env_id, configs, mesh):
        env, params = make_probe("nan_reward", nan_after=8 * 25 + 1)  # 8 steps per env per update: step 201 is in update 26
        return make_train(configs["ppo"], env, params, MLPActorCritic(env.action_space(params)))

    from ppo_jax import registry

    ppo = registry.get("ppo")
    monkeypatch.setattr(registry, "_REGISTRY", {**registry._REGISTRY})  # the registration is undone after the test
    registry.register(registry.Algorithm(name="nanprobe", configs=ppo.configs, build=build, default_env="x", summary="test"))
    out = tmp_path / "nan"
    code = train_cli.main(["--algo", "nanprobe", "--num-envs", "4", "--num-steps", "8", "--num-minibatches", "1",
                           "--total-timesteps", str(32 * 60), "--log-every", "10", "--checkpoint-every", "10",
                           "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    line = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(line) == 1 and "non-finite loss at update 26" in line[0], err
    step, params = _final_params(out)
    assert step == 20  # the last good checkpoint survives; nothing after the NaN was saved
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))


def test_help_lists_every_config_option(capsys):
    with pytest.raises(SystemExit):
        train_cli.main(["--algo", "ppo", "--help"])
    text = capsys.readouterr().out
    for flag in ("--total-timesteps", "--num-envs", "--clip-eps", "--optimizer", "--hidden", "--num-seeds", "--resume"):
        assert flag in text
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])  # the default algorithm, PASPO: its own options
    text = capsys.readouterr().out
    for flag in ("--total-timesteps", "--method", "--debias", "--bounds", "--num-seeds"):
        assert flag in text


@pytest.mark.parametrize(
    "algo, env_id, budget, figure",
    [("dra", "DRA-maze", ["--num-trials", "20"], "dra_allocation.png"),
     ("mu", "MU-location", ["--total-steps", "20"], "coverage.png")],
)
def test_other_algorithms_write_the_same_run_directory(algo, env_id, budget, figure, tmp_path):
    out = tmp_path / algo
    assert train_cli.main(["--algo", algo, "--env", env_id, *budget, "--out", str(out)]) == 0
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(isinstance(r["return"][0], float) for r in rows)
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == algo and config["env"] == env_id
    for name in ("curve.png", figure):
        assert (out / name).stat().st_size > 1000, name
    assert Checkpoints(out / "checkpoints").latest() == rows[-1]["update"]


def test_options_parse_by_annotation():
    from ppo_jax import cli, registry

    _, configs = cli.parse(registry.get("iar"), ["--clip-eps", "0.2"])
    assert configs["ppo"].clip_eps == 0.2  # IARA2CConfig.clip_eps defaults to None (A2C)
    _, configs = cli.parse(registry.get("paspo"), ["--clip-eps", "none", "--debias", "false", "--head-hidden", "8,4"])
    assert configs["ppo"].clip_eps is None and configs["paspo"].debias is False and configs["paspo"].head_hidden == (8, 4)
    _, configs = cli.parse(registry.get("paspo"), ["--debias=True", "--head-hidden", "8", "4"])
    assert configs["paspo"].debias is True and configs["paspo"].head_hidden == (8, 4)


def test_presets_take_the_command_line_on_top():
    from ppo_jax import cli, registry

    _, configs = cli.parse(registry.get("iar"), ["--num-envs", "8"], preset="paper")
    assert configs["iar"].rejection_coef == "paper" and configs["ppo"].num_envs == 8
    assert configs["ppo"].total_timesteps == 700_000  # the paper's ERA budget; the default preset's is 1e5
    _, configs = cli.parse(registry.get("mu"), [], preset="default")
    assert configs["mu"].total_steps < 80_000
    _, configs = cli.parse(registry.get("mu"), [], preset="paper")
    assert configs["mu"].total_steps == 80_000
