"""Slurm's accounting as typed jobs: the one sacct call (with an injectable runner) and its parser.

The call is `sacct -P -n -X -a -A ACCOUNT -S START -E END -o FIELDS` (-P: parsable2, fields separated by
'|' with none after the last; -n: no header; -X: allocations only, one line per job or array task, not
per step; -a: every user of the account; -S/-E: jobs that ran at any time in the window). sacct prints
times in the local time of the host it runs on, without a zone: the runner sets TZ=UTC, so every time
here is UTC.

FIELDS, and what the usage report takes from each:
  JobIDRaw    the job's own id (an array task has one of its own)
  JobID       as users see it: 123, or 123_4 for task 4 of array job 123 (matched against submitted.tsv)
  Account     the budget charged
  Partition   where it ran
  State       RUNNING jobs count the seconds elapsed so far
  Start, End  start of the job (Unknown or None when it never started), end (Unknown while running)
  ElapsedRaw  seconds of wall clock charged (for a running job: so far), an integer
  AllocNodes  whole nodes allocated
  AllocTRES   the trackable resources allocated: gres/gpu=N is the GPU count GPU-charged systems bill
  Cluster     the Slurm cluster name
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

FIELDS = ("JobIDRaw", "JobID", "Account", "Partition", "State", "Start", "End", "ElapsedRaw", "AllocNodes", "AllocTRES",
          "Cluster")
NOT_A_TIME = ("Unknown", "None", "")  # sacct's words for a time that has not happened
SLURM_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
WHOLE = re.compile(r"\d{1,12}")  # seconds, nodes, GPUs: whole numbers (12 digits: 30,000 years of seconds)
SACCT_TIMEOUT_SECONDS = 300

# argv -> what sacct printed on stdout; raises PlannerError when sacct cannot answer
Runner = Callable[[Sequence[str]], str]


@dataclass(frozen=True)
class SacctJob(Record):
    """One allocation (job or array task) as sacct reports it; times are UTC epoch seconds."""

    job_id_raw: str
    job_id: str
    account: str
    partition: str
    state: str
    start: int | None  # None: never started
    end: int | None  # None: still running (or never started)
    elapsed: int  # ElapsedRaw: seconds
    nodes: int  # AllocNodes
    gpus: int  # gres/gpu of AllocTRES (0 when it lists none)
    cluster: str

    @property
    def node_seconds(self) -> int:
        return self.elapsed * self.nodes

    @property
    def running(self) -> bool:
        return self.state.startswith("RUNNING")

    @property
    def array_job(self) -> str:
        """The id that sbatch printed for it (an array task's array job, a het job's leader)."""
        return re.split(r"[_+]", self.job_id, maxsplit=1)[0]


def sacct_command(account: str, start: str, end: str) -> list[str]:
    """The sacct argv for `account`'s allocations that ran between `start` and `end` (YYYY-MM-DDTHH:MM:SS)."""
    return ["sacct", "-P", "-n", "-X", "-a", "-A", account, "-S", start, "-E", end, "-o", ",".join(FIELDS)]


def run_sacct(argv: Sequence[str]) -> str:
    """Run sacct with TZ=UTC (its times are then UTC); its stdout, or one line saying why it did not answer."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=SACCT_TIMEOUT_SECONDS,
                              env={**os.environ, "TZ": "UTC"})
    except FileNotFoundError:
        raise PlannerError("sacct (Slurm's accounting command) is not installed here; run it where it is and give its "
                           "output as {sacct_file}", refs=("sacct_file",)) from None
    except subprocess.TimeoutExpired:
        raise PlannerError(f"sacct did not answer within {SACCT_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        reason = next((line.strip() for line in done.stderr.splitlines() if line.strip()), "no message")
        raise PlannerError(f"sacct failed (exit {done.returncode}): {reason}")
    return done.stdout


def query(account: str, start: str, end: str, runner: Runner = run_sacct) -> list[SacctJob]:
    """`account`'s allocations between `start` and `end`, as sacct reports them."""
    return parse_sacct(runner(sacct_command(account, start, end)), "sacct output")


def parse_sacct(text: str, where: str) -> list[SacctJob]:
    """Jobs from `sacct -P -n -o FIELDS` text; a line that is not such a record is an error naming it
    (`where:LINE: ...`). Blank lines are skipped."""
    jobs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            jobs.append(_job(line, f"{where}:{number}"))
    return jobs


def _job(line: str, at: str) -> SacctJob:
    cells = line.split("|")
    if len(cells) != len(FIELDS):
        raise PlannerError(f"{at}: {len(cells)} fields separated by '|', expected {len(FIELDS)} "
                           f"({'|'.join(FIELDS)}, as sacct -P -n -o {','.join(FIELDS)} prints them)")
    raw = dict(zip(FIELDS, cells, strict=True))
    if not raw["JobIDRaw"] or not raw["JobID"]:
        raise PlannerError(f"{at}: JobIDRaw and JobID must not be empty")
    elapsed, nodes = _whole(raw, "ElapsedRaw", at), _whole(raw, "AllocNodes", at)
    start, end = _time(raw, "Start", at), _time(raw, "End", at)
    if start is None and elapsed:
        raise PlannerError(f"{at}: ElapsedRaw is {elapsed} s but the job has no Start ({raw['Start']!r})")
    if start is not None and end is not None and end < start:
        raise PlannerError(f"{at}: End {raw['End']} is before Start {raw['Start']}")
    return SacctJob(job_id_raw=raw["JobIDRaw"], job_id=raw["JobID"], account=raw["Account"], partition=raw["Partition"],
                    state=raw["State"], start=start, end=end, elapsed=elapsed, nodes=nodes,
                    gpus=gpus_of(raw["AllocTRES"], at), cluster=raw["Cluster"])


def _whole(raw: dict[str, str], name: str, at: str) -> int:
    if not WHOLE.fullmatch(raw[name]):
        raise PlannerError(f"{at}: {name}: {raw[name]!r} is not a whole number")
    return int(raw[name])


def _time(raw: dict[str, str], name: str, at: str) -> int | None:
    text = raw[name]
    if text in NOT_A_TIME:
        return None
    try:
        if not SLURM_TIME.fullmatch(text):
            raise ValueError(text)
        return calendar.timegm(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timetuple())
    except ValueError:
        raise PlannerError(f"{at}: {name}: {text!r} is not a time YYYY-MM-DDTHH:MM:SS (or Unknown)") from None


def gpus_of(tres: str, at: str) -> int:
    """The GPU count of an AllocTRES list (billing=192,cpu=192,gres/gpu=16,mem=2000G,node=4): its gres/gpu, or
    the sum of its typed gres/gpu:TYPE entries when the untyped one is missing; 0 without either."""
    untyped, typed = None, 0
    for item in filter(None, tres.split(",")):
        name, sep, value = item.partition("=")
        if not sep:
            raise PlannerError(f"{at}: AllocTRES: {item!r} is not NAME=COUNT")
        if name == "gres/gpu" or name.startswith("gres/gpu:"):
            if not WHOLE.fullmatch(value):
                raise PlannerError(f"{at}: AllocTRES: {name}={value!r} is not a whole number of GPUs")
            if name == "gres/gpu":
                untyped = int(value)
            else:
                typed += int(value)
    return untyped if untyped is not None else typed
