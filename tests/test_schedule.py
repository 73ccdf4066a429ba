"""The grant schedule (planner.grant.schedule) and the burn plan that follows it (planner.grant.burn):
runs at their nodes under the project's node cap, `after:` dependencies, month boundaries split
exactly; JSC's monthly quotas, OLCF's and ALCC's usage checkpoints simulated on the scheduled use."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.errors import PlannerError
from planner.grant.build import build, load_proposal
from planner.grant.programs import simulate_checkpoints
from planner.grant.proposal import Proposal, Where
from planner.grant.render import render
from planner.grant.schedule import month_hours

ROOT = Path(__file__).resolve().parents[1]
JUWELS, LUMI = ROOT / "examples" / "grants" / "juwels-booster.yaml", ROOT / "examples" / "grants" / "lumi-g.yaml"
HEAD = "title: t\nprogram: {program}\ncluster: {cluster}\nstart: {start}\nmonths: 12\ncontingency: 0.1\n{extra}experiments:\n"


def grant(tmp_path, catalog, experiments, program="custom", cluster="juwels-booster", start="2027-04", extra=""):
    path = tmp_path / "p.yaml"
    path.write_text(HEAD.format(program=program, cluster=cluster, start=start, extra=extra) + experiments)
    p, where, base = load_proposal(path)
    return build(p, where, base, catalog)


def test_calendar_months_have_their_hours():
    assert month_hours(2027, 4, 3) == [720.0, 744.0, 720.0]
    assert month_hours(2028, 2, 1) == [696.0]  # a leap year's February


def test_a_node_cap_serialises_two_experiments(tmp_path, catalog):
    two = "  - {name: a, nodes: 8, wall_hours: 10}\n  - {name: b, nodes: 8, wall_hours: 5}\n"
    tight = grant(tmp_path, catalog, two, extra="max_nodes_concurrent: 8\n").schedule
    a, b = tight.experiment("a"), tight.experiment("b")
    assert (a.start_hours, a.end_hours, b.start_hours, b.end_hours) == (0, 10, 10, 15)
    assert tight.peak_nodes == 8 and tight.makespan_hours == 15
    wide = grant(tmp_path, catalog, two, extra="max_nodes_concurrent: 16\n").schedule
    assert wide.experiment("b").start_hours == 0 and wide.peak_nodes == 16 and wide.makespan_hours == 10
    default = grant(tmp_path, catalog, two).schedule  # the largest run's nodes: one at a time
    assert default.concurrency == 8 and default.experiment("b").start_hours == 10


def test_runs_of_one_experiment_share_the_cap(tmp_path, catalog):
    s = grant(tmp_path, catalog, "  - {name: a, nodes: 2, wall_hours: 3, runs: 5}\n", extra="max_nodes_concurrent: 4\n").schedule
    assert [(r.start_hours, r.end_hours) for r in s.experiment("a").runs] == [(0, 3), (0, 3), (3, 6), (3, 6), (6, 9)]


def test_a_later_small_job_fills_a_gap_without_delaying_an_earlier_one(tmp_path, catalog):
    jobs = ("  - {name: a, nodes: 6, wall_hours: 10}\n  - {name: b, nodes: 8, wall_hours: 10}\n"
            "  - {name: c, nodes: 2, wall_hours: 10}\n")
    s = grant(tmp_path, catalog, jobs, extra="max_nodes_concurrent: 8\n").schedule
    assert [s.experiment(n).start_hours for n in "abc"] == [0, 10, 0]  # c runs beside a; b keeps its start


def test_after_orders_experiments_and_training_waits_for_earlier_sweeps(tmp_path, catalog):
    jobs = ("  - {name: first, nodes: 1, wall_hours: 4, after: [second]}\n  - {name: second, nodes: 1, wall_hours: 6}\n"
            "  - {name: free, nodes: 1, wall_hours: 1, after: []}\n")
    s = grant(tmp_path, catalog, jobs, extra="max_nodes_concurrent: 4\n").schedule
    assert s.experiment("second").start_hours == 0 and s.experiment("first").start_hours == 6
    assert s.experiment("first").after == ("second",) and s.experiment("free").start_hours == 0
    juwels = grant_file(JUWELS, catalog).schedule
    sweep, ref = juwels.experiment("IsoFLOP sweep"), juwels.experiment("7B reference run")
    assert ref.after == ("IsoFLOP sweep",)  # no after: given: a training run waits for the sweeps before it
    assert ref.start_hours >= sweep.end_hours


def grant_file(path, catalog):
    p, where, base = load_proposal(path)
    return build(p, where, base, catalog)


@pytest.mark.parametrize("after, message", [
    ("[nobody]", "p.yaml:8: experiments.0.after: 'nobody' is not another experiment of the proposal \\(b\\)"),
    ("[a]", "p.yaml:8: experiments.0.after: 'a' is not another experiment"),
])
def test_after_names_other_experiments(tmp_path, catalog, after, message):
    with pytest.raises(PlannerError, match=message):
        grant(tmp_path, catalog, f"  - {{name: a, nodes: 1, wall_hours: 1, after: {after}}}\n"
              "  - {name: b, nodes: 1, wall_hours: 1}\n")


def test_a_circle_of_dependencies_is_an_error(tmp_path, catalog):
    with pytest.raises(PlannerError, match="go round in a circle: a → b → a"):
        grant(tmp_path, catalog, "  - {name: a, nodes: 1, wall_hours: 1, after: [b]}\n"
              "  - {name: b, nodes: 1, wall_hours: 1, after: [a]}\n")


def test_a_run_wider_than_the_cap_can_never_run(tmp_path, catalog):
    with pytest.raises(PlannerError, match="16 nodes per run exceed the 8 nodes the project runs at once") as e:
        grant(tmp_path, catalog, "  - {name: a, nodes: 8, wall_hours: 1}\n  - {name: b, nodes: 16, wall_hours: 1}\n",
              extra="max_nodes_concurrent: 8\n")
    assert e.value.field == ("experiments", 1, "nodes") and e.value.where.endswith(":10")


def test_month_boundaries_split_exactly_and_the_burn_plan_follows(tmp_path, catalog):
    r = grant(tmp_path, catalog, "  - {name: a, nodes: 3, wall_hours: 740}\n")  # April has 720 hours
    by = r.schedule.experiment("a").node_hours_by_month
    assert by[:3] == (3 * 720.0, 3 * 20.0, 0.0)
    months = r.burn.months
    assert sum(m.node_hours for m in months) == pytest.approx(r.total.node_hours, rel=1e-12)  # contingency included
    assert months[0].node_hours == pytest.approx(1.1 * 2160) and months[1].node_hours == pytest.approx(1.1 * 60)
    assert [m.by_experiment["a"] for m in months[:2]] == [2160 * 48, 60 * 48]
    assert months[0].contingency + months[1].contingency == r.contingency_row.request == 10_656  # 10% of 106,560
    assert sum(m.request for m in months) == r.total.request


def test_a_single_104_hour_run_lands_in_one_month(tmp_path, catalog):
    r = grant(tmp_path, catalog, "  - {name: run, nodes: 16, wall_hours: 104}\n")
    assert [m.request > 0 for m in r.burn.months] == [True] + [False] * 11
    assert r.burn.months[0].request == r.total.request
    assert r.schedule.experiment("run").end == "2027-04-05 08:00"


def test_start_month_is_the_earliest_start_and_months_the_deadline(tmp_path, catalog):
    r = grant(tmp_path, catalog, "  - {name: a, nodes: 1, wall_hours: 800, start_month: 11, months: 1}\n")
    a = r.schedule.experiment("a")
    assert a.start == "2028-02-01 00:00" and a.overrun_hours == pytest.approx(800 - 696)
    w = next(w.message for w in r.warnings if w.topic == "schedule")
    assert "'a' ends 2028-03-05 08:00, 4.3 days after its months (2028-02 – 2028-02)" in w
    late = grant(tmp_path, catalog, "  - {name: a, nodes: 1, wall_hours: 800, start_month: 12}\n")
    assert late.schedule.experiment("a").node_hours_by_month[-1] == 800  # past the end: counted in the last month
    w = next(w.message for w in late.warnings if w.topic == "schedule")
    assert "after the allocation" in w and "counted in its last month" in w


def test_the_juwels_example_schedule_and_jsc_forfeiture(catalog):
    """The JUWELS example at 256 nodes at once: sweep in April 2027, 7B run in July, openCLIP and the
    evaluation in October; JSC's monthly quota forfeits what the idle months leave (2.44 quotas)."""
    r = grant_file(JUWELS, catalog)
    s, sim = r.schedule, r.burn.simulation
    assert [e.months_active for e in s.experiments] == [(1,), (4,), (7,), (7,)]
    assert s.experiment("evaluation").start_hours == s.experiment("openCLIP ViT-L/14").end_hours
    assert s.peak_nodes == 256 and s.concurrency == 256
    quota = r.total.request / 12
    use = [m.request for m in r.burn.months]
    assert [k + 1 for k, u in enumerate(use) if u] == [1, 4, 7]
    assert sim.quota == pytest.approx(quota)
    # month 1 overdraws by use - quota, month 2's quota repays it and the rest is lost at the end of month 3
    assert sim.months[2].forfeited == pytest.approx(2 * quota - use[0])
    assert sim.months[4].forfeited == pytest.approx(2 * quota - use[3])  # the same after the 7B run
    assert sim.months[5].forfeited == pytest.approx(quota)  # August's quota, unused by September
    assert sim.forfeited == pytest.approx(523_605, abs=1) and sim.forfeited / r.total.request == pytest.approx(0.2032, abs=1e-4)
    assert sim.low_priority_months == (7, 8, 9, 10, 11, 12)  # October's 9.4 quotas are repaid beyond the end
    assert any("forfeits ≈ 523,605 units (20.3%)" in w.message for w in r.warnings)


