"""`planner status`."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli import cli, output_options, progress
from planner.report.output import Column, render_rows

COLUMNS = [
    Column("run_id", "run"),
    Column("state", "state"),
    Column("segment_text", "segment"),
    Column("attempts", "attempts", "count"),
    Column("last_job", "last job"),
    Column("gpu_hours", "GPU-hours used", "hours"),
    Column("gpu_hours_planned", "GPU-hours planned", "hours"),
    Column("node_hours", "node-hours used", "hours"),
    Column("node_hours_planned", "node-hours planned", "hours"),
    Column("result_text", "result"),
]


def _row(run) -> dict:
    result = run.result or {}
    return {**run.record(), "jobs": " ".join(run.jobs), "segment_text": f"{run.segment}/{run.segments}",
            "last_job": run.jobs[-1] if run.jobs else None, "result_text": ", ".join(f"{k}={v:.6g}" for k, v in result.items()) or None}


@cli.command(epilog="""\b
Examples:
  # where every run of a submitted sweep stands, with the hours it used against the plan
  planner status sweeps/isoflop
  # submit again the runs that timed out, were cancelled or failed; they resume from their checkpoints
  planner status sweeps/isoflop --resubmit
  planner status sweeps/isoflop --format json --out status.json
""")
@click.argument("sweep_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--resubmit", is_flag=True, help="Submit again every run that is neither completed (no {done_file}) nor "
              "pending or running, from the segment it reached, with {resume}=1; the job ids go to resubmitted.tsv.")
@output_options
def status(sweep_dir, resubmit, fmt):
    """Follow a submitted sweep: per run its state (completed, running, pending, unfinished, timeout, cancelled,
    failed, node_fail, preempted, not-submitted, unknown), the segment it reached, its attempts, the GPU- and
    node-hours its jobs used (sacct: elapsed time x GPUs and nodes of each allocation) against the planned ones,
    and its result; a summary line. Reads the sweep directory and Slurm (sacct, else scontrol, else the files
    alone), so it works from any login node at any time. A run counts as completed once it touched {done_file}.
    """
    from planner.sweep.status import sweep_status

    if resubmit:
        from planner.sweep.resubmit import resubmit as run_resubmit

        submitted = run_resubmit(sweep_dir)
        for group in submitted:
            progress(f"resubmitted {len(group.tasks)} run(s) of array {group.array} from segment {group.first_segment} "
                     f"of {group.segments}: job(s) {', '.join(group.job_ids)}")
        if not submitted:
            progress("nothing to resubmit: every run is completed, pending or running")
    result = sweep_status(sweep_dir)
    progress(f"status of {len(result.runs)} runs of {sweep_dir} from {result.source}")
    for w in result.warnings:
        progress(f"warning: {w}")
    rows = [_row(r) for r in result.runs]
    return render_rows(rows, COLUMNS, fmt, [result.summary(), *(f"warning: {w}" for w in result.warnings)],
                       data=result.record() | {"runs": [r.record() for r in result.runs], "summary": result.summary()})
