"""Strong scaling of one fixed run, as grant reviewers ask for it: node count, throughput, time per
step, speed-up and parallel efficiency relative to the smallest count that holds the model.

Predicted rows come from the planner's own chain (`make_plan` at each node count: the MFU profile
at that GPU count, the memory check), so each row equals the plan of the run on that many nodes.
A prediction is not evidence: measured rows (the user's benchmark, tokens or samples per second at
each node count) are shown beside it, with the MFU they imply, and are what a proposal should cite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Required, TypedDict

from pydantic import Field

from planner.catalog import Catalog, Strict
from planner.costing.plan import PlanRequest, make_plan
from planner.errors import PlannerError, PlannerWarning, Topic
from planner.numbers import Positive
from planner.report.output import Column, human, provenance_note

# a scaling table shows no charge, energy or loss, and says itself which counts cannot hold the model
OFF_TOPIC: frozenset[Topic] = frozenset({"charge", "energy", "law.range", "memory.short", "partition"})  # rows, not runs
MAX_COUNTS = 24  # node counts in one table: more is not a table a reviewer reads


class Measurement(Strict):
    """One benchmark point: the whole job's throughput (tokens/s; samples/s for CLIP) on `nodes` nodes."""

    nodes: int = Field(ge=1)
    throughput: Positive


def default_node_counts(first: int, last: int | None, limit: int | None) -> list[int]:
    """Doublings from the smallest count that fits up to `last` (included), or 32× the smallest."""
    last = last if last is not None else first * 32
    if limit is not None:
        last = min(last, limit)
    counts: list[int] = []
    n = first
    while n < last and len(counts) < MAX_COUNTS - 1:
        counts.append(n)
        n *= 2
    return counts + [max(last, first)]


class ScalingRow(TypedDict, total=False):
    """One node count of a strong-scaling table: predicted, and measured where a benchmark gives it."""

    nodes: Required[int]
    gpus: Required[int]
    fits: Required[bool | None]
    layout: Required[str | None]
    mfu: Required[float | None]
    wall_hours_interval: Required[list[float] | None]
    throughput: Required[float]
    wall_hours: Required[float]
    seconds_per_step: Required[float | None]
    measured_throughput: float
    measured_mfu: float
    measured_seconds_per_step: float | None
    measured_wall_hours: float
    speedup: float  # against the smallest count that holds the model
    efficiency: float
    measured_speedup: float  # against the smallest count measured
    measured_efficiency: float


@dataclass(frozen=True)
class ScalingRun:
    """The one run a strong-scaling table varies the node count of."""

    model: str | None
    params: float
    unit: str  # "tokens" or "samples"
    amount: float  # tokens or samples seen
    flops: float
    flops_convention: str
    cluster: str
    accelerator: str | None
    global_batch: float | None  # tokens or samples per optimizer step

    def record(self) -> dict:
        return {"model": self.model, "params": self.params, self.unit: self.amount, "flops": self.flops,
                "flops_convention": self.flops_convention, "cluster": self.cluster, "accelerator": self.accelerator,
                "global_batch": self.global_batch}


@dataclass(frozen=True)
class ScalingTable:
    """Strong scaling of one run: a row per node count (predicted; measured where a benchmark gives it)."""

    run: ScalingRun
    rows: tuple[ScalingRow, ...]
    mfu_basis: str | None
    mfu_kind: str | None
    measured: bool
    baseline_nodes: int | None  # the smallest count that holds the model: speed-up 1
    warnings: tuple[PlannerWarning, ...]
    provenance: dict
    experiment: str | None = None  # in a grant proposal: the experiment it is evidence for,
    source: str | None = None  # and where the measurements come from

    @property
    def unit(self) -> str:
        return self.run.unit

    def record(self) -> dict:
        out = {"run": self.run.record(), "unit": self.unit, "rows": list(self.rows), "mfu_basis": self.mfu_basis,
               "mfu_kind": self.mfu_kind, "measured": self.measured, "baseline_nodes": self.baseline_nodes,
               "warnings": list(self.warnings), "provenance": self.provenance}
        if self.experiment is not None:
            out.update(experiment=self.experiment, source=self.source)
        return out


