"""`planner memory`: formulas against hand-computed values, peer-calculator bugs (formulas.md §4), the node search."""

import json
import time

import pytest
from cli_helpers import run

from planner.costing import memory as mem
from planner.costing.layout import best_layout, min_nodes
from planner.costing.memory import (
    GIB,
    Layout,
    dims_of,
    estimate,
    layer_activation_bytes,
)
from planner.errors import PlannerError

S = H = 4096  # formulas.md §3.5: Llama-2-7B shape, s = h = 4096, L = 32, a = 32, b = 1
L, A = 32, 32
SBH = S * 1 * H


@pytest.fixture(scope="module")
def booster(catalog):
    cluster = catalog.cluster("juwels-booster")
    return cluster, catalog.accelerator(cluster.accelerator)


# --- activations: Korthikanti et al. 2022 Table 2 -------------------------------------------------------------


def test_selective_recompute_is_34_sbh_per_layer_17_gib():
    per_layer = layer_activation_bytes(S, 1, H, A, recompute="selective")
    assert per_layer == 34 * SBH
    assert per_layer * L / GIB == pytest.approx(17.0)


def test_no_recompute_without_flash_attention_keeps_the_score_term_97_gib():
    per_layer = layer_activation_bytes(S, 1, H, A, recompute="none", flash_attention=False)
    assert per_layer == SBH * (34 + 5 * A * S / H) == SBH * (34 + 160)
    assert per_layer * L / GIB == pytest.approx(97.0)


def test_flash_attention_removes_the_score_term():
    # cookbook quirk: FlashAttention is not modelled there, so 5as/h is always present without recompute
    assert layer_activation_bytes(S, 1, H, A, recompute="none") == 34 * SBH


def test_tensor_parallel_without_sequence_parallel():
    got = layer_activation_bytes(S, 1, H, A, tp=8, recompute="none", flash_attention=False)
    assert got == pytest.approx(SBH * (10 + 24 / 8 + 5 * A * S / (H * 8)))


def test_tensor_and_sequence_parallel_selective_is_34_sbh_over_t():
    assert layer_activation_bytes(S, 1, H, A, tp=8, sequence_parallel=True) == pytest.approx(34 * SBH / 8)
    assert layer_activation_bytes(S, 1, H, A, tp=8, recompute="selective") == pytest.approx(SBH * (10 + 24 / 8))


def test_full_recompute_keeps_the_layer_input_not_34_sbh():
    # cookbook quirk: --checkpoint-activations there means selective (34·sbh), not full (2·sbh)
    assert layer_activation_bytes(S, 1, H, A, recompute="full") == 2 * SBH
    assert layer_activation_bytes(S, 1, H, A, tp=4, sequence_parallel=True, recompute="full") == 2 * SBH / 4


def test_mlp_width_and_gqa_generalise_the_coefficient():
    # Megatron: 18 + 4f/h for any MLP width (f = 4h gives 34)
    assert layer_activation_bytes(S, 1, H, A, ffn=2 * H) == SBH * (18 + 4 * 2)
    # derived: K, V shrink with n_kv/a; a fused SwiGLU keeps 6f/h
    f = 11008
    assert layer_activation_bytes(S, 1, H, A, ffn=f, gated=True) == pytest.approx(SBH * (10 + 8 + 6 * f / H))
    assert layer_activation_bytes(S, 1, H, 64, ffn=f, kv_heads=8) == pytest.approx(SBH * (10 + 4 + 4 / 8 + 4 * f / H))


def test_fp32_activations_double():
    assert layer_activation_bytes(S, 1, H, A, act_bytes=4) == 2 * 34 * SBH


def test_full_recompute_stage_adds_one_rematerialised_layer(catalog, booster):
    model = catalog.model("llama-2-7b")
    d = dims_of(model)
    br = estimate(model, Layout(recompute="full", seq_len=S), booster[1])
    one_layer = layer_activation_bytes(S, 1, H, A, ffn=d.ffn, gated=True, recompute="none")
    embed = 8 * S + SBH
    logits = 4 * SBH + 4 * S * d.vocab
    assert br.activations == pytest.approx(L * 2 * SBH + one_layer + embed + logits)


# --- model states: ZeRO / FSDP / Megatron ---------------------------------------------------------------------


def states(br):
    return br.weights + br.gradients + br.optimizer


