"""`planner sweep` on a real Slurm cluster (scripts/local-slurm.sh start: 4 JUWELS-Booster-shaped nodes,
partitions booster 24 h, develbooster 2 h, tiny 1 min, MaxArraySize 1001, EnforcePartLimits=ALL).

Skipped, with the reason, when no such cluster answers. Every job is tiny (it sleeps a second or two
and writes what it saw under the sweep directory); jobs still queued when a test ends are cancelled.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from cli_helpers import run

pytestmark = pytest.mark.slurm

HERE = Path(__file__).parent
SPECS = HERE / "data" / "sweeps"
LOCAL = HERE / "data" / "catalog-local"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


def why_no_cluster() -> str | None:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "no Slurm here (sbatch/sinfo not on PATH); start one with: scripts/local-slurm.sh start"
    try:
        info = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %P %G %t"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 30 s"
    if info.returncode != 0:
        return f"sinfo fails: {info.stderr.strip()[:200]}"
    usable = ("idle", "mix", "alloc", "comp")  # registered and answering (not down, drained or unknown)
    nodes = {line.split()[0] for line in info.stdout.splitlines()
             if re.search(r"gpu:(\w+:)?4", line) and line.split()[-1].rstrip("*~#!%$@^-").startswith(usable)}
    partitions = {line.split()[1].rstrip("*") for line in info.stdout.splitlines()}
    if missing := {"booster", "develbooster", "tiny"} - partitions:
        return f"the running cluster lacks partition(s) {', '.join(sorted(missing))}: it is not the one of scripts/local-slurm.sh"
    if len(nodes) < 4:
        states = sorted({" ".join(line.split()[::3]) for line in info.stdout.splitlines()})
        return f"need 4 usable nodes with 4 GPUs each (scripts/local-slurm.sh), found {len(nodes)} ({', '.join(states)})"
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = why_no_cluster()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def jobs():
    """Job ids a test submitted; whatever of them is still queued at the end is cancelled (by id)."""
    ids: list[str] = []
    yield ids
    alive = [j for j in ids if _squeue(j)]
    if alive:
        subprocess.run(["scancel", *alive], capture_output=True, timeout=30)


def _squeue(job: str, running_only: bool = False) -> list[str]:
    args = ["squeue", "-h", "-r", "-j", job, "-o", "%i"] + (["-t", "RUNNING"] if running_only else [])
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    return result.stdout.split() if result.returncode == 0 else []


def generate(capsys, spec: Path, out: Path, *extra: str) -> None:
    code, _, err = run(["--catalog", str(LOCAL), "sweep", str(spec), "--out", str(out), *extra], capsys)
    assert code == 0, err


def submit(out: Path, jobs: list[str]) -> list[tuple[str, str, str]]:
    """Run submit.sh from an unrelated directory; returns (array, segment, job id) rows of submitted.tsv."""
    done = subprocess.run(["bash", str(out / "submit.sh")], capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    rows = [tuple(line.split("\t")) for line in (out / "submitted.tsv").read_text().splitlines()[1:]]
    jobs.extend(r[2] for r in rows)
    return rows


def wait(job_ids: list[str], timeout: float, sample: str | None = None) -> int:
    """Wait until no job is queued or running; returns the most tasks of `sample` seen running at once."""
    most, deadline = 0, time.time() + timeout
    while time.time() < deadline:
        if sample:
            most = max(most, len(_squeue(sample, running_only=True)))
        if not any(_squeue(j) for j in job_ids):
            return most
        time.sleep(0.2)
    raise AssertionError(f"jobs {job_ids} still queued after {timeout} s: {[_squeue(j) for j in job_ids]}")


def job_records(job: str) -> list[dict]:
    """`scontrol show job -o` (no slurmdbd, so no sacct): one dict per job or array task."""
    result = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    records = []
    for line in result.stdout.splitlines():
        # values may contain spaces (paths); keys are the words before '=' that follow a space
        parts = re.split(r" (?=[A-Za-z/:]+=)", line.strip())
        records.append(dict(p.split("=", 1) for p in parts if "=" in p))
    return records


def manifest_rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    most = now = 0
    for _, step in events:  # at equal times an end (-1) sorts before a start (+1)
        now += step
        most = max(most, now)
    return most


def test_16_runs_each_run_once_with_their_own_parameters_and_the_throttle_holds(cluster, tmp_path, capsys, jobs):
    out = tmp_path / "iso16"
    generate(capsys, SPECS / "isoflop16.yaml", out)
    rows = manifest_rows(out)
    assert len(rows) == 16 and {r["array"] for r in rows} == {"a00"}
    assert "#SBATCH --array=0-15%3\n" in (out / "arrays" / "a00.sbatch").read_text()
    (submitted,) = submit(out, jobs)
    job = submitted[2]
    most_running = wait([job], timeout=240, sample=job)

    tasks = job_records(job)
    assert sorted(int(t["ArrayTaskId"]) for t in tasks) == list(range(16))
    assert {t["JobState"] for t in tasks} == {"COMPLETED"} and {t["Restarts"] for t in tasks} == {"0"}
    intervals = []
    for row in rows:
        lines = (out / "seen" / row["run_id"]).read_text().splitlines()
        assert len(lines) == 1, f"{row['run_id']} ran {len(lines)} times"
        array_job, task, index, run_id, params, tokens, segment, start, end = lines[0].split()
        assert (array_job, task, index) == (job, row["index"], row["index"])
        assert (run_id, params, tokens, segment) == (row["run_id"], row["params"], row["tokens"], "1")
        assert (out / "logs" / f"iso16-a00_{job}_{task}.out").exists()
        intervals.append((float(start), float(end)))
    overlap = max_overlap(intervals)
    assert overlap <= 3 and most_running <= 3, (overlap, most_running)  # the %3 throttle, with 4 nodes free
    assert overlap >= 2, f"tasks never ran side by side (max overlap {overlap})"
    print(f"16 tasks, max overlap {overlap} (from timestamps), max running {most_running} (squeue samples)")
    # what each run wrote to {result_file} comes back, joined to its own manifest row
    code, text, err = run(["collect", str(out), "--format", "json"], capsys)
    assert code == 0, err
    collected = json.loads(text)
    assert collected["collected"] == 16 and collected["missing"] == []
    assert all(float(r["seen_tokens"]) == float(r["tokens"]) for r in collected["rows"])


def _epoch(slurm_time: str) -> float:
    return datetime.strptime(slurm_time, "%Y-%m-%dT%H:%M:%S").timestamp()


def test_a_run_longer_than_the_partition_limit_runs_as_a_chain_in_order(cluster, tmp_path, capsys, jobs):
    out = tmp_path / "chain"
    generate(capsys, SPECS / "chain.yaml", out)
    (row,) = manifest_rows(out)
    assert (row["segments"], row["time_limit"]) == ("3", "00:01:00")
    submitted = submit(out, jobs)
    assert [(a, s) for a, s, _ in submitted] == [("a00", "1"), ("a00", "2"), ("a00", "3")]
    ids = [j for _, _, j in submitted]
    dependency = job_records(ids[1])[0]["Dependency"]
    assert dependency.startswith(f"afterany:{ids[0]}"), dependency
    wait(ids, timeout=400)

    states = [job_records(j)[0] for j in ids]
    assert [s["JobState"] for s in states] == ["TIMEOUT", "COMPLETED", "COMPLETED"]
    events = [line.split() for line in (out / "seen" / row["run_id"]).read_text().splitlines()]
    assert [e[:2] for e in events] == [["start", "1"], ["usr1", "1"], ["start", "2"], ["end", "2"], ["start", "3"], ["end", "3"]]
    assert [e[2] for e in events if e[0] == "start"] == ["3", "3", "3"]  # each segment knows how many there are
    times = [float(e[3] if e[0] == "start" else e[2]) for e in events]
    assert times == sorted(times)
    assert times[2] >= _epoch(states[0]["EndTime"]) - 1  # segment 2 began after segment 1 timed out
    assert (out / "done" / row["run_id"]).exists()
    print(f"chain: segments {ids} ran in order: {[s['JobState'] for s in states]}")


@pytest.mark.parametrize("points,arrays", [(100, 1), (250, 3)])
def test_large_sweeps_are_accepted_by_sbatch_test_only(cluster, tmp_path, capsys, points, arrays):
    spec = tmp_path / "big.yaml"
    spec.write_text(f"""\
