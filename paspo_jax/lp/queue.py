"""A work queue of LPs: ``num`` dual simplex solves with ``slots`` in flight at a time.

A vmapped ``while_loop`` costs (batch size) x (pivots of the slowest LP); in the queue every LP
that finishes hands its slot to the next waiting one, so the cost is about (total pivots) plus
one slowest LP. Used by the batched interval LPs and the support function
(``paspo_jax.lp.batch``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from paspo_jax.lp.simplex import _RUNNING, _pivot, _Tol, _vertex

class _Done(NamedTuple):
    """What the work queue keeps of a finished LP."""

    basis: jax.Array
    x: jax.Array
    lam: jax.Array
    status: jax.Array
    nit: jax.Array


def _solve_queue(make_rows, load, start, num, slots, maxiter, tol: _Tol) -> _Done:
    """Solve ``num`` LPs with ``slots`` of them in flight at a time (a work queue).

    make_rows(data) -> _Rows builds one LP's rows from its per-LP data (shared
    arrays come from the closure so that they are not copied per slot);
    load(k) -> data loads LP ``k`` (a traced int) and start(data, k) -> _Simplex
    gives its starting state; all three are vmapped over slots.  Returns what is kept of every LP (:class:`_Done`, stacked), with the
    vertex of optimal bases recomputed by LU.
    """
    S = int(min(slots, num))
    slot_k = jnp.arange(S, dtype=jnp.int32)
    load_start = lambda k: (load(k), start(load(k), k))
    data, st = jax.vmap(load_start)(slot_k)
    keep = lambda s: _Done(s.basis, s.x, s.lam, s.status, s.nit)
    out = jax.tree.map(lambda a: jnp.zeros((num,) + a.shape[1:], a.dtype), keep(st))
    pivot = jax.vmap(lambda d, s: _pivot(make_rows(d), s, maxiter, tol))

    def body(carry):
        slot_k, data, st, out, nxt = carry
        st = pivot(data, st)
        done = (st.status != _RUNNING) & (slot_k < num)
        # Finished LPs leave their result in `out` ...
        where = jnp.where(done, slot_k, num)
        out = jax.tree.map(lambda o, a: o.at[where].set(a, mode="drop"), out, keep(st))
        # ... and their slots take the next LPs of the queue.
        new_k = jnp.where(done, nxt + jnp.cumsum(done, dtype=jnp.int32) - 1, slot_k)
        new_k = jnp.where(done & (new_k >= num), num, new_k).astype(jnp.int32)
        ld, ls = jax.vmap(load_start)(jnp.minimum(new_k, num - 1))
        ls = ls._replace(status=jnp.where(new_k < num, ls.status, 0).astype(jnp.int32))
        pick = lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
        data, st = jax.tree.map(pick, (ld, ls), (data, st))
        return new_k, data, st, out, (nxt + jnp.sum(done)).astype(jnp.int32)

    carry = (slot_k, data, st, out, jnp.int32(S))
    out = jax.lax.while_loop(lambda cr: jnp.any(cr[0] < num), body, carry)[3]
    # Exact vertices of the optimal bases, once for all LPs.
    data_all = jax.vmap(load)(jnp.arange(num, dtype=jnp.int32))
    x = jax.vmap(lambda d, b, s, x: _vertex(make_rows(d), b, s, x))(data_all, out.basis, out.status, out.x)
    return out._replace(x=x)
