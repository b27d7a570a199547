"""Environment registry: ``make(env_id) -> (env, env_params)``.

Our own environments are listed here by id with the module that builds them, imported
lazily so that importing ``envs_jax`` stays cheap and an environment's data is read only
when it is asked for. Any id we do not own is passed through to ``gymnax.make``
(``CartPole-v1``, ``Acrobot-v1``, ...), so code written for gymnax keeps working.

Every factory has the signature ``factory(**kwargs) -> (env, env_params)``: it builds the env,
which builds its own default params (gymnax's way), and returns ``(env, env.default_params)``
(with overrides applied). ``env.name`` is the id, so ``make(env.name)`` rebuilds the env. What
an env offers algorithms beyond gymnax is declared by the protocols of ``envs_jax.contracts``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import gymnax

# env id -> "module:factory", plus the keyword arguments the factory is called with.
_REGISTRY: dict[str, tuple[str, dict[str, Any]]] = {
    # Probe environments with analytically known values (engine tests).
    "Probe-constant": ("envs_jax.probes:make_probe", {"kind": "constant"}),
    "Probe-two-step": ("envs_jax.probes:make_probe", {"kind": "two_step"}),
    "Probe-obs-reward": ("envs_jax.probes:make_probe", {"kind": "obs_reward"}),
    "Probe-action-reward": ("envs_jax.probes:make_probe", {"kind": "action_reward"}),
    "Probe-nan-reward": ("envs_jax.probes:make_probe", {"kind": "nan_reward"}),
    "Probe-cost": ("envs_jax.probes:make_probe", {"kind": "cost"}),
    "Safe-bandit": ("envs_jax.safe_probes:make_safe_bandit", {}),
    "Safe-bandit-box": ("envs_jax.safe_probes:make_safe_bandit", {"continuous": True}),
    # PASPO allocation tasks (Winkel et al. 2024). The paper's ids are the original code's envs
    # (niklasdbs/paspo); -v0 = the project's earlier variants (their RESULTS_paspo numbers);
    # the scaling ids synth-20/50/100 keep the v0 dynamics (original weights exist for n = 7 only).
    "PASPO-synth-7": ("envs_jax.paspo_synth_orig:make_synth_orig", {}),
    "PASPO-compute-9": ("envs_jax.paspo_compute_orig:make_compute_orig", {}),
    "PASPO-portfolio-13": ("envs_jax.paspo_portfolio_orig:make_portfolio_orig", {}),
    "PASPO-synth-7-v0": ("envs_jax.paspo_synth:make_synth", {"n": 7, "name_suffix": "-v0"}),
    "PASPO-compute-9-v0": ("envs_jax.paspo_compute:make_compute", {}),
    "PASPO-portfolio-13-v0": ("envs_jax.paspo_portfolio:make_portfolio", {}),
    "PASPO-synth-20": ("envs_jax.paspo_synth:make_synth", {"n": 20}),
    "PASPO-synth-50": ("envs_jax.paspo_synth:make_synth", {"n": 50}),
    "PASPO-synth-100": ("envs_jax.paspo_synth:make_synth", {"n": 100}),
    "PASPO-capacity-7": ("envs_jax.paspo_capacity:make_capacity", {}),
    # ERA (IAR, Chen et al. 2023).
    **{f"ERA-v{v}": ("envs_jax.era:make_era", {"version": v}) for v in range(1, 6)},
    "ERA-nocstr-v5": ("envs_jax.era:make_era", {"version": 5, "constrained": False}),
    "ERA-partial": ("envs_jax.era:make_era_partial", {}),
    # Pistonball (IAR's second benchmark; PettingZoo butterfly, centrally controlled).
    **{f"Pistonball-{v}": ("envs_jax.pistonball:make_pistonball", {"version": v}) for v in ("v1", "v2", "v3")},
    **{f"Pistonball-cstr-{v}": ("envs_jax.pistonball:make_pistonball", {"version": f"cstr-{v}"}) for v in ("v1", "v2")},
    # Pistonball with the rendered (96, 96, 1) image observation (the original's CNN input; encoder="cnn")
    **{f"Pistonball-image-{v}": ("envs_jax.pistonball:make_pistonball", {"version": v, "obs_type": "image"})
       for v in ("v1", "v2", "v3", "cstr-v1", "cstr-v2")},
    # DRA tasks (Patel, Acerbi, Pouget 2020).
    "DRA-maze": ("envs_jax.dra_tasks:make_maze", {}),
    "DRA-huys": ("envs_jax.dra_tasks:make_huys", {}),
    "DRA-mountaincar": ("envs_jax.dra_tasks:make_mountaincar", {}),
    # MU domains (Ahmad, Lelis, Bowling 2020).
    "MU-location": ("envs_jax.mu_domains:make_location", {}),
    "MU-peaks2d": ("envs_jax.mu_domains:make_peaks2d", {}),
    # Curling hammer shot (Yee, Lisy, Bowling 2016; the MU paper's curling domain).
    "MU-curling": ("envs_jax.curling:make_curling", {}),
    # Toy-Partial (IAR App. C: Singh, Jaakkola, Jordan 1994, Sec. 3.1, 2-d actions).
    "Toy-Partial": ("envs_jax.toy_partial:make_toy_partial", {}),
}


def registered_ids() -> list[str]:
    """Ids this package owns (gymnax ids are accepted as well)."""
    return sorted(_REGISTRY)


def _resolve(target: str) -> Callable[..., Any]:
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def make(env_id: str, **kwargs: Any):
    """Build ``(env, env_params)`` for ``env_id``.

    Keyword arguments override the registered ones (for example ``make("PASPO-synth-20",
    seed=3)``). Unknown ids raise one ``ValueError`` listing what exists.
    """
    if env_id in _REGISTRY:
        target, default_kwargs = _REGISTRY[env_id]
        return _resolve(target)(**{**default_kwargs, **kwargs})
    if env_id in gymnax.registered_envs:
        if kwargs:
            raise ValueError(f"gymnax env {env_id!r} takes no keyword arguments, got {sorted(kwargs)}")
        return gymnax.make(env_id)
    raise ValueError(
        f"unknown env id {env_id!r}; ours: {', '.join(registered_ids())}; "
        f"or any gymnax id ({', '.join(sorted(gymnax.registered_envs)[:6])}, ...)"
    )
