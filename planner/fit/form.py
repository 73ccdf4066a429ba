"""The contract of a fit form: what each entry of the registry (`planner.fit.forms.FORMS`) declares.

A form says which columns it reads, how it fits them, how it resamples them, what it predicts,
whether it writes a law file for `planner plan`, and how it is plotted; `fit`, `compare`, the law
file, the plots and the CLI's form choices read these declarations and nothing else about a form.
This module and the form modules import no numpy at import time, so the CLI can list the forms
without paying for the numerics; the numerical work is imported when a form runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from planner.errors import PlannerError, PlannerWarning

if TYPE_CHECKING:
    import numpy as np

    from planner.fit.data import Table
    from planner.fit.result import FitResult
    from planner.laws import Law

MIN_SPAN_DECADES = 2.0
SOLVERS = ("vpnls", "bfgs")  # of the chinchilla form
MIN_FRONTIER_POINTS = 5
# A frontier point per bin: more bins than this is no longer a frontier, and the bin edges alone would
# take gigabytes (--bins 1e9).
MAX_BINS = 10_000
# Each resample is a refit; the draws of every parameter are kept, and compare evaluates each draw's curve.
MAX_BOOTSTRAP = 10_000
Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    """A progress callback that says nothing."""


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
    bins: int | str | None = None  # K equal-width log-compute bins, or curves.PARETO / curves.HULL
    bootstrap: int = 0
    seed: int = 0
    huber_delta: float = 1e-3
    drop_highest: int = 0  # drop the K highest-y rows (Epoch drop 5 outliers)
    budget_tolerance: float = 0.05
    # chinchilla: variable projection (planner.fit.vpnls), or Hoffmann's 4,500-start BFGS grid; both minimise
    # the same objective, and VPNLS reaches the grid's optimum on Epoch's data in a tenth of the time
    solver: str = "vpnls"
    unique_tokens_col: str | None = None  # data-constrained: the unique tokens each run's data held
    # data-constrained: a catalog law (chinchilla form) whose E, A, B, alpha, beta are held fixed; only R*_N,
    # R*_D are fitted, as Muennighoff et al. fitted theirs (planner.fit.muennighoff.fit_decay)
    base_law: Law | str | None = None  # a name: from the built-in catalog (the CLI passes its catalog's Law)

    def __post_init__(self) -> None:
        """The same limits the command line's options enforce, for callers from Python."""
        import math

        def whole(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise PlannerError(f"must be a whole number of at least {low}, got {value!r}", name)

        def positive(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
                raise PlannerError(f"must be a positive number, got {value!r}", name)

        whole("bootstrap", 0)
        whole("seed", 0)
        whole("drop_highest", 0)
        positive("huber_delta")
        positive("budget_tolerance")
        if self.solver not in SOLVERS:
            raise PlannerError(f"unknown solver '{self.solver}' (solvers: {', '.join(SOLVERS)})", "solver")
        if self.bootstrap > MAX_BOOTSTRAP:
            raise PlannerError(f"must be at most {MAX_BOOTSTRAP} resamples, got {self.bootstrap}", "bootstrap")
        if self.base_law is not None and self.form != "data-constrained":
            raise PlannerError(f"holds a base law fixed while R*_N, R*_D are fitted: the data-constrained form's, not {self.form}'s",
                               "base_law")
        if isinstance(self.bins, int) and not isinstance(self.bins, bool) and not 1 <= self.bins <= MAX_BINS:
            raise PlannerError(f"must be between 1 and {MAX_BINS} bins, got {self.bins}", "bins")


@dataclass(frozen=True)
class Columns:
    """What a form reads from the CSV, as keys of `Dataset.columns`.

    runs: one training run per row, N (`params_col`), loss (`loss_col`) and D (`tokens_col`) or
    C (`flops_col`), the other following from C = 6ND; `flops_required` reads C even without
    `flops_col` (from a column named 'flops'). curve: y (`y_col`, or 1 - y) against compute (`x_col`).
    """

    kind: Literal["runs", "curve"]
    flops_required: bool = False
    unique_tokens: bool = False  # runs: also the unique tokens each saw (`unique_tokens_col`), for repeated epochs

    @property
    def names(self) -> tuple[str, ...]:
        if self.kind == "curve":
            return ("x", "y")
        return ("params", "tokens", "loss", "flops") + (("unique_tokens",) if self.unique_tokens else ())

    @property
    def response(self) -> str:
        """The measured quantity: dropping the highest values drops its largest, plots and the chance level read it."""
        return "loss" if self.kind == "runs" else "y"

    @property
    def compute(self) -> str:
        """The compute axis: spans, extrapolation warnings and plots use it."""
        return "flops" if self.kind == "runs" else "x"


RUNS = Columns("runs")
CURVE = Columns("curve")


@dataclass
class Dataset:
    table: Table
    columns: dict[str, np.ndarray]  # the form's Columns.names
    compute: np.ndarray  # FLOPs or the x column, for spans and plots


@dataclass(frozen=True)
class Fitted:
    """What a form's `fit` returns: the point estimate and how it was found."""

    params: dict[str, float]
    objective: float
    converged: bool
    procedure: dict[str, Any]  # shown as `procedure` in the result: bins, starts, parabolas, ...
    points: int  # the points the law was fitted to (a frontier's points, or every run)
    allocation: dict[str, float] | None = None  # N, D laws: a, b (, G) of N_opt ∝ C^a, D_opt ∝ C^b
    warnings: tuple[PlannerWarning, ...] = ()
    start: Any = None  # where bootstrap refits start: the optimum in the optimiser's coordinates


@dataclass(frozen=True)
class Draws:
    """What a form's `bootstrap` returns: aligned draws per parameter (every name of `FitForm.params`),
    quantities derived per draw that get intervals too, and warnings about the refits."""

    params: dict[str, np.ndarray]
    derived: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: tuple[PlannerWarning, ...] = ()


Number = Callable[[str, float], dict]  # a law-file number: {"value": ..., "source": "fit"[, "note": its CI]}


@dataclass(frozen=True)
class FitForm:
    """One fit form. `fit`, `bootstrap` and `predict` must be deterministic (bootstrap: for a seed)."""

    name: str
    summary: str  # one line for `--form`'s help
    params: tuple[str, ...]  # parameter names, in the order results list them
    columns: Columns
    min_rows: int  # rows the fit needs at least, and why (for the error message)
    min_rows_reason: str
    fit: Callable[[Dataset, FitOptions, Progress], Fitted]
    # resample the rows with replacement (opts.bootstrap times, from opts.seed) and refit from `Fitted.start`
    bootstrap: Callable[[Dataset, FitOptions, Fitted], Draws]
    # y(C) given parameters (numbers, or (S, 1) arrays of draws that broadcast against a compute grid);
    # None: the form predicts no curve in compute (it cannot be compared or drawn as a curve)
    predict: Callable[[Mapping[str, Any], Any], Any] | None = None
    # the law-file sections (`loss:` or `allocation:`) for `planner plan --law-file`; None: no law file
    law: Callable[[FitResult, Number], dict[str, Any]] | None = None
    law_draws: tuple[str, ...] = ()  # parameters whose bootstrap draws a law file keeps (for plan's intervals)
    frontier: bool = False  # fits a frontier of the runs, picked by --bins, --pareto or --hull
    plot: Literal["curve", "isoflop"] = "curve"  # curve: runs, fit, extrapolation, band; isoflop: its own figure
    axes: Callable[[FitOptions], tuple[str, str]] = lambda _opts: ("training FLOPs", "loss")  # plot axis labels

    def curve(self, params: Mapping[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
        """Predictions for many parameter draws at once: f(compute grid) -> (draws, grid)."""
        import numpy as np

        if self.predict is None:
            raise PlannerError(f"form '{self.name}' predicts no curve in compute")
        p = {k: np.atleast_1d(np.asarray(v, float))[:, None] for k, v in params.items()}
        predict = self.predict
        return lambda c: predict(p, c)


def curve_axes(opts: FitOptions) -> tuple[str, str]:
    """Axis labels of a curve in compute: the columns it was read from."""
    return opts.x_col, ("1 − " + opts.y_col if opts.one_minus else opts.y_col)


def curve_fitted(fitted: dict, opts: FitOptions, space: str) -> Fitted:
    """A frontier curve's fit (power, saturating) as `Fitted`, warning when it rests on few points."""
    n_front = len(fitted["points_x"])
    warnings: tuple[PlannerWarning, ...] = ()
    if n_front < MIN_FRONTIER_POINTS:
        warnings = (PlannerWarning("fit", f"only {n_front} {'frontier ' if opts.bins else ''}points; a trustworthy law wants "
                                   f"{MIN_FRONTIER_POINTS}+"),)
    return Fitted(params=fitted["params"], objective=fitted["objective"], converged=fitted["converged"],
                  procedure={"bins": opts.bins, "frontier_points": n_front, "space": space}, points=n_front,
                  warnings=warnings, start=fitted.get("theta"))
