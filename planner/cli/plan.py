"""`planner plan`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from planner.catalog.schema import DTYPES
from planner.cli import NodeCount, Number, NumberList, catalog_from, cli, complete_names, mfu_basis_options, output_options, progress
from planner.errors import PlannerError
from planner.report.output import Column, provenance_note, render_record, render_rows

if TYPE_CHECKING:
    from planner.costing.results import Plan

PLAN_FIELDS = [
    Column("model", "model"),
    Column("params", "parameters", "count"),
    Column("tokens", "tokens", "count"),
    Column("samples", "samples seen", "count"),
    Column("gmacs_per_sample", "GMACs per sample", "float"),
    Column("tokens_per_param", "tokens per parameter", "ratio"),
    Column("flops", "training FLOPs (hardware)", "flops"),
    Column("flops_convention", "FLOPs convention"),
    Column("flops_6nd", "law compute C = 6ND", "flops"),
    Column("seq_len", "sequence length"),
    Column("flops_gopher_units", "law compute in Gopher units (5.76e23)", "gopher"),
    Column("predicted_loss", "predicted loss (nats/token)", "loss"),
    Column("law", "law"),
    Column("inference.inference_flops", "inference FLOPs (2·N per token)", "flops"),
    Column("inference.total_flops", "training + inference FLOPs", "flops"),
    Column("inference.compute_optimal_params", "compute-optimal parameters (same loss)", "count"),
    Column("inference.total_flops_saved", "total FLOPs saved vs compute-optimal", "fraction"),
    Column("overtraining.compute_optimal_params", "compute-optimal parameters (same compute)", "count"),
    Column("overtraining.compute_optimal_tokens_per_param", "compute-optimal tokens per parameter", "ratio"),
    Column("overtraining.compute_optimal_loss", "compute-optimal loss (same compute)", "loss"),
    Column("overtraining.extra_compute", "extra compute vs compute-optimal (same loss)", "fraction"),
    Column("data_constrained.epochs", "epochs over unique tokens", "ratio"),
    Column("data_constrained.effective_tokens", "effective tokens D'", "count"),
    Column("cluster", "cluster"),
    Column("accelerator", "accelerator"),
    Column("dtype", "dtype"),
    Column("peak_flops_per_gpu", "dense peak per GPU (FLOP/s)", "flops"),
    Column("mfu", "MFU", "fraction"),
    Column("mfu_kind", "MFU basis"),
    Column("goodput", "goodput", "fraction"),
    Column("gpus", "GPUs"),
    Column("nodes", "nodes"),
    Column("memory.layout", "parallel layout (memory)"),
    Column("memory.per_gpu_gib", "memory per GPU (GiB)", "float"),
    Column("memory.usable_gib", "usable per GPU (GiB)", "float"),
    Column("memory.min", "minimum nodes/GPUs that hold it", "count"),
    Column("gpu_hours", "GPU-hours", "hours"),
    Column("node_hours", "node-hours", "hours"),
    Column("charge.amount", "charged units", "hours"),
    Column("charge.unit", "charge unit"),
    Column("cost.amount", "cost (GPU-hours billed × price)", "hours"),
    Column("cost.currency", "currency"),
    Column("wall_clock_hours", "wall-clock hours", "hours"),
    Column("wall_clock_days", "wall-clock days", "ratio"),
    Column("energy_kwh", "energy, IT (kWh)", "hours"),
    Column("facility_energy_kwh", "energy incl. PUE (kWh)", "hours"),
    Column("co2_kg", "CO2 (kg)", "hours"),
    Column("shape.recipe", "shape recipe"),
    Column("shape.n_layers", "layers"),
    Column("shape.d_model", "d_model"),
    Column("shape.n_heads", "attention heads"),
    Column("shape.n_kv_heads", "key/value heads"),
    Column("shape.ffn", "MLP width"),
    Column("shape.params", "shape's parameters", "count"),
    Column("shape.non_embedding_params", "shape's non-embedding parameters", "count"),
    Column("shape.relative_error", "shape's count vs N", "fraction"),
    Column("shape.flops", "training FLOPs of the shape", "flops"),
    Column("hyperparameters.law", "hyperparameter law"),
    Column("hyperparameters.lr", "peak learning rate", "float"),
    Column("hyperparameters.batch_size", "batch (sequences)", "count"),
    Column("hyperparameters.batch_tokens", "batch (tokens)", "count"),
    Column("hyperparameters.steps", "steps", "count"),
    Column("hyperparameters.warmup", "warmup steps", "count"),
]

PROJECTION_COLUMNS = [
    Column("params", "parameters", "count"),
    Column("flops", "FLOPs", "flops"),
    Column("flops_gopher_units", "FLOPs (Gopher units)", "gopher"),
    Column("tokens", "tokens", "count"),
    Column("tokens_per_param", "tokens/param", "ratio"),
    Column("predicted_loss", "loss", "loss"),
    Column("mfu", "MFU", "fraction"),
    Column("goodput", "goodput", "fraction"),
    Column("gpu_hours", "GPU-hours", "hours"),
    Column("gpu_hours_interval", "GPU-hours, 80% range", "hours"),
    Column("node_hours", "node-hours", "hours"),
    Column("wall_clock_days", "days", "ratio"),
    Column("cost.amount", "cost", "hours"),
]


def goodput_notes(result: dict) -> list[str]:
    """What the goodput and the ranges mean under the result's MFU basis (plans and projections)."""
    notes = []
    kind, goodput = result.get("mfu_kind"), result.get("goodput")
    if goodput is not None:
        if kind == "campaign":
            notes.append("goodput: included in the campaign-realised MFU (restarts, evaluation, failures and idle time "
                         "of published runs)" + ("" if goodput == 1 else f"; a further {goodput:g} applied (--goodput)"))
        elif goodput == 1:
            notes.append("goodput: 1 (steady state: no restarts, evaluation or failures; the default campaign basis "
                         "includes them)")
        else:
            notes.append(f"goodput: {goodput:g} of allocated time trains")
    if kind in ("campaign", "benchmark") and (result.get("gpu_hours_interval") or result.get("flops_interval")):
        what = ("campaigns' reported GPU-hours against this estimate" if kind == "campaign"
                else "published campaigns' GPU-hours against the tuned benchmark")
        notes.append(f"ranges: {result['interval_level']:.0%} prediction intervals from the out-of-sample spread of {what}")
        if result.get("flops_interval"):
            notes.append("the budget fixes the hours: their uncertainty moves into the compute bought, "
                         "hence the ranges on FLOPs, parameters and tokens")
    elif kind == "given":
        notes.append("ranges: none (MFU given)")
    return notes


