"""The original IAR code's graph encoder for ERA (``GnnExtractor`` + ``DiffPoolEncoder`` of
cameron-chen/flow-iar, run with ``-fea_ext gnn --embedding_vars_gnn_extractor 2 1 3 3 2 1``),
as an option of the IAR policy (``IARConfig(encoder="gcn")``; the ``paper`` preset).

ERA's observation is the per-node table (K, L + 2 + K) (``envs_jax.era``): integer features
(defended in {0, 1}; the L resource slots in {0..L-1}, padded with L; attacked in {0, 1})
and the adjacency row. Per node the integer features are embedded (64-d, one table per
group: (2 classes, 1 column), (L, L), (2, 1); the padding value, = the number of classes,
embeds to zero) and summed, then

    s  = GNN_pool(x, A)    (K, C),  C = ceil(K / 4) clusters
    z  = GNN_embed(x, A)   (K, 64)
    x' = softmax(s)^T z,  A' = softmax(s)^T A softmax(s)          (dense DiffPool)
    h  = Linear(64, out)(mean_nodes GNN_embed2(x', A'))

with GNN(in, hidden, out) = two dense GCN layers, each ``relu((A + I) x W + b)`` (PyG's
``DenseGCNConv`` without normalisation: the diagonal of A set to 1). Deviation: the
original applies BatchNorm1d after each GCN layer with batch statistics; our policy is
evaluated one state at a time (the engine ``vmap``s it), so there is no batch to normalise
over, and the layers are used without it. DiffPool's auxiliary link / entropy losses are
computed by the original but not added to its loss; they are not computed here.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def dense_gcn(x: jax.Array, adj: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """(A with unit diagonal) @ x @ W + b for x (N, C_in), adj (N, N) -> (N, C_out)."""
    n = adj.shape[-1]
    a = jnp.where(jnp.eye(n, dtype=bool), 1.0, adj)
    return a @ (x @ kernel) + bias


class DenseGCN(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x, adj):
        kernel = self.param("kernel", nn.initializers.glorot_uniform(), (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return dense_gcn(x, adj, kernel, bias)


class GNN(nn.Module):
    """Two dense GCN layers with ReLU: in -> hidden -> out."""

    hidden: int
    out: int

    @nn.compact
    def __call__(self, x, adj):
        x = nn.relu(DenseGCN(self.hidden)(x, adj))
        return nn.relu(DenseGCN(self.out)(x, adj))


class GraphEncoder(nn.Module):
    """ERA observation (flat, K (L + 2 + K)) -> features (``out``,) (module docstring)."""

    num_nodes: int  # K
    num_rsc: int  # L
    hidden: int = 64
    out: int = 64

    def groups(self):
        """(classes, columns) of the integer feature groups, in column order."""
        return ((2, 1), (self.num_rsc, self.num_rsc), (2, 1))

    @nn.compact
    def __call__(self, obs):
        k, lr = self.num_nodes, self.num_rsc
        width = lr + 2 + k
        if obs.shape[-1] != k * width:
            raise ValueError(f"gcn encoder expects an ERA observation of K (L + 2 + K) = {k * width} entries, got {obs.shape}")
        table = obs.reshape(k, width)
        feats, adj = table[:, : lr + 2].astype(jnp.int32), table[:, lr + 2 :]
        x, col = jnp.zeros((k, self.hidden)), 0
        for i, (n_cls, n_var) in enumerate(self.groups()):
            idx = feats[:, col : col + n_var]  # (K, n_var)
            emb = nn.Embed(n_cls + 1, self.hidden, name=f"embed_{i}")(jnp.clip(idx, 0, n_cls))
            emb = emb * (idx < n_cls)[..., None]  # padding (= n_cls) embeds to zero
            x = x + emb.sum(axis=1)
            col += n_var
        clusters = math.ceil(0.25 * k)
        s = jax.nn.softmax(GNN(self.hidden, clusters, name="pool")(x, adj), axis=-1)  # (K, C)
        z = GNN(self.hidden, self.hidden, name="embed")(x, adj)  # (K, H)
        x1, adj1 = s.T @ z, s.T @ adj @ s
        h = GNN(self.hidden, self.hidden, name="embed2")(x1, adj1).mean(axis=0)
        return nn.Dense(self.out, name="head")(h)
