"""VPNLS against the 4,500-start grid, and `planner simulate`: exact recovery without noise, seeded
determinism, the sweep costed as `planner sweep` costs it, and one clear line for bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import check_stderr, run
from conftest import EPOCH_CSV, epoch_options

from planner.fit import chinchilla, load, vpnls
from planner.laws import chinchilla_math
from planner.simulate.engine import quantities, run_trials
from planner.simulate.study import noise_of, simulate

ROOT = Path(__file__).resolve().parents[1]
ISOFLOP = ROOT / "examples" / "sweeps" / "isoflop-juwels.yaml"
TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al. 2022, Approach 3


def isoflop_runs(budgets=(1e18, 1e19, 1e20), points=5, span=4.0):
    """An IsoFLOP design: `points` sizes per budget from N/span to N·span around N = 0.5 (C/6)^0.45."""
    params, tokens = [], []
    for c in budgets:
        centre = 0.5 * (c / 6) ** 0.45
        for f in np.geomspace(1 / span, span, points):
            params.append(centre * f)
            tokens.append(c / 6 / (centre * f))
    return np.array(params), np.array(tokens)


def test_vpnls_reaches_the_grid_optimum_on_epochs_data(epoch_fit):
    cols = load(EPOCH_CSV, epoch_options()).columns
    got = vpnls.fit(cols["params"], cols["tokens"], cols["loss"])
    assert got["objective"] <= epoch_fit.objective * (1 + 1e-12)
    fitted = {k: float(v[0]) for k, v in chinchilla.to_params(got["theta"]).items()}
    for k, v in epoch_fit.params.items():
        assert fitted[k] == pytest.approx(v, rel=1e-3), k


@pytest.mark.parametrize("design", [{}, {"points": 7, "span": 8.0}, {"budgets": (1e17, 1e18, 1e19, 1e20, 1e21)}])
def test_vpnls_recovers_a_known_law_exactly_without_noise(design):
    params, tokens = isoflop_runs(**design)
    loss = chinchilla_math.loss(TRUTH, params, tokens)
    got = chinchilla.to_params(vpnls.fit(params, tokens, loss)["theta"])
    for k, v in TRUTH.items():
        assert float(got[k][0]) == pytest.approx(v, rel=1e-8), k


def test_trials_without_noise_recover_the_truth_in_every_trial():
    params, tokens = isoflop_runs()
    trials = run_trials(params, tokens, TRUTH, 0.0, 4, 0, 1e23)
    assert trials.failed == 0
    for k, values in trials.fitted.items():
        assert values == pytest.approx(np.full(4, trials.truth[k]), rel=1e-8), k


def test_quantities_follow_hoffmann_eq4():
    q = quantities(TRUTH, 5.76e23)
    n, d = chinchilla_math.allocate(TRUTH, 5.76e23)
    assert q["params_at_target"][0] == pytest.approx(n) and q["tokens_at_target"][0] == pytest.approx(d)
    assert 6 * q["params_at_target"][0] * q["tokens_at_target"][0] == pytest.approx(5.76e23)
    assert q["a"][0] == pytest.approx(TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"]))


def test_noise_widens_the_spread_of_fits_and_seeds_repeat():
    params, tokens = isoflop_runs()
    quiet = run_trials(params, tokens, TRUTH, 0.002, 60, 3, 1e23)
    loud = run_trials(params, tokens, TRUTH, 0.02, 60, 3, 1e23)
    again = run_trials(params, tokens, TRUTH, 0.02, 60, 3, 1e23)
    for k in ("alpha", "params_at_target"):
        spread = [np.subtract(*np.percentile(t.fitted[k], [90, 10])) for t in (quiet, loud)]
        assert spread[1] > 3 * spread[0], k
        assert np.array_equal(loud.fitted[k], again.fitted[k])


def test_simulate_costs_the_sweep_as_sweep_does(catalog, capsys, tmp_path):
    result = simulate(ISOFLOP, catalog, trials=20, target_flops=1e23)
    code, out, err = run(["sweep", str(ISOFLOP), "--format", "json", "--out", str(tmp_path / "sweep")], capsys)
    assert code == 0, err
    total = json.loads(out)["total"]
    assert result.runs == total["runs"] == 15
    assert result.gpu_hours == pytest.approx(total["gpu_hours"], rel=1e-12)
    assert result.gpu_hours_interval == pytest.approx(total["gpu_hours_interval"], rel=1e-12)
    assert result.law == "chinchilla-approach3" and result.noise == 0.01 and result.noise_source.startswith("default")


def test_simulate_json_is_deterministic_and_names_every_quantity(capsys):
    args = ["simulate", str(ISOFLOP), "--trials", "30", "--target-flops", "1e23", "--format", "json", "--seed", "7"]
    first = run(args, capsys)
    second = run(args, capsys)
    assert first[0] == 0 and first[1] == second[1]
    data = json.loads(first[1])
    assert set(data["quantities"]) == {"alpha", "beta", "E", "a", "b", "params_at_target", "tokens_at_target", "loss_at_target"}
    for q in data["quantities"].values():
        assert q["ci95"][0] <= q["ci80"][0] <= q["median"] <= q["ci80"][1] <= q["ci95"][1]
        assert q["coverage95"] is None


def test_simulate_csv_gives_each_range_two_number_columns(capsys):
    import csv
    import io

    code, out, err = run(["simulate", str(ISOFLOP), "--trials", "20", "--format", "csv", "--seed", "7"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {"ci80_low", "ci80_high", "ci95_low", "ci95_high"} <= set(rows[0])
    for row in rows:
        assert float(row["ci95_low"]) <= float(row["ci80_low"]) <= float(row["median"]) <= float(row["ci80_high"])


def test_law_file_noise_comes_from_its_fit(tmp_path, capsys, catalog):
    law = tmp_path / "epoch.yaml"
    code, _, err = run(["fit", str(EPOCH_CSV), "--form", "chinchilla", "--params-col", "Model Size", "--flops-col",
                        "Training FLOP", "--drop-highest", "5", "--out", str(law)], capsys)
    assert code == 0, err
    from planner.catalog import load_model
    from planner.laws import Law

    sigma, source = noise_of(load_model(Law, law), None)
    assert 0.003 < sigma < 0.01 and "240 points" in source


@pytest.mark.parametrize("args, message", [
    (["--law", "no-such-law"], "--law: unknown law 'no-such-law' (known: chinchilla-approach1,"),
    (["--law", "kaplan-2020"], "--law: law 'kaplan-2020' has no Chinchilla-form loss"),
    (["--noise", "1.5"], "--noise: must be a relative error in [0, 1), got 1.5"),
    (["--law", "chinchilla-approach3", "--law-file", "x.yaml"], "--law-file: conflicts with --law; give one"),
    (["--target-flops", "-1"], "Invalid value for --target-flops: must be positive, got -1"),
])
def test_bad_input_is_one_line(capsys, args, message):
    code, _, err = run(["simulate", str(ISOFLOP), "--trials", "20", *args], capsys)
    assert check_stderr(code, err).split(": error: ", 1)[1].startswith(message), err


def test_python_callers_get_the_same_checks(catalog):
    from planner.errors import PlannerError

    for kwargs, field in (({"target_flops": float("nan")}, "target_flops"), ({"trials": 1}, "trials"),
                          ({"bootstrap": -1}, "bootstrap"), ({"noise": -0.1}, "noise")):
        with pytest.raises(PlannerError) as refused:
            simulate(ISOFLOP, catalog, **kwargs)
        assert refused.value.field == (field,)


def test_bootstrap_intervals_cover_the_truth_as_often_as_they_claim():
    """`planner fit --bootstrap`'s 95% intervals, counted over 200 simulated 30-run sweeps (5 budgets over two
    decades, 6 sizes each, 0.2% noise, 200 resamples each): they hold the truth in 95-97.5% of trials."""
    params, tokens = isoflop_runs(budgets=tuple(np.geomspace(1e18, 1e20, 5)), points=6)
    trials = run_trials(params, tokens, TRUTH, 0.002, 200, 1, 1e23, bootstrap=200)
    assert trials.failed == 0
    for k, interval in trials.intervals.items():
        coverage = np.mean((interval[:, 0] <= trials.truth[k]) & (trials.truth[k] <= interval[:, 1]))
        assert 0.90 <= coverage <= 0.98, (k, coverage)


# --- comparisons: the openCLIP LAION vs CLIP-WIT example -------------------------------------------

OPENCLIP = ROOT / "examples" / "openclip"
COMPARE = ["simulate", "--compare", str(OPENCLIP / "laion.csv"), str(OPENCLIP / "clip-wit.csv"), "--x-col", "gmacs_total",
           "--y-col", "acc1", "--one-minus", "--bins", "5", "--bins-b", "0", "--target-flops", "1e12", "--format", "json"]


def test_comparison_truths_are_the_laws_compare_fits(capsys):
    data = json.loads(run(COMPARE + ["--decades", "1.07", "--points", "3"], capsys)[1])
    code, out, err = run(["compare", str(OPENCLIP / "laion.csv"), str(OPENCLIP / "clip-wit.csv"), "--form", "power",
                          "--x-col", "gmacs_total", "--y-col", "acc1", "--one-minus", "--bins", "5", "--bins-b", "0",
                          "--format", "json", "--bootstrap", "10"], capsys)
    assert code == 0, err
    fitted = json.loads(out)
    for label in ("a", "b"):
        assert data[label]["alpha"] == pytest.approx(fitted["fits"][label]["params"]["alpha"], rel=1e-12)
        assert data[label]["beta"] == pytest.approx(fitted["fits"][label]["params"]["beta"], rel=1e-12)
    assert data["true_crossover"] == pytest.approx(fitted["crossover"], rel=1e-3)


def test_a_wider_sweep_names_the_winner_more_often(capsys):
    """The field's point: the WIT span (1.07 decades, 3 points) against 3 decades at the same density."""
    narrow = json.loads(run(COMPARE + ["--decades", "1.07", "--points", "3"], capsys)[1])
    wide = json.loads(run(COMPARE + ["--decades", "3", "--points", "10"], capsys)[1])
    assert narrow["true_winner"] == wide["true_winner"] == "b"
    assert narrow["winner_right"] == pytest.approx(0.924, abs=0.0005)  # the figures the README quotes
    assert wide["winner_right"] == pytest.approx(0.983, abs=0.0005)
    assert narrow["crossover_found"] < wide["crossover_found"] == 1.0