def strong_scaling(base: PlanRequest, catalog: Catalog, node_counts: list[int] | None = None,
                   measured: Sequence[Measurement] = (), global_batch: float | None = None,
                   up_to: int | None = None) -> ScalingTable:
    """Predicted (and measured, when given) strong scaling of the run `base` describes.

    `base` is a fixed run: params with tokens, or a model with tokens or samples, on a cluster.
    Without `node_counts`: doublings from the smallest count that fits up to `up_to` (or 32× it).
    `global_batch` (tokens or samples per optimizer step) turns throughput into seconds per step.
    """
    if base.cluster is None:
        raise PlannerError("strong scaling is over node counts: give {cluster}", refs=("cluster",))
    if base.budget_kind != "fixed" and not (base.model and (base.tokens or base.samples)):
        raise PlannerError("strong scaling needs one fixed run: {params} with {tokens}, or {model} with {tokens} or {samples}",
                           refs=("params", "tokens", "model", "samples"))
    if node_counts is not None:
        node_counts = check_counts(list(node_counts))
    if global_batch is not None and (isinstance(global_batch, bool) or not isinstance(global_batch, (int, float))
                                     or not (math.isfinite(global_batch) and global_batch > 0)):
        raise PlannerError(f"must be a positive number of tokens or samples per step, got {global_batch!r}", "global_batch")
    cluster = catalog.cluster(base.cluster)
    base = base.model_copy(update={"nodes": None, "gpus": None})  # one plan per node count
    limit = int(cluster.nodes.value) if cluster.nodes is not None else None
    if node_counts is None:
        first = _smallest_that_fits(base, catalog)
        node_counts = default_node_counts(first, up_to, limit)
    counts = sorted(set(node_counts) | {m.nodes for m in measured})
    if len(counts) > MAX_COUNTS:
        raise PlannerError(f"{len(counts)} node counts: give at most {MAX_COUNTS}", "nodes")
    if limit is not None and counts[-1] > limit:
        raise PlannerError(f"{counts[-1]} nodes exceed the {limit} nodes of {cluster.name}", "nodes")
    if len({m.nodes for m in measured}) != len(measured):
        raise PlannerError("two measurements for the same node count; give one (e.g. the median)", "measured")

    plans = [make_plan(base.model_copy(update={"nodes": n}), catalog) for n in counts]
    unit = "samples" if plans[0].samples else "tokens"
    items = plans[0].samples or plans[0].tokens
    assert items is not None  # one fixed run (checked above): a CLIP model's samples, else tokens
    if global_batch is not None and global_batch > items:
        raise PlannerError(f"{global_batch:.4g} {unit} per step is more than the run's {items:.4g} {unit}: "
                           "it would not finish one optimizer step", "global_batch")
    flops_per_item = plans[0].flops / items
    by_nodes = {m.nodes: m.throughput for m in measured}
    rows: list[ScalingRow] = []
    for n, plan in zip(counts, plans, strict=True):
        c = plan.costs
        # every plan names the cluster and a node count: its GPUs, their peak and the wall-clock are known
        assert c.gpus is not None and c.peak_flops_per_gpu is not None and c.wall_clock_hours is not None
        throughput = items / (c.wall_clock_hours * 3600.0)
        interval = list(c.wall_clock_hours_interval) if c.wall_clock_hours_interval else None
        row: ScalingRow = {"nodes": n, "gpus": c.gpus, "fits": plan.memory.fits if plan.memory else None,
                           "layout": plan.memory.layout if plan.memory else None,
                           "mfu": c.mfu, "wall_hours_interval": interval, "throughput": throughput, "wall_hours": c.wall_clock_hours,
                           "seconds_per_step": global_batch / throughput if global_batch else None}
        if n in by_nodes:
            got = by_nodes[n]
            row["measured_throughput"] = got
            row["measured_mfu"] = got * flops_per_item / (c.gpus * c.peak_flops_per_gpu)
            row["measured_seconds_per_step"] = global_batch / got if global_batch else None
            row["measured_wall_hours"] = items / got / 3600.0
        rows.append(row)
    predicted = [r for r in rows if r["fits"] is not False]
    for r, (speedup, efficiency) in zip(predicted, _relative([(r["nodes"], r["throughput"]) for r in predicted]), strict=True):
        r["speedup"], r["efficiency"] = speedup, efficiency
    benchmarked = [r for r in rows if "measured_throughput" in r]
    for r, (speedup, efficiency) in zip(benchmarked, _relative([(r["nodes"], r["measured_throughput"]) for r in benchmarked]),
                                        strict=True):
        r["measured_speedup"], r["measured_efficiency"] = speedup, efficiency

    # a scaling table shows no charge, energy or loss: their caveats would only distract
    warnings = list(dict.fromkeys(w for p in plans for w in p.warnings if w.topic not in OFF_TOPIC))
    if too_small := [r["nodes"] for r in rows if r["fits"] is False]:
        warnings.append(PlannerWarning("memory.short", f"{_count(too_small)} cannot hold the model (planner memory); their rows "
                                       "are not in the speed-up"))
    if len(rows) > 1 and all(abs(r["efficiency"] - 1.0) < 1e-9 for r in rows if "efficiency" in r):
        warnings.append(PlannerWarning("scaling", "the predicted MFU does not depend on GPU count here, so the predicted "
                                       "efficiency is 100% by construction; only a measurement shows how this run scales"))
    for r in rows:
        if "measured_mfu" in r and r["measured_mfu"] > 1:
            raise PlannerError(f"{r['measured_throughput']:.4g} {unit}/s on {_count([r['nodes']])} is {r['measured_mfu']:.2f}x "
                               f"the peak FLOP/s of {r['gpus']} GPUs; check the unit (whole job, per second)", "measured")
    reference = plans[0]
    run = ScalingRun(base.model, reference.params, unit, items, reference.flops, reference.flops_convention, cluster.name,
                     reference.costs.accelerator, global_batch)
    return ScalingTable(run, tuple(rows), plans[-1].costs.mfu_basis, plans[-1].costs.mfu_kind, bool(measured),
                        next((r["nodes"] for r in rows if r.get("speedup") == 1.0), None), tuple(warnings),
                        catalog.provenance())


