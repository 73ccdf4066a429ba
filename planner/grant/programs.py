"""Grant programs (catalogs/programs/*.yaml): the unit a call is requested in, its allocation period,
forfeiture rules, thresholds and contingency convention, each with a source and status.

A new call is a YAML file; nothing here knows a program by name. The unit `cluster` means "the
hosting system's own accounting unit" (EuroHPC, GCS), and `eflop-peak` converts node-hours to
FLOP at a *stated* accounting peak, kept apart from the dense peak that MFU is measured against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import Field, model_validator

from planner.catalog.schema import Cluster, Dtype, Entry, Slug, Sourced, Status, Strict
from planner.errors import PlannerError, PlannerWarning
from planner.grant.document import (
    BurnMonth,
    BurnPeriod,
    BurnPlan,
    GrantRow,
    QuotaMonth,
    QuotaSimulation,
    ThresholdCheck,
)
from planner.grant.units import conversion

Unit = Literal["node-h", "gpu-h", "core-h", "eflop-peak"]
QuotaRule = Literal["jsc-monthly"]  # the names of QUOTA_RULES below
PERIOD_MONTHS = {"month": 1, "quarter": 3, "half-year": 6}


class Fact(Strict):
    """A statement that is not a number (a unit, a rule) with the key of its citation."""

    source: str
    status: Status | None = None
    note: str | None = None


class UnitFact(Fact):
    value: Literal["node-h", "gpu-h", "core-h", "eflop-peak", "cluster"]


class PeriodFact(Fact):
    value: Literal["month", "quarter", "half-year"]


class Rule(Fact):
    text: str = Field(min_length=3)
    clusters: list[Slug] = Field([], description="systems the rule applies to; empty = all")
    simulate: QuotaRule | None = Field(None, description="quota mechanics the burn plan simulates (QUOTA_RULES)")


class PeakBasis(Fact):
    dtype: Dtype = Field(description="the accelerator peak that the program's FLOP figures are 'based on'")
    alternative: Dtype | None = Field(None, description="a second reading, stated beside the first")


class Threshold(Strict):
    kind: Literal["min", "max"]
    unit: Unit
    amount: Sourced
    per: Literal["year", "allocation"] = "allocation"
    clusters: list[Slug] = []
    what: str


class Contingency(Strict):
    low: Sourced
    high: Sourced
    default: Sourced


class StorageRule(Fact):
    unit: Literal["tb", "tb-hours"]
    clusters: list[Slug] = []


class Program(Entry):
    call: str = Field(description="who runs the call and what kind of access it is")
    unit: UnitFact
    also: list[UnitFact] = Field([], description="further units a reviewer compares against (e.g. EFLOP at peak)")
    peak_basis: PeakBasis | None = None
    period: PeriodFact
    duration_months: Sourced | None = None
    systems: list[Slug] = Field([], description="catalog clusters the call allocates; empty = any")
    forfeiture: list[Rule] = []
    thresholds: list[Threshold] = []
    contingency: Contingency
    storage: list[StorageRule] = []
    expects: list[Rule] = Field([], description="what a proposal must contain")

    @model_validator(mode="after")
    def _facts_resolve(self) -> Program:
        facts = [("unit", self.unit), ("period", self.period)] + [(f"also.{i}", f) for i, f in enumerate(self.also)]
        facts += [(f"forfeiture.{i}", f) for i, f in enumerate(self.forfeiture)]
        facts += [(f"expects.{i}", f) for i, f in enumerate(self.expects)]
        facts += [(f"storage.{i}", f) for i, f in enumerate(self.storage)]
        if self.peak_basis is not None:
            facts.append(("peak_basis", self.peak_basis))
        for path, fact in facts:
            if fact.source not in self.sources:
                raise ValueError(f"{path}: source '{fact.source}' is not a key of `sources` ({', '.join(self.sources)})")
        needs_peak = any(u.value == "eflop-peak" for u in [self.unit, *self.also]) or any(
            t.unit == "eflop-peak" for t in self.thresholds)
        if needs_peak and self.peak_basis is None:
            raise ValueError("peak_basis: an EFLOP unit or threshold needs the peak it is based on (peak_basis.dtype)")
        c = self.contingency
        if not 0 <= c.low.value <= c.default.value <= c.high.value < 1:
            raise ValueError("contingency: need 0 <= low <= default <= high < 1")
        return self

    def status_of_fact(self, fact: Fact) -> Status:
        return fact.status or self.sources[fact.source].status

    def cite_fact(self, fact: Fact) -> str:
        return self.sources[fact.source].reference

    def rules_for(self, rules: list, cluster: str) -> list:
        return [r for r in rules if not r.clusters or cluster in r.clusters]


# --- allocation periods -------------------------------------------------------------------------


def apportion(total: int, weights: list[float]) -> list[int]:
    """Whole numbers proportional to `weights` that sum to `total` exactly (largest remainder)."""
    s = sum(weights)
    if not (math.isfinite(s) and all(math.isfinite(w) for w in weights)):
        raise PlannerError("the proposal's hours are not finite numbers (a value is far outside any real allocation)")
    if total == 0 or s <= 0:
        return [0] * len(weights)
    raw = [total * (w / s) for w in weights]
    if not all(math.isfinite(x) for x in raw):
        raise PlannerError("the proposal's hours are not finite numbers (a value is far outside any real allocation)")
    out = [math.floor(x) for x in raw]
    for k in sorted(range(len(raw)), key=lambda k: (out[k] - raw[k], k))[: total - sum(out)]:
        out[k] += 1
    return out


def month_labels(year: int, month: int, n: int) -> list[str]:
    return [f"{year + (month - 1 + k) // 12:04d}-{(month - 1 + k) % 12 + 1:02d}" for k in range(n)]


FAIR_SHARE_SLACK = 1.10  # JSC lets a month use last month's remainder plus one quota of overdraft: warn past 10%


def burn_plan(rows: list[GrantRow], cont_request: int, contingency: float, labels: list[str], period: str,
              program: Program, cluster: str, warnings: list[PlannerWarning]) -> BurnPlan:
    """Each experiment's request spread evenly over its months (`start_month`, `months`), contingency in
    proportion, then summed by allocation period. Whole units throughout, so rows and columns add up."""
    n = len(labels)
    active = [[1.0 if r.start_month <= k + 1 < r.start_month + r.months else 0.0 for k in range(n)] for r in rows]
    by_exp = [apportion(r.request, w) for r, w in zip(rows, active, strict=True)]
    exact = [sum(r.units * w[k] / r.months for r, w in zip(rows, active, strict=True)) for k in range(n)]
    cont = apportion(cont_request, exact)
    requests = [sum(e[k] for e in by_exp) + cont[k] for k in range(n)]
    total = sum(requests)
    sim = None
    rules = [r.simulate for r in program.rules_for(program.forfeiture, cluster) if r.simulate]
    if rules:  # a call has one quota mechanism per system
        sim = QUOTA_RULES[rules[0]](requests, total / n)
    monthly = tuple(BurnMonth(month=k + 1, label=labels[k], by_experiment={r.name: by_exp[j][k] for j, r in enumerate(rows)},
                              contingency=cont[k], request=requests[k],
                              node_hours=(1 + contingency) * sum(r.node_hours * w[k] / r.months
                                                                 for r, w in zip(rows, active, strict=True)),
                              forfeited=sim.months[k].forfeited if sim is not None else None)
                    for k in range(n))
    size = PERIOD_MONTHS[period]
    periods, cumulative, heavy = [], 0, []
    for j, k0 in enumerate(range(0, n, size)):
        chunk = monthly[k0:k0 + size]
        req = sum(m.request for m in chunk)
        cumulative += req
        fair_share = total * len(chunk) / n
        label = chunk[0].label + ("" if len(chunk) == 1 else f" – {chunk[-1].label}")
        periods.append(BurnPeriod(
            period={"month": "M", "quarter": "Q", "half-year": "H"}[period] + str(j + 1), label=label, months=len(chunk),
            by_experiment={r.name: sum(m.by_experiment[r.name] for m in chunk) for r in rows},
            contingency=sum(m.contingency for m in chunk), request=req, node_hours=sum(m.node_hours for m in chunk),
            share=req / total if total else 0.0, cumulative=cumulative / total if total else 0.0, fair_share=fair_share,
            forfeited=sum(m.forfeited or 0.0 for m in chunk) if sim is not None else None))
        if req > fair_share * FAIR_SHARE_SLACK:
            heavy.append(f"{label} ({req / fair_share:.2f}×)")
    if heavy:
        warnings.append(PlannerWarning("program", f"{len(heavy)} {period}(s) plan more than {FAIR_SHARE_SLACK - 1:.0%} above an "
                                       "even share: " + ", ".join(heavy) + ("; JSC covers a month's excess only from last "
                                       "month's remainder and one monthly quota of overdraft" if sim else "")))
    if sim is not None and sim.forfeited > 0.01 * total:
        warnings.append(PlannerWarning("program", f"under JSC monthly quotas this plan forfeits ≈ {sim.forfeited:,.0f} units "
                                       f"({sim.forfeited / total:.1%}) in months of low use: spread the work more evenly"))
    if sim is not None and sim.low_priority_months:
        warnings.append(PlannerWarning("program", "overdrawn by more than one monthly quota (jobs at lowest priority) in "
                                       + ", ".join(labels[k - 1] for k in sim.low_priority_months)))
    return BurnPlan(period, tuple(periods), monthly, sim)


def simulate_jsc(use: Sequence[float], quota: float) -> QuotaSimulation:
    """JSC quota mechanics: a monthly quota; last month's remainder stays usable for one more month (and
    is used first), then is forfeited; an overdraft of up to one quota runs normally, beyond it at the
    lowest priority. Returns per-month forfeited hours and the balance carried."""
    carry, out, low = 0.0, [], []
    for k, u in enumerate(use):
        if carry > 0:
            old = min(u, carry)
            lost, left = carry - old, quota - (u - old)
        else:
            lost, left = 0.0, quota + carry - u
        out.append(QuotaMonth(used=u, forfeited=lost, balance=left))
        if left < -quota * 1.0001:
            low.append(k + 1)
        carry = left
    return QuotaSimulation(quota=quota, months=tuple(out), forfeited=sum(m.forfeited for m in out),
                           unused_at_end=max(0.0, carry), low_priority_months=tuple(low))


def check_thresholds(program: Program, cluster: Cluster, catalog, node_hours: float, months: int,
                     warnings: list[PlannerWarning]) -> list[ThresholdCheck]:
    """The call's minima and maxima that apply to `cluster`, against the request converted to their unit."""
    out = []
    for t in program.thresholds:
        if t.clusters and cluster.name not in t.clusters:
            continue
        c = conversion(t.unit, cluster, catalog, program.peak_basis, program)
        # the peak an EFLOP threshold is read at (conversion, like Program._facts_resolve, refuses one without it)
        peak = program.peak_basis if t.unit == "eflop-peak" else None
        scale = 12.0 / months if t.per == "year" else 1.0
        value = node_hours * c.per_node_hour * scale
        met = value >= t.amount.value if t.kind == "min" else value <= t.amount.value
        alt_dtype = alt_value = alt_met = None
        if peak is not None and peak.alternative:
            acc = catalog.accelerator(cluster.accelerator)
            alt_dtype, alt_value = peak.alternative, value * acc.peak_flops(peak.alternative) / acc.peak_flops(peak.dtype)
            alt_met = alt_value >= t.amount.value if t.kind == "min" else alt_value <= t.amount.value
        out.append(ThresholdCheck(what=t.what, kind=t.kind, limit=t.amount.value, unit=t.unit, per=t.per, value=value,
                                  met=met, status=program.status_of(t.amount), source=program.cite(t.amount),
                                  basis=c.basis, basis_status=c.status, alternative_dtype=alt_dtype,
                                  alternative_value=alt_value, alternative_met=alt_met))
        if not met:
            word = "below the minimum" if t.kind == "min" else "above the maximum"
            alt = f"; at the {alt_dtype} peak it would be {alt_value:,.0f}" if alt_value is not None else ""
            warnings.append(PlannerWarning("program", f"{t.what}: the request is {value:,.0f} {t.unit}"
                                           + (" per year" if t.per == "year" else "")
                                           + f" at the {peak.dtype if peak is not None else 'stated'} "
                                           f"conversion, {word} of {t.amount.value:,.0f}{alt} (conversion {c.status})"))
    return out


# Quota mechanics a burn plan can simulate, by the name a program's forfeiture rule gives in `simulate:`.
# A simulation takes the units planned per month and the monthly quota, and returns per month what is used,
# forfeited and carried ("months"), the total forfeited, what is unused at the end and the months overdrawn
# past the point where jobs run at lowest priority. Adding one is a function and a line here (and its name
# in QuotaRule); tests/test_grant_units.py checks every entry.
QUOTA_RULES: dict[str, Callable[[Sequence[float], float], QuotaSimulation]] = {"jsc-monthly": simulate_jsc}
