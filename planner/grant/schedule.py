"""A grant's experiments placed in time: every run at the nodes it asks for, for its wall-clock hours,
under a cap on the nodes the project runs at once; the burn plan (grant.burn) follows the schedule.

Rules, in this order:

- Dependencies: an experiment waits for every experiment its `after:` names. Without `after:`, a
  training run (model, params + tokens, CLIP) waits for the sweeps listed before it (its size comes from
  their law); sweeps and wall_hours jobs wait for nothing. `after: []` waits for nothing.
- Priority: the proposal's order (dependencies first). Each run, in that order, is placed at the
  earliest hour at which its dependencies have finished, its `start_month` has begun and its nodes fit
  under the cap next to the runs placed before it, without moving any of them (Slurm's backfill without
  delaying a job of higher priority). Runs of one experiment are independent and may overlap.
- A run longer than the partition's wall-time limit is a chain of jobs; its wall-clock is unchanged:
  the gaps between the chain's jobs, and queue waiting in general, are not modelled (the schedule is
  the earliest the work can be done with the nodes free when the cap allows).
- Months are calendar months from the proposal's `start`; hours from 00:00 of its first day.
"""

from __future__ import annotations

import calendar
import heapq
from bisect import bisect_right
from datetime import datetime, timedelta

from planner.errors import PlannerWarning
from planner.grant.document import GrantRow, Schedule, ScheduledExperiment, ScheduledRun
from planner.grant.programs import month_labels
from planner.grant.proposal import Proposal, Where, start_month

TRAINING = ("model", "params", "clip")  # experiment kinds that wait for earlier sweeps by default


def month_hours(year: int, month: int, n: int) -> list[float]:
    """Hours in each of `n` calendar months from year-month."""
    out = []
    for k in range(n):
        y, m = year + (month - 1 + k) // 12, (month - 1 + k) % 12 + 1
        out.append(24.0 * calendar.monthrange(y, m)[1])
    return out


class Profile:
    """Nodes in use over time: a step function, `used[i]` nodes from `times[i]` to `times[i + 1]`."""

    def __init__(self) -> None:
        self.times, self.used = [0.0], [0]

    def _cut(self, t: float) -> int:
        i = bisect_right(self.times, t) - 1
        if self.times[i] != t:
            self.times.insert(i + 1, t)
            self.used.insert(i + 1, self.used[i])
            i += 1
        return i

    def add(self, start: float, end: float, nodes: int) -> None:
        a, b = self._cut(start), self._cut(end)
        for i in range(a, b):
            self.used[i] += nodes

    def earliest(self, t: float, hours: float, nodes: int, cap: int) -> float:
        """The first time >= t at which `nodes` more fit under `cap` for `hours` (nodes <= cap)."""
        while True:
            i = bisect_right(self.times, t) - 1
            j = i
            while j < len(self.times) and self.times[j] < t + hours:
                if self.used[j] + nodes > cap:
                    t = self.times[j + 1]  # the last step is idle, so a busy one has an end
                    break
                j += 1
            else:
                return t

    def peak(self) -> int:
        return max(self.used)


def runs_of(row: GrantRow) -> list[ScheduledRun]:
    """The runs of a row, unplaced (start 0): a sweep's runs × its repetitions, else `runs` equal runs."""
    if row.sweep_runs:
        reps = row.runs // len(row.sweep_runs)
        return [ScheduledRun(d.run_id + (f" #{k + 1}" if reps > 1 else ""), d.nodes, 0.0, d.wall_hours, d.node_hours, d.jobs)
                for k in range(reps) for d in row.sweep_runs]
    assert row.nodes is not None  # a row that is not a sweep states its nodes (Experiment._one_kind)
    return [ScheduledRun(f"run {k + 1}" if row.runs > 1 else "run", row.nodes, 0.0, row.wall_hours_per_run,
                         row.node_hours / row.runs, row.jobs_per_run) for k in range(row.runs)]


def dependencies(rows: list[GrantRow], given: dict[str, list[str] | None]) -> dict[str, tuple[str, ...]]:
    """What each experiment waits for: its `after:`, else (training runs) the sweeps listed before it.
    Names on another system of the proposal are dropped (each system is scheduled on its own)."""
    here = [r.name for r in rows]
    out = {}
    for j, r in enumerate(rows):
        after = given.get(r.name)
        if after is None:
            after = [s.name for s in rows[:j] if s.kind == "sweep"] if r.kind in TRAINING else []
        out[r.name] = tuple(a for a in after if a in here)
    return out


def _order(names: list[str], deps: dict[str, tuple[str, ...]]) -> list[int]:
    """Positions in dependency order, the proposal's order among those that are ready (Kahn)."""
    waiting = {n: set(deps[n]) for n in names}
    ready = [j for j, n in enumerate(names) if not waiting[n]]
    heapq.heapify(ready)
    out = []
    while ready:
        j = heapq.heappop(ready)
        out.append(j)
        for k, n in enumerate(names):
            if names[j] in waiting[n]:
                waiting[n].discard(names[j])
                if not waiting[n]:
                    heapq.heappush(ready, k)
    return out  # Proposal._start refuses circles, so every experiment is here


