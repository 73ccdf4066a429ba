"""What Slurm knows about jobs, as typed rows: `sacct` (the accounting database, which outlives the
controller's memory) and, for jobs it does not know (no slurmdbd, or a job submitted a moment ago that
the controller has not sent it yet), `scontrol show job -o`.

One `JobRecord` per allocation: a plain job, one task of an array (`123_4`), or a group of array tasks
still pending together (`123_[5-9%2]`). Job steps (`123_4.batch`, `123_4.0`) are skipped, so an
allocation's time is counted once. The parsers take the commands' text, so tests feed them recorded
output; a line they cannot read is one PlannerError naming the line, never a traceback.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from planner.errors import PlannerError
from planner.records import Record

# sacct -P (parsable2: "|" between fields, none at the end) -n (no header) -X (allocations only) -o FIELDS
SACCT_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "ElapsedRaw", "AllocNodes", "AllocTRES", "Submit", "Start", "End")
# JobID as sacct and scontrol print it: job, array task or pending task group, optional step after a dot
JOB_ID = re.compile(r"(?P<job>\d+)(?:_(?P<task>\d+|\[[0-9,%\-]+\]))?(?:\+\d+)?(?P<step>\.[A-Za-z0-9_+\-]+)?")
TASK_RANGES = re.compile(r"(\d+(-\d+)?)(,\d+(-\d+)?)*")
STATE_WORD = re.compile(r"[A-Z][A-Z_]*")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
EXIT = re.compile(r"(\d+):(\d+)")
RUN_TIME = re.compile(r"(?:(\d+)-)?(\d+):(\d\d):(\d\d)")
NO_TIME = ("", "Unknown", "None", "N/A")


class SlurmUnavailable(PlannerError):
    """A Slurm command is missing or did not answer: the caller falls back to what files tell."""


@dataclass(frozen=True)
class JobRecord(Record):
    job_id: str  # the allocation as Slurm shows it: 123, 123_4, 123_[5-9%2]
    job_id_raw: str  # Slurm's own id of this allocation (a task's differs from its array's)
    array_job_id: str  # the id sbatch printed: the array's, or the job's own
    tasks: tuple[tuple[int, int], ...]  # array task ranges (first, last) this record stands for; () for a plain job
    state: str  # Slurm's word: PENDING, RUNNING, COMPLETED, TIMEOUT, CANCELLED (without "by UID"), ...
    exit_code: int | None
    elapsed_seconds: int
    nodes: int
    gpus: int | None  # gres/gpu of the allocation, when Slurm reports it
    submit: str | None  # YYYY-MM-DDTHH:MM:SS, local time of the cluster
    start: str | None
    end: str | None
    source: str  # "sacct" or "scontrol"

    def has_task(self, index: int) -> bool:
        return any(first <= index <= last for first, last in self.tasks)


def task_ranges(text: str, where: str) -> tuple[tuple[int, int], ...]:
    """`4`, `[5-9%2]`, `[1,4,7-9]`, `5-9%2` → ((first, last), ...); the throttle after % is not a task."""
    body = text.strip("[]").split("%", 1)[0]
    if not TASK_RANGES.fullmatch(body):
        raise PlannerError(f"{where}: {text!r} is not an array task id or range")
    ranges = []
    for part in body.split(","):
        first, _, last = part.partition("-")
        ranges.append((int(first), int(last or first)))
    return tuple(ranges)


def _time(text: str, where: str, key: str) -> str | None:
    if text in NO_TIME:
        return None
    if not TIME.fullmatch(text):
        raise PlannerError(f"{where}: {key}: {text!r} is not a time (YYYY-MM-DDTHH:MM:SS)")
    try:
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise PlannerError(f"{where}: {key}: {text!r} is not a valid date and time") from None
    return text


def _count(text: str, where: str, key: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise PlannerError(f"{where}: {key}: {text!r} is not a whole number")
    return int(text)


def _state(text: str, where: str) -> str:
    word = text.split(" ", 1)[0]  # "CANCELLED by 0"
    if not STATE_WORD.fullmatch(word):
        raise PlannerError(f"{where}: State: {text!r} is not a Slurm job state")
    return word


def _exit_code(text: str, where: str) -> int | None:
    if text in NO_TIME:
        return None
    m = EXIT.fullmatch(text)
    if m is None:
        raise PlannerError(f"{where}: ExitCode: {text!r} is not CODE:SIGNAL")
    return int(m[1])


def gpus_of(tres: str, where: str) -> int | None:
    """The GPUs of an AllocTRES or TRES text (cpu=48,mem=500G,node=1,gres/gpu=4,gres/gpu:a100=4)."""
    if not tres:
        return None
    pairs = {}
    for item in tres.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise PlannerError(f"{where}: AllocTRES: {item!r} is not NAME=VALUE")
        pairs[key] = value
    typed = [v for k, v in pairs.items() if k.startswith("gres/gpu:")]
    if "gres/gpu" in pairs:
        return _count(pairs["gres/gpu"], where, "gres/gpu")
    if typed:
        return sum(_count(v, where, "gres/gpu") for v in typed)
    return None


def _job_id(text: str, raw: str, where: str) -> tuple[str, tuple[tuple[int, int], ...]] | None:
    """(array job id, task ranges) of an allocation's JobID, None for a job step."""
    m = JOB_ID.fullmatch(text)
    if m is None:
        raise PlannerError(f"{where}: JobID: {text!r} is not a Slurm job id")
    if m["step"]:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise PlannerError(f"{where}: JobIDRaw: {raw!r} is not a job id")
    tasks = task_ranges(m["task"], where) if m["task"] else ()
    return m["job"], tasks


