"""`planner calibrate`: the campaign estimator and the benchmarks against what was measured."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import click

from planner.cli import catalog_from, cli, output_options, progress
from planner.report.output import Column, output_format, render_rows

FORM_COLUMNS = [Column("form", "form"), Column("mean_abs", "mean abs. ln error", "ratio"),
                Column("median_abs_pct", "median abs. error", "fraction"),
                Column("unstated_mean_abs", "no stack: mean abs. ln error", "ratio"),
                Column("unstated_within_1_3", "no stack: within 1.3x", "fraction"),
                Column("within_1_3", "within 1.3x", "fraction"), Column("worst_ratio", "worst (x)", "ratio"),
                Column("chosen", "chosen")]
COEF_COLUMNS = [Column("term", "term"), Column("value", "coefficient", "float"), Column("factor", "MFU factor", "ratio")]
RUN_COLUMNS = [Column("run", "run"), Column("workload", "workload"), Column("accelerator", "accelerator"),
               Column("stack", "stack"), Column("params", "parameters", "count"), Column("gpus", "GPUs", "count"),
               Column("realised_mfu", "realised MFU", "fraction"), Column("estimated_mfu", "estimated (LOO)", "fraction"),
               Column("reported_gpu_hours", "reported GPU-h", "hours"),
               Column("estimated_gpu_hours", "estimated GPU-h (LOO)", "hours"), Column("ratio", "reported / estimate", "ratio"),
               Column("in_interval_text", "in 80% range"),
               Column("ratio_unstated", "no stack: reported / estimate", "ratio"),
               Column("in_interval_unstated_text", "no stack: in range"),
               Column("benchmark_ratio", "reported / benchmark", "ratio"),
               Column("status", "status")]
SOURCE_COLUMNS = [Column("run", "run"), Column("source", "source of the GPU-hours")]
MFU_COLUMNS = [Column("profile", "profile"), Column("params", "parameters", "count"), Column("gpus", "GPUs"),
               Column("measured", "measured MFU", "fraction"), Column("planner", "planner MFU", "fraction"),
               Column("leave_one_out", "without this point", "fraction"), Column("error_loo", "error (leave-one-out)", "fraction")]


def gpu_count_note(profile) -> str:
    from planner.costing.mfu import gpu_scaling

    s = gpu_scaling(profile)
    if not s.groups:
        return f"{profile.name}: no size measured at two GPU counts; MFU is taken as independent of GPU count"
    return (f"{profile.name}: MFU ∝ GPUs^{s.slope:+.4f} at fixed size (median over {s.groups} sizes measured "
            f"at two or more counts, clamped at 0)")


@cli.command(epilog="""\b
Examples:
  planner calibrate
  planner calibrate --format markdown --out calibration-tables.md --plot calibration-mfu.png