def test_the_lumi_example_schedule(catalog):
    r = grant_file(LUMI, catalog)
    s = r.schedule
    assert [e.months_active for e in s.experiments] == [(1,), (6,), (9,), (9,)] and r.burn.simulation is None
    assert [p.request > 0 for p in r.burn.periods] == [True, True, True, False]


OLCF = [  # used per month from January, allocation 1000: (forfeited at 1 May, forfeited at 1 September)
    ([50.0] + [0.0] * 11, (285.0, 498.75)),  # 5% used by May: up to 30% of the 950 left; by September: 75% of 665
    ([120.0] + [0.0] * 11, (132.0, 374.0)),  # 12%: up to 15% of 880; then 12% < 33%: 50% of 748
    ([200.0] + [0.0] * 11, (0.0, 400.0)),  # 20%: no May tier; < 33% by September: 50% of 800
    ([400.0] + [0.0] * 11, (0.0, 198.0)),  # 40%: < 50%: 33% of 600
    ([500.0] + [0.0] * 11, (0.0, 0.0)),
    ([0.0] * 12, (300.0, 525.0)),  # nothing used: 30% of 1000, then 75% of 700
]


@pytest.mark.parametrize("use, taken", OLCF)
def test_olcf_underuse_tiers(catalog, use, taken):
    (rule,) = catalog.get("programs", "incite").forfeiture
    labels = [f"2027-{k + 1:02d}" for k in range(12)]
    sim = simulate_checkpoints(use, 1000.0, labels, rule)
    assert [(c.label, c.forfeited) for c in sim.checkpoints] == [("2027-05", pytest.approx(taken[0])),
                                                                ("2027-09", pytest.approx(taken[1]))]
    assert sim.forfeited == pytest.approx(sum(taken)) and "maximum" in sim.label and "up to" in sim.note


