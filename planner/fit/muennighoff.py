"""Data-constrained scaling (Muennighoff et al. 2023, arXiv 2305.16264): repeated epochs and parameters
beyond the optimum for the unique data are worth less,

    D' = U_D + U_D·R*_D·(1 − e^(−R_D/R*_D)),  R_D = D/U_D − 1 (epochs beyond the first)
    N' = U_N + U_N·R*_N·(1 − e^(−R_N/R*_N)),  R_N = N/U_N − 1, U_N = min(N, the compute-optimal size for U_D)
    L  = E + A/N'^α + B/D'^β,

fitted in three steps: the Chinchilla law on the runs that saw each token at most once (VPNLS, as the
chinchilla form), R*_N and R*_D on every run given it (a grid in log R*, refined around the best), then
all seven together from there (L-BFGS on the chinchilla form's objective, Huber on log loss): the
authors fitted the first two stages; the joint polish makes the result the optimum of one objective,
since the law also discounts single-epoch runs larger than the optimum for their data.

With a base law given (`fit_decay`), only R*_N and R*_D are fitted, as the authors fitted theirs: the
base law fixed, the summed Huber(log L̂ − log L) at δ = 1e-3 minimised locally from their starts (each
R* in {20/3, 40/3, 20}: their grid of 0 to 20 in 4 steps, less 0, where the law divides by zero), the
best kept. A search over the whole grid reports a lower optimum elsewhere, if there is one.
"""

from __future__ import annotations

import itertools

import numpy as np

from planner.errors import PlannerError
from planner.fit import chinchilla, optim, vpnls
from planner.laws import chinchilla_math, decayed

R_GRID = np.geomspace(0.1, 1000.0, 61)  # R* searched (published: R*_N 5.3, R*_D 15.4)
REFINE = 3  # finer grids around the best, each spanning one step of the one before
MIN_SINGLE_EPOCH = 6  # runs the first stage needs (5 parameters)
# Muennighoff et al.'s starts for R*_N, R*_D (utils/parametric_fit.ipynb: np.linspace(0, 20, 4) each; 0 divides by zero)
AUTHORS_STARTS = tuple(itertools.product((20 / 3, 40 / 3, 20.0), repeat=2))
BASE = ("A", "B", "E", "alpha", "beta")


def effective(base: dict, params, tokens, unique, r_n_star, r_d_star):
    """(N', D') for runs (arrays) and R* values that broadcast against them."""
    u_d = np.minimum(unique, tokens)
    g, a, b = chinchilla_math.closed_form(base)
    # the compute-optimal size for U_D tokens: D_opt = (C/6)^b / G, so C/6 = (G·U_D)^(1/b), N_opt = G (C/6)^a
    u_n = np.minimum(g * (g * u_d) ** (a / b), params)
    return decayed(u_n, params, r_n_star), decayed(u_d, tokens, r_d_star)


def fit(params: np.ndarray, tokens: np.ndarray, unique: np.ndarray, loss: np.ndarray, delta: float = 1e-3) -> dict:
    """The base law (E, A, B, alpha, beta), R_N_star, R_D_star, and the second stage's objective."""
    single = tokens <= unique * (1 + 1e-9)
    if single.sum() < MIN_SINGLE_EPOCH or np.unique(params[single]).size < 3:
        raise PlannerError(f"the data-constrained form fits the base law on runs that saw each token at most once: "
                           f"{int(single.sum())} such runs here, {MIN_SINGLE_EPOCH} needed (3 sizes or more)")
    if single.all():
        raise PlannerError("every run saw each token at most once: R*_N and R*_D need repeated-epoch runs (tokens > unique tokens)")
    found = vpnls.fit(params[single], tokens[single], loss[single], delta)
    base = {k: float(v[0]) for k, v in chinchilla.to_params(found["theta"]).items()}
    log_loss = np.log(loss)
    best, objective = grid(base, params, tokens, unique, log_loss)
    theta = polish(np.array([np.log(base["A"]), np.log(base["B"]), np.log(base["E"]), base["alpha"], base["beta"],
                             np.log(best[0]), np.log(best[1])]), params, tokens, unique, log_loss, delta)
    values = to_values(theta)
    values["objective"] = float(objective_of(theta, params, tokens, unique, log_loss, delta))
    return {**values, "single_epoch_runs": int(single.sum()), "grid_objective": objective}


def grid(base: dict, params, tokens, unique, log_loss) -> tuple[tuple[float, float], float]:
    """(R*_N, R*_D) of least squared log residuals given the base law, on R_GRID refined REFINE times, and that sum."""
    # the grid reads R* × R* × runs values: on a large table, runs spread over compute (all of them in the polish)
    rows = optim.spread_rows(np.argsort(params * tokens, kind="stable"), optim.SCREEN_POINTS)
    gp, gt, gu, gl = params[rows], tokens[rows], unique[rows], log_loss[rows]
    rn, rd = R_GRID, R_GRID
    best, objective = (1.0, 1.0), float("inf")
    for _ in range(REFINE + 1):
        n_eff, d_eff = effective(base, gp, gt, gu, rn[:, None, None], rd[None, :, None])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            resid = np.log(chinchilla_math.loss(base, n_eff, d_eff)) - gl
        sse = np.where(np.isfinite(resid).all(axis=2), (resid * resid).sum(axis=2), np.inf)
        i, j = np.unravel_index(np.argmin(sse), sse.shape)
        best = (float(rn[i]), float(rd[j]))
        objective = float(sse[i, j])
        step_n = np.log(rn[1] / rn[0]) if len(rn) > 1 else 0.0
        step_d = np.log(rd[1] / rd[0]) if len(rd) > 1 else 0.0
        rn = np.exp(np.linspace(np.log(best[0]) - step_n, np.log(best[0]) + step_n, 41))
        rd = np.exp(np.linspace(np.log(best[1]) - step_d, np.log(best[1]) + step_d, 41))
    return best, objective


