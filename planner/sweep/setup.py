"""What each run of a sweep trains: its shape (`shape:`, planner.shapes) and its learning rate, batch and
schedule (`hyperparameters:`, planner.hparams), for the manifest and the job script's placeholders.

Precedence of the hyperparameters: a `kind: list` run's own lr / batch_size / warmup, then the spec's
`hyperparameters:` values, then the law's. N for the shape counts what the placement law counts (total or
non-embedding parameters) unless `shape.params` says otherwise; a list, which no law places, counts totals.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from planner.errors import PlannerWarning, located
from planner.shapes import TOLERANCE, Counted
from planner.training import EMPTY, Overrides, RunSetup, setup_for

if TYPE_CHECKING:
    from planner.catalog import Catalog
    from planner.sweep.spec import Source, SweepSpec

SHAPE_PLACEHOLDERS = ("n_layers", "d_model", "n_heads", "n_kv_heads", "ffn")
HPARAM_PLACEHOLDERS = ("lr", "batch_size", "batch_tokens", "warmup", "steps")
# manifest columns after the costing ones: the shape, its count and FLOPs, the hyperparameters
COLUMNS = (*SHAPE_PLACEHOLDERS, "shape_params", "shape_flops", *HPARAM_PLACEHOLDERS)
# the shell variable each column is read into ({lr} is ${PLANNER_LR}); _: not needed by the job
READ_INTO = tuple(f"PLANNER_{c.upper()}" if c in SHAPE_PLACEHOLDERS + HPARAM_PLACEHOLDERS else "_" for c in COLUMNS)
PLACEHOLDERS = SHAPE_PLACEHOLDERS + HPARAM_PLACEHOLDERS


def cells(setup: RunSetup | None) -> tuple[str, ...]:
    """The manifest cells of COLUMNS for a run (empty where the spec asked for no shape or no hyperparameters)."""
    setup = setup or EMPTY
    sh, hp = setup.shape, setup.hyperparameters
    shape = ("",) * 7 if sh is None else (str(sh.n_layers), str(sh.d_model), str(sh.n_heads), str(sh.n_kv_heads),
                                           str(sh.ffn), str(sh.matched_params), repr(float(setup.shape_flops or 0.0)))
    hparams = ("",) * 5 if hp is None else (repr(float(hp.lr)), str(hp.batch_size), str(hp.batch_tokens), str(hp.warmup),
                                             str(hp.steps))
    return shape + hparams


def placement_law(spec: SweepSpec, catalog: Catalog, src: Source):
    """The law that places the runs: a catalog name, or your own law file (the fit → sweep loop)."""
    if spec.law_file is None:
        with located(src, "law"):
            return catalog.law(spec.law)
    from planner.laws import Law
    from planner.yamlio import load_model

    path = Path(src.directory) / spec.law_file
    if not path.is_file():
        raise src.error(("law_file",), f"law file '{spec.law_file}' not found (looked for {path})")
    return load_model(Law, path)


def run_setups(spec: SweepSpec, src: Source, catalog: Catalog, sizes: list[tuple[int, int]],
               warnings: list[PlannerWarning]) -> list[RunSetup]:
    """The setup of each run of (params, tokens) `sizes`, in order; warnings (extrapolated laws, long
    warmups) are added to `warnings` once each."""
    if spec.shape is None and spec.hyperparameters is None:
        return [EMPTY] * len(sizes)
    recipe = law = None
    counted: Counted = "total"
    if spec.shape is not None:
        with located(src, "shape", "recipe"):
            recipe = catalog.recipe(spec.shape.recipe)
        if spec.shape.params is not None:
            counted = spec.shape.params
        elif spec.sweep.kind in ("isoflop", "ladder"):
            counted = placement_law(spec, catalog, src).params_counted
    hp = spec.hyperparameters
    if hp is not None and hp.law is not None:
        with located(src, "hyperparameters", "law"):
            law = catalog.hparam_law(hp.law)
    entries = spec.sweep.runs if spec.sweep.kind == "list" else [None] * len(sizes)
    tolerance = spec.shape.tolerance if spec.shape is not None else TOLERANCE
    batch_multiple = hp.batch_multiple if hp is not None else 1
    out = []
    by_topic: dict[str, list[PlannerWarning]] = {}
    for i, ((params, tokens), entry) in enumerate(zip(sizes, entries, strict=True)):
        given = Overrides()
        if hp is not None:
            run = entry or Overrides()  # a list run's own values first, then the spec's
            given = Overrides(*(getattr(run, k) if getattr(run, k) is not None else getattr(hp, k)
                                for k in ("lr", "batch_size", "warmup")))
        where = ("sweep", "runs", i, "params") if entry is not None else ("shape", "recipe")
        with located(src, *where):
            setup = setup_for(params, tokens, spec.seq_len, recipe, law, counted, tolerance, batch_multiple, given,
                              hyperparameters=hp is not None)
        for w in setup.hyperparameters.warnings if setup.hyperparameters else ():
            by_topic.setdefault(w.topic, []).append(w)
        out.append(setup)
    for topic, found in by_topic.items():  # one warning for all runs, not one per run
        warnings.append(found[0] if len(found) == 1 else PlannerWarning(
            found[0].topic, f"{len(found)} runs: {SUMMARY[topic]} (the first: {found[0].message})"))
    return out


SUMMARY = {"hparams.range": "learning rate and batch extrapolated beyond the compute the law was fitted on",
           "hparams.warmup": "the warmup is more than a quarter of the run's steps"}
