"""How well `planner plan` predicts what was measured: MFU profiles (leave-one-out) and the
GPU-hours of published training runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from planner import cost, mfu
from planner.catalog import Catalog, Source, Sourced, Strict, builtin_dir
from planner.hardware import hardware_for, hardware_costs
from planner.yamlio import load_model

RUNS_FILE = Path("calibration") / "public-runs.yaml"


class PublicRun(Strict):
    name: str
    model: str
    accelerator: str
    tokens: Sourced
    published_gpu_hours: Sourced
    params: Sourced | None = Field(None, description="when the catalog model only stands in for the shape")
    seq_len: int | None = None
    gpus: Sourced | None = Field(None, description="GPUs the run used, when published (MFU depends on it)")


class PublicRuns(Strict):
    goodput: Sourced
    runs: list[PublicRun]
    sources: dict[str, Source]


def load_runs(path: Path | None = None) -> PublicRuns:
    return load_model(PublicRuns, path or builtin_dir() / RUNS_FILE)


def public_runs(catalog: Catalog, runs: PublicRuns | None = None) -> list[dict]:
    """Planner GPU-hours (6ND+attention, measured MFU profile, stated goodput) vs published."""
    runs = runs or load_runs()
    goodput = runs.goodput.value
    rows = []
    for run in runs.runs:
        model = catalog.model(run.model)
        shape = model.shape.model_copy(update={"seq_len": run.seq_len}) if run.seq_len else model.shape
        n = run.params.value if run.params else float(shape.params())
        flops = float(cost.training_flops(n, run.tokens.value, "6ND+attention", shape.attention_flops_per_token()))
        hw = hardware_for(catalog, accelerator=run.accelerator, gpus=int(run.gpus.value) if run.gpus else None)
        costs = hardware_costs(flops, n, hw, catalog, goodput=goodput)
        rows.append({"run": run.name, "params": n, "tokens": run.tokens.value, "accelerator": run.accelerator,
                     "gpus": int(run.gpus.value) if run.gpus else None, "mfu": costs["mfu"], "goodput": goodput, "planner_gpu_hours": costs["gpu_hours"],
                     "published_gpu_hours": run.published_gpu_hours.value,
                     "ratio": run.published_gpu_hours.value / costs["gpu_hours"],
                     "source": runs.sources[run.published_gpu_hours.source].citation})
    return rows


def mfu_points(catalog: Catalog) -> list[dict]:
    """Each measured MFU point against the profile's prediction, with and without that point."""
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
                         "source": profile.sources[point.source].citation})
    return rows


def summary(rows: list[dict], key: str) -> dict:
    values = np.array([abs(r[key]) for r in rows if r[key] is not None])
    return {"n": int(values.size), "median_abs": float(np.median(values)), "max_abs": float(values.max())}
