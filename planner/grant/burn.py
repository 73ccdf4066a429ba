"""The burn plan: the schedule's node-hours per month (grant.schedule) in the call's whole units, summed by
allocation period, with the program's forfeiture rule simulated on it (grant.programs.QUOTA_RULES)."""

from __future__ import annotations

from planner.errors import PlannerWarning
from planner.grant.document import BurnMonth, BurnPeriod, BurnPlan, GrantRow, QuotaSimulation, Schedule
from planner.grant.programs import PERIOD_MONTHS, QUOTA_RULES, Program, apportion

FAIR_SHARE_SLACK = 1.10  # JSC lets a month use last month's remainder plus one quota of overdraft: warn past 10%


def burn_plan(rows: list[GrantRow], schedule: Schedule, cont_request: int, contingency: float, period: str,
              program: Program, cluster: str, warnings: list[PlannerWarning]) -> BurnPlan:
    """Each experiment's request apportioned to the months by the node-hours the schedule puts in them,
    contingency in proportion, then summed by allocation period. Whole units throughout, so rows and
    columns add up."""
    labels = schedule.labels
    n = len(labels)
    hours = [schedule.experiment(r.name).node_hours_by_month for r in rows]
    share = [[h / sum(w) for h in w] for w in hours]  # a row's node-hours are positive
    by_exp = [apportion(r.request, w) for r, w in zip(rows, share, strict=True)]
    exact = [sum(r.units * w[k] for r, w in zip(rows, share, strict=True)) for k in range(n)]
    cont = apportion(cont_request, exact)
    requests = [sum(e[k] for e in by_exp) + cont[k] for k in range(n)]
    total = sum(requests)
    sim = None
    rules = [r for r in program.rules_for(program.forfeiture, cluster) if r.simulate]
    if rules:  # a call has one quota mechanism per system
        sim = QUOTA_RULES[rules[0].simulate](requests, total, labels, rules[0])
    monthly = tuple(BurnMonth(month=k + 1, label=labels[k], by_experiment={r.name: by_exp[j][k] for j, r in enumerate(rows)},
                              contingency=cont[k], request=requests[k],
                              node_hours=(1 + contingency) * sum(r.node_hours * w[k] for r, w in zip(rows, share, strict=True)),
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
    jsc = sim is not None and sim.rule == "jsc-monthly"
    if heavy:
        warnings.append(PlannerWarning("program", f"{len(heavy)} {period}(s) of the schedule use more than "
                                       f"{FAIR_SHARE_SLACK - 1:.0%} above an even share: " + ", ".join(heavy)
                                       + ("; JSC covers a month's excess only from last month's remainder and one "
                                          "monthly quota of overdraft" if jsc else "")))
    if sim is not None:
        warnings += _rule_warnings(sim, total, labels)
        year = rules[0].year_start
        if year is not None and int(labels[0][5:7]) != year:
            warnings.append(PlannerWarning("program", f"{program.name}'s allocation year starts in month {year}, this "
                                           f"allocation in {labels[0]}: the usage checkpoints are read at their calendar "
                                           "dates all the same"))
    return BurnPlan(period, tuple(periods), monthly, sim)


def _rule_warnings(sim: QuotaSimulation, total: int, labels: tuple[str, ...]) -> list[PlannerWarning]:
    out = []
    if sim.rule == "jsc-monthly":
        if sim.forfeited > 0.01 * total:
            out.append(PlannerWarning("program", f"under JSC monthly quotas this schedule forfeits ≈ {sim.forfeited:,.0f} "
                                      f"units ({sim.forfeited / total:.1%}) in months of low use: spread the work more "
                                      "evenly (start_month, max_nodes_concurrent)"))
        if sim.low_priority_months:
            out.append(PlannerWarning("program", "overdrawn by more than one monthly quota (jobs at lowest priority) in "
                                      + ", ".join(labels[k - 1] for k in sim.low_priority_months)))
        return out
    if sim.forfeited > 0.01 * total:
        taken = ", ".join(f"{c.label}: {c.forfeited:,.0f} ({c.used_fraction:.1%} used, {c.tier})"
                          for c in sim.checkpoints if c.forfeited > 0)
        out.append(PlannerWarning("program", f"the call's usage checkpoints take ≈ {sim.forfeited:,.0f} units "
                                  f"({sim.forfeited / total:.1%}) of this schedule's allocation: {taken}"
                                  + ("; the rule says 'up to', this is the most it allows" if "maximum" in sim.label else "")
                                  + ": start work earlier"))
    if sim.low_priority_months:
        out.append(PlannerWarning("program", "after the checkpoints' reductions the schedule needs more than is left in "
                                  + ", ".join(labels[k - 1] for k in sim.low_priority_months)))
    return out