ALCC = [  # used per month from July, allocation 1000: (forfeited at 1 November, at 1 March)
    ([0.0] * 12, (250.0, 375.0)),  # < 10%: 25% of 1000; < 25%: 50% of 750
    ([150.0] + [0.0] * 11, (127.5, 361.25)),  # 10-25%: 15% of 850; still < 25%: 50% of 722.5
    ([300.0] + [0.0] * 11, (0.0, 175.0)),  # 25-50%: 25% of 700
    ([500.0] + [0.0] * 11, (0.0, 0.0)),
]


@pytest.mark.parametrize("use, taken", ALCC)
def test_alcc_reduction_tiers(catalog, use, taken):
    (rule,) = catalog.get("programs", "alcc").forfeiture
    labels = [f"{2027 + (6 + k) // 12}-{(6 + k) % 12 + 1:02d}" for k in range(12)]
    sim = simulate_checkpoints(use, 1000.0, labels, rule)
    assert [(c.label, c.forfeited) for c in sim.checkpoints] == [("2027-11", pytest.approx(taken[0])),
                                                                ("2028-03", pytest.approx(taken[1]))]
    assert "maximum" not in sim.label


def test_checkpoints_flag_months_that_need_what_was_taken(catalog):
    (rule,) = catalog.get("programs", "incite").forfeiture
    sim = simulate_checkpoints([0.0] * 11 + [1000.0], 1000.0, [f"2027-{k + 1:02d}" for k in range(12)], rule)
    assert sim.forfeited == pytest.approx(825.0) and sim.low_priority_months == (12,)


def test_an_incite_schedule_is_checked_on_1_may_and_1_september(tmp_path, catalog):
    r = grant(tmp_path, catalog, "  - {name: late, nodes: 64, wall_hours: 100, start_month: 10}\n", program="incite",
              cluster="frontier", start="2027-01")
    sim = r.burn.simulation
    assert sim.rule == "usage-checkpoints" and [c.label for c in sim.checkpoints] == ["2027-05", "2027-09"]
    assert sim.forfeited == pytest.approx(0.825 * r.total.request)  # nothing used by either date
    assert any("usage checkpoints take" in w.message and "up to" in w.message for w in r.warnings)
    assert "forfeited (usage checkpoints, maximum)" in render(r, "markdown")
    july = grant(tmp_path, catalog, "  - {name: a, nodes: 64, wall_hours: 100}\n", program="incite", cluster="frontier")
    assert any("allocation year starts in month 1" in w.message for w in july.warnings)


