"""`planner fit` against Epoch AI's replication, synthetic laws with known answers, and bad data."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import run
from conftest import DATA

from planner.fit import FitOptions, curves
from planner.fit import run as fit_run

EPOCH_CSV = DATA / "chinchilla_epoch_svg.csv"
ROOT = DATA.parent.parent  # the repository: examples/ sit beside tests/
EPOCH_ARGS = ["--form", "chinchilla", "--params-col", "Model Size", "--flops-col", "Training FLOP", "--drop-highest", "5"]
# Besiroglu et al. 2024 (arXiv 2404.10102): published estimates and 95% bootstrap intervals
EPOCH = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
EPOCH_CI = {"E": (1.769, 1.871), "A": (285.2, 743.6), "B": (1042.4, 5810.3), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}
# Epoch's "replicate exactly" run: Hoffmann's grid, L-BFGS-B, sum of Huber(δ = 1e-3)
EPOCH_GRID = {"E": 1.8172, "A": 477.84, "B": 2143.86, "alpha": 0.3473, "beta": 0.3672}


def epoch_options(**kw) -> FitOptions:
    return FitOptions(form="chinchilla", params_col="Model Size", flops_col="Training FLOP", drop_highest=5, **kw)


# epoch_fit: the session fixture of conftest.py (the 4,500-start fit with Epoch's 4,000-resample bootstrap, once per run)


def test_hoffmann_procedure_matches_epochs_grid_run(epoch_fit):
    assert epoch_fit.n_points == 240
    for k, v in EPOCH_GRID.items():
        assert epoch_fit.params[k] == pytest.approx(v, rel=1e-3), k
    assert epoch_fit.objective == pytest.approx(1.01827e-3, rel=1e-5)
    assert epoch_fit.converged


def test_epoch_bootstrap_intervals_within_5_percent(epoch_fit):
    for k, (lo, hi) in EPOCH_CI.items():
        got_lo, got_hi = epoch_fit.ci[k]
        assert got_lo == pytest.approx(lo, rel=0.05), (k, got_lo, lo)
        assert got_hi == pytest.approx(hi, rel=0.05), (k, got_hi, hi)


def test_epoch_published_estimates_are_the_small_delta_limit():
    """Epoch's point estimate maximises a Huber likelihood with a fitted scale (log σ = −12.27), which
    puts every residual in Huber's linear part: the δ → 0 limit. δ = 1e-6 reproduces it within 1%."""
    result = fit_run(EPOCH_CSV, epoch_options(huber_delta=1e-6))
    for k, v in EPOCH.items():
        assert result.params[k] == pytest.approx(v, rel=0.01), k


def test_epoch_allocation_exponent(epoch_fit):
    """a = β/(α+β) = 0.513 (Epoch), and the refit implies ~20 tokens per parameter."""
    assert epoch_fit.allocation["a"] == pytest.approx(0.513, abs=0.002)


def synthetic_chinchilla(tmp_path, noise=0.0, seed=1):
    rng = np.random.default_rng(seed)
    true = {"E": 1.9, "A": 400.0, "B": 1500.0, "alpha": 0.33, "beta": 0.3}
    al, be = true["alpha"], true["beta"]
    g = (al * true["A"] / (be * true["B"])) ** (1 / (al + be))
    rows = []
    for c in np.geomspace(1e18, 1e21, 8):  # an IsoFLOP design: sizes centred on each budget's optimum
        for ni in g * (c / 6) ** (be / (al + be)) * np.geomspace(1 / 4, 4, 9):
            d = c / (6 * ni)
            loss = true["E"] + true["A"] / ni ** true["alpha"] + true["B"] / d ** true["beta"]
            rows.append((ni, d, c, loss * np.exp(noise * rng.standard_normal())))
    path = tmp_path / "runs.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["params", "tokens", "flops", "loss"])
        w.writerows(rows)
    return path, true


def test_recovers_a_known_law(tmp_path):
    path, true = synthetic_chinchilla(tmp_path)
    result = fit_run(path, FitOptions(form="chinchilla", tokens_col="tokens"))
    for k, v in true.items():
        assert result.params[k] == pytest.approx(v, rel=1e-3), k


def test_isoflop_recovers_the_allocation_exponent(tmp_path):
    path, true = synthetic_chinchilla(tmp_path)
    result = fit_run(path, FitOptions(form="isoflop", flops_col="flops"))
    a_true = true["beta"] / (true["alpha"] + true["beta"])
    assert result.params["a"] == pytest.approx(a_true, abs=0.01)
    assert result.params["a"] + result.params["b"] == pytest.approx(1.0, abs=1e-9)