@pytest.mark.parametrize("zero, gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_stages_for_7_5b_on_64_gpus(booster, zero, gb):
    # Ψ = 7.5B, N_d = 64, K = 12: 16Ψ, 4Ψ + 12Ψ/N_d, 2Ψ + 14Ψ/N_d, 16Ψ/N_d (formulas.md §3.2; the ZeRO paper's Fig. 1)
    # The paper counts 2 + 2 + K with fp16 gradients, so its table needs 2-byte gradients; the default is fp32.
    br = estimate(7.5e9, Layout(dp=64, zero=zero, grad_dtype="bf16"), booster[1])
    assert br.params_per_gpu == pytest.approx(7.5e9)
    assert round(states(br) / 1e9, 1) == gb


def test_megatron_bytes_per_parameter_are_the_default(booster):
    # 18 bytes without the distributed optimizer; 6 + 12/N_d with it (Megatron-LM theoretical_memory_usage.py):
    # fp32 main_grad buffers, the default here
    plain = estimate(7e9, Layout(dp=16, zero=0), booster[1])
    assert states(plain) / plain.params_per_gpu == pytest.approx(18)
    dist = estimate(7e9, Layout(dp=16, zero=1), booster[1])
    assert states(dist) / dist.params_per_gpu == pytest.approx(6 + 12 / 16)


def test_gradients_are_fp32_by_default_and_bf16_on_request(booster):
    assert Layout().grad_dtype == "fp32"
    fp32 = estimate(7e9, Layout(dp=64, zero=1), booster[1])
    bf16 = estimate(7e9, Layout(dp=64, zero=1, grad_dtype="bf16"), booster[1])
    assert fp32.gradients == 4 * 7e9 and bf16.gradients == 2 * 7e9  # ZeRO-1 keeps gradients whole
    assert (fp32.weights, fp32.optimizer, fp32.activations) == (bf16.weights, bf16.optimizer, bf16.activations)
    # 7B with ZeRO-1: 2 bytes × 7e9 = 14.0e9 bytes = 13.04 GiB more per GPU than with bf16 gradients
    assert (fp32.total - bf16.total) / GIB == pytest.approx(14e9 / GIB) == pytest.approx(13.04, abs=0.005)
    # ZeRO-2 shards the gradients: the difference is divided by N_d
    z2 = [estimate(7e9, Layout(dp=64, zero=2, grad_dtype=g), booster[1]).gradients for g in ("fp32", "bf16")]
    assert z2 == [pytest.approx(4 * 7e9 / 64), pytest.approx(2 * 7e9 / 64)]
    assert any("gradients: fp32, 4 bytes/parameter" in n for n in fp32.notes)
    assert any("gradients: bf16, 2 bytes/parameter" in n for n in bf16.notes)


def test_the_former_grad_fp32_flag_and_fp32_training(booster):
    assert Layout(grad_fp32=True).grad_dtype == "fp32" and Layout(grad_fp32=False).grad_dtype == "bf16"
    assert Layout(precision="fp32", grad_fp32=False).grad_dtype == "fp32"  # fp32 training always had fp32 gradients
    with pytest.raises(ValueError, match="contradicts"):
        Layout(grad_fp32=True, grad_dtype="bf16")
    with pytest.raises(ValueError, match="fp32 training keeps fp32 gradients"):
        Layout(precision="fp32", grad_dtype="bf16")
    assert Layout(precision="fp16", grad_dtype="bf16").gradient_dtype == "fp16"
    assert estimate(7e9, Layout(precision="fp32"), booster[1]).gradients == 4 * 7e9


@pytest.mark.parametrize("optimizer, precision, per_param", [
    ("adamw", "fp32", 16), ("adamw-8bit", "bf16", 12), ("sgd-momentum", "bf16", 14), ("sgd", "fp32", 8)])
def test_precision_and_optimizer_bytes(booster, optimizer, precision, per_param):
    # mixed precision: 2-byte weights, 4-byte (fp32) gradients by default, then the optimizer's bytes
    br = estimate(7e9, Layout(optimizer=optimizer, precision=precision), booster[1])
    assert states(br) / br.params_per_gpu == pytest.approx(per_param)


def test_zero3_divides_by_the_data_parallel_degree_not_the_world_size(catalog, booster):
    # cookbook bug: ZeRO-3 divided by num_gpus after dividing by tp·pp, and dp_degree went unused
    br = estimate(catalog.model("llama-2-7b"), Layout(dp=8, tp=4, zero=3, seq_len=S), booster[1])
    assert br.layout.gpus == 32
    assert br.params_per_gpu == pytest.approx(6.738e9 / 4, rel=0.02)
    assert br.weights == pytest.approx(2 * br.params_per_gpu / 8)
    assert br.optimizer == pytest.approx(12 * br.params_per_gpu / 8)


def test_fsdp_strategies_map_to_zero_stages_and_hybrid_shards_within_its_group(booster):
    assert [Layout(fsdp=f).zero for f in ("no_shard", "shard_grad_op", "full_shard", "hybrid_shard")] == [0, 2, 3, 3]
    hybrid = estimate(7e9, Layout(dp=64, fsdp="hybrid_shard", shard_group=4), booster[1])
    assert hybrid.layout.n_d == 4
    assert hybrid.optimizer == pytest.approx(12 * 7e9 / 4)
    with pytest.raises(ValueError, match="ZeRO-3, not ZeRO-1"):
        Layout(fsdp="full_shard", zero=1)


def test_hybrid_shard_groups_are_one_node_of_tp_replicas(catalog, booster):
    model = catalog.model("llama-2-13b")
    on80 = best_layout(model, catalog.accelerator("a100-sxm-80gb"), 16, 8, fsdp="hybrid_shard")
    assert on80.breakdown.fits and on80.layout.shard_group == 8 // on80.layout.tp
    on40 = best_layout(model, booster[1], 32, 4, fsdp="hybrid_shard")  # 16·13e9/4 > 36 GB: a node cannot hold a replica
    assert not on40.breakdown.fits and on40.layout.shard_group == 4 // on40.layout.tp


def test_layernorm_is_replicated_under_tensor_parallelism(catalog, booster):
    # llm-analysis #19: LayerNorm counted once per layer and sharded by TP. Here: two LayerNorms (weight + bias)
    # and the row-parallel biases stay whole on every TP rank.
    h, t = 12288, 8
    br = estimate(catalog.model("gpt-3-175b"), Layout(tp=t, seq_len=2048), booster[1])
    replicated = 4 * h + 2 * h
    layer = 12 * h * h + 13 * h
    expected = 96 * ((layer - replicated) / t + replicated) + 50257 * h / t + 2048 * h + 2 * h
    assert br.params_per_gpu == pytest.approx(expected, rel=1e-12)


def test_llama_has_no_learned_positions(catalog, booster):
    # cookbook bug: h·s of position embeddings added for RoPE models
    br = estimate(catalog.model("llama-2-7b"), Layout(seq_len=S), booster[1])
    assert br.params_per_gpu == 6_738_415_616


def test_activations_are_part_of_the_total(catalog, booster):
    # accelerate estimate-memory and the DeepSpeed estimators report model states only
    br = estimate(catalog.model("llama-2-7b"), Layout(dp=64, zero=3, seq_len=S), booster[1])
    assert br.activations > states(br)
    assert br.total == pytest.approx(states(br) + br.activations + br.buffers)


# --- pipeline stages ------------------------------------------------------------------------------------------


def test_first_stage_holds_pp_micro_batches_of_its_layers(catalog, booster):
    model = catalog.model("llama-3-8b")
    per_layer = layer_activation_bytes(8192, 1, 4096, 32, ffn=14336, gated=True, kv_heads=8)
    full = estimate(model, Layout(pp=4, seq_len=8192), booster[1])
    assert full.stage == "first"
    layers_part = full.activations - 4 * (8 * 8192 + 8192 * 4096)
    assert layers_part == pytest.approx(32 * per_layer)  # 8 layers × 4 in flight = L layers' worth
    two = estimate(model, Layout(pp=4, micro_batches=2, seq_len=8192), booster[1])
    assert two.activations - 2 * (8 * 8192 + 8192 * 4096) == pytest.approx(16 * per_layer)
    inter = estimate(model, Layout(pp=4, interleave=2, seq_len=8192), booster[1])
    assert inter.activations == pytest.approx(full.activations * (1 + 3 / 8))


def test_the_most_loaded_stage_can_be_the_last(catalog, booster):
    # Megatron reports the first stage only; with one micro-batch in flight the output head and logits win
    br = estimate(catalog.model("llama-3-8b"), Layout(pp=32, micro_batches=1, seq_len=8192), booster[1])
    assert br.stage == "last"


def test_tied_embeddings_keep_a_copy_on_the_last_stage(catalog, booster):
    d = dims_of(catalog.model("gpt-3-175b"))
    one = mem.stages(d, Layout(pp=2, seq_len=2048))
    assert one[1].params - one[0].params == pytest.approx(d.final_norm - d.positions)


def test_layouts_that_do_not_divide_are_refused(catalog, booster):
    with pytest.raises(PlannerError, match="does not divide the 32 attention heads"):
        estimate(catalog.model("llama-2-7b"), Layout(tp=3), booster[1])
    with pytest.raises(PlannerError, match="does not divide the 32 layers"):
        estimate(catalog.model("llama-2-7b"), Layout(pp=5), booster[1])


def test_capacity_is_decimal_gb(booster):
    assert mem.capacity_bytes(booster[1]) == 40e9
    assert estimate(1e9, Layout(), booster[1]).usable / GIB == pytest.approx(0.9 * 40e9 / GIB)


def test_known_configuration_fits_korthikanti_175b_on_80gb(catalog):
    # GPT-3 175B, TP 8 × PP 8, sequence parallel + selective recompute, b = 1: trained on A100 80 GB
    br = estimate(catalog.model("gpt-3-175b"), Layout(tp=8, pp=8, seq_len=2048), catalog.accelerator("a100-sxm-80gb"))
    assert br.layout.grad_dtype == "fp32"  # Megatron's fp32 main_grad, the default
    assert br.fits


# --- the search -----------------------------------------------------------------------------------------------


def test_175b_minimum_nodes_on_juwels_booster_really_hold_it(catalog, booster):
    cluster, acc = booster
    model = catalog.model("gpt-3-175b")
    found = min_nodes(model, cluster, acc)
    assert found.breakdown.fits and found.breakdown.total <= 0.9 * 40e9
    assert found.layout.gpus == 4 * found.units and found.layout.tp <= 4  # llm-analysis assumes 8 GPUs per node
    assert found.units == 68  # fp32 gradients (56 with bf16 gradients)
    assert min_nodes(model, cluster, acc, grad_dtype="bf16").units == 56
    # nothing in the searched space fits on one node fewer
    d = dims_of(model)
    for tp in (1, 2, 4):
        for pp in [p for p in range(1, 97) if 96 % p == 0]:
            for zero in (0, 1) if pp > 1 else (0, 1, 2, 3):
                if (found.units - 1) * 4 % (tp * pp):
                    continue
                lay = Layout(dp=(found.units - 1) * 4 // (tp * pp), tp=tp, pp=pp, zero=zero, seq_len=2048)
                assert not estimate(d, lay, acc).fits, lay


@pytest.mark.parametrize("name", ["llama-2-7b", "llama-2-70b", "gpt-3-175b"])
def test_closed_form_minimum_matches_a_scan(catalog, booster, name):
    cluster, acc = booster
    model = catalog.model(name)
    found = min_nodes(model, cluster, acc, recompute="selective")
    scan = next(n for n in range(1, 200) if best_layout(model, acc, 4 * n, 4, recompute="selective").breakdown.fits)
    assert found.units == scan


def test_search_prefers_less_model_parallelism_at_equal_nodes(catalog, booster):
    cluster, acc = booster
    found = min_nodes(catalog.model("llama-2-7b"), cluster, acc, max_nodes=64)
    at64 = best_layout(catalog.model("llama-2-7b"), acc, 256, 4)
    assert found.units == 1 and found.layout.tp == 4
    assert at64.layout.tp == 1 and at64.layout.pp == 1  # ZeRO over 256 GPUs beats TP when both fit


def test_selective_first_then_full_recompute(catalog, booster):
    cluster, acc = booster
    assert min_nodes(catalog.model("llama-3.1-405b"), cluster, acc, recompute="selective") is None
    found = min_nodes(catalog.model("llama-3.1-405b"), cluster, acc)
    assert found.layout.recompute == "full" and found.breakdown.fits


def test_405b_search_answers_in_well_under_100_ms(catalog, booster):
    cluster, acc = booster
    model = catalog.model("llama-3.1-405b")
    start = time.perf_counter()
    min_nodes(model, cluster, acc)
    assert time.perf_counter() - start < 0.1


def test_search_never_pairs_pipeline_with_zero_2_or_3(catalog, booster):
    acc = booster[1]
    for n in (8, 32, 128):
        lay = best_layout(catalog.model("gpt-3-175b"), acc, 4 * n, 4).layout
        assert lay.pp == 1 or lay.zero <= 1


def test_assumed_shape_for_a_bare_count_and_moe(catalog):
    d = dims_of(7e9)
    assert (d.layers, d.hidden, d.heads) == (32, 4096, 32) and d.params == 7e9 and d.assumed
    moe = dims_of(catalog.model("deepseek-v3"))
    assert moe.params == 671e9 and moe.assumed and "MoE" in moe.assumed
    with pytest.raises(PlannerError, match="CLIP"):
        dims_of(catalog.model("openclip-vit-l-14"))


def test_library_takes_the_catalog_for_the_accelerator(catalog, booster):
    assert min_nodes(catalog.model("llama-2-7b"), booster[0], catalog).units == 1


# --- the command ----------------------------------------------------------------------------------------------


def test_175b_on_4_nodes_is_refused_with_one_line(capsys):
    code, out, err = run("memory --model gpt-3-175b --cluster juwels-booster --nodes 4", capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "does not fit" in err and "GiB per GPU" in err and "33.5 GiB usable" in err and "at least 68 nodes" in err
    assert "fits" in out and " no" in out


def test_refusal_still_prints_json_with_fits_false(capsys):
    code, out, _ = run("memory --model gpt-3-175b --cluster juwels-booster --nodes 4 --format json", capsys)
    data = json.loads(out)
    assert code == 2 and data["fits"] is False and data["minimum_units"] == 68
    assert data["bytes"]["total"] > data["bytes"]["usable"] == 0.9 * 40e9


def test_minimum_nodes_when_no_count_is_given(capsys):
    code, out, _ = run("memory --model gpt-3-175b --cluster juwels-booster --format json", capsys)
    data = json.loads(out)
    assert code == 0 and data["fits"] and data["nodes"] == data["minimum_units"] == 68


def test_70b_on_64_nodes(capsys):
    code, out, _ = run("memory --model llama-2-70b --cluster juwels-booster --nodes 64 --format json", capsys)
    data = json.loads(out)
    assert code == 0 and data["fits"] and data["gpus"] == 256
    assert data["gib"]["total"] < data["gib"]["usable"]
    assert all(data["bytes"][k] > 0 for k in ("weights", "gradients", "optimizer", "activations"))


def test_a_fixed_layout_is_evaluated_as_given(capsys):
    code, out, _ = run("memory --model gpt-3-175b --cluster juwels-booster --nodes 64 --zero 1 --tp 4 --pp 8 "
                       "--recompute full --format json", capsys)
    data = json.loads(out)
    assert data["layout_text"] == "DP 8 × TP 4 × PP 8, ZeRO-1, full recompute"
    assert code == (0 if data["fits"] else 2)


def test_bare_parameter_count_says_the_shape_is_assumed(capsys):
    code, out, _ = run("memory --params 13B --accelerator h100-sxm --gpus 8 --fsdp full_shard", capsys)
    assert code == 0 and "shape assumed" in out and "FSDP full_shard" in out


@pytest.mark.parametrize("args, message", [
    ("--model openclip-vit-l-14 --cluster juwels-booster", "CLIP"),
    ("--model llama-2-7b --cluster juwels-booster --zero 1 --fsdp full_shard", "--fsdp: conflicts with --zero; give one"),
    ("--model llama-2-7b --layers 3 --cluster juwels-booster", "--layers/--hidden are for --params"),
    ("--cluster juwels-booster", "--model NAME or --params N"),
    ("--model llama-2-7b --cluster juwels-booster --nodes 4 --tp 3", "attention heads"),
    ("--model llama-2-7b --cluster juwels-booster --pp 5", "does not divide the 32 layers"),
])
def test_bad_input_is_one_line(capsys, args, message):
    code, _, err = run("memory " + args, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_grad_dtype_option_switches_the_gradient_bytes(capsys):
    base = "memory --params 7B --accelerator a100-sxm-80gb --gpus 64 --zero 1 --format json"
    runs = {g: run(f"{base} --grad-dtype {g}", capsys) for g in ("fp32", "bf16")}
    default = run(base, capsys)
    assert all(code == 0 for code, _, _ in [*runs.values(), default])
    data = {g: json.loads(out) for g, (_, out, _) in runs.items()}
    assert json.loads(default[1]) == data["fp32"]
    assert data["fp32"]["bytes"]["gradients"] == 4 * 7e9 and data["bf16"]["bytes"]["gradients"] == 2 * 7e9
    assert data["fp32"]["grad_dtype"] == "fp32" and data["bf16"]["layout"]["grad_dtype"] == "bf16"
    assert data["fp32"]["gib"]["total"] - data["bf16"]["gib"]["total"] == pytest.approx(14e9 / GIB)
    assert any(n.startswith("gradients: bf16, 2 bytes/parameter") for n in data["bf16"]["notes"])
    code, out, _ = run(base.replace("json", "table"), capsys)
    assert code == 0 and "gradients: fp32, 4 bytes/parameter" in out and "gradient dtype" in out


@pytest.mark.parametrize("args, message", [
    ("--grad-dtype fp8", "'fp8' is not one of 'fp32', 'bf16'"),
    ("--grad-dtype bf16 --precision fp32", "fp32 training keeps fp32 gradients"),
    ("--grad-dtype bf16 --fp32-grads", "contradicts --grad-dtype bf16"),
])
def test_bad_grad_dtype_is_one_line(capsys, args, message):
    code, _, err = run(f"memory --params 7B --accelerator a100-sxm-80gb --gpus 8 {args}", capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_every_format_renders(capsys):
    for fmt in ("table", "csv", "markdown", "latex"):
        code, out, _ = run(f"memory --model llama-2-7b --cluster juwels-booster --format {fmt}", capsys)
        assert code == 0 and out.strip()


# --- expert parallelism (MoE) ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dsv3(catalog):
    return catalog.model("deepseek-v3"), catalog.accelerator("gh200-96gb")


def test_routed_experts_of_deepseek_v3_from_its_config(dsv3):
    model, _ = dsv3
    assert model.routed_expert_params.value == 58 * 256 * 3 * 7168 * 2048
    # what is not a routed expert, plus 8 of 256 experts, is the published active count (37B, within 2%)
    active = model.params - model.routed_expert_params.value * (1 - 8 / 256)
    assert active == pytest.approx(model.params_active.value, rel=0.02)


def test_without_ep_the_experts_are_ordinary_parameters(dsv3):
    """EP 1 gives the same bytes as a model whose experts are folded into its layers."""
    import dataclasses

    model, acc = dsv3
    d = dims_of(model)
    folded = dataclasses.replace(d, layer_params=d.layer_params + d.expert_params, expert_params=0.0, experts=0)
    for zero in (0, 1, 3):
        lay = Layout(dp=512, tp=4, zero=zero, seq_len=4096)
        a, b = estimate(d, lay, acc), estimate(folded, lay, acc)
        assert (a.weights, a.gradients, a.optimizer) == pytest.approx((b.weights, b.gradients, b.optimizer), rel=1e-12)


def test_ep_divides_the_unsharded_expert_states_only(dsv3):
    model, acc = dsv3
    d = dims_of(model)
    lay = Layout(dp=512, tp=4, ep=64, zero=1, seq_len=4096)
    br = estimate(d, lay, acc)
    e = d.layers * d.expert_params / 4  # experts per TP rank
    p = br.params_per_gpu - e / 64
    assert br.weights == pytest.approx(2 * (p + e / 64), rel=1e-12)  # ZeRO-1: weights whole, experts 1/EP
    assert br.gradients == pytest.approx(4 * (p + e / 64), rel=1e-12)  # fp32 gradients
    assert br.optimizer == pytest.approx(12 * (p + e) / 512, rel=1e-12)  # sharded over all DP ranks
    zero3 = estimate(d, lay.model_copy(update={"zero": 3}), acc)
    no_ep = estimate(d, lay.model_copy(update={"zero": 3, "ep": 1}), acc)
    assert zero3.weights == pytest.approx(no_ep.weights, rel=1e-12)  # fully sharded states: EP changes nothing


def test_min_nodes_with_ep_gives_whole_ep_groups(dsv3, catalog):
    model, acc = dsv3
    fit = min_nodes(model, catalog.cluster("jupiter-booster"), acc, zero=1, ep=64)
    assert fit is not None and fit.breakdown.fits
    assert fit.layout.dp % 64 == 0 and fit.layout.ep == 64
    smaller = best_layout(model, acc, (fit.units - 16) * 4, 4, zero=1, ep=64)
    assert not smaller.breakdown.fits or (fit.units - 16) * 4 % (fit.layout.tp * 64)


@pytest.mark.parametrize("args, message", [
    ("--model llama-2-7b --cluster juwels-booster --nodes 4 --ep 2", "has no routed experts"),
    ("--model deepseek-v3 --cluster jupiter-booster --nodes 128 --ep 3", "does not divide the 256 routed experts"),
    ("--model deepseek-v3 --cluster jupiter-booster --nodes 128 --ep 8 --fsdp full_shard", "not with FSDP"),
])
def test_bad_expert_parallelism(capsys, args, message):
    code, _, err = run(f"memory {args}", capsys)
    assert code == 2 and message in err, err
