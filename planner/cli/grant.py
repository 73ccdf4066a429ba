"""`planner grant`."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli import catalog_from, cli, emit, progress

GRANT_FORMATS = ("markdown", "latex", "csv", "json", "html")  # planner.grant.report.REPORT_FORMATS (a test keeps them equal)


@cli.command(epilog="""\b
Examples:
  planner grant examples/grants/juwels-booster.yaml                      # Markdown for a web form
  planner grant examples/grants/lumi-g.yaml --format latex --out res.tex  # pdflatex res.tex
  planner grant examples/grants/juwels-booster.yaml --format csv          # for a spreadsheet
  planner grant examples/grants/lumi-g.yaml --format html --out lumi.html   # one file, figures inline
  planner catalog show gcs                                               # what a program file states
""")
@click.argument("proposal", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(GRANT_FORMATS), default="markdown", show_default=True,
              help="markdown (web forms), latex (booktabs document), csv (one table with a section column), json, "
                   "html (one self-contained page, figures inline).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (atomically) instead of stdout; markdown and latex write their figures "
                   "(PNG) beside it in the directory <name>_files.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.pass_context
def grant(ctx, proposal, fmt, out, force):
    """Resource tables for a compute-time proposal (GCS, EuroHPC, INCITE, ALCC, ...) in the call's own unit.

    PROPOSAL is a YAML file: title, program (planner catalog: catalogs/programs), cluster, start (YYYY-MM),
    months, contingency, storage_tb, and experiments, each a sweep (a `planner sweep` spec or an inline
    block), a catalog model with tokens or samples, params with tokens, or nodes × wall_hours. Output:
    one row per experiment (runs, nodes, wall-hours, node-hours, GPU-hours, the request in the program's
    unit), subtotal, contingency and total; storage; a schedule (each run at its nodes, at most
    max_nodes_concurrent nodes at once, after: dependencies, start_month); a burn plan by allocation
    period that follows it, with the program's forfeiture rule simulated; a method paragraph with
    citations; and figures of the scaling law with the planned runs, strong and weak scaling, the
    schedule, and the burn plan against the allocation. See examples/grants/juwels-booster.yaml for every key.
    """
    from planner.files import check_writable, write_target
    from planner.grant.build import build, load_proposal
    from planner.grant.report import (
        FIGURES_BESIDE,
        FIGURES_INLINE,
        figure_directory,
        figures_of,
        figures_unavailable,
        render_report,
        write_report,
    )

    if out is not None:  # refuse before the work, not after it (the write checks again, atomically)
        check_writable(out, force)
    beside = fmt in FIGURES_BESIDE and out is not None and write_target(out, force=True).how == "file"
    catalog = catalog_from(ctx)
    parsed, where, base = load_proposal(proposal)
    systems = ", ".join(dict.fromkeys(e.cluster or parsed.cluster for e in parsed.experiments))
    progress(f"costing {len(parsed.experiments)} experiment(s) for {parsed.program} on {systems}")
    result = build(parsed, where, base, catalog)
    for w in result.warnings:
        progress(f"warning: {w}")
    figures = []
    if fmt in FIGURES_BESIDE and not beside:
        progress("no figures: they are written beside a file (--out FILE writes them in FILE's <name>_files directory)")
    if beside or fmt in FIGURES_INLINE:
        if reason := figures_unavailable():
            progress(f"no figures: {reason}")
        else:
            figures = figures_of(result, catalog)
    text = render_report(result, fmt, figures, figure_directory(out).name if beside and figures else None)
    if out is None or not beside:
        return emit(text, out, force)
    for path in write_report(out, text, figures, force):
        progress(f"wrote {path}")
