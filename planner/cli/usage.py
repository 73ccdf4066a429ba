"""`planner usage`."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli import Number, catalog_from, cli, complete_names, output_options, progress
from planner.report.output import Column, human, provenance_note, render_rows


@cli.command(epilog="""\b
Examples:
  # what project myproject used on JUWELS Booster since the allocation began, against 2 M core-h
  planner usage --account myproject --since 2026-05-01 --cluster juwels-booster --allocation 2M
  # against the proposal it was planned from (its burn plan, its total request, its program's quota rule)
  planner usage --account myproject --since 2027-04-01 --proposal examples/grants/juwels-booster.yaml
  # a sweep's jobs against its manifest; sacct output recorded elsewhere (sacct -P -n -X -a -A ... -o ...)
  planner usage --account myproject --since 2026-11-01 --sweep sweeps/isoflop --sacct-file sacct.txt
""")
@click.option("--account", required=True, help="Slurm account (budget) whose jobs are summed.")
@click.option("--since", required=True, metavar="DATE", help="First day, YYYY-MM-DD (00:00 UTC).")
@click.option("--until", metavar="DATE", help="Last day, YYYY-MM-DD (up to its end, UTC); default: now.")
@click.option("--cluster", shell_complete=complete_names("clusters"),
              help="Catalog cluster whose accounting charges the jobs; default: the sweep's or proposal's.")
@click.option("--sweep", type=click.Path(file_okay=False, path_type=Path),
              help="Sweep directory (planner sweep --out): its manifest's hours as the plan, its submitted jobs apart.")
@click.option("--proposal", type=click.Path(dir_okay=False, path_type=Path),
              help="Grant proposal (planner grant): its burn plan by month, its total request as the allocation.")
@click.option("--allocation", type=Number(), metavar="AMOUNT",
              help="Allocation total in the report's unit (default: the proposal's request).")
@click.option("--months", type=click.IntRange(1, 120), metavar="N",
              help="Allocation length in months (default: the proposal's, else the program's, else 12).")
@click.option("--sacct-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read this recorded `sacct -P -n -X -o FIELDS` output instead of running sacct (FIELDS: docs/usage.md).")
@output_options
@click.pass_context
def usage(ctx, account, since, until, cluster, sweep, proposal, allocation, months, sacct_file, fmt):
    """Allocation burn: the node-hours and charged units Slurm's accounting (sacct) reports for an account,
    month by month (UTC), against the sweep or proposal they were planned from; the rate over the last 30
    days, the day the allocation runs out at that rate, and JSC's monthly forfeiture (quota split into
    monthly quotas; hours left from the month before last are forfeited). Running jobs count the seconds
    elapsed so far. Totals are ElapsedRaw × AllocNodes to the second.
    """
    from planner.files import decode_utf8, read_input
    from planner.usage.report import account_usage

    catalog = catalog_from(ctx)
    recorded = None
    if sacct_file is not None:
        progress(f"reading sacct output from {sacct_file} for account {account}")
        recorded = (str(sacct_file), decode_utf8(read_input(sacct_file, "sacct output", 256 << 20), sacct_file))
    else:
        progress(f"asking sacct for account {account}")
    report = account_usage(catalog, account, since, until, cluster=cluster, sweep=sweep, proposal=proposal,
                           allocation=allocation, months=months, sacct_text=recorded)
    for w in report.warnings:
        progress(f"warning: {w}")
    rows = [m.record() for m in report.months]
    return render_rows(rows, columns(report), fmt, notes(report) + provenance_note(catalog.provenance()), data=report)


def columns(report) -> list[Column]:
    unit = report.charging.label
    out = [Column("month", "month"), Column("jobs", "jobs", "count"), Column("node_hours", "node-hours", "hours"),
           Column("units", unit, "hours"), Column("cumulative", f"cumulative {unit}", "hours")]
    if report.plan is not None and report.plan.job_ids:
        out.append(Column("sweep_node_hours", "sweep node-hours", "hours"))
    if report.plan is not None and report.plan.by_month:
        out += [Column("planned", "planned", "hours"), Column("planned_cumulative", "planned cumulative", "hours")]
    if report.allocation is not None and report.allocation.rule is not None:
        out += [Column("quota", "monthly quota", "hours"), Column("forfeited", "forfeited", "hours"),
                Column("balance", "balance", "hours")]
    return out


def notes(report) -> list[str]:
    s, c, unit = report.summary, report.charging, report.charging.label
    h = lambda v: human(v, "hours")  # noqa: E731
    lines = [
        f"account {report.account} on {report.cluster}, {report.since} to {report.until} UTC: {s.jobs} job record(s) "
        "from sacct (the table's jobs: those with seconds in the month)"
        + (f", {s.running} still running (counted with the seconds elapsed so far)" if s.running else ""),
        f"sacct: ElapsedRaw × AllocNodes summed = {s.sacct_node_seconds:,} node-seconds: {s.node_seconds:,} in the "
        f"window + {s.outside_node_seconds:,} outside it (before --since or after --until)",
        f"charged: {c.basis} ({c.status})" + (f"; by the GPUs allocated, {c.per_node_hour / c.gpus_per_node:g} {c.unit} "
                                              "per GPU-hour" if c.by == "gpu" else ""),
        f"used: {h(s.used)} {unit} ({h(s.node_hours)} node-hours); rate since {s.rate_from}: {h(s.rate_per_day)} {unit}/day",
    ]
    if report.plan is not None:
        p = report.plan
        lines.append(f"planned ({p.source}): {h(p.units)} {unit}, {h(p.node_hours)} node-hours"
                     + (f"; the sweep's submitted jobs used {h(s.sweep_node_hours)} node-hours "
                        f"({s.sweep_node_hours / p.node_hours:.0%} of plan)" if s.sweep_node_hours is not None and p.node_hours
                        else ""))
    a = report.allocation
    if a is not None:
        out = {"exhausted": "already used up", None: "not at this rate within the period"}.get(s.runs_out, s.runs_out)
        lines.append(f"allocation ({a.given_by}): {h(a.total)} {unit} over {a.months} months from {a.start}; used in it "
                     f"{h(s.used_in_allocation)}, remaining {h(s.remaining)}; runs out at the rate since {s.rate_from}: "
                     f"{out}")
        if a.rule is not None:
            monthly = any(m.quota is not None for m in report.months)  # the rule gives each month a quota
            lines.append(f"quota rule {a.rule}: " + (f"monthly quota {h(a.total / a.months)}; " if monthly else "")
                         + f"forfeited so far {h(s.forfeited_so_far)}"
                         + (f"; at risk on {s.at_risk_on}: {h(s.at_risk)}"
                            + (" (last month's remainder not yet used)" if monthly else "") if s.at_risk_on else "")
                         + (f"; unused at the end {h(s.unused_at_end)}" if s.unused_at_end is not None else ""))
    return lines + [f"warning: {w}" for w in report.warnings]
