"""`planner calibrate`: what the planner predicts against what was measured."""

from __future__ import annotations

import click

from planner.cli import catalog_from, cli, output_options
from planner.output import Column, render_rows, to_json

RUN_COLUMNS = [Column("run", "run"), Column("params", "parameters", "count"), Column("tokens", "tokens", "count"),
               Column("accelerator", "accelerator"), Column("gpus", "GPUs"), Column("mfu", "MFU (profile)", "fraction"),
               Column("planner_gpu_hours", "planner GPU-hours", "hours"),
               Column("published_gpu_hours", "published GPU-hours", "hours"), Column("ratio", "published / planner", "ratio")]
MFU_COLUMNS = [Column("profile", "profile"), Column("params", "parameters", "count"), Column("gpus", "GPUs"),
               Column("measured", "measured MFU", "fraction"), Column("planner", "planner MFU", "fraction"),
               Column("leave_one_out", "without this point", "fraction"), Column("error_loo", "error (leave-one-out)", "fraction")]


def gpu_count_note(profile) -> str:
    from planner.mfu import gpu_scaling

    s = gpu_scaling(profile)
    if not s.groups:
        return f"{profile.name}: no size measured at two GPU counts; MFU is taken as independent of GPU count"
    return (f"{profile.name}: MFU ∝ GPUs^{s.slope:+.4f} at fixed size (median over {s.groups} sizes measured "
            f"at two or more counts, clamped at 0)")


@cli.command(epilog="""\b
Examples:
  planner calibrate
  planner calibrate --format markdown --out docs/calibration.md --force
""")
@output_options
@click.pass_context
def calibrate(ctx, fmt):
    """Calibration tables: published training runs (GPU-hours) and every measured MFU point of the
    catalog against the planner's prediction, with the point itself and without it (leave-one-out).
    """
    from planner.calibration import load_runs, mfu_points, public_runs, summary

    catalog = catalog_from(ctx)
    runs_data = load_runs()
    runs = public_runs(catalog, runs_data)
    points = mfu_points(catalog)
    if fmt == "json":
        return to_json({"public_runs": runs, "mfu_points": points, "goodput": runs_data.goodput.value})
    if fmt == "csv":
        return render_rows(runs, RUN_COLUMNS, fmt) + "\n" + render_rows(points, MFU_COLUMNS, fmt)
    loo = summary(points, "error_loo")
    g = runs_data.goodput
    run_notes = [f"planner: 6ND+attention FLOPs, the accelerator's measured MFU profile at the published GPU count "
                 f"(–: not published, the profile's typical count), goodput {g.value:g} ({runs_data.sources[g.source].citation})"]
    run_notes += sorted({f"source: {r['source']}" for r in runs})
    mfu_notes = [f"leave-one-out over {loo['n']} points: median |error| {loo['median_abs']:.1%}, largest {loo['max_abs']:.1%}"]
    mfu_notes += [gpu_count_note(p) for p in catalog.all("mfu")]
    heading = "## " if fmt == "markdown" else ""
    return (f"{heading}Published training runs\n\n" + render_rows(runs, RUN_COLUMNS, fmt, run_notes)
            + f"\n{heading}Measured MFU points\n\n" + render_rows(points, MFU_COLUMNS, fmt, mfu_notes))
