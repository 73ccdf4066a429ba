"""`plan`: budget → law → (N, D) → FLOPs → hardware → hours, as pure functions over the catalog.

`sweep` and `grant` cost every run with `hardware.hardware_costs`, as `plan` does, so the three
commands cannot disagree about a number.
"""

from __future__ import annotations

import math
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.catalog import Catalog
from planner.catalog.schema import Dtype
from planner.costing import cost, mfu
from planner.costing.batch import run_batch_warnings
from planner.costing.hardware import Costs, Hardware, hardware_costs, hardware_for, memory_check, partition_warnings
from planner.costing.intervals import INTERVAL_LEVEL
from planner.costing.mfu_basis import mfu_for
from planner.costing.money import given_price
from planner.costing.regulation import regulatory_warnings
from planner.costing.results import Budget, DataConstrained, Inference, Plan, checked, require_run
from planner.costing.runs import RunShape, clip_run, run_shape
from planner.costing.sizing import allocate_run, law_compute_for_loss, overtraining
from planner.errors import PlannerError, PlannerWarning
from planner.laws import Law, law_draw_intervals
from planner.numbers import size_problem

DEFAULT_LAW = "epoch-2024"
BUDGETS = ("flops", "gpu_hours", "node_hours", "days", "target_loss")


class PlanRequest(BaseModel):
    """What to plan: exactly one question (a budget in FLOPs, GPU-hours, node-hours or days; a target
    loss; parameters with tokens, a fixed run; or parameters alone, compute-optimal tokens), the law,
    the hardware, and how to count FLOPs and MFU. `build_request` builds one and turns validation
    failures into a PlannerError naming the field."""

    model_config = ConfigDict(extra="forbid")

    # Lower bounds of 1 (a FLOP, a token, a parameter) keep logs and ratios finite; see require_finite().
    flops: float | None = Field(None, ge=1)
    gpu_hours: float | None = Field(None, gt=0)
    node_hours: float | None = Field(None, gt=0)
    days: float | None = Field(None, gt=0)
    target_loss: float | None = Field(None, gt=0)
    params: list[float] | None = None
    tokens: float | None = Field(None, ge=1)
    law: str = DEFAULT_LAW
    law_file: str | None = None
    cluster: str | None = None
    accelerator: str | None = None
    gpus: int | None = Field(None, gt=0)
    nodes: int | Literal["all"] | None = None
    mfu: float | None = Field(None, gt=0, le=1)
    dtype: Dtype = "bf16"
    inference_tokens: float | None = Field(None, ge=1)
    unique_tokens: float | None = Field(None, ge=1)
    tokens_per_param: float | None = Field(None, gt=0, le=1e6, description="train at this M = D/N instead of the law's optimum")
    model: str | None = None
    samples: float | None = Field(None, ge=1)
    flops_convention: Literal["6ND", "6ND+attention"] | None = None
    seq_len: int | None = Field(None, ge=16, le=10_000_000)
    mfu_basis: Literal["campaign", "benchmark"] = "campaign"
    stack: str | None = Field(None, min_length=1, max_length=40)
    goodput: float = Field(1.0, gt=0, le=1)
    pue: float | None = Field(None, ge=1, le=5)
    grid_intensity: float | None = Field(None, ge=0, le=5000, description="gCO2 per kWh")
    price_per_gpu_hour: float | None = Field(None, description="overrides the cluster's price; prices any hardware")
    currency: str | None = Field(None, description="ISO 4217 code of price_per_gpu_hour (default: the cluster's, else USD)")

    @model_validator(mode="after")
    def _one_question(self) -> PlanRequest:
        given_price(self.price_per_gpu_hour, self.currency)
        for name in ("tokens", "unique_tokens"):
            if (value := getattr(self, name)) is not None and (problem := size_problem(value, "tokens")):
                raise PlannerError(problem, name)
        given = [b for b in BUDGETS if getattr(self, b) is not None]
        if self.model is not None:
            if self.params is not None:
                raise PlannerError("conflicts with {model} (a model fixes the size); give one", "params", refs=("model",))
            if given:
                raise PlannerError("conflicts with {model} (both fix the model); give one", given[0], refs=("model",))
            return self
        if self.samples is not None:
            raise PlannerError("goes with a CLIP {model} (e.g. openclip-vit-l-14)", "samples", refs=("model",))
        if len(given) > 1:
            raise PlannerError(f"give one budget, not {len(given)}: {', '.join('{' + b + '}' for b in given)}", refs=given)
        if self.params is not None:
            if any(not (p >= 1 and math.isfinite(p)) for p in self.params) or not self.params:
                raise PlannerError("every value must be a number of parameters (at least 1)", "params")
            if problem := next(filter(None, (size_problem(p, "params") for p in self.params)), None):
                raise PlannerError(problem, "params")
            if given:
                raise PlannerError("conflicts with {params} (both fix the model); give one", given[0], refs=("params",))
            if len(self.params) > 1 and self.tokens is not None:
                raise PlannerError("goes with a single {params} value, not a list", "tokens", refs=("params",))
        elif self.tokens is not None:
            raise PlannerError("needs {params} (a fixed run is parameters and tokens)", "tokens", refs=("params",))
        elif not given:
            raise PlannerError("give a budget ({flops}, {gpu_hours}, {node_hours}, {days}), {params}, or {target_loss}",
                               refs=BUDGETS + ("params",))
        if self.days is not None and self.gpus is None and self.nodes is None:
            raise PlannerError("needs {nodes} or {gpus} (how many run for that long)", "days", refs=("nodes", "gpus"))
        if self.gpus is not None and self.nodes is not None:
            raise PlannerError("conflicts with {gpus}; give one", "nodes", refs=("gpus",))
        if isinstance(self.nodes, int) and self.nodes <= 0:
            raise PlannerError("must be a positive whole number or 'all'", "nodes")
        if self.cluster and self.accelerator:
            raise PlannerError("conflicts with {cluster} (a cluster names its accelerator); give one", "accelerator", refs=("cluster",))
        if self.law_file is not None and "law" in self.model_fields_set:
            raise PlannerError("conflicts with {law}; give one", "law_file", refs=("law",))
        if self.inference_tokens is not None and self.unique_tokens is not None:
            raise PlannerError("cannot be combined with {inference_tokens}", "unique_tokens", refs=("inference_tokens",))
        if self.tokens_per_param is not None:
            if clash := next((k for k in ("tokens", "inference_tokens", "unique_tokens") if getattr(self, k) is not None), None):
                raise PlannerError(f"cannot be combined with {{{clash}}} (both fix the tokens)", "tokens_per_param", refs=(clash,))
        return self

    @property
    def budget_kind(self) -> str:
        for b in BUDGETS:
            if getattr(self, b) is not None:
                return b
        return "fixed" if self.tokens is not None else "params"


