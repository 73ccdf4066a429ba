"""`planner usage` on the command line, from recorded sacct text (tests/data/sacct-usage): formats, the plan of a
sweep directory or a proposal, and one clear error line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import check_stderr, run

DATA = Path(__file__).parent / "data"
JUWELS = DATA / "sacct-usage" / "juwels-booster.txt"
LOCAL_SACCT = DATA / "sacct-usage" / "local-juwels.txt"
LOCAL = DATA / "catalog-local"
BASE = f"usage --account myproject --since 2026-10-01 --until 2026-11-30 --sacct-file {JUWELS}"


def ok(capsys, args) -> str:
    code, out, err = run(args, capsys)
    assert check_stderr(code, err) is None, err
    return out


def error(capsys, args) -> str:
    code, _, err = run(args, capsys)
    assert code == 2
    return check_stderr(code, err)


def test_table_has_a_row_per_month_and_the_summary(capsys):
    out = ok(capsys, f"{BASE} --cluster juwels-booster --allocation 100K")
    header, _, october, november = out.splitlines()[:4]
    assert header.split() == ["month", "jobs", "node-hours", "core-h", "cumulative", "core-h", "monthly", "quota",
                              "forfeited", "balance"]
    assert october.split()[:4] == ["2026-10", "3", "104", "4,992"]  # 374,400 node-seconds × 48 core-h / 3600
    assert november.split()[0] == "2026-11"
    assert "ElapsedRaw × AllocNodes summed = 2,327,105 node-seconds: 2,298,305 in the window + 28,800 outside" in out
    assert "1 still running (counted with the seconds elapsed so far)" in out
    assert "runs out at the rate since 2026-11-01T00:00:00: 2027-02-20" in out


def test_json_and_csv_keep_every_second(capsys):
    data = json.loads(ok(capsys, f"{BASE} --cluster juwels-booster --format json"))
    assert [m["node_seconds"] for m in data["months"]] == [374400, 1923905]
    assert data["summary"]["sacct_node_seconds"] == 2327105 and data["charging"]["per_node_hour"] == 48
    assert data["allocation"] is None and data["summary"]["runs_out"] is None
    rows = ok(capsys, f"{BASE} --cluster juwels-booster --format csv").splitlines()
    assert rows[0].startswith("month,jobs,running,node_seconds,billed_seconds,node_hours,units,cumulative")
    assert rows[1].startswith("2026-10,3,0,374400,374400,104.0,4992.0,4992.0")


def test_same_input_same_bytes_and_no_overwrite_without_force(capsys, tmp_path):
    args = f"{BASE} --cluster juwels-booster --allocation 100K --format json"
    assert ok(capsys, args) == ok(capsys, args)
    target = tmp_path / "usage.json"
    ok(capsys, f"{args} --out {target}")
    line = error(capsys, f"{args} --out {target}")
    assert "exists" in line and "--force" in line
    ok(capsys, f"{args} --out {target} --force")


@pytest.mark.parametrize("extra,expected", [
    ("--cluster juwels-booster --since 2026-13-01", "planner: error: --since: '2026-13-01' is not a date YYYY-MM-DD"),
    ("--cluster juwels-booster --until 30.11.2026", "planner: error: --until: '30.11.2026' is not a date YYYY-MM-DD"),
    ("", "planner: error: --cluster: needed: the cluster whose accounting the jobs ran under"),
    ("--cluster juwels-booster --months 6", "planner: error: --months: an allocation length needs the allocation's "
                                            "size (--allocation or a proposal)"),
])
def test_bad_input_is_one_line_naming_the_option(capsys, extra, expected):
    assert error(capsys, BASE.split() + extra.split()) == expected  # a repeated option: the last one counts


def test_malformed_sacct_text_is_one_line_naming_file_and_line(capsys, tmp_path):
    bad = tmp_path / "sacct.txt"
    bad.write_text(JUWELS.read_text().replace("|43200|4|", "|43200|four|"))
    line = error(capsys, f"usage --account myproject --since 2026-10-01 --cluster juwels-booster --sacct-file {bad}")
    assert line == f"planner: error: {bad}:2: AllocNodes: 'four' is not a whole number"


def test_without_sacct_the_error_says_to_record_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sacct on it
    line = error(capsys, "usage --account myproject --since 2026-10-01 --cluster juwels-booster")
    assert line == ("planner: error: sacct is not installed here; run sacct where it answers and give its output as "
                    "--sacct-file")


def test_a_sweep_directory_gives_the_cluster_the_plan_and_its_jobs(capsys, tmp_path):
    out = tmp_path / "sweep"
    ok(capsys, ["--catalog", str(LOCAL), "sweep", str(DATA / "sweeps" / "serial.yaml"), "--out", str(out)])
    (out / "submitted.tsv").write_text("array\tsegment\tjob_id\na00\t1\t1361\na01\t1\t1362\n")
    data = json.loads(ok(capsys, ["--catalog", str(LOCAL), "usage", "--account", "planner-ci", "--since", "2026-12-01",
                                  "--until", "2026-12-01", "--sweep", str(out), "--sacct-file", str(LOCAL_SACCT),
                                  "--format", "json"]))
    assert data["cluster"] == "local-juwels"  # from the spec.yaml the sweep keeps
    # 1361 is an array of two 1-node tasks (2 s each), 1362 one 2-node task (2 s); 1364 and 1365 are not the sweep's
    assert data["summary"]["sweep_node_seconds"] == 2 + 2 + 2 * 2
    assert data["summary"]["node_seconds"] == 2 * (2 + 2 + 2 * 2)
    manifest = (out / "manifest.csv").read_text().splitlines()
    column = manifest[0].split(",").index("node_hours")
    planned = sum(float(line.split(",")[column]) for line in manifest[1:])
    assert data["plan"]["node_hours"] == pytest.approx(planned) and data["plan"]["units"] == pytest.approx(planned * 48)
    assert data["plan"]["job_ids"] == ["1361", "1362"]


def test_a_proposal_gives_the_burn_plan_the_allocation_and_jsc_quotas(capsys, tmp_path):
    proposal = tmp_path / "proposal.yaml"
    proposal.write_text("title: t\nprogram: gcs\ncluster: juwels-booster\nstart: 2026-10\nmonths: 12\n"
                        "experiments:\n  - {name: evaluation, nodes: 4, wall_hours: 100, runs: 30}\n")
    grant = json.loads(ok(capsys, f"grant {proposal} --format json"))
    data = json.loads(ok(capsys, f"{BASE} --proposal {proposal} --format json"))
    assert data["cluster"] == "juwels-booster" and data["charging"]["unit"] == "core-h"
    assert data["allocation"]["total"] == grant["total"]["request"] and data["allocation"]["rule"] == "jsc-monthly"
    assert [m["planned"] for m in data["months"]] == [m["request"] for m in grant["burn"]["months"][:2]]
    assert data["months"][1]["planned_cumulative"] == sum(m["request"] for m in grant["burn"]["months"][:2])
    table = ok(capsys, f"{BASE} --proposal {proposal}")
    assert "planned cumulative" in table and "quota rule jsc-monthly" in table
    line = error(capsys, f"{BASE} --proposal {proposal} --sweep {tmp_path}")
    assert line == "planner: error: --proposal: give a sweep or a proposal, not both"


def test_incite_checkpoints_take_their_tiers_of_the_whole_allocation(capsys):
    """On Frontier the INCITE rule applies: nothing used by 1 May (< 10%) forfeits up to 30% of the remaining 20,000,
    and still nothing by 1 September forfeits 75% of the 14,000 left; there is no monthly quota to show."""
    code, out, err = run(f"usage --account myproject --since 2026-04-01 --until 2026-11-30 --cluster frontier "
                         f"--sacct-file {JUWELS} --allocation 20000 --format json", capsys)
    assert code == 0, err
    data = json.loads(out)
    assert {m["month"]: m["forfeited"] for m in data["months"] if m["forfeited"]} == {"2026-05": 6000.0, "2026-09": 10500.0}
    assert data["summary"]["forfeited_so_far"] == 16500.0 and all(m["quota"] is None for m in data["months"])
