"""The burn report: sacct's jobs summed month by month in the allocation's unit, against what was planned,
with the quota rule of the centre (grant.programs.QUOTA_RULES, the same simulation `planner grant` runs
on a burn plan) and the date the allocation runs out at the recent rate.

Seconds stay integers until they become hours: a month's node-seconds are sums of ElapsedRaw × AllocNodes
pieces, and the months plus what lies outside the window add up to sacct's own total exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from planner.errors import PlannerWarning
from planner.grant.programs import QUOTA_RULES, Rule
from planner.grant.units import Conversion
from planner.records import Record
from planner.slurm_io import JobRecord
from planner.usage.months import (
    DAY,
    add_months,
    day_text,
    month_label,
    month_of,
    month_start,
    months_between,
    next_month,
    overlap,
    split_by_month,
    time_text,
)

RATE_DAYS = 30



@dataclass(frozen=True)
class Charging(Record):
    """How a job's seconds become charged units: whole nodes (JSC: "applications are charged for complete
    nodes"; node-h and core-h systems), or, where the cluster bills GPU-hours, the GPUs allocated
    (AllocTRES gres/gpu) at the cluster's per-node rate divided among its GPUs."""

    cluster: str
    unit: str
    label: str
    per_node_hour: float
    by: Literal["node", "gpu"]
    gpus_per_node: int
    status: str
    basis: str

    def resources(self, job: JobRecord) -> int:
        """What a second of `job` is billed on: its nodes, or its GPUs (whole nodes' GPUs if it lists none)."""
        if self.by == "node":
            return job.nodes
        return job.gpus or job.nodes * self.gpus_per_node

    def units(self, resource_seconds: int) -> float:
        per_resource_hour = self.per_node_hour / (1 if self.by == "node" else self.gpus_per_node)
        return resource_seconds * per_resource_hour / 3600


def charging(cluster, conversion: Conversion) -> Charging:
    """The charging rule of `cluster` (a catalog Cluster) in the unit of `conversion` (grant.units)."""
    by: Literal["node", "gpu"] = "gpu" if cluster.accounting.unit == "gpu-h" else "node"
    return Charging(cluster=cluster.name, unit=conversion.unit, label=conversion.label,
                    per_node_hour=conversion.per_node_hour, by=by, gpus_per_node=cluster.gpus_per_node_int,
                    status=conversion.status, basis=conversion.basis)


@dataclass(frozen=True)
class Plan(Record):
    """What the jobs were planned as: a sweep's manifest (a total) or a proposal's burn plan (by month)."""

    source: str  # "sweep DIR" | "proposal FILE"
    node_hours: float
    units: float
    by_month: dict[str, float]  # YYYY-MM -> planned units (a proposal's burn plan; empty for a sweep)
    job_ids: frozenset[str] = frozenset()  # a sweep's submitted job ids (submitted.tsv)

    def record(self) -> dict:
        return {**vars(self), "job_ids": sorted(self.job_ids, key=lambda j: (len(j), j))}  # JSON has no sets


@dataclass(frozen=True)
class Allocation(Record):
    total: float  # in the report's unit
    start: str  # YYYY-MM, the first month
    months: int
    rule: str | None  # the centre's quota mechanics (a QUOTA_RULES name), if any
    given_by: str
    quota_rule: Rule | None = field(default=None, repr=False)  # the program's rule (checkpoints and tiers)

    def record(self) -> dict:
        return {k: v for k, v in super().record().items() if k != "quota_rule"}  # where the numbers come from: "proposal FILE" | "given"


@dataclass(frozen=True)
class UsageMonth(Record):
    month: str
    jobs: int  # jobs with seconds in the month
    running: int  # of them, still running at the end of the window
    node_seconds: int
    billed_seconds: int  # node- or GPU-seconds, as Charging.by says
    node_hours: float
    units: float
    cumulative: float
    sweep_node_seconds: int | None  # of the sweep's submitted jobs
    sweep_node_hours: float | None
    planned: float | None
    planned_cumulative: float | None
    quota: float | None
    forfeited: float | None
    balance: float | None


