"""How IAR's policies see an environment's actions: L dimensions of K classes each.

``ActionLayout.for_env`` reads the action space: a ``MultiDiscrete`` with equal entries
(ERA: L resources, K nodes) or a gymnax ``Discrete(K)`` (CartPole, Acrobot: L = 1, the env
takes a scalar). Policies work with int32 arrays of shape (L,) and convert at the boundary.

The validity oracle is the environment's pure ``is_valid(state, action, params)`` (ERA also
has the vmapped ``valid_mask``). An environment without one has no constraint: every
action is valid and the policies skip invalid-action rejection.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from envs_jax.contracts import ValidMask, ValidityOracle


@dataclasses.dataclass(frozen=True)
class ActionLayout:
    num_rsc: int  # L: action dimensions
    num_cls: int  # K: classes per dimension
    scalar: bool  # the environment takes a scalar (Discrete) instead of an (L,) array

    @classmethod
    def for_env(cls, env, env_params=None) -> "ActionLayout":
        space = env.action_space(env_params)
        if isinstance(space, spaces.Discrete):
            return cls(1, int(space.n), True)
        nvec = getattr(space, "nvec", None)
        if nvec is not None:
            nvec = np.asarray(nvec)
            if nvec.ndim != 1 or nvec.size == 0 or not (nvec == nvec[0]).all():
                raise ValueError(f"IAR policies need MultiDiscrete with equal entries (L x K), got nvec={nvec.tolist()}")
            if int(nvec[0]) < 2:
                raise ValueError(f"IAR policies need at least 2 classes per dimension, got {int(nvec[0])}")
            return cls(int(nvec.size), int(nvec[0]), False)
        raise ValueError(f"IAR policies support Discrete and MultiDiscrete action spaces, got {space!r}")

    @property
    def num_joint(self) -> int:
        """K ** L joint actions."""
        return self.num_cls**self.num_rsc

    @property
    def dim(self) -> int:
        """D = L K, the size of the flow's u."""
        return self.num_rsc * self.num_cls

    def to_env(self, a: jax.Array) -> jax.Array:
        """(L,) int -> the environment's action (a scalar for Discrete)."""
        return a[0] if self.scalar else a

    def from_env(self, action: jax.Array) -> jax.Array:
        """The environment's action -> (L,) int32."""
        return jnp.asarray(action, jnp.int32).reshape(self.num_rsc)

    def all_actions(self) -> jax.Array:
        """(K ** L, L) int32, joint index = sum_l a_l K^(L-1-l) (ERA's ``all_actions`` order)."""
        grid = np.indices((self.num_cls,) * self.num_rsc).reshape(self.num_rsc, -1).T
        return jnp.asarray(grid, jnp.int32)

    def joint_index(self, a: jax.Array) -> jax.Array:
        """(L,) int -> () joint index."""
        powers = self.num_cls ** np.arange(self.num_rsc - 1, -1, -1)
        return jnp.sum(a * jnp.asarray(powers, jnp.int32))


def has_constraints(env) -> bool:
    """True when the environment has a validity oracle that can reject actions
    (``is_valid``), unless it declares ``constrained = False`` (ERA-nocstr)."""
    return isinstance(env, ValidityOracle) and bool(getattr(env, "constrained", True))


def valid_mask(env, layout: ActionLayout, env_state, actions: jax.Array, env_params) -> jax.Array:
    """The oracle on candidate actions (S, L) for one state -> (S,) bool (all True without one)."""
    if not isinstance(env, ValidityOracle):
        return jnp.ones(actions.shape[:1], bool)
    if isinstance(env, ValidMask) and not layout.scalar:
        return env.valid_mask(env_state, actions, env_params)
    return jax.vmap(lambda a: env.is_valid(env_state, layout.to_env(a), env_params))(actions)
