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
from planner.grant.document import QuotaCheckpoint, QuotaMonth, QuotaSimulation, ThresholdCheck
from planner.grant.units import conversion

Unit = Literal["node-h", "gpu-h", "core-h", "eflop-peak"]
QuotaRule = Literal["jsc-monthly", "usage-checkpoints"]  # the names of QUOTA_RULES below
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


class Tier(Strict):
    below: float = Field(gt=0, le=1, description="applies when less than this fraction of the allocation is used")
    forfeit: float = Field(gt=0, le=1, description="the fraction of the unused balance taken")


class Checkpoint(Strict):
    """A date on which the centre compares use with the allocation and takes part of what is unused."""

    month: int = Field(ge=1, le=12, description="the check is on the 1st of this calendar month, every year")
    tiers: list[Tier] = Field(min_length=1, description="lowest `below` first; the first that applies is taken")
    up_to: bool = Field(False, description="the rule says 'up to': the simulation takes the maximum")

    @model_validator(mode="after")
    def _ordered(self) -> Checkpoint:
        if [t.below for t in self.tiers] != sorted({t.below for t in self.tiers}):
            raise ValueError("tiers: list them by `below`, lowest first, each once")
        return self


class Rule(Fact):
    text: str = Field(min_length=3)
    clusters: list[Slug] = Field([], description="systems the rule applies to; empty = all")
    simulate: QuotaRule | None = Field(None, description="quota mechanics the burn plan simulates (QUOTA_RULES)")
    checkpoints: list[Checkpoint] = Field([], description="the dates and tiers of `simulate: usage-checkpoints`")
    year_start: int | None = Field(None, ge=1, le=12, description="the calendar month the allocation year of the "
                                   "checkpoints starts (their dates assume it)")

    @model_validator(mode="after")
    def _checkpoints(self) -> Rule:
        if (self.simulate == "usage-checkpoints") != bool(self.checkpoints):
            raise ValueError("checkpoints: give them exactly when the rule simulates usage-checkpoints")
        return self


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


def simulate_jsc(use: Sequence[float], allocation: float, labels: Sequence[str] = (), rule: Rule | None = None
                 ) -> QuotaSimulation:
    """JSC quota mechanics: the allocation split into equal monthly quotas; last month's remainder stays
    usable for one more month (and is used first), then is forfeited; an overdraft of up to one quota runs
    normally, beyond it at the lowest priority. Returns per-month forfeited hours and the balance carried."""
    quota = allocation / len(use)
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


def simulate_checkpoints(use: Sequence[float], allocation: float, labels: Sequence[str], rule: Rule | None = None
                         ) -> QuotaSimulation:
    """Usage checkpoints (OLCF's INCITE under-utilisation policy, ALCC's reductions): on the 1st of each
    checkpoint's month (`labels` are YYYY-MM) after the allocation's first month, the share of the
    allocation used so far picks the first tier it is below, which takes that fraction of the unused
    balance. Tiers that say "up to" are taken at their maximum. Months whose planned use exceeds what the
    checkpoints left are flagged (`low_priority_months`)."""
    assert rule is not None and rule.checkpoints  # Rule._checkpoints: a usage-checkpoints rule has them
    balance, used, out, checks, short = allocation, 0.0, [], [], []
    for k, (u, label) in enumerate(zip(use, labels, strict=True)):
        lost = 0.0
        for cp in (c for c in rule.checkpoints if k > 0 and c.month == int(label[5:7])):
            share = used / allocation if allocation else 1.0
            tier = next((t for t in cp.tiers if share < t.below), None)
            take = tier.forfeit * max(0.0, balance) if tier else 0.0
            lost += take
            checks.append(QuotaCheckpoint(month=k + 1, label=label, used=used, used_fraction=share, forfeited=take,
                                          tier=None if tier is None else f"< {tier.below:.0%} used: {'up to ' if cp.up_to else ''}"
                                          f"{tier.forfeit:.0%} of the unused balance"))
            balance -= take
        balance -= u
        used += u
        if balance < -1e-9 * max(1.0, allocation):
            short.append(k + 1)
        out.append(QuotaMonth(used=u, forfeited=lost, balance=balance))
    up_to = any(c.up_to for c in rule.checkpoints)
    return QuotaSimulation(quota=allocation, months=tuple(out), forfeited=sum(m.forfeited for m in out),
                           unused_at_end=max(0.0, balance), low_priority_months=tuple(short), rule="usage-checkpoints",
                           label="usage checkpoints" + (", maximum" if up_to else ""), checkpoints=tuple(checks),
                           note=("the rule says 'up to': the maximum it allows is simulated; " if up_to else "")
                           + "the share used is of the allocation as awarded, counted from the allocation's first month")


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
# A simulation takes the units planned per month, the allocation, the months' labels (YYYY-MM) and the
# rule (its dates and tiers, when it has them), and returns per month what is used, forfeited and carried
# ("months"), the total forfeited, what is unused at the end and the months the rule flags. Adding one is a
# function and a line here (and its name in QuotaRule); tests/test_grant_units.py checks every entry.
QUOTA_RULES: dict[str, Callable[[Sequence[float], float, Sequence[str], Rule | None], QuotaSimulation]] = {
    "jsc-monthly": simulate_jsc, "usage-checkpoints": simulate_checkpoints}
