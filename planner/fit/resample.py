"""Bootstrap refits of every form, vectorised where a refit is an optimisation.

Resamples are drawn one at a time from one stream and refitted in chunks of at most RESAMPLE_ELEMENTS
resampled points, so memory stays bounded however many rows and resamples there are. The chunks follow
from the sizes alone (see optim.bfgs_chunked); up to RESAMPLE_ELEMENTS, all resamples are one chunk.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from planner.errors import PlannerError
from planner.fit import chinchilla, curves, optim

RESAMPLE_ELEMENTS = 4 * optim.CHUNK_ELEMENTS  # resampled points held at once (32 MB of weights)


def draws(n: int, samples: int, seed: int) -> Iterator[np.ndarray]:
    """Index draws with replacement from NumPy's legacy MT19937 stream (as `np.random.seed(seed)`), one per resample."""
    rng = np.random.RandomState(seed)
    for _ in range(samples):
        yield rng.choice(n, n, replace=True)


def in_chunks(stream: Iterator[np.ndarray], samples: int, points: int) -> Iterator[list[np.ndarray]]:
    """The draws of `stream` in lists of as many as keep RESAMPLE_ELEMENTS points (one at least)."""
    per = max(1, RESAMPLE_ELEMENTS // max(points, 1))
    for _ in range(0, samples, per):
        yield list(itertools.islice(stream, per))


def chinchilla_bootstrap(params: np.ndarray, tokens: np.ndarray, loss: np.ndarray, samples: int, seed: int,
                         delta: float = 1e-3, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Epoch's bootstrap: resample runs with replacement, refit each by BFGS from one start.

    Resampling uses NumPy's legacy MT19937 stream (`RandomState(seed).choice(n, n)` per sample),
    which is what `np.random.seed(42); np.random.choice(...)` in Epoch's notebook draws.
    Returns theta rows (samples, 5) and whether each refit converged.
    """
    n = len(loss)
    logs = np.log(params), np.log(tokens), np.log(loss)
    x0 = np.asarray(chinchilla.HOFFMANN_START if start is None else start, dtype=float)
    # every resample starts at the full fit's optimum with its curvature: a third of the iterations
    h0 = chinchilla.inverse_hessian(chinchilla.objective(*logs, delta), x0) if start is not None else None
    xs, oks = [np.empty((0, 5))], [np.empty(0, dtype=bool)]
    for chunk in in_chunks(draws(n, samples, seed), samples, n):
        weights = np.stack([np.bincount(idx, minlength=n) for idx in chunk]).astype(float)
        fun_grad = chinchilla.objective(*logs, delta, weights)
        res = optim.bfgs_chunked(fun_grad, np.tile(x0, (len(chunk), 1)), n, threads=2, h0=h0, **chinchilla.TIGHT)
        xs.append(res.x)
        oks.append(res.converged)
    return np.concatenate(xs), np.concatenate(oks)


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
    """Every resample refit from the full fit's optimum, a chunk of them at once; a resample's frontier is
    padded to the widest of all of them with points of weight 0 (one width for all chunks, as when they
    were one batch)."""
    width = max((len(_curve_points(x, y, idx, bins)[0]) for idx in draws(len(x), samples, seed)), default=0)
    ln10 = math.log(10)
    params: dict[str, list[np.ndarray]] = {"C_c": [], "alpha": [], "L_eps": []}
    oks = [np.empty(0, dtype=bool)]
    for chunk in in_chunks(draws(len(x), samples, seed), samples, width):
        lx_rows = np.zeros((len(chunk), width))
        ly_rows = np.zeros((len(chunk), width))
        weights = np.zeros((len(chunk), width))
        for i, idx in enumerate(chunk):
            lx, ly = _curve_points(x, y, idx, bins)
            lx_rows[i, : len(lx)], ly_rows[i, : len(ly)], weights[i, : len(lx)] = lx, ly, 1.0
        fun_grad = curves.saturating_objective(lx_rows * ln10, ly_rows * ln10, weights)
        res = optim.bfgs_chunked(fun_grad, np.tile(start, (len(chunk), 1)), width, **curves.SATURATING_TOLERANCES)
        enough = weights.sum(axis=1) >= 4
        x_ok = res.x[enough]
        params["C_c"].append(np.exp(x_ok[:, 0]))
        params["alpha"].append(x_ok[:, 1])
        params["L_eps"].append(np.exp(x_ok[:, 2]))
        oks.append(res.converged[enough])
    return {k: np.concatenate(v) if v else np.empty(0) for k, v in params.items()}, np.concatenate(oks)


def chinchilla_form(cols: dict, samples: int, seed: int, delta: float, start: np.ndarray):
    thetas, ok = chinchilla_bootstrap(cols["params"], cols["tokens"], cols["loss"], samples, seed, delta, start=start)
    return chinchilla.to_params(thetas), ok