def plan_notes(plan: Plan) -> list[str]:
    c = plan.costs
    notes = [f"FLOPs convention: {plan.sources['flops_convention']}"]
    if plan.law:
        notes.append(f"law: {plan.law} — {plan.law_form}")
    if plan.shape_basis:
        notes.append(f"attention FLOPs: {plan.shape_basis}")
    if c.mfu_basis:
        notes.append(f"MFU: {c.mfu_basis}")
    notes += goodput_notes(plan.record())
    if plan.law_interval_basis:
        notes.append(f"law ranges: {plan.interval_level:.0%} of {plan.law_interval_basis}")
    if c.energy_basis:
        notes.append(f"energy: {c.energy_basis}" + (f"; {c.site_basis}" if c.site_basis else
                                                    "; no PUE or grid intensity known (--pue, --grid-intensity)"))
    if c.charge:
        notes.append(f"charge: {c.charge.per_node_hour:g} {c.charge.unit} per node-hour ({c.charge.status})")
    if c.cost:
        notes.append(f"cost: {c.cost.describe()}" + ("" if c.cost.interval is None else "; its range is the GPU-hours' range"))
    if c.gpus is None and c.gpu_hours is not None:
        notes.append("wall-clock: give --gpus or --nodes (or --nodes all)")
    notes += [f"warning: {w}" for w in plan.warnings]
    return notes + provenance_note(plan.provenance)


