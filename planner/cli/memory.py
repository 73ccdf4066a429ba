"""`planner memory`."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli import NodeCount, Number, catalog_from, cli, complete_names, emit
from planner.errors import PlannerError
from planner.report.output import FORMATS, Column, human, output_format, render_record

FIELDS = [
    Column("model", "model"),
    Column("params", "parameters", "count"),
    Column("cluster", "cluster"),
    Column("accelerator", "accelerator"),
    Column("gpus", "GPUs"),
    Column("nodes", "nodes"),
    Column("layout_text", "layout"),
    Column("layout.seq_len", "sequence length"),
    Column("layout.micro_batch", "micro-batch (sequences)"),
    Column("layout.precision", "precision"),
    Column("layout.optimizer", "optimizer"),
    Column("grad_dtype", "gradient dtype"),
    Column("stage", "most-loaded pipeline stage"),
    Column("params_per_gpu", "parameters per GPU (before ZeRO)", "count"),
    Column("gib.weights", "weights (GiB)", "float"),
    Column("gib.gradients", "gradients (GiB)", "float"),
    Column("gib.optimizer", "optimizer states (GiB)", "float"),
    Column("gib.activations", "activations (GiB)", "float"),
    Column("gib.buffers", "buffers (GiB)", "float"),
    Column("gib.total", "total per GPU (GiB)", "float"),
    Column("gib.capacity", "GPU memory (GiB)", "float"),
    Column("gib.usable", "usable after margin (GiB)", "float"),
    Column("fits", "fits"),
    Column("minimum", "minimum to fit"),
    Column("minimum_full_recompute", "minimum with full recompute (~33% more compute)"),
]


@cli.command(epilog="""\b
Examples:
  # Will a 70B model train on 64 JUWELS Booster nodes, and with which layout?
  planner memory --model llama-2-70b --cluster juwels-booster --nodes 64
  # The fewest nodes that hold GPT-3 175B (exit 2 when even the whole cluster is too small)
  planner memory --model gpt-3-175b --cluster juwels-booster
  # A fixed layout: ZeRO-1, TP 4, PP 16, full recompute
  planner memory --model gpt-3-175b --cluster juwels-booster --nodes 64 --zero 1 --tp 4 --pp 16 --recompute full
  # The ZeRO paper's 16 bytes per parameter: 2-byte gradients instead of the default fp32 (18 bytes)
  planner memory --params 7.5B --accelerator a100-sxm-80gb --gpus 64 --zero 1 --grad-dtype bf16
  # A bare parameter count (the shape is assumed and said so) on 8 H100s with FSDP
  planner memory --params 13B --accelerator h100-sxm --gpus 8 --fsdp full_shard
  # An MoE with ZeRO-1 and its 256 routed experts split over 64 expert-parallel ranks
  planner memory --model deepseek-v3 --cluster jupiter-booster --nodes 128 --zero 1 --ep 64
