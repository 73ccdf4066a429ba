"""What a run is for the hardware: its workload (dense LM, MoE or CLIP), FLOPs convention, and for a
language model its shape and sequence length; `plan`, `sweep`, `grant`, `scaling` and the campaign
calibration compute every run's FLOPs through these two descriptions (`run_shape`, `clip_run`)."""

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


@dataclass(frozen=True)
class ClipRun:
    """What the hardware needs of a CLIP run: 6 × MACs per sample × samples seen (2 FLOPs per MAC,
    backward = 2 × forward); no sequence and no scaling law in tokens."""

    gmacs_per_sample: float  # forward GMACs of one sample (image and text towers)
    workload: str = "clip"
    convention: str = "clip"
    seq_len: None = None

    def flops(self, params: float, samples: float) -> float:
        """Training FLOPs of `samples` samples (`params` does not enter: the MACs carry the architecture)."""
        return float(cost.training_flops(self.gmacs_per_sample * 1e9, samples, "clip"))


def clip_run(gmacs_per_sample: float) -> ClipRun:
    return ClipRun(float(gmacs_per_sample))
