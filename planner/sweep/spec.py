"""`planner sweep` specs: the YAML schema (one model per sweep kind), validated with `file:line: field:`
errors that list the valid keys. The design of runs from a spec is `planner.sweep.design`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from planner.catalog import Strict
from planner.catalog.schema import Dtype
from planner.errors import FileLocator
from planner.numbers import Params, Positive, Tokens
from planner.yamlio import did_you_mean, load_text, read_text, validation_errors

DEFAULT_LAW = "epoch-2024"  # as `planner plan`
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # safe unquoted in file names, job names and shell words
Name = Annotated[str, Field(pattern=NAME_RE)]
SpecModel = Strict  # unknown keys and booleans-for-numbers are errors in specs as in catalogs


class Isoflop(SpecModel):
    kind: Literal["isoflop"]
    budgets: list[Positive] | None = Field(None, min_length=1)
    gpu_hours: Positive | None = Field(None, description="instead of budgets: what the whole sweep may cost")
    decades: float = Field(2.0, gt=0, le=12, description="with gpu_hours: the span of the budgets")
    n_budgets: int = Field(5, ge=2, le=100, description="with gpu_hours: how many budgets")
    points: int = Field(5, ge=1, le=10_000)
    span: float = Field(4.0, gt=1)

    @model_validator(mode="after")
    def _budgets_or_hours(self) -> Isoflop:
        if (self.budgets is None) == (self.gpu_hours is None):
            raise ValueError("give budgets (FLOPs per IsoFLOP curve) or gpu_hours (what the whole sweep may cost), not both")
        if self.budgets is not None and self.model_fields_set & {"decades", "n_budgets"}:
            raise ValueError("decades and n_budgets go with gpu_hours; with budgets, list them")
        if self.budgets is not None and len(set(self.budgets)) < len(self.budgets):
            raise ValueError("budgets: each budget once (a repeated budget repeats the same runs)")
        return self


class Ladder(SpecModel):
    kind: Literal["ladder"]
    params: list[Params] = Field(min_length=1)
    tokens_per_param: Positive | None = None
    multipliers: list[Positive] = Field([1.0], min_length=1)


class RunEntry(SpecModel):
    params: Params
    tokens: Tokens
    name: Name | None = None
    nodes: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0, lt=1, description="this run's peak learning rate, over the spec's and the law's")
    batch_size: int | None = Field(None, ge=1, description="this run's batch in sequences, over the spec's and the law's")
    warmup: int | None = Field(None, ge=0, description="this run's warmup steps, over the spec's and the law's")


class RunList(SpecModel):
    kind: Literal["list"]
    runs: list[RunEntry] = Field(min_length=1)


class ClipModel(SpecModel):
    """An inline CLIP model, or (name alone, or a bare string) one from the model catalog."""

    name: Name
    params: Params | None = None
    gmacs_per_sample: Positive | None = None

    @model_validator(mode="before")
    @classmethod
    def _catalog_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _both_or_neither(self) -> ClipModel:
        if (self.params is None) != (self.gmacs_per_sample is None):
            raise ValueError("give both params and gmacs_per_sample, or neither to take them from the model catalog")
        return self


class Samples(SpecModel):
    kind: Literal["samples"]
    models: list[ClipModel] = Field(min_length=1)
    samples_seen: list[Positive] = Field(min_length=1)


class ShapeSpec(SpecModel):
    """`shape:`: each run's architecture from a recipe of the shape catalog (planner.shapes)."""

    recipe: str = Field(min_length=1, description="a shape recipe (planner catalog list shapes)")
    params: Literal["total", "non-embedding"] | None = Field(
        None, description="what N counts; default: the law's counting for isoflop and ladder sweeps, total for a list")
    tolerance: float = Field(0.02, gt=0, le=0.2, description="how far the shape's count may be from N")


