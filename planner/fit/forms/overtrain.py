"""overtrain: Gadre et al. 2024's L(C, M) = E + (a_M·M^η + b_M·M^−η)·C^−η over compute C and token multiplier
M = D/N, from runs trained at several multipliers (the numerics are planner.fit.gadre). Its law file is
the same law as a Chinchilla-form loss with tied exponents, so `planner plan` takes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from planner.errors import PlannerWarning
from planner.fit.form import RUNS, Draws, FitForm, Fitted

if TYPE_CHECKING:
    from planner.fit.form import Dataset, FitOptions, Number, Progress
    from planner.fit.result import FitResult

PARAMS = ("E", "a_M", "b_M", "eta")  # Gadre et al.'s a and b: planner's a and b are allocation exponents


def fit(data: Dataset, opts: FitOptions, progress: Progress) -> Fitted:
    import numpy as np

    from planner.fit import gadre
    from planner.fit.data import require_spread

    cols = data.columns
    require_spread(cols["params"], opts.params_col, data.table.path)
    multipliers = cols["tokens"] / cols["params"]
    progress(f"fitting {len(cols['loss'])} runs at token multipliers {multipliers.min():.3g}-{multipliers.max():.3g} "
             f"(Gadre et al. 2024; least squares on the loss, η profiled)")
    got = gadre.fit(cols["params"], cols["tokens"], cols["loss"])
    params = {k: float(got[k][0]) for k in PARAMS}
    warnings = []
    if np.ptp(np.log10(multipliers)) < 1:
        warnings.append(PlannerWarning("fit", f"the runs span token multipliers {multipliers.min():.3g}-{multipliers.max():.3g}; "
                                       "the over-training law needs a decade or more of M (Gadre et al.: 5 to 640)"))
    if not 0.02 < params["eta"] < 1.0:
        warnings.append(PlannerWarning("fit", f"eta = {params['eta']:.3g} is at the edge of the range searched (0.02-1)"))
    m_best = float(gadre.best_multiplier(params)) if params["a_M"] > 0 and params["b_M"] > 0 else float("nan")
    procedure = {"objective": "sum of squared loss residuals (as Gadre et al.'s curve_fit)", "eta_grid": len(gadre.ETA_GRID),
                 "best_multiplier": m_best, "multipliers": [float(multipliers.min()), float(multipliers.max())]}
    chin = gadre.as_chinchilla(params)
    return Fitted(params=params, objective=float(got["sse"][0]), converged=True, procedure=procedure,
                  points=len(cols["loss"]), allocation={"a": 0.5, "b": 0.5, "M_opt": m_best,
                                                        "alpha_beta": float(chin["alpha"])},
                  warnings=tuple(warnings))


def bootstrap(data: Dataset, opts: FitOptions, fitted: Fitted) -> Draws:
    """Runs resampled with replacement, every resample profiled at once (row weights)."""
    import numpy as np

    from planner.fit import gadre, resample

    cols = data.columns
    n = len(cols["loss"])
    weights = np.stack([np.bincount(idx, minlength=n) for idx in resample.draws(n, opts.bootstrap, opts.seed)]).astype(float)
    got = gadre.fit(cols["params"], cols["tokens"], cols["loss"], weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        m_best = gadre.best_multiplier(got)
    return Draws(params={k: got[k] for k in PARAMS}, derived={"M_opt": m_best, "a": np.full(len(m_best), 0.5),
                                                               "b": np.full(len(m_best), 0.5)})


def predict(p: Mapping[str, Any], compute):
    """The loss at the best token multiplier for each compute (the law's frontier)."""
    from planner.fit import gadre

    return gadre.frontier(p, compute)


def law(result: FitResult, number: Number) -> dict[str, Any]:
    from planner.fit import gadre

    chin = gadre.as_chinchilla(result.params)
    return {"loss": {"form": "chinchilla", **{k: number(k, float(chin[k])) for k in ("E", "A", "B", "alpha", "beta")}}}


FORM = FitForm(name="overtrain", summary="L(C, M) over token multipliers (Gadre et al. 2024)", params=PARAMS, columns=RUNS,
               min_rows=5, min_rows_reason="the over-training law (4 parameters)",
               fit=fit, bootstrap=bootstrap, predict=predict, law=law)
