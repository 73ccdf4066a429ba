"""`planner status` without a cluster: the sacct and scontrol parsers and the state logic, fed with output
recorded on the local test cluster (tests/data/sacct/README.md says how), and --resubmit against a fake
sbatch. The same commands on a real cluster: tests/test_slurm_follow.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from cli_helpers import check_stderr, run
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import PlannerError
from planner.slurm_io import JOB_FIELDS, SlurmUnavailable, incarnations, parse_sacct, parse_scontrol, sacct_jobs, task_ranges
from planner.sweep import status as status_module
from planner.sweep.resubmit import plan_resubmission, resubmit, task_list
from planner.sweep.status import run_state, sweep_status

HERE = Path(__file__).parent
DATA = HERE / "data" / "sacct"
RUNS = ("follow-0-quick-N1M-D1M", "follow-1-slow-N1M-D1M", "follow-2-cut-N1M-D1M")


class FakeSlurm:
    """Answers sacct, scontrol and sbatch from recorded text; records every command it was given."""

    def __init__(self, sacct: str | None = None, scontrol: dict[str, str] | None = None, next_job: int = 1400):
        self.sacct, self.scontrol, self.next_job, self.calls = sacct, scontrol or {}, next_job, []

    def __call__(self, args: Sequence[str]) -> str:
        self.calls.append(list(args))
        if args[0] == "sacct":
            if self.sacct is None:
                raise SlurmUnavailable("sacct failed: Slurm accounting storage is disabled")
            return self.sacct
        if args[0] == "scontrol":
            if args[-1] not in self.scontrol:
                raise SlurmUnavailable("scontrol failed: slurm_load_jobs error: Invalid job id specified")
            return self.scontrol[args[-1]]
        if args[0] == "sbatch":
            self.next_job += 1
            return f"{self.next_job}\n"
        raise AssertionError(args)


def unreachable(args: Sequence[str]) -> str:
    raise SlurmUnavailable(f"{args[0]} did not answer within 60 s")


def rows(text: str) -> list:
    """sacct text in the column order `planner status` asks for (and tests/data/sacct holds)."""
    return parse_sacct(text, "sacct output", JOB_FIELDS)


def recorded(name: str) -> str:
    return (DATA / name).read_text()


@pytest.fixture
def follow(tmp_path) -> Path:
    """The recorded `follow` sweep directory, copied (resubmission appends to it)."""
    out = tmp_path / "follow"
    shutil.copytree(DATA / "follow", out)
    return out


# --- parsers --------------------------------------------------------------------------------------


def test_sacct_rows_skip_steps_and_keep_pending_task_groups():
    # the .batch steps are not allocations: with and without them, the same records (once every job has ended)
    assert rows(recorded("end-with-steps.txt")) == rows(recorded("end.txt"))
    with_steps = rows(recorded("mid-with-steps.txt"))
    assert [r.job_id for r in with_steps] == [r.job_id for r in rows(recorded("mid.txt"))]
    by_id = {r.job_id: r for r in with_steps}
    assert len(by_id) == len(with_steps) == 10
    cut = by_id["1327_2"]
    assert (cut.state, cut.job_id_raw, cut.array_job_id, cut.tasks) == ("CANCELLED", "1327", "1327", ((2, 2),))
    assert (cut.elapsed_seconds, cut.nodes, cut.gpus, cut.exit_code) == (7, 1, 4, 0)
    assert by_id["1327_1"].state == "RUNNING" and by_id["1327_1"].end is None
    pending = by_id["1328_[6-15%3]"]
    assert pending.tasks == ((6, 15),) and pending.has_task(6) and pending.has_task(15) and not pending.has_task(5)
    assert (pending.state, pending.start, pending.gpus, pending.elapsed_seconds) == ("PENDING", None, None, 0)


def test_scontrol_records_read_like_sacct_ones():
    records = parse_scontrol(recorded("scontrol-mid-iso16.txt"))
    pending = [r for r in records if r.state == "PENDING"]
    assert len(pending) == 1 and pending[0].tasks == ((9, 15),) and pending[0].job_id == "1328_[9-15%3]"
    running = [r for r in records if r.state == "RUNNING"]
    assert running and all(r.gpus == 4 and r.nodes == 1 and r.array_job_id == "1328" for r in running)
    # a lone pending task of a throttled array (after `planner status --resubmit` of one run): scontrol prints 1%3
    lone = recorded("scontrol-mid-iso16.txt").splitlines()[0]
    lone = re.sub(r"ArrayTaskId=\S+", "ArrayTaskId=1%3", re.sub(r"JobState=\S+", "JobState=PENDING", lone))
    (record,) = parse_scontrol(lone)
    assert record.job_id == "1328_1" and record.tasks == ((1, 1),)
    ended = {r.job_id: r for r in parse_scontrol(recorded("scontrol-end-follow.txt"))}
    assert ended["1327_1"].state == "TIMEOUT" and ended["1327_1"].elapsed_seconds == 73


@pytest.mark.parametrize("text,ranges", [("4", ((4, 4),)), ("[5-9%2]", ((5, 9),)), ("[1,4,7-9]", ((1, 1), (4, 4), (7, 9))),
                                         ("9-15%3", ((9, 15),))])
def test_task_ranges(text, ranges):
    assert task_ranges(text, "here") == ranges


def test_task_list_is_slurms_array_syntax():
    assert task_list((1, 2, 3, 7)) == "1-3,7" and task_list((0,)) == "0" and task_list((2, 4)) == "2,4"


@pytest.mark.parametrize("line,problem", [
    ("1327_0|1329|COMPLETED|0:0|2|1", "6 fields separated by '|', expected 10"),
    ("1327_x|1329|COMPLETED|0:0|2|1|node=1|Unknown|Unknown|Unknown", "JobID: '1327_x' is not a Slurm job id"),
    ("1327_0|1329|COMPLETED|0:0|-2|1|node=1|Unknown|Unknown|Unknown", "ElapsedRaw: '-2' is not a whole number"),
    ("1327_0|1329|done!|0:0|2|1|node=1|Unknown|Unknown|Unknown", "State: 'done!' is not a Slurm job state"),
    ("1327_0|1329|COMPLETED|0:0|2|1|gpu|Unknown|Unknown|Unknown", "AllocTRES: 'gpu' is not NAME=VALUE"),
    ("1327_0|1329|COMPLETED|0:0|2|1|node=1|2026-13-01T00:00:00|Unknown|Unknown", "Submit: '2026-13-01T00:00:00' is not a time"),
])
def test_a_malformed_sacct_line_is_one_error_naming_it(line, problem):
    with pytest.raises(PlannerError) as exc:
        rows(recorded("end.txt") + line + "\n")
    assert str(exc.value).startswith(f"sacct output:{len(recorded('end.txt').splitlines()) + 1}: ")
    assert problem in str(exc.value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("0123456789_[]-%,.|:=/ ABCDEFGHIJKLMNOPQRSTUVWXYZTabcdu\t"), max_size=120),
                max_size=4))
def test_any_sacct_text_parses_or_is_one_planner_error(lines):
    try:
        rows("\n".join(lines))
    except PlannerError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("sacct output:")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 9), st.sampled_from(range(len(JOB_FIELDS))), st.text(st.characters(blacklist_characters="\n"), max_size=30))
def test_a_recorded_line_with_any_field_replaced_parses_or_is_one_planner_error(row, column, value):
    lines = recorded("end-with-steps.txt").splitlines()
    cells = lines[row].split("|")
    cells[column] = value
    lines[row] = "|".join(cells)
    try:
        rows("\n".join(lines))
    except PlannerError as exc:
        assert str(exc).startswith(f"sacct output:{row + 1}: ")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_scontrol_text_parses_or_is_one_planner_error(text):
    try:
        parse_scontrol(text)
    except PlannerError as exc:
        assert str(exc).startswith("scontrol output:")


# --- states ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("done,submitted,states,expected", [
    (True, True, ["TIMEOUT"], "completed"),            # the done mark wins over any job state
    (True, True, ["PENDING"], "completed"),
    (False, False, [], "not-submitted"),
    (False, True, [], "unknown"),
    (False, True, ["TIMEOUT", "PENDING"], "pending"),  # a later segment is queued
    (False, True, ["TIMEOUT", "RUNNING"], "running"),
    (False, True, ["COMPLETED", "TIMEOUT"], "timeout"),
    (False, True, ["TIMEOUT", "COMPLETED"], "unfinished"),  # ended cleanly without touching {done_file}
    (False, True, ["NODE_FAIL"], "node_fail"), (False, True, ["BOOT_FAIL"], "node_fail"),
    (False, True, ["PREEMPTED"], "preempted"), (False, True, ["OUT_OF_MEMORY"], "failed"),
    (False, True, ["CANCELLED"], "cancelled"), (False, True, ["SOMETHING_NEW"], "unknown"),
])
def test_run_state(done, submitted, states, expected):
    assert run_state(done, submitted, states) == expected


def test_status_from_sacct(follow):
    result = sweep_status(follow, FakeSlurm(sacct=recorded("end.txt")))
    runs = {r.run_id: r for r in result.runs}
    assert result.source == "sacct"
    assert [runs[r].state for r in RUNS] == ["completed", "timeout", "cancelled"]
    slow = runs[RUNS[1]]
    assert slow.gpu_hours == pytest.approx(73 * 4 / 3600) and slow.node_hours == pytest.approx(73 / 3600)
    assert slow.gpu_hours_planned == pytest.approx(5.878227060309529e-05)  # from the manifest
    assert (slow.segment, slow.segments, slow.attempts, slow.jobs) == (1, 1, 1, ("1327_1",))
    assert runs[RUNS[0]].result == {"loss": 2.0} and slow.result is None
    assert result.counts == {"completed": 1, "timeout": 1, "cancelled": 1}
    assert result.gpu_hours == pytest.approx((2 + 73 + 7) * 4 / 3600)
    assert result.summary().startswith("3 runs: 1 completed, 1 timeout, 1 cancelled; GPU-hours used 0.0911 of ")


def test_status_without_accounting_reads_scontrol(follow):
    fake = FakeSlurm(sacct=None, scontrol={"1327": recorded("scontrol-end-follow.txt")})
    result = sweep_status(follow, fake)
    assert result.source == "scontrol"
    assert [r.state for r in result.runs] == ["completed", "timeout", "cancelled"]
    assert result.runs[1].gpu_hours == pytest.approx(73 * 4 / 3600)


def test_status_when_slurm_does_not_answer_comes_from_the_files(follow):
    result = sweep_status(follow, unreachable)
    assert result.source == "files"
    assert [r.state for r in result.runs] == ["completed", "unknown", "unknown"]
    assert [r.attempts for r in result.runs] == [1, 1, 1] and result.gpu_hours == 0
    assert any("Slurm did not answer" in w for w in result.warnings)
    with pytest.raises(PlannerError, match="Slurm does not answer"):
        plan_resubmission(result)


def test_status_of_a_throttled_array_mid_run():
    result = sweep_status(DATA / "iso16", FakeSlurm(sacct=recorded("mid.txt")))
    states = [r.state for r in result.runs]
    # tasks 0-5 ended without a done mark (isoflop16.yaml's command writes a result only), 6-15 wait as one group
    assert states == ["unfinished"] * 6 + ["pending"] * 10
    assert result.runs[0].result is None and result.counts == {"unfinished": 6, "pending": 10}
    assert all(r.segment == 0 and r.gpu_hours == 0 for r in result.runs[6:])


def test_resubmit_submits_only_the_unfinished_tasks_and_is_idempotent(follow):
    fake = FakeSlurm(sacct=recorded("end.txt"))
    (group,) = resubmit(follow, fake)
    script = str((follow / "arrays" / "a00.sbatch").resolve())
    assert fake.calls[-1] == ["sbatch", "--parsable", "--array=1-2%3", script, "1"]  # the array's throttle kept
    assert (group.tasks, group.run_ids, group.job_ids) == ((1, 2), RUNS[1:], ("1401",))
    assert (follow / "resubmitted.tsv").read_text() == "array\tsegment\tjob_id\ttasks\na00\t1\t1401\t1-2\n"
    # sacct lags the controller: the new job is known to scontrol only, and its runs are pending
    pending = ("JobId=1402 ArrayJobId=1401 ArrayTaskId=1-2 JobState=PENDING RunTime=00:00:00 NumNodes=1-1 "
               "SubmitTime=2026-12-01T08:40:00 StartTime=Unknown EndTime=Unknown ExitCode=0:0\n")
    fake.scontrol["1401"] = pending
    after = sweep_status(follow, fake)
    assert [r.state for r in after.runs] == ["completed", "pending", "pending"]
    assert after.runs[1].jobs == ("1327_1", "1401_1") and after.runs[0].jobs == ("1327_0",)
    assert plan_resubmission(after) == [] and resubmit(follow, fake) == []
    assert sum(c[0] == "sbatch" for c in fake.calls) == 1


def test_a_chain_restarts_at_the_segment_it_reached(follow):
    manifest = follow / "manifest.csv"
    lines = manifest.read_text().splitlines()
    lines[1:] = [line.replace(",1,tiny", ",3,tiny") for line in lines[1:]]  # 3 segments per run
    manifest.write_text("\n".join(lines) + "\n")
    (follow / "submitted.tsv").write_text("array\tsegment\tjob_id\na00\t1\t1327\na00\t2\t1500\na00\t3\t1510\n")
    sacct = (recorded("end.txt").replace("1327_", "1500_").replace("|1327|", "|1500|")
             + "1327_[0-2]|1327|COMPLETED|0:0|60|1|node=1,gres/gpu=4|2026-12-01T08:35:08|2026-12-01T08:35:09|2026-12-01T08:36:09\n"
             + "1510_[0-2]|1510|CANCELLED by 0|0:0|0|0||2026-12-01T08:35:08|None|2026-12-01T08:37:00\n")
    fake = FakeSlurm(sacct=sacct)
    result = sweep_status(follow, fake)
    assert [r.state for r in result.runs] == ["completed", "cancelled", "cancelled"]
    assert [r.segment for r in result.runs] == [2, 2, 2]  # segment 3 never started
    assert result.runs[1].gpu_hours == pytest.approx((60 + 73) * 4 / 3600)
    (group,) = resubmit(follow, fake)
    sbatch = [c for c in fake.calls if c[0] == "sbatch"]
    assert [c[-1] for c in sbatch] == ["2", "3"] and "--dependency=afterany:1401" in sbatch[1]
    assert group.job_ids == ("1401", "1402")


# --- the command ----------------------------------------------------------------------------------


def test_cli_table_json_csv(follow, capsys, monkeypatch):
    monkeypatch.setattr(status_module, "run_slurm", FakeSlurm(sacct=recorded("end.txt")))
    code, text, err = run(["status", str(follow)], capsys)
    assert check_stderr(code, err) is None
    assert "follow-1-slow-N1M-D1M   timeout" in text and "3 runs: 1 completed, 1 timeout, 1 cancelled" in text
    code, text, err = run(["status", str(follow), "--format", "json"], capsys)
    data = json.loads(text)
    assert data["counts"] == {"completed": 1, "timeout": 1, "cancelled": 1} and data["runs"][0]["result"] == {"loss": 2.0}
    code, text, err = run(["status", str(follow), "--format", "csv"], capsys)
    assert text.splitlines()[2].startswith("follow-1-slow-N1M-D1M,a00,1,timeout,1,1,1,1327_1,")


def test_cli_errors_are_one_line(follow, tmp_path, capsys, monkeypatch):
    code, _, err = run(["status", str(tmp_path)], capsys)
    assert "no manifest.csv here" in check_stderr(code, err)
    monkeypatch.setattr(status_module, "run_slurm", FakeSlurm(sacct=recorded("end.txt") + "1327_9|x|RUNNING\n"))
    code, _, err = run(["status", str(follow)], capsys)
    line = len(recorded("end.txt").splitlines()) + 1
    assert check_stderr(code, err).endswith(f"sacct output:{line}: 3 fields separated by '|', expected 10 ("
                                                f"{'|'.join(JOB_FIELDS)}, as sacct -P -n -o {','.join(JOB_FIELDS)} prints them)")
    (follow / "submitted.tsv").unlink()
    monkeypatch.setattr(status_module, "run_slurm", unreachable)
    code, text, err = run(["status", str(follow), "--resubmit"], capsys)
    assert "not submitted yet" in check_stderr(code, err)


def test_the_job_script_sets_resume_and_never_reruns_a_done_run(tmp_path, capsys):
    spec = tmp_path / "resume.yaml"
    spec.write_text("name: resume\ncluster: local-juwels\npartition: tiny\nnodes: 1\n"
                    "command: echo \"{segment} {resume}\" >> \"{out_dir}/seen\"\n"
                    "sweep: {kind: list, runs: [{name: a, params: 1e6, tokens: 1e6}]}\n")
    out = tmp_path / "out"
    code, _, err = run(["--catalog", str(HERE / "data" / "catalog-local"), "sweep", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")} | {"SLURM_ARRAY_TASK_ID": "0"}

    def attempt(segment: str) -> None:
        subprocess.run(["bash", str(out / "arrays" / "a00.sbatch"), segment], env=env, check=True, capture_output=True)

    attempt("1")
    attempt("1")
    run_id = next(iter(os.listdir(out / "started")))
    (out / "done" / run_id).touch()
    attempt("2")
    assert (out / "seen").read_text() == "1 0\n1 1\n"  # the done run was skipped
    assert [line.split()[0] for line in (out / "started" / run_id).read_text().splitlines()] == ["start", "end"] * 2


def test_hours_count_every_node_and_gpu_of_an_allocation(follow):
    # the slow run's task as if it had held 2 nodes; once with its GPUs in AllocTRES, once without
    two_nodes = ("1327_1|1330|TIMEOUT|0:0|90|2|billing=96,cpu=96,gres/gpu=8,node=2|"
                 "2026-12-01T08:35:08|2026-12-01T08:35:09|2026-12-01T08:36:39\n")
    slow = sweep_status(follow, FakeSlurm(sacct=two_nodes)).runs[1]
    assert (slow.node_hours, slow.gpu_hours) == (pytest.approx(90 * 2 / 3600), pytest.approx(90 * 8 / 3600))
    no_gpus = two_nodes.replace("gres/gpu=8,", "")
    slow = sweep_status(follow, FakeSlurm(sacct=no_gpus)).runs[1]
    assert slow.gpu_hours == pytest.approx(90 * 2 * 4 / 3600)  # the manifest's 4 GPUs per node


def test_a_requeued_job_counts_every_run_and_an_older_job_of_the_same_id_none():
    older = "1359_0|1359|COMPLETED|0:0|999|1|gres/gpu=4,node=1|2026-01-05T10:00:00|2026-01-05T10:00:01|2026-01-05T10:16:40\n"
    fake = FakeSlurm(sacct=older + recorded("requeue.txt"))
    records = incarnations(rows(fake.sacct))
    assert [(r.job_id, r.state, r.elapsed_seconds) for r in records] == [
        ("1359_0", "REQUEUED", 4), ("1359_0", "COMPLETED", 28), ("1358_0", "REQUEUED", 4), ("1358_0", "CANCELLED", 0)]
    assert sacct_jobs(["1359"], fake) == records and "-D" in fake.calls[-1]


@pytest.mark.parametrize("requeue,signal,error", [(0, 30, None), (2, 30, None), (2, 0, "requeue: needs signal_seconds > 0")])
def test_requeue_in_the_spec(tmp_path, capsys, requeue, signal, error):
    spec = tmp_path / "rq.yaml"
    spec.write_text(f"name: rq\ncluster: local-juwels\npartition: tiny\nnodes: 1\nrequeue: {requeue}\nsignal_seconds: {signal}\n"
                    "command: 'true'\nsweep: {kind: list, runs: [{name: a, params: 1e6, tokens: 1e6}]}\n")
    out = tmp_path / "out"
    code, _, err = run(["--catalog", str(HERE / "data" / "catalog-local"), "sweep", str(spec), "--out", str(out)], capsys)
    if error:
        assert error in check_stderr(code, err)
        return
    script = (out / "arrays" / "a00.sbatch").read_text()
    assert ("#SBATCH --requeue\n" in script) == bool(requeue)
    assert ('scontrol requeue "$SLURM_JOB_ID"' in script) == bool(requeue)
    assert (f'"${{SLURM_RESTART_COUNT:-0}}" -lt {requeue}' in script) == bool(requeue)
    assert subprocess.run(["bash", "-n", str(out / "arrays" / "a00.sbatch")]).returncode == 0


def test_one_resubmission_at_a_time(follow):
    import fcntl

    from planner.sweep.resubmit import LOCK

    with open(follow / LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(PlannerError, match="another resubmission of this sweep is running"):
            resubmit(follow, FakeSlurm(sacct=recorded("end.txt")))
    assert not (follow / "resubmitted.tsv").exists()
