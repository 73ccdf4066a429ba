"""A call's units: how one node-hour on a cluster converts into what the call is requested in.

`UNITS` is the registry: one converter per unit (node-h, gpu-h, core-h, eflop-peak); a program's
`unit: cluster` means the hosting system's own accounting unit. Where the cluster bills in the unit
asked for, its own published factor wins over any derivation (a LUMI "GPU-hour" is one MI250X, 2 GCDs,
not one of the 8 GPUs Slurm shows per node). Adding a unit is a converter and a line in `UNITS` (and
the name in the programs schema's `Unit`); tests/test_grant_units.py checks every entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner.catalog.schema import Cluster, Status
from planner.errors import PlannerError
from planner.records import Record

if TYPE_CHECKING:
    from planner.catalog import Catalog
    from planner.grant.programs import PeakBasis, Program


@dataclass(frozen=True)
class Conversion(Record):
    """How one node-hour on a cluster converts into a unit, and why."""

    unit: str  # node-h | gpu-h | core-h | eflop-peak
    label: str  # column header, e.g. "core-h (48/node-h)"
    per_node_hour: float
    status: Status
    basis: str  # one sentence for the notes


Converter = Callable[[Cluster, "Catalog", "PeakBasis | None", "Program | None"], Conversion]


def _node_hours(cluster: Cluster, catalog: Catalog, peak: PeakBasis | None, program: Program | None) -> Conversion:
    acct = cluster.accounting
    if acct.unit == "node-h":
        return Conversion("node-h", "node-h", acct.units_per_node_hour.value, cluster.status_of(acct.units_per_node_hour),
                          f"{cluster.name} bills node-hours ({cluster.cite(acct.units_per_node_hour)})")
    return Conversion("node-h", "node-h", 1.0, "derived", "node-hours = wall-clock hours × whole nodes allocated")


def _gpu_hours(cluster: Cluster, catalog: Catalog, peak: PeakBasis | None, program: Program | None) -> Conversion:
    g = cluster.gpus_per_node.value
    return Conversion("gpu-h", "gpu-h", g, "derived",
                      f"{cluster.name} bills in {cluster.accounting.unit}; GPU-hours here count the {g:g} GPUs per node Slurm shows")


def _core_hours(cluster: Cluster, catalog: Catalog, peak: PeakBasis | None, program: Program | None) -> Conversion:
    c = cluster.cpu_cores_per_node.value
    return Conversion("core-h", "core-h", c, "derived",
                      f"{cluster.name} bills in {cluster.accounting.unit}; core-hours here count its {c:g} physical cores per node")


def _eflop_at_peak(cluster: Cluster, catalog: Catalog, peak: PeakBasis | None, program: Program | None) -> Conversion:
    if peak is None:
        raise PlannerError("an EFLOP unit needs the program's peak_basis")
    acc = catalog.accelerator(cluster.accelerator)
    per_node = acc.peak_flops(peak.dtype) * cluster.gpus_per_node.value
    status = program.status_of_fact(peak) if program else "unverified"
    basis = (f"EFLOP = node-hours × {cluster.gpus_per_node.value:g} × {acc.peak_flops(peak.dtype) / 1e12:g} TFLOP/s "
             f"({peak.dtype} peak of {acc.name}) × 3600 s / 1e18 = {per_node * 3600 / 1e18:.4g} EFLOP per node-hour "
             f"({status}: which peak the call applies" + (f"; {peak.note}" if peak.note else "") + ")")
    if peak.alternative:
        alt = acc.peak_flops(peak.alternative) * cluster.gpus_per_node.value
        basis += (f"; at the {peak.alternative} peak the same hours would be {alt * 3600 / 1e18:.4g} EFLOP per "
                  f"node-hour ({alt / per_node:.3g}×)")
    return Conversion("eflop-peak", f"EFLOP ({peak.dtype} peak)", per_node * 3600 / 1e18, status, basis)


UNITS: dict[str, Converter] = {"node-h": _node_hours, "gpu-h": _gpu_hours, "core-h": _core_hours, "eflop-peak": _eflop_at_peak}


def conversion(unit: str, cluster: Cluster, catalog: Catalog, peak: PeakBasis | None = None,
               program: Program | None = None) -> Conversion:
    """Node-hours → `unit` on `cluster` (`cluster`: the cluster's own unit)."""
    acct = cluster.accounting
    if unit == "cluster":
        unit = acct.unit
    if unit != "node-h" and unit == acct.unit:
        return _billed(unit, cluster)
    if unit not in UNITS:
        raise PlannerError(f"unknown unit '{unit}' (known: {', '.join([*UNITS, 'cluster'])})", "unit")
    return UNITS[unit](cluster, catalog, peak, program)


def _billed(unit: str, cluster: Cluster) -> Conversion:
    """The cluster's own published factor for the unit it bills in."""
    acct = cluster.accounting
    f = acct.units_per_node_hour
    status = cluster.status_of(f)
    basis = f"{cluster.name} charges {f.value:g} {unit} per node-hour ({status}: {cluster.cite(f)})"
    if f.note:
        basis += f"; {f.note}"
    label: str = unit
    if unit == "gpu-h" and f.value != cluster.gpus_per_node.value:
        ratio = cluster.gpus_per_node.value / f.value
        label = "billed GPU-h"
        basis += (f". Slurm shows {cluster.gpus_per_node_int} GPUs per node, but a node-hour is billed as {f.value:g} "
                  f"GPU-hours: one billed GPU-hour = {ratio:g} Slurm GPU-hours"
                  + (f" ({' '.join(acct.note.split()).rstrip('.')})" if acct.note else ""))
    return Conversion(unit, label, f.value, status, basis)
