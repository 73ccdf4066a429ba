"""A Chinchilla-Table-3-style projection: compute-optimal FLOPs, tokens and hours for a list of sizes."""

from __future__ import annotations

import math

import numpy as np

from planner.catalog import Catalog
from planner.costing import cost
from planner.costing.hardware import hardware_costs
from planner.costing.mfu_basis import mfu_for
from planner.costing.money import given_price
from planner.costing.plan import PlanRequest, law_for, resolve_hardware
from planner.costing.results import require_finite
from planner.costing.runs import run_shape
from planner.errors import PlannerWarning


def project(req: PlanRequest, catalog: Catalog) -> dict:
    """A Chinchilla-Table-3-style projection: compute-optimal FLOPs and tokens for each size in the request's params
    (or, with a token multiplier, M tokens per parameter)."""
    law = law_for(req, catalog)
    hw = resolve_hardware(req, catalog)
    rs = run_shape(None, req.seq_len, req.flops_convention)
    params = np.array(req.params, dtype=float)
    if req.tokens_per_param is not None:
        tokens = params * req.tokens_per_param
        flops = 6.0 * params * tokens
    else:
        flops = law.flops_for_params(params)
        tokens = flops / (6.0 * params)
    losses = law.predict_loss(params, tokens)
    warnings: list[PlannerWarning] = []
    rows = []
    for i, n in enumerate(params):
        row = {
            "params": float(n),
            "flops": float(flops[i]),
            "flops_gopher_units": float(flops[i] / cost.GOPHER_FLOPS),
            "tokens": float(tokens[i]),
            "tokens_per_param": float(tokens[i] / n),
            "predicted_loss": None if losses is None else float(losses[i]),
        }
        if hw is not None:
            hw_flops = rs.flops(float(n), float(tokens[i]))
            est = mfu_for(hw, catalog, float(n), req.mfu, rs.workload, req.mfu_basis, rs.seq_len, req.stack)
            costs = hardware_costs(hw_flops, float(n), hw, catalog, est, warnings, req.mfu, goodput=req.goodput,
                                   price=given_price(req.price_per_gpu_hour, req.currency)).record()
            row.update({k: costs[k] for k in ("mfu", "goodput", "gpu_hours", "gpu_hours_interval", "node_hours",
                                              "wall_clock_days", "energy_kwh", "mfu_kind", "interval_level", "cost")})
            row["hardware_flops"] = hw_flops
        rows.append(row)
    for row in rows:  # before the warnings: they take logs of the compute
        require_finite(row)
    beyond = [(float(n), float(c)) for n, c in zip(params, flops, strict=True) if law.extrapolation(float(c))]
    if beyond:
        worst = max(beyond, key=lambda nc: abs(math.log(nc[1])))
        warnings.append(PlannerWarning("law.range", f"{len(beyond)} of {len(rows)} rows lie more than 10x outside the compute "
                                       f"law '{law.name}' was fitted on; e.g. {law.extrapolation(worst[1])}"))
    meta = {
        "law": law.name,
        "law_form": law.form,
        "flops_convention": "6ND" if hw is None else f"6ND (law compute); hours from {rs.convention}",
        "accelerator": hw.accelerator.name if hw else None,
        "cluster": hw.cluster.name if hw and hw.cluster else None,
        "gpus": hw.gpus if hw else None,
        "sources": {"law": law.citation, "flops_convention": cost.FLOPS_CONVENTIONS["6ND" if hw is None else rs.convention],
                    **(hw.sources if hw else {})},
        "shape_basis": rs.note if hw is not None else None,
        "warnings": list(dict.fromkeys(warnings)),
        "provenance": catalog.provenance(),
    }
    return {"rows": rows, **meta}
