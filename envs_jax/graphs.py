"""Graph utilities for the graph environments (ERA), computed once in numpy at construction.

All functions take a symmetric 0/1 adjacency matrix ``adj`` of shape (K, K) with a zero
diagonal (nodes 0..K-1) and return dense (K, K) matrices that the jitted environment then
only gathers from, so nothing here runs inside ``jit``.

- ``check_graph``: one clear ``ValueError`` for a malformed adjacency / edge-cost pair.
- ``hop_distances``: fewest-edge distances by breadth-first search (-1 = unreachable).
- ``bfs_path_costs``: the summed edge cost along THE fewest-edge path that a breadth-first
  search from the source finds when it visits neighbours in ascending index order and keeps
  the first parent that reaches a node. This is the path ``networkx.shortest_path`` (no
  weight) returns for a graph built from a numpy matrix, i.e. what IAR's original ERA code
  charges for a move. On ERA-v1..v5 every fewest-edge path between two nodes has the same
  cost, so the tie-break does not matter there (it does on the unused v6..v10 graphs).
- ``min_path_costs``: least-cost path costs (Floyd-Warshall on edge costs), the other
  reading of "shortest-path cost".
"""

from __future__ import annotations

from collections import deque

import numpy as np


def check_graph(adj: np.ndarray, cost: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate and return ``(adj, cost)`` as ``(int64 (K,K), float64 (K,K) | None)``.

    ``cost`` follows the ERA data convention: edge cost > 0 on edges, 0 on the diagonal,
    -1 where there is no edge.
    """
    adj = np.asarray(adj)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1] or adj.shape[0] == 0:
        raise ValueError(f"adjacency must be a non-empty square matrix, got shape {adj.shape}")
    if not np.isin(adj, (0, 1)).all():
        raise ValueError("adjacency entries must be 0 or 1")
    if not (adj == adj.T).all():
        raise ValueError("adjacency must be symmetric (undirected graph)")
    if np.diag(adj).any():
        raise ValueError("adjacency must have a zero diagonal (no self-loops)")
    adj = adj.astype(np.int64)
    if cost is None:
        return adj, None
    cost = np.asarray(cost, dtype=np.float64)
    if cost.shape != adj.shape:
        raise ValueError(f"cost matrix shape {cost.shape} differs from adjacency shape {adj.shape}")
    if not ((cost > 0) == (adj > 0)).all():
        raise ValueError("cost matrix must be > 0 exactly on the edges of the adjacency matrix")
    if not np.allclose(cost, cost.T):
        raise ValueError("cost matrix must be symmetric")
    return adj, cost


def _bfs_parents(adj: np.ndarray, source: int) -> np.ndarray:
    """Parent of each node in the BFS tree from ``source`` (ascending neighbour order,
    first discovery wins); -1 for the source and unreachable nodes, -2 marks unreachable."""
    k = adj.shape[0]
    parent = np.full(k, -2, dtype=np.int64)
    parent[source] = -1
    queue = deque([source])
    while queue:
        u = queue.popleft()
        for w in np.flatnonzero(adj[u]):  # ascending index order
            if parent[w] == -2:
                parent[w] = u
                queue.append(w)
    return parent


def hop_distances(adj: np.ndarray) -> np.ndarray:
    """(K, K) int64 fewest-edge distances; -1 where no path exists."""
    adj, _ = check_graph(adj)
    k = adj.shape[0]
    hops = np.full((k, k), -1, dtype=np.int64)
    for s in range(k):
        parent = _bfs_parents(adj, s)
        for t in range(k):
            if parent[t] == -2:
                continue
            n, x = 0, t
            while parent[x] != -1:
                x, n = parent[x], n + 1
            hops[s, t] = n
    return hops


def bfs_path_costs(adj: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(K, K) float64 summed edge cost along the BFS (fewest-edge) path with ascending-index
    tie-break (see module docstring); -1 where no path exists."""
    adj, cost = check_graph(adj, cost)
    k = adj.shape[0]
    out = np.full((k, k), -1.0)
    for s in range(k):
        parent = _bfs_parents(adj, s)
        for t in range(k):
            if parent[t] == -2:
                continue
            total, x = 0.0, t
            while parent[x] != -1:
                total += cost[parent[x], x]
                x = parent[x]
            out[s, t] = total
    return out


def min_path_costs(adj: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(K, K) float64 least-cost path costs (Floyd-Warshall); -1 where no path exists."""
    adj, cost = check_graph(adj, cost)
    k = adj.shape[0]
    d = np.where(adj > 0, cost, np.inf)
    np.fill_diagonal(d, 0.0)
    for m in range(k):
        d = np.minimum(d, d[:, m : m + 1] + d[m : m + 1, :])
    return np.where(np.isfinite(d), d, -1.0)