def _stamp(year: int, month: int, hours: float) -> str:
    return (datetime(year, month, 1) + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M")


def spread(runs: tuple[ScheduledRun, ...], edges: list[float]) -> tuple[float, ...]:
    """Node-hours of the runs in each month (`edges`: the months' boundaries in hours, n + 1 of them),
    split exactly at month boundaries; hours past the last boundary count in the last month."""
    n = len(edges) - 1
    out = [0.0] * n
    for r in runs:
        rate = r.node_hours / (r.end_hours - r.start_hours)
        for k in range(n):
            hi = r.end_hours if k == n - 1 else min(r.end_hours, edges[k + 1])
            lo = max(r.start_hours, edges[k])
            if hi > lo:
                out[k] += rate * (hi - lo)
    return tuple(out)


def schedule(rows: list[GrantRow], p: Proposal, indices: list[int], where: Where,
             warnings: list[PlannerWarning]) -> Schedule:
    """The rows (experiments at `indices` of the proposal) placed in time under the proposal's
    `max_nodes_concurrent` (default: the largest run's nodes)."""
    year, month = start_month(p.start)
    hours = month_hours(year, month, p.months)
    edges = [0.0]
    for h in hours:
        edges.append(edges[-1] + h)
    labels = tuple(month_labels(year, month, p.months))
    runs = [runs_of(r) for r in rows]
    largest = max(run.nodes for rs in runs for run in rs)
    if p.max_nodes_concurrent is not None:
        cap, basis = p.max_nodes_concurrent, "max_nodes_concurrent in the proposal"
    else:
        cap, basis = largest, "by default the largest run's nodes; set max_nodes_concurrent"
    for j, rs in enumerate(runs):
        most = max(run.nodes for run in rs)
        if most > cap:
            raise where.error(("experiments", indices[j], "nodes"), f"{most:,} nodes per run exceed the "
                              f"{cap:,} nodes the project runs at once (max_nodes_concurrent): it can never run")
    names = [r.name for r in rows]
    deps = dependencies(rows, {p.experiments[i].name: p.experiments[i].after for i in indices})
    profile = Profile()
    placed: dict[int, ScheduledExperiment] = {}
    done: dict[str, float] = {}
    for j in _order(names, deps):
        r, exp = rows[j], p.experiments[indices[j]]
        release = max([edges[r.start_month - 1]] + [done[d] for d in deps[r.name]])
        out = []
        for run in runs[j]:
            t = profile.earliest(release, run.end_hours, run.nodes, cap)
            profile.add(t, t + run.end_hours, run.nodes)
            out.append(ScheduledRun(run.run, run.nodes, t, t + run.end_hours, run.node_hours, run.jobs))
        start, end = min(x.start_hours for x in out), max(x.end_hours for x in out)
        done[r.name] = end
        deadline = edges[min(r.start_month + r.months - 1, p.months)]
        overrun = max(0.0, end - deadline)
        placed[j] = ScheduledExperiment(
            name=r.name, after=deps[r.name], earliest_hours=edges[r.start_month - 1], deadline_hours=deadline,
            start_hours=start, end_hours=end, start=_stamp(year, month, start), end=_stamp(year, month, end),
            node_hours_by_month=spread(tuple(out), edges), overrun_hours=overrun, runs=tuple(out))
        if overrun > 1e-6:
            window = "the allocation" if deadline == edges[-1] else \
                f"its months ({labels[r.start_month - 1]} – {labels[r.start_month + r.months - 2]})"
            past = " (its node-hours after the allocation's end are counted in its last month)" if end > edges[-1] else ""
            warnings.append(PlannerWarning("schedule", f"'{r.name}' ends {placed[j].end}, {overrun / 24:.1f} days after "
                                           f"{window}{past}: start it earlier ({'start_month, ' if exp.start_month else ''}"
                                           "after), allow more nodes at once (max_nodes_concurrent) or give it more months"))
    experiments = tuple(placed[j] for j in range(len(rows)))
    assumptions = (
        f"at most {cap:,} nodes of the project run at once ({basis})",
        "runs start as soon as their dependencies, start_month and the node cap allow: no queue waiting and no gaps "
        "between the jobs of a chain are modelled",
        "a training run without after: waits for the sweeps listed before it; other experiments wait only for their after:",
        "calendar months from the allocation's start; node-hours are split exactly at month boundaries",
    )
    return Schedule(concurrency=cap, concurrency_basis=basis, labels=labels, month_hours=tuple(hours),
                    experiments=experiments, makespan_hours=max(e.end_hours for e in experiments),
                    peak_nodes=profile.peak(), assumptions=assumptions)


def gantt_bar(e: ScheduledExperiment) -> str:
    """One character a month: █ at least half the node-hours of the experiment's busiest month, ▄ fewer, · none."""
    top = max(e.node_hours_by_month)
    return "".join("·" if h <= 0 else "█" if h >= 0.5 * top else "▄" for h in e.node_hours_by_month)
