"""`planner simulate`."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli import Number, catalog_from, cli, complete_names, output_options, progress
from planner.errors import PlannerError
from planner.report.output import Column, provenance_note, render_rows

LABELS = {"alpha": "alpha (N exponent)", "beta": "beta (D exponent)", "E": "E (irreducible loss)",
          "a": "a (N_opt ∝ C^a)", "b": "b (D_opt ∝ C^b)", "params_at_target": "N_opt at target",
          "tokens_at_target": "D_opt at target", "loss_at_target": "loss at target"}
QUANTITY_NAMES = list(LABELS)
COLUMNS = [Column("quantity", "quantity"), Column("truth", "truth", "float"), Column("median", "median of fits", "float"),
           Column("bias", "bias", "fraction"), Column("bias_se", "± (trials)", "fraction"),
           Column("ci80", "80% of fits", "float"), Column("ci95", "95% of fits", "float"),
           Column("coverage95", "95% CI covers truth", "fraction")]


@cli.command(epilog="""\b
Examples:
  # What would the IsoFLOP sweep's fit recover, if the truth were Chinchilla Approach 3 with 1% noise?
  planner simulate examples/sweeps/isoflop-juwels.yaml --target-flops 1e23
  # The truth from your own fit (its residuals set the noise), with bootstrap coverage
  planner simulate sweep.yaml --law-file mylaw.yaml --trials 200 --bootstrap 200 --format json
  # Two procedures (power laws fitted as `planner compare` fits them): does a 3-point sweep over the
  # 1.07 decades WIT spans name the winner at 1e12 GMACs?
  planner simulate --compare laion.csv clip-wit.csv --x-col gmacs_total --y-col acc1 --one-minus \\
      --bins 5 --bins-b 0 --target-flops 1e12 --decades 1.07 --points 3
