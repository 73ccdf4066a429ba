"""power: E = beta·C^alpha, least squares in log10-log10 on the frontier points (openCLIP's procedure,
Cherti et al. 2023; the fit is planner.fit.curves.fit_power)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from planner.fit.form import CURVE, Draws, FitForm, Fitted, curve_axes, curve_fitted

if TYPE_CHECKING:
    from planner.fit.form import Dataset, FitOptions, Progress


def fit(data: Dataset, opts: FitOptions, progress: Progress) -> Fitted:
    from planner.fit import curves

    return curve_fitted(curves.fit_power(data.columns["x"], data.columns["y"], opts.bins), opts, "log10-log10 least squares")


def bootstrap(data: Dataset, opts: FitOptions, fitted: Fitted) -> Draws:
    from planner.fit import resample

    return Draws(params=resample.power(data.columns["x"], data.columns["y"], opts.bins, opts.bootstrap, opts.seed))


def predict(p: Mapping[str, Any], compute):
    from planner.fit.curves import power_predict

    return power_predict(p, compute)


FORM = FitForm(name="power", summary="E = beta·C^alpha", params=("alpha", "beta"), columns=CURVE,
               min_rows=2, min_rows_reason="a power law",
               fit=fit, bootstrap=bootstrap, predict=predict, frontier=True, axes=curve_axes)