def test_without_noise_every_trial_names_the_winner(capsys):
    data = json.loads(run(COMPARE + ["--noise", "0", "--trials", "50", "--decades", "1", "--points", "3"], capsys)[1])
    assert data["winner_right"] == 1.0
    true = data["a"]["beta"] * 1e12 ** data["a"]["alpha"] - data["b"]["beta"] * 1e12 ** data["b"]["alpha"]
    assert data["difference_median"] == pytest.approx(true, rel=1e-9)


@pytest.mark.parametrize("extra, message", [
    ([], "give the compute at which the winner is read (--target-flops)"),
    (["--target-flops", "1e12", "--law", "epoch-2024"], "--law, --law-file, --bootstrap and --need belong to a sweep SPEC"),
    (["--target-flops", "1e12", "--points", "1"], "Invalid value for '--points'"),
])
def test_bad_comparisons_are_one_line(capsys, extra, message):
    args = ["simulate", "--compare", str(OPENCLIP / "laion.csv"), str(OPENCLIP / "clip-wit.csv"), "--x-col", "gmacs_total",
            "--y-col", "acc1", "--one-minus", *extra]
    code, _, err = run(args, capsys)
    assert message in check_stderr(code, err), err


def test_spec_and_compare_options_do_not_mix(capsys):
    code, _, err = run(["simulate", str(ISOFLOP), "--points", "3"], capsys)
    assert check_stderr(code, err) == "planner: error: --points belongs to --compare; a sweep SPEC brings its own runs"
    code, _, err = run(["simulate"], capsys)
    assert check_stderr(code, err).endswith("give a sweep SPEC (a `planner sweep` spec file), or --compare A.csv B.csv")


