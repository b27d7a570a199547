"""What algorithms ask of an environment, as runtime-checkable protocols.

Every env here is a gymnax ``Environment`` (``reset``, ``step`` with auto-reset, explicit
params). Algorithms need more than that; each extra need is one protocol below, and an
algorithm states it with ``require(env, Protocol, who="PASPO")``, which raises one
:class:`ContractError` (a ``ValueError``) naming the env, the protocol and every member the
env lacks. ``isinstance(env, Protocol)`` asks the same question without raising. Checks are
structural (``typing.runtime_checkable``: the members exist; signatures and values are not
checked), so gymnax wrappers that forward attributes (``LogWrapper`` ...) keep them.

- :class:`LinearConstraints` (PASPO and its baselines; ``PASPO-*``): ``num_entities``,
  ``constraints(state, params) -> (A (m, n), b (m,))`` float32, ``exact_constraints``.
- :class:`ValidityOracle` (IAR's rejection and masking; ``ERA-*``, ``PASPO-*``):
  ``is_valid(state, action, params) -> () bool``; :class:`ValidMask` adds the batched
  ``valid_mask(state, actions (S, ...), params) -> (S,) bool`` (``ERA-*``).
- :class:`Costs` (safe_jax; ``ERA-*``, ``PASPO-*``, ``Safe-*``, ``Probe-cost``): ``num_costs``.
- :class:`FixedStarts` (the engine's evaluation; ``ERA-*`` but ``ERA-partial``, ``Probe-*``, ``Safe-*``):
  ``reset_to(key, params, index) -> (obs, state)``.
- :class:`CandidateDomain` (MU; ``MU-*``): ``action_spec``, ``sample_state``,
  ``expected_reward``, ``noisy_reward``.
- :class:`Tabular` (DRA; ``DRA-*``): ``num_tabular_states(params)``, ``tabular_index(obs, params)``.

Optional extras of a tabular task (DRA falls back when absent): :class:`TabularLayout`,
:class:`TrialSchedule`, :class:`FixedHorizon`, :class:`KnownMemories`;
:class:`TrialSwitchParams` is a protocol on the *params* (the maze's switch trial).

Float64 rows: ``exact_constraints`` is ``(A, b)`` as float64 numpy, the rows
``constraints`` returns in float32 were rounded from (``None`` for state-dependent
constraints). Costs: ``num_costs = C`` declares that ``step`` reports ``info[COST_KEY]``
(``ppo_jax.engine.COST_KEY = "cost"``) of shape ``()`` (C = 1) or ``(C,)``, non-negative,
one per constraint; ``tests/test_env_contracts.py`` checks the declaration against a traced
step of every registered env.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

COST_KEY = "cost"  # info[COST_KEY]: a step's cost (the engine imports it from here)


class ContractError(ValueError):
    """An env lacks what an algorithm needs (raised by :func:`require`)."""


@runtime_checkable
class LinearConstraints(Protocol):
    """An allocation env: actions on the simplex over ``num_entities`` entities, inside
    ``A a <= b`` (``envs_jax.allocation``)."""

    num_entities: int  # n >= 2

    @property
    def exact_constraints(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Float64 ``(A (m, n), b (m,))`` the float32 rows were rounded from; None if state-dependent."""
        ...

    def constraints(self, state: Any, params: Any) -> tuple[jax.Array, jax.Array]:
        """``(A (m, n), b (m,))`` float32 in ``state`` (pure, jittable)."""
        ...


@runtime_checkable
class ValidityOracle(Protocol):
    """A pure validity oracle. An env may also set ``constrained = False`` to say its oracle
    rejects nothing but out-of-range actions (``ERA-nocstr``)."""

    def is_valid(self, state: Any, action: jax.Array, params: Any) -> jax.Array:
        """() bool: ``action`` is allowed in ``state`` (pure, jittable, vmappable)."""
        ...


@runtime_checkable
class ValidMask(ValidityOracle, Protocol):
    """A validity oracle with a batched form over candidate actions."""

    def valid_mask(self, state: Any, actions: jax.Array, params: Any) -> jax.Array:
        """``is_valid`` of each of ``actions`` (S, ...) in one state -> (S,) bool."""
        ...


@runtime_checkable
class Costs(Protocol):
    """Reports per-step costs in ``info[COST_KEY]``: shape ``()`` if ``num_costs == 1`` and
    the env reports a scalar, else ``(num_costs,)``."""

    num_costs: int


@runtime_checkable
class FixedStarts(Protocol):
    """Numbered evaluation starts (the original's evaluation envs)."""

    def reset_to(self, key: jax.Array, params: Any, index: Any) -> tuple[jax.Array, Any]:
        """Reset to evaluation start ``index`` (an int or traced int32; wraps around)."""
        ...


