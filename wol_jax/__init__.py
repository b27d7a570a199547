"""Wol-DDPG (Dulac-Arnold et al. 2015): the Wolpertinger architecture on an off-policy
DDPG trainer (``wol_jax.trainer``), ``--algo wol-ddpg``; exact k-NN in the action
embedding (``wol_jax.knn``)."""
