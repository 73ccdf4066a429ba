"""What a run trains with: its shape (planner.shapes) and its learning rate, batch and schedule
(planner.hparams), for a plan (`planner plan`) and for each run of a sweep (planner.sweep.setup)."""

from __future__ import annotations

from dataclasses import dataclass

from planner.hparams import HyperparameterLaw, Hyperparameters, hyperparameters_for, law_inputs
from planner.records import Record
from planner.shapes import TOLERANCE, Counted, Recipe, Shape, shape_for


@dataclass(frozen=True)
class RunSetup(Record):
    shape: Shape | None
    hyperparameters: Hyperparameters | None
    shape_flops: float | None  # the real shape's training FLOPs (Shape.flops_per_token × tokens)


EMPTY = RunSetup(None, None, None)


@dataclass(frozen=True)
class Overrides:
    """Values that win over a hyperparameter law's (None: the law's)."""

    lr: float | None = None
    batch_size: int | None = None
    warmup: int | None = None


def setup_for(params: float, tokens: float, seq_len: int, recipe: Recipe | None, law: HyperparameterLaw | None,
              counted: Counted = "total", tolerance: float = TOLERANCE, batch_multiple: int = 8,
              overrides: Overrides | None = None, hyperparameters: bool | None = None) -> RunSetup:
    """The shape of a run of `params` (as `counted`) and `tokens` by `recipe`, and its hyperparameters by `law`
    (given values winning), each only when asked for: a recipe, and a law or `hyperparameters` true (then the
    overrides must give every value). The law's N and C come from the shape when there is one."""
    shape = shape_for(params, recipe, counted, tolerance, seq_len) if recipe is not None else None
    hparams = None
    if law is not None or hyperparameters:
        given = overrides or Overrides()
        n, c = law_inputs(law, params, tokens, seq_len, shape) if law is not None else (params, None)
        hparams = hyperparameters_for(law, n, tokens, c, seq_len, batch_multiple, lr=given.lr, batch_size=given.batch_size,
                                      warmup=given.warmup)
    flops = shape.flops_per_token(seq_len) * tokens if shape is not None else None
    return RunSetup(shape, hparams, flops)


def plan_setup(catalog, params: float, tokens: float, seq_len: int, counted: Counted, recipe: str | None,
               law: str | None) -> RunSetup:
    """A plan's run (`params` counted as its law counts them, `tokens`) shaped by the catalog recipe `recipe`
    and scheduled by the catalog hyperparameter law `law` (either may be None)."""
    return setup_for(params, tokens, seq_len, catalog.recipe(recipe) if recipe else None,
                     catalog.hparam_law(law) if law else None, counted)


def setup_record(setup: RunSetup) -> dict:
    """The setup's JSON: the shape (with its aspect ratio and FLOPs) and the hyperparameters, without warnings."""
    out: dict = {}
    if setup.shape is not None:
        out["shape"] = {**setup.shape.record(), "aspect_ratio": setup.shape.aspect_ratio, "flops": setup.shape_flops}
    if setup.hyperparameters is not None:
        out["hyperparameters"] = {k: v for k, v in setup.hyperparameters.record().items() if k != "warnings"}
    return out
