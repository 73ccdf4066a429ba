"""Will it fit? The memory report of one model on one piece of hardware: the layout on the GPUs asked
for (or the fewest that hold it), its per-GPU breakdown, the minimum count, and, when selective
recompute is the default, how far full recompute would go. `planner memory` renders it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.catalog.models import Model
from planner.costing import layout as layouts
from planner.costing.hardware import Hardware
from planner.costing.memory import GIB, Breakdown, Layout, dims_of
from planner.errors import PlannerError


@dataclass(frozen=True)
class MemoryReport:
    label: str  # the model's name, or "7B parameters"
    params: float
    hardware: Hardware
    layout: Layout
    breakdown: Breakdown
    minimum: layouts.NodeFit | None  # the fewest nodes (GPUs without a cluster) that hold it; None: none searched does
    full_recompute: layouts.NodeFit | None  # fewer still with full recompute, when selective was the default

    @property
    def unit(self) -> str:
        return "nodes" if self.hardware.cluster else "GPUs"

    @property
    def gpus(self) -> int:
        return self.layout.gpus

    @property
    def nodes(self) -> int | None:
        per_node = self.hardware.gpus_per_node
        return -(-self.gpus // per_node) if self.hardware.cluster and per_node else None

    @property
    def fits(self) -> bool:
        return self.breakdown.fits

    def record(self) -> dict[str, Any]:
        """The report as JSON shows it (and the table's dotted columns read)."""
        hw = self.hardware
        out: dict[str, Any] = {
            "model": self.label, "params": self.params, "cluster": hw.cluster.name if hw.cluster else None,
            "accelerator": hw.accelerator.name, "gpus": self.gpus, "nodes": self.nodes, "layout": self.layout.model_dump(),
            "grad_dtype": self.layout.gradient_dtype, "layout_text": self.layout.describe(), **self.breakdown.as_dict(),
            "minimum": None, "minimum_unit": self.unit, "minimum_units": None, "minimum_layout": None,
            "notes": list(self.breakdown.notes)}
        if self.minimum is not None:
            out["minimum"] = _count_text(self.minimum, self.unit)
            out["minimum_units"], out["minimum_layout"] = self.minimum.units, self.minimum.layout.model_dump()
        if self.full_recompute is not None:
            out["minimum_full_recompute"] = _count_text(self.full_recompute, self.unit)
        return out

    def refusal(self) -> str:
        """Why the model does not fit where it was asked to, and what would hold it."""
        hw, br, unit = self.hardware, self.breakdown, self.unit
        where = f"{self.gpus} × {hw.accelerator.name}" + (f" ({self.nodes} nodes of {hw.cluster.name})" if hw.cluster else "")
        if self.minimum is not None:
            need = f"needs at least {_plural(unit, self.minimum.units)} ({self.minimum.layout.describe()})"
        else:
            need = f"no count of {unit} up to {'all of ' + hw.cluster.name if hw.cluster else 'a million'} holds it"
        if self.full_recompute is not None:
            need += f" with selective recompute, or {self.full_recompute.units} with full recompute (~33% more compute)"
        return (f"{self.label} does not fit on {where}: {self.layout.describe()} needs "
                f"{br.total / GIB:.1f} GiB per GPU, {br.usable / GIB:.1f} GiB usable "
                f"({hw.accelerator.memory_gb.value:g} GB less {br.margin:.0%} margin); {need}")


def memory_report(model: Model | float, label: str, hw: Hardware, fixed: dict[str, Any], layout: dict[str, Any]) -> MemoryReport:
    """The report for `model` (a catalog model or a bare parameter count) on `hw`. `fixed` holds the
    parallelism the user fixed (tp, pp, zero, fsdp, margin), `layout` the rest of the layout given."""
    minimum = layouts.min_nodes(model, hw.cluster, hw.accelerator, **fixed, **layout)
    if hw.gpus is not None:
        found = layouts.best_layout(model, hw.accelerator, hw.gpus, hw.gpus_per_node, **fixed, **layout)
    else:
        found = minimum or layouts.best_layout(model, hw.accelerator, _all_units(hw) * (hw.gpus_per_node or 1),
                                               hw.gpus_per_node, **fixed, **layout)
    full = None
    if minimum is not None and "recompute" not in layout and minimum.layout.recompute == "selective":
        # selective is preferred; say how far full recompute (+~33% compute) would go
        leaner = layouts.min_nodes(model, hw.cluster, hw.accelerator, **fixed, **{**layout, "recompute": "full"})
        if leaner is not None and leaner.units < minimum.units:
            full = leaner
    params = dims_of(model, layout.get("layers"), layout.get("hidden")).params
    return MemoryReport(label, params, hw, found.layout, found.breakdown, minimum, full)


def _all_units(hw: Hardware) -> int:
    if hw.cluster is not None and hw.cluster.nodes is not None:
        return int(hw.cluster.nodes.value)
    raise PlannerError("no layout fits on any GPU count searched; give {gpus} or {nodes} to see the breakdown",
                       refs=("gpus", "nodes"))


def _plural(unit: str, n: int) -> str:
    return f"{n} {unit[:-1] if n == 1 else unit}"


def _count_text(fit: layouts.NodeFit, unit: str) -> str:
    return f"{_plural(unit, fit.units)} ({fit.layout.describe()})"
