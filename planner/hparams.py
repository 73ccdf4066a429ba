"""Learning rate and batch size for a run, from a published law (catalogs/hparams/).

A law gives the peak learning rate and the batch size in tokens as power laws, each
`coefficient × C^compute × N^params × D^tokens` (the exponents a law does not use are absent):
DeepSeek LLM 2024 §3.1 in the compute C alone, Step Law (Li et al. 2025) in N and D. What C and N count
is the law's (`compute`, `params_counted`); `law_inputs` computes them for a run from its shape.
The batch in sequences is the law's tokens over the sequence length, rounded to a multiple (the
data-parallel width a user runs, say); steps cover the run's tokens; the warmup is the law's (or the
spec's) number of steps. A value outside the compute the law was fitted on is an extrapolation and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from planner.catalog.schema import Entry, Sourced, Strict
from planner.costing import cost
from planner.errors import PlannerError, PlannerWarning
from planner.laws import FitRange
from planner.records import Record

if TYPE_CHECKING:
    from planner.shapes import Shape

EXPONENT_RANGE = (-2.0, 2.0)  # published hyperparameter exponents lie within ±0.8


class PowerLaw(Strict):
    """coefficient × C^compute × N^params × D^tokens."""

    coefficient: Sourced
    compute: Sourced | None = None
    params: Sourced | None = None
    tokens: Sourced | None = None

    def at(self, flops: float, params: float, tokens: float) -> float:
        value = self.coefficient.value
        for exponent, x in ((self.compute, flops), (self.params, params), (self.tokens, tokens)):
            if exponent is not None:
                value *= x ** exponent.value
        return value

    def formula(self) -> str:
        terms = [f"{self.coefficient.value:g}"]
        terms += [f"{symbol}^{exponent.value:g}" for symbol, exponent in (("C", self.compute), ("N", self.params), ("D", self.tokens))
                  if exponent is not None]
        return " · ".join(terms)


class HyperparameterLaw(Entry):
    citation: str = Field(description="the paper, for tables and reports")
    compute: Literal["non-embedding-flops", "6ND"] = Field(
        description="what C counts: non-embedding-flops is DeepSeek's M·D (M = 6·non-embedding N + 12·L·h·s per token)")
    params_counted: Literal["total", "non-embedding"]
    learning_rate: PowerLaw = Field(description="the peak learning rate")
    batch_tokens: PowerLaw = Field(description="the batch size in tokens")
    warmup_steps: Sourced = Field(description="linear warmup to the peak, in optimizer steps")
    fit_range: FitRange | None = Field(None, description="the compute the law was fitted on, for extrapolation warnings")

    @model_validator(mode="after")
    def _physical(self) -> HyperparameterLaw:
        for part in ("learning_rate", "batch_tokens"):
            law: PowerLaw = getattr(self, part)
            if law.coefficient.value <= 0:
                raise ValueError(f"{part}.coefficient: must be positive")
            if law.compute is None and law.params is None and law.tokens is None:
                raise ValueError(f"{part}: give at least one exponent (compute, params or tokens)")
            for key in ("compute", "params", "tokens"):
                item = getattr(law, key)
                if item is not None and not EXPONENT_RANGE[0] <= item.value <= EXPONENT_RANGE[1]:
                    raise ValueError(f"{part}.{key}: {item.value:g} is no hyperparameter exponent (accepted: "
                                     f"{EXPONENT_RANGE[0]:g} to {EXPONENT_RANGE[1]:g})")
        if not (0 <= self.warmup_steps.value <= 1e6 and self.warmup_steps.value == int(self.warmup_steps.value)):
            raise ValueError(f"warmup_steps: must be a whole number of steps from 0 to 1e6, got {self.warmup_steps.value:g}")
        if self.fit_range is not None and not 0 < self.fit_range.flops[0] < self.fit_range.flops[1]:
            raise ValueError("fit_range.flops: [low, high] with 0 < low < high")
        return self

    def extrapolation(self, flops: float) -> PlannerWarning | None:
        if self.fit_range is None:
            return None
        low, high = self.fit_range.flops
        if low <= flops <= high:
            return None
        return PlannerWarning("hparams.range", f"hyperparameter law '{self.name}' was fitted on {low:.3g} to {high:.3g} FLOPs; "
                              f"{flops:.3g} is an extrapolation")


@dataclass(frozen=True)
class Hyperparameters(Record):
    """What a run trains with: peak learning rate, batch, steps and warmup, and where each came from."""

    lr: float
    batch_size: int  # sequences per optimizer step
    batch_tokens: int
    steps: int
    warmup: int  # steps
    seq_len: int
    law: str | None
    law_flops: float | None  # C as the law counts it
    law_params: float | None  # N as the law counts it
    law_lr: float | None  # the law's values before rounding and overrides
    law_batch_tokens: float | None
    overridden: tuple[str, ...]  # which of lr, batch_size, warmup the caller gave
    warnings: tuple[PlannerWarning, ...] = ()


def law_inputs(law: HyperparameterLaw, params: float, tokens: float, seq_len: int,
               shape: Shape | None = None) -> tuple[float, float]:
    """(N, C) of a run as `law` counts them: from its shape when there is one; otherwise `params` is N
    and C is computed at the aspect ratio `planner.costing.cost` assumes for a bare count."""
    if shape is not None:
        n = float(shape.params if law.params_counted == "total" else shape.non_embedding_params)
        per_token = shape.non_embedding_flops_per_token(seq_len) if law.compute == "non-embedding-flops" else 6.0 * n
        return n, per_token * tokens
    if law.compute == "non-embedding-flops":
        return params, float(cost.lm_flops(params, tokens, "6ND+attention", seq_len))
    return params, 6.0 * params * tokens


def round_batch(sequences: float, multiple: int) -> int:
    """The multiple of `multiple` nearest `sequences` in ratio (batch sizes are compared by ratio, as the
    laws fit them in log), at least one multiple."""
    low = max(1, math.floor(sequences / multiple)) * multiple
    high = low + multiple
    return low if sequences <= 0 or abs(math.log(sequences / low)) <= abs(math.log(high / sequences)) else high


def hyperparameters_for(law: HyperparameterLaw | None, params: float, tokens: float, flops: float | None, seq_len: int,
                        batch_multiple: int = 8, lr: float | None = None, batch_size: int | None = None,
                        warmup: int | None = None) -> Hyperparameters:
    """Learning rate, batch and schedule for a run of `params` (N as the law counts it) and `tokens`, at
    compute `flops` (C as the law counts it; `law_inputs`), by `law`; `lr`, `batch_size` (sequences) and
    `warmup` (steps), when given, win over the law's. Without a law all three must be given."""
    given = tuple(k for k, v in (("lr", lr), ("batch_size", batch_size), ("warmup", warmup)) if v is not None)
    if law is None and len(given) < 3:
        missing = [k for k in ("lr", "batch_size", "warmup") if k not in given]
        raise PlannerError(f"without a hyperparameter law, give {', '.join(missing)}", missing[0])
    if tokens <= 0 or seq_len < 1 or batch_multiple < 1:
        raise PlannerError(f"{tokens:g} tokens at sequence length {seq_len} is no run", "tokens")
    warnings: list[PlannerWarning] = []
    law_lr = law_batch = None
    c = flops if flops is not None else 6.0 * params * tokens
    if law is not None:
        law_lr = law.learning_rate.at(c, params, tokens)
        law_batch = law.batch_tokens.at(c, params, tokens)
        warnings += [w for w in (law.extrapolation(c),) if w]
    sequences = batch_size if batch_size is not None else round_batch((law_batch or 0.0) / seq_len, batch_multiple)
    steps = max(1, math.ceil(tokens / (sequences * seq_len) - 1e-9))
    warm = warmup if warmup is not None else int(law.warmup_steps.value) if law is not None else 0
    if warm > steps // 4:
        warnings.append(PlannerWarning("hparams.warmup", f"a warmup of {warm} steps is more than a quarter of the run's {steps} "
                                       "steps; give warmup"))
    rate = lr if lr is not None else law_lr
    assert rate is not None  # a law, or lr given (checked above)
    return Hyperparameters(rate, sequences, sequences * seq_len, steps, min(warm, steps), seq_len, law.name if law else None,
                           c if law else None, params if law else None, law_lr, law_batch, given, tuple(warnings))
