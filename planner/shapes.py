"""Shapes for a parameter count: a recipe (catalogs/shapes/) turns N into layers, width, heads, KV heads and
MLP width, so that a sweep's runs are concrete architectures and not only counts.

A recipe names the published family it follows (Llama 2, Llama 3, Pythia): its aspect ratio d_model / layers,
its head width, grouped-query ratio, MLP multiplier and rounding, vocabulary and the rest of the
architecture that the parameter count depends on. Counting is `planner.catalog.models.Shape.params()`, the
function the catalog's models are held to their published counts with; FLOPs are `planner.costing.cost`'s.

`shape_for` searches every layer count and every width that is a multiple of the recipe's width multiple
(64 or 128: what tensor cores tile) for the shapes whose count is within the tolerance of N, and takes
the one whose aspect ratio is nearest the recipe's (ties: the nearer count). N counts either all
parameters or the non-embedding ones (Kaplan et al. 2020, DeepSeek LLM 2024 and Step Law count the
latter; Hoffmann et al. 2022 the former): a law's `params_counted` says which, and so does `counted` here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from planner.catalog.models import Shape as Architecture
from planner.catalog.schema import Entry, Sourced
from planner.costing import cost
from planner.errors import PlannerError
from planner.records import Record

Counted = Literal["total", "non-embedding"]
TOLERANCE = 0.02  # the bound on |count / N - 1|; a sweep may tighten or loosen it
HARDWARE_MULTIPLE = 64  # widths the recipe allows are multiples of this (tensor-core tiles)
MAX_DEPTH = 16.0  # layer counts searched: up to 16 × those of the recipe's aspect ratio (small models step coarsely)


class Recipe(Entry):
    """How a family of models is shaped: what `shape_for` needs besides N."""

    citation: str = Field(description="the family the recipe follows, for tables and reports")
    aspect_ratio: Sourced = Field(description="d_model / layers aimed at")
    head_dim: Sourced = Field(description="width of one attention head (64 or 128)")
    width_multiple: Sourced = Field(description="d_model is a multiple of this (a multiple of 64 and of head_dim)")
    query_heads_per_kv_head: Sourced = Field(description="grouped-query attention; 1 = multi-head attention")
    ffn_multiplier: Sourced = Field(description="MLP width / d_model before rounding")
    ffn_multiple: Sourced = Field(description="the MLP width is rounded up to a multiple of this")
    vocab: Sourced
    gated: bool = Field(description="SwiGLU: three MLP matrices instead of two")
    tied_embeddings: bool
    norm: Literal["layernorm", "rmsnorm"]
    biases: bool
    positions: Literal["learned", "rotary", "alibi"]

    @model_validator(mode="after")
    def _physical(self) -> Recipe:
        whole = {"head_dim": (16, 512), "width_multiple": (HARDWARE_MULTIPLE, 4096), "query_heads_per_kv_head": (1, 64),
                 "ffn_multiple": (1, 4096), "vocab": (2, 10**7)}
        for key, (low, high) in whole.items():
            value = getattr(self, key).value
            if value != int(value) or not low <= value <= high:
                raise ValueError(f"{key}: must be a whole number from {low} to {high}, got {value:g}")
        if not 1 <= self.aspect_ratio.value <= 1000:
            raise ValueError(f"aspect_ratio: {self.aspect_ratio.value:g} is no decoder's width / depth (accepted: 1 to 1000)")
        if not 0.5 <= self.ffn_multiplier.value <= 16:
            raise ValueError(f"ffn_multiplier: {self.ffn_multiplier.value:g} is no MLP ratio (accepted: 0.5 to 16)")
        width, head = int(self.width_multiple.value), int(self.head_dim.value)
        if width % HARDWARE_MULTIPLE or width % head:
            raise ValueError(f"width_multiple: {width} must be a multiple of {HARDWARE_MULTIPLE} and of head_dim {head}")
        return self

    @property
    def width_step(self) -> int:
        """The widths the search tries are multiples of this: of the width multiple, and of a head group
        (head_dim × query heads per KV head), so that KV heads divide the heads exactly."""
        return math.lcm(int(self.width_multiple.value), int(self.head_dim.value) * int(self.query_heads_per_kv_head.value))

    def architecture(self, layers: int, d_model: int, seq_len: int = cost.DEFAULT_SEQ_LEN,
                     validate: bool = True) -> Architecture:
        """The recipe's decoder of `layers` × `d_model`: heads, KV heads and MLP width by its rules."""
        heads = d_model // int(self.head_dim.value)
        fields: dict[str, Any] = dict(
            layers=layers, d_model=d_model, heads=heads, kv_heads=kv_heads(heads, int(self.query_heads_per_kv_head.value)),
            ffn=ffn_width(d_model, self.ffn_multiplier.value, int(self.ffn_multiple.value)), gated=self.gated,
            vocab=int(self.vocab.value), tied_embeddings=self.tied_embeddings, norm=self.norm, biases=self.biases,
            positions=self.positions, seq_len=seq_len)
        # the search counts thousands of candidates, each valid by construction; the chosen one is validated
        return Architecture(**fields) if validate else Architecture.model_construct(**fields)


