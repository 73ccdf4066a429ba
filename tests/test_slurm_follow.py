"""Following a sweep on a real Slurm cluster with accounting (scripts/local-slurm.sh start: slurmdbd, so
sacct works): `planner status` tells the state and hours of every run, `planner status --resubmit`
submits only the unfinished runs, which resume from their checkpoints through {resume}.

tests/data/sweeps/follow.yaml has three runs on the 1-minute `tiny` partition: `quick` finishes at
once, `slow` (75 one-second steps) is killed by its time limit, `cut` (30 steps) is cancelled here
mid-run (105 steps outlast any kill time of a 1-minute job; the rest fits in the next one).
Each writes a checkpoint after every step and logs "START_STEP RESUME" per attempt.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import check_stderr, run
from test_slurm import SPECS, generate, jobs, manifest_rows, submit, wait, why_no_cluster  # noqa: F401  (jobs: a fixture)

pytestmark = pytest.mark.slurm

STEPS = {"quick": 2, "slow": 105, "cut": 30}


@pytest.fixture(scope="module")
def cluster():
    """As test_slurm's, but a node still finishing the jobs of an earlier test gets half a minute to be usable."""
    deadline = time.time() + 30
    while (reason := why_no_cluster()) and "usable nodes" in reason and time.time() < deadline:
        time.sleep(1)
    if reason:
        pytest.skip(reason)



def status(capsys, out: Path, *extra: str) -> tuple[dict, str]:
    code, text, err = run(["status", str(out), "--format", "json", *extra], capsys)
    assert check_stderr(code, err) is None and code == 0, err
    return json.loads(text), err


def settled(capsys, out: Path, timeout: float = 60) -> dict:
    """The status once no run is pending or running and sacct has every job's end (it lags the controller)."""
    deadline = time.time() + timeout
    while True:
        data, _ = status(capsys, out)
        if not {r["state"] for r in data["runs"]} & {"pending", "running", "unknown"} and data["source"] == "sacct":
            return data
        assert time.time() < deadline, data
        time.sleep(1)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_killed_and_cancelled_runs_resume_from_their_checkpoints_and_finished_runs_never_run_again(
        cluster, tmp_path, capsys, jobs):  # noqa: F811  (jobs)
    out = tmp_path / "follow"
    generate(capsys, SPECS / "follow.yaml", out)
    rows = {r["model"]: r for r in manifest_rows(out)}
    run_id = {name: rows[name]["run_id"] for name in STEPS}
    data, _ = status(capsys, out)
    assert {r["state"] for r in data["runs"]} == {"not-submitted"}

    ((_, _, job),) = submit(out, jobs)
    ckpt = out / "ckpt" / run_id["cut"]
    deadline = time.time() + 90
    while not (ckpt.exists() and ckpt.read_text().strip() and int(ckpt.read_text()) >= 3):
        assert time.time() < deadline, "the cut run never reached step 3"
        time.sleep(0.5)
    subprocess.run(["scancel", f"{job}_{rows['cut']['index']}"], check=True, timeout=30)
    wait([job], timeout=150)

    first = {r["run_id"]: r for r in settled(capsys, out)["runs"]}
    assert first[run_id["quick"]]["state"] == "completed"
    assert first[run_id["slow"]]["state"] == "timeout"
    assert first[run_id["cut"]]["state"] == "cancelled"
    # hours from sacct: elapsed × the allocation's 4 GPUs; the slow run held its node for its full minute
    assert first[run_id["slow"]]["gpu_hours"] >= 4 * 60 / 3600
    assert first[run_id["slow"]]["node_hours"] * 4 == pytest.approx(first[run_id["slow"]]["gpu_hours"])
    assert all(r["gpu_hours"] > 0 and r["attempts"] == 1 for r in first.values())
    stopped_at = {name: int((out / "ckpt" / run_id[name]).read_text()) for name in ("slow", "cut")}
    assert 55 <= stopped_at["slow"] < STEPS["slow"] and 3 <= stopped_at["cut"] < STEPS["cut"], stopped_at

    data, err = status(capsys, out, "--resubmit")
    assert "resubmitted 2 run(s) of array a00 from segment 1 of 1" in err
    resubmitted = lines(out / "resubmitted.tsv")
    assert len(resubmitted) == 2 and resubmitted[1].split("\t")[3] == f"{rows['slow']['index']}-{rows['cut']['index']}"
    new_job = resubmitted[1].split("\t")[2]
    jobs.append(new_job)
    assert {r["run_id"]: r["state"] for r in data["runs"]}[run_id["quick"]] == "completed"
    # right away again: the two runs are pending or running now, so nothing is submitted
    data, err = status(capsys, out, "--resubmit")
    assert "nothing to resubmit" in err and len(lines(out / "resubmitted.tsv")) == 2
    wait([new_job], timeout=120)

    final = settled(capsys, out)
    runs = {r["run_id"]: r for r in final["runs"]}
    assert final["counts"] == {"completed": 3}
    for name, total in STEPS.items():
        recorded = [line.split() for line in lines(out / "attempts" / run_id[name])]
        # every attempt ran with the run's own shape and hyperparameters from the manifest
        own = [rows[name]["d_model"], rows[name]["lr"], rows[name]["batch_size"]]
        assert all(r[2:] == own for r in recorded), (name, recorded, own)
        attempts = [r[:2] for r in recorded]
        steps = [int(s) for s in lines(out / "steps" / run_id[name])]
        assert (out / "results" / run_id[name]).read_text().strip() == str(total)
        if name == "quick":  # finished in the first round: never started again
            assert attempts == [["0", "0"]] and runs[run_id[name]]["attempts"] == 1
            assert len(runs[run_id[name]]["jobs"]) == 1
            continue
        # the second attempt saw {resume}=1 and started from the checkpoint, not from step 0
        assert attempts == [["0", "0"], [str(stopped_at[name]), "1"]], attempts
        assert steps[-1] == total and len(steps) <= total + 1, (name, len(steps))
        assert runs[run_id[name]]["attempts"] == 2 and len(runs[run_id[name]]["jobs"]) == 2
        assert runs[run_id[name]]["gpu_hours"] > first[run_id[name]]["gpu_hours"]  # both jobs counted
    assert final["gpu_hours"] == pytest.approx(sum(r["gpu_hours"] for r in runs.values()))
    print(f"stopped at {stopped_at}; hours used {final['gpu_hours']:.4f} GPU-h, {final['node_hours']:.4f} node-h")


