"""The over-training (Gadre et al. 2024) and data-constrained (Muennighoff et al. 2023) forms recover the laws
that made synthetic data (the published constants are the truths). A published fit is reproduced on the
authors' own runs in test_gadre_published.py: Gadre et al.'s Table 2 fit on five RedPajama runs predicts the
held-out 1.4B (M = 640) and 6.9B (M = 20) C4-eval losses within 0.7104% and 0.7321%, as their notebook's
0.7103% and 0.7320%. Muennighoff et al.'s base law (E, A, B, α = β = 1.87, 521, 1488, 0.353) is fitted to
54 points digitised from Chinchilla's C4 isoFLOP curves, not in their repository; only R*_N, R*_D come from
their 182 runs, and test_muennighoff_published.py reproduces those with the base law held fixed
(`base_law`): 5.315 and 15.37 against the published 5.310 and 15.39 (0.1%); the objective's global optimum
on those runs lies elsewhere (R*_N ≈ 1.7, R*_D ≈ 95), reported as a warning."""

import math

import numpy as np
import pytest

from planner.fit import gadre

GADRE = {"E": 1.8, "a_M": 60.0, "b_M": 250.0, "eta": 0.15}
SIZES = np.geomspace(1e7, 7e9, 8)
MULTIPLIERS = (5, 10, 20, 40, 80, 160, 320, 640)  # Gadre et al.'s 20 × {1/4 ... 32}


def gadre_runs():
    n = np.repeat(SIZES, len(MULTIPLIERS))
    d = n * np.tile(MULTIPLIERS, len(SIZES))
    return n, d, gadre.loss_at(GADRE, 6 * n * d, d / n)


def test_overtraining_law_is_recovered_exactly_without_noise():
    n, d, loss = gadre_runs()
    got = gadre.fit(n, d, loss)
    for k, v in GADRE.items():
        assert float(got[k][0]) == pytest.approx(v, rel=1e-5), k


def test_overtraining_law_is_recovered_within_2_percent_at_0_1_percent_noise():
    n, d, loss = gadre_runs()
    rng = np.random.default_rng(5)
    noisy = loss * np.exp(0.001 * rng.standard_normal((10, len(loss))))
    fits = [gadre.fit(n, d, row) for row in noisy]
    for k, v in GADRE.items():
        median = np.median([float(f[k][0]) for f in fits])
        assert median == pytest.approx(v, rel=0.02), k


def test_overtraining_law_is_chinchilla_with_tied_exponents():
    from planner.laws import chinchilla_math

    n, d, loss = gadre_runs()
    assert chinchilla_math.loss(gadre.as_chinchilla(GADRE), n, d) == pytest.approx(loss, rel=1e-12)
    m_best = gadre.best_multiplier(GADRE)
    c = 1e22
    grid = np.geomspace(m_best / 10, m_best * 10, 20001)
    assert grid[np.argmin(gadre.loss_at(GADRE, c, grid))] == pytest.approx(m_best, rel=1e-3)
    assert gadre.frontier(GADRE, c) == pytest.approx(gadre.loss_at(GADRE, c, m_best), rel=1e-12)
    assert math.isclose(m_best, (GADRE["b_M"] / GADRE["a_M"]) ** (1 / 0.3))


# --- data-constrained (Muennighoff et al. 2023) -------------------------------------------------------

MUENNIGHOFF = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.353, "beta": 0.353, "R_N_star": 5.31, "R_D_star": 15.39}


def repeated_runs():
    from planner.fit import muennighoff
    from planner.laws import chinchilla_math

    g, a, _ = chinchilla_math.closed_form(MUENNIGHOFF)
    runs = [(n, c / (6 * n), c / (6 * n)) for c in np.geomspace(1e18, 1e21, 6) for n in g * (c / 6) ** a * np.geomspace(0.25, 4, 7)]
    runs += [(n, u * ep, u) for u in (1e9, 4e9, 1.6e10) for n in np.geomspace(1e8, 3e9, 5) for ep in (2, 4, 8, 16, 32, 64)]
    n, d, u = (np.array(x) for x in zip(*runs, strict=True))
    n_eff, d_eff = muennighoff.effective(MUENNIGHOFF, n, d, u, MUENNIGHOFF["R_N_star"], MUENNIGHOFF["R_D_star"])
    return n, d, u, chinchilla_math.loss(MUENNIGHOFF, n_eff, d_eff)


def test_data_constrained_law_is_recovered_without_noise():
    from planner.fit import muennighoff

    got = muennighoff.fit(*repeated_runs())
    for k, v in MUENNIGHOFF.items():
        assert got[k] == pytest.approx(v, rel=1e-6), k


def test_data_constrained_law_is_recovered_within_2_percent_at_0_1_percent_noise():
    from planner.fit import muennighoff

    n, d, u, loss = repeated_runs()
    rng = np.random.default_rng(2)
    fits = [muennighoff.fit(n, d, u, loss * np.exp(0.001 * rng.standard_normal(len(loss)))) for _ in range(5)]
    for k, v in MUENNIGHOFF.items():
        assert np.median([f[k] for f in fits]) == pytest.approx(v, rel=0.02), k


def test_a_fitted_data_constrained_law_plans_with_unique_tokens(tmp_path, capsys):
    import csv
    import json

    from cli_helpers import run

    n, d, u, loss = repeated_runs()
    data = tmp_path / "runs.csv"
    with open(data, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["params", "tokens", "unique", "loss"])
        out.writerows(zip(n, d, u, loss, strict=True))
    law = tmp_path / "dc.yaml"
    code, _, err = run(["fit", str(data), "--form", "data-constrained", "--tokens-col", "tokens", "--unique-tokens-col",
                        "unique", "--out", str(law)], capsys)
    assert code == 0, err
    code, out, err = run(["plan", "--params", "2e9", "--tokens", "1.6e11", "--unique-tokens", "1e10", "--law-file", str(law),
                          "--format", "json"], capsys)
    assert code == 0, err
    from planner.fit import muennighoff
    from planner.laws import chinchilla_math

    n_eff, d_eff = muennighoff.effective(MUENNIGHOFF, 2e9, 1.6e11, 1e10, MUENNIGHOFF["R_N_star"], MUENNIGHOFF["R_D_star"])
    assert json.loads(out)["predicted_loss"] == pytest.approx(float(chinchilla_math.loss(MUENNIGHOFF, n_eff, d_eff)), rel=1e-6)


def test_the_data_constrained_form_says_what_it_needs(tmp_path, capsys):
    from cli_helpers import check_stderr, run

    data = tmp_path / "runs.csv"
    data.write_text("params,tokens,loss\n" + "".join(f"{1e8 * 2**i},{2e9 * 2**i},{3 - 0.1 * i}\n" for i in range(10)))
    code, _, err = run(["fit", str(data), "--form", "data-constrained", "--tokens-col", "tokens"], capsys)
    assert check_stderr(code, err) == ("planner: error: the data-constrained form needs the unique tokens each run's "
                                       "data held (--unique-tokens-col)")