@dataclass(frozen=True)
class UsageSummary(Record):
    jobs: int
    running: int
    sacct_node_seconds: int  # sum of ElapsedRaw × AllocNodes over every job sacct listed
    node_seconds: int  # of them, inside the window
    outside_node_seconds: int  # of them, before the window's start (jobs that began earlier) or after its end
    node_hours: float
    used: float
    rate_per_day: float
    rate_from: str
    allocation: float | None
    used_in_allocation: float | None
    remaining: float | None
    runs_out: str | None  # YYYY-MM-DD, "exhausted", or None: not at this rate within the allocation
    forfeited_so_far: float | None
    at_risk: float | None  # forfeited at the end of the month in progress unless used before
    at_risk_on: str | None
    unused_at_end: float | None  # left when the allocation period is over
    planned: float | None
    planned_node_hours: float | None
    sweep_node_seconds: int | None
    sweep_node_hours: float | None


@dataclass(frozen=True)
class UsageReport(Record):
    account: str
    cluster: str
    since: str
    until: str  # the window's exclusive end (YYYY-MM-DDTHH:MM:SS, UTC)
    charging: Charging
    allocation: Allocation | None
    plan: Plan | None
    months: tuple[UsageMonth, ...]
    summary: UsageSummary
    warnings: tuple[PlannerWarning, ...]


def burn(jobs: Sequence[JobRecord], charge: Charging, account: str, since: int, until: int,
         allocation: Allocation | None = None, plan: Plan | None = None) -> UsageReport:
    """The report on `jobs` within [since, until) (UTC epoch seconds); `until` is "now" for the rate and
    the quota: the month it falls in is the month in progress."""
    warnings: list[PlannerWarning] = []
    labels = [month_label(*ym) for ym in months_between(since, until)]
    node_s = dict.fromkeys(labels, 0)
    billed_s = dict.fromkeys(labels, 0)
    sweep_s = dict.fromkeys(labels, 0)
    count = dict.fromkeys(labels, 0)
    running = dict.fromkeys(labels, 0)
    for job in jobs:
        if job.start is None:
            continue
        in_sweep = plan is not None and job.array_job_id in plan.job_ids
        for ym, seconds in split_by_month(job.start, job.elapsed_seconds, since, until).items():
            label = month_label(*ym)
            node_s[label] += seconds * job.nodes
            billed_s[label] += seconds * charge.resources(job)
            sweep_s[label] += seconds * job.nodes if in_sweep else 0
            count[label] += 1
            running[label] += job.running
    if charge.by == "gpu" and (blind := sum(1 for j in jobs if j.node_seconds and not j.gpus)):
        warnings.append(PlannerWarning("charge", f"{blind} job(s) list no gres/gpu in AllocTRES: charged as whole nodes "
                                       f"({charge.gpus_per_node} GPUs each)"))
    units = {m: charge.units(billed_s[m]) for m in labels}
    sim_rows, sim_summary = _quota(units, until, since, allocation, warnings)
    rows, cumulative = [], 0.0
    in_plan = plan is not None and bool(plan.job_ids)
    for m in labels:
        cumulative += units[m]
        planned = plan.by_month.get(m) if plan is not None and plan.by_month else None
        planned_cum = (sum(v for k, v in plan.by_month.items() if k <= m)
                       if plan is not None and plan.by_month else None)
        q = sim_rows.get(m)
        rows.append(UsageMonth(month=m, jobs=count[m], running=running[m], node_seconds=node_s[m],
                               billed_seconds=billed_s[m], node_hours=node_s[m] / 3600, units=units[m],
                               cumulative=cumulative, sweep_node_seconds=sweep_s[m] if in_plan else None,
                               sweep_node_hours=sweep_s[m] / 3600 if in_plan else None,
                               planned=planned, planned_cumulative=planned_cum, quota=q[0] if q else None,
                               forfeited=q[1] if q else None, balance=q[2] if q else None))
    rate_lo = max(since, until - RATE_DAYS * DAY)
    recent = sum(overlap(j.start, j.elapsed_seconds, rate_lo, until) * charge.resources(j) for j in jobs if j.start is not None)
    rate = charge.units(recent) / ((until - rate_lo) / DAY) if until > rate_lo else 0.0
    in_window = sum(node_s.values())
    total = sum(j.node_seconds for j in jobs)
    used_alloc = remaining = runs_out = None
    if allocation is not None:
        lo, hi = _period(allocation)
        used_alloc = sum(u for m, u in units.items() if lo <= month_start(*_ym(m)) < hi)
        remaining = allocation.total - used_alloc - (sim_summary[0] or 0.0)
        runs_out = _runs_out(remaining, rate, max(until, lo), hi)  # an allocation yet to start burns from its start
    summary = UsageSummary(
        jobs=len(jobs), running=sum(j.running for j in jobs), sacct_node_seconds=total, node_seconds=in_window,
        outside_node_seconds=total - in_window, node_hours=in_window / 3600, used=sum(units.values()),
        rate_per_day=rate, rate_from=time_text(rate_lo),
        allocation=allocation.total if allocation is not None else None, used_in_allocation=used_alloc,
        remaining=remaining, runs_out=runs_out, forfeited_so_far=sim_summary[0], at_risk=sim_summary[1],
        at_risk_on=sim_summary[2], unused_at_end=sim_summary[3],
        planned=plan.units if plan is not None else None, planned_node_hours=plan.node_hours if plan is not None else None,
        sweep_node_seconds=sum(sweep_s.values()) if in_plan else None,
        sweep_node_hours=sum(sweep_s.values()) / 3600 if in_plan else None)
    return UsageReport(account=account, cluster=charge.cluster, since=time_text(since), until=time_text(until),
                       charging=charge, allocation=allocation, plan=plan, months=tuple(rows), summary=summary,
                       warnings=tuple(warnings))


