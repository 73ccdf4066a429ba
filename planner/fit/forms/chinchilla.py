"""chinchilla: L(N, D) = E + A/N^alpha + B/D^beta, Hoffmann et al.'s Approach 3 as Epoch replicated it
(the optimiser is planner.fit.chinchilla, the math planner.laws.chinchilla_math)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from planner.errors import PlannerWarning
from planner.fit.form import RUNS, Draws, FitForm, Fitted

if TYPE_CHECKING:
    from planner.fit.form import Dataset, FitOptions, Number, Progress
    from planner.fit.result import FitResult

PARAMS = ("E", "A", "B", "alpha", "beta")


def fit(data: Dataset, opts: FitOptions, progress: Progress) -> Fitted:
    from planner.fit import chinchilla
    from planner.fit.data import require_spread

    cols = data.columns
    require_spread(cols["params"], opts.params_col, data.table.path)
    if opts.solver == "bfgs":
        progress(f"fitting {len(cols['loss'])} points from {len(chinchilla.start_grid())} starts (Huber δ={opts.huber_delta:g}, summed)")
        best = chinchilla.fit(cols["params"], cols["tokens"], cols["loss"], opts.huber_delta)
    else:
        from planner.fit import vpnls

        progress(f"fitting {len(cols['loss'])} points by variable projection over {len(vpnls.EXPONENTS) ** 2} exponent pairs "
                 f"(Huber δ={opts.huber_delta:g}, summed)")
        best = vpnls.fit(cols["params"], cols["tokens"], cols["loss"], opts.huber_delta)
    params = {k: float(v[0]) for k, v in chinchilla.to_params(best["theta"]).items()}
    warnings = tuple(PlannerWarning("fit", f"{name} = {params[name]:.3g} is implausible for a scaling exponent; check the data")
                     for name in ("alpha", "beta") if not 0.05 < params[name] < 1.5)
    procedure = {"solver": opts.solver, "huber_delta": opts.huber_delta, "objective": "sum of Huber(log L̂ − log L)",
                 "starts": best["starts"], "starts_converged": best["starts_converged"],
                 "starts_within_0.1pct_of_best": best["starts_at_best"]}
    if "grid_points" in best:  # a large table: the grid ran on these many runs, the best optimum was refined on all
        procedure["grid_points"] = best["grid_points"]
    return Fitted(params=params, objective=best["objective"], converged=best["converged"], procedure=procedure,
                  points=len(cols["loss"]), allocation=chinchilla.allocation(params), warnings=warnings, start=best["theta"])


def bootstrap(data: Dataset, opts: FitOptions, fitted: Fitted) -> Draws:
    """Epoch's bootstrap: every resample refitted by BFGS from the full fit's optimum, vectorised."""
    from planner.fit import chinchilla, resample

    samples, ok = resample.chinchilla_form(data.columns, opts.bootstrap, opts.seed, opts.huber_delta, fitted.start)
    alloc = chinchilla.allocation(samples)
    warnings = () if ok.all() else (PlannerWarning("fit", f"{(~ok).sum()} of {len(ok)} bootstrap refits did not converge"),)
    return Draws(params=samples, derived={"a": alloc["a"], "b": alloc["b"]}, warnings=warnings)


def predict(p: Mapping[str, Any], compute):
    """The loss of the compute-optimal model at C (the frontier)."""
    from planner.laws.chinchilla_math import frontier_loss

    return frontier_loss(p, compute)


def law(result: FitResult, number: Number) -> dict[str, Any]:
    return {"loss": {"form": "chinchilla", **{k: number(k, result.params[k]) for k in PARAMS}}}


FORM = FitForm(name="chinchilla", summary="L(N,D) (Approach 3; variable projection, or the 4,500-start grid)", params=PARAMS, columns=RUNS,
               min_rows=6, min_rows_reason="the chinchilla form (5 parameters)",
               fit=fit, bootstrap=bootstrap, predict=predict, law=law, law_draws=PARAMS)
