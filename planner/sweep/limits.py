"""The Slurm limits a sweep is designed against: read from the cluster at hand when Slurm answers
(`scontrol show config`, `scontrol show partition -o`, `sacctmgr show assoc`), from the catalog otherwise.

Reading is separate from designing: `read_live` asks Slurm through a runner (a function from an argument
list to stdout, so tests replay recorded text) and never raises; `resolve` combines what it read with the
catalog and the spec, a pure function. A sweep's files depend only on the spec, the catalog and the
`Limits` it was designed with, and the summary says which source those came from.

- MaxArraySize (slurm.conf): the largest task index is MaxArraySize - 1, so an array holds at most
  MaxArraySize tasks (0..MaxArraySize-1); 0 disables job arrays; Slurm's default is 1001
  (slurm.schedmd.com/slurm.conf.html).
- MaxJobCount (slurm.conf): the jobs the controller keeps for all users together.
- MaxSubmitJobs is a limit of the user's association (slurm.schedmd.com/resource_limits.html), known
  only when sacctmgr answers (it needs accounting through slurmdbd).
- Partition MaxNodes, MaxTime, TotalNodes, State (slurm.schedmd.com/scontrol.html, `show partition`).
"""

from __future__ import annotations

import getpass
import math
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from planner.errors import PlannerError
from planner.records import Record

if TYPE_CHECKING:
    from planner.catalog import Cluster, Partition

Runner = Callable[[Sequence[str]], str]  # argv -> stdout; raises OSError or subprocess.SubprocessError
TIMEOUT_SECONDS = 5.0
MODES = ("auto", "slurm", "catalog")  # auto: Slurm when it answers, else the catalog
_CONFIG_LINE = re.compile(r"^(\w+)\s*=\s*(.*?)\s*$")
_FIELD = re.compile(r"(\w+)=(\S*)")
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def run_command(argv: Sequence[str]) -> str:
    """The default runner: the command's stdout, or an error when it is missing, fails or hangs."""
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(f"{argv[0]} is not on PATH")
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[0]
        raise subprocess.SubprocessError(f"{' '.join(argv[:3])}: {first}")
    return done.stdout


@dataclass(frozen=True)
class PartitionLimits:
    name: str
    max_nodes: int | None  # None: UNLIMITED
    max_minutes: int | None  # None: UNLIMITED
    total_nodes: int | None
    state: str


@dataclass(frozen=True)
class Association:
    account: str
    partition: str  # empty: every partition
    max_submit_jobs: int | None  # None: not set here


@dataclass(frozen=True)
class LiveSlurm:
    """What the Slurm at hand said."""

    cluster_name: str
    max_array_size: int | None
    max_job_count: int | None
    partitions: tuple[PartitionLimits, ...]
    associations: tuple[Association, ...] | None = None  # the user's (sacctmgr); None: not known, see submit_note
    submit_note: str = "MaxSubmitJobs unknown"

    def partition(self, name: str) -> PartitionLimits | None:
        return next((p for p in self.partitions if p.name == name), None)


@dataclass(frozen=True)
class SlurmAnswer:
    """What asking Slurm gave: its limits, or None and why not."""

    live: LiveSlurm | None
    why_not: tuple[str, ...] = ()
    # asked for by name: its limits apply to any catalog cluster; otherwise only to the catalog cluster whose
    # slurm_cluster_name it is (a laptop's or a CI runner's Slurm says nothing about JUWELS)
    insisted: bool = False


class SlurmTextError(ValueError):
    """Text that is not what scontrol or sacctmgr print."""