def _smallest_that_fits(base: PlanRequest, catalog: Catalog) -> int:
    probe = make_plan(base.model_copy(update={"nodes": 1}), catalog)
    memory = probe.memory
    if memory and memory.min is None:
        raise PlannerError("the model does not fit on any node count of this cluster (planner memory)")
    return int(memory.min) if memory and memory.min is not None else 1


def _relative(throughputs: list[tuple[int, float]]) -> list[tuple[float, float]]:
    """Speed-up and parallel efficiency of each (nodes, throughput) against the first (the smallest count)."""
    if not throughputs:
        return []
    base_nodes, base = throughputs[0]
    out = []
    for nodes, throughput in throughputs:
        speedup = throughput / base
        out.append((speedup, speedup / (nodes / base_nodes)))
    return out


def _count(nodes: list[int]) -> str:
    return ", ".join(str(n) for n in nodes) + (" node" if nodes == [1] else " nodes")


def check_counts(counts: list[int]) -> list[int]:
    if not counts or any(isinstance(n, bool) or not (isinstance(n, int) and n >= 1) for n in counts):
        raise PlannerError("node counts must be whole numbers of at least 1", "nodes")
    if len(set(counts)) > MAX_COUNTS:
        raise PlannerError(f"give at most {MAX_COUNTS} node counts", "nodes")
    return sorted(set(counts))


THROUGHPUT_COLUMNS = ("tokens_per_s", "samples_per_s", "seconds_per_step")


