"""The same checks on every fit form in the registry (scikit-learn's check_estimator idea).

Each form gets a synthetic data set from known parameters (CASES: a new form adds its case here,
and `test_every_form_has_a_case` says so), then: the fit recovers the parameters; predict agrees
with the law that made the data and falls with compute; the bootstrap gives every declared
parameter a finite interval; a seed gives the same result twice; predictions for many draws at
once equal one draw at a time; forms that write a law file round-trip it through `planner plan`'s
schema; forms that predict can be compared and plotted; too few rows and non-positive values are
one-line PlannerErrors. The laws here are written out by hand, not taken from planner.
"""

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from planner.errors import PlannerError
from planner.fit import FORMS, FitOptions, load, run_with_samples
from planner.fit.form import FitForm
from planner.laws import Law

NOISE = 1e-3  # log-normal, so the bootstrap has something to resample
SEED = 11
DRAWS = 24

# --- the laws that make the data, written out by hand ----------------------------------------------------

CHINCHILLA = {"E": 1.9, "A": 400.0, "B": 1500.0, "alpha": 0.33, "beta": 0.3}


def hoffmann(p: dict) -> tuple[float, float, float]:
    """(G, a, b): N_opt = G (C/6)^a, D_opt = (C/6)^b / G (Hoffmann et al. 2022, Eq. 4)."""
    al, be = p["alpha"], p["beta"]
    return (al * p["A"] / (be * p["B"])) ** (1 / (al + be)), be / (al + be), al / (al + be)


def chinchilla_loss(p: dict, n, d):
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def chinchilla_frontier(p: dict, c):
    g, a, b = hoffmann(p)
    return chinchilla_loss(p, g * (c / 6) ** a, (c / 6) ** b / g)


def isoflop_truth(p: dict) -> dict:
    """Approach 2's parameters for the Chinchilla law: N_opt = k_N C^a, D_opt = k_D C^b."""
    g, a, b = hoffmann(p)
    return {"a": a, "b": b, "N_coefficient": g * 6**-a, "D_coefficient": 6**-b / g}


# Gadre et al. 2024's over-training law: L(C, M) = E + (a·M^η + b·M^−η)·C^−η, M = D/N, C = 6ND
GADRE = {"E": 1.8, "a_M": 60.0, "b_M": 250.0, "eta": 0.15}


def gadre_loss(p: dict, n, d):
    m, c = d / n, 6 * n * d
    return p["E"] + (p["a_M"] * m ** p["eta"] + p["b_M"] * m ** -p["eta"]) * c ** -p["eta"]


def gadre_frontier(p: dict, c):
    return p["E"] + 2 * math.sqrt(p["a_M"] * p["b_M"]) * c ** -p["eta"]


def overtrain_rows(rng) -> tuple[list[str], list[tuple]]:
    """8 sizes from 10M to 7B, each at token multipliers 5 to 640 (Gadre et al.'s grid)."""
    rows = []
    for n in np.geomspace(1e7, 7e9, 8):
        for m in (5, 10, 20, 40, 80, 160, 320, 640):
            rows.append((n, m * n, 6 * n * m * n, gadre_loss(GADRE, n, m * n) * math.exp(NOISE * rng.standard_normal())))
    return ["params", "tokens", "flops", "loss"], rows


# Muennighoff et al. 2023's data-constrained law: their C4 fit (α = β tied) and R*_N, R*_D
MUENNIGHOFF = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.353, "beta": 0.353, "R_N_star": 5.31, "R_D_star": 15.39}


def repeated(p: dict, n, d, u):
    """(N', D') of Muennighoff et al.'s Eq. 5-6, with U_N the compute-optimal size for U_D tokens."""
    g, a, b = hoffmann(p)
    u_d = min(u, d)
    d_eff = u_d + u_d * p["R_D_star"] * (1 - math.exp(-(d / u_d - 1) / p["R_D_star"]))
    u_n = min(g * (g * u_d) ** (a / b), n)
    return u_n + u_n * p["R_N_star"] * (1 - math.exp(-(n / u_n - 1) / p["R_N_star"])), d_eff