def slurm_minutes(text: str) -> int | None:
    """A Slurm time limit in whole minutes (None for UNLIMITED): MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS."""
    if text.upper() in ("UNLIMITED", "INFINITE"):
        return None
    m = _TIME.match(text)
    if m is None:
        raise SlurmTextError(f"'{text}' is not a Slurm time")
    days, a, b, c = (int(x) if x is not None else None for x in m.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = a or 0, b or 0, c or 0
    elif c is not None:  # HH:MM:SS
        hours, minutes, seconds = a or 0, b or 0, c
    else:  # MM[:SS]
        hours, minutes, seconds = 0, a or 0, b or 0
    return ((days or 0) * 24 + hours) * 60 + minutes + math.ceil(seconds / 60)


def _count(text: str, key: str) -> int | None:
    if text.upper() in ("UNLIMITED", "INFINITE", "N/A", ""):
        return None
    if not text.isdigit():
        raise SlurmTextError(f"{key}={text} is not a number")
    return int(text)


def parse_config(text: str) -> dict[str, str]:
    """`scontrol show config`: its `Key = value` lines."""
    out = {}
    for line in text.splitlines():
        m = _CONFIG_LINE.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    if "MaxArraySize" not in out:
        raise SlurmTextError("no 'MaxArraySize = N' line in scontrol show config")
    return out


def parse_partitions(text: str) -> tuple[PartitionLimits, ...]:
    """`scontrol show partition -o`: one line of `Key=value` words per partition."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = dict(_FIELD.findall(line))
        if "PartitionName" not in fields:
            raise SlurmTextError(f"a line without PartitionName=: {line[:60]!r}")
        name = fields["PartitionName"]
        for key in ("MaxNodes", "MaxTime", "TotalNodes", "State"):
            if key not in fields:
                raise SlurmTextError(f"partition {name}: no {key}=")
        out.append(PartitionLimits(name, _count(fields["MaxNodes"], "MaxNodes"), slurm_minutes(fields["MaxTime"]),
                                   _count(fields["TotalNodes"], "TotalNodes"), fields["State"]))
    if not out:
        raise SlurmTextError("scontrol show partition printed no partition")
    return tuple(out)


def parse_associations(text: str) -> tuple[Association, ...]:
    """`sacctmgr show assoc ... format=Account,Partition,MaxSubmitJobs -P -n`: one `|`-separated row each."""
    rows = [line.split("|") for line in text.splitlines() if line.strip()]
    if any(len(r) < 3 for r in rows):
        raise SlurmTextError("sacctmgr rows are not Account|Partition|MaxSubmitJobs")
    return tuple(Association(r[0], r[1], _count(r[2], "MaxSubmitJobs")) for r in rows)


def submit_limit(associations: Sequence[Association], account: str | None, partition: str) -> tuple[int | None, str]:
    """MaxSubmitJobs for jobs of `account` in `partition` (without an account, the tightest of the user's
    associations), and where it came from."""
    mine = [a for a in associations if (account is None or a.account == account) and a.partition in ("", partition)]
    if not mine:
        return None, "MaxSubmitJobs unknown (no association" + (f" of account {account})" if account else ")")
    limits = [a.max_submit_jobs for a in mine if a.max_submit_jobs is not None]
    if not limits:
        return None, "MaxSubmitJobs not set on the association (a parent account or a QOS may still limit)"
    whose = f"account {account}" if account else "the user's, the tightest"
    return min(limits), f"MaxSubmitJobs {min(limits)} (sacctmgr: association of {whose})"


def read_live(runner: Runner | None = None, insisted: bool = False) -> SlurmAnswer:
    """What the Slurm at hand says (asked through `runner`, by default `run_command`), or None and why not.
    Never raises: text it cannot read is a reason, and the design falls back to the catalog. `insisted`: its
    limits apply whatever cluster the spec names (SlurmAnswer.insisted)."""
    return replace(ask_slurm(runner or run_command), insisted=insisted)


def ask_slurm(runner: Runner) -> SlurmAnswer:
    try:
        config = parse_config(runner(["scontrol", "show", "config"]))
        partitions = parse_partitions(runner(["scontrol", "show", "partition", "-o"]))
        live = LiveSlurm(config.get("ClusterName", "unnamed"), _count(config["MaxArraySize"], "MaxArraySize"),
                         _count(config.get("MaxJobCount", ""), "MaxJobCount"), partitions)
    except FileNotFoundError as exc:
        return SlurmAnswer(None, (f"Slurm not at hand ({exc})",))
    except subprocess.TimeoutExpired:
        return SlurmAnswer(None, (f"Slurm did not answer within {TIMEOUT_SECONDS:g} s",))
    except (OSError, subprocess.SubprocessError) as exc:
        return SlurmAnswer(None, (f"Slurm did not answer ({exc})",))
    except SlurmTextError as exc:
        return SlurmAnswer(None, (f"could not read Slurm's limits: {exc}",))
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment nor the password database
        return SlurmAnswer(replace(live, submit_note="MaxSubmitJobs unknown (no user name to look up)"))
    try:
        text = runner(["sacctmgr", "show", "assoc", "where", f"user={user}", "format=Account,Partition,MaxSubmitJobs",
                       "-P", "-n"])
        associations = parse_associations(text)
    except (OSError, subprocess.SubprocessError) as exc:
        return SlurmAnswer(replace(live, submit_note=f"MaxSubmitJobs unknown (sacctmgr: {exc})"))
    except SlurmTextError as exc:
        return SlurmAnswer(replace(live, submit_note=f"MaxSubmitJobs unknown (could not read sacctmgr: {exc})"))
    return SlurmAnswer(replace(live, associations=associations, submit_note=""))


@dataclass(frozen=True)
class Limits(Record):
    """The limits a sweep was designed with, and where each came from."""

    source: str  # "slurm" (the cluster at hand answered) or "catalog"
    origin: str  # in words: "live Slurm cluster NAME" or "the catalog"
    partition: str
    max_nodes: int  # per job
    max_minutes: int  # --time of one job (segment)
    max_array_size: int  # tasks per array
    max_submit_jobs: int | None  # per association; None when not set or not known
    max_job_count: int | None
    note: str
    warnings: tuple[str, ...] = field(default=())


def resolve(cluster: Cluster, partition: Partition, spec_max_array_size: int, slurm: SlurmAnswer | None,
            account: str | None = None) -> Limits:
    """The spec's and catalog's limits, checked against live Slurm's where it answered for this partition
    (`slurm` None: Slurm was not asked)."""
    live, why_not_live = (slurm.live, slurm.why_not) if slurm is not None else (None, ())
    cat_nodes = int(partition.max_nodes.value if partition.max_nodes else
                    cluster.nodes.value if cluster.nodes is not None else 10**6)
    cat_minutes = max(1, math.floor(partition.max_wall_hours.value * 60 + 1e-9))  # Slurm limits are whole minutes
    if live is not None and not (slurm is not None and slurm.insisted) and live.cluster_name != cluster.slurm_cluster_name:
        why_not_live = (f"the Slurm at hand is cluster {live.cluster_name}, not {cluster.name}'s (its catalog entry names "
                        f"{'no slurm_cluster_name' if cluster.slurm_cluster_name is None else cluster.slurm_cluster_name})",)
        live = None
    where = live.partition(partition.name) if live is not None else None
    if live is None or where is None:
        reasons = list(why_not_live)
        if live is not None:
            reasons.append(f"the Slurm at hand (cluster {live.cluster_name}) has no partition {partition.name}")
        why = f" ({'; '.join(reasons)})" if reasons else ""
        note = f"limits: catalog ({cluster.name} partition {partition.name}: {cat_nodes} nodes, " \
               f"{cat_minutes / 60:g} h; arrays of up to {spec_max_array_size} tasks from max_array_size){why}"
        mismatch = [f"{reasons[-1]}: the catalog's limits are used"] if live is not None else []
        return Limits("catalog", "the catalog", partition.name, cat_nodes, cat_minutes, spec_max_array_size, None, None,
                      note, tuple(mismatch))
    if live.max_array_size == 0:
        raise PlannerError(f"Slurm cluster {live.cluster_name} has job arrays disabled (MaxArraySize = 0)", "max_array_size")
    warnings = []
    nodes = min(x for x in (where.max_nodes, where.total_nodes, 10**9) if x is not None)
    if nodes == 10**9:
        nodes = cat_nodes
    minutes = where.max_minutes if where.max_minutes is not None else cat_minutes
    if minutes != cat_minutes:
        warnings.append(f"partition {partition.name}: Slurm's MaxTime is {minutes} min, the catalog's {cat_minutes} min: "
                        "Slurm's is used")
    if nodes < cat_nodes:
        warnings.append(f"partition {partition.name}: Slurm allows {nodes} nodes per job, the catalog {cat_nodes}: "
                        "Slurm's is used")
    if where.state.upper() != "UP":
        warnings.append(f"partition {partition.name} is {where.state}: jobs queue but do not start until it is UP")
    array = spec_max_array_size if live.max_array_size is None else min(spec_max_array_size, live.max_array_size)
    submit, submit_note = (None, live.submit_note) if live.associations is None else \
        submit_limit(live.associations, account, partition.name)
    note = (f"limits: live Slurm (cluster {live.cluster_name}, scontrol): partition {partition.name} {nodes} nodes, "
            f"{minutes / 60:g} h, state {where.state}; arrays of up to {array} tasks (MaxArraySize "
            f"{live.max_array_size}, max_array_size {spec_max_array_size}); MaxJobCount {live.max_job_count}; "
            f"{submit_note}")
    return Limits("slurm", f"live Slurm cluster {live.cluster_name}", partition.name, nodes, minutes, array,
                  submit, live.max_job_count, note, tuple(warnings))


def submit_warnings(limits: Limits, arrays: int, tasks: int) -> list[str]:
    """Whether the sweep's jobs fit the submit limits: every task of every segment is pending at once."""
    out = []
    if limits.max_submit_jobs is not None and tasks > limits.max_submit_jobs:
        out.append(f"the sweep submits {tasks} array tasks in {arrays} array job(s), above MaxSubmitJobs "
                   f"{limits.max_submit_jobs}: Slurm counts each task of a job array, so submit.sh would be refused part way")
    if limits.max_job_count is not None and tasks > limits.max_job_count:
        out.append(f"the sweep submits {tasks} array tasks, above the controller's MaxJobCount {limits.max_job_count}")
    return out
