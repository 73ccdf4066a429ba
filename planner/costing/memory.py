"""Training memory per GPU, and the fewest nodes that hold a model.

Model states follow the ZeRO paper's bytes per parameter (Rajbhandari et al. 2020) sharded over the
data-parallel degree N_d, with fp32 gradients by default (Megatron-LM's main_grad buffers, DeepSpeed's
fp32 accumulation): 2 + 4 + 12 bytes for mixed-precision Adam, 16 with the paper's 2-byte gradients.
Activations follow Korthikanti et al. 2022 (arXiv 2205.05198, Table 2), generalised to any MLP width,
gated MLPs and grouped-query attention; pipeline stages follow Megatron-LM's
`theoretical_memory_usage.py` (1F1B: the first stage holds `pp` micro-batches of its layers, the last
holds the logits). Everything is bytes on the most-loaded stage; capacity is the catalog's GB (10^9
bytes), of which `1 - margin` is usable. docs/memory.md lists the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.catalog import Accelerator
from planner.catalog.models import Model, Shape
from planner.errors import PlannerError

GIB = float(2**30)
MARGIN = 0.10  # assumption: CUDA context, NCCL buffers and allocator fragmentation take ~10%
MAX_TP_WITHOUT_NODE = 8  # assumption for a bare accelerator: TP stays inside one 8-GPU NVLink domain
Recompute = Literal["none", "selective", "full"]
Precision = Literal["bf16", "fp16", "fp32"]
# Gradient buffers: fp32 (4 bytes) by default, as Megatron-LM's main_grad buffers and DeepSpeed's fp32
# gradient accumulation keep them; "bf16" is 2-byte gradients in the 16-bit training dtype (bf16, or
# fp16 under fp16 mixed precision), as the ZeRO paper's 2 + 2 + K bytes per parameter assume.
GradDtype = Literal["fp32", "bf16"]
GRAD_BYTES = {"fp32": 4, "bf16": 2}
Optimizer = Literal["adamw", "adamw-8bit", "sgd-momentum", "sgd"]
Fsdp = Literal["no_shard", "shard_grad_op", "full_shard", "hybrid_shard"]
FSDP_STAGE = {"no_shard": 0, "shard_grad_op": 2, "full_shard": 3, "hybrid_shard": 3}
# Optimizer bytes per parameter, the fp32 master copy included under mixed precision (Rajbhandari et al. 2020, ZeRO, arXiv 1910.02054 §3.1).
OPTIMIZER_BYTES = {"mixed": {"adamw": 12, "adamw-8bit": 6, "sgd-momentum": 8, "sgd": 4},
                   "fp32": {"adamw": 8, "adamw-8bit": 2, "sgd-momentum": 4, "sgd": 0}}
SOURCES = (
    ("activations: Korthikanti et al. 2022 Table 2 per layer (34·sbh + 5·a·s²·b, ÷t with sequence parallel); "
     "MLP term 4f/h (6f/h gated) and K,V 4·n_kv/a: derived; FlashAttention drops the 5·a·s/h term"),
    ("pipeline: 1F1B, the first stage holds pp micro-batches of its layers (Megatron-LM "
     "theoretical_memory_usage.py); the last holds fp32 logits 4·s·b·V/t; the most-loaded stage is shown"),
)


@dataclass(frozen=True)
class Dims:
    """What memory needs of a model: layer count and widths, and where its parameters sit."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    gated: bool
    vocab: int
    tied: bool
    params: float  # held in memory (all experts of an MoE)
    layer_params: float
    layer_replicated: float  # norms and row-parallel biases: every TP rank keeps a full copy
    positions: float  # learned position embeddings (replicated across TP)
    final_norm: float
    gather_params: float  # one ZeRO-3 gather unit: a layer's parameters that do work
    seq_len: int | None
    assumed: str | None = None
    expert_params: float = 0.0  # MoE: routed-expert parameters per layer (all experts), split by EP
    experts: int = 0  # MoE: routed experts per layer