def datacon_rows(rng) -> tuple[list[str], list[tuple]]:
    """Single-epoch IsoFLOP runs for the base law, and runs over 2-64 epochs of 1B, 4B and 16B unique tokens."""
    g, a, _ = hoffmann(MUENNIGHOFF)
    runs = [(n, c / (6 * n), c / (6 * n)) for c in np.geomspace(1e18, 1e21, 6) for n in g * (c / 6) ** a * np.geomspace(1 / 4, 4, 7)]
    runs += [(n, u * ep, u) for u in (1e9, 4e9, 1.6e10) for n in np.geomspace(1e8, 3e9, 5) for ep in (2, 4, 8, 16, 32, 64)]
    rows = [(n, d, u, chinchilla_loss(MUENNIGHOFF, *repeated(MUENNIGHOFF, n, d, u)) * math.exp(NOISE * rng.standard_normal()))
            for n, d, u in runs]
    return ["params", "tokens", "unique", "loss"], rows


POWER = {"alpha": -0.1, "beta": 5.0}
SATURATING = {"C_c": 3e3, "alpha": 0.35, "L_eps": 0.12}


def runs_rows(rng) -> tuple[list[str], list[tuple]]:
    """An IsoFLOP design: 9 sizes around each of 8 budgets' optimum, loss from the Chinchilla law."""
    g, a, _ = hoffmann(CHINCHILLA)
    rows = []
    for c in np.geomspace(1e18, 1e21, 8):
        for n in g * (c / 6) ** a * np.geomspace(1 / 4, 4, 9):
            d = c / (6 * n)
            rows.append((n, d, c, chinchilla_loss(CHINCHILLA, n, d) * math.exp(NOISE * rng.standard_normal())))
    return ["params", "tokens", "flops", "loss"], rows


def curve_rows(law: Callable) -> Callable:
    def rows(rng) -> tuple[list[str], list[tuple]]:
        c = np.geomspace(1e10, 1e13, 24)
        return ["flops", "err"], [(x, law(x) * math.exp(NOISE * rng.standard_normal())) for x in c]

    return rows


@dataclass(frozen=True)
class Case:
    rows: Callable  # rng -> (header, rows)
    options: dict  # FitOptions fields beyond form, bootstrap and seed
    truth: dict[str, float]  # the parameters that made the data
    tolerance: dict[str, float]  # relative, per parameter
    law: Callable | None = None  # y(C) at the truth, when the form predicts a curve in compute


CASES = {
    "chinchilla": Case(runs_rows, {"tokens_col": "tokens"}, CHINCHILLA,
                       {"E": 0.02, "A": 0.1, "B": 0.1, "alpha": 0.02, "beta": 0.02},
                       law=lambda c: chinchilla_frontier(CHINCHILLA, c)),
    "data-constrained": Case(datacon_rows, {"tokens_col": "tokens", "unique_tokens_col": "unique"}, MUENNIGHOFF,
                             {"E": 0.02, "A": 0.05, "B": 0.05, "alpha": 0.02, "beta": 0.02, "R_N_star": 0.05, "R_D_star": 0.05},
                             law=lambda c: chinchilla_frontier(MUENNIGHOFF, c)),
    "isoflop": Case(runs_rows, {"flops_col": "flops"}, isoflop_truth(CHINCHILLA),
                    {"a": 0.01, "b": 0.01, "N_coefficient": 0.15, "D_coefficient": 0.15}),
    "overtrain": Case(overtrain_rows, {"tokens_col": "tokens"}, GADRE, {"E": 0.02, "a_M": 0.04, "b_M": 0.04, "eta": 0.02},
                      law=lambda c: gadre_frontier(GADRE, c)),
    "power": Case(curve_rows(lambda c: POWER["beta"] * c ** POWER["alpha"]), {"x_col": "flops", "y_col": "err"}, POWER,
                  {"alpha": 0.01, "beta": 0.05}, law=lambda c: POWER["beta"] * c ** POWER["alpha"]),
    "saturating": Case(curve_rows(lambda c: SATURATING["C_c"] * c ** -SATURATING["alpha"] + SATURATING["L_eps"]),
                       {"x_col": "flops", "y_col": "err"}, SATURATING, {"C_c": 0.3, "alpha": 0.03, "L_eps": 0.03},
                       law=lambda c: SATURATING["C_c"] * c ** -SATURATING["alpha"] + SATURATING["L_eps"]),
}
NAMES = sorted(FORMS)


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[repr(float(v)) for v in row] for row in rows])
    return path