def test_the_gantt_table_is_in_every_format(tmp_path, catalog):
    r = grant(tmp_path, catalog, "  - {name: a, nodes: 2, wall_hours: 740}\n  - {name: b, nodes: 1, wall_hours: 5, "
              "after: [a], start_month: 3}\n")
    md = render(r, "markdown")
    assert "## Schedule" in md and "| a " in md and "█▄··········" in md and "··█·········" in md
    assert "Schedule: node-hours of each experiment by period" in render(r, "latex")
    csv_text = render(r, "csv")
    assert "schedule,b," in csv_text.replace('"', "")
    assert '"schedule"' in render(r, "json")


# --- properties -------------------------------------------------------------------------------------

JOB = st.tuples(st.integers(1, 8), st.floats(0.5, 900.0), st.integers(1, 3), st.integers(1, 12))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jobs=st.lists(JOB, min_size=1, max_size=4), cap=st.integers(8, 20), deps=st.lists(st.booleans(), min_size=4, max_size=4))
def test_schedule_properties(catalog, jobs, cap, deps):
    """Totals kept, no month above the cap × its hours, dependencies and start months respected."""
    experiments = [{"name": f"e{j}", "nodes": n, "wall_hours": h, "runs": runs, "start_month": m,
                    "after": [f"e{j - 1}"] if j and deps[j] else []} for j, (n, h, runs, m) in enumerate(jobs)]
    p = Proposal.model_validate({"title": "t", "program": "gcs", "cluster": "juwels-booster", "start": "2027-11",
                                 "max_nodes_concurrent": cap, "experiments": experiments})
    r = build(p, Where("<p>", {}), Path("."), catalog)
    s = r.schedule
    assert sum(m.node_hours for m in r.burn.months) == pytest.approx(r.total.node_hours, rel=1e-9)
    assert sum(m.request for m in r.burn.months) == r.total.request
    edges = [0.0]
    for h in s.month_hours:
        edges.append(edges[-1] + h)
    for k, h in enumerate(s.month_hours[:-1]):  # the last month also holds what runs past the end
        assert sum(e.node_hours_by_month[k] for e in s.experiments) <= cap * h * (1 + 1e-9)
    for e, (n, h, runs, m) in zip(s.experiments, jobs, strict=True):
        assert sum(e.node_hours_by_month) == pytest.approx(n * h * runs, rel=1e-9)
        assert e.start_hours >= edges[m - 1]
        for dep in e.after:
            assert e.start_hours >= s.experiment(dep).end_hours
    times = sorted({t for e in s.experiments for r in e.runs for t in (r.start_hours, r.end_hours)})
    for t in times:  # nodes in use at every start: never above the cap
        assert sum(r.nodes for e in s.experiments for r in e.runs if r.start_hours <= t < r.end_hours) <= cap


def test_schedule_and_burn_figures_are_deterministic_pngs(tmp_path, catalog):
    pytest.importorskip("matplotlib")
    from planner.report.grant_figures import plot_burn, plot_schedule

    r = grant_file(JUWELS, catalog)
    for draw in (plot_schedule, plot_burn):
        a, b = tmp_path / f"{draw.__name__}-a.png", tmp_path / f"{draw.__name__}-b.png"
        draw(r, a)
        draw(r, b)
        assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and a.read_bytes() == b.read_bytes()
        with pytest.raises(PlannerError):  # an existing file is not overwritten without force
            draw(r, a)
        draw(r, a, force=True)


def test_each_system_is_scheduled_on_its_own_and_errors_name_the_proposals_entry(tmp_path, catalog):
    jobs = ("  - {name: there, cluster: jupiter-booster, nodes: 32, wall_hours: 5}\n"
            "  - {name: a, nodes: 8, wall_hours: 1, after: [there]}\n  - {name: b, nodes: 16, wall_hours: 1}\n")
    with pytest.raises(PlannerError) as e:
        grant(tmp_path, catalog, jobs, program="gcs", extra="max_nodes_concurrent: 8\n")
    assert e.value.field == ("experiments", 2, "nodes")
    r = grant(tmp_path, catalog, jobs, program="gcs", extra="max_nodes_concurrent: 16\n")
    other, home = r.systems  # in the order the experiments name them
    assert (home.cluster.name, other.cluster.name) == ("juwels-booster", "jupiter-booster")
    assert home.schedule.experiment("a").after == () and home.schedule.experiment("a").start_hours == 0
    assert home.schedule.concurrency == 16 and other.schedule.concurrency == 32  # the cap is the proposal cluster's
