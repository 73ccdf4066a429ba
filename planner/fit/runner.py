"""Running a fit form on a CSV: read the columns it declares, fit, resample, warn, and summarise as a
FitResult. Nothing here knows a form by name; it reads the registry's declarations."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from planner.errors import PlannerError, PlannerWarning
from planner.fit.data import Table, column, parse_where, read_csv, require_rows, require_spread, select
from planner.fit.form import MIN_SPAN_DECADES, Columns, Dataset, FitOptions, Progress, quiet
from planner.fit.forms import FORMS
from planner.fit.result import BootstrapInfo, FitData, FitResult


def read_columns(table: Table, opts: FitOptions, columns: Columns) -> dict[str, np.ndarray]:
    """The columns a form declares, read with the options' column names (see `Columns`)."""
    if columns.kind == "runs":
        n = column(table, opts.params_col, "params_col")
        loss = column(table, opts.loss_col, "loss_col")
        if columns.flops_required or opts.flops_col:
            c = column(table, opts.flops_col or "flops", "flops_col")
            d = c / (6.0 * n)
        elif opts.tokens_col or "tokens" in table.header:  # a column named `tokens` is read without being named
            d = column(table, opts.tokens_col or "tokens", "tokens_col")
            c = 6.0 * n * d
        else:
            raise PlannerError(f"the {opts.form} form needs {{tokens_col}} or {{flops_col}} (tokens = C/6N)",
                               refs=("tokens_col", "flops_col"))
        out = {"params": n, "tokens": d, "loss": loss, "flops": c}
        if columns.unique_tokens:
            if not opts.unique_tokens_col:
                raise PlannerError(f"the {opts.form} form needs the unique tokens each run's data held ({{unique_tokens_col}})",
                                   refs=("unique_tokens_col",))
            out["unique_tokens"] = column(table, opts.unique_tokens_col, "unique_tokens_col")
        return out
    x = column(table, opts.x_col, "x_col")
    y = column(table, opts.y_col, "y_col", positive=not opts.one_minus)
    if opts.one_minus:
        y = 1.0 - y
        if np.any(y <= 0):
            raise PlannerError(f"{table.path}: 1 - {opts.y_col} must be positive (an error rate); a value is >= 1")
    return {"x": x, "y": y}


def load(path: Path, opts: FitOptions) -> Dataset:
    if opts.form not in FORMS:
        raise PlannerError(f"unknown form '{opts.form}' (forms: {', '.join(FORMS)})", "form")
    form = FORMS[opts.form]
    where = parse_where(opts.where)
    # only the columns a form may read: the others of a wide table would dominate memory
    needed = {opts.params_col, opts.tokens_col or "tokens", opts.flops_col or "flops", opts.loss_col, opts.x_col, opts.y_col,
              opts.unique_tokens_col}
    table = select(read_csv(path, {c for c in needed if c} | {col for col, _ in where}), where)
    require_rows(table, 1, f"fitting '{opts.form}'")
    cols = read_columns(table, opts, form.columns)
    key = form.columns.response
    if opts.drop_highest:
        if opts.drop_highest >= len(cols[key]):
            raise PlannerError(f"{opts.drop_highest} would drop every row", "drop_highest")
        keep = np.sort(np.argsort(cols[key], kind="stable")[: len(cols[key]) - opts.drop_highest])
        cols = {k: v[keep] for k, v in cols.items()}
    require_rows(table, form.min_rows + opts.drop_highest, form.min_rows_reason)
    c = cols[form.columns.compute]
    require_spread(c, "compute", table.path)
    # the fit reads the parsed columns; the cells (Python strings) of a large table would double its memory
    return Dataset(replace(table, cells={}), cols, c)


def percentiles(samples: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for k, v in samples.items()}


def run_with_samples(path: Path, opts: FitOptions, progress: Progress = quiet) -> tuple[FitResult, dict[str, np.ndarray] | None]:
    """Fit and summarise; also the bootstrap draws (per parameter) when resampled, for plots and law files."""
    data = load(path, opts)
    form = FORMS[opts.form]
    fitted = form.fit(data, opts, progress)
    params = {k: fitted.params[k] for k in form.params}  # results list parameters in the form's declared order
    ci, samples = None, None
    warnings: list[PlannerWarning] = []
    if opts.bootstrap:
        progress(f"bootstrap: {opts.bootstrap} resamples (seed {opts.seed})")
        draws = form.bootstrap(data, opts, fitted)
        samples = draws.params
        ci = percentiles({**{k: draws.params[k] for k in form.params}, **draws.derived})
        warnings += draws.warnings
    warnings += fitted.warnings
    if not fitted.converged:
        warnings.append(PlannerWarning("fit", "the optimiser did not converge; the parameters are not a minimum"))
    span = float(np.log10(data.compute.max()) - np.log10(data.compute.min()))
    if span < MIN_SPAN_DECADES:
        warnings.append(PlannerWarning("fit", f"the data span {span:.2f} decades of compute; extrapolations from under "
                                       f"{MIN_SPAN_DECADES:g} decades are unreliable"))
    result = FitResult(form=opts.form, params=params, ci=ci, n_points=int(len(data.compute)), objective=fitted.objective,
                       converged=fitted.converged, procedure=fitted.procedure, allocation=fitted.allocation,
                       warnings=tuple(warnings),
                       data=FitData(path=data.table.path, sha256=data.table.sha256, rows_used=int(len(data.compute)),
                                    compute_min=float(data.compute.min()), compute_max=float(data.compute.max()),
                                    span_decades=span),
                       bootstrap=None if ci is None else BootstrapInfo(opts.bootstrap, opts.seed))
    bad = next((k for k, v in params.items() if not math.isfinite(v)), None)
    if bad is not None:
        raise PlannerError(f"{data.table.path}: the {opts.form} fit diverged ({bad} = {params[bad]}); "
                           "the data do not follow this form")
    return result, samples
