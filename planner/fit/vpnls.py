"""Variable projection (VPNLS) for L(N, D) = E + A/N^alpha + B/D^beta.

For fixed exponents the loss is linear in (E, A, B), so a non-negative least-squares solve gives the
best coefficients of every (alpha, beta) pair: the search is over two exponents, not five parameters
(Golub & Pereyra 1973, SIAM J. Numer. Anal. 10:413; applied to scaling laws as VPNLS by Open-Athena,
arXiv 2603.22339). Here a grid of exponent pairs is profiled at once (relative residuals, which
match the log-space objective to first order), and the best few profiles are polished by BFGS on
the exact objective the 4,500-start grid minimises (planner.fit.chinchilla.objective: Huber on log
loss), so both solvers answer the same question and can be compared by objective.
"""

from __future__ import annotations

import numpy as np

from planner.fit import chinchilla, optim
from planner.fit.nnls import nnls3

EXPONENTS = np.linspace(0.02, 1.5, 48)  # alpha and beta searched; published fits lie in 0.07-0.8
SHORTLIST = 64  # best profiles by relative least squares, then ranked on the exact objective
POLISH = 6  # best of those polished on the exact objective


def profile(log_n: np.ndarray, log_d: np.ndarray, loss: np.ndarray,
            exponents: np.ndarray = EXPONENTS) -> tuple[np.ndarray, np.ndarray]:
    """theta = (log A, log B, log E, alpha, beta) for every (alpha, beta) on the grid, its (E, A, B)
    the non-negative least-squares fit of the loss with relative weights (one row per pair), and the
    weighted sum of squares it leaves (up to a constant, for ranking)."""
    k = len(exponents)
    w2 = 1.0 / (loss * loss)
    pn = np.exp(-np.outer(exponents, log_n))  # (k, n): N^-alpha
    pd = np.exp(-np.outer(exponents, log_d))  # (k, n): D^-beta
    gram = np.empty((k, k, 3, 3))  # normal equations of [1, N^-alpha, D^-beta] per pair
    gram[..., 0, 0] = w2.sum()
    gram[..., 0, 1] = gram[..., 1, 0] = (pn @ w2)[:, None]
    gram[..., 0, 2] = gram[..., 2, 0] = (pd @ w2)[None, :]
    gram[..., 1, 1] = ((pn * pn) @ w2)[:, None]
    gram[..., 2, 2] = ((pd * pd) @ w2)[None, :]
    gram[..., 1, 2] = gram[..., 2, 1] = (pn * w2) @ pd.T
    rhs = np.empty((k, k, 3))
    wl = w2 * loss
    rhs[..., 0], rhs[..., 1], rhs[..., 2] = wl.sum(), (pn @ wl)[:, None], (pd @ wl)[None, :]
    normal, target = gram.reshape(k * k, 3, 3), rhs.reshape(k * k, 3)
    # the loss's weighted sum of squares is a constant the ranking does not need
    best, best_sse = nnls3(normal, target, np.zeros(k * k))
    alpha, beta = np.meshgrid(exponents, exponents, indexing="ij")
    with np.errstate(divide="ignore"):
        logs = np.log(np.maximum(best, 1e-300))  # a zero coefficient: a term too small to matter
    return np.column_stack([logs[:, 1], logs[:, 2], logs[:, 0], alpha.ravel(), beta.ravel()]), best_sse


def fit(params: np.ndarray, tokens: np.ndarray, loss: np.ndarray, delta: float = 1e-3) -> dict:
    """The best optimum: the grid of exponent pairs profiled, the best POLISH polished on the exact
    objective (followed down to `delta` from 1e-3, as the BFGS grid does). Same result keys as
    planner.fit.chinchilla.fit; `starts` counts the exponent pairs profiled. On more than
    optim.SCREEN_POINTS runs, as the grid does: fitted on that many runs spread over compute, then
    refined on all of them."""
    if len(loss) > optim.SCREEN_POINTS:
        keep = optim.spread_rows(np.argsort(params * tokens, kind="stable"), optim.SCREEN_POINTS)
        screened = fit(params[keep], tokens[keep], loss[keep], delta)
        fun_grad = chinchilla.objective(np.log(params), np.log(tokens), np.log(loss), delta)
        final = optim.bfgs_chunked(fun_grad, screened["theta"][None, :], len(loss), **chinchilla.TIGHT)
        return {**screened, "theta": final.x[0], "objective": float(final.fun[0]), "converged": bool(final.converged[0]),
                "grid_points": len(keep)}
    theta, fun, converged, at_best = fit_many(params, tokens, np.asarray(loss)[None, :], delta)
    return {"theta": theta[0], "objective": float(fun[0]), "converged": bool(converged[0]),
            "starts": len(EXPONENTS) ** 2, "starts_converged": int(at_best[0][0]), "starts_at_best": int(at_best[0][1])}


def fit_many(params: np.ndarray, tokens: np.ndarray, losses: np.ndarray, delta: float = 1e-3):
    """Fit T data sets that share their runs (rows of `losses`, shape (T, n)) at once: the profile per
    set, then one batched polish of every set's best profiles. Returns theta (T, 5), the objective and
    convergence per set, and per set (polished starts converged, starts within 0.1% of its best)."""
    log_n, log_d = np.log(params), np.log(tokens)
    log_l = np.log(losses)
    starts, owner = [], []
    for t, loss in enumerate(losses):
        grid, sse = profile(log_n, log_d, loss)
        shortlist = grid[np.argsort(sse)[:SHORTLIST]]
        f, _ = chinchilla.objective(log_n, log_d, log_l[t], max(delta, 1e-3))(shortlist, np.arange(len(shortlist)))
        starts.append(shortlist[np.argsort(np.where(np.isfinite(f), f, np.inf))[:POLISH]])
        owner += [t] * POLISH
    rows_l = log_l[np.array(owner)]
    fine = chinchilla.follow_delta(lambda step: chinchilla.objective(log_n, log_d, rows_l, step), np.concatenate(starts),
                                   delta, lambda fun_grad, x: optim.bfgs(fun_grad, x, **chinchilla.TIGHT))
    fun = np.where(np.isfinite(fine.fun), fine.fun, np.inf).reshape(len(losses), POLISH)
    best = np.argmin(fun, axis=1)
    pick = np.arange(len(losses)) * POLISH + best
    conv = fine.converged.reshape(len(losses), POLISH)
    at_best = [(int(conv[t].sum()), int(np.sum(fun[t] <= fun[t, best[t]] * 1.001))) for t in range(len(losses))]
    return fine.x[pick], fine.fun[pick], fine.converged[pick], at_best
