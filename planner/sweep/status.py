"""Where a submitted sweep stands, run by run: `planner status DIR`.

Everything comes from files and Slurm, nothing from memory, so it works from any login node after a
reboot: the manifest (what was planned), submitted.tsv and resubmitted.tsv (which jobs ran which
array, segment and tasks), done/RUN_ID (the run finished: the one mark of completion), started/RUN_ID
(the attempts the job script recorded), results/RUN_ID, and Slurm's records of the jobs (sacct; then
`scontrol show job` for jobs sacct does not know; files alone when Slurm does not answer).

A run's state: completed when its {done_file} exists; else running or pending while a job of it is;
else what its last job ended as (timeout, cancelled, failed, node_fail, preempted; `unfinished` when
that job ended without an error but the run did not touch its done file); not-submitted when no job
covers it; unknown when its jobs are known only from the files.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from planner.errors import PlannerError
from planner.files import decode_utf8, read_input
from planner.records import Record
from planner.slurm_io import JobRecord, Runner, SlurmUnavailable, run_slurm, sacct_jobs, scontrol_jobs, task_ranges, whole
from planner.sweep.collect import RUN_ID, read_result
from planner.sweep.slurm import DONE_DIR, MANIFEST, RESULTS_DIR, STARTED_DIR, SUBMITTED

RESUBMITTED = "resubmitted.tsv"
RESUBMITTED_HEADER = ("array", "segment", "job_id", "tasks")
STATES = ("completed", "running", "pending", "unfinished", "timeout", "cancelled", "failed", "node_fail", "preempted",
          "not-submitted", "unknown")
ACTIVE = ("running", "pending")
# Slurm's job states (squeue(1), sacct(1) "JOB STATE CODES") → a run's
SLURM_STATES = {
    "PENDING": "pending", "REQUEUED": "pending", "REQUEUE_HOLD": "pending", "REQUEUE_FED": "pending",
    "RESV_DEL_HOLD": "pending", "CONFIGURING": "running", "RUNNING": "running", "COMPLETING": "running",
    "SUSPENDED": "running", "STOPPED": "running", "SIGNALING": "running", "STAGE_OUT": "running", "RESIZING": "running",
    "COMPLETED": "unfinished", "TIMEOUT": "timeout", "DEADLINE": "timeout", "CANCELLED": "cancelled",
    "REVOKED": "cancelled", "FAILED": "failed", "OUT_OF_MEMORY": "failed", "SPECIAL_EXIT": "failed",
    "BOOT_FAIL": "node_fail", "NODE_FAIL": "node_fail", "PREEMPTED": "preempted",
}
MAX_STATE_BYTES = 64 << 20
NEEDED = ("run_id", "array", "index", "nodes", "gpus", "gpu_hours", "node_hours", "segments")


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    array: str
    index: int
    nodes: int
    gpus: int
    gpu_hours: float
    node_hours: float
    segments: int


@dataclass(frozen=True)
class Submission:
    array: str
    segment: int
    job_id: str
    tasks: tuple[tuple[int, int], ...] | None  # None: every task of the array (submit.sh)

    def covers(self, run: PlannedRun) -> bool:
        return run.array == self.array and (self.tasks is None or any(a <= run.index <= b for a, b in self.tasks))


@dataclass(frozen=True)
class RunStatus(Record):
    run_id: str
    array: str
    index: int
    state: str
    segment: int  # the highest segment a job of the run started (0: none yet)
    segments: int  # planned
    attempts: int  # times its command started (started/RUN_ID)
    jobs: tuple[str, ...]  # its allocations as Slurm names them, in submission order
    gpu_hours: float  # used: elapsed time × GPUs of each allocation
    node_hours: float
    gpu_hours_planned: float
    node_hours_planned: float
    result: dict[str, float] | None


@dataclass(frozen=True)
class SweepStatus(Record):
    sweep: str
    source: str  # sacct, scontrol (no accounting), files (Slurm did not answer)
    runs: tuple[RunStatus, ...]
    counts: dict[str, int]
    gpu_hours: float
    node_hours: float
    gpu_hours_planned: float
    node_hours_planned: float
    warnings: tuple[str, ...]

    def summary(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts.items())
        return (f"{len(self.runs)} runs: {counts}; GPU-hours used {self.gpu_hours:.4f} of {self.gpu_hours_planned:.4f} "
                f"planned, node-hours used {self.node_hours:.4f} of {self.node_hours_planned:.4f} planned "
                f"(job states from {self.source})")


def _read(path: Path, what: str) -> str:
    return decode_utf8(read_input(path, what, MAX_STATE_BYTES), path)


def _hours(text: str, where: str) -> float:
    try:
        value = float(text) if text else 0.0
    except ValueError:
        raise PlannerError(f"{where}: {text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise PlannerError(f"{where}: {text!r} is not a number of hours")
    return value


def read_planned(sweep_dir: Path) -> list[PlannedRun]:
    path = sweep_dir / MANIFEST
    if not path.is_file():
        raise PlannerError(f"{sweep_dir}: no {MANIFEST} here; give the directory a sweep was written to", "sweep_dir")
    reader = csv.reader(io.StringIO(_read(path, "manifest"), newline=""))
    try:
        header = next(reader, [])
        if missing := [c for c in NEEDED if c not in header]:
            raise PlannerError(f"{path}:1: not a planner sweep manifest (no column {', '.join(missing)})")
        runs = []
        for record in reader:
            if not record:
                continue
            where = f"{path}:{reader.line_num}"
            if len(record) != len(header):
                raise PlannerError(f"{where}: {len(record)} fields, the header has {len(header)}")
            cells = dict(zip(header, record, strict=True))
            if not RUN_ID.fullmatch(cells["run_id"]) or not RUN_ID.fullmatch(cells["array"]):
                raise PlannerError(f"{where}: {cells['run_id']!r} / {cells['array']!r} is not a run id / array id")
            runs.append(PlannedRun(cells["run_id"], cells["array"], whole(cells["index"], where, "index"),
                                   whole(cells["nodes"], where, "nodes"), whole(cells["gpus"], where, "gpus"),
                                   _hours(cells["gpu_hours"], f"{where}: gpu_hours"),
                                   _hours(cells["node_hours"], f"{where}: node_hours"),
                                   whole(cells["segments"], where, "segments")))
    except csv.Error as exc:
        raise PlannerError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
    return runs


def read_submissions(sweep_dir: Path, arrays: set[str]) -> list[Submission]:
    """submitted.tsv (submit.sh: array, segment, job_id) then resubmitted.tsv (… and the tasks), in order."""
    out = []
    for name, width in ((SUBMITTED, 3), (RESUBMITTED, 4)):
        path = sweep_dir / name
        if not path.is_file():
            continue
        lines = _read(path, name).splitlines()
        for number, line in enumerate(lines[1:], 2):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            cells = line.split("\t")
            if len(cells) != width:
                raise PlannerError(f"{where}: {len(cells)} fields, expected {width} separated by tabs")
            if cells[0] not in arrays:
                raise PlannerError(f"{where}: array {cells[0]!r} is not in {MANIFEST}")
            if not re.fullmatch(r"\d{1,12}", cells[2]):
                raise PlannerError(f"{where}: {cells[2]!r} is not a Slurm job id")
            tasks = task_ranges(cells[3], where) if width == 4 else None
            out.append(Submission(cells[0], whole(cells[1], where, "segment"), cells[2], tasks))
    return out


def read_attempts(path: Path) -> tuple[int, int]:
    """(attempts, highest segment started) from a run's started/ file; lines it cannot read are ignored
    (a job killed mid-write leaves a partial line)."""
    if not path.is_file():
        return 0, 0
    starts = [line.split() for line in _read(path, "started").splitlines() if line.startswith("start ")]
    segments = [int(p[3]) for p in starts if len(p) >= 4 and p[3].isdigit()]
    return len(starts), max(segments, default=0)


def slurm_records(job_ids: list[str], runner: Runner) -> tuple[list[JobRecord], str]:
    """Records of these jobs and where they came from: sacct, then scontrol for jobs sacct lacks."""
    records, source = [], "files"
    try:
        records, source = sacct_jobs(job_ids, runner), "sacct"
    except SlurmUnavailable:
        pass
    known = {r.array_job_id for r in records}
    if missing := [j for j in job_ids if j not in known]:
        try:
            records += scontrol_jobs(missing, runner)
            source = "scontrol" if source == "files" else source
        except SlurmUnavailable:
            pass
    return records, source


def run_state(done: bool, submitted: bool, states: list[str]) -> str:
    """A run's state from its done mark and its jobs' Slurm states (in submission order)."""
    if done:
        return "completed"
    mapped = [SLURM_STATES.get(s, "unknown") for s in states]
    for active in ACTIVE:
        if active in mapped:
            return active
    if mapped:
        return mapped[-1]
    return "unknown" if submitted else "not-submitted"


def _result(path: Path, warnings: list[str]) -> dict[str, float] | None:
    if not path.is_file():
        return None
    try:
        return read_result(path)
    except PlannerError as exc:  # one bad result file must not hide the state of the sweep
        warnings.append(str(exc))
        return None


def sweep_status(sweep_dir: Path, runner: Runner | None = None) -> SweepStatus:
    sweep_dir = Path(sweep_dir)
    runner = runner or run_slurm  # looked up at call time, so a test can stand in for Slurm
    planned = read_planned(sweep_dir)
    submissions = read_submissions(sweep_dir, {r.array for r in planned})
    job_ids = list(dict.fromkeys(s.job_id for s in submissions))
    records, source = slurm_records(job_ids, runner) if job_ids else ([], "files")
    by_job: dict[str, list[JobRecord]] = {}
    for rec in records:
        by_job.setdefault(rec.array_job_id, []).append(rec)
    runs: list[RunStatus] = []
    warnings: list[str] = []
    for run in planned:
        mine = [s for s in submissions if s.covers(run)]
        pairs = [(sub, rec) for sub in mine for rec in by_job.get(sub.job_id, []) if not rec.tasks or rec.has_task(run.index)]
        attempts, started_segment = read_attempts(sweep_dir / STARTED_DIR / run.run_id)
        started = [sub.segment for sub, rec in pairs if rec.start is not None or rec.state == "RUNNING"]
        gpus_per_node = run.gpus / run.nodes if run.nodes else 0.0
        seconds_nodes = sum(rec.elapsed_seconds * rec.nodes for _, rec in pairs)
        seconds_gpus = sum(rec.elapsed_seconds * (rec.gpus if rec.gpus is not None else rec.nodes * gpus_per_node)
                           for _, rec in pairs)
        runs.append(RunStatus(
            run_id=run.run_id, array=run.array, index=run.index,
            state=run_state((sweep_dir / DONE_DIR / run.run_id).exists(), bool(mine), [rec.state for _, rec in pairs]),
            segment=max([*started, started_segment], default=0), segments=run.segments, attempts=attempts,
            jobs=tuple(f"{rec.array_job_id}_{run.index}" if rec.tasks else rec.job_id for _, rec in pairs),
            gpu_hours=seconds_gpus / 3600, node_hours=seconds_nodes / 3600,
            gpu_hours_planned=run.gpu_hours, node_hours_planned=run.node_hours,
            result=_result(sweep_dir / RESULTS_DIR / run.run_id, warnings)))
    if job_ids and source == "files":
        warnings.append("Slurm did not answer (sacct, scontrol): states come from the files alone")
    counts = Counter(r.state for r in runs)
    return SweepStatus(
        sweep=str(sweep_dir), source=source, runs=tuple(runs), counts={s: counts[s] for s in STATES if counts[s]},
        gpu_hours=sum(r.gpu_hours for r in runs), node_hours=sum(r.node_hours for r in runs),
        gpu_hours_planned=sum(r.gpu_hours_planned for r in runs),
        node_hours_planned=sum(r.node_hours_planned for r in runs), warnings=tuple(warnings))
