"""Arrays that stay arrays: `nodes: auto` picks each run's nodes from a small ladder of node counts, so
runs of similar size share a job array instead of each getting its own 209, 220, 223, ... nodes.

A run's rung is the smallest rung at least the nodes the un-rounded design gives it (the fewest that
hold the model, and with target_hours the fewest that also finish within it). `powers-of-two` is
1, 2, 4, ... up to the partition's node limit, with the limit itself as the top rung (a run the limit
turns into a chain still gets a rung); a list is the user's own rungs. Runs of one array (same nodes and
segments) share its longest time limit: Slurm charges the time used, not the limit, so a longer limit
costs queue priority under backfill, not compute.

What rounding costs is measured against the un-rounded design, both costed by `hardware_costs`:
- charged: node-hours (and GPU-hours) the estimate gives on the rung minus on the un-rounded node
  count. More nodes finish sooner; the compute charged grows only as throughput per GPU falls
  with the GPU count (MFU), which is what this counts.
- reserved: nodes × segments × time limit minus the same for the un-rounded design (with its own time limit
  per run): the allocation the scheduler must find, idle once a run ends early; not charged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner.costing.hardware import Hardware, hardware_costs
from planner.errors import PlannerError, located
from planner.records import Record

if TYPE_CHECKING:
    from planner.catalog import Catalog, Cluster
    from planner.sweep.design import Array, Run
    from planner.sweep.spec import Source, SweepSpec

POWERS_OF_TWO = "powers-of-two"
NO_LADDER = "none"


def fewest_nodes(params: int, cluster: Cluster, catalog: Catalog, src: Source) -> int:
    """`nodes: auto`: the fewest nodes that hold a model of `params` for training (an assumed shape)."""
    from planner.costing.layout import min_nodes

    with located(src, "nodes"):
        fit = min_nodes(float(params), cluster, catalog.accelerator(cluster.accelerator))
    if fit is None:
        raise src.error(("nodes",), f"a model of {params:.3g} parameters does not fit on any node count of {cluster.name}")
    return fit.units


def nodes_within(spec: SweepSpec, target_hours: float, params: int, flops: float, nodes: int, catalog: Catalog,
                 cap: int, hardware_at: Callable[[int], Hardware]) -> int:
    """The fewest nodes (at least `nodes`) on which the run's estimate fits in `target_hours`; the
    partition's node limit `cap` caps it, and the run then becomes a chain."""
    for _ in range(20):  # MFU falls slowly with GPU count: rescaling converges in a step or two
        hw = hardware_at(nodes)
        hours = hardware_costs(flops, float(params), hw, catalog, None, [], spec.mfu, basis=spec.mfu_basis,
                               seq_len=spec.seq_len, stack=spec.stack).wall_clock_hours
        assert hours is not None  # on a number of nodes a run has a wall-clock
        if hours <= target_hours or nodes >= cap:
            return nodes
        nodes = min(cap, max(nodes + 1, math.ceil(nodes * hours / target_hours)))
    return nodes


def rungs(ladder: str | Sequence[int], max_nodes: int) -> tuple[int, ...] | None:
    """The node counts a `nodes: auto` run may get (None: any count, the un-rounded design)."""
    if ladder == NO_LADDER:
        return None
    if isinstance(ladder, str):
        assert ladder == POWERS_OF_TWO, ladder  # the spec admits no other name
        return tuple(sorted({2 ** k for k in range(max_nodes.bit_length()) if 2 ** k <= max_nodes} | {max_nodes}))
    over = [n for n in ladder if n > max_nodes]
    if over:
        raise PlannerError(f"rung {over[0]} is above the {max_nodes}-node limit of the partition", "node_ladder")
    return tuple(sorted(set(ladder)))


def rung_for(nodes: int, ladder: tuple[int, ...], run_id: str) -> int:
    """The smallest rung of at least `nodes`."""
    for rung in ladder:
        if rung >= nodes:
            return rung
    raise PlannerError(f"run {run_id} needs {nodes} nodes, more than the largest rung ({ladder[-1]}); add a rung of "
                       f"at least {nodes}, or use powers-of-two", "node_ladder")


def array_key(run: Run, share_time: bool) -> tuple[int, int, int]:
    """Runs with equal keys share an array: nodes, time limit (unless the array's longest is shared), segments."""
    return (run.nodes, 0 if share_time else run.time_minutes, run.segments)


@dataclass(frozen=True)
class LadderCost(Record):
    """What rounding the runs of one array (or all, `array="total"`) up to their rungs costs."""

    array: str
    runs: int
    rounded: int  # runs whose nodes the ladder raised
    node_hours: float  # charged, beyond the un-rounded design (scaling efficiency)
    gpu_hours: float
    reserved_node_hours: float  # reserved (nodes × segments × --time), beyond the un-rounded design
    unrounded_arrays: int = 0  # total only: the arrays the un-rounded design has


def reserved(nodes: int, segments: int, minutes: int) -> float:
    return nodes * segments * minutes / 60.0


def costs(arrays: Sequence[Array], unrounded: dict[str, Run], unrounded_arrays: int) -> tuple[list[LadderCost], LadderCost]:
    """Per array and in total, the rounded design against the un-rounded one (`unrounded`: run id → the
    same run costed on its un-rounded nodes, with its own time limit)."""
    rows = []
    for a in arrays:
        base = [unrounded[r.run_id] for r in a.runs]
        rows.append(LadderCost(
            a.id, len(a.runs), sum(r.nodes != b.nodes for r, b in zip(a.runs, base, strict=True)),
            sum(r.node_hours for r in a.runs) - sum(b.node_hours for b in base),
            sum(r.gpu_hours for r in a.runs) - sum(b.gpu_hours for b in base),
            sum(reserved(a.nodes, a.segments, a.time_minutes) for _ in a.runs)
            - sum(reserved(b.nodes, b.segments, b.time_minutes) for b in base)))
    total = LadderCost("total", sum(c.runs for c in rows), sum(c.rounded for c in rows), sum(c.node_hours for c in rows),
                       sum(c.gpu_hours for c in rows), sum(c.reserved_node_hours for c in rows), unrounded_arrays)
    return rows, total
