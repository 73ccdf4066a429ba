"""saturating: L = C_c·C^-alpha + L_eps, least squares on log error from a grid of starts (the fit is
planner.fit.curves.fit_saturating)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from planner.fit.form import CURVE, Draws, FitForm, Fitted, curve_axes, curve_fitted

if TYPE_CHECKING:
    from planner.fit.form import Dataset, FitOptions, Progress


def fit(data: Dataset, opts: FitOptions, progress: Progress) -> Fitted:
    from planner.fit import curves

    return curve_fitted(curves.fit_saturating(data.columns["x"], data.columns["y"], opts.bins), opts, "least squares on log error")


def bootstrap(data: Dataset, opts: FitOptions, fitted: Fitted) -> Draws:
    """All resamples refitted at once from the full fit's optimum."""
    from planner.fit import resample

    samples, _ok = resample.saturating(data.columns["x"], data.columns["y"], opts.bins, opts.bootstrap, opts.seed, fitted.start)
    return Draws(params=samples)


def predict(p: Mapping[str, Any], compute):
    from planner.fit.curves import saturating_predict

    return saturating_predict(p, compute)


FORM = FitForm(name="saturating", summary="L = C_c·C^-alpha + L_eps", params=("C_c", "alpha", "L_eps"), columns=CURVE,
               min_rows=4, min_rows_reason="the saturating law (3 parameters)",
               fit=fit, bootstrap=bootstrap, predict=predict, frontier=True, axes=curve_axes)
