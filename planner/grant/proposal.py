"""A grant proposal file (YAML): title, program, cluster, allocation period, experiments and
scaling entries, validated with `file:line: field: message` errors. `planner.grant.build` costs it.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from planner.catalog import Strict
from planner.catalog.schema import Dtype
from planner.costing.scaling import Measurement
from planner.errors import FileLocator
from planner.numbers import NonNegative, Params, Positive, Tokens
from planner.yamlio import load_text, parse_model, read_text

Fraction = Annotated[float, Field(gt=0, le=1)]
KIND_KEYS = {"sweep": ("sweep",), "wall-hours": ("wall_hours",), "model": ("model",),
             "clip": ("gmacs_per_sample",), "params": ("params", "tokens")}


class StorageItem(Strict):
    name: str = Field(min_length=1)
    tb: NonNegative
    note: str | None = None


class Experiment(Strict):
    name: str = Field(min_length=1, max_length=120)
    purpose: str | None = None
    sweep: str | dict | None = Field(None, description="a `planner sweep` spec file, or an inline sweep block")
    model: str | None = None
    params: Params | None = None
    tokens: Tokens | None = None
    samples: Positive | None = None
    gmacs_per_sample: Positive | None = None
    wall_hours: Positive | None = Field(None, description="nodes × wall-hours per run, for jobs that are not training")
    law: str | None = None
    cluster: str | None = Field(None, description="another system of the same call (default: the proposal's cluster)")
    runs: int = Field(1, ge=1)
    nodes: int | None = Field(None, ge=1)
    mfu: Fraction | None = None
    goodput: Fraction | None = None
    stack: str | None = Field(None, min_length=1, max_length=40, description="training stack of this experiment")
    start_month: int | None = Field(None, ge=1, description="earliest month the experiment may start (schedule)")
    months: int | None = Field(None, ge=1, description="months from start_month it should finish within (a warning past)")
    after: list[str] | None = Field(None, description="experiments that must finish first; default: a training run "
                                    "waits for the sweeps listed before it")
    checkpoints: int | None = Field(None, ge=0, description="restartable checkpoints kept per run (storage estimate)")
    storage_tb: NonNegative | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Experiment:
        kinds = [k for k, keys in KIND_KEYS.items() if getattr(self, keys[0]) is not None]
        if self.model is None and "params" in kinds and self.gmacs_per_sample is not None:
            kinds.remove("params")  # an inline CLIP model states its parameters for the MFU profile
        if len(kinds) != 1:
            raise ValueError("give exactly one of: sweep, model (+ tokens or samples), params + tokens, "
                             f"gmacs_per_sample + params + samples, wall_hours (got {', '.join(kinds) or 'none'})")
        kind = kinds[0]
        if kind == "params" and self.tokens is None:
            raise ValueError("tokens: params needs tokens (a run is parameters × tokens)")
        if kind == "clip" and (self.params is None or self.samples is None):
            raise ValueError("samples: gmacs_per_sample needs params (for the MFU profile) and samples")
        if kind in ("params", "model", "clip", "wall-hours") and self.nodes is None:
            raise ValueError("nodes: required (nodes per run)")
        if kind == "wall-hours" and (self.mfu is not None or self.goodput is not None):
            raise ValueError("mfu: a wall_hours experiment states its hours; mfu and goodput do not apply")
        if kind != "sweep" and self.law is not None:
            raise ValueError("law: only sweep experiments use a law")
        return self

    @property
    def kind(self) -> str:
        if self.gmacs_per_sample is not None and self.model is None:
            return "clip"
        return next(k for k, keys in KIND_KEYS.items() if getattr(self, keys[0]) is not None)


class ScalingEvidence(Strict):
    """A strong-scaling table for one single-run experiment: predicted, and measured when given."""

    experiment: str = Field(min_length=1, description="the name of a model or params experiment")
    nodes: list[Annotated[int, Field(ge=1)]] | None = Field(None, min_length=1, max_length=24)
    global_batch: Positive | None = Field(None, description="tokens (or samples) per optimizer step")
    measured: str | list[Measurement] | None = Field(
        None, description="a benchmark CSV (nodes, tokens_per_s | samples_per_s | seconds_per_step) or inline rows")
    source: str | None = Field(None, min_length=1, description="where the measurements come from (required with measured)")

    @model_validator(mode="after")
    def _cited(self) -> ScalingEvidence:
        if self.measured is not None and self.source is None:
            raise ValueError("source: say where the measurements come from (system, date, job or log)")
        return self


class Proposal(Strict):
    title: str = Field(min_length=1)
    program: str
    cluster: str
    start: str | date = Field(description="first month of the allocation, YYYY-MM")
    months: int = Field(12, ge=1, le=60)
    pi: str | None = None
    project: str | None = None
    contingency: float | None = Field(None, ge=0, lt=1)
    storage_tb: NonNegative | None = None
    storage: list[StorageItem] = []
    mfu: Fraction | None = None
    goodput: Fraction = 1.0
    confidence: float = Field(0.8, ge=0.5, le=0.99, description="each row requests this quantile of its GPU-hours")
    mfu_basis: Literal["campaign", "benchmark"] = "campaign"
    stack: str | None = Field(None, min_length=1, max_length=40)
    seq_len: int | None = Field(None, ge=16, le=10_000_000, description="default: the model's, else 4096")
    dtype: Dtype = "bf16"
    law: str | None = None
    partition: str | None = Field(None, description="for wall-time limits and node limits; default: the cluster's default")
    unit: Literal["node-h", "gpu-h", "core-h", "eflop-peak", "cluster"] | None = None
    period: Literal["month", "quarter", "half-year"] | None = None
    justification: str | None = Field(None, description="your own sentences, printed after the method paragraph")
    price_per_gpu_hour: float | None = Field(None, description="price of one GPU-hour for the cost in money; default: the "
                                             "cluster's (rented clusters)")
    currency: str | None = Field(None, description="ISO 4217 code of price_per_gpu_hour; default: the cluster's, else USD")
    max_nodes_concurrent: int | None = Field(None, ge=1, description="nodes the project runs at once (schedule); "
                                             "default: the largest run's nodes")
    experiments: list[Experiment] = Field(min_length=1)
    scaling: list[ScalingEvidence] = []

    @model_validator(mode="after")
    def _start(self) -> Proposal:
        start_month(self.start)
        names = [e.name for e in self.experiments]
        if dup := next((n for n in names if names.count(n) > 1), None):
            raise ValueError(f"experiments: two experiments are named '{dup}'")
        for i, e in enumerate(self.experiments):
            first = e.start_month or 1
            if first > self.months:  # else its default months (the rest of the allocation) would be none
                raise ValueError(f"experiments.{i}.start_month: month {first} is after the {self.months}-month allocation")
            last = first + (e.months or self.months - first + 1) - 1
            if last > self.months:
                raise ValueError(f"experiments.{i}.start_month: months {first}..{last} run past the "
                                 f"{self.months}-month allocation")
            for name in e.after or []:
                if name not in names or name == e.name:
                    raise ValueError(f"experiments.{i}.after: '{name}' is not another experiment of the proposal "
                                     f"({', '.join(n for n in names if n != e.name)})")
        if cycle := dependency_cycle({e.name: e.after or [] for e in self.experiments}):
            raise ValueError(f"experiments.{names.index(cycle[0])}.after: the dependencies go round in a circle: "
                             + " → ".join(cycle + [cycle[0]]))
        return self


def dependency_cycle(after: dict[str, list[str]]) -> list[str]:
    """Names that wait for each other in a circle (by `after:`), or [] when there is none."""
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(name: str, path: list[str]) -> list[str]:
        state[name] = 1
        for dep in after.get(name, []):
            if state.get(dep) == 1:
                return path[path.index(dep):]
            if dep not in state and (found := visit(dep, path + [dep])):
                return found
        state[name] = 2
        return []

    for name in after:
        if name not in state and (found := visit(name, [name])):
            return found
    return []


def start_month(value: str | date) -> tuple[int, int]:
    if isinstance(value, date):
        return value.year, value.month
    m = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", str(value))
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"start: '{value}' is not a month (YYYY-MM, e.g. 2027-04)")
    return int(m.group(1)), int(m.group(2))


ENTRIES: dict[str, type[Strict]] = {"experiments": Experiment, "scaling": ScalingEvidence}  # the lists of a proposal


class Where(FileLocator):
    """file:line for a key path of the proposal, as yamlio gives for schema errors. A domain field
    raised about an experiment (or a scaling entry) is that entry's key when it has one, else the
    proposal's (`mfu` and `stack` may be set in either; `dtype` and `seq_len` only for the proposal)."""

    def __init__(self, filename: str, lines: dict):
        self.filename, self.lines = filename, lines

    def key(self, name: str, near: tuple) -> tuple | None:
        candidates = []
        entry = ENTRIES.get(str(near[0])) if len(near) > 1 else None
        if entry is not None and name in entry.model_fields:
            candidates.append(near[:2] + (name,))
        if name in Proposal.model_fields and name not in ENTRIES:
            candidates.append((name,))
        present = [c for c in candidates if c in self.lines]
        return (present or candidates)[0] if candidates else None


def load_proposal(path: Path) -> tuple[Proposal, Where, Path]:
    """A grant proposal (YAML) validated, its locator for `file:line: key` errors, and the directory
    its relative paths (sweep specs, measurements) are read from."""
    data, lines = load_text(read_text(Path(path)), str(path))
    return parse_model(Proposal, data, str(path), lines), Where(str(path), lines), Path(path).resolve().parent
