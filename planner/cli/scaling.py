"""`planner scaling`."""

from __future__ import annotations

from pathlib import Path

import click

from planner.catalog.schema import DTYPES
from planner.cli import Number, NumberList, catalog_from, cli, complete_names, mfu_basis_options, output_options, progress
from planner.errors import PlannerError
from planner.report.output import render_rows


@cli.command(epilog="""\b
Examples:
  # Predicted strong scaling of Llama 2 7B on JUWELS Booster, doubling from the smallest node count that fits
  planner scaling --model llama-2-7b --tokens 2T --cluster juwels-booster --global-batch 4M
  # Chosen node counts, with your own benchmark beside the prediction (CSV: nodes,tokens_per_s)
  planner scaling --params 7e9 --tokens 1.4e11 --cluster juwels-booster --nodes 8,16,32,64 --measured bench.csv --plot scaling.png
  # openCLIP ViT-L/14, 34B samples seen (throughput in samples/s)
  planner scaling --model openclip-vit-l-14 --samples 34e9 --cluster juwels-booster --nodes 16,32,64,128,256
""")
@click.option("--model", shell_complete=complete_names("models"), help="A model from the catalog instead of --params.")
@click.option("--params", type=Number(), help="Model size (with --tokens).")
@click.option("--tokens", type=Number(), help="Tokens the run trains on.")
@click.option("--samples", type=Number(), help="CLIP models: samples seen.")
@click.option("--cluster", required=True, shell_complete=complete_names("clusters"), help="Cluster from the catalog.")
@click.option("--nodes", "node_counts", type=NumberList(),
              help="Node counts, comma-separated (default: doublings from the smallest count that fits, up to 32x).")
@click.option("--global-batch", type=Number(), help="Tokens (or samples) per optimizer step: adds seconds per step.")
@click.option("--measured", type=click.Path(dir_okay=False),
              help="Benchmark CSV: nodes and one of tokens_per_s, samples_per_s, seconds_per_step (needs --global-batch).")
@click.option("--mfu", type=click.FloatRange(min=0, max=1, min_open=True), help="Override the MFU profile (0-1) for the prediction.")
@click.option("--dtype", default="bf16", show_default=True, type=click.Choice(DTYPES),
              help="Dtype whose dense peak MFU refers to.")
@click.option("--flops-convention", type=click.Choice(["6ND", "6ND+attention"]),
              help="Hardware FLOPs convention (default 6ND+attention, as plan).")
@click.option("--seq-len", type=click.IntRange(min=16, max=10_000_000),
              help="Training sequence length for the attention FLOPs (default: the model's, else 4096).")
@click.option("--weak", is_flag=True,
              help="Add a weak-scaling table (fixed work per node: the job's tokens and batch grow with the nodes).")
@mfu_basis_options
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG of speed-up against nodes with the ideal line (needs matplotlib; --force overwrites).")
@output_options
@click.pass_context
def scaling(ctx, fmt, node_counts, global_batch, measured, weak, plot, **options):
    """Strong scaling of one run for a proposal's scaling-evidence section: nodes, throughput, time
    per step, speed-up and parallel efficiency, predicted from the measured MFU profiles and, with
    --measured, from your own benchmark beside it; with --weak, weak scaling (fixed work per node) too.
    """
    from planner.costing.plan import build_request
    from planner.costing.scaling import measurements_from_csv, scaling_columns, scaling_notes, strong_scaling

    catalog = catalog_from(ctx)
    if options["params"] is not None:
        options["params"] = [options["params"]]
    request = build_request(options)
    counts = None
    if node_counts is not None:
        if any(n != int(n) for n in node_counts):
            raise PlannerError("node counts must be whole numbers", "nodes")
        counts = [int(n) for n in node_counts]  # strong_scaling checks them (check_counts)
    bench = measurements_from_csv(measured, global_batch) if measured else []
    progress(f"strong scaling on {request.cluster}: {len(set(counts)) if counts else 'default'} node counts"
             + (f", {len(bench)} measured" if bench else ""))
    result = strong_scaling(request, catalog, counts, bench, global_batch)
    if plot is not None:
        from planner.report.plot import plot_scaling

        plot_scaling(result, plot, ctx.params.get("force", False))
        progress(f"wrote {plot}")
    notes = scaling_notes(result, "benchmark a few counts and give --measured", "--mfu-basis benchmark")
    if not weak:
        return render_rows([dict(r) for r in result.rows], scaling_columns(result), fmt, notes, data=result.record())
    from planner.costing.weak import weak_columns, weak_notes, weak_scaling
    from planner.report.output import output_format

    table = weak_scaling(result)
    if output_format(fmt).machine:  # one document: JSON nests the weak table, CSV says which table a row is in
        rows = [{"scaling": "strong", **r} for r in result.rows] + [{"scaling": "weak", **r} for r in table.rows]
        return render_rows(rows, [], fmt, data={**result.record(), "weak": table.record()})
    strong = render_rows([dict(r) for r in result.rows], scaling_columns(result), fmt, notes)
    heading = output_format(fmt).heading
    return (f"{heading}Strong scaling\n\n" if heading else "strong scaling\n") + strong + (
        f"\n{heading}Weak scaling\n\n" if heading else "\nweak scaling\n") + render_rows(
        [dict(r) for r in table.rows], weak_columns(table), fmt, weak_notes(table))
