"""`planner simulate`: before spending a sweep's GPU-hours, what its fit would determine.

The sweep is designed exactly as `planner sweep` designs it (same runs, same costing); the true law
is a catalog law or a law file with a Chinchilla-form loss; the noise is a relative error on each
run's final loss (from the law file's fit when it has one, else 1%).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from planner.catalog import Catalog, load_model
from planner.errors import PlannerError, PlannerWarning, located
from planner.fit.form import quiet
from planner.laws import ChinchillaLoss, Law
from planner.simulate.engine import QUANTITIES, run_sizes, run_trials
from planner.simulate.need import SHARE, parse_need, search
from planner.simulate.result import QuantityStats, Simulation, Spent

DEFAULT_NOISE = 0.01
MIN_TRIALS = 20  # an 80% range of fewer fits is a guess
MAX_TRIALS = 20_000
MAX_BOOTSTRAP = 2_000
TARGET_REACH = 100.0  # default target: two decades beyond the sweep's largest run


def true_law(catalog: Catalog, law: str | None, law_file: str | Path | None, spec_law: str | None) -> Law:
    """The law the trials are drawn from: `law_file`, `law`, or the sweep spec's own law."""
    if law is not None and law_file is not None:
        raise PlannerError("conflicts with {law}; give one", "law_file", refs=("law",))
    if law_file is not None:
        found = load_model(Law, Path(law_file))
    elif law is not None or spec_law is not None:
        found = catalog.law(law or spec_law or "")
    else:
        raise PlannerError("give the true law the trials are drawn from: {law} or {law_file} (the spec names none)",
                           "law", refs=("law", "law_file"))
    if found.loss is None or found.loss.form != "chinchilla":
        raise PlannerError(f"law '{found.name}' has no Chinchilla-form loss L(N, D) to draw final losses from", "law")
    return found


def noise_of(law: Law, noise: float | None) -> tuple[float, str]:
    """The relative noise on each run's final loss, and where it comes from."""
    if noise is not None:
        if not (math.isfinite(noise) and 0 <= noise < 1):
            raise PlannerError(f"must be a relative error in [0, 1), got {noise!r}", "noise")
        return noise, "given"
    fitted = law.fitted or {}
    delta = (fitted.get("procedure") or {}).get("huber_delta")
    points, objective = fitted.get("n_points"), fitted.get("objective")
    if isinstance(delta, (int, float)) and isinstance(points, int) and isinstance(objective, (int, float)) and points and delta:
        # the fit's Huber objective is δ(|r| − δ/2) summed where |r| > δ, nearly everywhere at 1% noise:
        # mean |r| = objective / (δ n) + δ/2, and a normal error's sd is √(π/2) times its mean |r|
        mean_abs = objective / (delta * points) + delta / 2
        return mean_abs * math.sqrt(math.pi / 2), (f"from the law file's fit ({points} points, mean |ln residual| "
                                                    f"{mean_abs:.3g})")
    return DEFAULT_NOISE, "default (1% of the final loss); give noise for yours"