name: big
cluster: local-juwels
account: myproject
law: chinchilla-approach3
max_concurrent: 8
command: echo {{run_id}}
sweep: {{kind: isoflop, budgets: [1e12, 2e12, 3e12, 4e12, 5e12, 6e12, 7e12, 8e12, 9e12, 1e13], points: {points}, span: 4}}
""")
    out = tmp_path / "big"
    generate(capsys, spec, out)
    scripts = sorted((out / "arrays").glob("*.sbatch"))
    assert len(manifest_rows(out)) == 10 * points and len(scripts) == arrays
    checked = subprocess.run(["bash", str(out / "submit.sh"), "--test-only"], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.count("to start at") == arrays, checked.stderr
    assert not (out / "submitted.tsv").exists()
    if points == 250:  # one array of 2,500 tasks is what Slurm's default MaxArraySize (1001) refuses
        whole = subprocess.run(["sbatch", "--test-only", "--array=0-2499%8", str(scripts[0])], capture_output=True, text=True)
        assert whole.returncode != 0 and "Invalid job array specification" in whole.stderr


def test_hostile_directory_names_are_inert_on_slurm(cluster, tmp_path, capsys, jobs):
    tag = f"{os.getpid()}-{time.time_ns()}"
    out = tmp_path / f"we ird $(cd;touch planner-canary-{tag}) `cd;touch planner-canary2-{tag}` 'q' \"dq\" #h 50%x &;|<>*?"
    spec = tmp_path / "spec.yaml"
    spec.write_text("""\
