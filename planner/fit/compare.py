"""Comparing two learning procedures by their fitted laws over compute, never by a single point.

Both data sets are fitted with the same form; the crossover is where the two predicted curves
cross (the better procedure changes), found on a log-spaced grid and refined by linear
interpolation in log C; bootstrap pairs give its interval. Warnings say when the comparison
cannot be trusted (planner policy from the scaling-law reference §12.2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from planner.errors import PlannerError
from planner.fit import MIN_FRONTIER_POINTS, MIN_SPAN_DECADES, FitOptions, chinchilla, curves, load, resample
from planner.fit.result import AtError, AtTarget, ComparedFit, Comparison
from planner.laws import chinchilla_math

GRID = 4001
MAX_EXTRAPOLATION = 10.0
NEAR_CHANCE = 0.9  # a point with error >= 90% of chance level carries too little signal


def _fit(path: Path, opts: FitOptions):
    data = load(path, opts)
    cols = data.columns
    if opts.form == "chinchilla":
        best = chinchilla.fit(cols["params"], cols["tokens"], cols["loss"], opts.huber_delta)
        params = {k: float(v[0]) for k, v in chinchilla.to_params(best["theta"]).items()}
        return data, params, best["theta"], len(cols["loss"]), best["converged"]
    fit_fn = curves.fit_power if opts.form == "power" else curves.fit_saturating
    fitted = fit_fn(cols["x"], cols["y"], opts.bins)
    return data, fitted["params"], fitted.get("theta"), len(fitted["points_x"]), fitted["converged"]


def curve(form: str, params: dict[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Predictions for many parameter draws at once: returns f(C grid) -> (S, G)."""
    p = {k: np.atleast_1d(np.asarray(v, float))[:, None] for k, v in params.items()}
    if form == "power":
        return lambda c: p["beta"] * np.power(c, p["alpha"])
    if form == "saturating":
        return lambda c: p["C_c"] * np.power(c, -p["alpha"]) + p["L_eps"]
    return lambda c: chinchilla_math.frontier_loss(p, c)


def first_crossing(diff: np.ndarray, log_c: np.ndarray) -> np.ndarray:
    """Per row, the first C where the sign of diff changes (NaN when it never does)."""
    sign = np.sign(diff)
    change = (sign[:, :-1] * sign[:, 1:]) < 0
    has = change.any(axis=1)
    k = np.argmax(change, axis=1)
    rows = np.arange(diff.shape[0])
    d0, d1 = diff[rows, k], diff[rows, k + 1]
    with np.errstate(invalid="ignore", divide="ignore"):  # rows without a crossing give 0/0, masked below
        t = d0 / (d0 - d1)
    x = log_c[k] + t * (log_c[k + 1] - log_c[k])
    return np.where(has, np.exp(x), np.nan)


def _samples(opts: FitOptions, data, theta, seed: int) -> dict[str, np.ndarray]:
    o = replace(opts, seed=seed)
    if opts.form == "chinchilla":
        samples, _ = resample.chinchilla_form(data.columns, o.bootstrap, seed, o.huber_delta, theta)
        return samples
    if opts.form == "power":
        return resample.power(data.columns["x"], data.columns["y"], o.bins, o.bootstrap, seed)
    samples, _ = resample.saturating(data.columns["x"], data.columns["y"], o.bins, o.bootstrap, seed, theta)
    return samples


def compute_to_reach(form: str, params: dict[str, np.ndarray], error: float, log_c: np.ndarray) -> np.ndarray:
    """Per parameter draw, the least compute on the grid at which the fitted curve falls to `error`
    (NaN when it does not within the grid: a floor above the target, or beyond the search)."""
    return first_crossing(curve(form, params)(np.exp(log_c)) - error, log_c)