def dims_of(model: Model | Shape | Dims | float, layers: int | None = None, hidden: int | None = None) -> Dims:
    """Dims from a catalog model or shape, or (for a bare parameter count or an MoE) an assumed shape."""
    if isinstance(model, Dims):
        return model
    name = "shape"
    if isinstance(model, Model) and model.kind == "dense-lm" and model.shape is not None:  # a dense LM always has one
        name, model = model.name, model.shape
    if isinstance(model, Shape):
        h, norm = model.d_model, (2 if model.norm == "layernorm" else 1)
        return Dims(name, model.layers, h, model.heads, model.kv_heads or model.heads, model.ffn, model.gated,
                    model.vocab, model.tied_embeddings, float(model.params()), float(model.layer_params()),
                    float(2 * h * norm + (2 * h if model.biases else 0)),
                    float(model.seq_len * h if model.positions == "learned" else 0), float(h * norm),
                    float(model.layer_params()), model.seq_len)
    if isinstance(model, Model):
        if model.kind == "clip":
            raise PlannerError(f"'{model.name}' is a CLIP model; the activation formulas of memory cover decoder LMs only", "model")
        d = _assumed(model.params, model.active_params, model.name, layers, hidden, "MoE without a shape")
        if model.routed_expert_params is None:
            return d
        per_layer = model.routed_expert_params.value / d.layers  # spread evenly (a few dense layers are ignored)
        # the schema gives routed_expert_params and experts together
        return replace(d, layer_params=d.layer_params - per_layer, expert_params=per_layer, experts=model.experts or 0)
    return _assumed(float(model), float(model), "params", layers, hidden, "a bare parameter count")


MAX_ASSUMED_PARAMS = 1e16  # 10,000x the largest dense model trained; beyond it the guess means nothing


def _assumed(params: float, active: float, name: str, layers: int | None, hidden: int | None, why: str) -> Dims:
    # Kaplan's 12·L·h² with h = 128·L (the aspect ratio of Llama-2 7B/13B and GPT-3 175B), 128-wide heads,
    # f = 4h, RMSNorm, no biases, a 32,000-token untied vocabulary: a stated guess, not a catalog fact.
    if not params <= MAX_ASSUMED_PARAMS:
        raise PlannerError(f"{params:.3g} parameters is beyond any model a shape can be assumed for (at most "
                           f"{MAX_ASSUMED_PARAMS:.0e}); give {{model}}, or {{layers}} and {{hidden}}", "params",
                           refs=("model", "layers", "hidden"))
    if layers is None and hidden is None:
        layers = max(1, round((active / (12 * 128**2)) ** (1 / 3)))
        layers = 4 * round(layers / 4) if layers >= 8 else layers
    if hidden is None:  # multiples of 1024 (8 heads of 128) from 2048 up, so TP 2/4/8 divide the heads
        assert layers is not None  # set above when neither was given
        width = math.sqrt(active / (12 * layers))
        grain = 1024 if width >= 2048 else 128
        hidden = max(128, grain * round(width / grain))
    if layers is None:
        layers = max(1, round(active / (12 * hidden**2)))
    heads = hidden // 128 if hidden % 128 == 0 else 1
    vocab = min(32000, int(params / 4 / (2 * hidden)) or 1)  # keep the embedding ≤ a quarter of a small model
    body = params - 2 * vocab * hidden - hidden
    if body <= 0:
        raise PlannerError(f"{params:.3g} parameters are too few for {layers} layers of width {hidden}", "params")
    note = (f"shape assumed for {why}: {layers} layers, width {hidden}, {heads} heads, MLP 4h, vocabulary {vocab} "
            "untied (a catalog model, or the layers and width given, replace the guess)")
    gather = max((active - 2 * vocab * hidden - hidden) / layers, 2.0 * hidden)
    return Dims(name, layers, hidden, heads, heads, 4 * hidden, False, vocab, False, params, body / layers,
                2.0 * hidden, 0.0, float(hidden), gather, None, note)