class HyperparametersSpec(SpecModel):
    """`hyperparameters:`: each run's learning rate and batch from a law of the hparams catalog (planner.hparams),
    or given; a value given here wins over the law's, and a run's own (a list entry's) over both."""

    law: str | None = Field(None, min_length=1, description="a hyperparameter law (planner catalog list hparams)")
    lr: float | None = Field(None, gt=0, lt=1, description="peak learning rate for every run")
    batch_size: int | None = Field(None, ge=1, description="sequences per optimizer step for every run")
    warmup: int | None = Field(None, ge=0, description="warmup steps for every run; default: the law's")
    batch_multiple: int = Field(8, ge=1, le=65536, description="the law's batch is rounded to a multiple of this many sequences")

    @model_validator(mode="after")
    def _law_or_values(self) -> HyperparametersSpec:
        if self.law is None and None in (self.lr, self.batch_size, self.warmup):
            raise ValueError("give law (a hyperparameter law), or lr, batch_size and warmup")
        return self


class SweepSpec(SpecModel):
    name: Name
    cluster: str
    account: Name | None = None
    partition: Name | None = None
    law: str = DEFAULT_LAW
    law_file: str | None = Field(None, description="a law YAML (e.g. written by `planner fit`), relative to the spec")
    nodes: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        1, description="per run; auto: the fewest that hold the model (planner memory), or with target_hours "
        "the fewest that also finish within it")
    target_hours: Positive | None = Field(None, description="with nodes: auto: estimated wall-clock per run to aim below")
    node_ladder: Literal["powers-of-two", "none"] | Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = Field(
        "powers-of-two", description="with nodes: auto: each run's nodes are rounded up to a rung of this ladder (a list "
        "of node counts, or powers-of-two up to the partition's limit), so that runs share arrays; none: no rounding")
    max_concurrent: int = Field(8, ge=1)
    throttle: Literal["array", "sweep"] = Field(
        "array", description="array: max_concurrent per array, arrays side by side; sweep: arrays one after another")
    time_margin: float = Field(0.2, ge=0, le=10)
    time_step_minutes: int | None = Field(None, ge=1, le=1440)
    max_array_size: int = Field(1000, ge=1)
    max_segments: int = Field(100, ge=1)
    signal_seconds: int = Field(300, ge=0, le=86400)
    requeue: int = Field(0, ge=0, le=100, description="up to this many times, a run's last segment that USR1 stopped before "
                         "the run was done requeues itself (scontrol requeue) and resumes; needs signal_seconds > 0")
    mfu: float | None = Field(None, gt=0, le=1)
    mfu_profile: str | None = None
    mfu_basis: Literal["campaign", "benchmark"] = Field(
        "campaign", description="campaign: MFU realised by published training runs; benchmark: tuned steady state")
    stack: str | None = Field(None, min_length=1, max_length=40, description="training stack, for the estimator")
    seq_len: int = Field(4096, ge=16, le=10_000_000, description="training sequence length (attention FLOPs)")
    flops_convention: Literal["6ND", "6ND+attention"] = "6ND+attention"
    dtype: Dtype = "bf16"
    tasks_per_node: int | None = Field(None, ge=1)
    cpus_per_task: int | None = Field(None, ge=1)
    workdir: str | None = None
    setup: list[str] = []
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = {}
    sbatch: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")], str | int | float] = {}
    command: str = Field(min_length=1)
    sweep: Annotated[Isoflop | Ladder | RunList | Samples, Field(discriminator="kind")]
    shape: ShapeSpec | None = Field(None, description="each run's layers, width, heads and MLP width from a shape recipe")
    hyperparameters: HyperparametersSpec | None = Field(None, description="each run's learning rate, batch and warmup")
    need: str | None = Field(None, max_length=200, description="'QUANTITY within X%': `planner sweep` says whether this "
                             "design's fit meets it, from a quick simulation under the spec's law")

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if self.law_file is not None and "law" in self.model_fields_set:
            raise ValueError("law_file: give law (a catalog name) or law_file, not both")
        if self.requeue and not self.signal_seconds:
            raise ValueError("requeue: needs signal_seconds > 0 (USR1 is what tells the job to checkpoint and requeue)")
        if self.target_hours is not None and self.nodes != "auto":
            raise ValueError("target_hours: goes with nodes: auto (the planner then picks the nodes per run)")
        if "node_ladder" in self.model_fields_set and self.nodes != "auto":
            raise ValueError("node_ladder: goes with nodes: auto (the rungs the planner rounds its node counts up to)")
        if self.sweep.kind == "samples" and (self.shape or self.hyperparameters):
            raise ValueError(f"{'shape' if self.shape else 'hyperparameters'}: for language-model sweeps (a samples sweep "
                             "has no tokens to shape or schedule)")
        return self