def options(name: str, **kw) -> FitOptions:
    return FitOptions(form=name, **{**CASES[name].options, **kw})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("forms")
    return {name: write_csv(folder / f"{name}.csv", *case.rows(np.random.default_rng(SEED))) for name, case in CASES.items()}


@pytest.fixture(scope="module")
def fits(data) -> dict:
    """Each form fitted once with a bootstrap: (result, draws)."""
    return {name: run_with_samples(data[name], options(name, bootstrap=DRAWS, seed=SEED)) for name in NAMES}


def test_every_form_has_a_case():
    assert sorted(CASES) == NAMES, "a form in the registry needs a synthetic case in CASES (and a case needs a form)"


def test_listing_the_forms_loads_no_numerics():
    """The CLI builds --form from the registry at startup: declarations must not import numpy."""
    import subprocess
    import sys

    code = ("import sys, planner.cli, planner.fit; assert planner.fit.FORMS; "
            "print(sorted(m for m in ('numpy', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", NAMES)
def test_declaration_is_complete(name):
    form = FORMS[name]
    assert form.name == name and form.summary and form.params and len(set(form.params)) == len(form.params)
    assert form.min_rows >= 2 and form.min_rows_reason
    assert set(form.law_draws) <= set(form.params) and (form.law is not None or not form.law_draws)  # draws go in a law file
    assert form.plot == "curve" or form.predict is None  # a curve is drawn through predict


@pytest.mark.parametrize("name", NAMES)
def test_reads_the_columns_it_declares(name, data):
    dataset = load(data[name], options(name))
    form = FORMS[name]
    assert set(dataset.columns) == set(form.columns.names)
    assert np.array_equal(dataset.compute, dataset.columns[form.columns.compute])
    assert all(len(v) == len(dataset.compute) for v in dataset.columns.values())


@pytest.mark.parametrize("name", NAMES)
def test_recovers_the_parameters_that_made_the_data(name, fits):
    result, _ = fits[name]
    case = CASES[name]
    assert list(result.params) == list(FORMS[name].params)  # in the declared order
    assert result.converged and result.n_points == result.data.rows_used
    for key, true in case.truth.items():
        assert result.params[key] == pytest.approx(true, rel=case.tolerance[key]), (key, result.params[key], true)


@pytest.mark.parametrize("name", [n for n in NAMES if FORMS[n].predict is not None])
def test_predict_is_the_law_and_falls_with_compute(name, fits):
    form: FitForm = FORMS[name]
    grid = np.geomspace(1e10 if form.columns.kind == "curve" else 1e18, 1e25, 200)
    at_truth = form.curve(CASES[name].truth)(grid)
    assert at_truth.shape == (1, grid.size)
    assert np.allclose(at_truth[0], CASES[name].law(grid), rtol=1e-12, atol=0)
    fitted = form.curve(fits[name][0].params)(grid)[0]
    assert np.all(np.isfinite(fitted)) and np.all(np.diff(fitted) < 0), "loss and error fall as compute grows"


@pytest.mark.parametrize("name", NAMES)
def test_bootstrap_gives_every_parameter_a_finite_interval(name, fits):
    result, draws = fits[name]
    form = FORMS[name]
    assert draws is not None and set(form.params) <= set(draws)
    assert result.bootstrap is not None and (result.bootstrap.samples, result.bootstrap.seed) == (DRAWS, SEED)
    for key in form.params:
        lo, hi = result.ci[key]
        assert math.isfinite(lo) and math.isfinite(hi) and lo <= hi, key
        assert len(draws[key]) == len(draws[form.params[0]]) > DRAWS // 2, key
    if result.allocation is not None:  # an allocation's exponents get intervals too
        assert {"a", "b"} <= set(result.ci)


@pytest.mark.parametrize("name", NAMES)
def test_a_seed_gives_the_same_result(name, data, fits):
    result, draws = fits[name]
    form = FORMS[name]
    dataset = load(data[name], options(name))
    fitted = form.fit(dataset, options(name), lambda _m: None)
    assert {k: fitted.params[k] for k in form.params} == result.params
    again = form.bootstrap(dataset, options(name, bootstrap=DRAWS, seed=SEED), fitted)
    assert set(again.params) == set(draws) and all(np.array_equal(again.params[k], draws[k]) for k in draws)
    other = form.bootstrap(dataset, options(name, bootstrap=DRAWS, seed=SEED + 1), fitted)
    assert any(not np.array_equal(other.params[k], draws[k]) for k in form.params), "another seed, other draws"