def compare(path_a: Path, path_b: Path, opts: FitOptions, target: float | None = None, chance: float | None = None,
            progress: Callable[[str], None] = lambda _m: None, opts_b: FitOptions | None = None,
            target_error: float | None = None) -> Comparison:
    """Fit A with `opts` and B with `opts_b` (default: the same options) and compare the curves:
    the crossover, predictions at `target` compute, and the compute each needs for `target_error`."""
    opts_b = opts if opts_b is None else opts_b
    if opts.form not in ("power", "saturating", "chinchilla"):
        raise PlannerError(f"compare takes --form power, saturating or chinchilla, not '{opts.form}'")
    progress(f"fitting {path_a} and {path_b} ({opts.form})")
    data_a, pa, theta_a, na, ok_a = _fit(path_a, opts)
    data_b, pb, theta_b, nb, ok_b = _fit(path_b, opts_b)
    lo = min(data_a.compute.min(), data_b.compute.min())
    hi_data = max(data_a.compute.max(), data_b.compute.max())
    hi = max(hi_data * 1e3, (target or 0) * 10)
    log_c = np.linspace(np.log(lo), np.log(hi), GRID)
    c = np.exp(log_c)
    fa, fb = curve(opts.form, pa)(c), curve(opts.form, pb)(c)
    cross = float(first_crossing(fa - fb, log_c)[0])
    warnings: list[str] = []
    spans = {k: float(np.log10(d.compute.max()) - np.log10(d.compute.min())) for k, d in (("a", data_a), ("b", data_b))}
    for label, span in spans.items():
        if span < MIN_SPAN_DECADES:
            warnings.append(f"{label.upper()} spans {span:.2f} decades of compute; a comparison needs {MIN_SPAN_DECADES:g}+")
    for label, n, o in (("A", na, opts), ("B", nb, opts_b)):
        if n < MIN_FRONTIER_POINTS:
            warnings.append(f"{label} has {n} {'frontier ' if o.bins else ''}points; a comparison needs {MIN_FRONTIER_POINTS}+")
    for label, ok in (("A", ok_a), ("B", ok_b)):
        if not ok:
            warnings.append(f"the fit of {label} did not converge")
    if target is not None and target > MAX_EXTRAPOLATION * hi_data:
        warnings.append(f"--target-flops {target:.3g} is {target / hi_data:.3g}x beyond the largest measured compute "
                        f"({hi_data:.3g}); beyond {MAX_EXTRAPOLATION:g}x a law is a guess")
    if chance is not None:
        warnings += _chance_warnings(chance, {"A": data_a, "B": data_b}, opts)
    crossover_ci: tuple[float, float] | None = None
    result_target: tuple[float, float] | None = None
    ratio_ci: tuple[float, float] | None = None
    no_cross = None
    # reaching an error may take far more compute than measured: search six decades beyond the data
    log_reach = np.linspace(np.log(lo), np.log(hi_data * 1e6), GRID)
    if opts.bootstrap:
        progress(f"bootstrap: {opts.bootstrap} resample pairs")
        sa = _samples(opts, data_a, theta_a, opts.seed)
        sb = _samples(opts_b, data_b, theta_b, opts.seed + 1)
        m = min(len(next(iter(sa.values()))), len(next(iter(sb.values()))))
        sa = {k: v[:m] for k, v in sa.items()}
        sb = {k: v[:m] for k, v in sb.items()}
        crossings = first_crossing(curve(opts.form, sa)(c) - curve(opts.form, sb)(c), log_c)
        found = crossings[np.isfinite(crossings)]
        no_cross = float(1 - found.size / m)
        if found.size:
            crossover_ci = (float(np.percentile(found, 2.5)), float(np.percentile(found, 97.5)))
        if target is not None:
            diff = (curve(opts.form, sa)(np.array([target])) - curve(opts.form, sb)(np.array([target])))[:, 0]
            result_target = (float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5)))
        if target_error is not None:
            ratios = compute_to_reach(opts.form, sa, target_error, log_reach) / compute_to_reach(opts.form, sb, target_error, log_reach)
            ratios = ratios[np.isfinite(ratios)]
            if ratios.size:
                ratio_ci = (float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5)))
    if np.isfinite(cross) and cross > hi_data:
        warnings.append(f"the crossover {cross:.3g} lies beyond the measured compute ({hi_data:.3g}): it is a prediction")
    at_target: AtTarget | None = None
    if target is not None:
        ya, yb = float(curve(opts.form, pa)(np.array([target]))[0, 0]), float(curve(opts.form, pb)(np.array([target]))[0, 0])
        at_target = AtTarget(flops=target, a=ya, b=yb, difference=ya - yb, better="a" if ya < yb else "b",
                             difference_ci=result_target)
    at_error: AtError | None = None
    if target_error is not None:
        ca = float(compute_to_reach(opts.form, pa, target_error, log_reach)[0])
        cb = float(compute_to_reach(opts.form, pb, target_error, log_reach)[0])
        at_error = AtError(error=target_error, a_flops=ca if np.isfinite(ca) else None, b_flops=cb if np.isfinite(cb) else None,
                           ratio_a_over_b=ca / cb if np.isfinite(ca) and np.isfinite(cb) else None, ratio_ci=ratio_ci)
        for label, needed in (("A", ca), ("B", cb)):
            if not np.isfinite(needed):
                warnings.append(f"{label}'s fitted law does not reach {target_error:g} within 1e6x the measured compute")
            elif needed > MAX_EXTRAPOLATION * hi_data:
                warnings.append(f"{label} reaches {target_error:g} only at {needed:.3g}, {needed / hi_data:.3g}x beyond the "
                                f"largest measured compute: a guess")
    below = "a" if fa[0, 0] < fb[0, 0] else "b"
    return Comparison(
        form=opts.form,
        crossover=cross if np.isfinite(cross) else None,
        crossover_ci=crossover_ci,
        bootstrap_no_crossover_fraction=no_cross,
        better_at_low_compute=below,
        at_target=at_target,
        at_target_error=at_error,
        span_decades=min(spans.values()),
        searched=(float(lo), float(hi)),
        a=ComparedFit(path=str(path_a), params=pa, points=na, bins=opts.bins),
        b=ComparedFit(path=str(path_b), params=pb, points=nb, bins=opts_b.bins),
        warnings=tuple(warnings),
    )


def _chance_warnings(chance: float, datasets: dict, opts: FitOptions) -> list[str]:
    if not 0 < chance <= 1 and opts.form != "chinchilla":
        raise PlannerError(f"--chance {chance:g}: an error rate at chance level lies in (0, 1]")
    out = []
    for label, data in datasets.items():
        y = data.columns.get("y", data.columns.get("loss"))
        near = int(np.sum(y >= NEAR_CHANCE * chance))
        if near:
            out.append(f"{near} of {len(y)} points of {label} lie near chance level (error >= {NEAR_CHANCE:.0%} of {chance:g}); "
                       "an advantage seen only at poor performance is often deceptive and vanishes at scale")
    return out
