"""The MU generator Trainer: contract (init / run / finalize), determinism, learning."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mu_jax import generator as gen
from mu_jax.trainer import Config, make_trainer
from ppo_jax.trainer import Trainer

# baseline=True: the short learning check below is reliable across seeds with it
SMALL = dict(num_candidates=3, batch_size=16, channels=4, lr=3e-3, total_steps=150, eval_states=64, search_budget=6, baseline=True)


def _run_vmapped(trainer, n):
    return jax.jit(jax.vmap(lambda s: trainer.run(s, n)))


def _mean_best(trainer, params):
    """Mean over seeds and held-out states of max_i Q(s, a_i) (finalize's compiled evaluate)."""
    test = trainer.test_states()
    n_seeds = jax.tree.leaves(params)[0].shape[0]
    return np.mean(
        [trainer.evaluate_jit(jax.tree.map(lambda x: x[i], params), jax.random.PRNGKey(i), test)["best"] for i in range(n_seeds)]
    )


def test_location_trainer_end_to_end_resumable_and_learning(tmp_path):
    """init / run / finalize as train.py calls them (4 seeds vmapped); run(run(s, 5), 5) ==
    run(s, 10); 150 updates raise the best candidate's value on held-out maps; figures written."""
    trainer = make_trainer(Config(objective="mu", **SMALL), "MU-location")
    assert isinstance(trainer, Trainer)
    assert trainer.num_updates == 150 and trainer.steps_per_update == 16
    s0 = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(0), 4))
    run5, run10 = _run_vmapped(trainer, 5), _run_vmapped(trainer, 10)
    a, m5 = run5(run5(s0)[0])
    b, m10 = run10(s0)
    assert m10["return"].shape == (4, 10) and np.all(np.isfinite(np.asarray(m10["return"])))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    s = b
    for _ in range(14):
        s, _ = run10(s)
    assert int(s.update[0]) == 150
    assert _mean_best(trainer, s.params) > _mean_best(trainer, s0.params) + 0.02
    trainer.finalize(s, tmp_path)
    for name in ("coverage.png", "action_ordering.png", "mu_summary.json"):
        assert (tmp_path / name).stat().st_size > 0
    summary = json.loads((tmp_path / "mu_summary.json").read_text())
    assert sum(summary["best_index_hist"]) == 4 * 64 and len(summary["ucb_index_hist"]) == 3


def test_peaks2d_trainer_runs_with_pathwise_gaussian_heads():
    cfg = Config(objective="mu", num_candidates=3, batch_size=4, channels=4, eval_states=8, search_budget=6)
    trainer = make_trainer(cfg, "MU-peaks2d")
    assert trainer.gradient == "pathwise" and trainer.head == "gaussian"
    s, metrics = jax.jit(lambda k: trainer.run(trainer.init(k), 2))(jax.random.PRNGKey(0))
    assert metrics["return"].shape == (2,) and np.all(np.isfinite(np.asarray(metrics["loss"])))
    assert int(s.update) == 2


def test_coverage_and_ordering_figures_for_continuous_actions(tmp_path):
    from mu_jax import plots

    rng = np.random.default_rng(0)
    acts = rng.uniform(size=(50, 4, 2))
    plots.coverage_figure({"a": acts, "b": acts[:, ::-1]}, "continuous", None, tmp_path / "cov.png")
    plots.ordering_figure({"a": (rng.integers(0, 4, 50), rng.integers(0, 4, 50))}, 4, tmp_path / "ord.png")
    assert (tmp_path / "cov.png").stat().st_size > 0 and (tmp_path / "ord.png").stat().st_size > 0


def test_objectives_are_wired_to_their_generators():
    """Plain policy: one head whose samples are the m candidates; the others: one head each."""
    trainers = {o: make_trainer(Config(objective=o, **SMALL), "MU-location") for o in ("mu", "max", "policy", "diversity")}
    assert trainers["policy"].n_heads == 1
    assert all(trainers[o].n_heads == 3 for o in ("mu", "max", "diversity"))
    one_head = {"logits": jnp.arange(300.0).reshape(1, 1, 3, 100)}
    expanded = jax.vmap(lambda d: gen.expand_heads(d, 3))(one_head)
    assert expanded["logits"].shape == (1, 3, 3, 100)
    np.testing.assert_array_equal(expanded["logits"][:, 0], expanded["logits"][:, 2])
    with pytest.raises(ValueError, match="cannot make"):
        gen.expand_heads({"logits": jnp.zeros((2, 3, 100))}, 3)


@pytest.mark.slow
def test_mu_beats_max_on_the_location_game():
    """The paper's ordering on a short budget (lr 1e-4 x 3000 updates, 8 channels, 2 seeds)."""
    results = {}
    for objective in ("mu", "max"):
        cfg = Config(objective=objective, channels=8, lr=1e-4, total_steps=3000)
        trainer = make_trainer(cfg, "MU-location")
        s0 = jax.vmap(trainer.init)(jax.random.split(jax.random.PRNGKey(0), 2))
        states, _ = _run_vmapped(trainer, 3000)(s0)
        results[objective] = float(_mean_best(trainer, states.params))
    assert results["mu"] > results["max"] + 0.02, results


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown objective"):
        make_trainer(Config(objective="nope"), "MU-location")
    with pytest.raises(ValueError, match="pathwise"):
        make_trainer(Config(gradient="pathwise"), "MU-location")
    with pytest.raises(ValueError, match="does not fit"):
        make_trainer(Config(head="beta"), "MU-location")
    with pytest.raises(ValueError, match="search_budget"):
        make_trainer(Config(search_budget=4), "MU-location")
    with pytest.raises(ValueError, match="not an MU domain"):
        make_trainer(Config(), "Probe-constant")
    with pytest.raises(ValueError, match="orig"):
        make_trainer(Config(baseline=True, estimator="orig"), "MU-location")
