"""The design question: the cheapest IsoFLOP sweep whose fit determines what the user needs.

A need reads `QUANTITY within X%`: met when at least 80% of the trials' fits lie within ±X% of the
truth. Candidate designs put the largest budget at 1 or 10 times the spec's and vary how many
decades the budgets span below it, how many budgets and how many model sizes per budget; they are
costed exactly as `planner sweep` costs them and simulated cheapest first, so the first that meets
the need is the answer. A candidate is screened on a few trials first and simulated in full only
when it comes close.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from planner.errors import PlannerError
from planner.records import Record

NEED = re.compile(r"\s*(\w+)\s+within\s+(\d+(?:\.\d+)?)\s*%\s*")
SHARE = 0.8  # of trials within the tolerance
TOPS = (1.0, 10.0)  # the largest budget, as a multiple of the spec's
DECADES = (1.0, 2.0, 3.0)
SCREEN = 40  # trials that screen a candidate
SCREEN_SHARE = 0.6  # below this share on the screen, a candidate is dropped
N_BUDGETS = (3, 5, 7)
POINTS = (3, 5, 9)


@dataclass(frozen=True)
class Need:
    quantity: str
    tolerance: float  # relative, e.g. 0.1

    def share_met(self, fitted: np.ndarray, truth: float) -> float:
        return float(np.mean(np.abs(fitted / truth - 1) <= self.tolerance))

    def __str__(self) -> str:
        return f"{self.quantity} within {self.tolerance * 100:g}%"


def parse_need(text: str) -> Need:
    from planner.simulate.engine import QUANTITIES

    m = NEED.fullmatch(text)
    if not m or m[1] not in QUANTITIES:
        raise PlannerError(f"'{text}' is not a need; write 'QUANTITY within X%' with QUANTITY one of "
                           f"{', '.join(QUANTITIES)}", "need")
    tolerance = float(m[2]) / 100
    if not 0 < tolerance < 10:
        raise PlannerError(f"the tolerance must be above 0% and below 1000%, got {m[2]}%", "need")
    return Need(m[1], tolerance)


@dataclass(frozen=True)
class Candidate(Record):
    budgets: tuple[float, ...]
    points: int
    runs: int
    gpu_hours: float
    share: float | None = None  # of trials meeting the need (None: not simulated, a cheaper one met it)


def search(spec, src, catalog, directory: Path, need: Need, truth: dict, noise: float, trials: int, seed: int,
           target: float) -> tuple[Any, list[Candidate]]:
    """The design of the cheapest candidate meeting `need` (None if none does), and every candidate
    simulated on the way, cheapest first."""
    from planner.simulate.engine import run_sizes, run_trials
    from planner.sweep import design as sw

    if spec.sweep.kind != "isoflop":
        raise PlannerError(f"the design search varies an isoflop sweep's budgets and sizes; this sweep is {spec.sweep.kind}",
                           "need")
    base = sw.design(spec, src, catalog, directory)
    top = max(6.0 * r.params * r.tokens for r in base.runs)
    priced = []
    for scale, decades, n_budgets, points in itertools.product(TOPS, DECADES, N_BUDGETS, POINTS):
        budgets = tuple(float(b) for b in np.geomspace(scale * top / 10**decades, scale * top, n_budgets))
        sweep = spec.sweep.model_copy(update={"budgets": list(budgets), "gpu_hours": None, "points": points})
        design = sw.design(spec.model_copy(update={"sweep": sweep}), src, catalog, directory)
        priced.append((sum(r.gpu_hours for r in design.runs), budgets, points, design))
    priced.sort(key=lambda item: item[0])
    tried: list[Candidate] = []
    for hours, budgets, points, design in priced:
        params, tokens = run_sizes(design.runs)
        if len(params) < 6:
            continue
        result = run_trials(params, tokens, truth, noise, min(SCREEN, trials), seed, target)
        share = need.share_met(result.fitted[need.quantity], result.truth[need.quantity])
        if share >= SCREEN_SHARE and trials > SCREEN:
            result = run_trials(params, tokens, truth, noise, trials, seed, target)
            share = need.share_met(result.fitted[need.quantity], result.truth[need.quantity])
        tried.append(Candidate(budgets, points, len(params), hours, share))
        if share >= SHARE:
            return design, tried
    return None, tried
