"""Thin conveniences of the Python API where the library's own functions take what the command line
assembles (a validated request, fit options, a progress callback). Each does what its command does
and no more; the rest of the API is the library's functions themselves (`planner.__all__`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.catalog import Catalog
from planner.errors import PlannerError

if TYPE_CHECKING:
    from planner.costing.results import Plan
    from planner.fit.result import Comparison, FitResult


def plan(catalog: Catalog | None = None, **options: Any) -> Plan | dict:
    """`planner plan` from Python: keyword options are PlanRequest's fields (flops=1e22,
    cluster="juwels-booster", nodes=32, law_file=..., ...). The answer is a Plan; `params` may be one
    number, and a list of several gives the projection table, a dict (as the plan command does for
    several parameter counts). Bad input raises PlannerError."""
    from planner.costing.plan import build_request, make_plan
    from planner.costing.projection import project

    if isinstance(options.get("params"), (int, float)):
        options["params"] = [options["params"]]
    request = build_request(options)
    catalog = catalog if catalog is not None else Catalog()
    if request.params is not None and len(request.params) > 1:
        return project(request, catalog)
    return make_plan(request, catalog)


def fit_law(data: str | Path, form: str, *, out: str | Path | None = None, force: bool = False, **options: Any) -> FitResult:
    """The fit command from Python: `options` are FitOptions' fields (params_col,
    flops_col, drop_highest, bootstrap, seed, huber_delta, bins, where, ...). With `out`, the fitted law
    is written as YAML for `plan(law_file=out)` (chinchilla and isoflop forms), atomically and never
    over an existing file unless `force`."""
    from planner.files import check_writable, write_atomic
    from planner.fit import FitOptions, run_with_samples
    from planner.fit.lawfile import law_yaml

    opts = FitOptions(form=form, **_fit_options(options))
    target = Path(out) if out is not None else None
    if target is not None:
        check_writable(target, force)  # fail before a long fit, not after
    result, samples = run_with_samples(Path(data), opts)
    if target is not None:
        write_atomic(target, law_yaml(result, target, samples), force)
    return result


def compare_laws(data_a: str | Path, data_b: str | Path, form: str, *, target_flops: float | None = None,
                 target_error: float | None = None, chance: float | None = None, bins_b: int | None = None,
                 **options: Any) -> Comparison:
    """The compare command from Python: both files read with the same FitOptions fields
    (`options`; bootstrap defaults to 1000 as on the command line); `bins_b` gives B other bins (0: all points)."""
    from planner.fit import FitOptions
    from planner.fit.compare import compare

    opts = FitOptions(form=form, **_fit_options({"bootstrap": 1000, **options}))
    opts_b = opts if bins_b is None else replace(opts, bins=bins_b or None)
    return compare(Path(data_a), Path(data_b), opts, target_flops, chance, lambda _message: None, opts_b, target_error)


def write_sweep(sweep: Any, spec: str | Path | None = None, *, force: bool = False) -> Sequence[Path]:
    """Write a designed sweep (`design_sweep(...)`) into the directory it was designed for, as
    the sweep command does: manifest.csv, arrays/*.sbatch, submit.sh (and spec.yaml, a
    copy of `spec`), all or none; files of an earlier sweep there are replaced only with `force`."""
    from planner.sweep import slurm
    from planner.yamlio import read_text

    texts = slurm.files(sweep, read_text(Path(spec)) if spec is not None else None)
    return slurm.write_files(Path(sweep.out_dir), texts, force)


def _fit_options(options: dict[str, Any]) -> dict[str, Any]:
    """Keyword options of a fit, refused by name when FitOptions has no such field."""
    from dataclasses import fields

    from planner.errors import suggestions
    from planner.fit import FitOptions

    known = [f.name for f in fields(FitOptions) if f.name != "form"]
    for key in options:
        if key not in known:
            raise PlannerError(f"not an option of a fit{suggestions(key, known)}", key)
    return options