""")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--law", shell_complete=complete_names("laws"), help="The true law (catalog name; default: the spec's law).")
@click.option("--law-file", type=click.Path(dir_okay=False), help="The true law as a law file (e.g. from `planner fit --out`).")
@click.option("--noise", type=click.FloatRange(min=0), help="Relative noise on each measurement (sd of its ln; default: from the law "
              "file's fit, else 0.01; with --compare, each data set's scatter about its law).")
@click.option("--trials", type=click.IntRange(min=20), help="Monte Carlo trials (default 200; 4,000 with --compare).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Resamples per trial, as `planner fit --bootstrap`: counts how often its 95% interval holds the truth.")
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=0, show_default=True, help="Seed (deterministic).")
@click.option("--target-flops", type=Number(), help="Compute at which the quantities (or the winner) are read (default: "
              "100x the sweep's largest run; required with --compare, in the x column's unit).")
@click.option("--need", metavar="'QUANTITY within X%'", help="Search IsoFLOP designs (decades, budgets, sizes per "
              "budget) for the cheapest whose fits meet this in 80% of trials, e.g. 'params_at_target within 25%'.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG of the fitted quantity against "
              "the GPU-hours spent, budget by budget (IsoFLOP specs; needs matplotlib; --force overwrites).")
@click.option("--plot-quantity", "progression", type=click.Choice(QUANTITY_NAMES), help="The quantity --plot follows (default: "
              "the --need's, else params_at_target).")
@click.option("--compare", nargs=2, type=click.Path(dir_okay=False, path_type=Path), metavar="A.csv B.csv",
              help="Instead of a spec: two procedures' data, whose power laws (as `planner compare` fits them) are the truth.")
@click.option("--x-col", default="flops", show_default=True, help="--compare: compute column.")
@click.option("--y-col", default="loss", show_default=True, help="--compare: loss or error column.")
@click.option("--one-minus", is_flag=True, help="--compare: use 1 - y (accuracy → error).")
@click.option("--where", multiple=True, metavar="COL=V1,V2", help="--compare: keep rows whose COL is one of the values.")
@click.option("--bins", type=click.IntRange(min=0), help="--compare: fit A through the minima of K log-compute bins.")
@click.option("--bins-b", type=click.IntRange(min=0), help="--compare: bins for B when they differ from --bins (0: all points).")
@click.option("--up-to", type=Number(), help="--compare: the sweep's largest compute (default: the smaller of the two "
              "data sets' largest).")
@click.option("--decades", type=Number(), default=2.0, show_default=True, help="--compare: decades the sweep spans.")
@click.option("--points", type=click.IntRange(min=2), default=5, show_default=True,
              help="--compare: measurements per procedure, log-spaced over the span.")
@output_options
@click.pass_context
def simulate(ctx, fmt, spec, compare, plot, progression, **options):
    """What a sweep would determine, before it is run. With a sweep SPEC: Monte Carlo trials draw the
    sweep's final losses from a known law with noise, fit each trial as `planner fit --form
    chinchilla` does, and report per quantity the truth, the median of the fits, their bias and
    spread, and (with --bootstrap) how often the fitted 95% interval contains the truth; the sweep is
    designed and costed as `planner sweep` would (nothing is written). With --compare A.csv B.csv:
    how often a sweep of --points measurements over --decades names the procedure that is better at
    --target-flops.
    """
    compare_keys = ("x_col", "y_col", "one_minus", "where", "bins", "bins_b", "up_to", "decades", "points")
    compare_options = {k: options.pop(k) for k in compare_keys}
    if compare:
        if spec is not None:
            raise PlannerError("give a sweep SPEC or --compare A.csv B.csv, not both")
        if plot or progression:
            raise PlannerError("--plot follows a sweep SPEC budget by budget; --compare has no budgets")
        return _compare(compare, fmt, compare_options, **options)
    if spec is None:
        raise PlannerError("give a sweep SPEC (a `planner sweep` spec file), or --compare A.csv B.csv")
    given = [f"--{k.replace('_', '-')}" for k in compare_keys
             if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT]
    if given:
        raise PlannerError(f"{', '.join(given)} {'belongs' if len(given) == 1 else 'belong'} to --compare; a sweep SPEC "
                           "brings its own runs")
    from planner.simulate.study import simulate as run

    catalog = catalog_from(ctx)
    options["trials"] = options["trials"] or 200
    if plot is not None:
        from planner.files import check_writable
        from planner.report.plot import require_matplotlib

        require_matplotlib()
        check_writable(plot, ctx.params.get("force", False))  # before the trials, not after
        # the library's field `progression` is this command's --plot-quantity, so its errors name that option
        options["progression"] = progression or (options["need"] or "").split(" ")[0] or "params_at_target"
    elif progression:
        raise PlannerError("--plot-quantity goes with --plot")
    result = run(spec, catalog, progress=progress, **options)
    if plot is not None:
        from planner.report.plot import plot_progression

        plot_progression(result, plot, ctx.params.get("force", False))
        progress(f"wrote {plot}")
    rows = [{"quantity": LABELS.get(name, name), **q.record()} for name, q in result.quantities.items()]
    hours = "–" if result.gpu_hours is None else f"{result.gpu_hours:,.0f}"
    if result.gpu_hours_interval:
        hours += f" (80% range {result.gpu_hours_interval[0]:,.0f}–{result.gpu_hours_interval[1]:,.0f})"
    notes = [f"true law: {result.law}; noise {result.noise:.3g} on ln(final loss) ({result.noise_source})",
             f"sweep: {result.runs} runs over {result.span_decades:.2f} decades of compute; one sweep costs {hours} GPU-hours",
             f"{result.trials - result.failed} of {result.trials} trials fitted (seed {result.seed}); target "
             f"{result.target_flops:.3g} FLOPs",
             "bias = median of fits / truth − 1, ± its Monte Carlo standard error; 80% and 95% of fits: the range one "
             "sweep's answer falls in"]
    if result.bootstrap:
        notes.append(f"coverage: each trial's {result.bootstrap}-resample bootstrap 95% interval, as `planner fit --bootstrap`")
    if result.need is not None:
        tried = len(result.designs_tried)
        if result.need_met:
            budgets = ", ".join(f"{b:.3g}" for b in result.budgets)
            share = result.designs_tried[-1].share or 0.0
            notes.insert(0, f"need '{result.need}': met ({share:.0%} of trials, 80% needed) by design {tried} of those "
                         f"searched cheapest first: budgets {budgets}, {result.points} sizes each, {hours} GPU-hours")
        else:
            notes.insert(0, f"need '{result.need}': not met by any of the {tried} designs simulated; the spec's own is shown")
    notes += [f"warning: {w}" for w in result.warnings] + provenance_note(catalog.provenance())
    return render_rows(rows, COLUMNS, fmt, notes, data=result)


COMPARE_COLUMNS = [Column("quantity", "quantity"), Column("value", "value", "float")]


def _compare(paths, fmt, c: dict, *, law, law_file, noise, trials, bootstrap, seed, target_flops, need):
    from dataclasses import replace

    from planner.fit import FitOptions
    from planner.simulate.compare import simulate_comparison, truth_from

    if law or law_file or bootstrap or need:
        raise PlannerError("--law, --law-file, --bootstrap and --need belong to a sweep SPEC; --compare takes its laws from "
                           "A and B")
    if target_flops is None:
        raise PlannerError("give the compute at which the winner is read (--target-flops)")
    opts = FitOptions(form="power", x_col=c["x_col"], y_col=c["y_col"], one_minus=c["one_minus"], where=list(c["where"]),
                      bins=c["bins"] or None)
    opts_b = opts if c["bins_b"] is None else replace(opts, bins=c["bins_b"] or None)
    a, b = truth_from(paths[0], opts, noise), truth_from(paths[1], opts_b, noise)
    from planner.fit.runner import load

    up_to = c["up_to"] or min(float(load(paths[0], opts).compute.max()), float(load(paths[1], opts_b).compute.max()))
    trials = trials or 4000
    progress(f"simulating {trials} trials of {c['points']} points over {c['decades']:g} decades for {paths[0]} and {paths[1]}")
    r = simulate_comparison(a, b, target_flops, up_to, c["decades"], c["points"], trials, seed)
    label = {"a": f"A ({a.path})", "b": f"B ({b.path})"}
    rows: list[dict] = [{"quantity": "winner at target under the true laws", "value": label[r.true_winner]},
            {"quantity": "trials that name the true winner", "value": f"{r.winner_right:.1%}"},
            {"quantity": "fitted A − B at target (median)", "value": r.difference_median},
            {"quantity": "fitted A − B at target (80% of trials)", "value": r.difference_ci80},
            {"quantity": "true A − B at target", "value": float(a.at(r.target_flops) - b.at(r.target_flops))},
            {"quantity": "true crossover", "value": r.true_crossover},
            {"quantity": "trials whose fitted curves cross (sweep start to 1,000x target)", "value": f"{r.crossover_found:.1%}"}]
    notes = [f"truth A: {a.beta:.4g}·C^{a.alpha:.4g}, noise {a.noise:.3g} on ln error ({a.noise_source})",
             f"truth B: {b.beta:.4g}·C^{b.alpha:.4g}, noise {b.noise:.3g} on ln error ({b.noise_source})",
             f"sweep: {len(r.sweep)} points per procedure from {r.sweep[0]:.3g} to {r.sweep[-1]:.3g} ({r.decades:g} decades); "
             f"target {r.target_flops:.3g}; {r.trials} trials (seed {r.seed})"]
    notes += [f"warning: {w}" for w in r.warnings]
    return render_rows(rows, COMPARE_COLUMNS, fmt, notes, data=r)
