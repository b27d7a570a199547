"""No hang: the project's compiled programs contain no LAPACK custom call, and the programs
that deadlocked under jaxlib 0.10.2 on CPU now finish.

Cause (``ppo_jax/linalg.py``, ``benchmarks/RESULTS_lp.md``): jaxlib 0.10.x's batched CPU LAPACK
kernels wait on the intra-op thread pool they run on; two of them at once (e.g. the actor's and
the critic's orthogonal-init QR under the seed ``vmap``) leave no free worker on 2 cores. The
project now uses ``ppo_jax.linalg`` (pure JAX) wherever a program is jitted or vmapped.

Specifications:
- static: for every policy (PPO's MLP; PASPO on its LP path and its baselines dirichlet /
  lagrangian / projection; IAR, MASK, Factored, AR) the seed-vmapped ``init`` over 2 seeds,
  and one vmapped training update, lower to HLO without a LAPACK custom call; so do the LP
  work queue with reference warm starts, the warm-started vmapped chain, the de-bias fit and
  the projection QP (the check itself is shown to find ``jnp.linalg.solve``'s call). CI
  traces the update of PASPO's LP path; the other eight updates are ``slow`` (1-4 s CPU each);
- dynamic, each in a subprocess with a timeout (a hang fails the test instead of blocking
  CI): in CI the seed-vmapped ``init`` of the MASK policy on ERA-v1 (the program that hung in
  ``train.py --algo iar --env ERA-v1 --policy mask --num-seeds 2``); ``slow``: that command
  line itself (6400 steps, with and without ``--no-data-parallel``, and 128 steps), and the
  seed-vmapped ``init`` of all nine policies x 2 seeds as one program (under the old code
  that program hung with two workers in ``lapack_sgeqrf_ffi`` -> ``ParallelBatchMap``).

Run as a script (``python tests/test_no_hang.py init``) it builds every policy's trainer and
runs its seed-vmapped init, printing one line per policy (what the subprocess test runs).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Tiny PPO sizes: the programs' structure (and their linear algebra) is what matters here.
TINY = dict(total_timesteps=8, num_envs=2, num_steps=4, num_minibatches=1, update_epochs=1)
PASPO_METHODS = ("paspo", "dirichlet", "lagrangian", "projection")
IAR_POLICIES = ("iar", "mask", "factored", "ar")
POLICIES = ("mlp",) + tuple(f"paspo-{m}" for m in PASPO_METHODS) + tuple(f"iar-{p}" for p in IAR_POLICIES)


def build_trainer(name: str, tiny: bool = True):
    """The trainer ``train.py`` would build for policy ``name`` (one of ``POLICIES``) with small
    rollouts. PASPO runs on its LP path (``bounds="lp"``), where its linear algebra lives;
    ``tiny=False`` keeps the policies' default network widths."""
    from ppo_jax.algo import build as build_ppo
    from ppo_jax.config import PPOConfig
    from ppo_jax.policy import MLPPolicyConfig

    if name == "mlp":
        return build_ppo("CartPole-v1", {"ppo": PPOConfig(**TINY), "policy": MLPPolicyConfig()}, None)
    if name.startswith("paspo-"):
        from paspo_jax.algo import PASPOConfig, PASPOPPOConfig, build

        # No de-bias fit and no warm start: both run once at construction (~40 s CPU here);
        # their programs are checked on their own (test_no_lapack_in_lp_debias_and_projection_programs).
        cfg = PASPOConfig(method=name[len("paspo-"):], bounds="lp", debias=False, lp_warm_start=False)
        if tiny:
            cfg = cfg.replace(encoder_hidden=(8,), head_hidden=(8,), critic_hidden=(8,))
        return build("PASPO-synth-7", {"ppo": PASPOPPOConfig(**TINY), "paspo": cfg})
    if name.startswith("iar-"):
        from iar_jax.algo import IARA2CConfig, IARConfig, build

        cfg = IARConfig(policy=name[len("iar-"):])
        if tiny:
            cfg = cfg.replace(num_candidates=4, max_candidates=8, flow_layers=1, flow_hidden=16, context_dim=8,
                              encoder_hidden=16, posterior_layers=1, alpha_target_samples=2,
                              num_posterior_samples=2, critic_hidden=(16,))
        return build("ERA-v1", {"ppo": IARA2CConfig(**TINY), "iar": cfg})
    raise ValueError(f"unknown policy {name!r}; one of {POLICIES}")


def _lapack_calls(lowered) -> list[str]:
    text = lowered.as_text()
    return sorted({line.split("@")[1].split("(")[0] for line in text.splitlines()
                   if "custom_call" in line and "lapack" in line.lower() and "@" in line}) or (
        ["lapack"] if "lapack" in text.lower() else [])


# ----------------------------------------------------------------------------- static


def test_the_lapack_check_can_fail():
    """The HLO check finds the custom call ``jnp.linalg`` emits (on CPU)."""
    A, b = jnp.eye(3), jnp.ones((2, 3))
    assert _lapack_calls(jax.jit(jax.vmap(jnp.linalg.solve, (None, 0))).lower(A, b))


def test_no_lapack_in_any_policy_init():
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    found = {name: _lapack_calls(jax.jit(jax.vmap(build_trainer(name).init)).lower(keys)) for name in POLICIES}
    assert not any(found.values()), {k: v for k, v in found.items() if v}


