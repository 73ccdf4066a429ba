"""`planner sweep`."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli import catalog_from, cli, output_options, progress
from planner.errors import PlannerError
from planner.report.output import FORMATS, Column, provenance_note, render_rows
from planner.sweep.limits import MODES
from planner.sweep.slurm import time_text

SUMMARY_COLUMNS = [
    Column("array", "array"),
    Column("runs", "runs", "count"),
    Column("nodes", "nodes/run", "count"),
    Column("time_limit", "--time"),
    Column("segments", "segments", "count"),
    Column("throttle", "max running", "count"),
    Column("gpu_hours", "GPU-hours", "hours"),
    Column("gpu_hours_interval", "GPU-hours, 80% range", "hours"),
    Column("node_hours", "node-hours", "hours"),
    Column("reserved_node_hours", "node-hours reserved", "hours"),
    Column("charge", "charge", "hours"),
]
# nodes: auto: what rounding the runs up to the node ladder adds to the un-rounded design (planner.sweep.ladder)
LADDER_COLUMNS = [
    Column("ladder_node_hours", "ladder: + node-hours", "hours"),
    Column("ladder_reserved_node_hours", "ladder: + reserved", "hours"),
]


@cli.command(epilog="""\b
Examples:
  # an IsoFLOP grid on JUWELS Booster: write DIR, check it with sbatch --test-only, submit it
  planner sweep examples/sweeps/isoflop-juwels.yaml --out sweeps/isoflop --account myproject
  sweeps/isoflop/submit.sh --test-only && sweeps/isoflop/submit.sh
  # the same summary as JSON (for a grant table), regenerating the files in place
  planner sweep examples/sweeps/isoflop-lumi.yaml --out sweeps/lumi --force --format json
