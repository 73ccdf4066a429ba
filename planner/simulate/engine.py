"""Monte Carlo trials of a sweep under a known law: what the fit of its results would recover.

Each trial draws the sweep's final losses from the true law L(N, D) = E + A/N^alpha + B/D^beta with
log-normal relative noise, fits them with the chinchilla form (VPNLS, planner.fit.vpnls: the same
objective `planner fit` minimises for the chinchilla form), and reads off each quantity of interest. With
`bootstrap`, every trial is also resampled and refitted as `planner fit` bootstraps (Epoch's
procedure: runs drawn with replacement, BFGS from the trial's optimum), so the coverage of the 95%
intervals a user would be shown can be counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from planner.fit import chinchilla, optim, resample, vpnls
from planner.laws import chinchilla_math

QUANTITIES = ("alpha", "beta", "E", "a", "b", "params_at_target", "tokens_at_target", "loss_at_target")


def quantities(p: Mapping[str, np.ndarray | float], target_flops: float) -> dict[str, np.ndarray]:
    """Every quantity of interest of a Chinchilla-form law (or of many, as arrays): the exponents, the
    floor, the allocation exponents of Hoffmann Eq. 4 and the compute-optimal run at `target_flops`."""
    values = {k: np.atleast_1d(np.asarray(p[k], dtype=float)) for k in ("E", "A", "B", "alpha", "beta")}
    _, a, b = chinchilla_math.closed_form(values)
    n_opt, d_opt = chinchilla_math.allocate(values, target_flops)
    loss = chinchilla_math.loss(values, n_opt, d_opt)
    return {"alpha": values["alpha"], "beta": values["beta"], "E": values["E"], "a": np.atleast_1d(a),
            "b": np.atleast_1d(b), "params_at_target": np.atleast_1d(n_opt), "tokens_at_target": np.atleast_1d(d_opt),
            "loss_at_target": np.atleast_1d(loss)}


def run_sizes(runs) -> tuple[np.ndarray, np.ndarray]:
    """The parameters and tokens of a designed sweep's runs (planner.sweep.design.Run), as arrays."""
    return np.array([r.params for r in runs], dtype=float), np.array([r.tokens for r in runs], dtype=float)


@dataclass(frozen=True)
class Trials:
    """What the trials recovered: per quantity, one value per successful trial, and with a bootstrap
    each trial's 95% interval (rows: trials; columns: low, high)."""

    truth: dict[str, float]
    fitted: dict[str, np.ndarray]
    intervals: dict[str, np.ndarray] | None
    failed: int


def run_trials(params: np.ndarray, tokens: np.ndarray, truth: Mapping[str, float], noise: float, trials: int,
               seed: int, target_flops: float, bootstrap: int = 0, delta: float = 1e-3) -> Trials:
    """`trials` synthetic sweeps at the runs (`params`, `tokens`), each fitted; seeded, so the same
    inputs give the same numbers."""
    params, tokens = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
    rng = np.random.default_rng(seed)
    mean = chinchilla_math.loss({k: float(truth[k]) for k in ("E", "A", "B", "alpha", "beta")}, params, tokens)
    losses = mean * np.exp(noise * rng.standard_normal((trials, len(params))))
    theta, fun, _, _ = vpnls.fit_many(params, tokens, losses, delta)
    ok = np.isfinite(fun) & np.all(np.isfinite(theta), axis=1)
    fitted = quantities(chinchilla.to_params(theta[ok]), target_flops)
    true = {k: float(v[0]) for k, v in quantities(truth, target_flops).items()}
    intervals = None
    if bootstrap:
        intervals = _bootstrap_intervals(params, tokens, losses[ok], theta[ok], bootstrap, seed, target_flops, delta)
    return Trials(truth=true, fitted=fitted, intervals=intervals, failed=int((~ok).sum()))


def _bootstrap_intervals(params: np.ndarray, tokens: np.ndarray, losses: np.ndarray, theta: np.ndarray, draws: int,
                         seed: int, target_flops: float, delta: float) -> dict[str, np.ndarray]:
    """Each trial resampled `draws` times and refitted from its own optimum, all trials in one batch;
    the 2.5th and 97.5th percentiles per trial, as `planner fit` reports them."""
    t, n = losses.shape
    weights = np.stack([np.bincount(idx, minlength=n) for i in range(t) for idx in resample.draws(n, draws, seed + 1 + i)])
    weights = weights.astype(float)
    log_l = np.repeat(np.log(losses), draws, axis=0)
    fun_grad = chinchilla.objective(np.log(params), np.log(tokens), log_l, delta, weights)
    starts = np.repeat(theta, draws, axis=0)
    curvature = [chinchilla.inverse_hessian(chinchilla.objective(np.log(params), np.log(tokens), np.log(losses[i]), delta),
                                            theta[i]) for i in range(t)]
    h0 = np.repeat(np.stack([np.eye(5) if c is None else c for c in curvature]), draws, axis=0)
    refit = optim.bfgs(fun_grad, starts, h0=h0, **chinchilla.TIGHT)
    values = quantities(chinchilla.to_params(refit.x), target_flops)
    out = {}
    for k, v in values.items():
        rows = np.where(np.isfinite(v), v, np.nan).reshape(t, draws)
        with np.errstate(invalid="ignore"):
            out[k] = np.column_stack([np.nanpercentile(rows, 2.5, axis=1), np.nanpercentile(rows, 97.5, axis=1)])
    return out