class Layout(BaseModel):
    """How a run is split over GPUs and what it keeps; `zero` is the ZeRO stage (FSDP modes map onto it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dp: int = Field(1, ge=1, description="data-parallel degree N_d")
    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1, description="expert parallelism (MoE): routed experts split over ep data-parallel ranks")
    zero: int = Field(0, ge=0, le=3)
    fsdp: Fsdp | None = None
    shard_group: int | None = Field(None, ge=1, description="hybrid_shard: GPUs that shard one replica")
    micro_batch: int = Field(1, ge=1, description="sequences per micro-batch (b)")
    seq_len: int = Field(2048, ge=1)
    micro_batches: int | None = Field(None, ge=1, description="micro-batches per step; None = at least pp")
    interleave: int = Field(1, ge=1, description="virtual pipeline chunks per stage")
    recompute: Recompute = "selective"
    precision: Precision = "bf16"
    optimizer: Optimizer = "adamw"
    grad_dtype: GradDtype = Field("fp32", description="gradient buffers: fp32 (4 bytes, Megatron main_grad, "
                                  "DeepSpeed) or bf16 (2 bytes, the ZeRO paper's 16-bit gradients)")
    sequence_parallel: bool = True
    flash_attention: bool = True

    @model_validator(mode="before")
    @classmethod
    def _fsdp_sets_zero(cls, data):
        if isinstance(data, dict) and data.get("fsdp"):
            stage = FSDP_STAGE[data["fsdp"]]
            if data.get("zero") not in (None, stage):
                raise ValueError(f"FSDP {data['fsdp']} is ZeRO-{stage}, not ZeRO-{data['zero']}")
            data = {**data, "zero": stage}
        return data

    @model_validator(mode="before")
    @classmethod
    def _grad_fp32_is_grad_dtype(cls, data):
        # the former boolean field `grad_fp32` (default False) is still accepted as input
        if isinstance(data, dict) and "grad_fp32" in data:
            data = dict(data)
            flag = data.pop("grad_fp32")
            if not isinstance(flag, bool):
                raise ValueError(f"grad_fp32 must be true or false, got {flag!r}")
            dtype = "fp32" if flag or data.get("precision") == "fp32" else "bf16"  # fp32 training ignored it
            if data.get("grad_dtype", dtype) != dtype:
                raise ValueError(f"grad_fp32={flag} contradicts grad_dtype={data['grad_dtype']!r}")
            data["grad_dtype"] = dtype
        return data

    @model_validator(mode="after")
    def _fp32_training_keeps_fp32_gradients(self):
        if self.precision == "fp32" and self.grad_dtype != "fp32":
            raise ValueError(f"{self.grad_dtype} gradients need bf16/fp16 mixed precision; "
                             "fp32 training keeps fp32 gradients")
        return self

    @property
    def grad_bytes(self) -> int:
        return 4 if self.precision == "fp32" else GRAD_BYTES[self.grad_dtype]

    @property
    def gradient_dtype(self) -> str:
        """The gradients' dtype as trained: 16-bit gradients are fp16 under fp16 mixed precision."""
        return "fp16" if self.grad_dtype == "bf16" and self.precision == "fp16" else self.grad_dtype

    @property
    def gpus(self) -> int:
        return self.dp * self.tp * self.pp

    @property
    def n_d(self) -> int:
        """GPUs the sharded states are split over: the DP degree (a hybrid shard group at most)."""
        return min(self.dp, self.shard_group or self.dp) if self.fsdp == "hybrid_shard" else self.dp

    def describe(self) -> str:
        shard = f"FSDP {self.fsdp}" if self.fsdp else f"ZeRO-{self.zero}"
        ep = f" (EP {self.ep})" if self.ep > 1 else ""
        return f"DP {self.dp}{ep} × TP {self.tp} × PP {self.pp}, {shard}, {self.recompute} recompute"


@dataclass(frozen=True)
class Breakdown:
    """Bytes per GPU on the most-loaded stage; `usable` = capacity × (1 − margin)."""

    layout: Layout
    stage: str
    params_per_gpu: float
    weights: float
    gradients: float
    optimizer: float
    activations: float
    buffers: float
    capacity: float
    margin: float
    notes: tuple[str, ...]

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.buffers

    @property
    def usable(self) -> float:
        return self.capacity * (1 - self.margin)

    @property
    def fits(self) -> bool:
        return self.total <= self.usable

    def as_dict(self) -> dict:
        parts = ("weights", "gradients", "optimizer", "activations", "buffers", "total", "capacity", "usable")
        by = {k: float(getattr(self, k)) for k in parts}
        return {"stage": self.stage, "params_per_gpu": self.params_per_gpu, "bytes": by,
                "gib": {k: v / GIB for k, v in by.items()}, "margin": self.margin, "fits": self.fits}


def layer_activation_bytes(s: int, b: int, h: int, heads: int, *, ffn: int | None = None, gated: bool = False,
                           kv_heads: int | None = None, tp: int = 1, sequence_parallel: bool = False,
                           recompute: Recompute = "selective", flash_attention: bool = True,
                           act_bytes: int = 2) -> float:
    """Bytes one transformer layer keeps for its backward pass (Korthikanti et al. 2022, Table 2).

    In units of s·b·h: 10 that TP replicates (LayerNorm inputs, dropout masks, the inputs of the
    QKV and MLP blocks), 4 + 4·n_kv/a for Q, K, V and the projection input, 4f/h for the MLP
    (f = 4h gives the paper's 24/t), and 5·a·s/h for scores, softmax and its dropout, gone with
    FlashAttention or selective recompute. Full recompute keeps only the layer input (2·s·b·h)."""
    sbh = float(s) * b * h
    t = tp
    sp = sequence_parallel and t > 1
    scale = act_bytes / 2  # the paper's coefficients assume 2-byte activations
    if recompute == "full":
        return 2 * sbh / (t if sp else 1) * scale
    ffn = ffn or 4 * h
    split = 4 + 4 * (kv_heads or heads) / heads + (6 if gated else 4) * ffn / h  # 6f/h: fused SwiGLU keeps fc1 out + product
    score = 0.0 if (flash_attention or recompute == "selective") else 5.0 * heads * s / h
    per_sbh = (10 + split + score) / t if sp else 10 + (split + score) / t
    return per_sbh * sbh * scale


