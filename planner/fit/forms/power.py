"""power: E = beta·C^alpha, least squares in log10-log10 on the frontier points (openCLIP's procedure,
Cherti et al. 2023; the fit is planner.fit.curves.fit_power)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from planner.errors import PlannerWarning
from planner.fit.form import CURVE, Draws, FitForm, Fitted, curve_axes, curve_fitted

if TYPE_CHECKING:
    from planner.fit.form import Dataset, FitOptions, Progress


def fit(data: Dataset, opts: FitOptions, progress: Progress) -> Fitted:
    from planner.fit import curves

    fitted = curve_fitted(curves.fit_power(data.columns["x"], data.columns["y"], opts.bins), opts, "log10-log10 least squares")
    alpha = fitted.params["alpha"]
    if alpha >= 0:  # a scaling law of a loss or an error falls with compute; this one says more compute is worse
        rising = PlannerWarning("fit", f"the fitted exponent alpha = {alpha:.3g} is not negative: {curve_axes(opts)[1]} "
                                "rises with compute, which no loss or error should (an accuracy column? fit 1 − accuracy)")
        fitted = replace(fitted, warnings=fitted.warnings + (rising,))
    return fitted


def bootstrap(data: Dataset, opts: FitOptions, fitted: Fitted) -> Draws:
    from planner.fit import resample

    return Draws(params=resample.power(data.columns["x"], data.columns["y"], opts.bins, opts.bootstrap, opts.seed))


def predict(p: Mapping[str, Any], compute):
    from planner.fit.curves import power_predict

    return power_predict(p, compute)


FORM = FitForm(name="power", summary="E = beta·C^alpha", params=("alpha", "beta"), columns=CURVE,
               min_rows=2, min_rows_reason="a power law",
               fit=fit, bootstrap=bootstrap, predict=predict, frontier=True, axes=curve_axes)
