"""Storage lines of a grant proposal: checkpoints, data sets, scratch, and TB-hours where billed."""

from __future__ import annotations

import math

from planner.errors import PlannerWarning
from planner.grant.document import GrantRow, StorageItem, StoragePlan
from planner.grant.programs import Program
from planner.report.output import human

# bf16 weights + fp32 master + two Adam moments (Rajbhandari et al. 2020, ZeRO, arXiv 1910.02054 §3.1:
# 2 + 4 + 4 + 4 bytes; gradients are not saved; derived)
CHECKPOINT_BYTES_PER_PARAM = 14.0
HOURS_PER_MONTH = 8766.0 / 12  # mean Gregorian month, for TB-hours


def storage_tb(stated: float | None, checkpoints: int | None, params: float) -> float:
    """An experiment's storage: as stated, or its checkpoints at 14 bytes per parameter."""
    if stated is not None:
        return stated
    if checkpoints:
        return checkpoints * CHECKPOINT_BYTES_PER_PARAM * params / 1e12
    return 0.0


def storage(p, rows: list[GrantRow], experiments: list, program: Program, cluster: str,
            warnings: list[PlannerWarning]) -> StoragePlan:
    """The storage table of a proposal `p` (`experiments`: those of `rows`, in order): itemised TB, the
    request, and TB-hours where a site bills them."""
    items = [StorageItem(s.name, s.tb, s.note or "stated in the proposal") for s in p.storage]
    for r, exp in zip(rows, experiments, strict=True):
        if r.storage_tb:
            basis = "stated" if exp.storage_tb is not None else (
                f"{exp.checkpoints} checkpoint(s) × 14 B/parameter × {human(r.storage_params, 'count')} parameters")
            items.append(StorageItem(f"checkpoints: {r.name}", r.storage_tb, basis))
    estimated = sum(i.tb for i in items)
    requested = p.storage_tb if p.storage_tb is not None else math.ceil(estimated)
    if p.storage_tb is not None and items and p.storage_tb + 1e-9 < estimated:
        warnings.append(PlannerWarning("storage", f"storage_tb {p.storage_tb:g} TB is less than the {estimated:.3g} TB itemised"))
    basis = ("stated in the proposal (storage_tb)" if p.storage_tb is not None
             else "sum of the items, rounded up" if items else "none stated")
    checkpoint_basis = None
    if any(e.checkpoints for e in experiments):
        checkpoint_basis = ("a restartable checkpoint holds bf16 weights, fp32 master weights and two Adam moments, "
                            "≈ 14 bytes per parameter (derived; framework-dependent, unverified)")
    billed = [rule for rule in program.rules_for(program.storage, cluster) if rule.unit == "tb-hours"]
    tb_hours = tb_hours_basis = tb_hours_source = None
    for rule in billed[-1:]:
        tb_hours = requested * p.months * HOURS_PER_MONTH
        tb_hours_basis = f"{requested:g} TB × {p.months} months × {HOURS_PER_MONTH:g} h"
        tb_hours_source = f"{rule.note or 'storage is billed in TB-hours'} ({program.cite_fact(rule)})"
    return StoragePlan(tuple(items), estimated, requested, basis, checkpoint_basis, tb_hours, tb_hours_basis, tb_hours_source)