def simulate(spec_path: str | Path, catalog: Catalog, *, law: str | None = None, law_file: str | Path | None = None,
             noise: float | None = None, trials: int = 200, seed: int = 0, target_flops: float | None = None,
             bootstrap: int = 0, need: str | None = None, progression: str | None = None,
             progress: Callable[[str], None] = quiet) -> Simulation:
    """Monte Carlo trials of the sweep in `spec_path` under a known law (see planner.simulate.engine).
    With `need` ("QUANTITY within X%"), the cheapest IsoFLOP design that meets it is found first
    (planner.simulate.need) and reported instead of the spec's own. With `progression` (a quantity), the
    fit's answer for it is also simulated after each budget of an IsoFLOP sweep, smallest first: what
    the GPU-hours spent so far would recover."""
    from planner.costing.intervals import error_interval
    from planner.costing.mfu_basis import INTERVAL_LEVEL
    from planner.sweep import design as sw

    for name, value, low, high in (("trials", trials, MIN_TRIALS, MAX_TRIALS), ("bootstrap", bootstrap, 0, MAX_BOOTSTRAP),
                                   ("seed", seed, 0, 2**32 - 1)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise PlannerError(f"must be a whole number from {low:,} to {high:,}, got {value!r}", name)
    if 0 < bootstrap < MIN_TRIALS:  # a percentile interval from a handful of resamples is no interval
        raise PlannerError(f"must be 0 (none) or at least {MIN_TRIALS} resamples, got {bootstrap}", "bootstrap")
    spec, src = sw.load_spec(Path(spec_path))
    if spec.sweep.kind == "samples":
        raise PlannerError("the trials draw language-model losses L(N, D); this sweep is a CLIP samples-seen grid: "
                           "compare procedures on their measured curves instead", "sweep")
    early_warnings = []
    if law is None and law_file is None:  # the spec's own law: its errors belong at its line
        spec_file = None if spec.law_file is None else Path(src.directory) / spec.law_file
        with located(src, "law_file" if spec_file is not None else "law"):
            truth_law = true_law(catalog, None if spec_file is not None else spec.law, spec_file, None)
        if not {"law", "law_file"} & spec.model_fields_set:
            early_warnings.append(PlannerWarning("law.range", f"the spec names no law: planner's default, {spec.law}, places "
                                                 "the sizes and is the truth the trials draw from"))
    else:
        truth_law = true_law(catalog, law, law_file, None)
    sigma, source = noise_of(truth_law, noise)
    wanted = parse_need(need) if need is not None else None
    directory = Path(spec_path).resolve().parent
    design = sw.design(spec, src, catalog, directory)
    progress(f"simulating {trials} trials of {len(design.runs)} runs of {spec_path}")
    params, tokens = run_sizes(design.runs)
    if len(params) < 6:
        raise PlannerError(f"the sweep has {len(params)} runs; a fit of L(N, D) needs at least 6", "sweep")
    flops = 6.0 * params * tokens
    target = float(target_flops) if target_flops is not None else TARGET_REACH * float(flops.max())
    if not (math.isfinite(target) and target > 0):
        raise PlannerError(f"must be a positive number of FLOPs, got {target_flops!r}", "target_flops")
    loss = truth_law.loss
    assert isinstance(loss, ChinchillaLoss)  # true_law refuses a law without a Chinchilla-form loss
    truth = {k: float(v) for k, v in loss.coefficients().items()}
    tried: list = []
    if wanted is not None:
        chosen, tried = search(spec, src, catalog, directory, wanted, truth, sigma, trials, seed, target)
        if chosen is not None:
            design = chosen
            params, tokens = run_sizes(design.runs)
            flops = 6.0 * params * tokens
    result = run_trials(params, tokens, truth, sigma, trials, seed, target, bootstrap)
    stats = {}
    for q in QUANTITIES:
        values, true = result.fitted[q], result.truth[q]
        finite = values[np.isfinite(values)]
        coverage = None
        if result.intervals is not None:
            lo, hi = result.intervals[q][:, 0], result.intervals[q][:, 1]
            coverage = float(np.mean((lo <= true) & (true <= hi)))
        if finite.size == 0:
            continue
        p = np.percentile(finite, [2.5, 10, 50, 90, 97.5])
        # the median's standard error, √(π/2)·σ/√n for a near-normal spread, relative to the truth
        se = float(math.sqrt(math.pi / 2) * np.std(finite) / math.sqrt(finite.size) / abs(true)) if true else float("nan")
        stats[q] = QuantityStats(truth=true, median=float(p[2]), bias=float(p[2] / true - 1), bias_se=se,
                                 ci80=(float(p[1]), float(p[3])),
                                 ci95=(float(p[0]), float(p[4])), coverage95=coverage)
    span = float(np.log10(flops.max() / flops.min()))
    warnings = early_warnings + list(design.warnings)
    if result.failed:
        warnings.append(PlannerWarning("fit", f"{result.failed} of {trials} trial fits diverged and are left out"))
    if target < flops.min() / 10:
        warnings.append(PlannerWarning("fit", f"the target {target:.3g} FLOPs is {flops.min() / target:.3g}x below the "
                                       "sweep's smallest run: the quantities at the target are extrapolations"))
    if target > 10 * flops.max():
        warnings.append(PlannerWarning("fit", f"the target {target:.3g} FLOPs is {target / flops.max():.3g}x beyond the "
                                       "sweep's largest run: the quantities at the target are extrapolations"))
    gpu_hours = float(sum(r.gpu_hours for r in design.runs))
    interval = None
    if design.mfu_errors:
        lo_f, hi_f = error_interval(design.mfu_errors, INTERVAL_LEVEL)
        interval = (gpu_hours * lo_f, gpu_hours * hi_f)
    met = None
    if wanted is not None:
        met = bool(tried) and tried[-1].share is not None and tried[-1].share >= SHARE
        if not met:
            warnings.append(PlannerWarning("sweep", f"no design searched meets '{wanted}' (at most "
                                           f"{max((c.share or 0.0) for c in tried):.0%} of trials); the spec's own is reported"))
    isoflop = design.spec.sweep.kind == "isoflop"
    spent: tuple[Spent, ...] = ()
    if progression is not None:
        if progression not in QUANTITIES:
            raise PlannerError(f"unknown quantity '{progression}' (quantities: {', '.join(QUANTITIES)})", "progression")
        if not isoflop:
            raise PlannerError("a {plot} of the progression follows an IsoFLOP sweep budget by budget; this sweep is "
                               f"{design.spec.sweep.kind}", "progression", refs=("plot",))
        spent = _progression(design.runs, truth, sigma, trials, seed, target, progression)
    budgets = tuple(sorted({float(f"{6.0 * r.params * r.tokens:.3g}") for r in design.runs})) if isoflop else ()
    return Simulation(law=truth_law.name, noise=sigma, noise_source=source, trials=trials, failed=result.failed, seed=seed,
                      bootstrap=bootstrap, runs=len(params), span_decades=span, target_flops=target, gpu_hours=gpu_hours,
                      gpu_hours_interval=interval, quantities=stats, warnings=tuple(warnings),
                      need=None if wanted is None else str(wanted), need_met=met, designs_tried=tuple(tried),
                      budgets=budgets, points=getattr(design.spec.sweep, "points", None),
                      progression_quantity=progression, progression=spent)


def _progression(runs, truth: dict, sigma: float, trials: int, seed: int, target: float, quantity: str) -> tuple[Spent, ...]:
    """The fitted `quantity` after the smallest 1, 2, ... budgets (from the first prefix with 6 runs)."""
    budgets = sorted({r.budget for r in runs if r.budget is not None})
    out = []
    for k in range(1, len(budgets) + 1):
        done = [r for r in runs if r.budget is not None and r.budget <= budgets[k - 1]]
        if len(done) < 6:
            continue
        params, tokens = run_sizes(done)
        values = run_trials(params, tokens, truth, sigma, trials, seed, target).fitted[quantity]
        values = values[np.isfinite(values)]
        if values.size:
            lo, mid, hi = np.percentile(values, [10, 50, 90])
            out.append(Spent(k, len(done), float(sum(r.gpu_hours for r in done)), float(mid), (float(lo), float(hi))))
    return tuple(out)


VERDICT_TRIALS = 100


def verdict(spec, src, design, catalog: Catalog) -> tuple[float, bool, str]:
    """Whether the designed sweep meets its spec's `need:` (a quick simulation under the spec's law, 1%
    noise unless its law file's fit says otherwise): the share of trials, met or not, and one line."""
    with located(src, "need"):
        wanted = parse_need(spec.need)
    law_file = None if spec.law_file is None else Path(src.directory) / spec.law_file
    with located(src, "law_file" if law_file is not None else "law"):
        truth_law = true_law(catalog, None if law_file is not None else spec.law, law_file, None)
    sigma, _ = noise_of(truth_law, None)
    loss = truth_law.loss
    assert isinstance(loss, ChinchillaLoss)  # true_law refuses a law without a Chinchilla-form loss
    params, tokens = run_sizes(design.runs)
    with located(src, "need"):
        if len(params) < 6:
            raise PlannerError(f"the sweep has {len(params)} runs; a fit of L(N, D) needs at least 6", "need")
    target = TARGET_REACH * float((6.0 * params * tokens).max())
    result = run_trials(params, tokens, {k: float(v) for k, v in loss.coefficients().items()}, sigma, VERDICT_TRIALS, 0,
                        target)
    share = wanted.share_met(result.fitted[wanted.quantity], result.truth[wanted.quantity])
    met = share >= SHARE
    where = f" (at {target:.3g} FLOPs)" if wanted.quantity.endswith("_at_target") else ""
    line = (f"need '{wanted}'{where}: {'met' if met else 'NOT met'}: {share:.0%} of {VERDICT_TRIALS} simulated sweeps "
            f"under {truth_law.name} with {sigma:.2g} noise come that close (80% needed)")
    if not met:
        line += f"; `planner simulate` with the need '{wanted}' finds the cheapest design that does"
    return share, met, line
