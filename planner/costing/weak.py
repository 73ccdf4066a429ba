"""Weak scaling beside strong scaling: the work per node stays fixed while the node count grows (GCS and
EuroHPC ask for both).

The work of one node is what the run gives each node at the smallest count that holds the model: its
tokens (or samples) per node, and, with a global batch, its share of each optimizer step. At n nodes the
job processes n times that; the time it takes comes from the same throughput model as the strong-scaling
table (`strong_scaling`: the plan of the run at each node count, its MFU profile at that GPU count).

Definitions (HPC Wiki, "Scaling", https://hpc-wiki.info/hpc/Scaling): with T(n) the time on n nodes,
strong-scaling efficiency is T(n₁)·n₁ / (T(n)·n) for a fixed problem; weak-scaling efficiency is
T(n₁) / T(n) for a fixed problem per node (1 when the time stays flat).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Required, TypedDict

from planner.costing.scaling import ScalingTable
from planner.report.output import Column, human

DEFINITIONS = ("strong-scaling efficiency = T(n₁)·n₁ / (T(n)·n) for the fixed run; weak-scaling efficiency = T(n₁) / T(n) "
               "for fixed work per node (HPC Wiki, Scaling, https://hpc-wiki.info/hpc/Scaling)")


class WeakRow(TypedDict, total=False):
    """One node count of a weak-scaling table: fixed work per node, the job's work grows with the nodes."""

    nodes: Required[int]
    gpus: Required[int]
    amount: Required[float]  # tokens or samples of the whole job: the work per node × nodes
    global_batch: Required[float | None]  # tokens or samples per step: the batch per node × nodes
    throughput: Required[float]
    throughput_per_node: Required[float]
    wall_hours: Required[float]
    seconds_per_step: Required[float | None]
    efficiency: Required[float]


@dataclass(frozen=True)
class WeakScalingTable:
    """Weak scaling derived from a strong-scaling table's throughputs (the counts that hold the model)."""

    unit: str
    work_per_node: float  # tokens or samples per node for the whole run
    batch_per_node: float | None  # tokens or samples per node per optimizer step
    baseline_nodes: int | None
    rows: tuple[WeakRow, ...]
    experiment: str | None = None

    def record(self) -> dict:
        return {"unit": self.unit, "work_per_node": self.work_per_node, "batch_per_node": self.batch_per_node,
                "baseline_nodes": self.baseline_nodes, "rows": list(self.rows), "experiment": self.experiment}


def weak_scaling(strong: ScalingTable) -> WeakScalingTable:
    """The weak-scaling table of the run `strong` varies: each node keeps the work it has at the smallest
    count that holds the model, so the job's tokens (and global batch) grow with the node count."""
    held = [r for r in strong.rows if r["fits"] is not False]
    if not held:
        return WeakScalingTable(strong.unit, 0.0, None, None, (), strong.experiment)
    first = held[0]
    per_node = strong.run.amount / first["nodes"]
    batch = strong.run.global_batch / first["nodes"] if strong.run.global_batch else None
    rows: list[WeakRow] = []
    for r in held:
        n = r["nodes"]
        wall = per_node * n / r["throughput"] / 3600.0
        rows.append({"nodes": n, "gpus": r["gpus"], "amount": per_node * n, "global_batch": batch * n if batch else None,
                     "throughput": r["throughput"], "throughput_per_node": r["throughput"] / n, "wall_hours": wall,
                     "seconds_per_step": batch * n / r["throughput"] if batch else None, "efficiency": 0.0})
    base_wall = rows[0]["wall_hours"]
    for row in rows:
        row["efficiency"] = base_wall / row["wall_hours"]
    return WeakScalingTable(strong.unit, per_node, batch, first["nodes"], tuple(rows), strong.experiment)


WEAK_COLUMNS = [Column("nodes", "nodes"), Column("gpus", "GPUs"), Column("amount", "{unit} (job)", "count"),
                Column("global_batch", "{unit}/step", "count"), Column("throughput", "{unit}/s", "count"),
                Column("throughput_per_node", "{unit}/s per node", "count"), Column("seconds_per_step", "s/step", "float"),
                Column("wall_hours", "wall-h (run)", "hours"), Column("efficiency", "weak efficiency", "fraction")]


def weak_columns(table: WeakScalingTable) -> list[Column]:
    cols = WEAK_COLUMNS if table.batch_per_node is not None else [
        c for c in WEAK_COLUMNS if c.key not in ("global_batch", "seconds_per_step")]
    return [Column(c.key, c.header.format(unit=table.unit), c.kind) for c in cols]


def weak_notes(table: WeakScalingTable) -> list[str]:
    """What the weak-scaling table means, and why its prediction cannot differ from the strong one."""
    if not table.rows:
        return ["no node count holds the model: no weak-scaling table"]
    per_step = (f" and {human(table.batch_per_node, 'count')} {table.unit} per optimizer step" if table.batch_per_node else "")
    return [f"fixed work per node: {human(table.work_per_node, 'count')} {table.unit} per node for the run{per_step}, as at "
            f"{table.baseline_nodes} node{'s' if table.baseline_nodes != 1 else ''}; the job's {table.unit} grow with the nodes",
            DEFINITIONS,
            "predicted from the same MFU profile at each GPU count as the strong-scaling table: the planner's throughput "
            "depends on the GPU count, not on the batch per GPU, so predicted weak and strong efficiency agree; "
            "a weak-scaling benchmark (fixed batch per node) is what tells them apart"]
