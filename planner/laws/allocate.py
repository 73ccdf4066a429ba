"""Allocation beyond the closed forms: numerical optimum, data-constrained and inference-aware sizing.

Each searches a log-spaced grid in N (vectorised), then polishes the best cell with a bounded
scalar minimiser, so the answer does not depend on a starting guess.
"""

from __future__ import annotations

import math

import numpy as np

from planner.errors import PlannerError
from planner.laws import ChinchillaLoss, Law

GRID = 2001


def _polish(objective, log_grid: np.ndarray, values: np.ndarray) -> float:
    from scipy.optimize import minimize_scalar  # lazy: scipy costs ~0.2 s to import

    if not np.isfinite(values).any():  # a law whose loss leaves float range everywhere near the optimum
        raise PlannerError("the law gives no finite loss near this allocation; check its coefficients")
    i = int(np.nanargmin(values))
    lo, hi = log_grid[max(i - 1, 0)], log_grid[min(i + 1, len(log_grid) - 1)]
    res = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
    return float(res.x) if res.fun <= values[i] else float(log_grid[i])


def numeric_optimum(law: Law, flops: float, unique_tokens: float | None = None) -> tuple[float, float]:
    """argmin over N of L(N, C/6N), optionally with Muennighoff's effective N', D'."""
    if law.loss is None:
        raise PlannerError(f"law '{law.name}' does not predict loss, so it has no loss-minimising allocation")
    centre = math.log(float(law.optimal_params(flops)))
    log_n = np.linspace(centre - 7.0, centre + 7.0, GRID)  # three decades either side

    def loss(ln):
        with np.errstate(over="ignore", divide="ignore"):  # inf far from the optimum is a valid "worse"
            n = np.exp(ln)
            return law.predict_loss(n, flops / (6.0 * n), unique_tokens)

    best = _polish(lambda ln: float(loss(ln)), log_n, loss(log_n))
    n = math.exp(best)
    return n, flops / (6.0 * n)


def inference_aware(law: Law, target_loss: float, inference_tokens: float) -> tuple[float, float]:
    """Sardana et al. 2024: minimise 6·N·D_train + 2·N·D_inference subject to L(N, D_train) = target."""
    lo = law.loss
    if not isinstance(lo, ChinchillaLoss):
        raise PlannerError(f"needs a law with a Chinchilla-form loss; '{law.name}' has none", "inference_tokens")
    e_, a_, b_, al, be = lo.E.value, lo.A.value, lo.B.value, lo.alpha.value, lo.beta.value
    if target_loss <= e_:
        raise PlannerError(f"{target_loss:g} is at or below the law's irreducible loss E = {e_:.4g}", "target_loss")
    # Below N_min even infinite data cannot reach the target: A/N^alpha alone exceeds L - E.
    log_n_min = math.log(a_ / (target_loss - e_)) / al
    log_n = log_n_min + np.geomspace(1e-9, 25.0, GRID)

    def total(ln):
        # inf on the far edge of the grid is a valid "worse"; require_finite() guards the answer
        with np.errstate(over="ignore", divide="ignore"):
            n = np.exp(ln)
            slack = target_loss - e_ - a_ / n**al
            d = (b_ / slack) ** (1.0 / be)
            return 6.0 * n * d + 2.0 * n * inference_tokens

    best = _polish(lambda ln: float(total(ln)), log_n, total(log_n))
    n = math.exp(best)
    try:
        d = (b_ / (target_loss - e_ - a_ / n**al)) ** (1.0 / be)
    except (OverflowError, ZeroDivisionError):  # beyond float range: the plan refuses it by name
        d = math.inf
    return n, d


def at_multiplier(flops, tokens_per_param: float):
    """(N, D) for compute C at a fixed token multiplier M = D/N (Gadre et al. 2024's over-training):
    C = 6·N·(M·N), so N = √(C / 6M) and D = M·N. Vectorised over C."""
    n = np.sqrt(np.asarray(flops, dtype=float) / (6.0 * tokens_per_param))
    return n, tokens_per_param * n


def flops_for_loss_at(law: Law, target_loss: float, tokens_per_param: float) -> float:
    """The compute at which a model trained at M tokens per parameter reaches `target_loss`."""
    if law.loss is None:
        raise PlannerError(f"law '{law.name}' does not predict loss; choose one that does", "target_loss")

    def loss(log_c: float) -> float:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            n, d = at_multiplier(math.exp(log_c), tokens_per_param)
            return float(law.predict_loss(n, d))

    a, b = math.log(1e6), math.log(1e40)
    low_end, high_end = loss(a), loss(b)
    if not (high_end < target_loss < low_end):  # the loss falls monotonically with C at fixed M
        raise PlannerError(f"{target_loss:g} is outside what law '{law.name}' reaches at {tokens_per_param:g} tokens per "
                           f"parameter ({high_end:.4g} to {low_end:.4g})", "target_loss")
    for _ in range(200):
        mid = 0.5 * (a + b)
        if loss(mid) > target_loss:
            a = mid
        else:
            b = mid
    return math.exp(0.5 * (a + b))