def _ym(label: str) -> tuple[int, int]:
    return int(label[:4]), int(label[5:7])


def _period(allocation: Allocation) -> tuple[int, int]:
    first = _ym(allocation.start)
    return month_start(*first), month_start(*add_months(*first, allocation.months))


def _quota(units: dict[str, float], until: int, since: int, allocation: Allocation | None,
           warnings: list[PlannerWarning]) -> tuple[dict[str, tuple[float | None, float, float]], tuple]:
    """The centre's quota rule over the allocation's months up to the one in progress (the month `until`
    falls in): per month (quota, forfeited, balance); and forfeited so far, at risk, when, unused at end."""
    if allocation is None or allocation.rule is None:
        return {}, (None, None, None, None)
    lo, hi = _period(allocation)
    if lo < since:
        warnings.append(PlannerWarning("program", f"the allocation started {allocation.start}, before the first day "
                                       f"queried ({day_text(since)}): its months before count as unused"))
    first = _ym(allocation.start)
    months = [month_label(*add_months(*first, k)) for k in range(allocation.months)]
    labels = [m for m in months if m <= month_label(*month_of(until))] if until < hi else months
    if not labels:
        return {}, (0.0, None, None, None)
    # the rule runs over the whole allocation, the months not reached yet unused: each month's outcome depends
    # only on the months before it, so the months so far read as they will stay
    sim = QUOTA_RULES[allocation.rule]([units.get(m, 0.0) for m in months], allocation.total, months, allocation.quota_rule)
    now = sim.months[:len(labels)]
    rows = {m: (sim.monthly_quota, q.forfeited, q.balance) for m, q in zip(labels, now, strict=True)}
    if len(labels) < len(months):
        done = sum(q.forfeited for q in now[:-1])
        return rows, (done, now[-1].forfeited, day_text(month_start(*next_month(*_ym(labels[-1])))), None)
    return rows, (sim.forfeited, None, None, sim.unused_at_end)


def _runs_out(remaining: float, rate_per_day: float, start: int, end: int) -> str | None:
    """The day the allocation is used up at `rate_per_day` from `start`; None when not before `end`."""
    if remaining <= 0:
        return "exhausted"
    if rate_per_day <= 0 or start >= end:
        return None
    when = start + remaining / rate_per_day * DAY
    return day_text(int(when)) if when < end else None
