"""`fit`: scaling laws from the user's own runs, with bootstrap intervals and a law file for `plan`.

The forms are a registry (`FORMS`, planner.fit.forms; what each declares: planner.fit.form.FitForm);
`run` fits one to a CSV (planner.fit.runner) and returns a FitResult; planner.fit.compare sets two
fits side by side. Importing this package loads no numpy: the numerics load when a fit runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from planner.fit.form import MIN_FRONTIER_POINTS, MIN_SPAN_DECADES, Dataset, FitForm, FitOptions, quiet
from planner.fit.forms import FORMS
from planner.fit.result import Comparison, FitResult

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FORMS", "MIN_FRONTIER_POINTS", "MIN_SPAN_DECADES", "Comparison", "Dataset", "FitForm", "FitOptions", "FitResult",
           "load", "run", "run_with_samples"]


def load(path: Path, opts: FitOptions) -> Dataset:
    """The columns `opts.form` reads from the CSV at `path`, filtered by `opts.where`, checked."""
    from planner.fit import runner

    return runner.load(path, opts)


def run(path: Path, opts: FitOptions, progress: Callable[[str], None] = quiet) -> FitResult:
    """Fit and summarise; see `run_with_samples` for the bootstrap draws themselves."""
    return run_with_samples(path, opts, progress)[0]


def run_with_samples(path: Path, opts: FitOptions, progress: Callable[[str], None] = quiet
                     ) -> tuple[FitResult, dict[str, np.ndarray] | None]:
    from planner.fit import runner

    return runner.run_with_samples(path, opts, progress)