def parse_sacct(text: str) -> list[JobRecord]:
    """Rows of `sacct -P -n -o` SACCT_FIELDS (in that order); job steps are skipped."""
    records = []
    for number, line in enumerate(text.split("\n"), 1):  # a field may hold \r or other separators; a line ends at \n
        if not line.strip():
            continue
        where = f"sacct output line {number}"
        cells = line.split("|")
        if len(cells) != len(SACCT_FIELDS):
            raise PlannerError(f"{where}: {len(cells)} fields, expected {len(SACCT_FIELDS)} ({', '.join(SACCT_FIELDS)})")
        row = dict(zip(SACCT_FIELDS, cells, strict=True))
        ids = _job_id(row["JobID"], row["JobIDRaw"], where)
        if ids is None:
            continue
        records.append(JobRecord(
            job_id=row["JobID"], job_id_raw=row["JobIDRaw"], array_job_id=ids[0], tasks=ids[1],
            state=_state(row["State"], where), exit_code=_exit_code(row["ExitCode"], where),
            elapsed_seconds=_count(row["ElapsedRaw"], where, "ElapsedRaw"),
            nodes=_count(row["AllocNodes"], where, "AllocNodes"), gpus=gpus_of(row["AllocTRES"], where),
            submit=_time(row["Submit"], where, "Submit"), start=_time(row["Start"], where, "Start"),
            end=_time(row["End"], where, "End"), source="sacct"))
    return records


# keys of `scontrol show job -o`: a value may hold spaces (a path), a key is a word before '=' after a space
SCONTROL_KEY = re.compile(r" (?=[A-Za-z/:]+=)")


