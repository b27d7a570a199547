"""Independent numpy / scipy references shared by the LP, polytope and PASPO tests."""

from __future__ import annotations

import numpy as np
import scipy.optimize as so


def highs_bounds(A, b, prefix, i):
    """[min a_i, max a_i] by scipy HiGHS over {A a <= b, sum a = 1, 0 <= a <= 1,
    a_<i = prefix_<i} (NaN where infeasible)."""
    n = A.shape[1]
    A_eq = np.zeros((i + 1, n))
    A_eq[0] = 1.0
    A_eq[np.arange(1, i + 1), np.arange(i)] = 1.0
    b_eq = np.concatenate([[1.0], prefix[:i]])
    c = np.zeros(n)
    c[i] = 1.0
    out = []
    for sign in (1.0, -1.0):
        r = so.linprog(sign * c, A_ub=A, b_ub=b, A_eq=A_eq, b_eq=b_eq, bounds=(0, 1), method="highs")
        out.append(sign * r.fun if r.status == 0 else np.nan)
    return out


def uniform_points(A, b, num, seed):
    """Uniform points of the polytope by rejection from Dirichlet(1) (numpy: independent)."""
    rng = np.random.default_rng(seed)
    pts = np.zeros((0, A.shape[1]))
    while len(pts) < num:
        x = rng.dirichlet(np.ones(A.shape[1]), 20000)
        pts = np.concatenate([pts, x[np.all(x @ A.T <= b, axis=1)]])
    return pts[:num]