def test_frontier_bins_follow_np_histogram():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(10, 13, 200), rng.uniform(-1, 0, 200)
    centres, minima, picks = curves.frontier_bins(x, y, 5)
    counts, edges = np.histogram(x, bins=5, range=(x.min(), x.max() + 0.1))
    assert len(centres) == np.count_nonzero(counts)
    assert np.allclose(centres, ((edges[:-1] + edges[1:]) / 2)[counts > 0])
    for c, m, i in zip(centres, minima, picks, strict=True):
        k = np.searchsorted(edges, c) - 1
        members = (x >= edges[k]) & (x < edges[k + 1])
        assert m == y[members].min() and y[i] == m


def test_power_and_saturating_recover_exact_curves():
    c = np.geomspace(1e10, 1e13, 20)
    p = curves.fit_power(c, 5.0 * c**-0.1)
    assert p["params"]["alpha"] == pytest.approx(-0.1) and p["params"]["beta"] == pytest.approx(5.0)
    s = curves.fit_saturating(c, 3e3 * c**-0.35 + 0.12)
    assert s["params"]["alpha"] == pytest.approx(0.35, rel=1e-4)
    assert s["params"]["L_eps"] == pytest.approx(0.12, rel=1e-4)
    assert s["params"]["C_c"] == pytest.approx(3e3, rel=1e-3)


OPENCLIP = ["--x-col", "gmacs_total", "--y-col", "acc1", "--one-minus", "--where", "downstream_dataset=imagenet1k"]


