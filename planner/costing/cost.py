"""FLOPs, hours and energy: the one place each of these numbers is computed.

Conventions (stated in every output that uses them):
- training FLOPs C = 6·N·D (Kaplan et al. 2020 §2.1: forward 2ND, backward 4ND);
- GPU-hours = C / (dense peak FLOP/s per GPU × MFU × 3600);
- wall-clock = GPU-hours / GPUs; node-hours = wall-clock × whole nodes allocated;
- energy = node-hours × node power (IT energy at the catalog's per-node power, no PUE).
All functions accept numpy arrays so sweeps and projection tables are computed in one call.
"""

from __future__ import annotations

import math

import numpy as np

FLOPS_CONVENTIONS = {
    "6ND": "C = 6·N·D (Kaplan et al. 2020, arXiv 2001.08361 §2.1; forward 2ND + backward 4ND; no attention term)",
    "6ND+attention": "C = (6·N + 12·L·h·s)·D (PaLM, arXiv 2204.02311 App. B; Korthikanti et al. 2022, arXiv 2205.05198: "
                     "adds the attention score and context matmuls, forward and backward, no causal halving)",
    "clip": "C = 6 × MACs per sample × samples (2 FLOPs per MAC, backward = 2 × forward; GMACs from "
            "LAION-AI/scaling-laws-openclip arch_info.csv, Cherti et al. 2023, arXiv 2212.07143)",
    "moe": "C = 6·N_active·D (only the experts a token is routed to do work: N_active as DeepSeek-V3 states its 37B "
           "activated of 671B parameters, arXiv 2412.19437)",
    "moe+attention": "C = (6·N_active + 12·L·h·s)·D (routed experts that work per token, N_active as in DeepSeek-V3, "
                     "arXiv 2412.19437, plus the attention matmuls of PaLM, arXiv 2204.02311 App. B)",
}
# What every command uses unless told otherwise: attention counted whenever a sequence length is
# known or defaulted, as the campaign calibration counts it (planner.costing.throughput).
DEFAULT_CONVENTION = {"dense-lm": "6ND+attention", "moe": "moe+attention", "clip": "clip"}
ATTENTION_CONVENTIONS = ("6ND+attention", "moe+attention")

# The aspect ratio assumed when only a parameter count is known: Kaplan's 12·L·h² body with
# h = 128·L, the ratio of Llama 2 7B (32 × 4096) and GPT-3 175B (96 × 12288).
ASPECT = 128.0
DEFAULT_SEQ_LEN = 4096  # Llama 2 and OLMo; Pythia-era 2,048 doubled: the common pre-training context since 2023
GOPHER_FLOPS = 5.76e23  # Hoffmann et al. 2022 Table 3: one "Gopher unit" of compute
SECONDS_PER_HOUR = 3600.0


def training_flops(params, tokens, convention: str = "6ND", attention_flops_per_token=0.0):
    """Training FLOPs: the one FLOPs function.

    `params` is what does the work per item: parameters (6ND), active parameters (moe), or MACs
    per sample (clip, where `tokens` counts samples). `attention_flops_per_token` is the
    12·L·h·s term of the 6ND+attention convention.
    """
    if convention not in FLOPS_CONVENTIONS:
        raise ValueError(f"unknown FLOPs convention {convention!r}; known: {', '.join(FLOPS_CONVENTIONS)}")
    with np.errstate(over="ignore"):  # absurd inputs give inf, which the callers refuse in one line
        per_item = 6.0 * np.asarray(params, dtype=float)
        if convention in ATTENTION_CONVENTIONS:
            per_item = per_item + np.asarray(attention_flops_per_token, dtype=float)
        return per_item * np.asarray(tokens, dtype=float)


def attention_flops_per_token(layers, d_model, seq_len):
    """12·L·h·s: the attention score and context matmuls, forward and backward, no causal halving
    (PaLM App. B); the term 6ND+attention adds to 6N per token."""
    return 12.0 * np.asarray(layers, dtype=float) * np.asarray(d_model, dtype=float) * np.asarray(seq_len, dtype=float)


def assumed_layers_width(params):
    """Layers and width (unrounded, so FLOPs vary smoothly with size) of a decoder of `params`
    parameters at the assumed aspect ratio h = 128·L; vectorised."""
    layers = np.cbrt(np.asarray(params, dtype=float) / (12.0 * ASPECT**2))
    return layers, ASPECT * layers


def lm_flops(params, tokens, convention: str = "6ND+attention", seq_len=DEFAULT_SEQ_LEN, layers=None, d_model=None):
    """Hardware FLOPs of training a language model: `params` are the parameters that work per token
    (MoE: active); with attention, the 12·L·h·s term uses the given shape or the assumed aspect ratio."""
    if convention not in ATTENTION_CONVENTIONS:
        return training_flops(params, tokens, convention)
    if all(isinstance(v, (int, float)) for v in (params, tokens, seq_len)) and convention in FLOPS_CONVENTIONS:
        # one run (plan, a sweep row): plain floats, ~10x faster than numpy scalars for 10,000-run sweeps
        if layers is None or d_model is None:
            layers = math.cbrt(params / (12.0 * ASPECT**2))
            d_model = ASPECT * layers
        return (6.0 * params + 12.0 * layers * d_model * seq_len) * tokens
    if layers is None or d_model is None:
        layers, d_model = assumed_layers_width(params)
    return training_flops(params, tokens, convention, attention_flops_per_token(layers, d_model, seq_len))


def gpu_hours(flops, peak_flops_per_gpu: float, mfu):
    return np.asarray(flops, dtype=float) / (peak_flops_per_gpu * np.asarray(mfu, dtype=float) * SECONDS_PER_HOUR)


def flops_from_gpu_hours(hours, peak_flops_per_gpu: float, mfu):
    """The inverse of `gpu_hours`: useful model FLOPs that a GPU-hour budget buys."""
    return np.asarray(hours, dtype=float) * peak_flops_per_gpu * np.asarray(mfu, dtype=float) * SECONDS_PER_HOUR


def wall_clock_hours(gpu_hours_, gpus: int):
    return np.asarray(gpu_hours_, dtype=float) / gpus


def nodes_for(gpus: int, gpus_per_node: int) -> int:
    """Whole nodes needed for `gpus` (a partly used node is still allocated and charged)."""
    return -(-gpus // gpus_per_node)


def node_hours(wall_hours, nodes):
    return np.asarray(wall_hours, dtype=float) * nodes


def energy_kwh(node_hours_, node_power_kw: float):
    return np.asarray(node_hours_, dtype=float) * node_power_kw
