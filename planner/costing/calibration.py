"""How well `planner` predicts what was measured: the campaign estimator against every published
run it was not fitted on (leave-one-out), the coverage of its intervals, the tuned benchmarks
against the same runs, and the MFU profiles point by point."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planner.catalog import Catalog
from planner.costing import mfu, throughput
from planner.costing.mfu_basis import INTERVAL_LEVEL, benchmark_mfus, campaign_estimator


@dataclass(frozen=True)
class RunCheck:
    """One published run against the estimate the planner would have made without it."""

    run: str
    workload: str
    accelerator: str
    stack: str
    params: float
    gpus: float | None
    realised_mfu: float
    estimated_mfu: float | None  # leave-one-out
    reported_gpu_hours: float
    estimated_gpu_hours: float | None
    ratio: float | None  # reported / estimated
    in_interval: bool | None  # inside the 80% interval built without this run (nested leave-one-out)
    ratio_unstated: float | None  # reported / estimated with no stack stated (what a default plan does)
    in_interval_unstated: bool | None
    benchmark_ratio: float | None  # reported / tuned-benchmark estimate
    source: str
    status: str
    excluded: str | None


@dataclass(frozen=True)
class CampaignReport:
    model: throughput.ThroughputModel
    runs: tuple[RunCheck, ...]
    median_abs_log: float
    within_1_3: float
    worst_ratio: float
    coverage: float  # share of runs inside their nested-LOO 80% interval
    interval_factors: tuple[float, float]
    benchmark_median_ratio: float | None
    # the same with no stack stated: what a plan with default options gets
    unstated_median_abs_log: float
    unstated_within_1_3: float
    unstated_worst_ratio: float
    unstated_coverage: float
    unstated_interval_factors: tuple[float, float]


def campaign_report(catalog: Catalog) -> CampaignReport:
    """Every published campaign of the catalog against the estimate made without it (leave-one-out),
    the coverage of the 80% range, and the tuned benchmarks against the same runs."""
    model = campaign_estimator(catalog)
    if model is None:
        from planner.errors import PlannerError

        raise PlannerError("no campaign set in the catalog: nothing to calibrate against")
    points = list(model.points)
    bench = benchmark_mfus(catalog, points + list(model.excluded))
    caps = bench
    inside = throughput.nested_coverage(model, caps)
    inside_unstated = throughput.nested_coverage(model, caps, stack_stated=False)
    rows = []
    for i, p in enumerate(points):
        r, u = model.residuals[i], model.unstated[i]
        est_mfu = None if math.isnan(r) else p.realised * math.exp(r)
        est_hours = None if est_mfu is None else p.gpu_hours * p.realised / est_mfu
        rows.append(RunCheck(p.name, p.workload, p.accelerator, p.stack, p.params, p.gpus, p.realised, est_mfu,
                             p.gpu_hours, est_hours, None if est_hours is None else p.gpu_hours / est_hours,
                             None if math.isnan(r) else bool(inside[i]),
                             None if math.isnan(u) else math.exp(u), None if math.isnan(u) else bool(inside_unstated[i]),
                             bench[p.name] / p.realised if p.name in bench else None, p.source, p.status, None))
    for p in model.excluded:
        rows.append(RunCheck(p.name, p.workload, p.accelerator, p.stack, p.params, p.gpus, p.realised, None,
                             p.gpu_hours, None, None, None, None, None,
                             bench[p.name] / p.realised if p.name in bench else None, p.source, p.status, p.excluded))

    def stats(key: str, covered_key: str) -> tuple[float, float, float, float]:
        logs = np.abs(np.log([getattr(r, key) for r in rows if getattr(r, key) is not None]))
        covered = [getattr(r, covered_key) for r in rows if getattr(r, covered_key) is not None]
        return (float(np.median(logs)), float(np.mean(logs <= math.log(1.3))), float(np.exp(logs.max())),
                float(np.mean(covered)))

    stated, unstated = stats("ratio", "in_interval"), stats("ratio_unstated", "in_interval_unstated")
    bench_ratios = [r.benchmark_ratio for r in rows if r.benchmark_ratio is not None and r.excluded is None]
    return CampaignReport(model, tuple(rows), *stated, model.interval_factors(INTERVAL_LEVEL, stack_stated=True),
                          float(np.exp(np.median(np.log(bench_ratios)))) if bench_ratios else None,
                          *unstated, model.interval_factors(INTERVAL_LEVEL, stack_stated=False))


def smoothness(catalog: Catalog, cluster: str, nodes: int, sizes=None, basis: str = "campaign") -> list[tuple[float, float]]:
    """(size, MFU) on a fixed cluster and node count across 100M-1T: the curve a sweep is costed on."""
    from planner.costing.hardware import hardware_for
    from planner.costing.mfu_basis import mfu_many

    hw = hardware_for(catalog, cluster=cluster, nodes=nodes)
    sizes = np.geomspace(1e8, 1e12, 41) if sizes is None else np.asarray(sizes, dtype=float)
    return [(float(n), e.value) for n, e in zip(sizes, mfu_many(hw, catalog, sizes, basis=basis), strict=True)]


def mfu_points(catalog: Catalog) -> list[dict]:
    """Each tuned-benchmark MFU point against the profile's prediction, with and without that point."""
    rows = []
    for profile in catalog.all("mfu"):
        acc = catalog.accelerator(profile.accelerators[0])
        for i, point in enumerate(profile.points):
            others = [p for j, p in enumerate(profile.points) if j != i]
            with_point = mfu.estimate(profile, acc, point.params, point.gpus).value
            without = (mfu.estimate(profile.model_copy(update={"points": others}), acc, point.params, point.gpus).value
                       if others else None)
            rows.append({"profile": profile.name, "params": point.params, "gpus": point.gpus, "measured": point.mfu,
                         "planner": with_point, "leave_one_out": without,
                         "error_loo": None if without is None else without / point.mfu - 1,
                         "source": profile.sources[point.source].reference})
    return rows


def summary(rows: list[dict], key: str) -> dict:
    values = np.array([abs(r[key]) for r in rows if r[key] is not None])
    return {"n": int(values.size), "median_abs": float(np.median(values)), "max_abs": float(values.max())}
