"""isoflop: Hoffmann et al.'s Approach 2, a parabola in log N per IsoFLOP budget and a power law
N_opt = k·C^a through their minima (the fit is planner.fit.curves.fit_isoflop)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from planner.errors import PlannerError, PlannerWarning
from planner.fit.form import Columns, Draws, FitForm, Fitted

if TYPE_CHECKING:
    from planner.fit.form import Dataset, FitOptions, Number, Progress
    from planner.fit.result import FitResult

PARAMS = ("a", "b", "N_coefficient", "D_coefficient")


OFF_CENTRE = 0.25  # a parabola's minimum in the outer quarter of the sizes tried (in log N) is off-centre
BIAS_WARN = 0.02  # warn when the procedure's own bias wastes more than 2% of the compute
SIZE_WARN = 0.10  # or misplaces N_opt by more than 10%
# the stand-in law must give the data's own Approach-2 exponent back (within this) for its bias to mean anything:
# runs that are no IsoFLOP grid (Epoch's extraction of the Chinchilla runs, say) it does not describe
AGREE = 0.05


def fit(data: Dataset, opts: FitOptions, progress: Progress) -> Fitted:
    from planner.fit import curves

    cols = data.columns
    fitted = curves.fit_isoflop(cols["params"], cols["flops"], cols["loss"], opts.budget_tolerance)
    params = fitted["params"]
    warnings = list(fitted["warnings"])
    for p in fitted["parabolas"]:
        lo, hi = (math.log(x) for x in p["params_range"])
        curv, lin, _ = p["coefficients"]
        where = (-lin / (2 * curv) - lo) / (hi - lo)
        if OFF_CENTRE <= where <= 1 - OFF_CENTRE:
            continue
        if 0 <= where <= 1:
            warnings.append(PlannerWarning("fit", f"budget {p['budget']:.3g}: the minimum sits at {where:.0%} of the sizes "
                                           "tried (in log N); a parabola through an off-centre grid is biased toward its "
                                           "centre: centre the sizes on it"))
    procedure = {"budgets": fitted["budgets"], "optimal_params": fitted["optimal_params"], "parabolas": fitted["parabolas"]}
    bias = procedure_bias(cols, fitted, opts.budget_tolerance)
    if bias is not None:
        procedure["bias"] = bias
        if bias["compute_equivalent"] > BIAS_WARN or abs(bias["params_at_largest_budget"]) > SIZE_WARN:
            warnings.append(PlannerWarning("fit", f"Approach 2's own bias on these sizes: under the L(N, D) law fitted to the same "
                                           f"runs, noise-free losses at them give a = {bias['a_recovered']:.4g} (true "
                                           f"{bias['a_true']:.4g}) and N_opt {bias['params_at_largest_budget']:+.1%} at the "
                                           f"largest budget, which wastes {bias['compute_equivalent']:.1%} of its compute "
                                           "(grid width, off-centre sizes and alpha/beta asymmetry; Open-Athena, arXiv "
                                           "2603.22339): compare with the chinchilla form"))
    return Fitted(params=params, objective=fitted["objective"], converged=True, procedure=procedure,
                  points=len(fitted["budgets"]), allocation={"a": params["a"], "b": params["b"]}, warnings=tuple(warnings))


def procedure_bias(cols: dict, fitted: dict, tolerance: float) -> dict | None:
    """How far Approach 2 is off by itself on these runs: the Chinchilla form fitted to the same runs
    (VPNLS) stands in for the truth; noise-free losses at the same sizes go through the same parabolas.
    None when the runs do not determine that law (too few, or exponents outside published ranges), or
    when it does not reproduce the data's own Approach-2 exponent (then its bias would be its own)."""
    import numpy as np

    from planner.fit import chinchilla, curves, vpnls
    from planner.laws import chinchilla_math

    n, d, loss = cols["params"], cols["tokens"], cols["loss"]
    if len(loss) < 6 or np.unique(n).size < 3:
        return None
    truth = {k: float(v[0]) for k, v in chinchilla.to_params(vpnls.fit(n, d, loss)["theta"]).items()}
    if not (0.05 < truth["alpha"] < 1.5 and 0.05 < truth["beta"] < 1.5):
        return None
    clean = chinchilla_math.loss(truth, n, d)
    try:
        again = curves.fit_isoflop(n, cols["flops"], clean, tolerance)
    except PlannerError:
        return None
    if abs(again["params"]["a"] - fitted["params"]["a"]) > AGREE:  # the law does not describe these runs' parabolas
        return None
    _, a_true, _ = chinchilla_math.closed_form(truth)
    top = max(again["budgets"])
    n_true, _ = chinchilla_math.allocate(truth, top)
    n_got = again["params"]["N_coefficient"] * top ** again["params"]["a"]
    # compute-equivalent: the compute at which the true optimum reaches the loss of the biased allocation
    biased = float(chinchilla_math.loss(truth, n_got, top / (6 * n_got)))
    lo, hi = math.log(top) - math.log(1e3), math.log(top)  # the frontier loss falls with compute: bisect in log C
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(chinchilla_math.frontier_loss(truth, math.exp(mid))) > biased else (lo, mid)
    return {"truth": "the chinchilla form fitted to the same runs", "a_true": float(a_true),
            "a_recovered": again["params"]["a"], "params_at_largest_budget": float(n_got / n_true - 1),
            "compute_equivalent": float(max(0.0, 1 - math.exp(hi) / top))}


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
