"""What `planner grant` computes, as typed objects: a `GrantDocument` per system (rows, totals, storage,
burn plan, thresholds, method facts) and a `MultiSystemGrant` when a proposal spans several systems.

Renderers (grant.render) and the method paragraph (grant.method) read attributes; JSON is each
object's `record()`, whose keys are the attribute names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from planner.records import Record

if TYPE_CHECKING:  # only for annotations: the program schema imports this module, and must stay light
    from planner.costing.money import Cost
    from planner.costing.scaling import ScalingTable
    from planner.errors import PlannerWarning
    from planner.grant.units import Conversion


@dataclass(frozen=True)
class SweepRun(Record):
    """One run of a sweep experiment (the appendix lists them), hours with the experiment's goodput."""

    experiment: str
    run_id: str
    params: int
    tokens: int
    flops: float
    nodes: int
    mfu: float
    wall_hours: float
    gpu_hours: float
    node_hours: float
    jobs: int


@dataclass(frozen=True, kw_only=True)
class RowCost:
    """An experiment costed on the proposal's system, before it is converted into the call's unit."""

    model: str | None = None
    params: float | None = None
    tokens: float | None = None
    samples: float | None = None
    flops: float | None = None
    flops_convention: str | None = None
    mfu: float | None = None
    mfu_basis: str | None = None
    goodput: float | None = None
    nodes: int | None = None
    nodes_range: tuple[int, int] | None = None
    gpus_per_run: int | None = None
    wall_hours_per_run: float
    node_hours: float
    gpu_hours: float
    charge: float
    run_gpu_hours: float | None = None
    storage_params: float = 0.0
    gmacs_per_sample: float | None = None
    citations: tuple[str, ...] = ()
    mfu_profiles: tuple[str, ...] = ()
    sweep_runs: tuple[SweepRun, ...] = ()
    runs: int  # counted runs: a sweep's runs × its repetitions
    law: str | None = None
    # out-of-sample errors of the throughput estimate (ln reported/estimate): they set range and request
    mfu_errors: tuple[float, ...] = field(default=(), repr=False)


@dataclass(frozen=True, kw_only=True)
class GrantRow(RowCost):
    """One experiment of the request: its cost, the estimate in the call's unit, its 80% range and
    the request at the proposal's confidence, in whole units."""

    name: str
    kind: str
    purpose: str | None
    start_month: int
    months: int
    units: float
    units_interval: tuple[float, float] | None
    request_factor: float
    request: int
    also: dict[str, float]  # the request's size in each further unit the call names (thresholds), by unit
    storage_tb: float
    jobs_per_run: int
    cost: Cost | None = None  # in money: GPU-hours × the price per GPU-hour, where there is one

    @property
    def nodes_text(self) -> str:
        if self.nodes is not None:
            return f"{self.nodes:,}"
        return f"{self.nodes_range[0]}–{self.nodes_range[1]}" if self.nodes_range else "–"

    def record(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k not in ("also", "mfu_errors")}
        out["cost"] = self.cost.record() if self.cost is not None else None
        return {**out, **self.also}


@dataclass(frozen=True)
class Subtotal(Record):
    """Subtotal, contingency or total: the summed columns of the rows."""

    name: str
    runs: int | None
    node_hours: float
    gpu_hours: float
    charge: float
    units: float
    request: int
    also: dict[str, float]
    units_interval: tuple[float, float] | None = None
    cost: Cost | None = None

    def record(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "also"}
        out["cost"] = self.cost.record() if self.cost is not None else None
        return {**out, **self.also}


@dataclass(frozen=True)
class StorageItem(Record):
    name: str
    tb: float
    basis: str


@dataclass(frozen=True)
class StoragePlan(Record):
    """Itemised storage, the request, and TB-hours where a site bills them."""

    items: tuple[StorageItem, ...]
    estimated_tb: float
    requested_tb: float
    requested_basis: str
    checkpoint_basis: str | None = None
    tb_hours: float | None = None
    tb_hours_basis: str | None = None
    tb_hours_source: str | None = None


@dataclass(frozen=True)
class QuotaMonth(Record):
    used: float
    forfeited: float
    balance: float


@dataclass(frozen=True)
class QuotaCheckpoint(Record):
    """One date of a usage-checkpoint rule: the share used before it, the tier that applies, what it takes."""

    month: int  # the allocation month that begins on the checkpoint's date
    label: str
    used: float
    used_fraction: float
    tier: str | None  # e.g. "< 10% used: 30% of the unused balance"; None when no tier applies
    forfeited: float


@dataclass(frozen=True)
class QuotaSimulation(Record):
    """A month-by-month run of a centre's quota rule over the burn plan (grant.programs.QUOTA_RULES)."""

    quota: float  # the monthly quota (JSC) or the whole allocation (checkpoint rules)
    months: tuple[QuotaMonth, ...]
    forfeited: float
    unused_at_end: float
    low_priority_months: tuple[int, ...]  # JSC: overdrawn past one quota; checkpoints: the plan needs what was taken
    rule: str = "jsc-monthly"
    label: str = "JSC rule"
    checkpoints: tuple[QuotaCheckpoint, ...] = ()
    note: str | None = None

    @property
    def monthly_quota(self) -> float | None:
        """The quota each month gets (JSC); None for rules that check usage on dates instead."""
        return self.quota if self.rule == "jsc-monthly" else None


