"""Calibration against measurements: published runs within a factor 1.3, and docs/calibration.md current."""

from pathlib import Path

import pytest

from cli_helpers import run
from planner.calibration import load_runs, mfu_points, public_runs

DOC = Path(__file__).resolve().parent.parent / "docs" / "calibration.md"


def test_published_runs_within_a_factor_1_3(catalog):
    rows = {r["run"]: r for r in public_runs(catalog)}
    assert len(rows) >= 5
    for name, row in rows.items():
        if name == "bloom-176b":
            # documented outlier: 1.08M GPU-hours of wall clock at ~0.66 goodput (docs/calibration.md)
            assert row["ratio"] == pytest.approx(1.32, abs=0.02)
            continue
        assert 1 / 1.3 < row["ratio"] < 1.3, (name, row["ratio"])
    assert load_runs().goodput.value == 0.9  # the one stated assumption


def test_llama_2_7b_matches_meta_within_two_percent(catalog):
    row = next(r for r in public_runs(catalog) if r["run"] == "llama-2-7b")
    assert row["planner_gpu_hours"] == pytest.approx(184_320, rel=0.02)


def test_every_measured_point_is_reproduced_by_its_profile(catalog):
    rows = mfu_points(catalog)
    assert len(rows) >= 25
    for r in rows:
        # at a size measured once the profile passes through the point; at shared sizes it takes the median
        assert r["planner"] == pytest.approx(r["measured"], rel=0.12), r


def test_calibration_doc_is_current(capsys):
    code, out, _ = run("calibrate --format markdown", capsys)
    assert code == 0
    doc = DOC.read_text()
    generated = doc.split("<!-- generated below -->\n", 1)[1]
    assert generated == out, "docs/calibration.md is stale: regenerate it with `planner calibrate --format markdown`"
