"""`planner catalog list|show|validate`."""

from __future__ import annotations

from pathlib import Path

import click

from planner.catalog import KINDS
from planner.cli import catalog_from, cli, one_line, output_options, progress
from planner.report.output import Column, render_rows

LIST_COLUMNS = {
    "accelerators": [Column("name", "name"), Column("title", "title"), Column("bf16_tflops", "dense bf16 TFLOP/s", "float"),
                     Column("memory_gb", "memory GB", "float"), Column("tdp_w", "TDP W", "float")],
    "clusters": [Column("name", "name"), Column("title", "title"), Column("accelerator", "accelerator"),
                 Column("nodes", "nodes"), Column("gpus_per_node", "GPUs/node"),
                 Column("peak_bf16_pflops", "dense bf16 peak PFLOP/s", "float"), Column("state", "state")],
    "laws": [Column("name", "name"), Column("title", "title"), Column("predicts_loss", "predicts loss"),
             Column("params_counted", "N counts")],
    "mfu": [Column("name", "name"), Column("title", "title"), Column("workload", "workload"), Column("points", "points")],
    "programs": [Column("name", "name"), Column("title", "title"), Column("unit", "unit"), Column("period", "allocation period")],
    "models": [Column("name", "name"), Column("title", "title"), Column("kind", "kind"), Column("params", "parameters", "count"),
               Column("active_params", "active", "count"), Column("gmacs_per_sample", "GMACs/sample", "float")],
    "campaigns": [Column("name", "name"), Column("title", "title"), Column("runs", "runs", "count"),
                  Column("fitted", "fitted", "count"), Column("workloads", "workloads"), Column("stacks", "stacks", "count")],
    "shapes": [Column("name", "name"), Column("title", "title"), Column("aspect_ratio", "d_model / layers", "float"),
               Column("head_dim", "head width"), Column("query_heads_per_kv_head", "query heads / KV head"),
               Column("vocab", "vocabulary")],
    "hparams": [Column("name", "name"), Column("title", "title"), Column("learning_rate", "learning rate"),
                Column("batch_tokens", "batch (tokens)"), Column("params_counted", "N counts")],
}


def summary(kind: str, entry, catalog) -> dict:
    if kind == "accelerators":
        return {"name": entry.name, "title": entry.title, "bf16_tflops": entry.peak_tflops["bf16"].value,
                "memory_gb": entry.memory_gb.value, "tdp_w": entry.tdp_w.value}
    if kind == "clusters":
        acc = catalog.accelerator(entry.accelerator)
        nodes = int(entry.nodes.value) if entry.nodes else None
        peak = nodes * entry.gpus_per_node_int * acc.peak_tflops["bf16"].value / 1e3 if nodes else None
        return {"name": entry.name, "title": entry.title, "accelerator": entry.accelerator, "nodes": nodes,
                "gpus_per_node": entry.gpus_per_node_int, "peak_bf16_pflops": peak, "state": entry.state}
    if kind == "laws":
        return {"name": entry.name, "title": entry.title, "predicts_loss": "yes" if entry.predicts_loss else "no",
                "params_counted": entry.params_counted}
    if kind == "programs":
        return {"name": entry.name, "title": entry.title, "unit": entry.unit.value, "period": entry.period.value}
    if kind == "campaigns":
        return {"name": entry.name, "title": entry.title, "runs": len(entry.runs),
                "fitted": sum(r.excluded is None for r in entry.runs),
                "workloads": ", ".join(sorted({r.workload for r in entry.runs})), "stacks": len({r.stack for r in entry.runs})}
    if kind == "models":
        return {"name": entry.name, "title": entry.title, "kind": entry.kind, "params": entry.params,
                "active_params": entry.active_params,
                "gmacs_per_sample": entry.gmacs_per_sample.value if entry.gmacs_per_sample else None}
    if kind == "shapes":
        return {"name": entry.name, "title": entry.title, "aspect_ratio": entry.aspect_ratio.value,
                "head_dim": int(entry.head_dim.value), "query_heads_per_kv_head": int(entry.query_heads_per_kv_head.value),
                "vocab": int(entry.vocab.value)}
    if kind == "hparams":
        return {"name": entry.name, "title": entry.title, "learning_rate": entry.learning_rate.formula(),
                "batch_tokens": entry.batch_tokens.formula(), "params_counted": entry.params_counted}
    return {"name": entry.name, "title": entry.title, "workload": entry.workload, "points": len(entry.points)}


@cli.group()
def catalog():
    """Browse and validate the hardware, MFU and scaling-law catalogs.

    \b
    Examples:
      planner catalog list clusters
      planner catalog show juwels-booster
      planner catalog validate my-catalog/
    """


@catalog.command("list")
@click.argument("kind", required=False, type=click.Choice(KINDS))
@output_options
@click.pass_context
def list_(ctx, kind, fmt):
    """List catalog entries (all kinds, or one KIND).

    \b
    Example:
      planner catalog list laws --format markdown
    """
    cat = catalog_from(ctx)
    kinds = [kind] if kind else list(KINDS)
    parts = []
    for k in kinds:
        rows = [summary(k, e, cat) for e in cat.all(k)]
        columns = LIST_COLUMNS[k]
        for row in rows:  # a user entry that replaces one of the same name would otherwise look built-in
            if over := cat.overridden(k, row["name"]):
                row["overrides"] = f"{cat.files(k)[row['name']]} over {' and '.join(str(p) for p in over)}"
        if any("overrides" in row for row in rows):
            columns = columns + [Column("overrides", "user entry over another of its name")]
        if fmt == "json" and len(kinds) > 1:
            parts.append((k, rows))
            continue
        text = render_rows(rows, columns, fmt)
        parts.append((k, text))
    if fmt == "json" and len(kinds) > 1:
        from planner.report.output import to_json

        return to_json(dict(parts))
    if len(kinds) == 1:
        return parts[0][1]
    return "\n".join(f"{k}:\n{text}" if fmt == "table" else text for k, text in parts)


@catalog.command()
@click.argument("name")
@output_options
@click.pass_context
def show(ctx, name, fmt):
    """Show one entry with every number, its status and its source.

    \b
    Examples:
      planner catalog show h100-sxm
      planner catalog show epoch-2024 --format json
    """
    from planner.report.catalog_view import describe

    cat = catalog_from(ctx)
    kind, entry = cat.find(name)
    return describe(kind, entry, cat, fmt)


@catalog.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.pass_context
def validate(ctx, paths):
    """Validate catalog files or directories; errors print as file:line: field: message.

    A directory may be a catalog root (with accelerators/, clusters/, mfu/, laws/) or one of those
    kind directories. Cross-references (a cluster's accelerator, its MFU profile) are checked too.

    \b
    Example:
      planner catalog validate catalogs/ my-site-catalog/clusters/new-cluster.yaml
    """
    from planner.report.catalog_view import validate_paths

    errors, checked = validate_paths(list(paths), catalog_from(ctx))
    for line in errors:
        click.echo(one_line(line), err=True)  # a control character in a value must not split the line
    progress(f"{checked} files checked, {len(errors)} errors")
    if errors:
        ctx.exit(2)
    click.echo(f"ok: {checked} files valid")