def huber_grid(base: dict, params, tokens, unique, log_loss, delta: float) -> tuple[float, float]:
    """(R*_N, R*_D) of least summed Huber on a grid of 241 × 241 (60 a decade) over R_GRID's range, on runs
    spread over compute (one R*_N at a time: a row of the grid at once)."""
    rows = optim.spread_rows(np.argsort(params * tokens, kind="stable"), optim.SCREEN_POINTS)
    gp, gt, gu, gl = params[rows], tokens[rows], unique[rows], log_loss[rows]
    values = np.geomspace(R_GRID[0], R_GRID[-1], 241)
    best, objective = (1.0, 1.0), float("inf")
    for r_n in values:
        n_eff, d_eff = effective(base, gp, gt, gu, r_n, values[:, None])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            a = np.abs(np.log(chinchilla_math.loss(base, n_eff, d_eff)) - gl)
        clipped = np.minimum(a, delta)
        total = np.where(np.isfinite(a).all(axis=1), (clipped * (a - 0.5 * clipped)).sum(axis=1), np.inf)
        j = int(np.argmin(total))
        if total[j] < objective:
            best, objective = (float(r_n), float(values[j])), float(total[j])
    return best


def fit_decay(base: dict, params: np.ndarray, tokens: np.ndarray, unique: np.ndarray, loss: np.ndarray, delta: float = 1e-3,
              starts=AUTHORS_STARTS, search: bool = True) -> dict:
    """R_N_star and R_D_star with the base law (E, A, B, alpha, beta) held fixed: the best local optimum of
    the summed Huber from `starts` ((R*_N, R*_D) pairs), its objective, and with `search`, `lower`: the
    optimum polished from the whole grid's best, when its objective is lower (else None)."""
    head = np.array([np.log(base["A"]), np.log(base["B"]), np.log(base["E"]), base["alpha"], base["beta"]], dtype=float)
    log_loss = np.log(loss)

    def local(r_n: float, r_d: float) -> tuple[np.ndarray, float]:
        theta = np.concatenate([head, polish(np.log([r_n, r_d]), params, tokens, unique, log_loss, delta, fixed=head)])
        return theta, objective_of(theta, params, tokens, unique, log_loss, delta)

    theta, best = min((local(*s) for s in starts), key=lambda got: got[1])
    out = {**to_values(theta), "objective": best, "starts": len(starts), "lower": None}
    if search:
        theta_g, objective_g = local(*huber_grid(base, params, tokens, unique, log_loss, delta))
        if objective_g < best * (1 - 1e-9):
            out["lower"] = {**{k: to_values(theta_g)[k] for k in ("R_N_star", "R_D_star")}, "objective": objective_g}
    return out


def to_values(theta: np.ndarray) -> dict:
    return {"A": float(np.exp(theta[0])), "B": float(np.exp(theta[1])), "E": float(np.exp(theta[2])), "alpha": float(theta[3]),
            "beta": float(theta[4]), "R_N_star": float(np.exp(theta[5])), "R_D_star": float(np.exp(theta[6]))}


def objective_of(theta: np.ndarray, params, tokens, unique, log_loss, delta: float) -> float:
    """Summed Huber(log L̂ − log L), as the chinchilla form's (inf where the law is undefined)."""
    v = to_values(theta)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        n_eff, d_eff = effective(v, params, tokens, unique, v["R_N_star"], v["R_D_star"])
        r = np.log(chinchilla_math.loss(v, n_eff, d_eff)) - log_loss
    if not np.all(np.isfinite(r)):
        return float("inf")
    a = np.abs(r)
    clipped = np.minimum(a, delta)
    return float(np.sum(clipped * (a - 0.5 * clipped)))


def residuals(theta: np.ndarray, params, tokens, unique, log_loss) -> np.ndarray:
    v = to_values(theta)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        n_eff, d_eff = effective(v, params, tokens, unique, v["R_N_star"], v["R_D_star"])
        r = np.log(chinchilla_math.loss(v, n_eff, d_eff)) - log_loss
    return np.where(np.isfinite(r), r, 1e3)  # where the law is undefined, a residual no optimum keeps


def polish(theta: np.ndarray, params, tokens, unique, log_loss, delta: float, fixed: np.ndarray | None = None) -> np.ndarray:
    """All seven parameters at once from `theta` (scipy imported only here): least squares with scipy's
    Huber loss at scale δ, whose minimum is the summed Huber's (its ρ is twice it). With `fixed` (the
    first five, log A, log B, log E, alpha, beta), `theta` is (log R*_N, log R*_D) and only they move."""
    import warnings

    from scipy.optimize import least_squares

    with warnings.catch_warnings():  # scipy's Huber takes a square root of exactly-zero residuals as complex
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        fun = residuals if fixed is None else (lambda x, *args: residuals(np.concatenate([fixed, x]), *args))
        got = least_squares(fun, theta, args=(params, tokens, unique, log_loss), loss="huber", f_scale=delta,
                            x_scale="jac", ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=5000)
    return got.x