def measurements_from_csv(path, global_batch: float | None = None) -> list[Measurement]:
    """Benchmark rows: a `nodes` column and one of tokens_per_s, samples_per_s (the whole job's
    throughput) or seconds_per_step (with the global batch in tokens or samples per step)."""
    from pathlib import Path

    from planner.fit.data import column, read_csv

    table = read_csv(Path(path))
    given = [c for c in THROUGHPUT_COLUMNS if c in table.header]
    if len(given) != 1:
        raise PlannerError(f"{path}:1: give exactly one of the columns {', '.join(THROUGHPUT_COLUMNS)} "
                           f"(found {', '.join(given) or 'none'}) beside nodes")
    if not table.rows:
        raise PlannerError(f"{path}: no measurements (a header only)")
    nodes = column(table, "nodes")
    values = column(table, given[0])
    if given[0] == "seconds_per_step":
        if global_batch is None:
            raise PlannerError(f"{path}:1: seconds_per_step needs the global batch ({{global_batch}}, tokens or samples per step)",
                               refs=("global_batch",))
        values = global_batch / values
    out = []
    for i, (n, v) in enumerate(zip(nodes, values, strict=True)):
        if n != int(n):
            raise PlannerError(f"{path}:{table.line_of[i]}: nodes: {n:g} is not a whole number")
        out.append(Measurement(nodes=int(n), throughput=float(v)))
    return out


# --- presentation: shared by `planner scaling` and the scaling section of `planner grant` ---------

PREDICTED = [Column("nodes", "nodes"), Column("gpus", "GPUs"), Column("mfu", "MFU", "fraction"),
             Column("throughput", "{unit}/s", "count"), Column("seconds_per_step", "s/step", "float"),
             Column("wall_hours", "wall-h (run)", "hours"), Column("wall_hours_interval", "wall-h, 80% range", "hours"),
             Column("speedup", "speed-up", "ratio"),
             Column("efficiency", "efficiency", "fraction")]
MEASURED = [Column("measured_throughput", "measured {unit}/s", "count"), Column("measured_mfu", "measured MFU", "fraction"),
            Column("measured_speedup", "measured speed-up", "ratio"),
            Column("measured_efficiency", "measured efficiency", "fraction")]


def scaling_columns(table: ScalingTable) -> list[Column]:
    cols = PREDICTED + (MEASURED if table.measured else [])
    if table.run.global_batch is None:
        cols = [c for c in cols if c.key != "seconds_per_step"]
    return [Column(c.key, c.header.format(unit=table.unit), c.kind) for c in cols]


def scaling_notes(table: ScalingTable, how_to_measure: str = "benchmark a few counts and give the measurements",
                  other_basis: str = "the benchmark MFU basis") -> list[str]:
    """What the table means; `how_to_measure` and `other_basis` say how the reader's front end asks for
    measurements and for the tuned-benchmark MFU basis."""
    run = table.run
    what = run.model or f"{human(run.params, 'count')} parameters"
    campaign = table.mfu_kind == "campaign"
    notes = [f"run: {what}, {human(run.amount, 'count')} {table.unit}, {human(run.flops, 'flops')} FLOPs ({run.flops_convention}) "
             f"on {run.cluster} ({run.accelerator}); "
             + ("MFU as realised by published campaigns (restarts and evaluation included)" if campaign
                else "steady state (goodput 1)"),
             f"predicted: each row is the plan of the run on that many nodes; MFU: {table.mfu_basis}",
             f"speed-up and efficiency relative to {_nodes(table.baseline_nodes)}, the smallest count here that holds the model"
             if table.baseline_nodes else "no row holds the model: no speed-up"]
    if table.measured:
        first = next(r["nodes"] for r in table.rows if "measured_throughput" in r)
        notes.append(f"measured: the benchmark given, speed-up relative to {_nodes(first)}, the smallest count measured; "
                     "its MFU = throughput × FLOPs per item / (GPUs × dense peak); cite these rows, not the prediction")
        if campaign:
            notes.append("the predicted rows average over whole campaigns (restarts and evaluation included), a "
                         f"benchmark is steady state: compare it with {other_basis}")
    else:
        source = "published training campaigns" if campaign else "tuned MFU profiles"
        notes.append(f"a prediction from {source}, not evidence: {how_to_measure}")
    return notes + [f"warning: {w}" for w in table.warnings] + provenance_note(table.provenance)


def _nodes(n: int) -> str:
    return f"{n} node" if n == 1 else f"{n} nodes"
