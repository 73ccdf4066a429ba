"""`planner usage` as one function: the window, the cluster's charging, what was planned, the allocation,
sacct's jobs (asked live through one injectable runner, or read from text sacct printed earlier), the report.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from planner.errors import PlannerError, PlannerWarning
from planner.grant.units import conversion
from planner.slurm_io import ACCOUNT_FIELDS, Runner, SlurmUnavailable, parse_sacct, sacct_account
from planner.usage.burn import Allocation, Plan, UsageReport, burn, charging
from planner.usage.months import DAY, month_label, month_of, parse_day, time_text
from planner.usage.plans import proposal_document, proposal_plan, quota_rule, sweep_cluster, sweep_manifest, sweep_plan

if TYPE_CHECKING:
    from planner.catalog import Catalog

ASSUMED_ALLOCATION_MONTHS = 12  # when neither a proposal nor the program states the period


def window(since: str, until: str | None, now: int) -> tuple[int, int]:
    """[since 00:00 UTC, the end of `until`'s day) in epoch seconds; without `until`, up to `now`."""
    lo = parse_day(since, "since")
    hi = parse_day(until, "until") + DAY if until is not None else now
    if until is None and now <= lo:
        raise PlannerError(f"{since} has not begun yet (now: {time_text(now)} UTC)", "since")
    if hi <= lo:
        raise PlannerError(f"the window ends before it starts ({since} .. {until or time_text(now)})", "until")
    return lo, hi


def account_usage(catalog: Catalog, account: str, since: str, until: str | None = None, *, cluster: str | None = None,
                  sweep: Path | None = None, proposal: Path | None = None, allocation: float | None = None,
                  months: int | None = None, sacct_text: tuple[str, str] | None = None,
                  runner: Runner | None = None, now: int | None = None) -> UsageReport:
    """What `account` used from `since` (YYYY-MM-DD) to the end of `until` (default: now) on `cluster`.

    `sacct_text` is (name, text) of recorded sacct -P output (slurm_io.ACCOUNT_FIELDS) to read instead of
    asking sacct (through `runner`, argv → stdout; default slurm_io.run_slurm); `allocation` is the total in
    the report's unit (default: a proposal's total request), over `months` months from the proposal's start
    (else from the first month of the window)."""
    if not account.strip():
        raise PlannerError("must not be empty", "account")
    clock = int(time.time()) if now is None else now
    lo, hi = window(since, until, clock)
    if sacct_text is None:  # a live answer ends now: a later end would dilute the rate with days yet to come
        if lo >= clock:
            raise PlannerError(f"{since} has not begun yet (now: {time_text(clock)} UTC)", "since")
        hi = min(hi, clock)
    if sweep is not None and proposal is not None:
        raise PlannerError("give a sweep or a proposal, not both", "proposal")
    if sweep is not None:
        sweep_manifest(sweep)  # before the cluster is looked for in it
    doc = proposal_document(proposal, catalog, cluster) if proposal is not None else None
    name = cluster or (doc.cluster.name if doc is not None else sweep_cluster(sweep) if sweep is not None else None)
    if name is None:
        raise PlannerError("needed: the cluster whose accounting the jobs ran under"
                           + (" (the sweep directory keeps no spec.yaml that names it)" if sweep is not None else ""),
                           "cluster")
    system = catalog.cluster(name)
    charge = charging(system, doc.unit if doc is not None else conversion("cluster", system, catalog))
    plan: Plan | None = None
    if sweep is not None:
        plan = sweep_plan(sweep, charge)
    elif doc is not None and proposal is not None:
        plan = proposal_plan(doc, proposal)
    warnings: list[PlannerWarning] = []
    alloc = _allocation(catalog, system.name, lo, allocation, months, doc, proposal, warnings)
    if sacct_text is not None:
        listed = parse_sacct(sacct_text[1], sacct_text[0], ACCOUNT_FIELDS)
        jobs = [j for j in listed if (j.account or "").lower() == account.lower()]
        if len(jobs) < len(listed):
            warnings.append(PlannerWarning("charge", f"{len(listed) - len(jobs)} job(s) of other accounts in "
                                           f"{sacct_text[0]} left out"))
    else:
        try:
            jobs = sacct_account(account, time_text(lo), time_text(hi), runner)
        except SlurmUnavailable as exc:  # usage has nothing to fall back on but sacct's answer given from elsewhere
            raise PlannerError(f"{exc.message}; run sacct where it answers and give its output as {{sacct_file}}",
                               refs=("sacct_file",)) from None
    report = burn(jobs, charge, account, lo, hi, alloc, plan)
    if any(j.running for j in jobs):
        warnings.append(PlannerWarning("charge", f"{sum(j.running for j in jobs)} job(s) still running: counted with "
                                       "the seconds elapsed so far"))
    if doc is not None:  # the proposal's doubts about the accounting factor hold for the usage too
        warnings += [w for w in doc.warnings if w.topic == "charge"]
    return UsageReport(**{**vars(report), "warnings": (*report.warnings, *warnings)})


def _allocation(catalog: Catalog, cluster: str, lo: int, amount: float | None, months: int | None, doc, proposal,
                warnings: list[PlannerWarning]) -> Allocation | None:
    """The allocation: `amount` (else the proposal's total request) over the proposal's months (else `months`,
    else the program's stated length), with the quota rule of the cluster's program."""
    if amount is None and doc is None:
        if months is not None:
            raise PlannerError("an allocation length needs the allocation's size ({allocation} or a proposal)", "months",
                               refs=("allocation",))
        return None
    rule, stated = quota_rule(catalog, cluster, doc.program.name if doc is not None else None)
    if doc is not None:
        start, length = doc.start, months or doc.months
    else:
        start, length = month_label(*month_of(lo)), months or stated
        if length is None:
            length = ASSUMED_ALLOCATION_MONTHS
            warnings.append(PlannerWarning("program", f"allocation period assumed {length} months from {start}: "
                                           "the program states none"))
    total = amount if amount is not None else float(doc.total.request)
    return Allocation(total=total, start=start, months=length, rule=rule.simulate if rule is not None else None,
                      given_by="given" if amount is not None else f"proposal {proposal}", quota_rule=rule)
