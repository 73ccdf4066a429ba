"""What `plan` returns: a frozen, typed Plan whose `record()` is the JSON the CLI prints.

Renderers and other steps (scaling, the public API) read attributes; only `record()` turns the
object into the plain dict that JSON, CSV and the table columns (dotted names such as
`charge.amount`) are made from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.costing.hardware import Costs, MemoryFit
from planner.errors import PlannerError, PlannerWarning
from planner.records import Record


def _plain(value):
    """A value as JSON shows it: nested results as dicts, intervals as [low, high]."""
    if hasattr(value, "record"):
        return value.record()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Budget:
    kind: str  # flops | gpu_hours | node_hours | days | target_loss | fixed | params
    value: float | None

    def record(self) -> dict:
        return {"kind": self.kind, "value": self.value}


@dataclass(frozen=True)
class Inference(Record):
    """Inference-aware sizing (Sardana et al. 2024): the smaller model trained longer, at equal loss."""

    inference_tokens: float
    inference_flops: float
    total_flops: float
    equal_loss: float
    compute_optimal_params: float
    compute_optimal_tokens: float
    compute_optimal_total_flops: float
    total_flops_saved: float
    method: str


@dataclass(frozen=True)
class DataConstrained(Record):
    """Muennighoff et al. 2023: what repeated tokens and excess parameters are worth."""

    unique_tokens: float
    epochs: float
    effective_tokens: float
    effective_params: float
    method: str


@dataclass(frozen=True)
class Overtraining(Record):
    """A run at a chosen token multiplier M = D/N (Gadre et al. 2024) against the compute-optimal run of the
    same compute: the loss it gives up, and how much less compute the compute-optimal model needs for its loss."""

    tokens_per_param: float
    compute_optimal_params: float
    compute_optimal_tokens: float
    compute_optimal_tokens_per_param: float
    loss: float | None
    compute_optimal_loss: float | None
    compute_optimal_flops_same_loss: float | None
    extra_compute: float | None  # C / (compute-optimal C at the same loss) - 1
    method: str


@dataclass(frozen=True)
class Plan:
    """A planned run: its size and compute, the law's loss, and what it costs on the hardware (if any)."""

    params: float
    tokens: float | None
    flops: float  # hardware FLOPs, in `flops_convention`
    flops_convention: str
    flops_gopher_units: float
    predicted_loss: float | None
    law: str | None
    budget: Budget
    costs: Costs
    sources: dict[str, str]
    warnings: tuple[PlannerWarning, ...]
    provenance: dict
    # language models
    tokens_per_param: float | None = None
    seq_len: int | None = None
    shape_basis: str | None = None
    flops_6nd: float | None = None  # the law's compute, 6ND
    law_form: str | None = None
    params_counted: str | None = None
    memory: MemoryFit | None = None
    data_constrained: DataConstrained | None = None
    inference: Inference | None = None
    overtraining: Overtraining | None = None
    # ranges (None where nothing is uncertain or nothing says how much)
    interval_level: float | None = None
    flops_interval: tuple[float, float] | None = None
    params_interval: tuple[float, float] | None = None
    tokens_interval: tuple[float, float] | None = None
    predicted_loss_interval: tuple[float, float] | None = None
    law_interval_basis: str | None = None
    # CLIP runs
    model: str | None = None
    samples: float | None = None
    gmacs_per_sample: float | None = None

    @property
    def is_clip(self) -> bool:
        return self.samples is not None

    def record(self) -> dict:
        """The plan as JSON shows it; the cost fields sit at the top level beside the run's."""
        costs = self.costs.record()
        costs["interval_level"] = self.interval_level
        if self.is_clip:
            head = {"model": self.model, "params": self.params, "samples": self.samples, "tokens": self.tokens,
                    "gmacs_per_sample": self.gmacs_per_sample, "flops": self.flops, "flops_convention": self.flops_convention,
                    "flops_gopher_units": self.flops_gopher_units, "predicted_loss": self.predicted_loss, "law": self.law,
                    "budget": self.budget.record()}
            return {**head, **costs, "sources": self.sources, "warnings": list(self.warnings), "provenance": self.provenance}
        out = {"params": self.params, "tokens": self.tokens, "tokens_per_param": self.tokens_per_param, "flops": self.flops,
               "flops_convention": self.flops_convention, "seq_len": self.seq_len, "shape_basis": self.shape_basis,
               "flops_6nd": self.flops_6nd, "flops_gopher_units": self.flops_gopher_units,
               "predicted_loss": self.predicted_loss, "law": self.law, "law_form": self.law_form,
               "params_counted": self.params_counted, "budget": self.budget.record(), **costs}
        for name in ("flops_interval", "params_interval", "tokens_interval", "predicted_loss_interval", "law_interval_basis"):
            if getattr(self, name) is not None:
                out[name] = _plain(getattr(self, name))
        out["memory"] = _plain(self.memory)
        for name in ("data_constrained", "inference", "overtraining"):
            if getattr(self, name) is not None:
                out[name] = _plain(getattr(self, name))
        return {**out, "sources": self.sources, "warnings": list(self.warnings), "provenance": self.provenance}


def require_finite(values: dict) -> dict:
    """Refuse answers the arithmetic could not represent (inputs far outside any physical range)."""
    for key in ("params", "tokens", "flops", "gpu_hours", "node_hours", "wall_clock_hours", "energy_kwh", "predicted_loss"):
        value = values.get(key)
        least_exclusive = key in ("params", "tokens", "flops")  # a run of none of them is no run (and logs of them fail)
        if value is not None and not (math.isfinite(value) and (value > 0 if least_exclusive else value >= 0)):
            raise PlannerError(f"the inputs give {key} = {value}: outside the range this plan can represent")
    return values


def require_run(params: float, tokens: float) -> None:
    """Refuse a size the law gives that no model has (a budget or a target loss far outside any run, or a law
    file's coefficients at the ends of float range)."""
    if not (params >= 1 and tokens >= 1 and math.isfinite(params * tokens)):
        raise PlannerError(f"this asks for {params:.3g} parameters and {tokens:.3g} tokens: outside the range of any model "
                           "(check the budget, the target loss or the law)")


def checked(plan: Plan) -> Plan:
    """The plan, refused when the arithmetic could not represent one of its figures."""
    c = plan.costs
    require_finite({"params": plan.params, "tokens": plan.tokens, "flops": plan.flops, "gpu_hours": c.gpu_hours,
                    "node_hours": c.node_hours, "wall_clock_hours": c.wall_clock_hours, "energy_kwh": c.energy_kwh,
                    "predicted_loss": plan.predicted_loss})
    return plan
