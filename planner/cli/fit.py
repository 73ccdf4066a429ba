"""`planner fit` and `planner compare`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from planner.cli import Number, catalog_from, cli, emit, output_options, progress
from planner.errors import PlannerError
from planner.files import check_writable
from planner.fit.form import MAX_BINS, MAX_BOOTSTRAP, SOLVERS
from planner.fit.forms import FORMS, writing_laws
from planner.report.output import FORMATS, Column, render_rows

if TYPE_CHECKING:
    from planner.fit.result import FitResult

FIT_COLUMNS = [Column("name", "parameter"), Column("value", "estimate", "float"), Column("lo", "95% CI low", "float"),
               Column("hi", "95% CI high", "float")]


def data_options(func):
    """Column and procedure options shared by fit and compare."""
    options = [
        click.option("--form", type=click.Choice(list(FORMS)), required=True,
                     help="; ".join(f"{name}: {form.summary}" for name, form in FORMS.items()) + "."),
        click.option("--params-col", default="params", show_default=True, help="Column of parameter counts N."),
        click.option("--tokens-col", help="Column of training tokens D."),
        click.option("--flops-col", help="Column of training FLOPs C (tokens = C/6N)."),
        click.option("--unique-tokens-col", help="data-constrained: column of the unique tokens each run's data held "
                     "(epochs = tokens / unique tokens)."),
        click.option("--base-law", metavar="LAW", help="data-constrained: hold this catalog law's E, A, B, alpha, beta fixed "
                     "and fit R*_N, R*_D alone, as Muennighoff et al. did (e.g. muennighoff-2023)."),
        click.option("--loss-col", default="loss", show_default=True, help="Column of final losses."),
        click.option("--x-col", default="flops", show_default=True, help="power/saturating: compute column."),
        click.option("--y-col", default="loss", show_default=True, help="power/saturating: loss or error column."),
        click.option("--one-minus", is_flag=True, help="Use 1 - y (accuracy or recall columns → error)."),
        click.option("--where", multiple=True, metavar="COL=V1,V2", help="Keep rows whose COL is one of the values; repeatable."),
        click.option("--bins", type=click.IntRange(min=1, max=MAX_BINS),
                     help="Fit the minimum of each of K equal-width log-compute bins (Cherti et al. 2023)."),
        click.option("--pareto", is_flag=True, help="Fit the non-dominated runs (each better than every cheaper run) instead of bins."),
        click.option("--hull", is_flag=True, help="Fit the non-dominated runs on their lower convex hull in log-log."),
        click.option("--drop-highest", type=click.IntRange(min=0), default=0, help="Drop the K highest-loss rows (Epoch drop 5)."),
        click.option("--huber-delta", type=Number(), default=1e-3, show_default=True, help="chinchilla: Huber δ on log loss."),
        click.option("--solver", type=click.Choice(list(SOLVERS)), default="vpnls", show_default=True,
                     help="chinchilla: variable projection (exponent pairs profiled by non-negative least squares, the best "
                          "polished), or bfgs: Hoffmann's 4,500-start grid. Both minimise the same objective."),
        click.option("--budget-tolerance", type=Number(), default=0.05, show_default=True,
                     help="isoflop: runs within this many decades of FLOPs share a budget."),
        click.option("--bootstrap", type=click.IntRange(min=0, max=MAX_BOOTSTRAP), default=0,
                     help="Resamples for 95% percentile intervals (0: off)."),
        click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=0, show_default=True,
                     help="Bootstrap seed (deterministic)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def fit_options(kwargs: dict):
    from planner.fit import FitOptions
    from planner.fit.curves import HULL, PARETO

    keys = ("form", "params_col", "tokens_col", "flops_col", "loss_col", "x_col", "y_col", "one_minus", "bins",
            "bootstrap", "seed", "huber_delta", "drop_highest", "budget_tolerance", "solver", "unique_tokens_col", "base_law")
    chosen = [name for name, on in (("--bins", bool(kwargs["bins"])), ("--pareto", kwargs.pop("pareto")),
                                    ("--hull", kwargs.pop("hull"))) if on]
    if len(chosen) > 1:
        raise PlannerError(f"give one way to pick the frontier, not {' and '.join(chosen)}")
    if kwargs["solver"] != "vpnls" and kwargs["form"] != "chinchilla":
        raise PlannerError(f"--solver chooses how the chinchilla form is solved; the {kwargs['form']} form has one way")
    if chosen and chosen[0] != "--bins":
        if not FORMS[kwargs["form"]].frontier:
            raise PlannerError(f"{chosen[0]} picks frontier runs for the power and saturating forms, not {kwargs['form']}")
        kwargs["bins"] = PARETO if chosen[0] == "--pareto" else HULL
    return FitOptions(**{k: kwargs.pop(k) for k in keys}, where=list(kwargs.pop("where")))


@cli.command(epilog="""\b
Examples:
  # Chinchilla Approach 3 on Epoch's extraction, with Epoch's bootstrap
  planner fit runs.csv --form chinchilla --params-col "Model Size" --flops-col "Training FLOP" \\
      --drop-highest 5 --bootstrap 4000 --seed 42 --out mylaw.yaml
  planner plan --flops 1e22 --law-file mylaw.yaml
  # openCLIP: error = 1 - top-1 accuracy against GMACs, minimum of 5 log bins
  planner fit openclip.csv --form power --x-col gmacs_total --y-col acc1 --one-minus --bins 5 \\
      --where downstream_dataset=imagenet1k --where upstream_dataset=LAION-80M,LAION-400M,LAION-2B