""")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG of realised MFU against model size, runs and estimator (needs matplotlib).")
@output_options
@click.pass_context
def calibrate(ctx, fmt, plot):
    """The campaign calibration: every published training run of the catalog's campaign sets against
    the estimate made without it (leave-one-out), the coverage of the 80% range, the candidate forms
    of the estimator, and the tuned MFU benchmark points against their profiles.
    """
    from planner.costing.calibration import campaign_report, mfu_points, summary
    from planner.costing.throughput import SIMPLER_WINS_BY, coefficients

    catalog = catalog_from(ctx)
    progress("fitting the campaign estimator (leave-one-out over every candidate form)")
    report = campaign_report(catalog)
    points = mfu_points(catalog)
    if plot is not None:
        from planner.report.plot import plot_calibration

        plot_calibration(report, catalog, plot, ctx.params.get("force", False))
        progress(f"wrote {plot}")
    model = report.model
    forms = [{"form": s.form, "mean_abs": s.mean_abs, "median_abs_pct": math.expm1(s.median_abs),
              "unstated_mean_abs": s.unstated_mean_abs, "unstated_within_1_3": s.unstated_within_1_3, "within_1_3": s.within_1_3,
              "worst_ratio": math.exp(s.worst), "chosen": "chosen" if s is model.chosen else ""} for s in model.scores]
    coefs = [{"term": k, "value": v, "factor": math.exp(v)} for k, v in coefficients(model).items()]
    yes = {True: "yes", False: "no", None: "–"}
    runs = [{**asdict(r), "in_interval_text": yes[r.in_interval], "in_interval_unstated_text": yes[r.in_interval_unstated]}
            for r in report.runs]
    if output_format(fmt).machine:  # JSON: the whole report; CSV: one row per run
        document = {"forms": forms, "chosen": model.chosen.form, "coefficients": coefs, "runs": runs,
                    "median_abs_log_error": report.median_abs_log, "within_1_3": report.within_1_3,
                    "worst_ratio": report.worst_ratio, "interval_level": 0.8, "coverage": report.coverage,
                    "interval_factors": list(report.interval_factors),
                    "benchmark_median_ratio": report.benchmark_median_ratio,
                    "no_stack": {"median_abs_log_error": report.unstated_median_abs_log,
                                 "within_1_3": report.unstated_within_1_3, "worst_ratio": report.unstated_worst_ratio,
                                 "coverage": report.unstated_coverage,
                                 "interval_factors": list(report.unstated_interval_factors)},
                    "mfu_points": points,
                    "provenance": catalog.provenance()}
        return render_rows(runs, RUN_COLUMNS, fmt, data=document)
    heading = output_format(fmt).heading
    lo, hi = report.interval_factors
    fitted = [r for r in report.runs if r.excluded is None]
    ulo, uhi = report.unstated_interval_factors
    summary_notes = [
        f"{len(fitted)} runs fitted ({len(report.runs) - len(fitted)} kept for the record only). Leave-one-out, each run "
        f"with its training stack stated (--stack): median |ln(reported/estimate)| {report.median_abs_log:.3f} (a factor "
        f"{math.exp(report.median_abs_log):.2f}), {report.within_1_3:.0%} within 1.3x, worst {report.worst_ratio:.2f}x; "
        f"80% range {lo:.2f}-{hi:.2f} x the estimate, holding {report.coverage:.0%} of runs when each run's range is "
        "built without it",
        f"with no stack stated (a plan's default): median |ln| {report.unstated_median_abs_log:.3f} (a factor "
        f"{math.exp(report.unstated_median_abs_log):.2f}), {report.unstated_within_1_3:.0%} within 1.3x, worst "
        f"{report.unstated_worst_ratio:.2f}x; 80% range {ulo:.2f}-{uhi:.2f} x the estimate, holding "
        f"{report.unstated_coverage:.0%} of runs",
        "ranges are the 10th and 90th percentiles of the leave-one-out errors of the case (stack stated or not)",
    ]
    if report.benchmark_median_ratio:
        summary_notes.append(f"tuned benchmarks (--mfu-basis benchmark) against the same runs: reported GPU-hours are "
                             f"{report.benchmark_median_ratio:.2f}x the benchmark estimate at the median")
    summary_notes += [f"excluded: {r.run}: {r.excluded}" for r in report.runs if r.excluded]
    form_notes = [f"chosen by leave-one-out mean |ln(reported/estimate)| (large misses count); a form with more terms "
                  f"must beat a simpler one by {SIMPLER_WINS_BY:g} per term. Chosen: {model.chosen.form} (coefficients below)",
                  "GPU count: each run is moved to the count published runs of its size used, along the within-size "
                  "slope its accelerator's tuned benchmarks measured (campaigns cannot separate GPU count from size "
                  "and stack)"]
    loo = summary(points, "error_loo")
    mfu_notes = [f"leave-one-out over {loo['n']} points: median |error| {loo['median_abs']:.1%}, largest {loo['max_abs']:.1%}"]
    mfu_notes += [gpu_count_note(p) for p in catalog.all("mfu")]
    return (f"{heading}Estimator forms (leave-one-out over the campaign set)\n\n"
            + render_rows(forms, FORM_COLUMNS, fmt, form_notes)
            + f"\n{heading}Coefficients of the chosen form\n\n" + render_rows(coefs, COEF_COLUMNS, fmt)
            + f"\n{heading}Published training runs\n\n" + render_rows(runs, RUN_COLUMNS, fmt, summary_notes)
            + f"\n{heading}Sources of the GPU-hours\n\n" + render_rows(runs, SOURCE_COLUMNS, fmt)
            + f"\n{heading}Tuned benchmark MFU points (the upper bound)\n\n" + render_rows(points, MFU_COLUMNS, fmt, mfu_notes))
