"""Approach 2's own bias (Open-Athena, arXiv 2603.22339): parabolas through IsoFLOP grids that are wide,
off-centre or fitted under asymmetric exponents misplace N_opt. `planner fit --form isoflop` reports it
by pushing noise-free losses (the chinchilla form fitted to the same runs) through the same parabolas."""

import csv
import json

import numpy as np
import pytest
from cli_helpers import run

from planner.laws import chinchilla_math

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def isoflop_csv(tmp_path, truth, span, shift=1.0, points=7):
    path = tmp_path / "isoflop.csv"
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["params", "tokens", "flops", "loss"])
        for c in (1e18, 1e19, 1e20, 1e21):
            n_opt, _ = chinchilla_math.allocate(truth, c)
            for f in np.geomspace(1 / span, span, points):
                n = n_opt * f * shift
                out.writerow([n, c / 6 / n, c, float(chinchilla_math.loss(truth, n, c / 6 / n))])
    return path


def fit_json(capsys, path):
    code, out, err = run(["fit", str(path), "--form", "isoflop", "--format", "json"], capsys)
    assert code == 0, err
    return json.loads(out), err


def test_a_centred_grid_under_chinchillas_law_is_nearly_unbiased(tmp_path, capsys):
    data, err = fit_json(capsys, isoflop_csv(tmp_path, CHINCHILLA, span=4))
    bias = data["procedure"]["bias"]
    assert bias["a_recovered"] == pytest.approx(bias["a_true"], rel=1e-9)  # the same offset at every budget
    assert 0 < bias["params_at_largest_budget"] < 0.02 and bias["compute_equivalent"] < 1e-3
    assert "Approach 2's own bias" not in err


def test_a_wide_grid_under_asymmetric_exponents_is_flagged_with_its_size(tmp_path, capsys):
    truth = {**CHINCHILLA, "alpha": 0.5, "beta": 0.2}
    data, err = fit_json(capsys, isoflop_csv(tmp_path, truth, span=64))
    bias = data["procedure"]["bias"]
    n_true, _ = chinchilla_math.allocate(truth, 1e21)
    assert data["params"]["N_coefficient"] * 1e21 ** data["params"]["a"] / n_true - 1 == pytest.approx(
        bias["params_at_largest_budget"], rel=1e-6)  # the fit on the data is the noise-free fit: the same bias
    assert bias["params_at_largest_budget"] > 0.5 and bias["compute_equivalent"] > 0.1
    warning = next(w for w in data["warnings"] if "Approach 2's own bias" in w)
    assert f"wastes {bias['compute_equivalent']:.1%} of its compute" in warning


def test_an_off_centre_grid_is_named_budget_by_budget(tmp_path, capsys):
    data, _ = fit_json(capsys, isoflop_csv(tmp_path, CHINCHILLA, span=4, shift=3.0))
    off = [w for w in data["warnings"] if "off-centre grid" in w]
    assert len(off) == 4 and off[0].startswith("budget 1e+18: the minimum sits at ")


def test_no_bias_is_claimed_for_runs_that_are_no_isoflop_grid(capsys):
    """Epoch's extraction of the Chinchilla runs: the L(N, D) law fitted to them does not give their own
    Approach-2 exponent back (0.77 against 0.49), so its 'bias' would be its own: none is reported."""
    from pathlib import Path

    data = Path(__file__).parent / "data" / "chinchilla_epoch_svg.csv"
    code, out, err = run(["fit", str(data), "--form", "isoflop", "--params-col", "Model Size", "--flops-col", "Training FLOP",
                          "--format", "json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert "bias" not in result["procedure"] and not any("own bias" in w for w in result["warnings"])


def test_a_very_wide_grid_is_flagged_for_its_size_error_alone(tmp_path, capsys):
    data, _ = fit_json(capsys, isoflop_csv(tmp_path, CHINCHILLA, span=100))
    bias = data["procedure"]["bias"]
    assert bias["params_at_largest_budget"] > 0.1 and bias["compute_equivalent"] < 0.02
    assert any("Approach 2's own bias" in w for w in data["warnings"])