@dataclass(frozen=True)
class BurnMonth(Record):
    month: int
    label: str
    by_experiment: dict[str, int]
    contingency: int
    request: int
    node_hours: float
    forfeited: float | None = None


@dataclass(frozen=True)
class BurnPeriod(Record):
    """One allocation period (month, quarter, half-year) of the burn plan, in whole units."""

    period: str
    label: str
    months: int
    by_experiment: dict[str, int]
    contingency: int
    request: int
    node_hours: float
    share: float
    cumulative: float
    fair_share: float
    forfeited: float | None = None


@dataclass(frozen=True)
class ScheduledRun(Record):
    """One run placed in time: hours from the allocation's start (00:00 of its first day, UTC)."""

    run: str
    nodes: int
    start_hours: float
    end_hours: float
    node_hours: float
    jobs: int  # Slurm jobs of the run (a chain when it is longer than the partition's limit)


@dataclass(frozen=True)
class ScheduledExperiment(Record):
    """An experiment's runs in the schedule and its node-hours in each month of the allocation."""

    name: str
    after: tuple[str, ...]
    earliest_hours: float  # the start of its start_month
    deadline_hours: float  # the end of its start_month + months - 1
    start_hours: float
    end_hours: float
    start: str  # YYYY-MM-DD HH:MM
    end: str
    node_hours_by_month: tuple[float, ...]  # the allocation's months; hours past its end count in the last
    overrun_hours: float  # past its deadline
    runs: tuple[ScheduledRun, ...]

    @property
    def months_active(self) -> tuple[int, ...]:
        return tuple(k + 1 for k, h in enumerate(self.node_hours_by_month) if h > 0)


@dataclass(frozen=True)
class Schedule(Record):
    """The experiments placed in time (grant.schedule): what the burn plan follows."""

    concurrency: int  # nodes the project runs at once
    concurrency_basis: str
    labels: tuple[str, ...]
    month_hours: tuple[float, ...]  # hours in each month of the allocation
    experiments: tuple[ScheduledExperiment, ...]
    makespan_hours: float
    peak_nodes: int
    assumptions: tuple[str, ...]

    def experiment(self, name: str) -> ScheduledExperiment:
        return next(e for e in self.experiments if e.name == name)


@dataclass(frozen=True)
class BurnPlan(Record):
    period: str
    periods: tuple[BurnPeriod, ...]
    months: tuple[BurnMonth, ...]
    simulation: QuotaSimulation | None


@dataclass(frozen=True)
class ThresholdCheck(Record):
    """A call's minimum or maximum against the request converted to its unit."""

    what: str
    kind: str  # min | max
    limit: float
    unit: str
    per: str | None
    value: float
    met: bool
    status: str
    source: str
    basis: str
    basis_status: str
    # a threshold in peak EFLOP may be read at another dtype's peak: the request at that reading
    alternative_dtype: str | None = None
    alternative_value: float | None = None
    alternative_met: bool | None = None


@dataclass(frozen=True)
class CitedText(Record):
    """A rule of the call or something it expects, with its status and source."""

    text: str
    status: str
    source: str


@dataclass(frozen=True)
class MethodFact(Record):
    """One statement of the method paragraph and the citations it rests on."""

    topic: str
    text: str
    cite: tuple[str, ...]


@dataclass(frozen=True)
class ProgramInfo(Record):
    name: str
    title: str
    call: str | None
    unit: str
    unit_status: str
    unit_source: str


@dataclass(frozen=True)
class ClusterInfo(Record):
    name: str
    title: str
    partition: str
    max_wall_hours: float
    accelerator: str
    gpus_per_node: int
    accounting_unit: str
    units_per_node_hour: float
    accounting_status: str


@dataclass(frozen=True)
class GrantDocument(Record):
    """The request on one system: everything the Markdown, LaTeX, CSV and JSON documents show."""

    title: str
    pi: str | None
    project: str | None
    program: ProgramInfo
    cluster: ClusterInfo
    unit: Conversion
    also: tuple[Conversion, ...]
    start: str  # YYYY-MM
    months: int
    contingency: float
    goodput: float | None
    confidence: float
    interval_level: float
    mfu_basis: str
    rows: tuple[GrantRow, ...]
    subtotal: Subtotal
    contingency_row: Subtotal
    total: Subtotal
    storage: StoragePlan
    schedule: Schedule
    burn: BurnPlan
    thresholds: tuple[ThresholdCheck, ...]
    rules: tuple[CitedText, ...]
    expects: tuple[CitedText, ...]
    method: tuple[MethodFact, ...]
    scaling: tuple[ScalingTable, ...]
    justification_extra: str | None
    provenance: dict
    warnings: tuple[PlannerWarning, ...]

    def row(self, name: str) -> GrantRow:
        """The row of the experiment called `name`."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)


@dataclass(frozen=True)
class MultiSystemGrant(Record):
    """A proposal over several systems (GCS takes JUWELS Booster and JUPITER in one application):
    one complete document per system, never summed across units."""

    title: str
    pi: str | None
    project: str | None
    program: ProgramInfo
    start: str
    months: int
    contingency: float
    systems: tuple[GrantDocument, ...]
    warnings: tuple[PlannerWarning, ...]
    provenance: dict
