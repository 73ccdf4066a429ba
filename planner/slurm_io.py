"""What Slurm knows about jobs, as typed records: the one way planner runs a Slurm command and reads `sacct`
(the accounting database, which outlives the controller's memory) and, for jobs sacct does not know (no
slurmdbd, or a job submitted a moment ago that the controller has not sent it yet), `scontrol show job -o`.
`planner status` (sweep.status, sweep.resubmit) and `planner usage` (usage.report) both read jobs here.

One `JobRecord` per allocation: a plain job, one task of an array (`123_4`), or a group of array tasks
still pending together (`123_[5-9%2]`). Job steps (`123_4.batch`, `123_4.0`) are skipped, so an
allocation's time is counted once. The parsers take the commands' text, so tests feed them recorded
output; a line they cannot read is one PlannerError `WHERE:LINE: FIELD: message`, never a traceback.

Times: sacct and scontrol print them in the local zone of the host they run on, without saying which, and
sacct reads -S/-E in that zone too. The runner gives both TZ=UTC, so every time here is UTC epoch seconds:
`planner usage` splits seconds into UTC months; `planner status` only asks whether a job has started.

sacct's fields (-o), by name; a query asks for JOB_FIELDS or ACCOUNT_FIELDS, and a record holds None for
the optional ones (ExitCode, Submit, Account, Partition, Cluster) its query did not ask for:
  JobID       as users see it: 123, 123_4 (task 4 of array job 123), 123_[5-9%2]; a step after a dot
  JobIDRaw    Slurm's own id of the allocation (an array task has one of its own)
  State       PENDING, RUNNING, COMPLETED, TIMEOUT, CANCELLED (without "by UID"), ...
  ExitCode    CODE:SIGNAL
  ElapsedRaw  seconds of wall clock charged (for a running job: so far)
  AllocNodes  whole nodes allocated
  AllocTRES   trackable resources allocated: gres/gpu=N (or gres/gpu:TYPE=N) is the GPU count
  Submit, Start, End   YYYY-MM-DDTHH:MM:SS, or Unknown/None when it has not happened
  Account, Partition, Cluster   the budget charged, where it ran, the Slurm cluster's name
"""

from __future__ import annotations

import calendar
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from planner.errors import PlannerError
from planner.records import Record

# Two column orders, because both are recorded: tests/data/sacct (status) and the --sacct-file users write
# by docs/usage.md (usage). The parser reads columns by name, so the order is the text's, not the code's.
JOB_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "ElapsedRaw", "AllocNodes", "AllocTRES", "Submit", "Start", "End")
ACCOUNT_FIELDS = ("JobIDRaw", "JobID", "Account", "Partition", "State", "Start", "End", "ElapsedRaw", "AllocNodes",
                  "AllocTRES", "Cluster")
REQUIRED_FIELDS = ("JobID", "JobIDRaw", "State", "ElapsedRaw", "AllocNodes", "AllocTRES", "Start", "End")
# JobID as sacct and scontrol print it: job, array task or pending task group, het component, step after a dot
JOB_ID = re.compile(r"(?P<job>\d+)(?:_(?P<task>\d+|\[[0-9,%\-]+\]))?(?:\+\d+)?(?P<step>\.[A-Za-z0-9_+\-]+)?")
TASK_RANGES = re.compile(r"(\d+(-\d+)?)(,\d+(-\d+)?)*")
STATE_WORD = re.compile(r"[A-Z][A-Z_]*")
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
WHOLE = re.compile(r"[0-9]{1,12}")  # ASCII digits only (int() takes others); 12 digits: 30,000 years of seconds
EXIT = re.compile(r"([0-9]+):([0-9]+)")
RUN_TIME = re.compile(r"(?:([0-9]+)-)?([0-9]+):([0-9]{2}):([0-9]{2})")
NO_TIME = ("", "Unknown", "None", "N/A")  # Slurm's words for a time (or exit code) that has not happened
REQUEUED = ("REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED")
SLURM_TIMEOUT_SECONDS = 60
ACCOUNT_TIMEOUT_SECONDS = 300  # an account's jobs over months: slurmdbd may take minutes
# Only these get TZ=UTC: planner reads their times. Not sbatch: a job inherits the submitter's environment.
PRINTS_TIMES = ("sacct", "scontrol")

# argv -> the command's stdout; raises SlurmUnavailable when it cannot answer
Runner = Callable[[Sequence[str]], str]


class SlurmUnavailable(PlannerError):
    """A Slurm command is missing or did not answer: the caller falls back to what else it knows, or says so."""