@dataclass(frozen=True)
class Stage:
    name: str
    params: float  # per GPU, before ZeRO sharding
    activations: float
    buffers: float
    experts: float = 0.0  # routed-expert parameters of the stage per TP rank, before EP and ZeRO


def check_layout(d: Dims, lay: Layout, dp_known: bool = False) -> None:
    if lay.ep > 1:
        if not d.experts:
            raise PlannerError(f"{d.name} has no routed experts to split {lay.ep} ways (expert parallelism is for MoE models, "
                               "e.g. deepseek-v3)", "ep")
        if d.experts % lay.ep:
            raise PlannerError(f"{lay.ep} does not divide the {d.experts} routed experts of {d.name}", "ep")
        if lay.fsdp:
            raise PlannerError("is modelled with Megatron-style ZeRO stages ({zero}), not with FSDP ({fsdp})", "ep",
                               refs=("zero", "fsdp"))
        if dp_known and lay.dp % lay.ep:
            raise PlannerError(f"{lay.ep} must divide the data-parallel degree {lay.dp} (experts are spread over DP ranks)", "ep")
    if d.heads % lay.tp:
        raise PlannerError(f"{lay.tp} does not divide the {d.heads} attention heads of {d.name}", "tp")
    if d.layers % (lay.pp * lay.interleave):
        raise PlannerError(f"{lay.pp} (× {lay.interleave} chunks) does not divide the {d.layers} layers of {d.name}", "pp")


def stages(d: Dims, lay: Layout) -> list[Stage]:
    t, pp, s, b, h = lay.tp, lay.pp, lay.seq_len, lay.micro_batch, d.hidden
    sp_div = t if (lay.sequence_parallel and t > 1) else 1
    wb, gb, _ = _state_bytes(lay)
    per_gpu_layer = (d.layer_params - d.layer_replicated) / t + d.layer_replicated
    embed = d.vocab * h / t  # vocab-parallel embedding and output head
    first_extra = embed + d.positions
    last_extra = d.final_norm + (embed if (not d.tied or pp > 1) else 0.0)  # tied + pp > 1: Megatron keeps a copy
    def activations(recompute: Recompute) -> float:
        return layer_activation_bytes(s, b, h, d.heads, ffn=d.ffn, gated=d.gated, kv_heads=d.kv_heads, tp=t,
                                      sequence_parallel=lay.sequence_parallel, flash_attention=lay.flash_attention,
                                      act_bytes=int(wb), recompute=recompute)

    stored = activations(lay.recompute)
    working = activations("none") if lay.recompute == "full" else 0.0
    embed_acts = (8 * s * b + s * b * h) / sp_div  # token ids and embedding dropout mask (Megatron)
    logits = 4 * s * b * h / sp_div + 4 * s * b * d.vocab / t  # fp32 logits for the loss (Megatron)
    n = d.layers // pp
    gather = (d.gather_params - d.layer_replicated) / t + d.layer_replicated
    # ZeRO-3/FSDP: the gathered unit and the prefetched next one in weight dtype, plus one unit's
    # unsharded gradients before reduce-scatter (derived; DeepSpeed's estimator uses 4 B × largest layer).
    buffers = (2 * wb + gb) * max(gather, embed) if lay.zero == 3 else 0.0
    experts = d.expert_params / t  # per layer and TP rank (Megatron: expert TP = TP)
    if pp == 1:
        acts = d.layers * stored + working + embed_acts + logits
        return [Stage("only", d.layers * per_gpu_layer + first_extra + last_extra, acts, buffers, d.layers * experts)]
    in_flight: float = min(lay.micro_batches or pp, pp)
    if lay.interleave > 1:
        in_flight *= 1 + (pp - 1) / (pp * lay.interleave)
    first = Stage("first", n * per_gpu_layer + first_extra, n * in_flight * stored + working + in_flight * embed_acts,
                   buffers, n * experts)
    last = Stage("last", n * per_gpu_layer + last_extra, n * stored + working + logits, buffers, n * experts)
    return [first, last]