@cli.command(epilog="""\b
Examples:
  # What does the Gopher budget buy on 64 JUWELS Booster nodes?
  planner plan --flops 5.76e23 --cluster juwels-booster --nodes 64
  # How long do 4M GPU-hours take on the whole of JUPITER?
  planner plan --gpu-hours 4e6 --cluster jupiter-booster --nodes all
  # 30 days on 64 JUPITER nodes: which model, how many tokens?
  planner plan --days 30 --nodes 64 --cluster jupiter-booster
  # Chinchilla Table 3 for a law, with hours on H100
  planner plan --params 400M,1B,10B,67B,175B --law chinchilla-approach1 --accelerator h100-sxm
  # Cost of a fixed run, and the loss the law predicts for it
  planner plan --params 7e9 --tokens 2T --cluster leonardo-booster --nodes 128
  # What it costs rented: a cloud node's listed price, or your own
  planner plan --model llama-2-7b --tokens 2T --cluster cloud-8xh100 --nodes 32 --price-per-gpu-hour 2.49
  # A catalog model: Llama 2 7B on 2T tokens; an openCLIP run (6 x GMACs x samples)
  planner plan --model llama-2-7b --tokens 2T --cluster juwels-booster --nodes 64
  # The same at the tuned-benchmark MFU (steady state, the optimistic bound)
  planner plan --model llama-2-7b --tokens 2T --cluster juwels-booster --nodes 64 --mfu-basis benchmark
  planner plan --model openclip-vit-l-14 --samples 34e9 --cluster juwels-booster --nodes 100
  # Compute needed to reach a loss; inference-aware and data-constrained sizing
  planner plan --target-loss 2.1 --law epoch-2024
  planner plan --flops 1e23 --inference-tokens 2e12
  planner plan --flops 1e23 --unique-tokens 1e11 --law muennighoff-2023
  # Over-train: the same compute at 200 tokens per parameter, and what it costs in loss
  planner plan --flops 1e23 --tokens-per-param 200
""")
@click.option("--flops", type=Number(), help="Budget: training FLOPs.")
@click.option("--gpu-hours", type=Number(), help="Budget: GPU-hours on --cluster/--accelerator.")
@click.option("--node-hours", type=Number(), help="Budget: node-hours on --cluster.")
@click.option("--days", type=Number(), help="Budget: days of wall-clock on --nodes/--gpus.")
@click.option("--params", type=NumberList(), help="Model size; a comma list prints a projection table.")
@click.option("--tokens", type=Number(), help="With --params: a fixed run (cost only).")
@click.option("--target-loss", type=Number(), help="Compute to reach this loss (laws that predict loss).")
@click.option("--law", shell_complete=complete_names("laws"), help="Scaling law (planner catalog list laws); default epoch-2024.")
@click.option("--law-file", type=click.Path(dir_okay=False), help="A law YAML file, e.g. from `planner fit --out`.")
@click.option("--cluster", shell_complete=complete_names("clusters"), help="Cluster from the catalog (planner catalog list clusters).")
@click.option("--accelerator", shell_complete=complete_names("accelerators"), help="Accelerator from the catalog, when no cluster applies.")
@click.option("--gpus", type=click.IntRange(min=1), help="GPUs running the job (for wall-clock).")
@click.option("--nodes", type=NodeCount(), help="Nodes running the job, or 'all' for the whole cluster.")
@click.option("--mfu", type=click.FloatRange(min=0, max=1, min_open=True), help="Override the MFU profile (0-1).")
@click.option("--dtype", default="bf16", show_default=True,
              type=click.Choice(DTYPES),
              help="Dtype whose dense peak MFU refers to.")
@click.option("--model", shell_complete=complete_names("models"),
              help="A model from the catalog (planner catalog list models) instead of --params.")
@click.option("--samples", type=Number(), help="CLIP models: samples seen.")
@click.option("--flops-convention", type=click.Choice(["6ND", "6ND+attention"]),
              help="Hardware FLOPs: 6ND+attention (default; MoE: active parameters; CLIP: 6 x MACs) or 6ND.")
@click.option("--seq-len", type=click.IntRange(min=16, max=10_000_000),
              help="Training sequence length for the attention FLOPs (default: the model's, else 4096).")
@mfu_basis_options
@click.option("--goodput", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0, show_default=True,
              help="A further fraction of allocated time that trains (the campaign basis already includes "
                   "typical restarts, evaluation and failures).")
@click.option("--pue", type=click.FloatRange(min=1, max=5),
              help="Site power usage effectiveness (default: the cluster's, where published).")
@click.option("--grid-intensity", type=click.FloatRange(min=0, max=5000),
              help="gCO2 per kWh of the site's electricity, for a CO2 estimate (default: the cluster's, where published).")
@click.option("--price-per-gpu-hour", type=Number(), metavar="AMOUNT",
              help="Price of one GPU-hour for the cost in money (default: the cluster's, for rented clusters); "
                   "also prices an allocation on any cluster.")
@click.option("--currency", help="ISO 4217 code of --price-per-gpu-hour (default: the cluster's currency, else USD).")
@click.option("--inference-tokens", type=Number(), help="Tokens to be served: size for training + inference FLOPs (Sardana et al.).")
@click.option("--unique-tokens", type=Number(), help="Unique tokens available: data-constrained sizing (Muennighoff et al.).")
@click.option("--tokens-per-param", type=Number(), help="Train at this token multiplier M = D/N (over-training, Gadre et al.) "
              "instead of the law's compute-optimal one.")
