"""Loss/error against compute: power laws (openCLIP's binned procedure), the saturating law, and
Chinchilla Approach 2 (IsoFLOP parabolas)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from planner.errors import PlannerError, PlannerWarning
from planner.fit import optim

# --- Pareto-frontier proxy: minimum per equal-width log-compute bin (Cherti et al. 2023) ---------


def frontier_bins(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bin centres in log10 C, minimum log10 error per bin, index of that point), non-empty bins only.

    As `binned_line_fit` in LAION-AI/scaling-laws-openclip: `np.histogram` edges over
    [min X, max X + 0.1] (log10), the minimum Y of each bin paired with the bin centre.
    """
    edges = np.histogram_bin_edges(x, bins=bins, range=(x.min(), x.max() + 0.1))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    # sorted by bin, then y, then row (lexsort is stable): each bin's first entry is its minimum, the
    # earliest row among equal minima as np.argmin picks it; one sort, however many bins
    order = np.lexsort((y, which))
    first = order[np.r_[True, np.diff(which[order]) != 0]]
    k = which[first]
    return 0.5 * (edges[k] + edges[k + 1]), y[first], first.astype(int)


PARETO = "pareto"  # `bins` value: the non-dominated runs instead of K bins
HULL = "hull"  # `bins` value: the lower convex hull of the non-dominated runs in log-log


def pareto_front(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, index) of the non-dominated runs: each is better than every run of less compute
    (the alternative frontier of Nezhurina et al. 2025 to binned minima). Ties in compute keep the best."""
    order = np.lexsort((y, x))
    picks, best = [], np.inf
    for i in order:
        if y[i] < best:
            picks.append(i)
            best = y[i]
    idx = np.array(picks, dtype=int)
    return x[idx], y[idx], idx


def lower_hull(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, index) of the non-dominated runs on their lower convex hull (x, y in log10): the runs no
    mixture of two others beats, Nezhurina et al.'s third frontier (monotone chain)."""
    px, py, idx = pareto_front(x, y)
    keep: list[int] = []
    for k in range(len(px)):
        while len(keep) >= 2:
            i, j = keep[-2], keep[-1]
            cross = (px[j] - px[i]) * (py[k] - py[i]) - (py[j] - py[i]) * (px[k] - px[i])
            if cross > 0:  # j lies on or above the chord from i to k: not on the lower hull
                break
            keep.pop()
        keep.append(k)
    keep_arr = np.array(keep, dtype=int)
    return px[keep_arr], py[keep_arr], idx[keep_arr]


def frontier(x: np.ndarray, y: np.ndarray, bins: int | str | None) -> tuple[np.ndarray, np.ndarray]:
    """The points a curve is fitted to: K-bin minima, the non-dominated runs, their lower hull, or all points."""
    if bins == PARETO:
        return pareto_front(x, y)[:2]
    if bins == HULL:
        return lower_hull(x, y)[:2]
    if bins:
        return frontier_bins(x, y, int(bins))[:2]
    return x, y


# --- power law: E = beta · C^alpha, least squares in log10-log10 --------------------------------


def fit_power(compute: np.ndarray, error: np.ndarray, bins: int | str | None = None) -> dict:
    x, y = frontier(np.log10(compute), np.log10(error), bins)
    if len(x) < 2 or np.ptp(x) == 0:
        raise PlannerError(f"a power law needs at least 2 points at different compute; got {len(x)}")
    design = np.column_stack([x, np.ones_like(x)])
    (slope, intercept), *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - (slope * x + intercept)
    with np.errstate(over="ignore"):
        beta = float(10.0**intercept)
    if not math.isfinite(beta) or beta == 0:
        raise PlannerError(f"the power law fit diverged (exponent {slope:.3g}): the compute values span too little to fit")
    return {"params": {"alpha": float(slope), "beta": beta}, "objective": float(resid @ resid),
            "converged": True, "points_x": 10.0**x, "points_y": 10.0**y}


def power_predict(params: Mapping[str, Any], compute):
    return params["beta"] * np.power(compute, params["alpha"])


# --- saturating: L(C) = C_c · C^(-alpha) + L_eps ------------------------------------------------


def saturating_objective(log_c: np.ndarray, log_y: np.ndarray, weights: np.ndarray | None = None):
    """Squared log residuals of log(exp(c − α·ln C) + exp(e)); theta rows = (c, alpha, e).

    log_c and log_y may be (n,) or (S, n) (a bootstrap resample per row); weights (S, n) mask
    padded points with 0.
    """

    def fun_grad(theta: np.ndarray, rows: np.ndarray):
        c, al, e = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
        xc = log_c[rows] if log_c.ndim == 2 else log_c
        yc = log_y[rows] if log_y.ndim == 2 else log_y
        t1 = c - al * xc
        t2 = np.broadcast_to(e, t1.shape)
        top = np.maximum(t1, t2)
        e1, e2 = np.exp(t1 - top), np.exp(t2 - top)
        total = e1 + e2
        r = top + np.log(total) - yc
        if weights is not None:
            w = weights[rows]
            r = r * np.sqrt(w)
        f = (r * r).sum(axis=1)
        d = 2.0 * r / total
        if weights is not None:
            d = d * np.sqrt(w)
        p1 = d * e1
        grad = np.column_stack([p1.sum(1), -(p1 * xc).sum(1), (d * e2).sum(1)])
        return f, grad

    return fun_grad