# --- the design question ------------------------------------------------------------------------


def test_need_finds_the_cheapest_design_that_meets_it(catalog):
    result = simulate(ISOFLOP, catalog, trials=60, target_flops=1e23, need="a within 10%")
    tried = result.designs_tried
    assert result.need == "a within 10%" and result.need_met
    assert [c.gpu_hours for c in tried] == sorted(c.gpu_hours for c in tried)  # cheapest first
    assert all(c.share < 0.8 for c in tried[:-1]) and tried[-1].share >= 0.8
    assert result.gpu_hours == pytest.approx(tried[-1].gpu_hours) and result.runs == tried[-1].runs
    spec_own = simulate(ISOFLOP, catalog, trials=20, target_flops=1e23)
    assert result.gpu_hours < spec_own.gpu_hours  # 3 decades of budgets with fewer sizes: cheaper than the spec's
    a = result.quantities["a"]
    assert a.truth * 0.9 <= a.ci80[0] and a.ci80[1] <= a.truth * 1.1


def test_an_unreachable_need_says_so(catalog):
    result = simulate(ISOFLOP, catalog, trials=20, target_flops=1e23, need="E within 0.1%")
    assert result.need_met is False and len(result.designs_tried) == 54
    assert any(w.topic == "sweep" and "no design searched meets 'E within 0.1%'" in w.message for w in result.warnings)


