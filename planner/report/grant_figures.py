"""PNG figures of a grant document (planner.grant.document.GrantDocument): the schedule as a Gantt chart
with the nodes in use, and the burn plan against the allocation with what the program's rule forfeits.
matplotlib is imported when a figure is drawn (pip install 'planner[plot]')."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from planner.report.plot import pyplot, save_png

if TYPE_CHECKING:
    from planner.grant.document import GrantDocument


def _month_axis(ax, document: GrantDocument) -> None:
    """Month boundaries as grid lines, labelled by month (every few months on long allocations)."""
    s = document.schedule
    edges = [0.0]
    for h in s.month_hours:
        edges.append(edges[-1] + h / 24)
    step = max(1, len(s.labels) // 12)
    ax.set_xticks(edges[:-1][::step], s.labels[::step], rotation=45, ha="right", fontsize=8)
    for x in edges:
        ax.axvline(x, color="0.85", linewidth=0.6, zorder=0)
    ax.set_xlim(0, max(edges[-1], s.makespan_hours / 24))


def plot_schedule(document: GrantDocument, out_path: Path, force: bool = False) -> None:
    """The schedule: one row per experiment, a bar for each stretch in which any of its runs runs
    (days from the allocation's start, months marked), and below it the nodes in use against the cap."""
    plt = pyplot()
    s = document.schedule
    fig, (gantt, load) = plt.subplots(2, 1, figsize=(10, 1.6 + 0.45 * len(s.experiments) + 2.2), sharex=True,
                                      gridspec_kw={"height_ratios": [max(1.0, 0.45 * len(s.experiments)), 2.0]})
    colors = plt.get_cmap("tab10")
    for y, e in enumerate(s.experiments):
        spans: list[list[float]] = []
        for r in sorted(e.runs, key=lambda r: r.start_hours):  # overlapping runs merge into one stretch
            if spans and r.start_hours <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], r.end_hours)
            else:
                spans.append([r.start_hours, r.end_hours])
        gantt.broken_barh([(a / 24, (b - a) / 24) for a, b in spans], (y - 0.35, 0.7), color=colors(y % 10))
        if e.deadline_hours < e.end_hours:
            gantt.plot([e.deadline_hours / 24] * 2, [y - 0.45, y + 0.45], color="tab:red", linewidth=1.5)
    gantt.set_yticks(range(len(s.experiments)), [e.name for e in s.experiments], fontsize=8)
    gantt.invert_yaxis()
    gantt.set_title(f"{document.title}: schedule on {document.cluster.title}", fontsize=10)
    events = sorted({t for e in s.experiments for r in e.runs for t in (r.start_hours, r.end_hours)} | {0.0})
    used = [sum(r.nodes for e in s.experiments for r in e.runs if r.start_hours <= t < r.end_hours) for t in events]
    load.step([t / 24 for t in events], used, where="post", color="tab:blue", label="nodes in use")
    load.axhline(s.concurrency, color="tab:red", linestyle="--", linewidth=1, label=f"cap: {s.concurrency:,} nodes")
    load.set_ylabel("nodes")
    load.set_ylim(0, s.concurrency * 1.1)
    load.legend(fontsize=8, loc="upper right")
    _month_axis(load, document)
    _month_axis(gantt, document)
    load.set_xlabel("month of the allocation (runs start as early as dependencies, start_month and the cap allow)")
    fig.tight_layout()
    save_png(fig, Path(out_path), force)
    plt.close(fig)


def plot_burn(document: GrantDocument, out_path: Path, force: bool = False) -> None:
    """The burn plan by month in the call's unit, stacked by experiment and contingency, beside an even
    share; and the cumulative use against the allocation, with what the program's rule forfeits marked."""
    plt = pyplot()
    burn, unit = document.burn, document.unit.label
    months = burn.months
    x = list(range(1, len(months) + 1))
    fig, (bars, cum) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.get_cmap("tab10")
    bottom = [0.0] * len(months)
    for j, r in enumerate(document.rows):
        values = [float(m.by_experiment[r.name]) for m in months]
        bars.bar(x, values, bottom=bottom, color=colors(j % 10), label=r.name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    bars.bar(x, [float(m.contingency) for m in months], bottom=bottom, color="0.7", label="contingency")
    total = document.total.request
    bars.axhline(total / len(months), color="black", linestyle=":", linewidth=1, label="even share")
    sim = burn.simulation
    if sim is not None and sim.forfeited > 0:
        lost = [(k + 1, m.forfeited) for k, m in enumerate(sim.months) if m.forfeited > 0]
        bars.bar([k for k, _ in lost], [f for _, f in lost], color="none", edgecolor="tab:red", hatch="//",
                 label=f"forfeited ({sim.label})")
    bars.set_ylabel(f"{unit} per month")
    bars.legend(fontsize=7)
    used, lost_total, cum_used, cum_lost = 0.0, 0.0, [], []
    for k, m in enumerate(months):
        used += m.request
        lost_total += sim.months[k].forfeited if sim is not None else 0.0
        cum_used.append(used)
        cum_lost.append(lost_total)
    ends = [0] + x  # the cumulative at the end of each month; ticks mark the months' starts
    cum.plot(ends, [0.0] + cum_used, color="tab:blue", marker=".", label="scheduled use")
    cum.plot([0, len(months)], [0, total], color="black", linestyle=":", linewidth=1, label="even pace")
    cum.axhline(total, color="0.4", linestyle="--", linewidth=1, label=f"allocation: {total:,} {unit}")
    if sim is not None:
        cum.plot(ends, [total - v for v in [0.0] + cum_lost], color="tab:red", marker=".",
                 label=f"allocation left after forfeiture ({sim.label})")
        if sim.note:
            cum.set_title(sim.note, fontsize=7)
    cum.set_ylabel(f"cumulative {unit}")
    cum.legend(fontsize=7, loc="lower right")
    step = max(1, len(months) // 12)
    labels = [m.label for m in months][::step]
    bars.set_xticks(x[::step], labels, rotation=45, ha="right", fontsize=8)
    cum.set_xticks([k - 1 for k in x][::step], labels, rotation=45, ha="right", fontsize=8)
    fig.suptitle(f"{document.title}: burn plan on {document.cluster.title}", fontsize=10)
    fig.tight_layout()
    save_png(fig, Path(out_path), force)
    plt.close(fig)


def draw_schedule(document: GrantDocument, path: Path) -> bool:
    """The schedule figure for a grant report (planner.report.grant_plots): drawn when anything is scheduled."""
    if not document.schedule.experiments:
        return False
    plot_schedule(document, path, force=True)
    return True


def draw_burn(document: GrantDocument, path: Path) -> bool:
    """The burn figure for a grant report: drawn when the plan has months."""
    if not document.burn.months:
        return False
    plot_burn(document, path, force=True)
    return True
