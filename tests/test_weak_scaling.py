"""Weak scaling (fixed work per node) beside strong scaling: definitions, the same throughput model, and
where it is shown (`planner scaling --weak`, grant outputs with scaling evidence)."""

import csv
import io
import json
from pathlib import Path

import pytest
from cli_helpers import run

from planner.costing.plan import PlanRequest
from planner.costing.scaling import ScalingRun, ScalingTable, strong_scaling
from planner.costing.weak import weak_columns, weak_notes, weak_scaling

JUWELS = Path(__file__).resolve().parents[1] / "examples" / "grants" / "juwels-booster.yaml"


def table(throughputs: dict[int, float], fits=None, global_batch=4e6) -> ScalingTable:
    run_ = ScalingRun(None, 7e9, "tokens", 1e12, 4.2e22, "6ND", "x", None, global_batch)
    rows = tuple({"nodes": n, "gpus": 4 * n, "fits": (fits or {}).get(n, True), "layout": None, "mfu": None,
                  "wall_hours_interval": None, "throughput": t, "wall_hours": 1e12 / t / 3600, "seconds_per_step": None}
                 for n, t in throughputs.items())
    return ScalingTable(run_, rows, None, None, False, None, (), {}, experiment="run")


def test_weak_efficiency_is_the_time_at_the_smallest_count_over_the_time_at_n():
    perfect = weak_scaling(table({2: 100.0, 4: 200.0, 8: 400.0}))
    assert [r["efficiency"] for r in perfect.rows] == pytest.approx([1.0, 1.0, 1.0])
    flat = weak_scaling(table({2: 100.0, 4: 100.0, 8: 100.0}))  # no gain from more nodes: time grows with n
    assert [r["efficiency"] for r in flat.rows] == pytest.approx([1.0, 0.5, 0.25])
    for r in flat.rows:
        assert r["amount"] / r["nodes"] == pytest.approx(1e12 / 2)  # fixed work per node
        assert r["global_batch"] / r["nodes"] == pytest.approx(2e6)  # and fixed batch per node
        assert r["efficiency"] == pytest.approx(flat.rows[0]["seconds_per_step"] / r["seconds_per_step"])
        assert r["efficiency"] == pytest.approx(flat.rows[0]["wall_hours"] / r["wall_hours"])


def test_counts_that_cannot_hold_the_model_are_left_out():
    weak = weak_scaling(table({1: 40.0, 2: 100.0, 4: 180.0}, fits={1: False}))
    assert [r["nodes"] for r in weak.rows] == [2, 4] and weak.baseline_nodes == 2
    assert weak.rows[1]["efficiency"] == pytest.approx(0.9)
    assert weak_scaling(table({1: 40.0}, fits={1: False})).rows == ()


def test_without_a_global_batch_there_is_no_time_per_step():
    weak = weak_scaling(table({2: 100.0, 4: 190.0}, global_batch=None))
    assert {c.key for c in weak_columns(weak)}.isdisjoint({"global_batch", "seconds_per_step"})
    assert all(r["seconds_per_step"] is None for r in weak.rows)


def test_the_planners_own_model_gives_weak_efficiency_equal_to_strong(catalog):
    strong = strong_scaling(PlanRequest(params=[7e9], tokens=1.4e11, cluster="juwels-booster"), catalog, [2, 4, 8, 16], global_batch=4e6)
    weak = weak_scaling(strong)
    assert [r["efficiency"] for r in weak.rows] == pytest.approx([r["efficiency"] for r in strong.rows])
    assert weak.rows[-1]["efficiency"] < 1.0  # the MFU profile falls with the GPU count
    assert any("hpc-wiki.info/hpc/Scaling" in n for n in weak_notes(weak))


def test_planner_scaling_weak_shows_both_tables(capsys):
    args = ["scaling", "--params", "7e9", "--tokens", "1.4e11", "--cluster", "juwels-booster", "--nodes", "2,4,8",
            "--global-batch", "4M", "--weak"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "strong scaling" in out and "weak scaling" in out and "weak efficiency" in out and "tokens/s per node" in out
    code, out, err = run(args + ["--format", "json"], capsys)
    data = json.loads(out)
    assert [r["nodes"] for r in data["rows"]] == [2, 4, 8] and [r["nodes"] for r in data["weak"]["rows"]] == [2, 4, 8]
    code, out, err = run(args + ["--format", "csv"], capsys)
    assert [r["scaling"] for r in csv.DictReader(io.StringIO(out))] == ["strong"] * 3 + ["weak"] * 3
    code, out, err = run(args[:-1], capsys)  # without --weak: the strong table alone, as before
    assert "weak" not in out


def test_grant_outputs_carry_the_weak_table(capsys):
    code, out, err = run(["grant", str(JUWELS), "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    (weak,) = data["weak_scaling"]
    assert weak["experiment"] == "7B reference run" and [r["nodes"] for r in weak["rows"]] == [r["nodes"] for r in data["scaling"][0]["rows"]]
    code, out, err = run(["grant", str(JUWELS), "--format", "csv"], capsys)
    sections = [r["section"] for r in csv.DictReader(io.StringIO(out))]
    assert sections.count("weak-scaling") == len(weak["rows"])
    code, out, err = run(["grant", str(JUWELS), "--format", "latex"], capsys)
    assert "Weak scaling (predicted, fixed work per node): 7B reference run" in out
