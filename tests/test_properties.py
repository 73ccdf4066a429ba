"""Invariants over many inputs (hypothesis): conservation of compute, monotonicity, linearity, and
bad numbers always rejected with one line."""


import pytest
from cli_helpers import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.costing.plan import PlanRequest, make_plan

flops = st.floats(min_value=1e17, max_value=1e28)
LAWS = ["chinchilla-approach1", "chinchilla-approach2", "chinchilla-approach3", "chinchilla-approach3-unrounded",
        "epoch-2024", "kaplan-2020", "deepseek-2024", "llama3-2024", "muennighoff-2023"]


@settings(max_examples=300, deadline=None)
@given(c=flops, law=st.sampled_from(LAWS))
def test_allocation_conserves_compute_and_grows(catalog, c, law):
    law_ = catalog.law(law)
    n, d = law_.allocate(c)
    assert 6 * n * d == pytest.approx(c, rel=1e-12)
    n2, d2 = law_.allocate(c * 10)
    assert n2 > n
    if law_.predicts_loss:
        assert law_.frontier_loss(c * 10) < law_.frontier_loss(c)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=flops, mfu=st.floats(min_value=0.01, max_value=0.9), nodes=st.integers(min_value=1, max_value=936))
def test_hours_are_linear_and_consistent(catalog, c, mfu, nodes):
    # 6ND: with attention the FLOPs per 6ND vary with the model size the budget buys
    one = make_plan(PlanRequest(flops=c, cluster="juwels-booster", nodes=nodes, mfu=mfu, flops_convention="6ND"), catalog)
    two = make_plan(PlanRequest(flops=2 * c, cluster="juwels-booster", nodes=nodes, mfu=mfu, flops_convention="6ND"), catalog)
    assert two.costs.gpu_hours == pytest.approx(2 * one.costs.gpu_hours, rel=1e-9)
    assert one.costs.gpu_hours == pytest.approx(one.costs.wall_clock_hours * one.costs.gpus, rel=1e-12)
    assert one.costs.node_hours == pytest.approx(one.costs.gpu_hours / 4, rel=1e-12)


bad_numbers = st.one_of(
    st.floats(max_value=0),
    st.just(float("nan")), st.just(float("inf")), st.just(float("-inf")),
    st.text(alphabet="abcxyz!@#-+. ", min_size=1, max_size=8),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=bad_numbers, option=st.sampled_from(["--flops", "--gpu-hours", "--params", "--target-loss",
                                                   "--inference-tokens", "--unique-tokens", "--days"]))
def test_bad_numbers_exit_2_with_one_line(capsys, value, option):
    text = repr(value) if isinstance(value, float) else value
    code, out, err = run(["plan", option, text, "--cluster", "juwels-booster", "--nodes", "2"], capsys)
    assert code == 2, (text, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(low=st.floats(min_value=0.5, max_value=0.99), high=st.floats(min_value=0.5, max_value=0.99),
       params=st.floats(min_value=1e8, max_value=5e11), stated=st.booleans())
def test_requests_grow_with_confidence_and_ranges_hold_the_estimate(catalog, low, high, params, stated):
    """A higher confidence never requests less; the 80% range always holds the estimate."""
    from planner.costing.hardware import hardware_for
    from planner.costing.mfu_basis import campaign_estimator, mfu_for

    low, high = sorted((low, high))
    model = campaign_estimator(catalog)
    assert model.quantile_factor(low, stated) <= model.quantile_factor(high, stated)
    hw = hardware_for(catalog, cluster="juwels-booster", nodes=16)
    est = mfu_for(hw, catalog, params, stack="megatron" if stated else None)
    lo, hi = est.interval_factors(0.8)
    assert lo < 1 < hi and 0 < est.value < 1


@settings(max_examples=500, deadline=None)
@given(values=st.lists(st.floats(min_value=-5, max_value=5), min_size=1, max_size=80),
       q=st.floats(min_value=0.0, max_value=1.0))
def test_interval_quantile_is_numpys_to_the_bit(values, q):
    # prediction intervals must not move when the quantile is computed without numpy (cold-start speed)
    import numpy as np

    from planner.costing.intervals import linear_quantile
    assert linear_quantile(values, q) == float(np.quantile(np.array(values), q))