# CI traces the update of PASPO's LP path (basis inverses, vertex solves in the vmapped
# simplex); the others (1-4 s CPU each to trace; the projection QP is checked on its own below)
# are `slow`.
_WITH_LINALG = ("paspo-paspo",)


@pytest.mark.parametrize("name", [p if p in _WITH_LINALG else pytest.param(p, marks=pytest.mark.slow) for p in POLICIES])
def test_no_lapack_in_a_policy_update(name):
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    trainer = build_trainer(name)
    states = jax.eval_shape(jax.vmap(trainer.init), keys)
    assert not _lapack_calls(jax.jit(jax.vmap(lambda s: trainer.run(s, 1))).lower(states))


def test_no_lapack_in_lp_debias_and_projection_programs():
    from envs_jax.paspo_synth import make_synth
    from paspo_jax import lp
    from paspo_jax.baselines import project_polytope
    from paspo_jax.debias import debias_offsets

    env, params = make_synth(n=7)
    A, b = (jnp.asarray(v, jnp.float32) for v in env.constraints(None, params))
    n = A.shape[1]
    X = jnp.full((4, n), 1.0 / n, jnp.float32)
    warm = lp.WarmStart(jnp.zeros((n - 1, n), jnp.int32), jnp.zeros((n - 1, n, n)), jnp.zeros((n - 1, n), jnp.int32),
                        jnp.zeros((n - 1, n, n)))
    programs = {
        "batch_allocation_bounds_chain (queue, 3 references)": jax.jit(
            lambda X: lp.batch_allocation_bounds_chain(A, b, X, warm_start=3, slots=8)).lower(X),
        "vmapped allocation_bounds, warm, rescaled": jax.jit(jax.vmap(
            lambda a, w: lp.allocation_bounds(A, b, a, 3, rescale=True, warm=w, vertices=True),
            (0, None))).lower(X, warm),
        "chain_warm_start references": lp._chain_reference_bases.lower(A, b, X[0], jnp.int32(100)),
        "debias_offsets": jax.jit(debias_offsets).lower(X, X[:, :-1] * 0, X[:, :-1] + 1),
        "vmapped project_polytope": jax.jit(jax.vmap(lambda z: project_polytope(z, A, b))).lower(X),
    }
    found = {name: _lapack_calls(low) for name, low in programs.items()}
    assert not any(found.values()), {k: v for k, v in found.items() if v}


# ----------------------------------------------------------------------------- dynamic


def _run(args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(args)} did not finish within {timeout:.0f} s (hang?); output so far:\n"
                             f"{e.stdout}\n{e.stderr}") from None
    return proc, time.perf_counter() - t


@pytest.mark.parametrize("names", [["iar-mask"], pytest.param(list(POLICIES), marks=pytest.mark.slow)],
                         ids=["mask", "all-policies"])
def test_seed_vmapped_init_finishes(names):
    """``jax.jit(jax.vmap(trainer.init))`` over 2 seeds (default widths) in a subprocess: in CI
    the MASK policy's (the program of the CLI repro, ~10 s CPU); ``slow``: all nine policies'
    inits as one program (~55 s CPU; under the old code it hung with two workers in
    ``lapack_sgeqrf_ffi`` -> ``ParallelBatchMap``)."""
    proc, _ = _run([str(Path(__file__)), "init", *names], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("initialised ")]
    assert done == names, proc.stdout


REPRO = ["--algo", "iar", "--env", "ERA-v1", "--policy", "mask", "--num-seeds", "2"]


def _check_cli(tmp_path, steps: int, extra: list[str], timeout: float):
    out = tmp_path / "run"
    proc, _ = _run([str(ROOT / "train.py"), *REPRO, "--total-timesteps", str(steps), "--out", str(out), *extra],
                   timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "initialised 2 seed(s)" in proc.stderr and "done:" in proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("steps,extra", [(128, []), (6400, []), (6400, ["--no-data-parallel"])],
                         ids=["short", "full", "full-no-data-parallel"])
def test_cli_repro_finishes(tmp_path, steps, extra):
    """The exact repro (6400 steps, 2 seeds; hung in init under jaxlib 0.10.2 before), and a
    128-step variant (the hang was before the first update; ~25 s CPU)."""
    _check_cli(tmp_path, steps, extra, timeout=600)


def _init_all(names, tiny: bool) -> None:
    """Every policy's seed-vmapped init (2 seeds) as ONE jitted program (one compilation; all
    inits can run concurrently, as the actor's and critic's did when they hung)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    t = time.perf_counter()
    trainers = {name: build_trainer(name, tiny=tiny) for name in names}
    built = time.perf_counter()
    program = jax.jit(lambda keys: {name: jax.vmap(tr.init)(keys) for name, tr in trainers.items()})
    compiled = program.lower(keys).compile()
    t_compile = time.perf_counter()
    states = jax.block_until_ready(compiled(keys))
    print(f"built in {built - t:.1f}s, compiled in {t_compile - built:.1f}s, ran in {time.perf_counter() - t_compile:.1f}s")
    for name in names:
        leaves = jax.tree.leaves(states[name])
        finite = all(bool(np.all(np.isfinite(np.asarray(x)))) for x in leaves if jnp.issubdtype(x.dtype, jnp.floating))
        print(f"initialised {name} {len(leaves)} leaves finite={finite}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] != ["init"]:
        sys.exit(f"usage: {sys.argv[0]} init [policy ...]")
    _init_all(sys.argv[2:] or POLICIES, tiny=False)
