"""Published end-to-end training campaigns: what whole runs realised, as the catalog kind `campaigns`.

A campaign set is one catalog entry with many runs. Each run states what a user knows before
training (workload, accelerator, parameters, layers and width, sequence length, tokens or
samples, GPU count, training stack) and what the run reported afterwards: its GPU-hours, all
restarts, evaluation and idle time included. From the two follows the run's *realised* MFU,
model FLOPs / (GPU-hours × dense peak); `planner.costing.throughput` fits its estimator on them.
Users add their own runs in a campaign file of a catalog directory of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from planner.catalog import Accelerator, Catalog, Entry, Slug, Sourced, Strict
from planner.costing import cost
from planner.costing.runs import clip_run
from planner.errors import PlannerError

Workload = Literal["dense-lm", "moe", "clip"]

# Physical ranges: a value outside is a typo (a missing exponent, GPU-days given as GPU-hours).
RANGES = {
    "params": (1e6, 1e13),
    "active_params": (1e6, 1e13),
    "layers": (1, 1000),
    "d_model": (64, 1e6),
    "seq_len": (16, 1e7),
    "tokens": (1e8, 1e15),
    "samples": (1e6, 1e13),
    "gmacs_per_sample": (0.01, 1e5),
    "gpus": (1, 1e6),
    "gpu_hours": (1, 1e9),
}
MFU_RANGE = (0.01, 0.9)  # a realised MFU outside this says one of the inputs is wrong


class CampaignRun(Strict):
    name: Slug
    title: str | None = None
    workload: Workload
    stack: str = Field(min_length=1, max_length=40, description="training software, e.g. megatron, gpt-neox, fsdp")
    year: int | None = Field(None, ge=2015, le=2100)
    accelerator: Slug
    params: Sourced = Field(description="total parameters (CLIP: image + text towers)")
    active_params: Sourced | None = Field(None, description="MoE: parameters that work per token")
    layers: Sourced | None = None
    d_model: Sourced | None = None
    seq_len: Sourced | None = None
    tokens: Sourced | None = None
    samples: Sourced | None = Field(None, description="CLIP: samples seen")
    gmacs_per_sample: Sourced | None = Field(None, description="CLIP: forward GMACs per image-text pair")
    clip_model: Slug | None = Field(None, description="CLIP: the catalog model whose GMACs apply")
    gpus: Sourced | None = Field(None, description="GPUs the run trained on (its main phase)")
    gpu_hours: Sourced = Field(description="reported GPU-hours of the whole run, or GPUs × days × 24 (derived)")
    excluded: str | None = Field(None, description="why this run is kept for the record but not fitted")
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CampaignRun:
        values = self.__dict__  # the validated fields, without pydantic's attribute machinery (a set has many runs)
        for key, (lo, hi) in RANGES.items():
            item = values[key]
            if item is not None and not lo <= item.value <= hi:
                raise ValueError(f"{key}: {item.value:g} is outside the physical range {lo:g}-{hi:g}")
        if self.workload == "clip":
            if self.samples is None or (self.gmacs_per_sample is None and self.clip_model is None):
                raise ValueError("samples: a clip run needs samples and gmacs_per_sample (or clip_model)")
            if self.tokens is not None:
                raise ValueError("tokens: a clip run counts samples, not tokens")
        else:
            if self.tokens is None:
                raise ValueError(f"tokens: a {self.workload} run needs its training tokens")
            if self.seq_len is None and self.excluded is None:
                raise ValueError(f"seq_len: a {self.workload} run needs its sequence length (attention FLOPs)")
            if self.samples is not None:
                raise ValueError("samples: only clip runs count samples")
        if self.workload == "moe" and self.active_params is None:
            raise ValueError("active_params: a moe run needs its active parameters")
        if self.active_params is not None and self.active_params.value > self.params.value:
            raise ValueError("active_params: more than the total parameters")
        if (self.layers is None) != (self.d_model is None):
            raise ValueError("layers: give layers and d_model together (or neither: an assumed shape)")
        return self

    @property
    def working_params(self) -> float:
        """Parameters that do work per token (MoE: active), the size the estimator reads."""
        return (self.active_params or self.params).value


class CampaignSet(Entry):
    runs: list[CampaignRun] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> CampaignSet:
        seen: set[str] = set()
        for run in self.runs:
            if run.name in seen:
                raise ValueError(f"runs: '{run.name}' appears twice")
            seen.add(run.name)
        return self


def realised_mfu(flops: float, gpu_hours: float, peak_flops: float) -> float:
    """Model FLOPs over what the GPUs could have done at peak in the hours the run reported."""
    return flops / (gpu_hours * 3600.0 * peak_flops)


def check_realised(name: str, value: float) -> str | None:
    lo, hi = MFU_RANGE
    if not (math.isfinite(value) and lo <= value <= hi):
        return f"run '{name}' realised MFU {value:.3g}, outside {lo:g}-{hi:g}; check its gpu_hours, tokens and params"
    return None


# --- each run reduced to what the estimator reads ----------------------------------------------------

@dataclass(frozen=True)
class CampaignPoint:
    """One published run, reduced to what the estimator reads."""

    name: str
    title: str
    workload: str
    accelerator: str
    architecture: str
    stack: str
    params: float  # working parameters (MoE: active)
    gpus: float | None
    seq_len: float | None
    flops: float
    gpu_hours: float
    peak: float
    realised: float
    source: str
    status: str
    excluded: str | None


def _architecture(acc: Accelerator) -> str:
    return acc.architecture or acc.name


def campaign_points(catalog: Catalog) -> list[CampaignPoint]:
    """Every run of every campaign set in the catalog (user sets included), with its realised MFU."""
    points = []
    for entry in catalog.all("campaigns"):
        for i, run in enumerate(entry.runs):
            try:
                points.append(_point(catalog, entry, run))
            except PlannerError as exc:
                raise PlannerError(exc.spelled(), ("runs", i) + exc.field,
                                   where=_where(catalog, entry.name, ("runs", i) + exc.field)) from None
    return points


def _where(catalog: Catalog, name: str, path: tuple) -> str:
    """file:line of a field of a campaign set (read again only on this error path, for its line numbers)."""
    from planner.yamlio import key_line

    file = catalog.files("campaigns")[name]
    return f"{file}:{key_line(file, path)}"


def _point(catalog: Catalog, entry, run: CampaignRun) -> CampaignPoint:
    acc = catalog.accelerator(run.accelerator)
    peak = acc.peak_flops("bf16")
    if run.workload == "clip":
        assert run.samples is not None  # CampaignRun's validator: a clip run has samples and GMACs (or a model)
        if run.gmacs_per_sample is not None:
            gmacs = run.gmacs_per_sample.value
        else:
            assert run.clip_model is not None
            model = catalog.model(run.clip_model)
            if model.gmacs_per_sample is None:  # a language model named as a CLIP run's model
                raise PlannerError(f"'{model.name}' is not a CLIP model (it states no GMACs per sample)", "clip_model")
            gmacs = model.gmacs_per_sample.value
        flops = clip_run(gmacs).flops(run.working_params, run.samples.value)
        seq = None
    else:
        assert run.tokens is not None  # the validator: a language-model run has tokens
        shape = (run.layers.value, run.d_model.value) if run.layers is not None and run.d_model is not None else (None, None)
        seq = run.seq_len.value if run.seq_len else cost.DEFAULT_SEQ_LEN  # only excluded runs may omit it
        flops = float(cost.lm_flops(run.working_params, run.tokens.value, "6ND+attention", seq, *shape))
    value = realised_mfu(flops, run.gpu_hours.value, peak)
    problem = check_realised(run.name, value)
    if problem:
        raise PlannerError(problem, "gpu_hours")
    return CampaignPoint(run.name, run.title or run.name, run.workload, acc.name, _architecture(acc), run.stack,
                         run.working_params, run.gpus.value if run.gpus else None, seq, flops, run.gpu_hours.value,
                         peak, value, entry.cite(run.gpu_hours), entry.status_of(run.gpu_hours), run.excluded)