name: hostile
cluster: local-juwels
time_step_minutes: 60
command: mkdir -p "{out_dir}/seen" && pwd > "{out_dir}/seen/{run_id}"
sweep: {kind: list, runs: [{params: 1e8, tokens: 1e8}, {params: 1e8, tokens: 2e8}]}
""")
    generate(capsys, spec, out)
    shutil.rmtree(out / "logs")  # submit.sh recreates it: a missing --output directory fails the job
    (submitted,) = submit(out, jobs)
    job = submitted[2]
    wait([job], timeout=120)
    assert {t["JobState"] for t in job_records(job)} == {"COMPLETED"}
    for row in manifest_rows(out):
        assert (out / "seen" / row["run_id"]).read_text() == f"{out}\n"
        assert (out / "logs" / f"hostile-a00_{job}_{row['index']}.out").exists()
    home = Path.home()
    assert not (home / f"planner-canary-{tag}").exists() and not (home / f"planner-canary2-{tag}").exists()


def test_throttle_sweep_runs_arrays_one_after_another(cluster, tmp_path, capsys, jobs):
    out = tmp_path / "serial"
    generate(capsys, SPECS / "serial.yaml", out)
    rows = manifest_rows(out)
    assert sorted({r["array"] for r in rows}) == ["a00", "a01"]
    submitted = submit(out, jobs)
    ids = [j for _, _, j in submitted]
    assert job_records(ids[1])[0]["Dependency"].startswith(f"afterany:{ids[0]}")
    wait(ids, timeout=240)
    spans: dict[str, list[tuple[float, float]]] = {"a00": [], "a01": []}
    for row in rows:
        (line,) = (out / "seen" / row["run_id"]).read_text().splitlines()
        array, run_id, start, end = line.split()
        spans[array].append((float(start), float(end)))
    assert min(s for s, _ in spans["a01"]) >= max(e for _, e in spans["a00"])  # one array after the other
    assert max_overlap(spans["a00"] + spans["a01"]) <= 2
    print(f"a00 ended {max(e for _, e in spans['a00']):.1f}, a01 started {min(s for s, _ in spans['a01']):.1f}")
