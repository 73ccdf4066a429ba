"""What `planner simulate` reports: per quantity of interest, the truth, what the trials recovered
and how often the intervals a user would be shown contain the truth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.errors import PlannerWarning
from planner.records import Record


@dataclass(frozen=True)
class QuantityStats(Record):
    """One quantity over the trials: `bias` is median / truth − 1; ci80 and ci95 are the central 80%
    and 95% of the recovered values (what a single sweep may give you); coverage95 is the share of
    trials whose bootstrap 95% interval contains the truth (None without a bootstrap)."""

    truth: float
    median: float
    bias: float
    bias_se: float  # Monte Carlo standard error of `bias` (more trials shrink it as 1/√trials)
    ci80: tuple[float, float]
    ci95: tuple[float, float]
    coverage95: float | None


@dataclass(frozen=True)
class Spent(Record):
    """What the fit recovers after the sweep's smallest budgets, in order: GPU-hours spent so far and the
    median and central 80% of the fitted quantity over the trials."""

    budgets: int
    runs: int
    gpu_hours: float
    median: float
    ci80: tuple[float, float]


@dataclass(frozen=True)
class Simulation(Record):
    law: str
    noise: float  # standard deviation of ln(final loss) per run
    noise_source: str
    trials: int
    failed: int  # trials whose fit diverged (left out of the statistics)
    seed: int
    bootstrap: int
    runs: int
    span_decades: float
    target_flops: float
    gpu_hours: float | None  # what one sweep costs, as `planner sweep` costs it
    gpu_hours_interval: tuple[float, float] | None
    quantities: dict[str, QuantityStats]
    warnings: tuple[PlannerWarning, ...]
    need: str | None = None  # "QUANTITY within X%": met when 80% of the trials' fits are that close
    need_met: bool | None = None
    designs_tried: tuple[Any, ...] = ()  # the design search's candidates, cheapest first (simulate.need.Candidate)
    budgets: tuple[float, ...] = ()  # the IsoFLOP budgets of the design reported (the chosen one after a search)
    points: int | None = None
    progression_quantity: str | None = None
    progression: tuple[Spent, ...] = ()  # the quantity against GPU-hours spent, budget by budget (IsoFLOP sweeps)
