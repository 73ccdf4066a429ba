"""BFGS on many independent problems at once (multi-start grids, bootstrap resamples).

A per-start scipy loop spends almost all its time in Python overhead on 5-parameter problems;
here every start is one row of an array, so each iteration is a handful of numpy operations over
all starts. Rows leave the active set as they converge, so the cost falls as the fit proceeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FunGrad = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class BatchResult:
    x: np.ndarray  # (S, P) final points
    fun: np.ndarray  # (S,) objective values
    converged: np.ndarray  # (S,) bool: met a tolerance (not stopped by max_iter)
    iterations: np.ndarray  # (S,)


def bfgs(fun_grad: FunGrad, x0: np.ndarray, max_iter: int = 1000, gtol: float = 1e-5,
         ftol: float = 2.2e-9, ftol_floor: float = 1.0, max_halvings: int = 50) -> BatchResult:
    """Minimise S problems from the S rows of x0. fun_grad(X, rows) evaluates rows `rows` at X.

    Stopping rules default to scipy L-BFGS-B's, so each row stops where a per-start scipy loop
    would: (f_k - f_k+1) <= ftol * max(|f_k|, |f_k+1|, ftol_floor), or max |gradient| <= gtol, or
    no step along the search direction lowers f. With objectives far below 1 the floor of 1 makes
    ftol absolute and stops rows early; pass ftol_floor=0 for a relative test.
    """
    x = np.array(x0, dtype=float)
    s_count, p_count = x.shape
    rows = np.arange(s_count)
    f, g = fun_grad(x, rows)
    h = np.broadcast_to(np.eye(p_count), (s_count, p_count, p_count)).copy()
    converged = np.zeros(s_count, dtype=bool)
    iterations = np.zeros(s_count, dtype=int)
    active = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
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


def bfgs_threaded(fun_grad: FunGrad, x0: np.ndarray, threads: int = 2, **options) -> BatchResult:
    """`bfgs` with the rows split across threads (numpy releases the GIL inside its kernels).

    The split is fixed (not the machine's core count) so every machine sums the same blocks in
    the same order and prints the same digits.
    """
    from concurrent.futures import ThreadPoolExecutor

    if threads <= 1 or len(x0) < 2 * threads:
        return bfgs(fun_grad, x0, **options)
    bounds = np.linspace(0, len(x0), threads + 1).astype(int)

    def part(lo: int, hi: int) -> BatchResult:
        return bfgs(lambda x, rows: fun_grad(x, rows + lo), x0[lo:hi], **options)

    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(part, bounds[:-1], bounds[1:]))
    return BatchResult(np.concatenate([p.x for p in parts]), np.concatenate([p.fun for p in parts]),
                       np.concatenate([p.converged for p in parts]), np.concatenate([p.iterations for p in parts]))