def _state_bytes(lay: Layout) -> tuple[float, float, float]:
    wb, gb = (4 if lay.precision == "fp32" else 2), lay.grad_bytes
    return wb, gb, OPTIMIZER_BYTES["fp32" if lay.precision == "fp32" else "mixed"][lay.optimizer]


def split_stage(stage: Stage, lay: Layout) -> tuple[float, float]:
    """(bytes kept whole, bytes divided by N_d) on one stage: total = fixed + sharded / N_d."""
    wb, gb, ob = _state_bytes(lay)
    parts = [(wb, 3), (gb, 2), (ob, 1)]
    # an EP rank keeps 1/ep of the experts whole; sharded, an expert's states are split over the
    # dp/ep ranks that hold it, which is again 1/N_d of all experts per GPU
    whole = stage.params + stage.experts / lay.ep
    fixed = sum(x for x, k in parts if lay.zero < k) * whole + stage.activations + stage.buffers
    return fixed, sum(x for x, k in parts if lay.zero >= k) * (stage.params + stage.experts)


def _grad_note(lay: Layout) -> str:
    if lay.precision == "fp32":
        return "gradients: fp32, 4 bytes/parameter (fp32 training)"
    if lay.grad_dtype == "fp32":
        return ("gradients: fp32, 4 bytes/parameter, accumulated in fp32 as Megatron-LM's main_grad buffers and "
                "DeepSpeed do (the default; 2-byte bf16 gradients, as the ZeRO paper's 16 bytes/parameter "
                "assume, are an option)")
    return (f"gradients: {lay.gradient_dtype}, 2 bytes/parameter, as the ZeRO paper counts (Megatron-LM and DeepSpeed "
            "accumulate in fp32 by default: 4 bytes/parameter)")


def capacity_bytes(accelerator: Accelerator) -> float:
    return accelerator.memory_gb.value * 1e9  # the catalog's GB are decimal (the conservative reading)


def estimate(model: Model | Shape | Dims | float, layout: Layout, accelerator: Accelerator,
             margin: float = MARGIN) -> Breakdown:
    """Per-GPU memory of `layout` on the most-loaded pipeline stage."""
    d = dims_of(model)
    check_layout(d, layout, dp_known=True)
    wb, gb, ob = _state_bytes(layout)
    nd = layout.n_d

    def per_gpu(st: Stage) -> float:
        fixed, sharded = split_stage(st, layout)
        return fixed + sharded / nd

    worst = max(stages(d, layout), key=per_gpu)
    p, e = worst.params, worst.experts

    def held(bytes_per_param: float, stage: int) -> float:  # a state sharded from ZeRO `stage` on
        return bytes_per_param * ((p + e) / nd if layout.zero >= stage else p + e / layout.ep)

    prec = "fp32" if layout.precision == "fp32" else f"{layout.precision} mixed precision"
    master = "" if layout.precision == "fp32" else " with fp32 master"
    notes = [(f"model states: {wb} + {gb} + {ob} bytes/parameter (weights, {layout.gradient_dtype} gradients, "
              f"{layout.optimizer} states{master}; {prec}); ZeRO-{layout.zero} shards over N_d = {nd} "
              "(Rajbhandari et al. 2020, arXiv 1910.02054 §3.1 and §5)"), _grad_note(layout), *SOURCES]
    if d.assumed:
        notes.append(d.assumed)
    if layout.pp > 1 and layout.zero >= 2:
        notes.append("warning: DeepSpeed rejects ZeRO-2/3 with pipeline parallelism; Megatron shards only optimizer states")
    if layout.zero == 3:
        notes.append("buffers: ZeRO-3 gathers a layer and prefetches the next (derived; an assumption about wrapping)")
    notes.append(f"usable memory: capacity × {1 - margin:g} (assumption: CUDA context, NCCL, fragmentation)")
    if e:
        notes.append(f"experts: {e:.4g} routed-expert parameters per TP rank on this stage, 1/{layout.ep} kept per "
                     f"EP rank; sharded states split over N_d = {nd} (Megatron-Core expert parallelism; derived)")
    return Breakdown(layout, worst.name, p + e / layout.ep, held(wb, 3), held(gb, 2), held(ob, 1),
                     worst.activations, worst.buffers, capacity_bytes(accelerator), margin, tuple(notes))
