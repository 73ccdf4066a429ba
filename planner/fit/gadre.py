"""Over-training (Gadre et al. 2024, arXiv 2403.08540): L(C, M) = E + (a·M^η + b·M^−η)·C^−η, with the token
multiplier M = D/N and C = 6ND, fitted as the authors do: least squares on the loss itself.

For fixed η the loss is linear in (E, a, b), so the fit profiles η (non-negative least squares for the
other three at each value, on a grid, then golden-section refinement around the best): a search in one
dimension that cannot miss the optimum the way 128 multi-start curve_fit calls can. Many data sets
(bootstrap resamples, as row weights) are profiled at once.

With C = 6ND the law is Chinchilla's L(N, D) with tied exponents: α = β = 2η, A = a·6^−η, B = b·6^−η
(the identity `as_chinchilla` uses), so a law file from it plans like any other. The coefficients a and b
are named a_M and b_M here: planner's a and b are the allocation exponents (N_opt ∝ C^a).
"""

from __future__ import annotations

import math

import numpy as np

from planner.fit.nnls import nnls3

ETA_GRID = np.linspace(0.02, 1.0, 197)  # published fits: η ≈ 0.1-0.2 (the loss exponent in C)
GOLDEN = (math.sqrt(5) - 1) / 2
REFINE = 60  # golden-section steps: the bracket shrinks to 0.618^60 of a grid step


def _profile(eta: np.ndarray, ln_m: np.ndarray, ln_c: np.ndarray, loss: np.ndarray, weights: np.ndarray):
    """(E, a, b) and the weighted residual sum of squares at one η per data set (rows of `weights`)."""
    x1 = np.exp(eta[:, None] * (ln_m - ln_c))  # M^η C^−η, per data set
    x2 = np.exp(-eta[:, None] * (ln_m + ln_c))  # M^−η C^−η
    gram = np.empty((len(eta), 3, 3))
    gram[:, 0, 0] = weights.sum(axis=1)
    gram[:, 0, 1] = gram[:, 1, 0] = (weights * x1).sum(axis=1)
    gram[:, 0, 2] = gram[:, 2, 0] = (weights * x2).sum(axis=1)
    gram[:, 1, 1] = (weights * x1 * x1).sum(axis=1)
    gram[:, 2, 2] = (weights * x2 * x2).sum(axis=1)
    gram[:, 1, 2] = gram[:, 2, 1] = (weights * x1 * x2).sum(axis=1)
    wl = weights * loss
    rhs = np.column_stack([wl.sum(axis=1), (wl * x1).sum(axis=1), (wl * x2).sum(axis=1)])
    return nnls3(gram, rhs, (wl * loss).sum(axis=1))


def fit(params: np.ndarray, tokens: np.ndarray, loss: np.ndarray, weights: np.ndarray | None = None) -> dict:
    """E, a_M, b_M, eta (arrays, one per data set: a row of `weights`, default one set of all runs) and the
    residual sum of squares."""
    ln_m, ln_c = np.log(tokens / params), np.log(6.0 * params * tokens)
    w = np.ones((1, len(loss))) if weights is None else np.asarray(weights, dtype=float)
    sets = len(w)
    grid_sse = np.empty((sets, len(ETA_GRID)))
    for j, eta in enumerate(ETA_GRID):
        grid_sse[:, j] = _profile(np.full(sets, eta), ln_m, ln_c, loss, w)[1]
    k = np.argmin(np.where(np.isfinite(grid_sse), grid_sse, np.inf), axis=1)
    lo = ETA_GRID[np.maximum(k - 1, 0)]
    hi = ETA_GRID[np.minimum(k + 1, len(ETA_GRID) - 1)]
    for _ in range(REFINE):  # golden section on each set's bracket at once
        left, right = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
        f_left = _profile(left, ln_m, ln_c, loss, w)[1]
        f_right = _profile(right, ln_m, ln_c, loss, w)[1]
        go_left = f_left <= f_right
        hi = np.where(go_left, right, hi)
        lo = np.where(go_left, lo, left)
    eta = (lo + hi) / 2
    coef, sse = _profile(eta, ln_m, ln_c, loss, w)
    return {"E": coef[:, 0], "a_M": coef[:, 1], "b_M": coef[:, 2], "eta": eta, "sse": sse}


def frontier(p, compute):
    """The loss at the best multiplier M* = (b/a)^(1/2η): E + 2·√(ab)·C^−η."""
    return p["E"] + 2.0 * np.sqrt(p["a_M"] * p["b_M"]) * np.power(compute, -p["eta"])


def loss_at(p, compute, multiplier):
    return p["E"] + (p["a_M"] * multiplier ** p["eta"] + p["b_M"] * multiplier ** -p["eta"]) * np.power(compute, -p["eta"])


def best_multiplier(p):
    return (p["b_M"] / p["a_M"]) ** (1.0 / (2.0 * p["eta"]))


def as_chinchilla(p) -> dict:
    """The same law as L(N, D) = E + A/N^α + B/D^β: α = β = 2η, A = a·6^−η, B = b·6^−η."""
    scale = 6.0 ** -np.asarray(p["eta"], dtype=float)
    return {"E": p["E"], "A": p["a_M"] * scale, "B": p["b_M"] * scale, "alpha": 2 * p["eta"], "beta": 2 * p["eta"]}