""")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@data_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Write the fitted law as YAML ({', '.join(writing_laws())} forms) for `planner plan --law-file`.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG of data, fit and extrapolation (needs matplotlib).")
@click.option("--force", is_flag=True, help="Overwrite --out / --plot files.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format.")
def fit(data, fmt, out, plot, force, **kwargs):
    """Fit a scaling law to your own runs (CSV), with bootstrap intervals.

    Forms: chinchilla (L = E + A/N^alpha + B/D^beta, Hoffmann/Epoch's objective: LSE parametrisation,
    summed Huber loss on log loss; solved by variable projection, or --solver bfgs: BFGS from 4,500
    starts, best optimum kept), isoflop (Approach 2, with its own bias on your sizes), overtrain (Gadre
    et al. 2024, over token multipliers), data-constrained (Muennighoff et al. 2023, repeated epochs),
    power and saturating (loss or error against compute). Up to 1,000,000 rows; on more than 500 runs
    (or frontier points) the search runs on 500 of them spread over compute, and its best optimum is
    refined on all of them.
    """
    from planner import fit as fitting

    if kwargs.get("base_law"):  # from this command's catalog (--catalog, PLANNER_CATALOG), like --law elsewhere
        try:
            kwargs["base_law"] = catalog_from(click.get_current_context()).law(kwargs["base_law"])
        except PlannerError as e:
            raise PlannerError(e.message, "base_law", refs=e.refs) from None
    opts = fit_options(kwargs)
    for target in (out, plot):
        if target is not None:
            check_writable(target, force)  # fail before a long fit, not after
    result, samples = fitting.run_with_samples(data, opts, progress)
    if out is not None:
        from planner.fit.lawfile import law_yaml

        emit(law_yaml(result, out, samples), out, force)
    if plot is not None:
        from planner.report.plot import plot_fit

        plot_fit(result, samples, data, opts, plot, force)
        progress(f"wrote {plot}")
    rows = [interval_row(result, k, k, v) for k, v in result.params.items()]
    rows += [interval_row(result, f"{k} (allocation)", k, v) for k, v in (result.allocation or {}).items() if k not in result.params]
    notes = [f"form: {result.form}; {result.n_points} points spanning {result.data.span_decades:.2f} decades; "
             f"objective {result.objective:.6g}; converged: {'yes' if result.converged else 'NO'}"]
    notes += [f"warning: {w}" for w in result.warnings]
    emit(render_rows(rows, FIT_COLUMNS, fmt, notes, data=result.record()), None, False)


def interval_row(result: FitResult, name: str, key: str, value: float) -> dict:
    lo, hi = result.interval(key) or (None, None)
    return {"name": name, "value": value, "lo": lo, "hi": hi}


@cli.command(epilog="""\b
Examples:
  # openCLIP LAION (min of 5 log bins) against OpenAI's WIT (3 models, all points)
  planner compare laion.csv clip-wit.csv --form power --x-col gmacs_total --y-col acc1 --one-minus \\
      --bins 5 --bins-b 0 --target-flops 1e13 --chance 0.999 --bootstrap 1000
