"""Planning at a chosen token multiplier M = D/N (`plan --tokens-per-param`, Gadre et al. 2024): the run's
size follows from C = 6·N·(M·N), its loss from the law, and the comparison with the compute-optimal run of
the same compute says what over-training costs. A law fitted by `fit --form overtrain` plans at M and
predicts the loss of the law that made the runs."""

import csv
import json
import math

import numpy as np
import pytest
from cli_helpers import check_stderr, run
from hypothesis import given
from hypothesis import strategies as st

from planner.fit import gadre
from planner.laws import allocate


def plan_json(capsys, *args: str) -> dict:
    code, out, err = run(["plan", *args, "--format", "json"], capsys)
    assert code == 0, err
    return json.loads(out)


@given(st.floats(1e15, 1e28), st.floats(0.5, 1e4))
def test_a_run_at_a_multiplier_spends_the_compute_at_that_multiplier(flops, multiplier):
    n, d = allocate.at_multiplier(flops, multiplier)
    assert 6 * n * d == pytest.approx(flops, rel=1e-12)
    assert d / n == pytest.approx(multiplier, rel=1e-12)


def test_over_training_costs_loss_and_compute_against_the_optimum(capsys):
    plan = plan_json(capsys, "--flops", "1e23", "--tokens-per-param", "200")
    assert plan["params"] == pytest.approx(math.sqrt(1e23 / (6 * 200)), rel=1e-12)
    assert plan["tokens_per_param"] == pytest.approx(200)
    optimum = plan_json(capsys, "--flops", "1e23")
    over = plan["overtraining"]
    assert over["compute_optimal_params"] == pytest.approx(optimum["params"], rel=1e-12)
    assert over["compute_optimal_loss"] == pytest.approx(optimum["predicted_loss"], rel=1e-12)
    assert plan["predicted_loss"] > optimum["predicted_loss"]
    # the compute-optimal model reaches the over-trained loss with less compute: the target-loss plan says how much
    same_loss = plan_json(capsys, "--target-loss", repr(plan["predicted_loss"]))
    assert over["compute_optimal_flops_same_loss"] == pytest.approx(same_loss["flops_6nd"], rel=1e-9)
    assert over["extra_compute"] == pytest.approx(1e23 / same_loss["flops_6nd"] - 1, rel=1e-9)
    assert over["extra_compute"] > 0.3  # 10x the optimal multiplier is far up the IsoFLOP valley's wall


def test_at_the_laws_own_multiplier_the_plan_is_the_compute_optimal_one(capsys):
    optimum = plan_json(capsys, "--flops", "3e22")
    plan = plan_json(capsys, "--flops", "3e22", "--tokens-per-param", repr(optimum["tokens_per_param"]))
    assert plan["params"] == pytest.approx(optimum["params"], rel=1e-9)
    assert plan["overtraining"]["extra_compute"] == pytest.approx(0, abs=1e-6)


def test_a_target_loss_at_a_multiplier_is_reached_at_that_multiplier(capsys):
    plan = plan_json(capsys, "--target-loss", "2.1", "--tokens-per-param", "100")
    assert plan["predicted_loss"] == pytest.approx(2.1, rel=1e-9)
    assert plan["tokens_per_param"] == pytest.approx(100)
    assert plan["flops_6nd"] > plan_json(capsys, "--target-loss", "2.1")["flops_6nd"]


def test_an_hours_budget_at_a_multiplier_keeps_the_multiplier(capsys):
    plan = plan_json(capsys, "--gpu-hours", "1e6", "--cluster", "juwels-booster", "--tokens-per-param", "100")
    assert plan["tokens_per_param"] == pytest.approx(100, rel=1e-9)
    low, high = plan["params_interval"]
    assert low < plan["params"] < high
    assert plan["tokens_interval"][0] / low == pytest.approx(100, rel=1e-9)


def test_sizes_alone_and_a_projection_take_the_multiplier(capsys):
    assert plan_json(capsys, "--params", "7e9", "--tokens-per-param", "300")["tokens"] == pytest.approx(2.1e12)
    code, out, err = run(["plan", "--params", "1e9,7e9", "--tokens-per-param", "100", "--format", "json"], capsys)
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [r["tokens"] for r in rows] == pytest.approx([1e11, 7e11])
    assert [r["flops"] for r in rows] == pytest.approx([6e20, 6 * 7e9 * 7e11])


@pytest.mark.parametrize("other", [["--params", "7e9", "--tokens", "2T"], ["--flops", "1e23", "--unique-tokens", "1e11"],
                                   ["--flops", "1e23", "--inference-tokens", "1e12"]])
def test_a_multiplier_and_other_token_constraints_are_refused(capsys, other):
    code, _, err = run(["plan", *other, "--tokens-per-param", "100"], capsys)
    line = check_stderr(code, err)
    assert line is not None and line.startswith("planner: error: --tokens-per-param: cannot be combined with --"), err


def test_a_law_fitted_over_multipliers_plans_at_a_multiplier(tmp_path, capsys):
    truth = {"E": 1.8, "a_M": 60.0, "b_M": 250.0, "eta": 0.15}
    n = np.repeat(np.geomspace(1e7, 7e9, 8), 8)
    d = n * np.tile([5, 10, 20, 40, 80, 160, 320, 640], 8)
    data = tmp_path / "runs.csv"
    with open(data, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["params", "tokens", "loss"])
        out.writerows(zip(n, d, gadre.loss_at(truth, 6 * n * d, d / n), strict=True))
    law = tmp_path / "overtrain.yaml"
    code, _, err = run(["fit", str(data), "--form", "overtrain", "--tokens-col", "tokens", "--out", str(law)], capsys)
    assert code == 0, err
    plan = plan_json(capsys, "--flops", "1e22", "--tokens-per-param", "160", "--law-file", str(law))
    assert plan["predicted_loss"] == pytest.approx(float(gadre.loss_at(truth, 1e22, 160.0)), rel=1e-6)
    assert plan["overtraining"]["compute_optimal_tokens_per_param"] == pytest.approx(float(gadre.best_multiplier(truth)),
                                                                                      rel=1e-4)


# --- a regulatory line the compute crosses (EU AI Act, Article 51(2)) -------------------------------------


def test_a_plan_above_1e25_flops_says_the_eu_ai_act_presumes_systemic_risk(capsys):
    above = plan_json(capsys, "--flops", "1.2e25")
    [warning] = [w for w in above["warnings"] if "AI Act" in w]
    assert "Article 51(2)" in warning and "eur-lex.europa.eu/eli/reg/2024/1689" in warning
    assert not [w for w in plan_json(capsys, "--flops", "9e24", "--flops-convention", "6ND")["warnings"] if "AI Act" in w]
    # the hardware count (attention included) is the training compute when it is the larger one
    near = plan_json(capsys, "--flops", "9.8e24")
    assert near["flops"] > 1e25 and [w for w in near["warnings"] if "AI Act" in w]


def test_a_grant_experiment_above_1e25_flops_says_so(tmp_path, capsys):
    proposal = tmp_path / "p.yaml"
    proposal.write_text("title: t\nprogram: gcs\ncluster: jupiter-booster\nstart: 2027-05\nmonths: 12\nexperiments:\n"
                        "  - name: big\n    params: 400B\n    tokens: 15T\n    nodes: 1024\n")
    code, out, err = run(["grant", str(proposal), "--format", "json"], capsys)
    assert code == 0, err
    assert any("AI Act" in w for w in json.loads(out)["warnings"])
