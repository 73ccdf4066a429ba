"""`planner fit --form data-constrained --base-law muennighoff-2023` reproduces Muennighoff et al. 2023's
(arXiv 2305.16264) decay constants R*_N and R*_D on the authors' own runs.

Data: tests/data/muennighoff-2023/runs.csv, the 182 runs (N, D, unique tokens, C4 validation loss) of the
fit, from the stored output of utils/parametric_fit.ipynb in github.com/huggingface/datablations at commit
13701315 (see the folder's README.md).

Published: that notebook's fit cell prints R*_D = 15.387756 and R*_N = 5.309743 (the values of the
repository README's "Parametric Fit" and of catalogs/laws/muennighoff-2023.yaml) at a minimum of
0.015825936570763588, on 182 samples. Their procedure: the base law E, A, B, α = β held fixed at their
fit to Chinchilla's C4 isoFLOP points; the summed Huber loss (δ = 1e-3) of log L̂ − log L; torch L-BFGS
(50 steps) in float32 from each R* in np.linspace(0, 20, 4), the lowest kept. Ours: the same objective and
base law (the catalog's E, A, B, rounded to 7 digits), scipy least squares with Huber loss in log R* from
the same starts (less 0, where the law divides by zero), in float64.

Tolerance, 0.5% on each R*: the optimum lies in a long, flat valley in (R*_N, R*_D); ours (5.315, 15.37)
is 0.1% from theirs on each, and the objective at the published point exceeds ours by 3e-9 (2e-7
relative), under the resolution of a float32 sum of 182 terms (~1e-8). Within ±0.3% of R*_D along the
valley the objective changes by less than that, so their float32 L-BFGS cannot tell those points apart.
It can fail: the whole-grid optimum (below) is 3× and 6× away; the published values are a local optimum.

The objective has a lower optimum: R*_N ≈ 1.7, R*_D ≈ 95 (0.01580 against 0.01583), found by the fit's grid
search and reported as a warning. The published constants are the optimum their starts reach, not the
global one; the fit keeps the authors' procedure when given their base law and says so.
"""

import csv
from pathlib import Path

import pytest

from planner.fit import FitOptions, run_with_samples

DATA = Path(__file__).parent / "data" / "muennighoff-2023" / "runs.csv"
PUBLISHED = {"R_N_star": 5.309743, "R_D_star": 15.387756}  # utils/parametric_fit.ipynb, cell Ho_nSiv68OeM
PUBLISHED_OBJECTIVE = 0.015825936570763588
TOLERANCE = 5e-3


@pytest.fixture(scope="module")
def fitted():
    opts = FitOptions(form="data-constrained", tokens_col="tokens", unique_tokens_col="unique_tokens",
                      base_law="muennighoff-2023")
    return run_with_samples(DATA, opts)[0]


def test_the_runs_are_the_182_the_notebook_fits():
    rows = list(csv.DictReader(DATA.open()))
    assert len(rows) == 182 and len({r["name"] for r in rows}) == 182
    assert all(float(r["unique_tokens"]) <= float(r["tokens"]) for r in rows)


def test_published_decay_constants_are_reproduced(fitted):
    for key, value in PUBLISHED.items():
        assert fitted.params[key] == pytest.approx(value, rel=TOLERANCE), key


def test_the_base_law_is_held_fixed_and_the_objective_is_theirs(fitted):
    assert fitted.params["E"] == pytest.approx(1.869144) and fitted.params["alpha"] == fitted.params["beta"] == 0.3526596
    # the same objective at (nearly) the same point: their float32 minimum, to its printed precision
    assert fitted.objective == pytest.approx(PUBLISHED_OBJECTIVE, rel=1e-5)


def test_a_lower_optimum_elsewhere_is_reported(fitted):
    lower = fitted.procedure["lower_optimum"]
    assert lower is not None and lower["objective"] < fitted.objective
    assert lower["R_D_star"] > 2 * PUBLISHED["R_D_star"]  # not a neighbour of the published point
    assert any("lower optimum" in str(w) for w in fitted.warnings)


def test_a_fit_with_warnings_writes_a_law_file_that_plans(tmp_path, capsys):
    """The fit warns (the lower optimum); its law file still holds the warnings, as text, and plans."""
    from cli_helpers import run

    law = tmp_path / "datablations.yaml"
    code, _, err = run(["fit", str(DATA), "--form", "data-constrained", "--base-law", "muennighoff-2023",
                        "--tokens-col", "tokens", "--unique-tokens-col", "unique_tokens", "--out", str(law)], capsys)
    assert code == 0, err
    assert "lower optimum" in law.read_text()
    code, out, err = run(["plan", "--flops", "1e21", "--unique-tokens", "1e10", "--law-file", str(law), "--format", "json"],
                         capsys)
    assert code == 0, err