def _run_time(text: str, where: str) -> int:
    m = RUN_TIME.fullmatch(text)
    if m is None:
        raise PlannerError(f"{where}: RunTime: {text!r} is not [D-]HH:MM:SS")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_scontrol(text: str) -> list[JobRecord]:
    """Records of `scontrol show job -o` (one line per job, array task or pending task group)."""
    records = []
    for number, line in enumerate(text.split("\n"), 1):  # a field may hold \r or other separators; a line ends at \n
        if not line.strip():
            continue
        where = f"scontrol output line {number}"
        pairs = dict(p.split("=", 1) for p in SCONTROL_KEY.split(line.strip()) if "=" in p)
        missing = [k for k in ("JobId", "JobState", "RunTime", "NumNodes") if k not in pairs]
        if missing:
            raise PlannerError(f"{where}: no {', '.join(missing)}: not a line of `scontrol show job -o`")
        raw = pairs["JobId"]
        array_job, task = pairs.get("ArrayJobId"), pairs.get("ArrayTaskId")
        if array_job is not None and task is not None:
            tasks = task_ranges(task, where)
            job_id = f"{array_job}_{task if tasks == ((tasks[0][0], tasks[0][0]),) else '[' + task + ']'}"
        else:
            array_job, tasks, job_id = raw, (), raw
        _job_id(job_id, raw, where)
        nodes_text = pairs["NumNodes"].split("-", 1)[0]  # a pending job shows its range, e.g. 1-1
        records.append(JobRecord(
            job_id=job_id, job_id_raw=raw, array_job_id=array_job, tasks=tasks, state=_state(pairs["JobState"], where),
            exit_code=_exit_code(pairs.get("ExitCode", ""), where), elapsed_seconds=_run_time(pairs["RunTime"], where),
            nodes=_count(nodes_text, where, "NumNodes"), gpus=gpus_of(pairs.get("TRES", ""), where),
            submit=_time(pairs.get("SubmitTime", ""), where, "SubmitTime"),
            start=_time(pairs.get("StartTime", ""), where, "StartTime") if pairs["JobState"] != "PENDING" else None,
            end=_time(pairs.get("EndTime", ""), where, "EndTime") if pairs["JobState"] not in ("PENDING", "RUNNING") else None,
            source="scontrol"))
    return records


Runner = Callable[[Sequence[str]], str]


def run_slurm(args: Sequence[str]) -> str:
    """stdout of a Slurm command; SlurmUnavailable when it is missing, fails or hangs."""
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise SlurmUnavailable(f"{args[0]} is not installed here", "slurm") from None
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable(f"{args[0]} did not answer within 60 s", "slurm") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise SlurmUnavailable(f"{args[0]} failed: {first}", "slurm")
    return done.stdout


REQUEUED = ("REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED")


def incarnations(records: list[JobRecord]) -> list[JobRecord]:
    """Of the records sacct -D gives for one job id, those of the latest job: its last record and, before it,
    the records of its requeued runs (state REQUEUED). A record before those in another state belongs to an
    older job that had the same id before the ids were reset, and is dropped."""
    groups: dict[str, list[JobRecord]] = {}
    for rec in records:
        groups.setdefault(rec.job_id, []).append(rec)
    kept: list[JobRecord] = []
    for group in groups.values():
        mine = [group[-1]]
        for rec in reversed(group[:-1]):
            if rec.state not in REQUEUED:
                break
            mine.insert(0, rec)
        kept += mine
    return kept


def sacct_jobs(job_ids: Sequence[str], runner: Runner = run_slurm) -> list[JobRecord]:
    """The allocations of these jobs (array job ids give all their tasks) from the accounting database,
    each run of a requeued job included (-D: without it sacct shows only the last one)."""
    if not job_ids:
        return []
    return incarnations(parse_sacct(runner(["sacct", "-P", "-n", "-X", "-D", "-o", ",".join(SACCT_FIELDS),
                                            "-j", ",".join(job_ids)])))


def scontrol_jobs(job_ids: Sequence[str], runner: Runner = run_slurm) -> list[JobRecord]:
    """The jobs the controller still holds (queued, running, or ended less than MinJobAge ago), one query
    per job: scontrol fails for a job it has forgotten, which then simply has no record."""
    records = []
    for job in job_ids:
        try:
            records += parse_scontrol(runner(["scontrol", "show", "job", "-o", job]))
        except SlurmUnavailable as exc:
            if "Invalid job id" not in exc.message:
                raise
    return records