def build_request(options: dict) -> PlanRequest:
    """PlanRequest from keyword options, with validation failures as one PlannerError line."""
    from pydantic import ValidationError

    from planner.yamlio import looks_like_tag

    if isinstance(options.get("law_file"), os.PathLike):  # a Path from Python reads as its text
        options = {**options, "law_file": os.fspath(options["law_file"])}
    try:
        return PlanRequest(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        if isinstance(err.get("ctx", {}).get("error"), PlannerError):  # raised by _one_question, field and all
            raise err["ctx"]["error"] from None
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_too_short":
            message = "must not be empty"
        elif err["type"] == "string_too_long":
            message = f"at most {err['ctx']['max_length']} characters"
        raise PlannerError(message, tuple(p for p in err["loc"] if not looks_like_tag(p))) from None


def resolve_hardware(req: PlanRequest, catalog: Catalog) -> Hardware | None:
    if req.cluster is None and req.accelerator is None:
        if given := [k for k in ("gpus", "nodes", "gpu_hours", "node_hours", "days", "price_per_gpu_hour") if getattr(req, k)]:
            raise PlannerError("hours and GPU counts need hardware: give {cluster} or {accelerator}", given[0],
                               refs=("cluster", "accelerator"))
        return None
    return hardware_for(catalog, cluster=req.cluster, accelerator=req.accelerator, gpus=req.gpus,
                        nodes=req.nodes, dtype=req.dtype)


# --- the chain ----------------------------------------------------------------------------------


def _allocate(law: Law, flops: float, req: PlanRequest, target_loss: float | None = None) -> tuple[float, float, Inference | None]:
    return allocate_run(law, flops, inference_tokens=req.inference_tokens, unique_tokens=req.unique_tokens,
                        tokens_per_param=req.tokens_per_param, target_loss=target_loss)


def _budget_gpu_hours(req: PlanRequest, hw: Hardware) -> float:
    if req.gpu_hours is not None:
        return req.gpu_hours
    if req.node_hours is not None:
        if hw.cluster is None:
            raise PlannerError("needs {cluster} (an accelerator alone has no node size); use {gpu_hours}", "node_hours",
                               refs=("cluster", "gpu_hours"))
        return req.node_hours * hw.cluster.gpus_per_node_int
    # a days budget: _one_question asks for nodes or gpus with it, and hardware_for counts the GPUs of nodes
    assert req.days is not None and hw.gpus is not None
    return req.days * 24.0 * hw.gpus


def law_for(req: PlanRequest, catalog: Catalog) -> Law:
    """The catalog law named by `law`, or the law file `law_file` (e.g. written by `planner fit`)."""
    if req.law_file is None:
        return catalog.law(req.law)
    from pathlib import Path

    from planner.yamlio import load_model

    return load_model(Law, Path(req.law_file))


def _apply_model(name: str, req: PlanRequest, catalog: Catalog):
    """Resolve the model `name` (the request's `model`) into `params` (dense: from its shape; MoE: active parameters)."""
    model = catalog.model(name)
    if model.kind == "clip":
        if req.samples is None:
            raise PlannerError(f"{model.name} is a CLIP model: give {{samples}} (samples seen)", "model", refs=("samples",))
        return model, req
    if req.samples is not None:
        raise PlannerError(f"is for CLIP models; {model.name} is a language model (give {{tokens}})", "samples", refs=("tokens",))
    return model, req.model_copy(update={"params": [model.active_params], "model": None})


def make_plan(req: PlanRequest, catalog: Catalog) -> Plan:
    """The plan of `req`: law → compute-optimal (or given) parameters and tokens → hardware FLOPs →
    hours, energy and charge on the hardware, each with its 80% range."""
    model = None
    if req.model is not None:
        model, req = _apply_model(req.model, req, catalog)
        if model.kind == "clip":
            return plan_clip(req, catalog, model)
    law = law_for(req, catalog)
    hw = resolve_hardware(req, catalog)
    rs = run_shape(model, req.seq_len, req.flops_convention)
    kind = req.budget_kind
    est: mfu.MfuEstimate | None = None
    inference: Inference | None = None
    budget_value = getattr(req, kind, None) if kind in BUDGETS else None
    budget_hw_flops = None

    def mfu_at(hw: Hardware, n: float) -> mfu.MfuEstimate:
        return mfu_for(hw, catalog, n, req.mfu, rs.workload, req.mfu_basis, rs.seq_len, req.stack)

    if kind in ("gpu_hours", "node_hours", "days"):
        assert hw is not None  # resolve_hardware refuses hours without a cluster or an accelerator
        hours = _budget_gpu_hours(req, hw)
        # MFU and the attention share depend on model size, and model size on compute: iterate to the fixed point.
        n = float(law.optimal_params(float(cost.flops_from_gpu_hours(hours, hw.peak, 0.4))))
        for _ in range(100):
            require_run(n, 1.0)  # a law's size for the hours far outside float range breaks the MFU and the FLOPs
            est = mfu_at(hw, n)
            budget_hw_flops = float(cost.flops_from_gpu_hours(hours, hw.peak, est.value)) * req.goodput
            n_next, d, inference = _allocate(law, budget_hw_flops * rs.law_share(n), req)
            if abs(n_next / n - 1.0) < 1e-12:
                break
            n = n_next
        n = n_next
        budget_value = req.gpu_hours or req.node_hours or req.days
    elif kind == "flops":
        assert req.flops is not None  # budget_kind names a budget that is given
        n, d, inference = _allocate(law, req.flops, req)
    elif kind == "target_loss":
        assert req.target_loss is not None  # budget_kind names a budget that is given
        target_flops = law_compute_for_loss(law, req.target_loss, req.tokens_per_param)
        n, d, inference = _allocate(law, target_flops, req, req.target_loss if req.inference_tokens is not None else None)
    elif kind == "fixed":
        # tokens are given; _one_question (or _apply_model, for a model) gives one params value with them
        assert req.params is not None and req.tokens is not None
        n, d = req.params[0], req.tokens
    else:  # compute-optimal tokens for a given size
        if req.unique_tokens is not None or req.inference_tokens is not None:
            raise PlannerError("needs a budget: {params} alone asks for compute-optimal tokens", "unique_tokens" if req.unique_tokens
                               is not None else "inference_tokens", refs=("params",))
        assert req.params is not None  # _one_question: no budget and no tokens leaves params (or _apply_model set them)
        n = req.params[0]
        d = n * req.tokens_per_param if req.tokens_per_param is not None else float(law.flops_for_params(n)) / (6.0 * n)
    require_run(n, d)
    law_flops = float(cost.training_flops(n, d))
    flops = rs.flops(n, d)
    convention = rs.convention

    warnings: list[PlannerWarning] = []
    if hw is not None:
        est = est or mfu_at(hw, n)
    costs = hardware_costs(flops, n, hw, catalog, est, warnings, req.mfu, workload=rs.workload, goodput=req.goodput,
                           pue=req.pue, grid_gco2_per_kwh=req.grid_intensity, price=given_price(req.price_per_gpu_hour, req.currency))
    ranges: dict = {"interval_level": costs.interval_level}
    if budget_hw_flops is not None and est is not None:
        costs, budget_ranges = _budget_intervals(costs, law, req, rs, est, budget_hw_flops, n)
        ranges.update(budget_ranges)
    ranges.update(_law_intervals(n, d, law_flops, law, req, kind, est if budget_hw_flops is not None else None,
                                 ranges["interval_level"]))
    memory = memory_check(model if model is not None else n, hw, catalog, warnings, req.seq_len)
    warnings += partition_warnings(hw, costs.wall_clock_hours)
    loss = _loss(law, n, d, req.unique_tokens)
    warnings += run_batch_warnings(hw, rs, d, loss)
    data_constrained = None
    if req.unique_tokens is not None:
        n_eff, d_eff = law.effective(n, d, req.unique_tokens)
        terms = law.data_constrained
        assert terms is not None  # law.effective refuses a law without data-constrained terms
        data_constrained = DataConstrained(
            unique_tokens=req.unique_tokens, epochs=d / req.unique_tokens, effective_tokens=float(d_eff),
            effective_params=float(n_eff),
            method="Muennighoff et al. 2023: repeated tokens decay with R_D* = "
            f"{terms.R_D_star.value:g}, excess parameters with R_N* = {terms.R_N_star.value:g}")
    if inference is not None and kind in ("gpu_hours", "node_hours", "days", "flops"):
        warnings.append(PlannerWarning(
            "budget", "inference-aware sizing trains longer than the budget: training needs "
            f"{flops / _budget_flops(req, hw, costs.mfu):.3g}x the budget's FLOPs to match the compute-optimal loss"
        ))
    warnings += regulatory_warnings(max(flops, law_flops))
    ext = law.extrapolation(law_flops)
    if ext:
        warnings.append(ext)
    if law.params_counted == "non-embedding":
        warnings.append(PlannerWarning("law.counting", f"law '{law.name}' counts non-embedding parameters; N here excludes embeddings"))
    if rs.workload == "moe":
        warnings.append(PlannerWarning("law.moe", "the law is for dense models; it is applied here to the MoE's active parameters"))
    if flops / law_flops > 1.2:  # the law counts 6ND: long sequences on narrow models add a lot more
        warnings.append(PlannerWarning("flops", f"{convention} FLOPs are {flops / law_flops:.3g}x the law's 6ND count ({law_flops:.3g})"))
    sources = {"law": f"{law.citation}"}
    sources["flops_convention"] = cost.FLOPS_CONVENTIONS[convention]
    if hw is not None:
        sources.update(hw.sources)
    if est is not None and est.sources:
        sources["mfu"] = "; ".join(est.sources)
    if costs.cost is not None and costs.cost.status != "given":
        sources["price"] = costs.cost.source
    attention = convention in cost.ATTENTION_CONVENTIONS
    return checked(Plan(
        params=n, tokens=d, flops=flops, flops_convention=convention, flops_gopher_units=law_flops / cost.GOPHER_FLOPS,
        predicted_loss=loss, law=law.name, budget=Budget(kind, budget_value), costs=costs,
        sources=sources, warnings=tuple(warnings), provenance=catalog.provenance(), tokens_per_param=d / n,
        seq_len=rs.seq_len if attention else None, shape_basis=rs.note if attention else None, flops_6nd=law_flops,
        law_form=law.form, params_counted=law.params_counted, memory=memory, data_constrained=data_constrained,
        inference=inference, overtraining=overtraining(law, n, d) if req.tokens_per_param is not None else None, **ranges))


def _budget_intervals(costs: Costs, law: Law, req: PlanRequest, rs: RunShape, est: mfu.MfuEstimate,
                      budget_hw_flops: float, params: float) -> tuple[Costs, dict]:
    """A budget in hours fixes the hours: the throughput uncertainty moves into the compute the
    budget buys, and through the law into the model size and tokens."""
    costs = costs._replace(gpu_hours_interval=None, node_hours_interval=None, wall_clock_hours_interval=None,
                           energy_kwh_interval=None, charge=costs.charge._replace(interval=None) if costs.charge else None,
                           cost=costs.cost._replace(interval=None) if costs.cost else None)
    factors = est.interval_factors(costs.interval_level or INTERVAL_LEVEL)
    if factors is None or req.inference_tokens is not None:
        return costs, {}
    share = rs.law_share(params)
    bounds = (budget_hw_flops / factors[1], budget_hw_flops / factors[0])  # costlier than estimated -> less compute
    alloc = [_allocate(law, c * share, req)[:2] for c in bounds]
    return costs, {"flops_interval": bounds, "params_interval": (alloc[0][0], alloc[1][0]),
                   "tokens_interval": (alloc[0][1], alloc[1][1])}


def _law_intervals(params: float, tokens: float, flops_6nd: float, law: Law, req: PlanRequest, kind: str,
                   throughput_est: mfu.MfuEstimate | None, level: float | None) -> dict:
    """Intervals from a fitted law's bootstrap draws (none for data-constrained, inference-aware or
    target-loss plans, whose allocation the draws do not describe)."""
    if req.unique_tokens is not None or req.inference_tokens is not None or req.tokens_per_param is not None \
            or kind == "target_loss":
        return {}
    level = level or INTERVAL_LEVEL
    errors = throughput_est.errors if throughput_est is not None else None
    found = law_draw_intervals(law, params, tokens, flops_6nd, kind in ("fixed", "params"), errors, level)
    if not found:
        return {}
    ranges = {key: tuple(value) if isinstance(value, list) else value for key, value in found.items()}
    return {**ranges, "interval_level": level}


def _budget_flops(req: PlanRequest, hw: Hardware | None, mfu_value: float | None) -> float:
    if req.flops is not None:
        return req.flops
    # an hours budget: resolve_hardware refused it without hardware, and hardware_costs gave the MFU
    assert hw is not None and mfu_value is not None
    return float(cost.flops_from_gpu_hours(_budget_gpu_hours(req, hw), hw.peak, mfu_value)) * req.goodput


def plan_clip(req: PlanRequest, catalog: Catalog, model) -> Plan:
    """The cost of a CLIP run: 6 × GMACs per sample × samples, at the CLIP MFU profile."""
    hw = resolve_hardware(req, catalog)
    assert req.samples is not None  # _apply_model: a CLIP model needs its samples seen
    run = clip_run(model.gmacs_per_sample.value)
    flops = run.flops(model.params, req.samples)
    warnings: list[PlannerWarning] = []
    if req.seq_len is not None:
        warnings.append(PlannerWarning("flops", "a sequence length does not apply to a CLIP run (its FLOPs are 6 × GMACs per "
                                       "sample × samples)"))
    est = mfu_for(hw, catalog, model.params, req.mfu, "clip", req.mfu_basis, None, req.stack) if hw is not None else None
    costs = hardware_costs(flops, model.params, hw, catalog, est, warnings, req.mfu, workload="clip", goodput=req.goodput,
                           pue=req.pue, grid_gco2_per_kwh=req.grid_intensity, price=given_price(req.price_per_gpu_hour, req.currency))
    warnings += partition_warnings(hw, costs.wall_clock_hours) + regulatory_warnings(flops)
    sources = {"flops_convention": cost.FLOPS_CONVENTIONS["clip"], "gmacs_per_sample": model.cite(model.gmacs_per_sample)}
    if hw is not None:
        sources.update(hw.sources)
        if est is not None and est.sources:
            sources["mfu"] = "; ".join(est.sources)
        if costs.cost is not None and costs.cost.status != "given":
            sources["price"] = costs.cost.source
    return checked(Plan(
        params=model.params, tokens=None, flops=flops, flops_convention="clip", flops_gopher_units=flops / cost.GOPHER_FLOPS,
        predicted_loss=None, law=None, budget=Budget("fixed", None), costs=costs, sources=sources,
        warnings=tuple(dict.fromkeys(warnings)), provenance=catalog.provenance(), interval_level=costs.interval_level,
        model=model.name, samples=req.samples, gmacs_per_sample=model.gmacs_per_sample.value))


def _loss(law: Law, n: float, d: float, unique_tokens: float | None) -> float | None:
    value = law.predict_loss(n, d, unique_tokens)
    return None if value is None else float(value)
