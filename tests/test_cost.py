"""Hours and energy arithmetic, checked by hand against the plan the CLI prints."""

import pytest

from planner.costing import cost
from planner.costing.plan import PlanRequest, make_plan


def test_six_nd():
    assert cost.training_flops(70e9, 1.4e12) == pytest.approx(5.88e23)


def test_gpu_hours_formula():
    # 1e21 FLOPs at 312 TFLOP/s and 50% MFU: 1e21 / (312e12 * 0.5 * 3600) = 1780.6 GPU-hours
    assert cost.gpu_hours(1e21, 312e12, 0.5) == pytest.approx(1e21 / (312e12 * 0.5 * 3600))
    assert cost.gpu_hours(1e21, 312e12, 0.5) == pytest.approx(1780.63, rel=1e-5)
    assert cost.flops_from_gpu_hours(cost.gpu_hours(1e21, 312e12, 0.5), 312e12, 0.5) == pytest.approx(1e21)


def test_nodes_round_up():
    assert cost.nodes_for(8, 4) == 2
    assert cost.nodes_for(9, 4) == 3
    assert cost.nodes_for(1, 8) == 1


def test_plan_arithmetic_on_juwels_booster(catalog):
    """GPU-hours from peak x MFU, node-hours from 4 GPUs per node, wall-clock from GPUs, energy from 1.88 kW."""
    plan = make_plan(PlanRequest(params=[7e9], tokens=1.4e11, cluster="juwels-booster", nodes=64, mfu=0.5,
                                 flops_convention="6ND"), catalog)
    flops = 6 * 7e9 * 1.4e11
    gpu_h = flops / (312e12 * 0.5 * 3600)
    assert plan.flops == pytest.approx(flops)
    assert plan.costs.gpu_hours == pytest.approx(gpu_h)
    assert plan.costs.gpus == 256 and plan.costs.nodes == 64
    assert plan.costs.wall_clock_hours == pytest.approx(gpu_h / 256)
    assert plan.costs.wall_clock_days == pytest.approx(gpu_h / 256 / 24)
    assert plan.costs.node_hours == pytest.approx(gpu_h / 4)
    assert plan.costs.energy_kwh == pytest.approx(gpu_h / 4 * 1.88)
    assert plan.costs.charge.unit == "core-h"


def test_partial_node_is_charged_whole(catalog):
    plan = make_plan(PlanRequest(params=[1e9], tokens=2e10, cluster="juwels-booster", gpus=6, mfu=0.5), catalog)
    assert plan.costs.nodes == 2
    assert plan.costs.node_hours == pytest.approx(plan.costs.wall_clock_hours * 2)
    assert plan.costs.node_hours > plan.costs.gpu_hours / 4


def test_node_hours_without_gpu_count(catalog):
    plan = make_plan(PlanRequest(flops=1e22, cluster="juwels-booster", mfu=0.4), catalog)
    assert plan.costs.wall_clock_hours is None
    assert plan.costs.node_hours == pytest.approx(plan.costs.gpu_hours / 4)


def test_gpu_hour_budget_is_spent_exactly(catalog):
    plan = make_plan(PlanRequest(gpu_hours=1e5, cluster="juwels-booster"), catalog)
    assert plan.costs.gpu_hours == pytest.approx(1e5, rel=1e-9)
    assert plan.flops == pytest.approx(1e5 * 3600 * 312e12 * plan.costs.mfu, rel=1e-9)


def test_node_hour_budget(catalog):
    plan = make_plan(PlanRequest(node_hours=1e4, cluster="juwels-booster", mfu=0.45), catalog)
    assert plan.costs.gpu_hours == pytest.approx(4e4)
    assert plan.costs.node_hours == pytest.approx(1e4)


def test_days_on_nodes(catalog):
    plan = make_plan(PlanRequest(days=30, nodes=64, cluster="juwels-booster", mfu=0.45), catalog)
    assert plan.costs.wall_clock_days == pytest.approx(30)
    assert plan.costs.gpu_hours == pytest.approx(30 * 24 * 256)
    assert plan.flops == pytest.approx(30 * 24 * 3600 * 256 * 312e12 * 0.45)


def test_accelerator_only_energy_is_tdp(catalog):
    plan = make_plan(PlanRequest(flops=1e21, accelerator="a100-sxm-40gb", mfu=0.5, gpus=8), catalog)
    assert plan.costs.node_hours is None
    assert plan.costs.energy_kwh == pytest.approx(plan.costs.gpu_hours * 0.4)
    assert "TDP" in plan.costs.energy_basis