@dataclass(frozen=True)
class JobRecord(Record):
    job_id: str  # the allocation as Slurm shows it: 123, 123_4, 123_[5-9%2]
    job_id_raw: str  # Slurm's own id of this allocation (a task's differs from its array's)
    array_job_id: str  # the id sbatch printed: the array's (a het job's leader's), or the job's own
    tasks: tuple[tuple[int, int], ...]  # array task ranges (first, last) this record stands for; () for a plain job
    state: str
    elapsed_seconds: int
    nodes: int
    gpus: int | None  # from AllocTRES; None when it lists none (the cluster may not track GPUs)
    start: int | None  # UTC epoch seconds; None: never started
    end: int | None  # None: still running, or never started
    submit: int | None = None
    exit_code: int | None = None
    account: str | None = None
    partition: str | None = None
    cluster: str | None = None
    source: str = "sacct"  # or "scontrol"

    def has_task(self, index: int) -> bool:
        return any(first <= index <= last for first, last in self.tasks)

    @property
    def node_seconds(self) -> int:
        return self.elapsed_seconds * self.nodes

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"


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


def slurm_time(text: str, where: str, key: str) -> int | None:
    """A Slurm time (printed under TZ=UTC) as UTC epoch seconds; None for Unknown, None, N/A or nothing."""
    if text in NO_TIME:
        return None
    try:
        if not TIME.fullmatch(text):
            raise ValueError(text)
        return calendar.timegm(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timetuple())
    except ValueError:
        raise PlannerError(f"{where}: {key}: {text!r} is not a time YYYY-MM-DDTHH:MM:SS (or Unknown)") from None


def whole(text: str, where: str, key: str) -> int:
    if not WHOLE.fullmatch(text):
        raise PlannerError(f"{where}: {key}: {text!r} is not a whole number")
    return int(text)


def gpus_of(tres: str, where: str) -> int | None:
    """The GPUs of an AllocTRES or TRES list (billing=192,cpu=192,gres/gpu=16,mem=2000G,node=4): its gres/gpu,
    else the sum of its typed gres/gpu:TYPE entries (listed beside it, they would count twice); None without."""
    untyped: int | None = None
    typed: int | None = None
    for item in filter(None, tres.split(",")):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PlannerError(f"{where}: AllocTRES: {item!r} is not NAME=VALUE")
        if name == "gres/gpu" or name.startswith("gres/gpu:"):
            if not WHOLE.fullmatch(value):
                raise PlannerError(f"{where}: AllocTRES: {name}={value!r} is not a whole number of GPUs")
            if name == "gres/gpu":
                untyped = int(value)
            else:
                typed = (typed or 0) + int(value)
    return untyped if untyped is not None else typed


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


def _job_id(text: str, raw: str, where: str) -> tuple[str, tuple[tuple[int, int], ...]] | None:
    """(array job id, task ranges) of an allocation's JobID, None for a job step."""
    m = JOB_ID.fullmatch(text)
    if m is None:
        raise PlannerError(f"{where}: JobID: {text!r} is not a Slurm job id")
    if m["step"]:
        return None
    if not WHOLE.fullmatch(raw):
        raise PlannerError(f"{where}: JobIDRaw: {raw!r} is not a job id")
    tasks = task_ranges(m["task"], where) if m["task"] else ()
    return m["job"], tasks


def parse_sacct(text: str, where: str, fields: Sequence[str]) -> list[JobRecord]:
    """Allocations from `sacct -P -n -o FIELDS` text (`where` names it in errors); steps and blank lines are skipped."""
    if missing := [f for f in REQUIRED_FIELDS if f not in fields]:
        raise ValueError(f"sacct fields lack {', '.join(missing)}")
    records = []
    for number, line in enumerate(text.split("\n"), 1):  # a field may hold \r or other separators; a line ends at \n
        if line.strip():
            record = _sacct_record(line, f"{where}:{number}", fields)
            if record is not None:
                records.append(record)
    return records


def _sacct_record(line: str, at: str, fields: Sequence[str]) -> JobRecord | None:
    cells = line.split("|")
    if len(cells) != len(fields):
        raise PlannerError(f"{at}: {len(cells)} fields separated by '|', expected {len(fields)} "
                           f"({'|'.join(fields)}, as sacct -P -n -o {','.join(fields)} prints them)")
    row = dict(zip(fields, cells, strict=True))
    ids = _job_id(row["JobID"], row["JobIDRaw"], at)
    if ids is None:
        return None
    record = JobRecord(
        job_id=row["JobID"], job_id_raw=row["JobIDRaw"], array_job_id=ids[0], tasks=ids[1],
        state=_state(row["State"], at), elapsed_seconds=whole(row["ElapsedRaw"], at, "ElapsedRaw"),
        nodes=whole(row["AllocNodes"], at, "AllocNodes"), gpus=gpus_of(row["AllocTRES"], at),
        start=slurm_time(row["Start"], at, "Start"), end=slurm_time(row["End"], at, "End"),
        submit=slurm_time(row["Submit"], at, "Submit") if "Submit" in row else None,
        exit_code=_exit_code(row["ExitCode"], at) if "ExitCode" in row else None,
        account=row.get("Account"), partition=row.get("Partition"), cluster=row.get("Cluster"), source="sacct")
    # each field first, so an error names the field that is wrong; then whether they agree
    if record.start is None and record.elapsed_seconds:
        raise PlannerError(f"{at}: ElapsedRaw is {record.elapsed_seconds} s but the job has no Start ({row['Start']!r})")
    if record.start is not None and record.end is not None and record.end < record.start:
        raise PlannerError(f"{at}: End {row['End']} is before Start {row['Start']}")
    return record


