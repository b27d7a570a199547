"""The algorithm registry: every algorithm of the project under one name and one signature.

An algorithm registers itself from its own package (``paspo_jax/algo.py`` and so on)::

    register(Algorithm(
        name="paspo", summary="...", default_env="PASPO-synth-7",
        configs={"ppo": PASPOPPOConfig, "paspo": PASPOConfig},
        build=build,                     # build(env_id, configs, mesh) -> ppo_jax.trainer.Trainer
        presets={"default": ..., "paper": ...},   # preset(env_id, overrides) -> configs
    ))

``configs`` maps a short name to a frozen config dataclass; every field is one command-line
option of ``train.py`` (its ``# comment`` is the option's help). A preset returns one instance
per config name with ``overrides`` (``{config name: {field: value}}``, the fields the user set)
applied; :func:`class_defaults` is the preset that only applies them to the classes' defaults.
The built-in algorithms are imported on first use (:data:`BUILTIN`), so asking for one name
does not import every package.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Configs = dict[str, Any]
Overrides = Mapping[str, Mapping[str, Any]]
Preset = Callable[[str, Overrides], Configs]

# name -> the module whose import registers it
BUILTIN: dict[str, str] = {
    "paspo": "paspo_jax.algo",
    "ppo": "ppo_jax.algo",
    "iar": "iar_jax.algo",
    "safe": "safe_jax.algo",
    "dra": "dra_jax.algo",
    "mu": "mu_jax.algo",
    "wol-ddpg": "wol_jax.algo",
}
_REGISTRY: dict[str, "Algorithm"] = {}


@dataclass(frozen=True)
class Algorithm:
    """One trainable algorithm.

    ``build(env_id, configs, mesh) -> Trainer`` (``ppo_jax.trainer.Trainer``); ``mesh`` is a
    ``jax.sharding.Mesh`` over devices or ``None``; bad ids or configs raise ``ValueError``.
    ``data_parallel``: one seed's envs may be split across devices (engine-based trainers).
    ``presets`` must hold ``"default"`` (finishes in minutes on a laptop CPU) and should hold
    ``"paper"`` (the paper's and original code's settings and budget). ``policy_cases`` puts
    the algorithm's policies into the Policy contract tests.
    """

    name: str
    summary: str
    default_env: str
    configs: Mapping[str, type]
    build: Callable[..., Any]
    presets: Mapping[str, Preset] = field(default_factory=dict)
    data_parallel: bool = False
    # small instances of every policy the algorithm trains, for the Policy contract suite
    # (tests/test_policy_contract.py): () -> [(name, small env id, factory(env, env_params) -> Policy)]
    policy_cases: Callable[[], list[tuple[str, str, Callable[..., Any]]]] | None = None

    def __post_init__(self) -> None:
        if not self.configs:
            raise ValueError(f"algorithm {self.name!r} needs at least one config class")
        for cls in self.configs.values():
            if not dataclasses.is_dataclass(cls):
                raise ValueError(f"algorithm {self.name!r}: config {cls!r} is not a dataclass")
        seen: dict[str, str] = {}
        for cname, cls in self.configs.items():
            for f in dataclasses.fields(cls):
                if f.init and f.name in seen:
                    raise ValueError(f"algorithm {self.name!r}: field {f.name!r} is in configs {seen[f.name]!r} and {cname!r}")
                seen[f.name] = cname
        if "default" not in self.presets:
            object.__setattr__(self, "presets", {"default": class_defaults(self.configs), **self.presets})

    @property
    def preset_names(self) -> tuple[str, ...]:
        return tuple(self.presets)

    def make_configs(self, preset: str = "default", env_id: str | None = None,
                     overrides: Overrides | None = None) -> Configs:
        """The configs of ``preset`` for ``env_id`` (default: ``default_env``) with ``overrides``."""
        if preset not in self.presets:
            raise ValueError(f"unknown preset {preset!r} for --algo {self.name}; choose one of: {', '.join(self.presets)}")
        overrides = overrides or {}
        unknown = set(overrides) - set(self.configs)
        if unknown:
            raise ValueError(f"--algo {self.name} has no config named {sorted(unknown)}")
        return self.presets[preset](env_id or self.default_env, overrides)

    def field_owner(self) -> dict[str, str]:
        """Field name -> the name of the config holding it (field names are unique)."""
        return {f.name: cname for cname, cls in self.configs.items() for f in dataclasses.fields(cls) if f.init}

    def to_json(self, configs: Configs) -> dict[str, dict]:
        return {name: dataclasses.asdict(cfg) for name, cfg in configs.items()}

    def from_json(self, stored: Mapping[str, Mapping[str, Any]]) -> Configs:
        """Inverse of :meth:`to_json` (JSON lists back to tuples where the field is a tuple)."""
        configs = {}
        for name, cls in self.configs.items():
            values = dict(stored[name])
            for f in dataclasses.fields(cls):
                if isinstance(values.get(f.name), list):
                    values[f.name] = tuple(values[f.name])
            configs[name] = cls(**values)
        return configs


def class_defaults(configs: Mapping[str, type]) -> Preset:
    """The preset "each class's defaults, with the overrides"."""

    def preset(env_id: str, overrides: Overrides) -> Configs:
        return {name: cls(**dict(overrides.get(name, {}))) for name, cls in configs.items()}

    return preset


def trainer_build(name: str, cls: type, make_trainer: Callable[[Any, str], Any]) -> Callable[..., Any]:
    """``build`` for an algorithm with one config and its own trainer (DRA, MU): checks that
    ``configs[name]`` is a ``cls`` and returns ``make_trainer(configs[name], env_id)``."""

    def build(env_id: str, configs: Configs, mesh=None):
        from ppo_jax.config import unpack_configs

        (cfg,) = unpack_configs(name, configs, **{name: cls})
        return make_trainer(cfg, env_id)

    return build


def replace_configs(base: Configs, overrides: Overrides) -> Configs:
    """``base`` with ``overrides`` applied by ``dataclasses.replace`` (validation runs again)."""
    return {name: dataclasses.replace(cfg, **dict(overrides.get(name, {}))) for name, cfg in base.items()}


def register(algo: Algorithm, *, replace: bool = False) -> Algorithm:
    """Make ``algo`` available under ``algo.name`` (``train.py --algo NAME``)."""
    if algo.name in _REGISTRY and not replace and _REGISTRY[algo.name] is not algo:
        raise ValueError(f"an algorithm named {algo.name!r} is already registered")
    _REGISTRY[algo.name] = algo
    return algo


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def names() -> list[str]:
    """Every known name: the built-in ones and those registered since."""
    return list(dict.fromkeys([*BUILTIN, *_REGISTRY]))


def policy_cases() -> list[tuple[str, str, Callable[..., Any]]]:
    """Every registered algorithm's ``policy_cases()``, names unique (the first one wins)."""
    cases: dict[str, tuple[str, str, Callable[..., Any]]] = {}
    for name in names():
        algo = get(name)
        for case in algo.policy_cases() if algo.policy_cases else ():
            cases.setdefault(case[0], case)
    return list(cases.values())


def get(name: str) -> Algorithm:
    """The algorithm registered as ``name`` (importing its built-in module on first use)."""
    if name not in _REGISTRY and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    if name not in _REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; choose one of: {', '.join(names())}")
    return _REGISTRY[name]
