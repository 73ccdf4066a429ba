"""The schedule of a grant (planner.grant.schedule) as a Gantt-like table for the documents planner.grant.render
writes: when each experiment runs and its node-hours by burn period."""

from __future__ import annotations

from planner.grant.document import GrantDocument
from planner.report.output import Column


def schedule_columns(result: GrantDocument, fmt: str) -> list[Column]:
    """The Gantt-like table: when each experiment runs, its node-hours by burn period, and (Markdown) a
    bar of one character per month."""
    cols = [Column("name", "experiment"), Column("after_text", "after"), Column("start", "start"), Column("end", "end"),
            Column("nodes", "nodes (largest run)", "count"), Column("node_hours", "node-h", "hours")]
    cols += [Column(f"period.{p.period}", p.label if p.months == 1 else p.period, "hours") for p in result.burn.periods]
    return cols + ([Column("bar", "by month")] if fmt in ("markdown", "table") else [])


def schedule_rows(result: GrantDocument) -> list[dict]:
    from planner.grant.schedule import gantt_bar

    size, out = result.burn.periods[0].months, []
    for e in result.schedule.experiments:
        by = e.node_hours_by_month
        out.append({"name": e.name, "after_text": ", ".join(e.after) or "–", "start": e.start, "end": e.end,
                    "nodes": max(r.nodes for r in e.runs), "node_hours": sum(by), "bar": gantt_bar(e),
                    **{f"period.{p.period}": sum(by[j * size:(j + 1) * size]) or None
                       for j, p in enumerate(result.burn.periods)}})
    return out


def schedule_notes(result: GrantDocument) -> list[str]:
    s = result.schedule
    return [f"the last run ends {s.makespan_hours / 24:,.1f} days after the allocation's start; {s.peak_nodes:,} nodes "
            "run at once at the peak", *s.assumptions]
