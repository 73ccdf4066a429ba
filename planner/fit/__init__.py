"""`fit`: scaling laws from the user's own runs, with bootstrap intervals and a law file for `plan`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planner.errors import PlannerError
from planner.fit import chinchilla, curves, resample
from planner.fit.data import Table, column, parse_where, read_csv, require_rows, require_spread, select
from planner.fit.result import BootstrapInfo, FitData, FitResult

FORMS = ("chinchilla", "isoflop", "power", "saturating")
MIN_SPAN_DECADES = 2.0
MIN_FRONTIER_POINTS = 5
MIN_ROWS = {"chinchilla": (6, "the chinchilla form (5 parameters)"), "isoflop": (6, "Approach 2 (2 budgets x 3 runs)"),
            "power": (2, "a power law"), "saturating": (4, "the saturating law (3 parameters)")}


@dataclass
class FitOptions:
    form: str
    params_col: str = "params"
    tokens_col: str | None = None
    flops_col: str | None = None
    loss_col: str = "loss"
    x_col: str = "flops"
    y_col: str = "loss"
    one_minus: bool = False  # y = 1 - column (accuracy → error)
    where: list[str] = field(default_factory=list)
    bins: int | str | None = None  # K equal-width log-compute bins, or curves.PARETO
    bootstrap: int = 0
    seed: int = 0
    huber_delta: float = 1e-3
    drop_highest: int = 0  # drop the K highest-y rows (Epoch drop 5 outliers)
    budget_tolerance: float = 0.05


@dataclass
class Dataset:
    table: Table
    columns: dict[str, np.ndarray]  # params/tokens/loss (chinchilla, isoflop) or x/y (curves)
    compute: np.ndarray  # FLOPs or the x column, for spans and plots


def load(path: Path, opts: FitOptions) -> Dataset:
    if opts.form not in FORMS:
        raise PlannerError(f"unknown form '{opts.form}' (forms: {', '.join(FORMS)})")
    table = select(read_csv(path), parse_where(opts.where))
    require_rows(table, 1, f"fitting '{opts.form}'")
    if opts.form in ("chinchilla", "isoflop"):
        n = column(table, opts.params_col, "--params-col")
        loss = column(table, opts.loss_col, "--loss-col")
        if opts.form == "isoflop" or opts.flops_col:
            c = column(table, opts.flops_col or "flops", "--flops-col")
            d = c / (6.0 * n)
        elif opts.tokens_col:
            d = column(table, opts.tokens_col, "--tokens-col")
            c = 6.0 * n * d
        else:
            raise PlannerError("the chinchilla form needs --tokens-col or --flops-col (tokens = C/6N)")
        cols = {"params": n, "tokens": d, "loss": loss, "flops": c}
        key = "loss"
    else:
        x = column(table, opts.x_col, "--x-col")
        y = column(table, opts.y_col, "--y-col", positive=not opts.one_minus)
        if opts.one_minus:
            y = 1.0 - y
            if np.any(y <= 0):
                raise PlannerError(f"{table.path}: 1 - {opts.y_col} must be positive (an error rate); a value is >= 1")
        cols = {"x": x, "y": y}
        c, key = x, "y"
    if opts.drop_highest:
        if opts.drop_highest >= len(cols[key]):
            raise PlannerError(f"--drop-highest {opts.drop_highest} would drop every row")
        keep = np.sort(np.argsort(cols[key], kind="stable")[: len(cols[key]) - opts.drop_highest])
        cols = {k: v[keep] for k, v in cols.items()}
        c = c[keep]
    require_rows(table, MIN_ROWS[opts.form][0] + opts.drop_highest, MIN_ROWS[opts.form][1])
    require_spread(c, "compute", table.path)
    return Dataset(table, cols, c)


def _percentiles(samples: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for k, v in samples.items()}


def run(path: Path, opts: FitOptions, progress: Callable[[str], None] = lambda _m: None) -> FitResult:
    """Fit and summarise; see `run_with_samples` for the bootstrap draws themselves."""
    return run_with_samples(path, opts, progress)[0]


def run_with_samples(path: Path, opts: FitOptions, progress: Callable[[str], None] = lambda _m: None
                     ) -> tuple[FitResult, dict[str, np.ndarray] | None]:
    data = load(path, opts)
    samples = None
    cols = data.columns
    warnings: list[str] = []
    ci = None
    allocation = None
    if opts.form == "chinchilla":
        require_spread(cols["params"], opts.params_col, data.table.path)
        progress(f"fitting {len(cols['loss'])} points from {len(chinchilla.start_grid())} starts (Huber δ={opts.huber_delta:g}, summed)")
        best = chinchilla.fit(cols["params"], cols["tokens"], cols["loss"], opts.huber_delta)
        params = {k: float(v[0]) for k, v in chinchilla.to_params(best["theta"]).items()}
        params = {k: params[k] for k in ("E", "A", "B", "alpha", "beta")}
        allocation = chinchilla.allocation(params)
        result = {"objective": best["objective"], "converged": best["converged"],
                  "procedure": {"huber_delta": opts.huber_delta, "objective": "sum of Huber(log L̂ − log L)",
                                "starts": best["starts"], "starts_converged": best["starts_converged"],
                                "starts_within_0.1pct_of_best": best["starts_at_best"]}}
        if opts.bootstrap:
            progress(f"bootstrap: {opts.bootstrap} resamples (seed {opts.seed})")
            samples, ok = resample.chinchilla_form(cols, opts.bootstrap, opts.seed, opts.huber_delta, best["theta"])
            alloc = chinchilla.allocation(samples)
            ci = _percentiles({**{k: samples[k] for k in params}, "a": alloc["a"], "b": alloc["b"]})
            if not ok.all():
                warnings.append(f"{(~ok).sum()} of {len(ok)} bootstrap refits did not converge")
        for name in ("alpha", "beta"):
            if not 0.05 < params[name] < 1.5:
                warnings.append(f"{name} = {params[name]:.3g} is implausible for a scaling exponent; check the data")
    elif opts.form == "isoflop":
        fitted = curves.fit_isoflop(cols["params"], cols["flops"], cols["loss"], opts.budget_tolerance)
        params, warnings = fitted["params"], list(fitted["warnings"])
        allocation = {"a": params["a"], "b": params["b"]}
        result = {"objective": fitted["objective"], "converged": True,
                  "procedure": {"budgets": fitted["budgets"], "optimal_params": fitted["optimal_params"],
                                "parabolas": fitted["parabolas"]}}
        if opts.bootstrap:
            ci = _bootstrap_loop(lambda idx: curves.fit_isoflop(cols["params"][idx], cols["flops"][idx], cols["loss"][idx],
                                                                opts.budget_tolerance)["params"], len(cols["loss"]), opts)
    else:
        fit_fn = curves.fit_power if opts.form == "power" else curves.fit_saturating
        fitted = fit_fn(cols["x"], cols["y"], opts.bins)
        params = fitted["params"]
        n_front = len(fitted["points_x"])
        result = {"objective": fitted["objective"], "converged": fitted["converged"],
                  "procedure": {"bins": opts.bins, "frontier_points": n_front,
                                "space": "log10-log10 least squares" if opts.form == "power" else "least squares on log error"}}
        if n_front < MIN_FRONTIER_POINTS:
            warnings.append(f"only {n_front} {'frontier ' if opts.bins else ''}points; a trustworthy law wants {MIN_FRONTIER_POINTS}+")
        if opts.bootstrap:
            progress(f"bootstrap: {opts.bootstrap} resamples (seed {opts.seed})")
            samples = bootstrap_samples(opts, cols, fitted)
            ci = _percentiles(samples)
    if not result["converged"]:
        warnings.append("the optimiser did not converge; the parameters are not a minimum")
    span = float(np.log10(data.compute.max()) - np.log10(data.compute.min()))
    if span < MIN_SPAN_DECADES:
        warnings.append(f"the data span {span:.2f} decades of compute; extrapolations from under {MIN_SPAN_DECADES:g} decades are unreliable")
    out = FitResult(form=opts.form, params=params, ci=ci, n_points=int(len(data.compute)), objective=result["objective"],
                    converged=result["converged"], procedure=result["procedure"], allocation=allocation, warnings=tuple(warnings),
                    data=FitData(path=data.table.path, sha256=data.table.sha256, rows_used=int(len(data.compute)),
                                 compute_min=float(data.compute.min()), compute_max=float(data.compute.max()), span_decades=span),
                    bootstrap=None if ci is None else BootstrapInfo(opts.bootstrap, opts.seed))
    if not is_finite_result(out):
        bad = next(k for k, v in out.params.items() if not math.isfinite(v))
        raise PlannerError(f"{data.table.path}: the {opts.form} fit diverged ({bad} = {out.params[bad]}); "
                           "the data do not follow this form")
    if opts.form == "isoflop":
        samples = None  # isoflop draws are optimal sizes per budget, not curves to plot
    return out, samples


def _bootstrap_loop(refit: Callable[[np.ndarray], dict], n: int, opts: FitOptions) -> dict[str, tuple[float, float]]:
    """Resample points with replacement and refit (closed-form and small fits: a loop is fast enough)."""
    fitted: dict[str, list[float]] = {}
    for idx in resample.draws(n, opts.bootstrap, opts.seed):
        try:
            values = refit(idx)
        except PlannerError:
            continue  # e.g. a resample with too few distinct points
        for k, v in values.items():
            fitted.setdefault(k, []).append(v)
    if not fitted:
        raise PlannerError("no bootstrap resample could be fitted")
    return _percentiles({k: np.array(v) for k, v in fitted.items()})


def bootstrap_samples(opts: FitOptions, cols: dict, fitted: dict) -> dict[str, np.ndarray]:
    """Parameter draws for a power or saturating fit (used by `fit --bootstrap` and `compare`)."""
    if opts.form == "power":
        return resample.power(cols["x"], cols["y"], opts.bins, opts.bootstrap, opts.seed)
    samples, _ok = resample.saturating(cols["x"], cols["y"], opts.bins, opts.bootstrap, opts.seed, fitted["theta"])
    return samples


def is_finite_result(result: FitResult) -> bool:
    return all(math.isfinite(v) for v in result.params.values())