@click.option("--shape", shell_complete=complete_names("shapes"),
              help="Also give the run's layers, width, heads and MLP width by this recipe (planner catalog list shapes).")
@click.option("--hparams", shell_complete=complete_names("hparams"),
              help="Also give the run's learning rate, batch and steps by this law (planner catalog list hparams).")
@output_options
@click.pass_context
def plan(ctx, fmt, **options):
    """Compute-optimal parameters and tokens for a budget, with FLOPs, GPU-/node-hours, wall-clock and energy.

    Give exactly one of: a budget (--flops, --gpu-hours, --node-hours, --days with --nodes/--gpus),
    --target-loss, --params with --tokens (a fixed run), or --params alone (compute-optimal tokens).
    Numbers accept suffixes: 400M, 1.5B, 2T.
    """
    from planner.costing.plan import build_request, make_plan
    from planner.costing.projection import project

    catalog = catalog_from(ctx)
    recipe, hparams = options.pop("shape"), options.pop("hparams")
    request = build_request(options)
    if recipe and request.model:
        raise PlannerError("a catalog model has its own shape", "shape")
    progress(f"planning with {'model ' + request.model if request.model else 'law ' + (request.law_file or request.law)}")
    if request.params is not None and len(request.params) > 1:
        if recipe or hparams:
            raise PlannerError("shapes and hyperparameters are for one run: give one size", "shape" if recipe else "hparams")
        result = project(request, catalog)
        notes = [f"FLOPs: {result['flops_convention']}: {result['sources']['flops_convention']}",
                 f"law: {result['law']} — {result['law_form']}"]
        if result.get("shape_basis"):
            notes.append(f"attention FLOPs: {result['shape_basis']}")
        notes += goodput_notes(result["rows"][0]) if result.get("accelerator") else []
        priced = next((r["cost"] for r in result["rows"] if r.get("cost")), None)
        if priced:
            notes.append(f"cost: {priced['per_gpu_hour']:g} {priced['currency']} per GPU-hour"
                         + (" (given)" if priced["status"] == "given" else f", as of {priced['as_of']} ({priced['status']}: "
                            f"{priced['source']})") + "; cost = GPU-hours billed × the price")
        notes += [f"warning: {w}" for w in result["warnings"]] + provenance_note(result["provenance"])
        table = [{**r, "cost.amount": r["cost"]["amount"]} if r.get("cost") else r for r in result["rows"]]
        columns = [c for c in PROJECTION_COLUMNS if any(r.get(c.key) is not None for r in table)]
        return render_rows(table, columns, fmt, notes, data=result)
    result = make_plan(request, catalog)
    record, notes = result.record(), plan_notes(result)
    if recipe or hparams:
        record, notes = with_setup(result, record, notes, catalog, recipe, hparams)
    return render_record(record, PLAN_FIELDS, fmt, notes)


def with_setup(result: Plan, record: dict, notes: list[str], catalog, recipe: str | None, hparams: str | None):
    """The plan's record and notes with the run's shape and hyperparameters."""
    from planner.costing.cost import DEFAULT_SEQ_LEN
    from planner.shapes import Counted
    from planner.training import plan_setup, setup_record

    if result.tokens is None:
        raise PlannerError("shapes and hyperparameters are for language models (tokens)", "shape" if recipe else "hparams")
    counted: Counted = "non-embedding" if result.params_counted == "non-embedding" else "total"
    setup = plan_setup(catalog, result.params, result.tokens, result.seq_len or DEFAULT_SEQ_LEN, counted, recipe, hparams)
    extra = [f"shape: the {recipe} recipe's nearest to its aspect ratio within 2% of N ({counted} parameters)"] if recipe else []
    if setup.shape_flops:  # the plan sized N first and costed it on the assumed width: say how far the shape's count is
        extra.append(f"the plan counts {result.flops:.4g} FLOPs ({result.flops_convention}, assumed width); the "
                     f"shape's own are {setup.shape_flops:.4g} ({setup.shape_flops / result.flops - 1:+.1%}); "
                     "`planner sweep` with `shape:` costs runs on the shape's")
    if setup.hyperparameters is not None:
        law = catalog.hparam_law(hparams)
        extra.append(f"hyperparameters: {law.citation}; lr = {law.learning_rate.formula()}, batch tokens = "
                     f"{law.batch_tokens.formula()}")
        extra += [f"warning: {w}" for w in setup.hyperparameters.warnings]
    at = len(notes) - len(provenance_note(result.provenance))  # before the provenance lines, which end every output
    return {**record, **setup_record(setup)}, notes[:at] + extra + notes[at:]
