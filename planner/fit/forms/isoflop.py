"""isoflop: Hoffmann et al.'s Approach 2, a parabola in log N per IsoFLOP budget and a power law
N_opt = k·C^a through their minima (the fit is planner.fit.curves.fit_isoflop)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.errors import PlannerError
from planner.fit.form import Columns, Draws, FitForm, Fitted

if TYPE_CHECKING:
    from planner.fit.form import Dataset, FitOptions, Number, Progress
    from planner.fit.result import FitResult

PARAMS = ("a", "b", "N_coefficient", "D_coefficient")


def fit(data: Dataset, opts: FitOptions, progress: Progress) -> Fitted:
    from planner.fit import curves

    cols = data.columns
    fitted = curves.fit_isoflop(cols["params"], cols["flops"], cols["loss"], opts.budget_tolerance)
    params = fitted["params"]
    procedure = {"budgets": fitted["budgets"], "optimal_params": fitted["optimal_params"], "parabolas": fitted["parabolas"]}
    return Fitted(params=params, objective=fitted["objective"], converged=True, procedure=procedure,
                  points=len(fitted["budgets"]), allocation={"a": params["a"], "b": params["b"]},
                  warnings=tuple(fitted["warnings"]))


def bootstrap(data: Dataset, opts: FitOptions, fitted: Fitted) -> Draws:
    """Resample runs with replacement and refit (closed-form fits: a loop is fast enough)."""
    import numpy as np

    from planner.fit import curves, resample

    cols = data.columns
    draws: dict[str, list[float]] = {}
    for idx in resample.draws(len(cols["loss"]), opts.bootstrap, opts.seed):
        try:
            values = curves.fit_isoflop(cols["params"][idx], cols["flops"][idx], cols["loss"][idx], opts.budget_tolerance)["params"]
        except PlannerError:
            continue  # e.g. a resample with too few distinct points
        for k, v in values.items():
            draws.setdefault(k, []).append(v)
    if not draws:
        raise PlannerError("no bootstrap resample could be fitted")
    return Draws(params={k: np.array(v) for k, v in draws.items()})


def law(result: FitResult, number: Number) -> dict[str, Any]:
    return {"allocation": {"form": "power", "quantity": "params",
                           "coefficient": number("N_coefficient", result.params["N_coefficient"]),
                           "exponent": number("a", result.params["a"])}}


FORM = FitForm(name="isoflop", summary="Approach 2", params=PARAMS, columns=Columns("runs", flops_required=True),
               min_rows=6, min_rows_reason="Approach 2 (2 budgets x 3 runs)",
               fit=fit, bootstrap=bootstrap, law=law, plot="isoflop")
