"""Model shapes: parameter counts derived from architecture, per-token FLOPs, CLIP compute per sample.

Dense decoders count parameters from shape (layers, width, heads, KV heads, MLP width and whether
it is gated, vocabulary, tied embeddings, norms and biases); tests hold the counts to the
published ones. MoE models carry total and active counts from their reports (routing makes the
active count a property of the recipe, not of the shape alone). CLIP models carry GMACs per sample.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from planner.catalog.schema import Entry, Sourced, Strict


class Shape(Strict):
    layers: int = Field(gt=0)
    d_model: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int | None = Field(None, gt=0, description="grouped-query attention; None = heads")
    ffn: int = Field(gt=0, description="MLP intermediate width")
    gated: bool = Field(description="SwiGLU/GeGLU: three MLP matrices instead of two")
    vocab: int = Field(gt=0)
    tied_embeddings: bool
    norm: Literal["layernorm", "rmsnorm"]
    biases: bool = Field(description="biases on the linear layers (GPT-2/3, Pythia); Llama has none")
    positions: Literal["learned", "rotary", "alibi"]
    seq_len: int = Field(gt=0, description="training context length")

    @model_validator(mode="after")
    def _heads_divide(self) -> Shape:
        if self.d_model % self.heads:
            raise ValueError(f"heads: {self.heads} does not divide d_model {self.d_model}")
        if self.kv_heads and self.heads % self.kv_heads:
            raise ValueError(f"kv_heads: {self.kv_heads} does not divide heads {self.heads}")
        return self

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    def layer_params(self) -> int:
        h, f = self.d_model, self.ffn
        kv = (self.kv_heads or self.heads) * self.head_dim
        attention = 2 * h * h + 2 * h * kv  # Q, O: h×h; K, V: h×kv
        mlp = (3 if self.gated else 2) * h * f
        if self.biases:
            attention += h + 2 * kv + h
            mlp += (2 * f if self.gated else f) + h
        norms = 2 * h * (2 if self.norm == "layernorm" else 1)  # LayerNorm has a bias too
        return attention + mlp + norms

    def embedding_params(self) -> int:
        h = self.d_model
        total = self.vocab * h * (1 if self.tied_embeddings else 2)
        if self.positions == "learned":
            total += self.seq_len * h
        return total

    def params(self) -> int:
        final_norm = self.d_model * (2 if self.norm == "layernorm" else 1)
        return self.layers * self.layer_params() + self.embedding_params() + final_norm

    def non_embedding_params(self) -> int:
        return self.params() - self.embedding_params()

    def attention_flops_per_token(self, seq_len: int | None = None) -> float:
        """12·L·h·s: QKᵀ and attention-times-V, forward and backward, no causal halving (PaLM App. B)."""
        from planner.costing.cost import attention_flops_per_token

        return float(attention_flops_per_token(self.layers, self.d_model, seq_len or self.seq_len))


from planner.costing.cost import ASPECT, DEFAULT_SEQ_LEN, assumed_layers_width  # noqa: E402,F401  (re-exported)


class Model(Entry):
    kind: Literal["dense-lm", "moe-lm", "clip"]
    family: str
    shape: Shape | None = None
    published_params: Sourced | None = Field(None, description="the count the authors report, for tests")
    params_total: Sourced | None = Field(None, description="MoE: all experts")
    params_active: Sourced | None = Field(None, description="MoE: parameters used per token")
    routed_expert_params: Sourced | None = Field(None, description="MoE: parameters of all routed experts, all layers")
    experts: int | None = Field(None, ge=2, description="MoE: routed experts per MoE layer (what expert parallelism divides)")
    gmacs_per_sample: Sourced | None = Field(None, description="CLIP: forward GMACs per image-text pair")
    clip_params: Sourced | None = Field(None, description="CLIP: image + text tower parameters")

    @model_validator(mode="after")
    def _complete(self) -> Model:
        if self.kind == "dense-lm" and self.shape is None:
            raise ValueError("shape: a dense-lm needs its shape (parameters are derived from it)")
        if self.kind == "moe-lm" and (self.params_total is None or self.params_active is None):
            raise ValueError("params_active: a moe-lm needs params_total and params_active")
        if (self.routed_expert_params is None) != (self.experts is None) or (self.experts and self.kind != "moe-lm"):
            raise ValueError("experts: an moe-lm may give routed_expert_params and experts, together")
        if self.routed_expert_params is not None:
            assert self.params_total is not None  # experts are a moe-lm's (checked above), which has params_total
            if self.routed_expert_params.value >= self.params_total.value:
                raise ValueError("routed_expert_params: must be less than params_total (attention and embeddings are not experts)")
        if self.kind == "clip" and (self.gmacs_per_sample is None or self.clip_params is None):
            raise ValueError("gmacs_per_sample: a clip model needs gmacs_per_sample and clip_params")
        return self

    @property
    def params(self) -> float:
        """Parameters held in memory (all experts for MoE)."""
        if self.kind == "moe-lm":
            assert self.params_total is not None  # _complete: a moe-lm has it
            return self.params_total.value
        if self.kind == "clip":
            assert self.clip_params is not None  # _complete: a clip model has it
            return self.clip_params.value
        assert self.shape is not None  # _complete: a dense-lm has its shape
        return float(self.shape.params())

    @property
    def active_params(self) -> float:
        """Parameters that do work per token: what training FLOPs scale with."""
        if self.kind == "moe-lm":
            assert self.params_active is not None  # _complete: a moe-lm has it
            return self.params_active.value
        return self.params