def kv_heads(heads: int, per_kv: int) -> int:
    """heads / per_kv when that divides; otherwise the largest divisor of `heads` below it (a narrow model
    has too few heads to group as the recipe does), at least one."""
    want = max(1, heads // per_kv)
    return next(k for k in range(want, 0, -1) if heads % k == 0)


def ffn_width(d_model: int, multiplier: float, multiple: int) -> int:
    """multiplier × d_model rounded up to `multiple` (Llama's rule: 8/3 · 4096 → 11008 at 256)."""
    return multiple * max(1, math.ceil(multiplier * d_model / multiple - 1e-9))  # 1e-9: 8/3 · 3072 is 8192, not 8192.000001


def counted_params(arch: Architecture, counted: Counted) -> int:
    return arch.params() if counted == "total" else arch.non_embedding_params()


@dataclass(frozen=True)
class Shape(Record):
    """A concrete decoder for a parameter count, and how near its count is."""

    recipe: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    ffn: int
    vocab: int
    params: int  # all parameters
    non_embedding_params: int
    target: float  # the N asked for
    counted: str  # which of the two counts `target` is
    relative_error: float  # count / target - 1

    @property
    def aspect_ratio(self) -> float:
        return self.d_model / self.n_layers

    @property
    def matched_params(self) -> int:
        """The count compared with the target."""
        return self.params if self.counted == "total" else self.non_embedding_params

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token of this shape: 6 × every weight that is a matmul (the non-embedding
        ones and the output layer; the input embedding is a lookup) + 12·L·h·s for attention."""
        matmul = self.non_embedding_params + self.vocab * self.d_model
        return float(cost.lm_flops(float(matmul), 1.0, "6ND+attention", seq_len, self.n_layers, self.d_model))

    def non_embedding_flops_per_token(self, seq_len: int) -> float:
        """DeepSeek LLM's M (arXiv 2401.02954 §3.2): 6 × non-embedding parameters + 12·L·h·s, which is
        72·L·h² + 12·L·h·s for their 12·L·h² body; the output layer is not counted."""
        return float(cost.lm_flops(float(self.non_embedding_params), 1.0, "6ND+attention", seq_len, self.n_layers,
                                   self.d_model))


def _widths(recipe: Recipe, layers: int, target: float, counted: Counted, tolerance: float) -> list[int]:
    """The widths (multiples of the recipe's step) at `layers` layers whose counts bracket `target`, and every
    other one whose count is within `tolerance` of it."""
    step = recipe.width_step

    def count(k: int) -> int:
        return counted_params(recipe.architecture(layers, k * step, validate=False), counted)

    if count(1) >= target:
        low = high = 1
    else:
        low, high = 1, 2
        while count(high) < target:  # doubling, then bisection: the count grows with the width
            low, high = high, high * 2
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (mid, high) if count(mid) < target else (low, mid)
    while low > 1 and count(low - 1) >= target * (1 - tolerance):
        low -= 1
    while count(high + 1) <= target * (1 + tolerance):
        high += 1
    return [k * step for k in range(low, high + 1)]


def shape_for(params: float, recipe: Recipe, counted: Counted = "non-embedding", tolerance: float = TOLERANCE,
              seq_len: int = cost.DEFAULT_SEQ_LEN) -> Shape:
    """The recipe's shape for `params` parameters (`counted`: all of them, or the non-embedding ones): among
    the layer counts and width multiples whose count is within `tolerance` of `params`, the one nearest
    the recipe's aspect ratio (then the nearer count). A PlannerError (field `params`) when none is."""
    if not (math.isfinite(params) and params > 0):
        raise PlannerError(f"{params!r} is not a parameter count", "params")
    ideal = (params / (12.0 * recipe.aspect_ratio.value**2)) ** (1.0 / 3.0)  # layers of a 12·L·h² body at h = aspect·L
    best, nearest = _search(recipe, params, counted, tolerance, max(1, round(ideal)), math.ceil(MAX_DEPTH * max(ideal, 1.0)) + 2)
    if best is None:
        detail = (f"; the nearest is {nearest[1]} layers × {nearest[2]} wide, {nearest[0]:.1%} off" if nearest else "")
        hint = " (count non-embedding parameters, or a recipe with a smaller vocabulary)" if counted == "total" else ""
        raise PlannerError(f"no {recipe.name} shape has {params:.4g} {_what(counted)} within {tolerance:.0%}{detail}{hint}",
                           "params")
    _, _, layers, width = best
    arch = recipe.architecture(layers, width, seq_len)
    matched = counted_params(arch, counted)
    return Shape(recipe.name, layers, width, arch.heads, arch.kv_heads or arch.heads, arch.ffn, arch.vocab, arch.params(),
                 arch.non_embedding_params(), float(params), counted, matched / params - 1.0)


def _search(recipe: Recipe, params: float, counted: Counted, tolerance: float, start: int, deepest: int):
    """(best, nearest): best = (aspect distance, |error|, layers, width) of the shape to take, nearest = (|error|,
    layers, width) whatever the tolerance, or None. Layer counts are visited from `start` down to 1, then up to
    `deepest`; the width falls as layers are added, so the aspect ratio d/L falls strictly with L, and a
    direction ends once even its nearest aspect ratio is further from the recipe's than the best shape's."""
    aspect = recipe.aspect_ratio.value
    best: tuple[float, float, int, int] | None = None
    nearest: tuple[float, int, int] | None = None
    for depths in (range(min(start, deepest), 0, -1), range(min(start, deepest) + 1, deepest + 1)):
        for layers in depths:
            if counted_params(recipe.architecture(layers, recipe.width_step, validate=False), counted) > params * (1 + tolerance):
                if depths.step > 0:
                    break  # the narrowest width is already too many parameters: so is every deeper model
                continue
            distances = []
            for width in _widths(recipe, layers, params, counted, tolerance):
                error = counted_params(recipe.architecture(layers, width, validate=False), counted) / params - 1.0
                distance = round(abs(math.log(width / layers / aspect)), 12)
                distances.append(distance)
                if nearest is None or abs(error) < nearest[0]:
                    nearest = (abs(error), layers, width)
                if abs(error) <= tolerance and (best is None or (distance, abs(error), layers, width) < best):
                    best = (distance, abs(error), layers, width)
            if best is not None and min(distances) > best[0]:
                break
    return best, nearest


def _what(counted: Counted) -> str:
    return "parameters" if counted == "total" else "non-embedding parameters"