@runtime_checkable
class CandidateDomain(Protocol):
    """A one-step domain for candidate-action generators (MU, Ahmad et al. 2020)."""

    @property
    def action_spec(self) -> tuple[str, tuple[int, ...]]:
        """``("discrete", (factors, categories))`` or ``("continuous", (dim,))``."""
        ...

    def sample_state(self, key: jax.Array, params: Any) -> Any: ...

    def expected_reward(self, state: Any, action: jax.Array, params: Any) -> jax.Array:
        """Q(s, a), noise free."""
        ...

    def noisy_reward(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> jax.Array:
        """Q(s, a) plus the domain's observation noise."""
        ...


@runtime_checkable
class Tabular(Protocol):
    """A task a tabular agent can index (DRA, Patel et al. 2020)."""

    def num_tabular_states(self, params: Any = None) -> int: ...

    def tabular_index(self, obs: jax.Array, params: Any = None) -> jax.Array:
        """The int32 table row of ``obs`` (batched over leading axes)."""
        ...


@runtime_checkable
class TabularLayout(Protocol):
    """Optional: how the table rows lay out on a picture."""

    def tabular_grid_shape(self, params: Any = None) -> tuple[int, ...]: ...


@runtime_checkable
class TrialSchedule(Protocol):
    """Optional: params in force at a trial (the maze's switch)."""

    def params_for_trial(self, params: Any, trial: Any) -> Any: ...


@runtime_checkable
class FixedHorizon(Protocol):
    """Optional: the task's horizon T of DRA's Eq. 10 (else ``params.max_steps_in_episode``)."""

    def dra_horizon(self, params: Any = None) -> float: ...


@runtime_checkable
class KnownMemories(Protocol):
    """Optional: memories held fixed at known values (Huys: the last move's rewards)."""

    def known_memories(self, params: Any = None) -> tuple[Any, Any, Any]:
        """``(mask (S, A) bool, q (S, A), sigma (S, A))``."""
        ...


@runtime_checkable
class TrialSwitchParams(Protocol):
    """Env params with a trial at which the task changes (``MazeParams``)."""

    switch_trial: int


_WHAT = {  # how an error names each protocol ("env 'X' is not <this>")
    LinearConstraints: "an allocation env with linear constraints",
    ValidityOracle: "an env with a validity oracle",
    ValidMask: "an env with a batched validity oracle",
    Costs: "an env that reports costs",
    FixedStarts: "an env with fixed evaluation starts",
    CandidateDomain: "an MU domain",
    Tabular: "a tabular task",
    TabularLayout: "a tabular task with a grid layout",
    TrialSchedule: "a task with a trial schedule",
    FixedHorizon: "a task with a fixed horizon",
    KnownMemories: "a tabular task with known memories",
}


def members(protocol: type) -> list[str]:
    """The member names ``isinstance(env, protocol)`` checks, sorted."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass in (object, Protocol) or not getattr(klass, "_is_protocol", False):
            continue
        names |= set(getattr(klass, "__annotations__", {}))
        names |= {k for k in vars(klass) if not k.startswith("_")}
    return sorted(names)


def require(env: Any, protocol: type, who: str = "this algorithm") -> Any:
    """Return ``env`` if it satisfies ``protocol``, else raise one :class:`ContractError`
    naming ``who``, the env, the protocol and every missing member."""
    if not getattr(protocol, "_is_runtime_protocol", False):
        raise TypeError(f"require() takes a protocol of envs_jax.contracts, got {protocol!r}")
    if isinstance(env, protocol):
        return env
    missing = [
        m for m in members(protocol)
        if not hasattr(env, m) or (callable(getattr(protocol, m, None)) and getattr(env, m) is None)
    ]
    name = getattr(env, "name", None) or type(env).__name__
    what = _WHAT.get(protocol, f"a {protocol.__name__} env")
    raise ContractError(
        f"{who} needs {what} (envs_jax.contracts.{protocol.__name__}); env {name!r} is not {what}: "
        f"it lacks {', '.join(missing) or 'nothing visible (check the members)'}"
    )


__all__ = [
    "COST_KEY",
    "CandidateDomain",
    "ContractError",
    "Costs",
    "FixedHorizon",
    "FixedStarts",
    "KnownMemories",
    "LinearConstraints",
    "Tabular",
    "TabularLayout",
    "TrialSchedule",
    "TrialSwitchParams",
    "ValidMask",
    "ValidityOracle",
    "members",
    "require",
]
