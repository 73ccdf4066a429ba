"""`nodes: auto` rounds each run's nodes up to a node ladder so that runs share job arrays
(planner.sweep.ladder), and says what the rounding costs against the un-rounded design."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from cli_helpers import check_stderr, run
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import PlannerError
from planner.sweep.design import design, load_spec
from planner.sweep.ladder import rung_for, rungs

# 15 runs (3 budgets × 5 sizes) on JUPITER Booster, each given the fewest nodes that finish it in 20 h:
# un-rounded, every run has a node count of its own (46, 48, 50, ... 508) and so an array of its own
AUTO15 = """\
name: auto15
cluster: jupiter-booster
law: chinchilla-approach3
nodes: auto
target_hours: 20
max_concurrent: 4
command: srun python train.py --params {params} --tokens {tokens}
sweep: {kind: isoflop, budgets: [3e21, 1e22, 3e22], points: 5, span: 4}
"""


def designed(tmp_path: Path, catalog, extra: str = "", base: str = AUTO15):
    path = tmp_path / "spec.yaml"
    path.write_text(base + textwrap.dedent(extra))
    spec, src = load_spec(path)
    return design(spec, src, catalog, tmp_path / "out")


# runs short enough that rounding their nodes up moves some to another --time: an array's runs share its longest
SHORT = AUTO15.replace("target_hours: 20", "target_hours: 4").replace("[3e21, 1e22, 3e22]", "[1e21, 1e22, 1e23]")


def reserved(arrays) -> float:
    return sum(len(a.runs) * a.nodes * a.segments * a.time_minutes / 60.0 for a in arrays)


def test_fifteen_auto_runs_land_in_at_most_four_arrays(tmp_path, catalog):
    unrounded = designed(tmp_path, catalog, "node_ladder: none\n")
    assert len(unrounded.arrays) == 15 and len({r.nodes for r in unrounded.runs}) == 15  # the issue: one array per run
    sw = designed(tmp_path, catalog)
    assert len(sw.runs) == 15 and len(sw.arrays) <= 4
    assert sorted({a.nodes for a in sw.arrays}) == [64, 256, 512]
    for a in sw.arrays:  # an array's runs share nodes, --time and segments, and the manifest says so
        assert {(r.nodes, r.time_minutes, r.segments) for r in a.runs} == {(a.nodes, a.time_minutes, a.segments)}
    before = {r.run_id: r for r in unrounded.runs}
    for r in sw.runs:  # a rung is at least what the run needed, and a power of two
        assert r.nodes >= before[r.run_id].nodes and r.nodes & (r.nodes - 1) == 0
        assert r.est_hours <= 20
    assert sw.ladder is not None and sw.ladder[1].unrounded_arrays == 15 and sw.ladder[1].rounded == 15


@pytest.mark.parametrize("spec", [AUTO15, SHORT])
def test_the_ladder_cost_is_the_difference_of_the_two_designs(tmp_path, catalog, spec):
    """Independently: design the same spec without the ladder, and subtract (charged node- and GPU-hours
    from hardware_costs; reserved = runs × nodes × segments × --time) array by array and in total."""
    sw = designed(tmp_path, catalog, base=spec)
    unrounded = designed(tmp_path, catalog, "node_ladder: none\n", base=spec)
    base = {r.run_id: r for r in unrounded.runs}
    per_array, total = sw.ladder
    for a, cost in zip(sw.arrays, per_array, strict=True):
        assert cost.array == a.id and cost.runs == len(a.runs)
        assert cost.node_hours == pytest.approx(sum(r.node_hours - base[r.run_id].node_hours for r in a.runs), rel=1e-12)
        assert cost.gpu_hours == pytest.approx(sum(r.gpu_hours - base[r.run_id].gpu_hours for r in a.runs), rel=1e-12)
        held = sum(base[r.run_id].nodes * base[r.run_id].segments * base[r.run_id].time_minutes / 60 for r in a.runs)
        assert cost.reserved_node_hours == pytest.approx(len(a.runs) * a.nodes * a.segments * a.time_minutes / 60 - held)
    assert total.node_hours == pytest.approx(sum(r.node_hours for r in sw.runs) - sum(r.node_hours for r in unrounded.runs))
    assert total.reserved_node_hours == pytest.approx(reserved(sw.arrays) - reserved(unrounded.arrays))
    # more nodes finish sooner, but MFU falls with the GPU count: the charge grows, a little
    assert 0 < total.node_hours < 0.01 * sum(r.node_hours for r in sw.runs)
    assert total.gpu_hours == pytest.approx(4 * total.node_hours)  # 4 GPUs per node


def test_runs_of_an_array_share_its_longest_time_limit(tmp_path, catalog):
    from planner.sweep.slurm import round_up_time

    sw = designed(tmp_path, catalog, base=SHORT)
    own = {r.run_id: round_up_time(r.est_hours * 1.2 * 60, None) for r in sw.runs}  # each run's --time on its rung
    assert all(r.segments == 1 for r in sw.runs)
    assert any(len({own[r.run_id] for r in a.runs}) > 1 for a in sw.arrays)  # without sharing, more arrays
    for a in sw.arrays:
        assert a.time_minutes == max(own[r.run_id] for r in a.runs)
    assert len(sw.arrays) < len({(r.nodes, own[r.run_id]) for r in sw.runs})


def test_summary_shows_the_ladder_and_its_cost(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(AUTO15)
    code, out, err = run(["sweep", str(spec), "--out", str(tmp_path / "o"), "--format", "json"], capsys)
    assert check_stderr(code, err) is None
    assert "node ladder: 15 of 15 runs rounded up to 3 node count(s) (64, 256, 512): 3 arrays instead of 15; " in err
    assert "limits: catalog (jupiter-booster partition booster: 5938 nodes, 24 h;" in err
    data = json.loads(out)
    assert data["node_ladder"]["total"]["unrounded_arrays"] == 15 and data["limits"]["source"] == "catalog"
    assert data["total"]["ladder_node_hours"] == pytest.approx(sum(a["ladder_node_hours"] for a in data["arrays"]))
    code, out, err = run(["sweep", str(spec), "--out", str(tmp_path / "o"), "--force"], capsys)
    assert code == 0 and "ladder: + node-hours" in out and "ladder: + reserved" in out
    assert "node ladder (powers-of-two):" in out


def test_a_ladder_of_your_own(tmp_path, catalog):
    unrounded = {r.run_id: r.nodes for r in designed(tmp_path, catalog, "node_ladder: none\n").runs}
    sw = designed(tmp_path, catalog, "node_ladder: [48, 96, 200, 600]\n")
    assert {r.nodes for r in sw.runs} == {48, 96, 200, 600}
    for r in sw.runs:  # the smallest rung that holds the run
        assert r.nodes == min(n for n in (48, 96, 200, 600) if n >= unrounded[r.run_id])
    assert len(sw.arrays) == 4


@pytest.mark.parametrize("extra, message", [
    ("node_ladder: [16, 32]\n", "needs 55 nodes, more than the largest rung (32)"),
    ("node_ladder: [64, 8192]\n", "rung 8192 is above the 5938-node limit"),
    ("node_ladder: fibonacci\n", "node_ladder"),
    ("node_ladder: []\n", "node_ladder"),
])
def test_bad_ladders_name_the_key(tmp_path, capsys, extra, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(AUTO15 + extra)
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "o")], capsys)
    line = check_stderr(code, err)
    assert code == 2 and message in line and "node_ladder" in line, err


def test_node_ladder_goes_with_nodes_auto(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(AUTO15.replace("nodes: auto\ntarget_hours: 20\n", "nodes: 8\n") + "node_ladder: [8, 16]\n")
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "node_ladder: goes with nodes: auto" in check_stderr(code, err)


@settings(max_examples=200, deadline=None)
@given(need=st.integers(1, 6000), cap=st.integers(1, 6000),
       listed=st.one_of(st.none(), st.lists(st.integers(1, 6000), min_size=1, max_size=8)))
def test_rungs_hold_the_run_and_stay_within_the_partition(need, cap, listed):
    need = min(need, cap)  # the design caps the un-rounded nodes at the partition's limit
    try:
        ladder = rungs("powers-of-two" if listed is None else listed, cap)
        assert ladder is not None
        rung = rung_for(need, ladder, "r")
    except PlannerError as exc:
        assert listed is not None and exc.field == ("node_ladder",)
        assert any(n > cap for n in listed) or max(listed) < need
        return
    assert need <= rung <= cap and rung in ladder
    assert all(n < need for n in ladder if n < rung)  # the smallest rung that holds it
    if listed is None:
        assert rung == cap or rung & (rung - 1) == 0
    else:
        assert rung in listed


@settings(max_examples=8, deadline=None)
@given(budget=st.sampled_from([1e20, 1e21, 3e21, 1e22, 3e22, 1e23]), target=st.sampled_from([6, 12, 20, 48]),
       cluster=st.sampled_from(["juwels-booster", "jupiter-booster"]))
def test_every_designed_run_sits_on_a_rung_that_holds_it(tmp_path_factory, catalog, budget, target, cluster):
    from planner.costing.layout import min_nodes

    tmp = tmp_path_factory.mktemp("ladder")
    spec = AUTO15.replace("jupiter-booster", cluster).replace("target_hours: 20", f"target_hours: {target}")
    spec = spec.replace("[3e21, 1e22, 3e22]", f"[{budget:g}]")
    sw = designed(tmp, catalog, base=spec)
    c = catalog.cluster(cluster)
    cap = int(c.nodes.value)
    for r in sw.runs:
        assert r.nodes >= min_nodes(float(r.params), c, catalog.accelerator(c.accelerator)).units
        assert r.nodes <= cap and (r.nodes == cap or r.nodes & (r.nodes - 1) == 0)
        assert r.est_hours <= target or r.nodes == cap


def test_runs_that_miss_target_hours_at_the_node_limit_are_warned(tmp_path, catalog):
    capped = designed(tmp_path, catalog, "partition: booster\n",
                      AUTO15.replace("jupiter-booster", "juwels-booster").replace("target_hours: 20", "target_hours: 0.5"))
    over = [r for r in capped.runs if r.est_hours > 0.5]
    assert over and all(r.nodes == capped.limits.max_nodes for r in over)
    (warning,) = [w for w in capped.warnings if "miss target_hours" in w.message]
    assert warning.message.startswith(f"{len(over)} run(s) miss target_hours 0.5 h at the {capped.limits.max_nodes}-node limit")
    met = designed(tmp_path, catalog)  # 20 h: every run finds its nodes
    assert not [w for w in met.warnings if "miss target_hours" in w.message]