KINDS = {"isoflop": Isoflop, "ladder": Ladder, "list": RunList, "samples": Samples}
# the script sets these itself; an `sbatch:` entry for one of them would contradict the design
MANAGED = ("account", "array", "chdir", "cpus-per-task", "dependency", "error", "gres", "job-name", "nodes",
           "ntasks-per-node", "open-mode", "output", "partition", "signal", "time")


@dataclass
class Source(FileLocator):
    """Where a spec came from: file name and the line of every key, for `file:line: field:` errors.
    A domain field is the spec's top-level key of that name (`nodes`, `mfu`, `dtype`, `seq_len`, ...)."""

    filename: str
    lines: dict = field(default_factory=dict)
    directory: Path = Path(".")

    def key(self, name: str, near: tuple) -> tuple | None:
        return (name,) if name in SweepSpec.model_fields else None


class _Errors:  # lets yamlio format errors whose union tags were taken out of `loc`
    def __init__(self, errors: list[ErrorDetails]):
        self._errors = errors

    def errors(self, include_url: bool = False) -> list[ErrorDetails]:
        return self._errors


def _fields_at(loc: tuple, data: dict) -> list[str]:
    model: type[BaseModel] | None = SweepSpec
    if loc[:1] == ("sweep",):
        sweep = data.get("sweep")
        kind = sweep.get("kind") if isinstance(sweep, dict) else None
        model = KINDS.get(kind) if isinstance(kind, str) else None
        if len(loc) > 2:
            model = {"runs": RunEntry, "models": ClipModel}.get(loc[1])
    elif loc[:1] in (("shape",), ("hyperparameters",)):
        model = ShapeSpec if loc[0] == "shape" else HyperparametersSpec
    return list(model.model_fields) if model else []


def parse_spec(data: Any, src: Source) -> SweepSpec:
    if not isinstance(data, dict):
        raise src.error((), "expected a mapping of fields")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        errors: list[ErrorDetails] = []
        for err in exc.errors(include_url=False):
            loc = err["loc"]
            if loc[:1] == ("sweep",) and len(loc) > 1 and loc[1] in KINDS:
                loc = loc[:1] + loc[2:]
            if err["type"].startswith("union_tag"):
                loc = ("sweep", "kind")
            errors.append({**err, "loc": loc})
        # a misspelt key also makes the real one "missing": name the misspelling first
        errors.sort(key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        ((loc, message),) = validation_errors(_Errors([first]))
        if first["type"] == "extra_forbidden":
            message += did_you_mean(str(first["loc"][-1]), _fields_at(first["loc"][:-1], data))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise src.error(loc, message + more) from None


def load_spec(path: Path) -> tuple[SweepSpec, Source]:
    """A sweep spec (YAML) validated, and the locator that puts later errors at `file:line: key`."""
    text = read_text(Path(path))  # first: it refuses what resolve() cannot take (a symbolic link loop)
    src = Source(str(path), directory=Path(path).resolve().parent)
    data, src.lines = load_text(text, str(path))
    return parse_spec(data, src), src
