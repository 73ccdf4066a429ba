"""Before comparing two learning procedures by their laws: how often would a sweep name the right winner?

The true laws are the power laws E = beta·C^alpha that `planner compare` fits to the two data sets
(same options). Each trial measures both procedures at the sweep's compute points with log-normal
noise (by default each data set's own scatter about its law), fits both as `planner fit` does
(least squares in log10-log10), and reads which procedure is predicted better at the target compute
and where the curves cross. The answer depends on span and points, which is the field's point:
compare procedures by laws fitted over enough decades, never by a few points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from planner.errors import PlannerError, PlannerWarning
from planner.fit.form import FitOptions
from planner.records import Record


@dataclass(frozen=True)
class Truth(Record):
    path: str
    alpha: float
    beta: float
    noise: float  # sd of ln(error) per measurement
    noise_source: str
    points: int
    compute: tuple[float, float]  # the data's compute range the law was fitted on

    def at(self, compute) -> Any:
        return self.beta * np.power(compute, self.alpha)


@dataclass(frozen=True)
class ComparisonSimulation(Record):
    """How often a sweep of `points` measurements per procedure over `decades` gets the winner right."""

    a: Truth
    b: Truth
    target_flops: float
    true_winner: str  # "a" or "b": lower predicted error at the target under the true laws
    true_crossover: float | None
    sweep: tuple[float, ...]  # the compute points each procedure is measured at
    decades: float
    trials: int
    seed: int
    winner_right: float  # share of trials whose fitted laws name the true winner at the target
    difference_median: float  # fitted A − B at the target, median over trials
    difference_ci80: tuple[float, float]
    crossover_found: float  # share of trials whose fitted curves cross between the sweep's start and 1,000x the target
    warnings: tuple[PlannerWarning, ...]


def truth_from(path: Path, opts: FitOptions, noise: float | None) -> Truth:
    """The power law `planner fit` finds in `path`, and the scatter of its points about it."""
    from planner.fit import curves
    from planner.fit.runner import load

    if opts.form != "power":
        raise PlannerError(f"comparisons are simulated for the power form, not '{opts.form}'", "form")
    data = load(path, opts)
    fitted = curves.fit_power(data.columns["x"], data.columns["y"], opts.bins)
    lx, ly = np.log(fitted["points_x"]), np.log(fitted["points_y"])
    alpha, beta = fitted["params"]["alpha"], fitted["params"]["beta"]
    if alpha >= 0:
        raise PlannerError(f"{path}: the fitted law rises with compute (exponent {alpha:+.3g}): a loss or an error falls; "
                           "is the column an accuracy (one_minus turns it into an error)?", "y_col")
    if noise is None and len(lx) < 3:
        raise PlannerError(f"{path}: {len(lx)} points leave no scatter about a two-parameter law to take the noise from; "
                           "give the noise", "noise")
    if noise is None:
        resid = ly - (math.log(beta) + alpha * lx)
        dof = max(1, len(lx) - 2)  # two parameters fitted
        sigma, source = float(math.sqrt(resid @ resid / dof)), f"scatter of its {len(lx)} points about the fit"
    else:
        sigma, source = noise, "given"
    return Truth(path=str(path), alpha=alpha, beta=beta, noise=sigma, noise_source=source, points=len(lx),
                 compute=(float(data.compute.min()), float(data.compute.max())))


def simulate_comparison(a: Truth, b: Truth, target_flops: float, up_to: float, decades: float, points: int,
                        trials: int = 2000, seed: int = 0) -> ComparisonSimulation:
    """Both procedures measured at `points` log-spaced computes from up_to / 10^decades to up_to."""
    for name, count in (("points", points), ("trials", trials)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 2:
            raise PlannerError(f"must be a whole number of at least 2, got {count!r}", name)
    for name, amount in (("target_flops", target_flops), ("up_to", up_to), ("decades", decades)):
        if not (isinstance(amount, (int, float)) and math.isfinite(amount) and amount > 0):
            raise PlannerError(f"must be a positive number, got {amount!r}", name)
    if a.alpha == b.alpha and a.beta == b.beta:
        raise PlannerError("A and B follow the same law: neither is better anywhere, so there is no winner to find", "compare")
    compute = np.geomspace(up_to / 10.0**decades, up_to, points)
    lx = np.log10(compute)
    rng = np.random.default_rng(seed)
    fits = {}
    for label, truth in (("a", a), ("b", b)):
        ly = np.log10(truth.at(compute)) + truth.noise / math.log(10) * rng.standard_normal((trials, points))
        slope = ((lx - lx.mean()) @ (ly - ly.mean(axis=1, keepdims=True)).T) / ((lx - lx.mean()) @ (lx - lx.mean()))
        fits[label] = (slope, ly.mean(axis=1) - slope * lx.mean())  # log10 error = slope·log10 C + intercept
    log_t = math.log10(target_flops)
    pred = {k: 10.0 ** (s * log_t + c) for k, (s, c) in fits.items()}
    diff = pred["a"] - pred["b"]
    true_diff = float(a.at(target_flops) - b.at(target_flops))
    winner = "a" if true_diff < 0 else "b"
    right = float(np.mean((diff < 0) == (winner == "a")))
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = (fits["b"][1] - fits["a"][1]) / (fits["a"][0] - fits["b"][0])  # log10 C where the fitted lines meet
    found = float(np.mean(np.isfinite(cross) & (cross >= lx[0]) & (cross <= log_t + 3)))
    true_cross = None if a.alpha == b.alpha else 10.0 ** (math.log10(a.beta / b.beta) / (b.alpha - a.alpha))
    warnings = []
    if target_flops > 10 * up_to:
        warnings.append(PlannerWarning("fit", f"the target {target_flops:.3g} is {target_flops / up_to:.3g}x beyond the sweep's "
                                       "largest compute: the winner there is an extrapolation"))
    if decades < 2:
        warnings.append(PlannerWarning("fit", f"the sweep spans {decades:g} decades; a comparison needs 2+"))
    for label, truth in (("A", a), ("B", b)):
        lo_c, hi_c = truth.compute
        if up_to > 10 * hi_c or compute[0] < lo_c / 10:
            warnings.append(PlannerWarning("fit", f"the sweep ({compute[0]:.3g} to {up_to:.3g}) reaches more than 10x beyond the "
                                           f"compute {label}'s law was fitted on ({lo_c:.3g} to {hi_c:.3g}): its truth there "
                                           "is an extrapolation"))
        if truth.points < 5:
            warnings.append(PlannerWarning("fit", f"{label}'s law rests on {truth.points} points; a law to take as the truth "
                                           "needs 5+"))
    lo, hi = np.percentile(diff, [10, 90])
    return ComparisonSimulation(a=a, b=b, target_flops=float(target_flops), true_winner=winner, true_crossover=true_cross,
                                sweep=tuple(float(c) for c in compute), decades=float(decades), trials=trials, seed=seed,
                                winner_right=right, difference_median=float(np.median(diff)),
                                difference_ci80=(float(lo), float(hi)), crossover_found=found, warnings=tuple(warnings))