def test_fp8_uses_the_fp8_peak(catalog):
    plan = make_plan(PlanRequest(flops=1e21, accelerator="h100-sxm", mfu=0.3, dtype="fp8"), catalog)
    assert plan.costs.peak_flops_per_gpu == pytest.approx(1978.9e12)


def test_model_fixed_run_uses_shape_parameters(catalog):
    plan = make_plan(PlanRequest(model="llama-2-7b", tokens=2e12, cluster="juwels-booster", mfu=0.5,
                                 flops_convention="6ND"), catalog)
    assert plan.params == 6_738_415_616
    assert plan.flops == pytest.approx(6 * 6_738_415_616 * 2e12)


def test_attention_convention_adds_12_l_h_s(catalog):
    """formulas.md §2: Llama-2-7B at 4k context, D = 2e12: 6ND = 8.09e22, with 12·L·h·s per token 9.37e22 (+16%)."""
    plan = make_plan(PlanRequest(model="llama-2-7b", tokens=2e12), catalog)  # the default convention
    assert plan.flops_convention == "6ND+attention" and plan.seq_len == 4096
    assert plan.flops_6nd == pytest.approx(8.09e22, rel=1e-3)
    assert plan.flops == pytest.approx(9.37e22, rel=1e-3)
    longer = make_plan(PlanRequest(model="llama-2-7b", tokens=2e12, seq_len=32768), catalog)
    assert longer.flops == pytest.approx((6 * 6_738_415_616 + 12 * 32 * 4096 * 32768) * 2e12)
    assert any(w.topic == "flops" and "x the law's 6ND count" in w.message for w in longer.warnings)  # +1.3x is worth a warning


def test_bare_parameter_counts_get_an_assumed_shape_for_attention(catalog):
    """h = 128·L at 12·L·h² parameters: 6.74e9 gives L = 32.5, h = 4160, close to Llama 2 7B's 32 x 4096."""
    plan = make_plan(PlanRequest(params=[6.738415616e9], tokens=2e12), catalog)
    layers = (6.738415616e9 / (12 * 128**2)) ** (1 / 3)
    assert layers == pytest.approx(32.5, abs=0.1)
    assert plan.flops == pytest.approx((6 * 6.738415616e9 + 12 * layers * 128 * layers * 4096) * 2e12)
    assert plan.flops == pytest.approx(9.37e22, rel=0.01)
    assert "shape assumed" in plan.shape_basis


def test_budget_mode_spends_the_hours_on_hardware_flops_with_attention(catalog):
    """Budget mode: the hours buy hardware FLOPs (6ND + attention); the law splits their 6ND share."""
    plan = make_plan(PlanRequest(gpu_hours=1e6, cluster="juwels-booster", nodes=64), catalog)
    assert plan.costs.gpu_hours == pytest.approx(1e6, rel=1e-9)
    assert plan.flops == pytest.approx(1e6 * 3600 * 312e12 * plan.costs.mfu, rel=1e-6)
    assert plan.flops_6nd == pytest.approx(6 * plan.params * plan.tokens, rel=1e-9)
    assert plan.flops_6nd < plan.flops
    # the hours are fixed, so the range is on what they buy, not on the hours
    assert plan.costs.gpu_hours_interval is None
    lo, hi = plan.params_interval
    assert lo < plan.params < hi
    assert plan.flops_interval[0] < plan.flops < plan.flops_interval[1]


def test_moe_flops_use_active_parameters(catalog):
    plan = make_plan(PlanRequest(model="deepseek-v3", tokens=14.8e12, flops_convention="6ND"), catalog)
    assert plan.flops == pytest.approx(6 * 37e9 * 14.8e12)
    assert plan.flops_convention == "moe"
    default = make_plan(PlanRequest(model="deepseek-v3", tokens=14.8e12), catalog)
    assert default.flops_convention == "moe+attention"
    assert 6 * 37e9 * 14.8e12 < default.flops < 1.3 * 6 * 37e9 * 14.8e12


def test_clip_run_is_six_gmacs_times_samples(catalog):
    """ViT-L/14, 34B samples: 6 x 87.73e9 x 34e9 FLOPs, at the openCLIP MFU profile."""
    plan = make_plan(PlanRequest(model="openclip-vit-l-14", samples=34e9, cluster="juwels-booster", nodes=64), catalog)
    flops = 6 * 87.73e9 * 34e9
    assert plan.flops == pytest.approx(flops)
    assert plan.flops_convention == "clip"
    assert 0.1 < plan.costs.mfu < 0.2  # openCLIP on A100: 9-17% of the bf16 peak
    assert plan.costs.gpu_hours == pytest.approx(flops / (312e12 * plan.costs.mfu * 3600))


