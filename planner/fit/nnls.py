"""Non-negative least squares with three unknowns, for stacks of small problems at once: the linear part
of a variable-projection fit (planner.fit.vpnls, planner.fit.gadre), where for fixed exponents a loss is
a non-negative combination of three terms."""

from __future__ import annotations

import itertools

import numpy as np

SUPPORTS = [np.array(s) for r in (1, 2, 3) for s in itertools.combinations(range(3), r)]


def nnls3(gram: np.ndarray, rhs: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative least squares with three unknowns for a stack of normal equations (S, 3, 3) and
    (S, 3): the best feasible solution over the 7 supports, and its residual sum of squares."""
    s = len(gram)
    best, best_sse = np.zeros((s, 3)), np.full(s, np.inf)
    for idx in SUPPORTS:
        sub = gram[:, idx[:, None], idx[None, :]]
        with np.errstate(all="ignore"):
            solvable = np.abs(np.linalg.det(sub)) > 1e-300
            coef = np.zeros((s, len(idx)))
            coef[solvable] = np.linalg.solve(sub[solvable], rhs[solvable][:, idx, None])[..., 0]
        full = np.zeros((s, 3))
        full[:, idx] = coef
        sse = yy - 2 * np.einsum("si,si->s", full, rhs) + np.einsum("si,sij,sj->s", full, gram, full)
        better = solvable & np.all(coef >= 0, axis=1) & np.isfinite(sse) & (sse < best_sse)
        best[better], best_sse[better] = full[better], sse[better]
    return best, best_sse