# keys of `scontrol show job -o`: a value may hold spaces (a path), a key is a word before '=' after a space
SCONTROL_KEY = re.compile(r" (?=[A-Za-z/:]+=)")


def _run_time(text: str, where: str) -> int:
    m = RUN_TIME.fullmatch(text)
    if m is None:
        raise PlannerError(f"{where}: RunTime: {text!r} is not [D-]HH:MM:SS")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_scontrol(text: str, where: str = "scontrol output") -> list[JobRecord]:
    """Records of `scontrol show job -o` (one line per job, array task or pending task group)."""
    records = []
    for number, line in enumerate(text.split("\n"), 1):  # a field may hold \r or other separators; a line ends at \n
        if not line.strip():
            continue
        at = f"{where}:{number}"
        pairs = dict(p.split("=", 1) for p in SCONTROL_KEY.split(line.strip()) if "=" in p)
        missing = [k for k in ("JobId", "JobState", "RunTime", "NumNodes") if k not in pairs]
        if missing:
            raise PlannerError(f"{at}: no {', '.join(missing)}: not a line of `scontrol show job -o`")
        raw = pairs["JobId"]
        array_job, task = pairs.get("ArrayJobId"), pairs.get("ArrayTaskId")
        if array_job is not None and task is not None:
            tasks = task_ranges(task, at)
            # one task keeps no throttle (scontrol prints a lone pending task of a throttled array as 1%3)
            single = tasks == ((tasks[0][0], tasks[0][0]),)
            job_id = f"{array_job}_{tasks[0][0] if single else '[' + task.strip('[]') + ']'}"
        else:
            array_job, tasks, job_id = raw, (), raw
        _job_id(job_id, raw, at)
        nodes_text = pairs["NumNodes"].split("-", 1)[0]  # a pending job shows its range, e.g. 1-1
        state = _state(pairs["JobState"], at)
        records.append(JobRecord(
            job_id=job_id, job_id_raw=raw, array_job_id=array_job, tasks=tasks, state=state,
            elapsed_seconds=_run_time(pairs["RunTime"], at), nodes=whole(nodes_text, at, "NumNodes"),
            gpus=gpus_of(pairs.get("TRES", ""), at),
            # scontrol shows the expected start of a pending job and the expected end of a running one
            start=slurm_time(pairs.get("StartTime", ""), at, "StartTime") if state != "PENDING" else None,
            end=slurm_time(pairs.get("EndTime", ""), at, "EndTime") if state not in ("PENDING", "RUNNING") else None,
            submit=slurm_time(pairs.get("SubmitTime", ""), at, "SubmitTime"),
            exit_code=_exit_code(pairs.get("ExitCode", ""), at), source="scontrol"))
    return records


def run_slurm(args: Sequence[str], timeout: int = SLURM_TIMEOUT_SECONDS) -> str:
    """stdout of a Slurm command; SlurmUnavailable, in one line, when it is missing, fails or hangs."""
    env = {**os.environ, "TZ": "UTC"} if args[0] in PRINTS_TIMES else None
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise SlurmUnavailable(f"{args[0]} is not installed here", "slurm") from None
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable(f"{args[0]} did not answer within {timeout} s", "slurm") from None
    if done.returncode != 0:
        reason = next((line.strip() for line in done.stderr.splitlines() if line.strip()), "no message")
        raise SlurmUnavailable(f"{args[0]} failed (exit {done.returncode}): {reason}", "slurm")
    return done.stdout


def sacct_argv(selection: Sequence[str], fields: Sequence[str]) -> list[str]:
    """-P: parsable2 ('|' between fields, none after the last); -n: no header; -X: allocations, not steps."""
    return ["sacct", "-P", "-n", "-X", *selection, "-o", ",".join(fields)]


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
    argv = sacct_argv(["-D", "-j", ",".join(job_ids)], JOB_FIELDS)
    return incarnations(parse_sacct(runner(argv), "sacct output", JOB_FIELDS))


def sacct_account(account: str, start: str, end: str, runner: Runner | None = None) -> list[JobRecord]:
    """`account`'s allocations (every user's: -a) that ran at any time between `start` and `end`
    (YYYY-MM-DDTHH:MM:SS, UTC)."""
    argv = sacct_argv(["-a", "-A", account, "-S", start, "-E", end], ACCOUNT_FIELDS)
    text = runner(argv) if runner is not None else run_slurm(argv, ACCOUNT_TIMEOUT_SECONDS)
    return parse_sacct(text, "sacct output", ACCOUNT_FIELDS)


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