def test_goodput_scales_hours_not_flops(catalog):
    steady = make_plan(PlanRequest(params=[7e9], tokens=1e12, cluster="juwels-booster", mfu=0.5), catalog)
    campaign = make_plan(PlanRequest(params=[7e9], tokens=1e12, cluster="juwels-booster", mfu=0.5, goodput=0.8), catalog)
    assert campaign.flops == steady.flops
    assert campaign.costs.gpu_hours == pytest.approx(steady.costs.gpu_hours / 0.8)


def test_plan_reports_minimum_nodes_and_refuses_too_few(catalog):
    """GPT-3 175B on JUWELS Booster: 4 nodes cannot hold it; the plan says how many can."""
    few = make_plan(PlanRequest(model="gpt-3-175b", tokens=300e9, cluster="juwels-booster", nodes=4), catalog)
    assert few.memory.fits is False
    assert few.memory.min == 68 and few.memory.unit == "nodes"  # fp32 gradients (56 with bf16)
    assert any(w.topic == "memory.short" and "cannot hold the model" in w.message for w in few.warnings)
    enough = make_plan(PlanRequest(model="gpt-3-175b", tokens=300e9, cluster="juwels-booster", nodes=68), catalog)
    assert enough.memory.fits is True
    assert not any(w.topic == "memory.short" or "cannot hold" in w.message for w in enough.warnings)


def test_facility_energy_and_co2(capsys):
    import json

    from cli_helpers import run

    def plan(args):
        code, out, err = run(f"plan --params 7e9 --tokens 1.4e11 --nodes 8 --format json {args}", capsys)
        assert code == 0, err
        return json.loads(out)

    given = plan("--cluster juwels-booster --pue 1.1 --grid-intensity 380")
    assert given["facility_energy_kwh"] == pytest.approx(given["energy_kwh"] * 1.1, rel=1e-12)
    assert given["co2_kg"] == pytest.approx(given["facility_energy_kwh"] * 0.380, rel=1e-12)
    unknown = plan("--cluster juwels-booster")  # no PUE or intensity published: none invented
    assert unknown["facility_energy_kwh"] is None and unknown["co2_kg"] is None
    perlmutter = plan("--cluster perlmutter-gpu")  # NERSC's design PUE from the catalog
    assert perlmutter["facility_energy_kwh"] == pytest.approx(perlmutter["energy_kwh"] * 1.08, rel=1e-12)
    # Jean Zay: 3.2 kW per 8-GPU node is Luccioni et al.'s 0.40 kWh per GPU-hour of dynamic energy for BLOOM,
    # and their 57 gCO2/kWh; 1,082,990 GPU-hours then give their 24.7 t CO2eq
    jz = plan("--cluster jean-zay-a100")
    assert jz["energy_kwh"] / jz["gpu_hours"] == pytest.approx(0.40, rel=1e-12)
    assert jz["co2_kg"] == pytest.approx(jz["energy_kwh"] * 0.057, rel=1e-12)
    assert 1_082_990 * 0.40 * 0.057 == pytest.approx(24_693, rel=1e-3)
    assert "underestimate" in jz["site_basis"]
    code, _, err = run("plan --params 7e9 --tokens 1e11 --cluster juwels-booster --pue 0.5", capsys)
    assert code == 2 and "--pue" in err


def test_a_plan_says_when_a_job_is_beyond_its_partition(catalog):
    # JUWELS Booster's default partition runs a job for at most 24 h
    long = make_plan(PlanRequest(days=3, nodes=64, cluster="juwels-booster"), catalog)
    assert [w.message for w in long.warnings if w.topic == "partition"] == [
        "the run takes 72 h, beyond the 24 h one job may run in partition booster: 3 chained jobs "
        "(checkpoint and resubmit; a sweep or grant plans the chain)"]
    one_day = make_plan(PlanRequest(days=1, nodes="all", cluster="juwels-booster"), catalog)
    assert not [w for w in one_day.warnings if w.topic == "partition"]  # exactly the limit is one job


def test_a_plan_says_when_a_job_takes_more_nodes_than_its_partition_allows(catalog):
    # LUMI-G's standard-g partition takes at most 1,024 nodes per job
    wide = make_plan(PlanRequest(flops=1e23, nodes=2000, cluster="lumi-g", mfu=0.3), catalog)
    assert "2000 nodes exceed the 1024 nodes one job may use in partition standard-g of lumi-g" in [
        w.message for w in wide.warnings if w.topic == "partition"]
    fits = make_plan(PlanRequest(flops=1e23, nodes=1024, cluster="lumi-g", mfu=0.3), catalog)
    assert not [w for w in fits.warnings if w.topic == "partition" and "nodes exceed" in w.message]
