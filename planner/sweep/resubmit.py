"""Resubmission of a sweep (`planner status DIR` asked to resubmit): submit again the runs that ended unfinished.

Only runs that are neither completed (their {done_file} exists) nor pending or running get a job, so
a finished run never runs twice and a second resubmission right after the first submits nothing (its
runs are pending). Each unfinished run restarts at the segment it had reached, through the rest of its
planned chain, with the sweep's own array script (`sbatch --array=TASKS`, only the unfinished task
indices, keeping the array's throttle); its command sees {resume}=1 and loads its checkpoint. The new
job ids are appended to resubmitted.tsv (array, segment, job_id, tasks), one line per sbatch as it is
accepted, which `planner status` reads beside submit.sh's submitted.tsv.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from planner.errors import PlannerError
from planner.records import Record
from planner.slurm_io import Runner
from planner.sweep import status as status_module
from planner.sweep.slurm import SUBMITTED
from planner.sweep.status import ACTIVE, RESUBMITTED, RESUBMITTED_HEADER, SweepStatus, sweep_status

LOCK = ".resubmit.planner-lock"
THROTTLE = re.compile(r"^#SBATCH --array=\S*%(\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class Resubmission(Record):
    array: str
    first_segment: int
    segments: int
    tasks: tuple[int, ...]
    run_ids: tuple[str, ...]
    job_ids: tuple[str, ...] = ()  # one per segment, once submitted


def task_list(tasks: tuple[int, ...]) -> str:
    """Sorted task indices as Slurm's --array ranges: (1, 2, 3, 7) → 1-3,7."""
    parts, start = [], None
    for i, task in enumerate(tasks):
        if start is None:
            start = task
        if i + 1 == len(tasks) or tasks[i + 1] != task + 1:
            parts.append(str(start) if start == task else f"{start}-{task}")
            start = None
    return ",".join(parts)


def plan_resubmission(status: SweepStatus) -> list[Resubmission]:
    """Unfinished runs grouped by array and the segment they restart at."""
    if status.source == "files" and any(r.jobs or r.state == "unknown" for r in status.runs):
        raise PlannerError("Slurm does not answer, so which runs are still queued is unknown; nothing was resubmitted")
    groups: dict[tuple[str, int, int], list] = {}
    for run in status.runs:
        if run.state == "completed" or run.state in ACTIVE:
            continue
        first = min(max(run.segment, 1), run.segments)
        groups.setdefault((run.array, first, run.segments), []).append(run)
    return [Resubmission(array, first, segments, tuple(sorted(r.index for r in runs)),
                         tuple(r.run_id for r in sorted(runs, key=lambda r: r.index)))
            for (array, first, segments), runs in sorted(groups.items())]


def _append(path: Path, cells: tuple[str, ...]) -> None:
    """One whole line per call, on disk before the next sbatch: the record outlives a crash of the planner."""
    new = not path.exists()
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(("\t".join(RESUBMITTED_HEADER) + "\n" if new else "") + "\t".join(cells) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _job_id(output: str) -> str:
    job = output.strip().split(";", 1)[0]  # sbatch --parsable prints ID or ID;CLUSTER
    if not re.fullmatch(r"\d{1,12}", job):
        raise PlannerError(f"sbatch printed {output.strip()[:80]!r}, not a job id")
    return job


@contextmanager
def _exclusive(sweep_dir: Path) -> Iterator[None]:
    """One resubmission of a sweep at a time: two at once would both see the same runs unfinished. The lock
    file stays (removing it would let a third process lock a new file while the second holds the old one)."""
    with open(sweep_dir / LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PlannerError(f"{sweep_dir}: another resubmission of this sweep is running; try again when it "
                               "has ended", "sweep_dir") from None
        yield


def resubmit(sweep_dir: Path, runner: Runner | None = None) -> list[Resubmission]:
    """Submit the runs of the sweep that are unfinished now (`plan_resubmission` of its status, read under
    the lock); returns the groups with their new job ids."""
    runner = runner or status_module.run_slurm
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / SUBMITTED).is_file():
        raise PlannerError(f"{sweep_dir}: not submitted yet (no {SUBMITTED}); submit it with its submit.sh first", "sweep_dir")
    with _exclusive(sweep_dir):
        return _submit(sweep_dir, sweep_status(sweep_dir, runner), runner)


def _submit(sweep_dir: Path, status: SweepStatus, runner: Runner) -> list[Resubmission]:
    done = []
    for group in plan_resubmission(status):
        script = (sweep_dir / "arrays" / f"{group.array}.sbatch").resolve()
        if not script.is_file():
            raise PlannerError(f"{script}: missing; regenerate the sweep with the same spec", "sweep_dir")
        throttle = THROTTLE.search(script.read_text(encoding="utf-8"))
        tasks = task_list(group.tasks) + (f"%{throttle[1]}" if throttle else "")
        jobs: list[str] = []
        for segment in range(group.first_segment, group.segments + 1):
            after = [f"--dependency=afterany:{jobs[-1]}"] if jobs else []
            job = _job_id(runner(["sbatch", "--parsable", f"--array={tasks}", *after, str(script), str(segment)]))
            _append(sweep_dir / RESUBMITTED, (group.array, str(segment), job, task_list(group.tasks)))
            jobs.append(job)
        done.append(replace(group, job_ids=tuple(jobs)))
    return done