@pytest.mark.parametrize("name", [n for n in NAMES if FORMS[n].predict is not None])
def test_predictions_for_many_draws_equal_one_at_a_time(name, fits):
    form = FORMS[name]
    _, draws = fits[name]
    grid = np.geomspace(1e9, 1e24, 7)
    together = form.curve(draws)(grid)
    assert together.shape == (len(draws[form.params[0]]), grid.size)
    for i in (0, 3, len(together) - 1):
        alone = form.curve({k: float(v[i]) for k, v in draws.items()})(grid)[0]
        assert np.array_equal(together[i], alone), i


@pytest.mark.parametrize("name", NAMES)
def test_law_file_round_trip(name, fits, tmp_path):
    from planner.fit.lawfile import law_yaml

    form = FORMS[name]
    result, draws = fits[name]
    out = tmp_path / f"{name}-law.yaml"
    if form.law is None:
        with pytest.raises(PlannerError) as err:
            law_yaml(result, out, draws)
        assert "\n" not in str(err.value) and "law" in str(err.value)
        return
    text = law_yaml(result, out, draws)
    law = Law.model_validate(yaml.safe_load(text))
    assert law.name == f"{name}-law" and law.fit_range.flops == (result.data.compute_min, result.data.compute_max)
    # the law file allocates as the fit does: ln N_opt = intercept + a ln C
    assert law.log_params_line()[1] == pytest.approx(result.allocation["a"], rel=1e-12)
    n_opt = law.optimal_params(1e22)
    assert 6 * n_opt * law.allocate(1e22)[1] == pytest.approx(1e22)
    for section, fields in form.law(result, lambda key, value: {"value": value}).items():
        for key, number in fields.items():
            if isinstance(number, dict):  # every number the form writes, read back
                assert getattr(getattr(law, section), key).value == number["value"], (section, key)
    if form.law_draws:
        kept = law.bootstrap_draws()
        assert set(kept) == set(form.law_draws)
        for key in form.law_draws:
            assert np.allclose(kept[key], draws[key][: len(kept[key])], rtol=1e-7), key


@pytest.mark.parametrize("name", [n for n in NAMES if FORMS[n].predict is not None])
def test_compares_with_itself_without_a_crossover(name, data):
    from planner.fit.compare import compare

    result = compare(data[name], data[name], options(name), target=1e24)
    assert result.crossover is None and result.at_target.difference == 0
    assert result.record()["fits"]["a"] == result.record()["fits"]["b"]


@pytest.mark.parametrize("name", NAMES)
def test_is_plotted(name, data, fits, tmp_path):
    pytest.importorskip("matplotlib")
    from planner.report.plot import plot_fit

    result, draws = fits[name]
    png = tmp_path / f"{name}.png"
    plot_fit(result, draws, data[name], options(name), png, force=False)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def one_line_error(path: Path, opts: FitOptions) -> str:
    with pytest.raises(PlannerError) as err:
        run_with_samples(path, opts)
    message = str(err.value)
    assert message and "\n" not in message, message
    return message


@pytest.mark.parametrize("name", NAMES)
def test_too_few_rows_is_one_line(name, tmp_path):
    header, rows = CASES[name].rows(np.random.default_rng(SEED))
    path = write_csv(tmp_path / "few.csv", header, rows[: FORMS[name].min_rows - 1])
    assert f"needs at least {FORMS[name].min_rows}" in one_line_error(path, options(name))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("column, value", [(-1, 0.0), (-1, -2.5), (0, -1.0)])  # the measured value; compute or size
def test_non_positive_values_are_one_line(name, column, value, tmp_path):
    header, rows = CASES[name].rows(np.random.default_rng(SEED))
    bad = list(rows[5])
    bad[column] = value
    path = write_csv(tmp_path / "bad.csv", header, [*rows[:5], tuple(bad), *rows[6:]])
    message = one_line_error(path, options(name))
    assert f"bad.csv:7: {header[column]}:" in message and "must be positive" in message


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_column_is_one_line(name, data):
    opts = replace(options(name), **({"loss_col": "nope"} if FORMS[name].columns.kind == "runs" else {"y_col": "nope"}))
    assert "unknown column 'nope'" in one_line_error(data[name], opts)
