"""`planner simulate`."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli import Number, catalog_from, cli, complete_names, output_options, progress
from planner.report.output import Column, provenance_note, render_rows

LABELS = {"alpha": "alpha (N exponent)", "beta": "beta (D exponent)", "E": "E (irreducible loss)",
          "a": "a (N_opt ∝ C^a)", "b": "b (D_opt ∝ C^b)", "params_at_target": "N_opt at target",
          "tokens_at_target": "D_opt at target", "loss_at_target": "loss at target"}
COLUMNS = [Column("quantity", "quantity"), Column("truth", "truth", "float"), Column("median", "median of fits", "float"),
           Column("bias", "bias", "fraction"), Column("ci80", "80% of fits", "float"), Column("ci95", "95% of fits", "float"),
           Column("coverage95", "95% CI covers truth", "fraction")]


@cli.command(epilog="""\b
Examples:
  # What would the IsoFLOP sweep's fit recover, if the truth were Chinchilla Approach 3 with 1% noise?
  planner simulate examples/sweeps/isoflop-juwels.yaml --target-flops 1e23
  # The truth from your own fit (its residuals set the noise), with bootstrap coverage
  planner simulate sweep.yaml --law-file mylaw.yaml --trials 200 --bootstrap 200 --format json
""")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--law", shell_complete=complete_names("laws"), help="The true law (catalog name; default: the spec's law).")
@click.option("--law-file", type=click.Path(dir_okay=False), help="The true law as a law file (e.g. from `planner fit --out`).")
@click.option("--noise", type=Number(), help="Relative noise on each run's final loss (sd of ln loss; default: from the "
              "law file's fit, else 0.01).")
@click.option("--trials", type=click.IntRange(min=2), default=200, show_default=True, help="Monte Carlo trials.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Resamples per trial, as `planner fit --bootstrap`: counts how often its 95% interval holds the truth.")
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=0, show_default=True, help="Seed (deterministic).")
@click.option("--target-flops", type=Number(), help="Compute at which N_opt, D_opt and the loss are read (default: 100x "
              "the sweep's largest run).")
@output_options
@click.pass_context
def simulate(ctx, fmt, spec, **options):
    """What a sweep's fit would determine, before it is run: Monte Carlo trials draw the sweep's final
    losses from a known law with noise, fit each trial as `planner fit --form chinchilla` does, and
    report per quantity the truth, the median of the fits, their bias and spread, and (with
    --bootstrap) how often the fitted 95% interval contains the truth. The sweep is designed and
    costed as `planner sweep` would (nothing is written).
    """
    from planner.simulate.study import simulate as run

    catalog = catalog_from(ctx)
    progress(f"simulating {options['trials']} trials of {spec}")
    result = run(spec, catalog, **options)
    for w in result.warnings:
        progress(f"warning: {w}")
    rows = [{"quantity": LABELS.get(name, name), **q.record()} for name, q in result.quantities.items()]
    hours = "–" if result.gpu_hours is None else f"{result.gpu_hours:,.0f}"
    if result.gpu_hours_interval:
        hours += f" (80% range {result.gpu_hours_interval[0]:,.0f}–{result.gpu_hours_interval[1]:,.0f})"
    notes = [f"true law: {result.law}; noise {result.noise:.3g} on ln(final loss) ({result.noise_source})",
             f"sweep: {result.runs} runs over {result.span_decades:.2f} decades of compute; one sweep costs {hours} GPU-hours",
             f"{result.trials - result.failed} of {result.trials} trials fitted (seed {result.seed}); target "
             f"{result.target_flops:.3g} FLOPs",
             "bias = median of fits / truth − 1; 80% and 95% of fits: the range one sweep's answer falls in"]
    if result.bootstrap:
        notes.append(f"coverage: each trial's {result.bootstrap}-resample bootstrap 95% interval, as `planner fit --bootstrap`")
    notes += [f"warning: {w}" for w in result.warnings] + provenance_note(catalog.provenance())
    return render_rows(rows, COLUMNS, fmt, notes, data=result)