def test_requeue_lets_a_run_stopped_by_usr1_resume_in_the_same_job(cluster, tmp_path, capsys, jobs):  # noqa: F811
    out = tmp_path / "requeue"
    generate(capsys, SPECS / "requeue.yaml", out)
    assert "#SBATCH --requeue\n" in (out / "arrays" / "a00.sbatch").read_text()
    ((row,),) = [manifest_rows(out)]
    ((_, _, job),) = submit(out, jobs)
    task = f"{job}_{row['index']}"
    ckpt = out / "ckpt" / row["run_id"]
    deadline = time.time() + 60
    while not (ckpt.exists() and ckpt.read_text().strip() and int(ckpt.read_text()) >= 3):
        assert time.time() < deadline, "the run never reached step 3"
        time.sleep(0.5)
    # what Slurm sends signal_seconds before the limit, to the batch shell only (--signal=B:USR1@...)
    subprocess.run(["scancel", "--batch", "--signal=USR1", task], check=True, timeout=30)
    deadline = time.time() + 60
    while "requeue " not in (out / "started" / row["run_id"]).read_text():
        assert time.time() < deadline, "the job did not requeue itself"
        time.sleep(0.5)
    data, _ = status(capsys, out)
    assert data["runs"][0]["state"] in ("pending", "running") and data["runs"][0]["attempts"] >= 1
    # Slurm holds a requeued job until its old credential has expired (cred_expire: 30 s on the local cluster,
    # 120 s by default); releasing it sooner (scontrol update StartTime=now) makes it fail: "credential revoked"
    wait([job], timeout=180)
    final = settled(capsys, out)
    (result,) = final["runs"]
    attempts = lines(out / "attempts" / row["run_id"])
    stopped = int(attempts[1].split()[1])
    assert attempts == ["0 0", f"usr1 {stopped}", f"{stopped} 1"] and 3 <= stopped < 30, attempts
    assert result["state"] == "completed" and result["attempts"] == 2
    assert (out / "results" / row["run_id"]).read_text().strip() == "30"
    # sacct -D: the requeued allocation is counted too, not only the job's last run
    restarted = subprocess.run(["sacct", "-n", "-P", "-X", "-D", "-j", task, "-o", "State,ElapsedRaw"],
                               capture_output=True, text=True, timeout=30).stdout.split()
    assert [r.split("|")[0] for r in restarted] == ["REQUEUED", "COMPLETED"], restarted
    elapsed = sum(int(r.split("|")[1]) for r in restarted)
    assert result["gpu_hours"] == pytest.approx(elapsed * 4 / 3600)
    print(f"requeued at step {stopped}; {elapsed} s over two runs of job {task}")
