"""`planner usage` as a library: sacct text parsed, seconds split into UTC months exactly (they add up to
sacct's ElapsedRaw × AllocNodes to the second), charged units, the rate and run-out day, and the JSC quota
rule of the grant code on the same monthly usage. sacct text: tests/data/sacct-usage (written by hand)."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog
from planner.errors import PlannerError
from planner.grant.programs import QUOTA_RULES, simulate_jsc
from planner.grant.units import conversion
from planner.slurm_io import ACCOUNT_FIELDS, JobRecord, gpus_of, parse_sacct, run_slurm, sacct_account
from planner.usage.burn import Allocation, burn, charging
from planner.usage.months import month_label, months_between, parse_day, split_by_month
from planner.usage.report import account_usage

DATA = Path(__file__).parent / "data" / "sacct-usage"
JUWELS = (DATA / "juwels-booster.txt").read_text()
LUMI = (DATA / "lumi-g.txt").read_text()
H = 3600


def utc(text: str) -> int:
    return calendar.timegm((int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13] or 0),
                            int(text[14:16] or 0), int(text[17:19] or 0)))


def job(k: str, start: int, end: int | None, elapsed: int, nodes: int, gpus: int | None) -> JobRecord:
    return JobRecord(job_id=k, job_id_raw=k, array_job_id=k, tasks=(), state="COMPLETED", elapsed_seconds=elapsed,
                     nodes=nodes, gpus=gpus, start=start, end=end, account="a", partition="booster", cluster="c")


def juwels_report(allocation=None, since="2026-10-01", until="2026-11-30", **kw):
    return account_usage(Catalog(), "myproject", since, until, cluster="juwels-booster", allocation=allocation,
                         sacct_text=("juwels-booster.txt", JUWELS), **kw)


# --- sacct text -------------------------------------------------------------------------------------


def test_recorded_sacct_text_becomes_jobs():
    jobs = parse_sacct(JUWELS, "juwels-booster.txt", ACCOUNT_FIELDS)
    assert len(jobs) == 10
    by_id = {j.job_id: j for j in jobs}
    task = by_id["9001010_2"]
    assert (task.job_id_raw, task.array_job_id, task.elapsed_seconds, task.nodes, task.gpus) == ("9001012", "9001010", 7197, 1, 4)
    assert task.start == utc("2026-11-05T12:00:01") and task.end == utc("2026-11-05T13:59:58")
    running = by_id["9001030"]
    assert running.running and running.end is None and running.node_seconds == 86400 * 16
    assert by_id["9001020"].start is None and by_id["9001020"].node_seconds == 0  # cancelled before it started
    assert by_id["9001040_[3-7%2]"].start is None  # a pending array


@pytest.mark.parametrize("line,problem", [
    ("1|1|a|p|COMPLETED|2026-11-01T00:00:00|2026-11-01T01:00:00|3600|1|node=1", "10 fields separated by '|', expected 11"),
    ("1|1|a|p|COMPLETED|2026-11-01T00:00:00|2026-11-01T01:00:00|1h|1|node=1|c", "ElapsedRaw: '1h' is not a whole number"),
    ("1|1|a|p|COMPLETED|2026-11-01T00:00:00|2026-11-01T01:00:00|3600|-1|node=1|c", "AllocNodes: '-1' is not a whole number"),
    ("1|1|a|p|COMPLETED|2026-11-01 00:00:00|2026-11-01T01:00:00|3600|1|node=1|c", "Start: '2026-11-01 00:00:00' is not a time"),
    ("1|1|a|p|COMPLETED|2026-02-30T00:00:00|2026-11-01T01:00:00|3600|1|node=1|c", "Start: '2026-02-30T00:00:00' is not a time"),
    ("1|1|a|p|COMPLETED|Unknown|Unknown|3600|1|node=1|c", "ElapsedRaw is 3600 s but the job has no Start"),
    ("1|1|a|p|COMPLETED|2026-11-01T02:00:00|2026-11-01T01:00:00|0|1|node=1|c", "End 2026-11-01T01:00:00 is before Start"),
    ("1|1|a|p|COMPLETED|2026-11-01T00:00:00|2026-11-01T01:00:00|3600|1|gres/gpu=four|c", "gres/gpu='four' is not a whole"),
    ("1|1|a|p|COMPLETED|2026-11-01T00:00:00|2026-11-01T01:00:00|3600|1|node|c", "AllocTRES: 'node' is not NAME=VALUE"),
    ("|1|a|p|COMPLETED|2026-11-01T00:00:00|2026-11-01T01:00:00|3600|1|node=1|c", "JobIDRaw: '' is not a job id"),
])
def test_a_malformed_sacct_line_is_one_error_naming_its_line(line, problem):
    good = JUWELS.splitlines()[0]
    with pytest.raises(PlannerError) as exc:
        parse_sacct(f"{good}\n\n{line}\n", "sacct.txt", ACCOUNT_FIELDS)
    assert str(exc.value).startswith("sacct.txt:3: ") and problem in str(exc.value), str(exc.value)


def test_gpus_come_from_the_untyped_gres_else_the_typed_ones():
    assert gpus_of("billing=192,cpu=192,gres/gpu=16,mem=2000G,node=4", "x") == 16
    assert gpus_of("gres/gpu=2,gres/gpu:a100=2,node=1", "x") == 2  # not counted twice
    assert gpus_of("gres/gpu:mi250=2,gres/gpu:mi300=1,node=1", "x") == 3
    assert gpus_of("cpu=4,node=1", "x") is None and gpus_of("", "x") is None  # unknown: billed as whole nodes


def test_sacct_is_called_once_through_the_runner_with_the_documented_fields():
    calls = []

    def recorded(argv):
        calls.append(list(argv))
        return JUWELS

    jobs = sacct_account("myproject", "2026-10-01T00:00:00", "2026-12-01T00:00:00", recorded)
    assert len(jobs) == 10
    assert calls == [["sacct", "-P", "-n", "-X", "-a", "-A", "myproject", "-S", "2026-10-01T00:00:00",
                      "-E", "2026-12-01T00:00:00", "-o", ",".join(ACCOUNT_FIELDS)]]


def test_the_runner_asks_for_utc_and_reports_a_failure_in_one_line(tmp_path, monkeypatch):
    for name in ("sacct", "sbatch"):
        (tmp_path / name).write_text('#!/bin/sh\necho "$TZ"\n[ -z "$FAIL" ] || { echo "$FAIL" >&2; echo; exit 1; }\n')
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("TZ", "Europe/Berlin")
    assert run_slurm(["sacct"]) == "UTC\n"  # sacct prints its times in the zone of TZ
    assert run_slurm(["sbatch"]) == "Europe/Berlin\n"  # a job inherits the submitter's environment, zone included
    monkeypatch.setenv("FAIL", "Slurm accounting storage is disabled")
    with pytest.raises(PlannerError) as exc:
        run_slurm(["sacct"])
    assert exc.value.message == "sacct failed (exit 1): Slurm accounting storage is disabled"


# --- months ----------------------------------------------------------------------------------------


def test_a_job_across_a_month_boundary_is_split_by_its_seconds_in_each_month():
    # 9001002: 8 nodes from 31 Oct 18:00 for 24 h: 6 h in October, 18 h in November
    assert split_by_month(utc("2026-10-31T18:00:00"), 86400, 0, 2**40) == {(2026, 10): 6 * H, (2026, 11): 18 * H}
    # a window cuts it: only what falls inside counts
    assert split_by_month(utc("2026-10-31T18:00:00"), 86400, utc("2026-11-01T06:00:00"), 2**40) == {(2026, 11): 12 * H}
    # a year's end and a leap February
    assert split_by_month(utc("2027-12-31T23:00:00"), 7200, 0, 2**40) == {(2027, 12): H, (2028, 1): H}
    assert split_by_month(utc("2028-02-01T00:00:00"), 29 * 86400 + 1, 0, 2**40) == {(2028, 2): 29 * 86400, (2028, 3): 1}


def test_the_recorded_months_hold_exactly_the_hand_counted_node_seconds():
    report = juwels_report()
    october = 4 * H * 2 + 12 * H * 4 + 6 * H * 8  # 9000990's last 4 h, 9001001, 9001002's first 6 h
    november = 18 * H * 8 + 7200 + 7200 + 7197 + 754 * 2 + 86400 * 16  # ..., the array, the failure, the running job
    assert [(m.month, m.node_seconds) for m in report.months] == [("2026-10", october), ("2026-11", november)]
    assert [m.jobs for m in report.months] == [3, 6] and [m.running for m in report.months] == [0, 1]
    s = report.summary
    assert s.outside_node_seconds == 4 * H * 2  # 9000990 began before --since
    assert s.sacct_node_seconds == sum(j.elapsed_seconds * j.nodes for j in parse_sacct(JUWELS, "x", ACCOUNT_FIELDS))
    assert s.node_seconds + s.outside_node_seconds == s.sacct_node_seconds
    # JUWELS Booster charges 48 core-h per node-hour (catalog accounting)
    assert report.charging.unit == "core-h" and report.months[0].units == pytest.approx(october / H * 48)
    assert s.used == pytest.approx((october + november) / H * 48)


jobs_strategy = st.lists(st.tuples(st.integers(utc("2025-01-01T00:00:00"), utc("2027-12-31T00:00:00")),
                                   st.integers(0, 120 * 86400), st.integers(0, 64)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(jobs=jobs_strategy, lo=st.integers(utc("2024-06-01T00:00:00"), utc("2028-06-01T00:00:00")),
       length=st.integers(1, 4 * 365 * 86400))
def test_months_add_up_to_elapsed_times_nodes_to_the_second(jobs, lo, length):
    listed = [job(str(k), start, start + elapsed, elapsed, nodes, None)
              for k, (start, elapsed, nodes) in enumerate(jobs)]
    node_h = conversion("node-h", Catalog().cluster("perlmutter-gpu"), Catalog())
    everything = burn(listed, charging(Catalog().cluster("perlmutter-gpu"), node_h), "a", 0, 2**35)
    assert sum(m.node_seconds for m in everything.months) == sum(e * n for _, e, n in jobs)
    window = burn(listed, charging(Catalog().cluster("perlmutter-gpu"), node_h), "a", lo, lo + length)
    inside = sum(max(0, min(s + e, lo + length) - max(s, lo)) * n for s, e, n in jobs)
    assert sum(m.node_seconds for m in window.months) == window.summary.node_seconds == inside
    assert window.summary.node_seconds + window.summary.outside_node_seconds == sum(e * n for _, e, n in jobs)
    assert [m.month for m in window.months] == [month_label(*ym) for ym in months_between(lo, lo + length)]
    for m in window.months:  # no month holds more than its own length on every job's nodes
        y, mo = int(m.month[:4]), int(m.month[5:])
        assert m.node_seconds <= calendar.monthrange(y, mo)[1] * 86400 * sum(n for _, _, n in jobs)


def test_gpu_charged_clusters_bill_the_gpus_allocated():
    report = account_usage(Catalog(), "project_465000001", "2026-11-01", "2026-11-30", cluster="lumi-g",
                           sacct_text=("lumi-g.txt", LUMI))
    # LUMI-G bills 4 GPU-h per node-hour of 8 Slurm GPUs: 0.5 per GPU-hour. 2 full nodes for 10 h (16 GPUs),
    # 2 GPUs (typed gres) for 3 h, then 1 GPU for the hour before midnight of a job that ran on into December
    assert report.charging.by == "gpu"
    assert report.months[0].billed_seconds == 16 * 10 * H + 2 * 3 * H + 1 * H
    assert report.summary.used == pytest.approx((160 + 6 + 1) * 0.5)
    assert report.summary.outside_node_seconds == H  # the hour in December


def test_bad_dates_and_an_empty_window_name_their_field():
    for since, until, field in [("2026-13-01", None, "since"), ("1 Nov 2026", None, "since"),
                                ("2026-11-01", "2026-11-31", "until"), ("2026-11-02", "2026-10-30", "until")]:
        with pytest.raises(PlannerError) as exc:
            juwels_report(since=since, until=until)
        assert exc.value.field == (field,), (since, until, exc.value)
    assert parse_day("2026-11-01", "since") == utc("2026-11-01T00:00:00")


# --- rate, run-out day, quota ----------------------------------------------------------------------


def test_rate_over_the_last_30_days_and_the_day_the_allocation_runs_out():
    report = juwels_report(allocation=100_000)
    s = report.summary
    november_core_h = report.months[1].units
    assert s.rate_from == "2026-11-01T00:00:00"  # 30 days before the end of 30 November
    assert s.rate_per_day == pytest.approx(november_core_h / 30)
    assert s.remaining == pytest.approx(100_000 - s.used)  # nothing forfeited yet
    days = s.remaining / s.rate_per_day
    assert s.runs_out == (calendar.datetime.datetime(2026, 12, 1) + calendar.datetime.timedelta(days=days)).strftime("%Y-%m-%d")
    assert juwels_report(allocation=10_000).summary.runs_out == "exhausted"
    assert juwels_report(allocation=1e9).summary.runs_out is None  # not at this rate within 12 months


def test_jsc_forfeiture_is_the_grant_quota_simulation_on_the_same_monthly_usage():
    # quota 12,000 core-h over 12 months (1,000 a month) from October; October used 4,992 core-h, November 25,652
    report = juwels_report(allocation=12_000)
    assert report.allocation.rule == "jsc-monthly" and report.allocation.months == 12  # gcs: JSC's rule names JUWELS
    used = [m.units for m in report.months]
    expected = simulate_jsc(used + [0.0], 3 * 1000.0)  # the 3 months so far (December in progress, nothing used yet)
    assert [(m.quota, m.forfeited, m.balance) for m in report.months] == [
        (1000.0, q.forfeited, q.balance) for q in expected.months[:2]]
    assert report.summary.at_risk == expected.months[2].forfeited and report.summary.at_risk_on == "2027-01-01"


def test_unused_hours_from_the_month_before_last_are_forfeited():
    hours = [job("1", utc("2026-01-10T00:00:00"), None, 10 * H, 1, 4)]
    juwels = Catalog().cluster("juwels-booster")
    charge = charging(juwels, conversion("cluster", juwels, Catalog()))
    alloc = Allocation(total=12 * 1000.0, start="2026-01", months=12, rule="jsc-monthly", given_by="given")
    report = burn(hours, charge, "a", utc("2026-01-01T00:00:00"), utc("2026-03-15T00:00:00"), alloc)
    # January uses 480 of its 1,000: 520 carry into February, which uses none: forfeited at February's end.
    # February's own 1,000 carry into March, which has used none by the 15th: at risk on 1 April.
    assert [(m.month, m.units, m.forfeited, m.balance) for m in report.months] == [
        ("2026-01", 480.0, 0.0, 520.0), ("2026-02", 0.0, 520.0, 1000.0), ("2026-03", 0.0, 1000.0, 1000.0)]
    s = report.summary
    assert (s.forfeited_so_far, s.at_risk, s.at_risk_on) == (520.0, 1000.0, "2026-04-01")
    assert s.remaining == 12_000 - 480 - 520
    assert QUOTA_RULES["jsc-monthly"] is simulate_jsc  # the one quota model, shared with `planner grant`


def test_real_sacct_output_of_the_local_cluster_sums_to_the_second():
    # recorded from scripts/local-slurm.sh's cluster (README there): 42 allocations of two accounts
    text = (DATA / "local-juwels.txt").read_text()
    report = account_usage(Catalog(search_path_local()), "root", "2026-12-01", "2026-12-01", cluster="local-juwels",
                           sacct_text=("local-juwels.txt", text))
    mine = [line.split("|") for line in text.splitlines() if line.split("|")[2] == "root"]
    assert report.summary.jobs == len(mine) == 36
    assert report.summary.sacct_node_seconds == report.summary.node_seconds == sum(int(r[7]) * int(r[8]) for r in mine)
    assert report.months[0].month == "2026-12" and report.summary.used == pytest.approx(report.summary.node_seconds / H * 48)
    assert [str(w) for w in report.warnings] == ["6 job(s) of other accounts in local-juwels.txt left out"]


def search_path_local():
    from planner.catalog import search_path

    return search_path((str(Path(__file__).parent / "data" / "catalog-local"),))


def test_a_live_query_ends_now_even_when_until_is_later():
    asked = []

    def recorded(argv):
        asked.append(argv)
        return JUWELS

    now = utc("2026-11-30T12:00:00")
    report = account_usage(Catalog(), "myproject", "2026-10-01", "2027-09-30", cluster="juwels-booster",
                           allocation=100_000, runner=recorded, now=now)
    assert asked[0][asked[0].index("-E") + 1] == "2026-11-30T12:00:00" and report.until == "2026-11-30T12:00:00"
    assert report.summary.rate_from == "2026-10-31T12:00:00"  # 30 days before now, not before 30 September 2027
    assert report.summary.at_risk_on == "2026-12-01"  # November is the month in progress
    with pytest.raises(PlannerError) as exc:
        account_usage(Catalog(), "myproject", "2026-12-01", None, cluster="juwels-booster", runner=recorded, now=now)
    assert exc.value.field == ("since",) and "has not begun yet" in str(exc.value)


def test_a_directory_without_a_manifest_is_not_a_sweep(tmp_path):
    with pytest.raises(PlannerError) as exc:
        juwels_report(sweep=tmp_path)
    assert exc.value.field == ("sweep",) and "no manifest.csv here" in str(exc.value)


def test_an_allocation_yet_to_start_runs_out_counted_from_its_start():
    one = job("1", utc("2026-11-10T00:00:00"), None, 10 * H, 1, 4)
    juwels = Catalog().cluster("juwels-booster")
    charge = charging(juwels, conversion("cluster", juwels, Catalog()))
    alloc = Allocation(total=1600.0, start="2027-01", months=12, rule="jsc-monthly", given_by="given")
    report = burn([one], charge, "a", utc("2026-11-01T00:00:00"), utc("2026-12-01T00:00:00"), alloc)
    s = report.summary
    assert s.rate_per_day == pytest.approx(480 / 30) and s.used_in_allocation == 0
    assert s.runs_out == "2027-04-11"  # 1,600 core-h at 16 a day: 100 days from 1 January 2027
    assert s.forfeited_so_far == 0 and s.at_risk is None and all(m.quota is None for m in report.months)
