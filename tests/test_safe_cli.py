"""Smoke: ``python train.py --algo safe --method X --env E`` trains (finite metrics, one row per
update) for every method on PASPO's three envs, ERA, and the probes (slow matrix, and two slow
pairs that check the new pieces: OptLayer-orig's sign with the paper preset, the original-form
Lagrangian on synth-7's 611 raw rows); CI: OptLayer refused on an env without a polytope
(tests/test_safe_probe.py runs train.py --algo safe in CI)."""

import json

import numpy as np
import pytest

import train as train_cli
from safe_jax.algo import METHODS, OPTLAYER

ENVS = ("PASPO-synth-7", "PASPO-compute-9", "PASPO-portfolio-13", "ERA-v1", "Safe-bandit", "Safe-bandit-box", "Probe-cost")
ALLOCATION = ENVS[:3]
TINY = ["--num-envs", "4", "--num-steps", "4", "--num-minibatches", "2", "--update-epochs", "1",
        "--total-timesteps", "32", "--log-every", "1"]


def _train(tmp_path, method, env, *extra):
    out = tmp_path / f"{method}-{env}"
    args = ["--algo", "safe", "--env", env, "--method", method, *TINY, "--out", str(out), *extra]
    assert train_cli.main(args) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == [1, 2]
    for r in rows:
        for k, v in r.items():
            if isinstance(v, list) and not k.startswith("eval/"):
                assert np.all(np.isfinite(np.asarray(v, float))), (method, env, k)
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("method,env,extra", [
    ("optlayer-orig", "PASPO-compute-9", ("--preset", "paper")),
    ("ppo_lag_orig", "PASPO-synth-7", ("--preset", "paper")),
])
def test_train_cli_new_pieces(tmp_path, method, env, extra):
    rows = _train(tmp_path, method, env, *extra)
    if method in OPTLAYER:
        assert rows[-1]["policy/alignment"][0] < 0  # the original's qpth sign: a ~ projection of -z
    else:
        assert rows[-1]["lagrange_multiplier"][0] > 611 * 1.0  # 611 per-row multipliers, none below init


def _refused(tmp_path, capsys, method, env):
    args = ["--algo", "safe", "--env", env, "--method", method, *TINY, "--out", str(tmp_path / "x")]
    assert train_cli.main(args) == 2
    assert "needs an allocation env" in capsys.readouterr().err


def test_optlayer_needs_an_allocation_env(tmp_path, capsys):
    _refused(tmp_path, capsys, "optlayer", "Safe-bandit")


@pytest.mark.slow
@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("method", METHODS)
def test_train_cli_every_method_on_every_env(tmp_path, capsys, method, env):
    if method in OPTLAYER and env not in ALLOCATION:
        return _refused(tmp_path, capsys, method, env)
    _train(tmp_path, method, env)
