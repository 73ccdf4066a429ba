"""BFGS on many independent problems at once (multi-start grids, bootstrap resamples).

A per-start scipy loop spends almost all its time in Python overhead on 5-parameter problems;
here every start is one row of an array, so each iteration is a handful of numpy operations over
all starts. Rows leave the active set as they converge, so the cost falls as the fit proceeds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FunGrad = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
# Starts x data points one call of an objective evaluates at most. An objective keeps about a dozen
# temporaries of that many numbers (8 MB each), so a fit's memory stays bounded whatever the data size,
# and every numpy call is short enough (~0.1 s) for Ctrl-C to be delivered between two of them.
CHUNK_ELEMENTS = 1 << 20
# Multi-start fits on more data points than this run their grid of starts on this many points spread over
# compute, then refine the best optimum on all of them (the grid finds the basin; the data fix the minimum).
SCREEN_POINTS = 500


@dataclass
class BatchResult:
    x: np.ndarray  # (S, P) final points
    fun: np.ndarray  # (S,) objective values
    converged: np.ndarray  # (S,) bool: met a tolerance (not stopped by max_iter)
    iterations: np.ndarray  # (S,)


def bfgs(fun_grad: FunGrad, x0: np.ndarray, max_iter: int = 1000, gtol: float = 1e-5,
         ftol: float = 2.2e-9, ftol_floor: float = 1.0, max_halvings: int = 50,
         stop: threading.Event | None = None, h0: np.ndarray | None = None) -> BatchResult:
    """Minimise S problems from the S rows of x0. fun_grad(X, rows) evaluates rows `rows` at X.

    Stopping rules default to scipy L-BFGS-B's, so each row stops where a per-start scipy loop
    would: (f_k - f_k+1) <= ftol * max(|f_k|, |f_k+1|, ftol_floor), or max |gradient| <= gtol, or
    no step along the search direction lowers f. With objectives far below 1 the floor of 1 makes
    ftol absolute and stops rows early; pass ftol_floor=0 for a relative test.
    `stop`, once set (by another thread), ends the run at the next evaluation; the result is then partial.
    `h0` is every row's first inverse-Hessian estimate (the identity by default): refits that start at a
    neighbouring optimum converge in a few steps when given its curvature.
    """
    x = np.array(x0, dtype=float)
    s_count, p_count = x.shape
    rows = np.arange(s_count)
    f, g = fun_grad(x, rows)
    h = np.broadcast_to(np.eye(p_count) if h0 is None else h0, (s_count, p_count, p_count)).copy()
    converged = np.zeros(s_count, dtype=bool)
    iterations = np.zeros(s_count, dtype=int)
    active = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0 or (stop is not None and stop.is_set()):
            break
        gi, hi = g[idx], h[idx]
        p = -np.einsum("sij,sj->si", hi, gi)
        slope = np.einsum("si,si->s", gi, p)
        bad = ~(slope < 0) | ~np.all(np.isfinite(p), axis=1)
        if bad.any():  # lost descent: restart that row's curvature from the identity
            hi[bad] = np.eye(p_count)
            p[bad] = -gi[bad]
            slope[bad] = -np.einsum("si,si->s", gi[bad], gi[bad])
        step = np.ones(idx.size)
        x_new, f_new, g_new = x[idx].copy(), f[idx].copy(), g[idx].copy()
        pending = np.arange(idx.size)
        accepted = np.zeros(idx.size, dtype=bool)
        for _ in range(max_halvings):  # Armijo backtracking, all rows at once
            if stop is not None and stop.is_set():
                break
            trial = x[idx[pending]] + step[pending, None] * p[pending]
            ft, gt = fun_grad(trial, idx[pending])
            ok = np.isfinite(ft) & (ft <= f[idx[pending]] + 1e-4 * step[pending] * slope[pending])
            ok &= np.all(np.isfinite(gt), axis=1)
            done = pending[ok]
            x_new[done], f_new[done], g_new[done] = trial[ok], ft[ok], gt[ok]
            accepted[done] = True
            pending = pending[~ok]
            if pending.size == 0:
                break
            step[pending] *= 0.5
        iterations[idx] += 1
        # rows whose line search failed cannot improve along any direction we can find
        stuck = ~accepted
        converged[idx[stuck]] = True
        active[idx[stuck]] = False
        ok_rows = np.flatnonzero(accepted)
        if ok_rows.size == 0:
            continue
        sel = idx[ok_rows]
        s_vec = x_new[ok_rows] - x[sel]
        y_vec = g_new[ok_rows] - g[sel]
        f_drop = f[sel] - f_new[ok_rows]
        x[sel], f[sel], g[sel] = x_new[ok_rows], f_new[ok_rows], g_new[ok_rows]
        hs = h[sel]
        sy = np.einsum("si,si->s", s_vec, y_vec)
        upd = sy > 1e-300
        if upd.any():  # BFGS inverse-Hessian update where the curvature condition holds
            hs[upd] = _bfgs_update(hs[upd], s_vec[upd], y_vec[upd], 1.0 / sy[upd])
        h[sel] = hs
        scale = np.maximum(np.maximum(np.abs(f[sel]), np.abs(f[sel] + f_drop)), ftol_floor)
        finished = (f_drop <= ftol * scale) | (np.max(np.abs(g[sel]), axis=1) <= gtol)
        converged[sel[finished]] = True
        active[sel[finished]] = False
    return BatchResult(x, f, converged, iterations)


def _bfgs_update(h: np.ndarray, s: np.ndarray, y: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """H+ = (I - rho s y^T) H (I - rho y s^T) + rho s s^T, for a stack of rows."""
    with np.errstate(over="ignore", invalid="ignore"):
        hy = np.einsum("sij,sj->si", h, y)
        yhy = np.einsum("si,si->s", y, hy)
        h = (h - rho[:, None, None] * (np.einsum("si,sj->sij", s, hy) + np.einsum("si,sj->sij", hy, s))
             + (rho**2 * yhy + rho)[:, None, None] * np.einsum("si,sj->sij", s, s))
    broken = ~np.all(np.isfinite(h), axis=(1, 2))
    h[broken] = np.eye(h.shape[1])  # an overflowing update restarts that row's curvature
    return h


def bfgs_chunked(fun_grad: FunGrad, x0: np.ndarray, points: int, threads: int = 1, **options) -> BatchResult:
    """`bfgs` over the rows of x0 in chunks of at most CHUNK_ELEMENTS // points rows (one at least), where
    `points` is how many data points one row's objective reads: memory and the time between numpy calls
    stay bounded however many starts and points there are.

    With threads > 1 the chunks run on that many threads (numpy releases the GIL inside its kernels),
    and there are at least as many chunks as threads. The chunks follow from the sizes and `threads`
    alone, never from the machine, so a fit prints the same digits everywhere: which rows share a batch
    can move a row's last bits (a BLAS product sums in a batch-dependent order), and the optimiser may
    carry that up to its tolerance. Ctrl-C in the main thread stops the other threads at their next
    evaluation, then propagates.
    """
    from concurrent.futures import ThreadPoolExecutor

    starts = len(x0)
    size = max(1, min(CHUNK_ELEMENTS // max(points, 1), -(-starts // max(threads, 1))))
    bounds = list(range(0, starts, size)) + [starts]
    stop = threading.Event()

    def part(lo: int, hi: int) -> BatchResult:
        h0 = options.get("h0")
        mine = {**options, "h0": h0[lo:hi]} if h0 is not None and np.ndim(h0) == 3 else options  # one per row
        return bfgs(lambda x, rows: fun_grad(x, rows + lo), x0[lo:hi], stop=stop, **mine)

    if threads <= 1 or len(bounds) <= 2:
        parts = [part(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    else:
        pool = ThreadPoolExecutor(threads)
        try:
            parts = list(pool.map(part, bounds[:-1], bounds[1:]))
        except BaseException:
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return BatchResult(np.concatenate([p.x for p in parts]), np.concatenate([p.fun for p in parts]),
                       np.concatenate([p.converged for p in parts]), np.concatenate([p.iterations for p in parts]))


def spread_rows(order: np.ndarray, count: int) -> np.ndarray:
    """`count` row indices spread evenly along `order` (rows sorted by, e.g., compute), in row order:
    a deterministic subsample that covers the whole range."""
    if count >= len(order):
        return np.arange(len(order))
    return np.sort(order[np.linspace(0, len(order) - 1, count).round().astype(int)])
