"""What `fit` and `compare` return: frozen, typed results whose `record()` is the JSON the CLI prints.

The CLI, plots and law files read attributes; only `record()` turns a result into the plain dict
(lists for intervals, nested dicts for nested results) that JSON output prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.errors import PlannerWarning
from planner.records import Record

Interval = tuple[float, float]


def _intervals(ci: dict[str, Interval] | None) -> dict[str, list[float]] | None:
    return None if ci is None else {k: [lo, hi] for k, (lo, hi) in ci.items()}


def _pair(interval: Interval | None) -> list[float] | None:
    return None if interval is None else list(interval)


@dataclass(frozen=True)
class FitData(Record):
    """The rows a law was fitted to: which file, how many rows, and the compute they span."""

    path: str
    sha256: str
    rows_used: int
    compute_min: float
    compute_max: float
    span_decades: float


@dataclass(frozen=True)
class BootstrapInfo(Record):
    samples: int
    seed: int
    interval: str = "2.5-97.5 percentiles"


@dataclass(frozen=True)
class FitResult:
    """A fitted law: its parameters (in the form's declared order), their 95% bootstrap intervals
    when resampled, how the optimum was found, and the data it rests on."""

    form: str
    params: dict[str, float]
    ci: dict[str, Interval] | None  # 2.5-97.5 percentiles per parameter (and allocation exponent)
    n_points: int
    objective: float
    converged: bool
    procedure: dict[str, Any]  # the form's own account of the procedure (bins, starts, parabolas, ...)
    allocation: dict[str, float] | None  # N, D laws: a, b (and G) of N_opt ∝ C^a, D_opt ∝ C^b
    warnings: tuple[PlannerWarning, ...]
    data: FitData
    bootstrap: BootstrapInfo | None = None

    def interval(self, name: str) -> Interval | None:
        return (self.ci or {}).get(name)

    def record(self) -> dict:
        out = {"form": self.form, "params": dict(self.params), "ci": _intervals(self.ci), "n_points": self.n_points,
               "objective": self.objective, "converged": self.converged, "procedure": self.procedure,
               "allocation": None if self.allocation is None else dict(self.allocation), "warnings": list(self.warnings),
               "data": self.data.record()}
        if self.bootstrap is not None:
            out["bootstrap"] = self.bootstrap.record()
        return out


@dataclass(frozen=True)
class AtTarget:
    """Both fitted curves at one compute, and which is lower there."""

    flops: float
    a: float
    b: float
    difference: float
    better: str
    difference_ci: Interval | None

    def record(self) -> dict:
        return {"flops": self.flops, "a": self.a, "b": self.b, "difference": self.difference, "better": self.better,
                "difference_ci": _pair(self.difference_ci)}


@dataclass(frozen=True)
class AtError:
    """The compute each procedure needs to reach an error (None: not within the search)."""

    error: float
    a_flops: float | None
    b_flops: float | None
    ratio_a_over_b: float | None
    ratio_ci: Interval | None

    def record(self) -> dict:
        return {"error": self.error, "a_flops": self.a_flops, "b_flops": self.b_flops,
                "ratio_a_over_b": self.ratio_a_over_b, "ratio_ci": _pair(self.ratio_ci)}


@dataclass(frozen=True)
class ComparedFit:
    """One side of a comparison: the data and the law fitted to it."""

    path: str
    params: dict[str, float]
    points: int
    bins: int | str | None

    def record(self) -> dict:
        return {"path": self.path, "params": dict(self.params), "points": self.points, "bins": self.bins}


@dataclass(frozen=True)
class Comparison:
    """Two procedures compared by their fitted laws: where the curves cross, with a bootstrap interval."""

    form: str
    crossover: float | None
    crossover_ci: Interval | None
    bootstrap_no_crossover_fraction: float | None
    better_at_low_compute: str
    at_target: AtTarget | None
    at_target_error: AtError | None
    span_decades: float
    searched: Interval
    a: ComparedFit
    b: ComparedFit
    warnings: tuple[PlannerWarning, ...]

    def record(self) -> dict:
        return {
            "form": self.form,
            "crossover": self.crossover,
            "crossover_ci": _pair(self.crossover_ci),
            "bootstrap_no_crossover_fraction": self.bootstrap_no_crossover_fraction,
            "better_at_low_compute": self.better_at_low_compute,
            "at_target": None if self.at_target is None else self.at_target.record(),
            "at_target_error": None if self.at_target_error is None else self.at_target_error.record(),
            "span_decades": self.span_decades,
            "searched": list(self.searched),
            "fits": {"a": self.a.record(), "b": self.b.record()},
            "warnings": list(self.warnings),
        }
