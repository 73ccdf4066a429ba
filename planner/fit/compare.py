"""Comparing two learning procedures by their fitted laws over compute, never by a single point.

Both data sets are fitted with the same form; the crossover is where the two predicted curves
cross (the better procedure changes), found on a log-spaced grid and refined by linear
interpolation in log C; bootstrap pairs give its interval. Warnings say when the comparison
cannot be trusted (planner policy from the scaling-law reference §12.2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from planner.errors import PlannerError, PlannerWarning
from planner.fit import optim
from planner.fit.form import MIN_FRONTIER_POINTS, MIN_SPAN_DECADES, Dataset, FitForm, FitOptions, Fitted, quiet
from planner.fit.forms import FORMS, comparable, either
from planner.fit.result import AtError, AtTarget, ComparedFit, Comparison
from planner.fit.runner import load

GRID = 4001
DRAWS_AT_ONCE = optim.CHUNK_ELEMENTS // GRID  # bootstrap draws whose curves are evaluated on the grid together
MAX_EXTRAPOLATION = 10.0
NEAR_CHANCE = 0.9  # a point with error >= 90% of chance level carries too little signal


def first_crossing(diff: np.ndarray, log_c: np.ndarray) -> np.ndarray:
    """Per row, the first C where the sign of diff changes (NaN when it never does)."""
    sign = np.sign(diff)
    change = (sign[:, :-1] * sign[:, 1:]) < 0
    has = change.any(axis=1)
    k = np.argmax(change, axis=1)
    rows = np.arange(diff.shape[0])
    d0, d1 = diff[rows, k], diff[rows, k + 1]
    # rows without a crossing give 0/0 or an x far off the grid whose exp overflows: masked below
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        t = d0 / (d0 - d1)
        x = log_c[k] + t * (log_c[k + 1] - log_c[k])
        return np.where(has, np.exp(x), np.nan)


def compute_to_reach(form: FitForm, params: Mapping[str, Any], error: float, log_c: np.ndarray) -> np.ndarray:
    """Per parameter draw, the least compute on the grid at which the fitted curve falls to `error`
    (NaN when it does not within the grid: a floor above the target, or beyond the search)."""
    return first_crossing(form.curve(params)(np.exp(log_c)) - error, log_c)


def per_draws(fn: Callable[..., np.ndarray], *draws: Mapping[str, np.ndarray]) -> np.ndarray:
    """fn over the aligned parameter draws, DRAWS_AT_ONCE rows at a time (each row is on its own, so the
    result is the same), so that 10,000 draws x GRID points never sit in memory at once."""
    count = len(next(iter(draws[0].values())))
    return np.concatenate([fn(*({k: v[lo:lo + DRAWS_AT_ONCE] for k, v in d.items()} for d in draws))
                           for lo in range(0, count, DRAWS_AT_ONCE)] or [np.empty(0)])


def _fit(path: Path, opts: FitOptions) -> tuple[Dataset, Fitted]:
    data = load(path, opts)
    return data, FORMS[opts.form].fit(data, opts, quiet)


def _draws(form: FitForm, opts: FitOptions, data: Dataset, fitted: Fitted, seed: int) -> dict[str, np.ndarray]:
    return form.bootstrap(data, replace(opts, seed=seed), fitted).params


def compare(path_a: Path, path_b: Path, opts: FitOptions, target: float | None = None, chance: float | None = None,
            progress: Callable[[str], None] = quiet, opts_b: FitOptions | None = None,
            target_error: float | None = None) -> Comparison:
    """Fit A with `opts` and B with `opts_b` (default: the same options) and compare the curves:
    the crossover, predictions at `target` compute, and the compute each needs for `target_error`."""
    opts_b = opts if opts_b is None else opts_b
    if opts.form not in comparable():
        raise PlannerError(f"compare takes {either(comparable())}, not '{opts.form}'", "form")
    form = FORMS[opts.form]
    progress(f"fitting {path_a} and {path_b} ({opts.form})")
    data_a, fit_a = _fit(path_a, opts)
    data_b, fit_b = _fit(path_b, opts_b)
    pa, pb = fit_a.params, fit_b.params
    lo = min(data_a.compute.min(), data_b.compute.min())
    hi_data = max(data_a.compute.max(), data_b.compute.max())
    hi = max(hi_data * 1e3, (target or 0) * 10)
    log_c = np.linspace(np.log(lo), np.log(hi), GRID)
    c = np.exp(log_c)
    fa, fb = form.curve(pa)(c), form.curve(pb)(c)
    cross = float(first_crossing(fa - fb, log_c)[0])
    warnings: list[PlannerWarning] = []
    spans = {k: float(np.log10(d.compute.max()) - np.log10(d.compute.min())) for k, d in (("a", data_a), ("b", data_b))}
    for label, span in spans.items():
        if span < MIN_SPAN_DECADES:
            warnings.append(PlannerWarning("fit", f"{label.upper()} spans {span:.2f} decades of compute; "
                                           f"a comparison needs {MIN_SPAN_DECADES:g}+"))
    for label, fitted, o in (("A", fit_a, opts), ("B", fit_b, opts_b)):
        if fitted.points < MIN_FRONTIER_POINTS:
            warnings.append(PlannerWarning("fit", f"{label} has {fitted.points} {'frontier ' if o.bins else ''}points; a comparison needs "
                            f"{MIN_FRONTIER_POINTS}+"))
    for label, fitted in (("A", fit_a), ("B", fit_b)):
        if not fitted.converged:
            warnings.append(PlannerWarning("fit", f"the fit of {label} did not converge"))
    if target is not None and target > MAX_EXTRAPOLATION * hi_data:
        warnings.append(PlannerWarning("fit", f"the target compute {target:.3g} is {target / hi_data:.3g}x beyond the largest "
                                       f"measured compute ({hi_data:.3g}); beyond {MAX_EXTRAPOLATION:g}x a law is a guess"))
    if chance is not None:
        warnings += _chance_warnings(chance, {"A": data_a, "B": data_b}, form)
    crossover_ci: tuple[float, float] | None = None
    result_target: tuple[float, float] | None = None
    ratio_ci: tuple[float, float] | None = None
    no_cross = None
    # reaching an error may take far more compute than measured: search six decades beyond the data
    log_reach = np.linspace(np.log(lo), np.log(hi_data * 1e6), GRID)
    if opts.bootstrap:
        progress(f"bootstrap: {opts.bootstrap} resample pairs")
        sa = _draws(form, opts, data_a, fit_a, opts.seed)
        sb = _draws(form, opts_b, data_b, fit_b, opts.seed + 1)
        m = min(len(next(iter(sa.values()))), len(next(iter(sb.values()))))
        sa = {k: v[:m] for k, v in sa.items()}
        sb = {k: v[:m] for k, v in sb.items()}
        crossings = per_draws(lambda a, b: first_crossing(form.curve(a)(c) - form.curve(b)(c), log_c), sa, sb)
        found = crossings[np.isfinite(crossings)]
        no_cross = float(1 - found.size / m)
        if found.size:
            crossover_ci = (float(np.percentile(found, 2.5)), float(np.percentile(found, 97.5)))
        if target is not None:
            diff = (form.curve(sa)(np.array([target])) - form.curve(sb)(np.array([target])))[:, 0]
            result_target = (float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5)))
        if target_error is not None:
            def reach(draws: Mapping[str, np.ndarray]) -> np.ndarray:
                return compute_to_reach(form, draws, target_error, log_reach)

            ratios = per_draws(reach, sa) / per_draws(reach, sb)
            ratios = ratios[np.isfinite(ratios)]
            if ratios.size:
                ratio_ci = (float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5)))
    if np.isfinite(cross) and cross > hi_data:
        warnings.append(PlannerWarning("fit", f"the crossover {cross:.3g} lies beyond the measured compute ({hi_data:.3g}): "
                                       "it is a prediction"))
    at_target: AtTarget | None = None
    if target is not None:
        ya, yb = float(form.curve(pa)(np.array([target]))[0, 0]), float(form.curve(pb)(np.array([target]))[0, 0])
        at_target = AtTarget(flops=target, a=ya, b=yb, difference=ya - yb, better="a" if ya < yb else "b",
                             difference_ci=result_target)
    at_error: AtError | None = None
    if target_error is not None:
        ca = float(compute_to_reach(form, pa, target_error, log_reach)[0])
        cb = float(compute_to_reach(form, pb, target_error, log_reach)[0])
        at_error = AtError(error=target_error, a_flops=ca if np.isfinite(ca) else None, b_flops=cb if np.isfinite(cb) else None,
                           ratio_a_over_b=ca / cb if np.isfinite(ca) and np.isfinite(cb) else None, ratio_ci=ratio_ci)
        for label, needed in (("A", ca), ("B", cb)):
            if not np.isfinite(needed):
                warnings.append(PlannerWarning("fit", f"{label}'s fitted law does not reach {target_error:g} within 1e6x the "
                                               "measured compute"))
            elif needed > MAX_EXTRAPOLATION * hi_data:
                warnings.append(PlannerWarning("fit", f"{label} reaches {target_error:g} only at {needed:.3g}, "
                                               f"{needed / hi_data:.3g}x beyond the largest measured compute: a guess"))
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
        a=ComparedFit(path=str(path_a), params=pa, points=fit_a.points, bins=opts.bins),
        b=ComparedFit(path=str(path_b), params=pb, points=fit_b.points, bins=opts_b.bins),
        warnings=tuple(warnings),
    )


def _chance_warnings(chance: float, datasets: dict[str, Dataset], form: FitForm) -> list[PlannerWarning]:
    response = form.columns.response
    if not 0 < chance <= 1 and response != "loss":  # a loss at chance level may exceed 1; an error rate may not
        raise PlannerError(f"{chance:g} is not an error rate at chance level, which lies in (0, 1]", "chance")
    out: list[PlannerWarning] = []
    for label, data in datasets.items():
        y = data.columns[response]
        near = int(np.sum(y >= NEAR_CHANCE * chance))
        if near:
            out.append(PlannerWarning("fit", f"{near} of {len(y)} points of {label} lie near chance level (error >= "
                                      f"{NEAR_CHANCE:.0%} of {chance:g}); an advantage seen only at poor performance is "
                                      "often deceptive and vanishes at scale"))
    return out