""")
@click.argument("data_a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data_b", type=click.Path(dir_okay=False, path_type=Path))
@data_options
@click.option("--bins-b", type=click.IntRange(min=0, max=MAX_BINS), help="Bins for B when they differ from --bins (0: all points).")
@click.option("--target-flops", type=Number(), help="Compare predictions at this compute (in the x column's unit).")
@click.option("--target-error", type=Number(), help="Compute each procedure needs to reach this error (or loss), and their ratio.")
@click.option("--chance", type=float, help="Error at chance level (e.g. 0.999 for ImageNet-1k): flags points with too little signal.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG of both fits (needs matplotlib).")
@output_options
@click.pass_context
def compare(ctx, data_a, data_b, fmt, bins_b, target_flops, target_error, chance, plot, **kwargs):
    """Compare two learning procedures (data sets, recipes) by their fitted laws: crossover compute
    with a bootstrap interval, predictions at a target compute, and warnings when the comparison
    cannot be trusted. Both CSVs are read with the same column options.
    """
    from planner.fit.compare import compare as run_compare

    opts = fit_options(kwargs)
    if opts.bootstrap == 0:
        opts.bootstrap = 1000
    opts_b = opts if bins_b is None else replace(opts, bins=bins_b or None)
    result = run_compare(data_a, data_b, opts, target_flops, chance, progress, opts_b, target_error)
    if plot is not None:
        from planner.report.plot import plot_compare

        plot_compare(result, data_a, data_b, opts, plot, ctx.params.get("force", False), opts_b)
        progress(f"wrote {plot}")
    cross_lo, cross_hi = result.crossover_ci or (None, None)
    rows = [{"quantity": "crossover compute", "value": result.crossover},
            {"quantity": "crossover 95% CI low", "value": cross_lo},
            {"quantity": "crossover 95% CI high", "value": cross_hi},
            {"quantity": "bootstrap pairs with no crossover", "value": result.bootstrap_no_crossover_fraction},
            {"quantity": "span (decades, smaller data set)", "value": result.span_decades}]
    if result.at_target:
        t = result.at_target
        rows += [{"quantity": f"A at {t.flops:.3g}", "value": t.a}, {"quantity": f"B at {t.flops:.3g}", "value": t.b},
                 {"quantity": "A − B at target", "value": t.difference}]
    if result.at_target_error:
        e = result.at_target_error
        ratio_lo, ratio_hi = e.ratio_ci or (None, None)
        rows += [{"quantity": f"A: compute to reach {e.error:g}", "value": e.a_flops},
                 {"quantity": f"B: compute to reach {e.error:g}", "value": e.b_flops},
                 {"quantity": "compute ratio A / B", "value": e.ratio_a_over_b},
                 {"quantity": "ratio 95% CI low", "value": ratio_lo}, {"quantity": "ratio 95% CI high", "value": ratio_hi}]
    for label, fitted in (("A", result.a), ("B", result.b)):
        rows += [{"quantity": f"{label}: {k}", "value": v} for k, v in fitted.params.items()]
    notes = [f"better at low compute: {result.better_at_low_compute.upper()}"]
    notes += [f"warning: {w}" for w in result.warnings]
    return render_rows(rows, [Column("quantity", "quantity"), Column("value", "value", "float")], fmt, notes, data=result.record())