def saturating_starts(log_c: np.ndarray, log_y: np.ndarray) -> np.ndarray:
    alphas = (0.02, 0.05, 0.1, 0.2, 0.35, 0.6, 1.0)
    floors = np.log(np.exp(log_y.min()) * np.array([1e-3, 0.3, 0.6, 0.85, 0.97]))
    anchors = (log_y.max() + np.array([-1.0, 0.0, 1.0]))
    rows = [(anchor + al * log_c.min(), al, fl) for al, fl, anchor in itertools.product(alphas, floors, anchors)]
    return np.array(rows)


SATURATING_TOLERANCES: dict[str, Any] = {"ftol": 1e-13, "gtol": 1e-10, "ftol_floor": 0.0, "max_iter": 3000}


def saturating_theta(log_c: np.ndarray, log_y: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """The best optimum (c, alpha, e) from the grid of starts, its objective and whether it converged.
    On more than optim.SCREEN_POINTS points the grid runs on that many spread over compute, and its
    best optimum is refined on all of them."""
    if len(log_c) > optim.SCREEN_POINTS:
        keep = optim.spread_rows(np.argsort(log_c, kind="stable"), optim.SCREEN_POINTS)
        start = saturating_theta(log_c[keep], log_y[keep])[0][None, :]
    else:
        start = saturating_starts(log_c, log_y)
    res = optim.bfgs_chunked(saturating_objective(log_c, log_y), start, len(log_c), **SATURATING_TOLERANCES)
    best = int(np.nanargmin(res.fun))
    return res.x[best], float(res.fun[best]), bool(res.converged[best])


def fit_saturating(compute: np.ndarray, error: np.ndarray, bins: int | str | None = None) -> dict:
    x, y = frontier(np.log10(compute), np.log10(error), bins)
    if len(x) < 4:
        raise PlannerError(f"the saturating law has 3 parameters and needs at least 4 points; got {len(x)}")
    theta, objective, converged = saturating_theta(x * math.log(10), y * math.log(10))
    c, al, e = theta
    return {"params": {"C_c": float(math.exp(c)), "alpha": float(al), "L_eps": float(math.exp(e))},
            "objective": objective, "converged": converged,
            "theta": theta, "points_x": 10.0**x, "points_y": 10.0**y}


def saturating_predict(params: Mapping[str, Any], compute):
    return params["C_c"] * np.power(compute, -params["alpha"]) + params["L_eps"]


# --- Chinchilla Approach 2: a parabola in log N per IsoFLOP budget --------------------------------


def group_budgets(flops: np.ndarray, tolerance_decades: float) -> np.ndarray:
    """Label each run with its IsoFLOP budget: runs within `tolerance_decades` of the previous one
    (in sorted log10 C) share a budget, which absorbs rounding in logged FLOPs."""
    order = np.argsort(flops)
    logs = np.log10(flops[order])
    labels_sorted = np.concatenate([[0], np.cumsum(np.diff(logs) > tolerance_decades)])
    labels = np.empty(len(flops), dtype=int)
    labels[order] = labels_sorted
    return labels


def fit_isoflop(params: np.ndarray, flops: np.ndarray, loss: np.ndarray, tolerance_decades: float = 0.05) -> dict:
    labels = group_budgets(flops, tolerance_decades)
    budgets, optima, warnings, parabolas = [], [], [], []
    for label in np.unique(labels):
        members = labels == label
        c = float(np.exp(np.mean(np.log(flops[members]))))
        if members.sum() < 3:
            warnings.append(PlannerWarning("fit", f"budget {c:.3g}: only {members.sum()} runs, skipped (a parabola needs 3)"))
            continue
        sizes = np.unique(params[members]).size
        if sizes < 3:  # repeated runs (as a bootstrap resample draws them): the parabola is not determined
            warnings.append(PlannerWarning("fit", f"budget {c:.3g}: only {sizes} distinct sizes, skipped (a parabola needs 3)"))
            continue
        ln_n = np.log(params[members])
        curv, lin, const = np.polyfit(ln_n, loss[members], 2)
        if curv <= 0:
            warnings.append(PlannerWarning("fit", f"budget {c:.3g}: loss is not convex in log N (no minimum), skipped"))
            continue
        ln_best = -lin / (2 * curv)
        if not (ln_n.min() <= ln_best <= ln_n.max()):
            warnings.append(PlannerWarning("fit", f"budget {c:.3g}: the parabola's minimum lies outside the sizes tried (extrapolated)"))
        budgets.append(c)
        optima.append(math.exp(ln_best))
        parabolas.append({"budget": c, "coefficients": [float(curv), float(lin), float(const)],
                          "params_range": [float(params[members].min()), float(params[members].max())]})
    if len(budgets) < 2:
        raise PlannerError(f"Approach 2 needs at least 2 IsoFLOP budgets with 3+ runs each; found {len(budgets)}")
    ln_c, ln_n = np.log(budgets), np.log(optima)
    a, ln_k = np.polyfit(ln_c, ln_n, 1)
    ln_d = ln_c - math.log(6.0) - ln_n
    b, ln_kd = np.polyfit(ln_c, ln_d, 1)
    resid = ln_n - (a * ln_c + ln_k)
    return {"params": {"a": float(a), "b": float(b), "N_coefficient": float(math.exp(ln_k)),
                       "D_coefficient": float(math.exp(ln_kd))},
            "objective": float(resid @ resid), "converged": True, "warnings": warnings,
            "budgets": budgets, "optimal_params": optima, "parabolas": parabolas,
            "points_x": np.array(budgets), "points_y": np.array(optima)}