""")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Sweep directory: manifest.csv, arrays/*.sbatch, submit.sh, logs/.")
@click.option("--force", is_flag=True, help="Overwrite the files of an earlier sweep in --out.")
@click.option("--account", help="Slurm account (budget); overrides the spec's `account`.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Format of the summary printed on stdout.")
@click.option("--limits", "limits_from", type=click.Choice(MODES), default="auto", show_default=True,
              envvar="PLANNER_SWEEP_LIMITS", show_envvar=True,
              help="Where the Slurm limits (MaxArraySize, the partition's MaxNodes and MaxTime, MaxSubmitJobs) come "
                   "from: auto asks the Slurm at hand (scontrol, a few seconds at most) and uses it when it is the spec's "
                   "cluster (the catalog's slurm_cluster_name), else the catalog; slurm insists on it; catalog never asks, "
                   "so the files depend only on the spec and the catalog.")
@click.pass_context
def sweep(ctx, spec, out_dir, force, account, fmt, limits_from):
    """Turn a sweep spec (IsoFLOP grid, model ladder, list of runs, CLIP samples-seen grid) into Slurm job
    arrays sized by the planner's own wall-clock estimate, a manifest of which task trains what, and
    submit.sh. Prints a summary (runs, arrays, GPU-hours, node-hours). The spec format and the command's
    {placeholders} are documented in examples/sweeps/isoflop-juwels.yaml.
    """
    from planner.sweep import slurm
    from planner.sweep.design import design, load_spec
    from planner.sweep.limits import read_live
    from planner.yamlio import read_text

    catalog = catalog_from(ctx)
    parsed, src = load_spec(spec)
    answer = None if limits_from == "catalog" else read_live(insisted=limits_from == "slurm")
    if limits_from == "slurm" and answer is not None and answer.live is None:
        raise PlannerError("; ".join(answer.why_not), "limits")
    sw = design(parsed, src, catalog, out_dir, account, answer)
    assert sw.limits is not None  # design() always says which limits it used
    if limits_from == "slurm" and sw.limits.source != "slurm" and answer is not None and answer.live is not None:
        raise PlannerError(f"the Slurm at hand (cluster {answer.live.cluster_name}) has no partition {sw.partition.name}",
                           "limits")
    progress(sw.limits.note)
    need = None
    if parsed.need is not None:  # before any file is written: a bad need is bad input
        from planner.simulate.study import verdict

        share, met, line = verdict(parsed, src, sw, catalog)
        need = {"need": parsed.need, "met": met, "share": share, "verdict": line}
    texts = slurm.files(sw, read_text(spec))
    slurm.write_files(out_dir, texts, force)
    progress(f"wrote {len(texts)} files for {len(sw.runs)} runs in {len(sw.arrays)} arrays to {out_dir}; "
             f"submit with {out_dir / 'submit.sh'}")
    rows, total = summary(sw)
    if sw.ladder is not None:
        progress(ladder_line(sw))
    unit = sw.cluster.accounting.unit
    notes = [
        f"sweep {parsed.name}: {len(sw.runs)} runs in {len(sw.arrays)} array(s) on {sw.cluster.name} "
        f"partition {sw.partition.name} (max {sw.partition.max_wall_hours.value:g} h)",
        f"hours: hardware_costs, as `planner plan {'--model M --samples S' if parsed.sweep.kind == 'samples' else '--params N --tokens D'}"
        f" --cluster {sw.cluster.name} --nodes K`; "
        f"FLOPs convention: {sw.flops_convention}",
        f"MFU: {sw.mfu_basis}",
        "GPU-hours, 80% range: prediction interval from the MFU estimate's out-of-sample error against published "
        "campaigns; the runs share one estimator, so the total adds their ranges",
        f"--time: estimate × (1 + {parsed.time_margin:g}), rounded up "
        + (f"to a multiple of {parsed.time_step_minutes} min" if parsed.time_step_minutes
           else "to the next of 10 min, 15 min, ..., 1 h, 1.5 h, 2 h, 3 h, 4 h, 6 h, 8 h, 12 h, 16 h, 24 h, ...")
        + ", capped at the partition's limit; longer runs are chains of segments (afterany)",
        (f"max running: the throttle of each array; arrays run one after another (throttle: sweep), so up to "
         f"{total['throttle']} tasks at once" if parsed.throttle == "sweep" else
         f"max running: the throttle of each array; arrays run side by side, so up to {total['throttle']} tasks "
         "at once (throttle: sweep runs them one after another)"),
        f"charge: {unit} ({sw.cluster.accounting.units_per_node_hour.value:g} per node-hour); "
        "node-hours reserved = runs × nodes × segments × --time",
    ] + ([ladder_note(sw)] if sw.ladder is not None else []) + [sw.limits.note] + sw.notes \
        + [f"warning: {w}" for w in sw.warnings] + provenance_note(catalog.provenance())
    if need is not None:
        notes.insert(1, need["verdict"])
    data = {
        "name": parsed.name, "dir": sw.out_dir, "cluster": sw.cluster.name, "partition": sw.partition.name,
        "account": sw.account, "runs": len(sw.runs), "arrays": rows, "total": total, "charge_unit": unit,
        "flops_convention": sw.flops_convention, "mfu_basis": sw.mfu_basis, "interval_level": 0.8, "notes": sw.notes,
        "warnings": sw.warnings,
        "files": sorted(texts), "provenance": catalog.provenance(), "need": need, "limits": sw.limits,
        "node_ladder": None if sw.ladder is None else {"rungs": parsed.node_ladder, "arrays": sw.ladder[0], "total": sw.ladder[1]},
    }
    columns = SUMMARY_COLUMNS + (LADDER_COLUMNS if sw.ladder is not None else [])
    click.echo(render_rows(rows + [total], columns, fmt, notes, data=data), nl=False)


def ladder_line(sw) -> str:
    """The progress line of a node ladder: arrays before and after, what the rounding costs."""
    t = sw.ladder[1]
    rungs = sorted({a.nodes for a in sw.arrays})
    charged = sum(r.node_hours for r in sw.runs)
    held = sum(len(a.runs) * a.nodes * a.segments * a.time_minutes / 60.0 for a in sw.arrays)
    return (f"node ladder: {t.rounded} of {t.runs} runs rounded up to {len(rungs)} node count(s) "
            f"({', '.join(map(str, rungs))}): {len(sw.arrays)} arrays instead of {t.unrounded_arrays}; "
            f"{t.node_hours:+,.0f} node-hours charged ({t.node_hours / (charged - t.node_hours):+.2%}), "
            f"{t.reserved_node_hours:+,.0f} node-hours reserved ({t.reserved_node_hours / (held - t.reserved_node_hours):+.1%})")


def ladder_note(sw) -> str:
    ladder = sw.spec.node_ladder
    return (f"node ladder ({ladder if isinstance(ladder, str) else ', '.join(map(str, ladder))}): nodes: auto rounds each "
            "run's nodes up to a rung so that runs share arrays, and the runs of an array share its longest --time; "
            "ladder: + node-hours is what the estimate charges beyond the un-rounded design (more nodes finish sooner, "
            "but each GPU does less: MFU falls with the GPU count), + reserved the nodes × segments × --time beyond it "
            "(held by the scheduler, not charged once a run ends)")


def summary(sw) -> tuple[list[dict], dict]:
    """One row per array plus a total: runs, GPU- and node-hours estimated, node-hours the time limits reserve."""
    rows = []
    for a in sw.arrays:
        rows.append({
            "array": a.id, "runs": len(a.runs), "nodes": a.nodes, "time_limit": time_text(a.time_minutes),
            "segments": a.segments, "throttle": a.throttle,
            "gpu_hours": sum(r.gpu_hours for r in a.runs),
            "gpu_hours_interval": [sum(r.gpu_hours_low for r in a.runs), sum(r.gpu_hours_high for r in a.runs)],
            "node_hours": sum(r.node_hours for r in a.runs),
            "reserved_node_hours": len(a.runs) * a.nodes * a.segments * a.time_minutes / 60.0,
            "charge": sum(r.charge for r in a.runs),
        })
        if sw.ladder is not None:
            cost = next(c for c in sw.ladder[0] if c.array == a.id)
            rows[-1].update(ladder_node_hours=cost.node_hours, ladder_reserved_node_hours=cost.reserved_node_hours)
    throttle = (max if sw.spec.throttle == "sweep" else sum)(a.throttle for a in sw.arrays)
    total = {"array": "total", "runs": len(sw.runs), "arrays": len(sw.arrays), "throttle": throttle}
    for key in ("gpu_hours", "node_hours", "reserved_node_hours", "charge"):
        total[key] = sum(r[key] for r in rows)
    # runs share one estimator, so their errors move together: the total's range is the sum of the ranges
    total["gpu_hours_interval"] = [sum(r["gpu_hours_interval"][0] for r in rows), sum(r["gpu_hours_interval"][1] for r in rows)]
    if sw.ladder is not None:
        total.update(ladder_node_hours=sw.ladder[1].node_hours, ladder_reserved_node_hours=sw.ladder[1].reserved_node_hours)
    return rows, total


@cli.command(epilog="""\b
Examples:
  # After the sweep has run: one row per finished run, ready for `planner fit`
  planner collect sweeps/isoflop-c4 --format csv --out runs.csv
  planner fit runs.csv --form isoflop --flops-col flops --out law.yaml
""")
@click.argument("sweep_dir", type=click.Path(file_okay=False, path_type=Path))
@output_options
def collect(sweep_dir, fmt):
    """Join a sweep's manifest with the results its runs wrote to {result_file} (one number, read as
    the loss, or a JSON object of numbers): run_id, params, tokens, flops, budget, nodes, the
    estimated GPU-hours and the result fields. Runs without a result are listed on stderr and left out.
    """
    from planner.sweep.collect import collect as run_collect

    result = run_collect(sweep_dir)
    progress(f"collected {result['collected']} of {result['runs']} runs from {sweep_dir}")
    for w in result["warnings"]:
        progress(f"warning: {w}")
    if not result["rows"]:
        raise PlannerError(f"{sweep_dir}: no run has written its result yet (results/RUN_ID, from {{result_file}})")
    columns = [Column(k, k, "count" if k in ("params", "tokens") else "flops" if k in ("flops", "budget") else
                      "hours" if k == "gpu_hours" else "float" if k in result["result_fields"] else "text")
               for k in ("run_id", "model", "params", "tokens", "flops", "budget", "nodes", "gpu_hours", *result["result_fields"])]
    return render_rows(result["rows"], columns, fmt, [f"warning: {w}" for w in result["warnings"]], data=result)
