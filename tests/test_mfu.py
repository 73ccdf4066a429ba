"""MFU profiles: interpolation in log model size, the within-size GPU-count slope, the matmul cap."""

import json
import math

import pytest
from cli_helpers import run

from planner.catalog import MfuProfile
from planner.costing import mfu


def profile(points, name="toy"):
    return MfuProfile.model_validate({
        "name": name, "title": "toy", "accelerators": ["a100-sxm-40gb"], "workload": "dense-lm",
        "points": [{"params": n, "gpus": g, "mfu": m, "source": s} for n, g, m, s in points],
        "sources": {"a": {"citation": "source a", "status": "verified"}, "b": {"citation": "source b", "status": "verified"}}})


@pytest.fixture(scope="module")
def a100(catalog):
    return catalog.accelerator("a100-sxm-40gb")


def test_slope_is_the_median_of_within_size_slopes():
    p = profile([(1e9, 8, 0.50, "a"), (1e9, 128, 0.45, "a"),    # slope ln(.9)/ln(16)
                 (1e10, 8, 0.50, "a"), (1e10, 64, 0.48, "a"),   # ln(.96)/ln(8)
                 (1e11, 16, 0.40, "a"), (1e11, 32, 0.39, "a"),  # ln(.975)/ln(2)
                 (3e9, 100, 0.6, "a"), (3e9, 1000, 0.3, "b")])  # two sources: not a pair
    s = mfu.gpu_scaling(p)
    expected = sorted([math.log(0.9) / math.log(16), math.log(0.96) / math.log(8), math.log(0.975) / math.log(2)])[1]
    assert s.groups == 3
    assert s.slope == pytest.approx(expected, rel=1e-12)
    assert s.measured_gpus == (8, 1000)


def test_mfu_rising_with_gpus_is_clamped_to_no_dependence():
    s = mfu.gpu_scaling(profile([(1e9, 8, 0.40, "a"), (1e9, 64, 0.45, "a")]))
    assert s.slope == 0.0 and s.groups == 1


def test_a_point_measured_alone_is_reproduced_at_its_own_gpu_count(a100):
    p = profile([(1e9, 8, 0.50, "a"), (1e9, 128, 0.45, "a"), (1e10, 512, 0.47, "a"), (1e11, 16, 0.41, "a")])
    # the neighbours a decade away weigh exp(-(ln 10 / 0.5)^2 / 2) = 2.5e-5 in the size smoothing
    assert mfu.estimate(p, a100, 1e10, 512).value == pytest.approx(0.47, rel=1e-4)
    assert mfu.estimate(p, a100, 1e11, 16).value == pytest.approx(0.41, rel=1e-4)
    # a pair is fitted by its own slope when it is the only one
    assert mfu.estimate(p, a100, 1e9, 8).value == pytest.approx(0.50, rel=1e-4)
    assert mfu.estimate(p, a100, 1e9, 128).value == pytest.approx(0.45, rel=1e-4)


def test_interpolation_is_linear_in_log_size_and_holds_the_ends(a100):
    p = profile([(1e9, 8, 0.40, "a"), (1e11, 8, 0.50, "a")])
    mid = mfu.estimate(p, a100, 1e10, 8)
    assert mid.value == pytest.approx(math.sqrt(0.40 * 0.50), rel=1e-12)  # halfway in ln N, in ln MFU
    low, high = mfu.estimate(p, a100, 1e6, 8), mfu.estimate(p, a100, 1e14, 8)
    assert (low.value, high.value) == (pytest.approx(0.40), pytest.approx(0.50))
    assert low.warnings[0].topic == "mfu.size" and "held at the nearest measured size" in low.warnings[0].message
    assert [w.topic for w in high.warnings] == ["mfu.size"]


def test_capped_at_the_matmul_ceiling(a100):
    p = profile([(1e9, 8, 0.95, "a")])
    est = mfu.estimate(p, a100, 1e9, 8)
    assert est.value == a100.matmul_ceiling.value < 0.95
    assert "matmul ceiling" in est.basis


def test_catalog_a100_profile_loses_about_five_percent_from_128_gpus_to_all_of_juwels_booster(catalog, a100):
    p = catalog.mfu_profile("a100-dense-lm")
    s = mfu.gpu_scaling(p)
    assert -0.03 < s.slope < -0.005 and s.groups >= 5
    small, whole = mfu.estimate(p, a100, 7e9, 128).value, mfu.estimate(p, a100, 7e9, 3744).value
    assert whole / small == pytest.approx((3744 / 128) ** s.slope, rel=1e-12)
    assert 0.93 < whole / small < 0.97


def test_clip_profile_has_no_pairs_and_says_so(catalog, a100):
    p = catalog.mfu_profile("clip-a100")
    far = mfu.estimate(p, a100, 4e8, 3744)
    assert far.value == mfu.estimate(p, a100, 4e8, 8).value
    assert "does not vary with GPU count" in far.basis
    assert any(w.topic == "mfu.gpus" and "3744 GPUs" in w.message and "176-824" in w.message for w in far.warnings)


def test_plan_uses_the_gpu_count(capsys):
    one = json.loads(run("plan --params 7e9 --tokens 1.4e11 --cluster juwels-booster --nodes 1 --format json", capsys)[1])
    whole = json.loads(run("plan --params 7e9 --tokens 1.4e11 --cluster juwels-booster --nodes all --format json", capsys)[1])
    assert whole["mfu"] < one["mfu"]
    assert whole["gpu_hours"] == pytest.approx(one["gpu_hours"] * one["mfu"] / whole["mfu"], rel=1e-12)
    assert "along the benchmarks' within-size slope GPUs^-0.0153" in whole["mfu_basis"]
    bare = json.loads(run("plan --params 7e9 --tokens 1.4e11 --accelerator a100-sxm-40gb --format json", capsys)[1])
    assert "GPUs published runs of this size used (give GPUs or nodes)" in bare["mfu_basis"]
    bench = json.loads(run("plan --params 7e9 --tokens 1.4e11 --cluster juwels-booster --nodes all --mfu-basis benchmark "
                           "--format json", capsys)[1])
    assert "scaled by GPUs^" in bench["mfu_basis"] and bench["mfu_kind"] == "benchmark"


def test_a_profile_assumed_for_an_accelerator_says_so(capsys):
    jupiter = json.loads(run("plan --params 7e9 --tokens 1e11 --cluster jupiter-booster --nodes 4 --format json", capsys)[1])
    assert any("no published campaign ran on gh200-96gb" in w and "assumed to carry over" in w for w in jupiter["warnings"])
    bench = json.loads(run("plan --params 7e9 --tokens 1e11 --cluster jupiter-booster --nodes 4 --mfu-basis benchmark "
                           "--format json", capsys)[1])
    assert any("measured on h100-sxm, not on gh200-96gb" in w for w in bench["warnings"])
    juwels = json.loads(run("plan --params 7e9 --tokens 1e11 --cluster juwels-booster --nodes 4 --format json", capsys)[1])
    assert not any("not on a100" in w for w in juwels["warnings"])
