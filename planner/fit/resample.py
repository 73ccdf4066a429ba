"""Bootstrap refits of every form, vectorised where a refit is an optimisation."""

from __future__ import annotations

import math

import numpy as np

from planner.errors import PlannerError
from planner.fit import chinchilla, curves, optim


def draws(n: int, samples: int, seed: int) -> np.ndarray:
    """Index draws with replacement from NumPy's legacy MT19937 stream (as `np.random.seed(seed)`)."""
    rng = np.random.RandomState(seed)
    return np.stack([rng.choice(n, n, replace=True) for _ in range(samples)]) if samples else np.empty((0, n), int)


def chinchilla_bootstrap(params: np.ndarray, tokens: np.ndarray, loss: np.ndarray, samples: int, seed: int,
                         delta: float = 1e-3, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Epoch's bootstrap: resample runs with replacement, refit each by BFGS from one start.

    Resampling uses NumPy's legacy MT19937 stream (`RandomState(seed).choice(n, n)` per sample),
    which is what `np.random.seed(42); np.random.choice(...)` in Epoch's notebook draws.
    Returns theta rows (samples, 5) and whether each refit converged.
    """
    n = len(loss)
    weights = resample_weights(n, samples, seed)
    fun_grad = chinchilla.objective(np.log(params), np.log(tokens), np.log(loss), delta, weights)
    x0 = np.tile(np.asarray(chinchilla.HOFFMANN_START if start is None else start, dtype=float), (samples, 1))
    res = optim.bfgs_threaded(fun_grad, x0, **chinchilla.TIGHT)
    return res.x, res.converged


def resample_weights(n: int, samples: int, seed: int) -> np.ndarray:
    """How often each point appears in each resample (rows), from `draws`."""
    idx = draws(n, samples, seed)
    return np.stack([np.bincount(row, minlength=n) for row in idx]).astype(float) if samples else np.empty((0, n))


def _curve_points(x: np.ndarray, y: np.ndarray, idx: np.ndarray, bins: int | str | None):
    """The points one resample fits: its frontier (binned or non-dominated) or all its points, in log10."""
    return curves.frontier(np.log10(x[idx]), np.log10(y[idx]), bins)


def power(x: np.ndarray, y: np.ndarray, bins: int | str | None, samples: int, seed: int) -> dict[str, np.ndarray]:
    alphas, betas = [], []
    for idx in draws(len(x), samples, seed):
        lx, ly = _curve_points(x, y, idx, bins)
        if len(lx) < 2 or np.ptp(lx) == 0:
            continue
        slope, intercept = np.polyfit(lx, ly, 1)
        alphas.append(slope)
        betas.append(10.0**intercept)
    if not alphas:
        raise PlannerError("no bootstrap resample had two distinct compute values")
    return {"alpha": np.array(alphas), "beta": np.array(betas)}


def saturating(x: np.ndarray, y: np.ndarray, bins: int | str | None, samples: int, seed: int,
               start: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """All resamples refit at once from the full fit's optimum; padded points carry weight 0."""
    sets = [_curve_points(x, y, idx, bins) for idx in draws(len(x), samples, seed)]
    width = max(len(lx) for lx, _ in sets)
    lx_rows = np.zeros((samples, width))
    ly_rows = np.zeros((samples, width))
    weights = np.zeros((samples, width))
    for i, (lx, ly) in enumerate(sets):
        lx_rows[i, : len(lx)], ly_rows[i, : len(ly)], weights[i, : len(lx)] = lx, ly, 1.0
    ln10 = math.log(10)
    fun_grad = curves.saturating_objective(lx_rows * ln10, ly_rows * ln10, weights)
    res = optim.bfgs(fun_grad, np.tile(start, (samples, 1)), ftol=1e-13, gtol=1e-10, ftol_floor=0.0, max_iter=3000)
    enough = weights.sum(axis=1) >= 4
    x_ok = res.x[enough]
    params = {"C_c": np.exp(x_ok[:, 0]), "alpha": x_ok[:, 1], "L_eps": np.exp(x_ok[:, 2])}
    return params, res.converged[enough]


def chinchilla_form(cols: dict, samples: int, seed: int, delta: float, start: np.ndarray):
    thetas, ok = chinchilla_bootstrap(cols["params"], cols["tokens"], cols["loss"], samples, seed, delta, start=start)
    return chinchilla.to_params(thetas), ok
