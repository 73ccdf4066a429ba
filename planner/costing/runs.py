"""What a language-model run is for the hardware: its workload (dense or MoE), FLOPs convention,
shape and sequence length; `plan`, `sweep`, `grant` and `scaling` cost every run through it."""

from __future__ import annotations

from dataclasses import dataclass

from planner.costing import cost


@dataclass(frozen=True)
class RunShape:
    """What the attention term and the throughput estimator need of a language model."""

    workload: str  # dense-lm | moe
    convention: str
    seq_len: int
    layers: float | None  # None: the assumed aspect ratio for each size
    d_model: float | None
    note: str

    def flops(self, params: float, tokens: float) -> float:
        """Training FLOPs for the hardware in the run's convention (laws always use 6ND)."""
        return float(cost.lm_flops(params, tokens, self.convention, self.seq_len, self.layers, self.d_model))

    def law_share(self, params: float) -> float:
        """Law (6ND) FLOPs per hardware FLOP for a model of `params` working parameters."""
        return 6.0 * params / self.flops(params, 1.0)


def run_shape(model, seq_len: int | None = None, flops_convention: str | None = None) -> RunShape:
    """The FLOPs convention and shape of the run: the catalog model's, or the aspect ratio assumed
    for a bare parameter count (`model` None), at the given (or the model's, or the default)
    sequence length."""
    workload = "moe" if model is not None and model.kind == "moe-lm" else "dense-lm"
    shape = model.shape if model is not None else None
    seq = seq_len or (shape.seq_len if shape is not None else cost.DEFAULT_SEQ_LEN)
    convention = flops_convention or cost.DEFAULT_CONVENTION[workload]
    if workload == "moe":
        convention = {"6ND+attention": "moe+attention", "6ND": "moe"}.get(convention, convention)
    if shape is not None:
        note = f"{model.name}: {shape.layers} layers × {shape.d_model} wide, sequence {seq}"
        return RunShape(workload, convention, seq, float(shape.layers), float(shape.d_model), note)
    where = "the default" if seq_len is None else "given"
    note = (f"shape assumed for the attention term: width = {cost.ASPECT:g} × layers at 12·L·h² parameters "
            f"(Llama 2 7B, GPT-3 175B); sequence {seq} ({where})")
    return RunShape(workload, convention, seq, None, None, note)
