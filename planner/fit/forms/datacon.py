"""data-constrained: Muennighoff et al. 2023's law for repeated data, L = E + A/N'^α + B/D'^β with effective
data D' and parameters N' that decay with epochs beyond the first (R*_D) and with parameters beyond the
optimum for the unique data (R*_N), fitted to the user's own runs (the numerics are planner.fit.muennighoff).
Its law file carries the base law and the fitted R*, for planning with unique tokens (`planner plan`).
With a base law (`FitOptions.base_law`, a catalog law) only R*_N and R*_D are fitted, the base held fixed,
as the authors fitted theirs (their base law came from Chinchilla's isoFLOP points, not their runs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from planner.errors import PlannerWarning
from planner.fit.form import Columns, Draws, FitForm, Fitted

if TYPE_CHECKING:
    from planner.fit.form import Dataset, FitOptions, Number, Progress
    from planner.fit.result import FitResult
    from planner.laws import Law

PARAMS = ("E", "A", "B", "alpha", "beta", "R_N_star", "R_D_star")


def fit(data: Dataset, opts: FitOptions, progress: Progress) -> Fitted:
    import numpy as np

    from planner.fit import chinchilla, muennighoff

    cols = data.columns
    epochs = cols["tokens"] / cols["unique_tokens"]
    if opts.base_law is not None:
        return fit_decay(data, opts, progress)
    progress(f"fitting {len(cols['loss'])} runs of up to {epochs.max():.3g} epochs (Muennighoff et al. 2023; base law "
             "on single-epoch runs, then R*, then all seven)")
    got = muennighoff.fit(cols["params"], cols["tokens"], cols["unique_tokens"], cols["loss"], opts.huber_delta)
    params = {k: got[k] for k in PARAMS}
    warnings = few_epochs(epochs)
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


def few_epochs(epochs) -> list[PlannerWarning]:
    if epochs.max() >= 4:
        return []
    return [PlannerWarning("fit", f"the runs repeat their data at most {epochs.max():.3g} times; R*_D is determined by "
                           "runs of many epochs (Muennighoff et al. went to 44)")]


def base_of(law: Law | str) -> dict[str, float]:
    """E, A, B, alpha, beta of a law of the chinchilla form (a name: from the built-in catalog)."""
    from planner.catalog import Catalog
    from planner.errors import PlannerError
    from planner.laws import ChinchillaLoss

    resolved = law
    if isinstance(resolved, str):
        try:
            resolved = Catalog().law(resolved)
        except PlannerError as e:
            raise PlannerError(e.message, "base_law", refs=e.refs) from None
    assert not isinstance(resolved, str)
    if not isinstance(resolved.loss, ChinchillaLoss):
        raise PlannerError(f"law '{resolved.name}' has no chinchilla-form loss (E, A, B, alpha, beta) to hold fixed", "base_law")
    return resolved.loss.coefficients()


def fit_decay(data: Dataset, opts: FitOptions, progress: Progress) -> Fitted:
    import numpy as np

    from planner.fit import chinchilla, muennighoff

    assert opts.base_law is not None
    cols = data.columns
    base = base_of(opts.base_law)
    name = opts.base_law if isinstance(opts.base_law, str) else opts.base_law.name
    progress(f"fitting R*_N, R*_D to {len(cols['loss'])} runs, the base law {name} held fixed (Muennighoff et "
             f"al. 2023's procedure: local optima from their {len(muennighoff.AUTHORS_STARTS)} starts, the best kept)")
    got = muennighoff.fit_decay(base, cols["params"], cols["tokens"], cols["unique_tokens"], cols["loss"], opts.huber_delta)
    params = {k: float(base[k]) if k in base else got[k] for k in PARAMS}
    warnings = few_epochs(cols["tokens"] / cols["unique_tokens"])
    if got["lower"] is not None:
        low = got["lower"]
        warnings.append(PlannerWarning("fit", f"the objective has a lower optimum than the one reached from Muennighoff et "
                                       f"al.'s starts: R*_N = {low['R_N_star']:.4g}, R*_D = {low['R_D_star']:.4g} "
                                       f"({low['objective']:.8g} against {got['objective']:.8g})"))
    procedure = {"huber_delta": opts.huber_delta, "objective": "sum of Huber(log L̂ − log L)", "base_law": name,
                 "fixed": list(muennighoff.BASE), "starts": got["starts"], "lower_optimum": got["lower"]}
    start = np.log([params["R_N_star"], params["R_D_star"]])
    return Fitted(params=params, objective=got["objective"], converged=True, procedure=procedure, points=len(cols["loss"]),
                  allocation=chinchilla.allocation(base), warnings=tuple(warnings), start=start)


def bootstrap(data: Dataset, opts: FitOptions, fitted: Fitted) -> Draws:
    """Runs resampled with replacement, each resample refitted jointly from the full fit's optimum (with a
    base law: R*_N, R*_D alone, the base fixed)."""
    import numpy as np

    from planner.fit import chinchilla, muennighoff, resample

    cols = data.columns
    draws: dict[str, list[float]] = {k: [] for k in PARAMS}
    log_loss = np.log(cols["loss"])
    for idx in resample.draws(len(cols["loss"]), opts.bootstrap, opts.seed):
        n, d, u = cols["params"][idx], cols["tokens"][idx], cols["unique_tokens"][idx]
        if opts.base_law is not None:
            values = muennighoff.fit_decay(fitted.params, n, d, u, cols["loss"][idx], opts.huber_delta,
                                           starts=(tuple(np.exp(fitted.start)),), search=False)
        else:
            values = muennighoff.to_values(muennighoff.polish(fitted.start, n, d, u, log_loss[idx], opts.huber_delta))
        for k in PARAMS:
            draws[k].append(values[k])
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