@pytest.mark.parametrize("need, message", [
    ("a within", "'a within' is not a need; write 'QUANTITY within X%' with QUANTITY one of alpha, beta, E, a, b,"),
    ("gamma within 5%", "'gamma within 5%' is not a need"),
    ("a within 0%", "the tolerance must be above 0%"),
])
def test_bad_needs_are_one_line(capsys, need, message):
    code, _, err = run(["simulate", str(ISOFLOP), "--trials", "20", "--need", need], capsys)
    assert check_stderr(code, err).startswith(f"planner: error: --need: {message}"), err


def test_ctrl_c_ends_a_long_simulation_with_one_line():
    """Every command, not only fit: Ctrl-C prints `planner: aborted` alone (click would add a blank line) and exits 130."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "planner", "simulate", str(ISOFLOP), "--trials", "20000"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith("simulating 20000 trials of ")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    try:
        out, rest = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the simulation went on after Ctrl-C")
    assert proc.returncode == 130 and out == ""
    assert rest == "planner: aborted\n"


# --- `need:` in a sweep spec: planner sweep's verdict ------------------------------------------------


@pytest.mark.parametrize("need, met", [("a within 10%", False), ("a within 30%", True)])
def test_sweep_says_whether_its_design_meets_the_specs_need(tmp_path, capsys, need, met):
    spec = tmp_path / "spec.yaml"
    spec.write_text(ISOFLOP.read_text() + f"need: {need}\n")
    code, out, err = run(["sweep", str(spec), "--out", str(tmp_path / "out"), "--format", "json"], capsys)
    assert code == 0, err
    verdict = json.loads(out)["need"]
    assert verdict["need"] == need and verdict["met"] is met and (verdict["share"] >= 0.8) is met
    assert verdict["verdict"].startswith(f"need '{need}': {'met' if met else 'NOT met'}: {verdict['share']:.0%} of 100 "
                                         "simulated sweeps under chinchilla-approach3 with 0.01 noise")
    code, out, _ = run(["sweep", str(spec), "--out", str(tmp_path / "out"), "--force"], capsys)
    assert verdict["verdict"] in out.splitlines()


def test_a_bad_need_in_a_spec_is_refused_at_its_line_before_anything_is_written(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    text = ISOFLOP.read_text() + "need: a within\n"
    spec.write_text(text)
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "out")], capsys)
    line = len(text.splitlines())
    assert check_stderr(code, err).startswith(f"planner: error: {spec}:{line}: need: 'a within' is not a need")
    assert not (tmp_path / "out").exists()


def test_plot_follows_the_quantity_as_the_budgets_are_spent(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "spent.png"
    code, out, err = run(["simulate", str(ISOFLOP), "--trials", "30", "--target-flops", "1e23", "--plot", str(png),
                          "--plot-quantity", "a", "--format", "json"], capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(out)
    spent = data["progression"]
    assert data["progression_quantity"] == "a" and [s["budgets"] for s in spent] == [2, 3]  # 5 runs a budget: 6 from two
    assert spent[0]["gpu_hours"] < spent[-1]["gpu_hours"] == pytest.approx(data["gpu_hours"])
    width = [s["ci80"][1] - s["ci80"][0] for s in spent]
    assert width[-1] < width[0]  # spending more pins it down
    assert spent[-1]["ci80"] == pytest.approx(data["quantities"]["a"]["ci80"])  # the whole sweep: the same trials
    code, _, err = run(["simulate", str(ISOFLOP), "--trials", "30", "--plot", str(png)], capsys)
    assert check_stderr(code, err).endswith("exists; pass --force to overwrite it")


def test_plot_options_are_refused_where_they_mean_nothing(capsys, tmp_path):
    code, _, err = run(["simulate", str(ISOFLOP), "--plot-quantity", "a"], capsys)
    assert check_stderr(code, err) == "planner: error: --plot-quantity goes with --plot"
    code, _, err = run(COMPARE[:-2] + ["--plot", str(tmp_path / "x.png")], capsys)
    assert check_stderr(code, err) == "planner: error: --plot follows a sweep SPEC budget by budget; --compare has no budgets"


# --- what a new user ran into (each once a confident wrong answer or a second line) -------------------


def test_an_accuracy_column_is_not_taken_for_an_error(capsys):
    args = ["simulate", "--compare", str(OPENCLIP / "laion.csv"), str(OPENCLIP / "clip-wit.csv"), "--x-col", "gmacs_total",
            "--y-col", "acc1", "--target-flops", "1e12"]
    code, _, err = run(args, capsys)
    line = check_stderr(code, err)
    assert "laion.csv: the fitted law rises with compute (exponent +0.0513): a loss or an error falls" in line
    assert line.endswith("(one_minus turns it into an error)?")


def test_comparisons_that_cannot_name_a_winner_are_refused(tmp_path, capsys):
    two = tmp_path / "two.csv"
    two.write_text("gmacs_total,acc1\n1e10,0.5\n1e11,0.6\n")
    base = ["simulate", "--compare"]
    tail = ["--x-col", "gmacs_total", "--y-col", "acc1", "--one-minus", "--target-flops", "1e12"]
    code, _, err = run(base + [str(two), str(OPENCLIP / "clip-wit.csv")] + tail, capsys)
    assert "2 points leave no scatter about a two-parameter law to take the noise from; give the noise" in check_stderr(code, err)
    laion = str(OPENCLIP / "laion.csv")
    code, _, err = run(base + [laion, laion] + tail + ["--bins", "5"], capsys)
    assert check_stderr(code, err).endswith("A and B follow the same law: neither is better anywhere, so there is no winner to find")


def test_a_clip_sweep_is_not_simulated_as_a_language_model(capsys):
    code, _, err = run(["simulate", str(ROOT / "examples" / "sweeps" / "openclip-juwels.yaml")], capsys)
    assert "this sweep is a CLIP samples-seen grid" in check_stderr(code, err)


def test_a_spec_without_a_law_says_which_one_it_gets(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("".join(line for line in ISOFLOP.read_text().splitlines(keepends=True) if not line.startswith("law:")))
    code, out, err = run(["simulate", str(spec), "--trials", "20", "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["law"] == "epoch-2024"
    warning = "the spec names no law: planner's default, epoch-2024, places the sizes and is the truth the trials draw from"
    assert warning in data["warnings"]


def test_a_law_typo_in_the_spec_is_named_at_its_line(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    text = ISOFLOP.read_text().replace("law: chinchilla-approach3", "law: chinchilla-aproach3")
    spec.write_text(text)
    line = 1 + text.splitlines().index(next(ln for ln in text.splitlines() if ln.startswith("law: chinchilla-aproach3")))
    code, _, err = run(["simulate", str(spec)], capsys)
    assert check_stderr(code, err).startswith(f"planner: error: {spec}:{line}: law: unknown law 'chinchilla-aproach3'")


def test_an_existing_out_is_refused_before_the_work_and_before_any_plot(tmp_path, capsys):
    out, png = tmp_path / "exists.txt", tmp_path / "p.png"
    out.write_text("keep me\n")
    code, _, err = run(["simulate", str(ISOFLOP), "--plot", str(png), "--out", str(out)], capsys)
    assert check_stderr(code, err) == f"planner: error: {out} exists; pass --force to overwrite it"
    assert not png.exists() and out.read_text() == "keep me\n"


def test_a_full_disk_behind_stdout_is_bad_output_not_a_bug():
    import subprocess
    import sys

    done = subprocess.run(f"{sys.executable} -m planner simulate {ISOFLOP} --trials 20 > /dev/full", shell=True, cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == "planner: error: cannot write the output: No space left on device"


def test_a_repeated_budget_is_refused_at_its_line(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    text = ISOFLOP.read_text().replace("budgets: [1e18, 1e19, 1e20]", "budgets: [1e18, 1e18, 1e18]")
    assert text != ISOFLOP.read_text()
    spec.write_text(text)
    code, _, err = run(["simulate", str(spec)], capsys)
    assert "budgets: each budget once (a repeated budget repeats the same runs)" in check_stderr(code, err)


def test_solver_is_the_chinchilla_forms_and_a_tokens_column_is_found_by_name(tmp_path, capsys):
    data = tmp_path / "runs.csv"
    rows = [(n, 20 * n, 1.69 + 406.4 / n**0.34 + 410.7 / (20 * n) ** 0.28) for n in np.geomspace(1e7, 1e10, 8)]
    rows += [(n, 80 * n, 1.69 + 406.4 / n**0.34 + 410.7 / (80 * n) ** 0.28) for n in np.geomspace(1e7, 1e10, 8)]
    data.write_text("params,tokens,loss\n" + "".join(f"{n},{d},{loss}\n" for n, d, loss in rows))
    code, out, err = run(["fit", str(data), "--form", "chinchilla", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["params"]["alpha"] == pytest.approx(0.34, rel=1e-6)
    code, _, err = run(["fit", str(data), "--form", "overtrain", "--solver", "bfgs"], capsys)
    assert check_stderr(code, err) == ("planner: error: --solver chooses how the chinchilla form is solved; the overtrain "
                                       "form has one way")