def test_openclip_laion_binned_power_law(capsys):
    code, out, _ = run(["fit", str(DATA / "openclip_zeroshot_results.csv"), "--form", "power", "--bins", "5",
                        *OPENCLIP, "--where", "upstream_dataset=LAION-80M,LAION-400M,LAION-2B", "--format", "json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["n_points"] == 29 and result["procedure"]["frontier_points"] == 5
    assert -0.2 < result["params"]["alpha"] < -0.05  # error falls with compute, slowly


def test_compare_openclip_reports_crossover_and_warns(capsys):
    code, out, _ = run(["compare", str(DATA / "openclip_zeroshot_results.csv"), str(DATA / "openclip_zeroshot_results.csv"),
                        "--form", "power", *OPENCLIP, "--target-flops", "1e13", "--format", "json", "--bootstrap", "200"], capsys)
    assert code == 0
    result = json.loads(out)
    for key in ("crossover", "crossover_ci", "at_target", "span_decades", "warnings"):
        assert key in result
    assert result["crossover"] is None  # a data set never crosses itself
    assert result["at_target"]["difference"] == 0


def planted_pair(tmp_path, seed: int, noise: float) -> list:
    """Two procedures measured at 30 computes: A = 2·C^-0.05 and B = 8·C^-0.12, with log-normal noise."""
    c = np.geomspace(1e8, 1e12, 30)
    rng = np.random.default_rng(seed)
    paths = []
    for name, beta, alpha in (("a", 2.0, -0.05), ("b", 8.0, -0.12)):
        path = tmp_path / f"{name}.csv"
        err = beta * c**alpha * np.exp(noise * rng.standard_normal(c.size))
        path.write_text("flops,err\n" + "".join(f"{float(x)!r},{float(y)!r}\n" for x, y in zip(c, err, strict=True)))
        paths.append(path)
    return paths


def test_compare_finds_a_planted_crossover(tmp_path):
    from planner.fit.compare import compare

    paths = planted_pair(tmp_path, seed=3, noise=0.01)
    result = compare(paths[0], paths[1], FitOptions(form="power", x_col="flops", y_col="err", bootstrap=300), target=1e12)
    planted = (8.0 / 2.0) ** (1 / (0.12 - 0.05))  # 2 C^-0.05 = 8 C^-0.12
    assert result.crossover == pytest.approx(planted, rel=0.3)
    lo, hi = result.crossover_ci
    assert lo < planted < hi
    assert result.better_at_low_compute == "a" and result.at_target.better == "b"
    assert result.warnings == ()


def test_law_file_round_trip_and_determinism(tmp_path, capsys):
    path, _ = synthetic_chinchilla(tmp_path, noise=0.01)
    law = tmp_path / "my-law.yaml"
    args = ["fit", str(path), "--form", "chinchilla", "--tokens-col", "tokens", "--bootstrap", "50", "--seed", "7", "--out", str(law)]
    code, out, err = run(args, capsys)
    assert code == 0, err
    first = law.read_bytes()
    assert run(args, capsys)[0] == 2  # exists: no overwrite without --force
    assert run(args + ["--force"], capsys)[0] == 0
    assert law.read_bytes() == first
    code, out, err = run(["plan", "--flops", "1e22", "--law-file", str(law), "--format", "json"], capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["law"] == "my-law" and plan["predicted_loss"] is not None
    assert 6 * plan["params"] * plan["tokens"] == pytest.approx(1e22)
    # the law file keeps its bootstrap draws, so the plan carries the law's uncertainty
    draws = yaml.safe_load(law.read_text())["fitted"]["bootstrap_draws"]
    assert set(draws) == {"E", "A", "B", "alpha", "beta"} and 40 <= len(draws["E"]) <= 50
    for key in ("params", "tokens", "predicted_loss"):
        lo, hi = plan[f"{key}_interval"]
        assert lo < plan[key] < hi, key
    assert plan["interval_level"] == 0.8 and "bootstrap refits" in plan["law_interval_basis"]
    # by hand: the 10th and 90th percentiles of each draw's closed-form N_opt at C = 1e22
    al, be = np.array(draws["alpha"]), np.array(draws["beta"])
    g = (al * np.array(draws["A"]) / (be * np.array(draws["B"]))) ** (1 / (al + be))
    n = g * (1e22 / 6) ** (be / (al + be))
    assert plan["params_interval"] == pytest.approx(list(np.quantile(n, [0.1, 0.9])), rel=1e-9)
    fixed = json.loads(run(["plan", "--params", "1e9", "--tokens", "2e10", "--law-file", str(law), "--format", "json"], capsys)[1])
    assert "params_interval" not in fixed and fixed["predicted_loss_interval"][0] < fixed["predicted_loss"]
    catalog_law = json.loads(run(["plan", "--flops", "1e22", "--format", "json"], capsys)[1])
    assert "params_interval" not in catalog_law  # a published law without draws: no invented interval


def test_power_fit_refuses_law_file(tmp_path, capsys):
    code, _, err = run(["fit", str(DATA / "openclip_zeroshot_results.csv"), "--form", "power", *OPENCLIP,
                        "--out", str(tmp_path / "x.yaml")], capsys)
    assert code == 2 and "curve in compute only" in err


@pytest.mark.parametrize("content, message", [
    ("", "empty file"),
    ("params,tokens,loss\n", "usable rows"),
    ("params,tokens,loss\n1e9,2e10,2.5\n", "at least 6"),
    ("params,tokens,loss\n1e9,2e10,nan\n" + "2e9,4e10,2.4\n" * 6, ":2: loss: nan is not finite"),
    ("params,tokens,loss\n1e9,2e10,abc\n", ":2: loss: 'abc' is not a number"),
    ("params,tokens,loss\n1e9,2e10,-2\n", "must be positive"),
    ("params,tokens,loss\n" + "1e9,2e10,2.5\n" * 8, "constant"),
    ("params,tokens\n1e9,2e10\n", "unknown column 'loss' (known: params, tokens)"),
    ("params,tokens,loss\n1e9,2e10\n", "2 fields, the header has 3"),
    ("params,params,loss\n1,2,3\n", "appears twice"),
])
def test_bad_csv_exits_2_with_file_and_line(tmp_path, capsys, content, message):
    path = tmp_path / "runs.csv"
    path.write_text(content)
    code, _, err = run(["fit", str(path), "--form", "chinchilla", "--tokens-col", "tokens"], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("fitting", "bootstrap"))]
    assert code == 2 and len(lines) == 1, err
    assert message in lines[0] and "Traceback" not in err


def test_plot_is_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "fit.png"
    code, _, err = run(["fit", str(DATA / "openclip_zeroshot_results.csv"), "--form", "saturating", *OPENCLIP,
                        "--bootstrap", "50", "--plot", str(png)], capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_compute_to_reach_a_target_error(tmp_path):
    """The compute each procedure needs for an error, against the planted laws' own inversion."""
    from planner.fit.compare import compare

    paths = planted_pair(tmp_path, seed=5, noise=0.005)
    opts = FitOptions(form="power", x_col="flops", y_col="err", bootstrap=300)
    result = compare(paths[0], paths[1], opts, target_error=0.6)
    reach = result.at_target_error
    for needed, fitted in ((reach.a_flops, result.a), (reach.b_flops, result.b)):  # the fitted law inverted by hand
        p = fitted.params
        assert needed == pytest.approx((0.6 / p["beta"]) ** (1 / p["alpha"]), rel=1e-3)  # to the grid's resolution
    planted = ((0.6 / 2.0) ** (1 / -0.05)) / ((0.6 / 8.0) ** (1 / -0.12))
    assert reach.ratio_a_over_b == pytest.approx(planted, rel=0.3)
    lo, hi = reach.ratio_ci
    assert lo < reach.ratio_a_over_b < hi
    unreachable = compare(paths[0], paths[1], opts, target_error=1e-9)  # 1e6x beyond the data does not get there
    assert unreachable.at_target_error.a_flops is None
    assert any("does not reach" in w.message for w in unreachable.warnings)


def test_isoflop_plot_and_parabolas(tmp_path, capsys):
    """Approach 2 keeps each budget's parabola (their minima are the N_opt the power law is fitted to)."""
    path, _ = synthetic_chinchilla(tmp_path)
    result = fit_run(path, FitOptions(form="isoflop", flops_col="flops"))
    parabolas = result.procedure["parabolas"]
    assert len(parabolas) == len(result.procedure["budgets"]) == 8
    for par, n_opt in zip(parabolas, result.procedure["optimal_params"], strict=True):
        curv, lin, _ = par["coefficients"]
        assert curv > 0 and math.exp(-lin / (2 * curv)) == pytest.approx(n_opt, rel=1e-12)
        assert par["params_range"][0] < n_opt < par["params_range"][1]
    pytest.importorskip("matplotlib")
    png = tmp_path / "iso.png"
    code, _, err = run(["fit", str(path), "--form", "isoflop", "--flops-col", "flops", "--plot", str(png)], capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pareto_front_keeps_runs_better_than_every_cheaper_run():
    x = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([5.0, 6.0, 4.0, 4.5, 3.0, 3.0])
    fx, fy, idx = curves.pareto_front(x, y)
    assert list(idx) == [0, 2, 4]  # (2, 6) and (3, 4.5) are dominated; (5, 3) does not improve on (4, 3)
    assert list(fx) == [1.0, 2.0, 4.0] and list(fy) == [5.0, 4.0, 3.0]


def test_fit_and_compare_on_the_pareto_front(capsys):
    laion = str(ROOT / "examples" / "openclip" / "laion.csv")
    args = ["--form", "power", "--x-col", "gmacs_total", "--y-col", "acc1", "--one-minus"]
    code, out, err = run(["fit", laion, *args, "--pareto", "--format", "json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["procedure"]["bins"] == "pareto" and result["procedure"]["frontier_points"] == 10
    assert result["params"]["alpha"] == pytest.approx(-0.111, abs=0.005)  # as the 5-bin frontier gives
    code, out, err = run(["compare", laion, str(ROOT / "examples" / "openclip" / "clip-wit.csv"), *args, "--pareto",
                          "--bins-b", "0", "--bootstrap", "100", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["fits"]["a"]["bins"] == "pareto" and json.loads(out)["fits"]["b"]["bins"] is None
    for bad, message in ((["--pareto", "--bins", "5"], "not --bins and --pareto"), (["--pareto", "--hull"], "not --pareto and --hull"),
                         (["--pareto", "--form", "chinchilla"], "not chinchilla")):
        code, _, err = run(["fit", laion, *args, *bad], capsys)
        assert code == 2 and message in err, err


def test_lower_hull_drops_runs_above_a_chord_of_two_others():
    x, y = np.array([0.0, 1.0, 2.0, 3.0, 2.5]), np.array([3.0, 2.0, 1.8, 0.5, 2.9])
    hx, hy, idx = curves.lower_hull(x, y)
    assert list(idx) == [0, 1, 3]  # (2, 1.8) lies above the chord (1, 2)-(3, 0.5); (2.5, 2.9) is dominated
    laion = str(ROOT / "examples" / "openclip" / "laion.csv")
    result = fit_run(Path(laion), FitOptions(form="power", x_col="gmacs_total", y_col="acc1", one_minus=True, bins=curves.HULL))
    assert result.procedure["frontier_points"] == 5
    assert result.params["alpha"] == pytest.approx(-0.111, abs=0.005)


def test_isoflop_skips_a_budget_of_repeated_sizes():
    """A bootstrap resample repeats runs: three runs of two sizes do not determine a parabola (polyfit
    would warn and return an arbitrary one), so that budget is skipped like a budget of two runs."""
    sizes = {1e19: [1e8, 3e8, 1e9, 3e9, 1e10], 1e20: [3e8, 3e8, 1e9], 1e21: [1e9, 3e9, 1e10, 3e10, 1e11]}
    params = np.array([n for ns in sizes.values() for n in ns])
    flops = np.array([c for c, ns in sizes.items() for _ in ns])
    loss = 2.0 + 400 / params**0.33 + 1500 / (flops / (6 * params)) ** 0.3
    result = curves.fit_isoflop(params, flops, loss)
    assert result["budgets"] == [pytest.approx(1e19), pytest.approx(1e21)]
    assert "budget 1e+20: only 2 distinct sizes, skipped (a parabola needs 3)" in [w.message for w in result["warnings"]]