""")
@click.option("--model", shell_complete=complete_names("models"), help="Model from the catalog (planner catalog list models).")
@click.option("--params", type=Number(), help="Parameter count instead of --model; the shape is assumed.")
@click.option("--layers", type=click.IntRange(min=1), help="With --params: number of layers.")
@click.option("--hidden", type=click.IntRange(min=1), help="With --params: model width d_model.")
@click.option("--cluster", shell_complete=complete_names("clusters"), help="Cluster from the catalog (its GPUs per node bound TP).")
@click.option("--accelerator", shell_complete=complete_names("accelerators"), help="Accelerator from the catalog, when no cluster applies.")
@click.option("--gpus", type=click.IntRange(min=1), help="GPUs of the job; without --gpus/--nodes the minimum is searched.")
@click.option("--nodes", type=NodeCount(), help="Nodes of the job, or 'all'.")
@click.option("--zero", type=click.IntRange(0, 3), help="ZeRO stage 0-3 (default: searched).")
@click.option("--fsdp", type=click.Choice(["full_shard", "shard_grad_op", "hybrid_shard", "no_shard"]),
              help="PyTorch FSDP sharding strategy (ZeRO-3, -2, -3 within a node, -0).")
@click.option("--tp", type=click.IntRange(min=1), help="Tensor-parallel size (default: searched, ≤ GPUs per node).")
@click.option("--pp", type=click.IntRange(min=1), help="Pipeline stages (default: searched, dividing the layers).")
@click.option("--ep", type=click.IntRange(min=1),
              help="Expert parallelism for MoE models: routed experts split over EP data-parallel ranks.")
@click.option("--seq-len", type=click.IntRange(min=1), help="Sequence length (default: the model's, else 4096).")
@click.option("--micro-batch", type=click.IntRange(min=1), default=1, show_default=True, help="Sequences per micro-batch.")
@click.option("--micro-batches", type=click.IntRange(min=1), help="Micro-batches per step (pipeline in-flight; default ≥ PP).")
@click.option("--recompute", type=click.Choice(["none", "selective", "full"]),
              help="Activation recompute (default: selective, full only if selective fits nowhere).")
@click.option("--precision", type=click.Choice(["bf16", "fp16", "fp32"]), default="bf16", show_default=True,
              help="bf16/fp16 mixed precision (fp32 master weights) or plain fp32.")
@click.option("--optimizer", type=click.Choice(["adamw", "adamw-8bit", "sgd-momentum", "sgd"]), default="adamw",
              show_default=True, help="Optimizer (sets the bytes of state per parameter).")
@click.option("--grad-dtype", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="Gradient buffers: fp32 (4 bytes per parameter, accumulated in fp32 as Megatron-LM and DeepSpeed do) "
                   "or bf16 (2 bytes, fp16 under --precision fp16; the ZeRO paper's 16 bytes per parameter).")
@click.option("--fp32-grads", is_flag=True, hidden=True, help="Former flag: the same as --grad-dtype fp32 (the default now).")
@click.option("--no-flash-attention", is_flag=True, help="Store the attention scores (5·a·s²·b bytes per layer).")
@click.option("--no-sequence-parallel", is_flag=True, help="TP without sequence parallelism (norms, dropout replicated).")
@click.option("--margin", type=click.FloatRange(0, 0.9), default=0.10, show_default=True,
              help="Fraction of GPU memory kept free for CUDA context, NCCL and fragmentation (assumption).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file (atomically) instead of stdout.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.pass_context
def memory(ctx, fmt, out, force, **o):
    """Per-GPU training memory (weights, gradients, optimizer states, activations, buffers) and whether it fits.

    With --nodes or --gpus: the simplest layout that fits there (or the one given by --tp/--pp/--zero).
    Without: the fewest nodes that hold the model. Exits 2 with one line on stderr when it does not fit
    (the breakdown, with "fits": false, still goes to stdout). Bytes are per GPU on the most-loaded
    pipeline stage; GiB = 2^30 bytes, the catalog's GPU memory is in GB = 10^9 bytes.
    """
    from planner.costing.hardware import hardware_for
    from planner.costing.memory_report import memory_report

    catalog = catalog_from(ctx)
    model, label = _model(catalog, o)
    hw = hardware_for(catalog, cluster=o["cluster"], accelerator=o["accelerator"], gpus=o["gpus"], nodes=o["nodes"])
    given = {"seq_len": o["seq_len"], "micro_batch": o["micro_batch"], "micro_batches": o["micro_batches"],
             "recompute": o["recompute"], "precision": o["precision"], "optimizer": o["optimizer"],
             "grad_dtype": o["grad_dtype"], "flash_attention": not o["no_flash_attention"],
             "sequence_parallel": not o["no_sequence_parallel"], "layers": o["layers"], "hidden": o["hidden"], "ep": o["ep"]}
    layout = {k: v for k, v in given.items() if v is not None}
    fixed = {"tp": o["tp"], "pp": o["pp"], "zero": o["zero"], "fsdp": o["fsdp"], "margin": o["margin"]}
    if o["zero"] is not None and o["fsdp"]:
        raise PlannerError("conflicts with {zero}; give one", "fsdp", refs=("zero",))
    if o["fp32_grads"] and o["grad_dtype"] != "fp32":
        raise PlannerError(f"contradicts {{grad_dtype}} {o['grad_dtype']} (give {{grad_dtype}} alone)", "fp32_grads",
                           refs=("grad_dtype",))
    if o["precision"] == "fp32" and o["grad_dtype"] != "fp32":
        raise PlannerError(f"{o['grad_dtype']} needs {{precision}} bf16 or fp16: fp32 training keeps fp32 gradients",
                           "grad_dtype", refs=("precision",))
    report = memory_report(model, label, hw, fixed, layout)
    record = report.record()
    shown = {**record, "fits": "yes" if report.fits else "no"} if not output_format(fmt).machine else record
    emit(render_record(shown, FIELDS, fmt, list(report.breakdown.notes)), out, force)
    if not report.fits:
        raise PlannerError(report.refusal())


def _model(catalog, o):
    if (o["model"] is None) == (o["params"] is None):
        raise PlannerError("give --model NAME or --params N (one of them)")
    if o["model"]:
        model = catalog.model(o["model"])
        if model.shape is not None and (o["layers"] or o["hidden"]):
            raise PlannerError(f"--layers/--hidden are for --params; '{model.name}' has its shape in the catalog")
        return model, model.name
    return o["params"], f"{human(o['params'], 'count')} parameters"
