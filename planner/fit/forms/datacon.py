"""data-constrained: Muennighoff et al. 2023's law for repeated data, L = E + A/N'^α + B/D'^β with effective
data D' and parameters N' that decay with epochs beyond the first (R*_D) and with parameters beyond the
optimum for the unique data (R*_N), fitted to the user's own runs (the numerics are planner.fit.muennighoff).
Its law file carries the base law and the fitted R*, for planning with unique tokens (`planner plan`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from planner.errors import PlannerWarning
from planner.fit.form import Columns, Draws, FitForm, Fitted

if TYPE_CHECKING:
    from planner.fit.form import Dataset, FitOptions, Number, Progress
    from planner.fit.result import FitResult

PARAMS = ("E", "A", "B", "alpha", "beta", "R_N_star", "R_D_star")


def fit(data: Dataset, opts: FitOptions, progress: Progress) -> Fitted:
    import numpy as np

    from planner.fit import chinchilla, muennighoff

    cols = data.columns
    epochs = cols["tokens"] / cols["unique_tokens"]
    progress(f"fitting {len(cols['loss'])} runs of up to {epochs.max():.3g} epochs (Muennighoff et al. 2023; base law "
             "on single-epoch runs, then R*, then all seven)")
    got = muennighoff.fit(cols["params"], cols["tokens"], cols["unique_tokens"], cols["loss"], opts.huber_delta)
    params = {k: got[k] for k in PARAMS}
    warnings = []
    if epochs.max() < 4:
        warnings.append(PlannerWarning("fit", f"the runs repeat their data at most {epochs.max():.3g} times; R*_D is "
                                       "determined by runs of many epochs (Muennighoff et al. went to 44)"))
    for key in ("R_N_star", "R_D_star"):
        if not muennighoff.R_GRID[0] * 1.01 < params[key] < muennighoff.R_GRID[-1] / 1.01:
            warnings.append(PlannerWarning("fit", f"{key} = {params[key]:.3g} is at the edge of the range searched: the runs "
                                           "do not determine it"))
    procedure = {"huber_delta": opts.huber_delta, "objective": "sum of Huber(log L̂ − log L)",
                 "single_epoch_runs": got["single_epoch_runs"], "max_epochs": float(epochs.max())}
    base = {k: params[k] for k in ("E", "A", "B", "alpha", "beta")}
    start = np.array([np.log(base["A"]), np.log(base["B"]), np.log(base["E"]), base["alpha"], base["beta"],
                      np.log(params["R_N_star"]), np.log(params["R_D_star"])])
    return Fitted(params=params, objective=got["objective"], converged=True, procedure=procedure,
                  points=len(cols["loss"]), allocation=chinchilla.allocation(base), warnings=tuple(warnings), start=start)


def bootstrap(data: Dataset, opts: FitOptions, fitted: Fitted) -> Draws:
    """Runs resampled with replacement, each resample refitted jointly from the full fit's optimum."""
    import numpy as np

    from planner.fit import chinchilla, muennighoff, resample

    cols = data.columns
    draws: dict[str, list[float]] = {k: [] for k in PARAMS}
    log_loss = np.log(cols["loss"])
    for idx in resample.draws(len(cols["loss"]), opts.bootstrap, opts.seed):
        theta = muennighoff.polish(fitted.start, cols["params"][idx], cols["tokens"][idx], cols["unique_tokens"][idx],
                                   log_loss[idx], opts.huber_delta)
        for k, v in muennighoff.to_values(theta).items():
            draws[k].append(v)
    values = {k: np.array(v) for k, v in draws.items()}
    alloc = chinchilla.allocation(values)
    return Draws(params=values, derived={"a": alloc["a"], "b": alloc["b"]})


def predict(p: Mapping[str, Any], compute):
    """The loss of the compute-optimal run with unlimited unique data (the base law's frontier)."""
    from planner.laws.chinchilla_math import frontier_loss

    return frontier_loss(p, compute)


def law(result: FitResult, number: Number) -> dict[str, Any]:
    return {"loss": {"form": "chinchilla", **{k: number(k, result.params[k]) for k in ("E", "A", "B", "alpha", "beta")}},
            "data_constrained": {k: number(k, result.params[k]) for k in ("R_N_star", "R_D_star")}}


FORM = FitForm(name="data-constrained", summary="repeated data (Muennighoff et al. 2023)", params=PARAMS,
               columns=Columns("runs", unique_tokens=True), min_rows=9, min_rows_reason="the data-constrained law (7 parameters)",
               fit=fit, bootstrap=bootstrap, predict=predict, law=law)
