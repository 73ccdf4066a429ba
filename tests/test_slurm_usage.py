"""`planner usage` against the real accounting of the local Slurm cluster (scripts/local-slurm.sh start, with
slurmdbd): tiny jobs of a sweep submitted to account planner-ci, then planner's seconds against sacct's own
ElapsedRaw × AllocNodes, to the second. Skipped when no such cluster or no sacct answers."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime

import pytest
from cli_helpers import check_stderr, run
from test_slurm import LOCAL, cluster, jobs, submit, wait  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slurm

ACCOUNT = "planner-ci"  # registered by scripts/local-slurm.sh (sacctmgr add account)
FIELDS = "JobIDRaw,JobID,Account,Partition,State,Start,End,ElapsedRaw,AllocNodes,AllocTRES,Cluster"


def sacct(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sacct", "-P", "-n", "-X", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TZ": "UTC"})


@pytest.fixture(scope="module")
def accounting(cluster):  # noqa: F811
    try:
        answer = sacct("-a", "-A", ACCOUNT, "-S", "now-1minutes", "-o", "JobIDRaw")
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"sacct does not answer: {exc}")
    if answer.returncode != 0:
        pytest.skip(f"sacct does not answer (no slurmdbd? scripts/local-slurm.sh start): {answer.stderr.strip()[:200]}")


def finished_in_sacct(ids: list[str], timeout: float = 120) -> list[list[str]]:
    """The sacct records of the array jobs `ids` once every one has an End (slurmdbd learns of it a little late)."""
    deadline = time.time() + timeout
    while True:
        out = sacct("-a", "-A", ACCOUNT, "-j", ",".join(ids), "-o", FIELDS)
        records = [line.split("|") for line in out.stdout.splitlines() if line]
        if records and all(r[6] not in ("Unknown", "None") for r in records) and out.returncode == 0:
            return records
        if time.time() > deadline:
            raise AssertionError(f"sacct has not recorded the end of jobs {ids}: {out.stdout}{out.stderr}")
        time.sleep(1)


def test_usage_sums_the_same_node_seconds_as_sacct(accounting, tmp_path, capsys, jobs):  # noqa: F811
    spec = tmp_path / "usage.yaml"
    spec.write_text(f"""\
name: usage
cluster: local-juwels
partition: booster
account: {ACCOUNT}
max_concurrent: 3
command: sleep 2
sweep:
  kind: list
  runs:
    - {{name: a, params: 1e6, tokens: 1e8, nodes: 1}}
    - {{name: b, params: 2e6, tokens: 1e8, nodes: 1}}
    - {{name: c, params: 1e6, tokens: 1e8, nodes: 2}}
""")
    out = tmp_path / "sweep"
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    code, _, err = run(["--catalog", str(LOCAL), "sweep", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    submitted = [job for _, _, job in submit(out, jobs)]
    wait(submitted, timeout=240)
    records = finished_in_sacct(submitted)
    tasks = [r for r in records if r[1].split("_")[0] in submitted]
    assert len(tasks) == 3 and all(int(r[8]) >= 1 for r in tasks), records
    sacct_seconds = sum(int(r[7]) * int(r[8]) for r in tasks)

    code, text, err = run(["--catalog", str(LOCAL), "usage", "--account", ACCOUNT, "--since", today, "--sweep", str(out),
                           "--format", "json"], capsys)
    assert check_stderr(code, err) is None, err
    report = json.loads(text)
    assert report["cluster"] == "local-juwels"  # from the sweep's spec.yaml
    assert report["summary"]["sweep_node_seconds"] == sacct_seconds
    assert sum(m["sweep_node_seconds"] for m in report["months"]) == sacct_seconds

    # the whole account, from one recorded answer: planner's total is sacct's sum of ElapsedRaw × AllocNodes
    answer = sacct("-a", "-A", ACCOUNT, "-S", f"{today}T00:00:00", "-E", "now", "-o", FIELDS)
    assert answer.returncode == 0, answer.stderr
    recorded = tmp_path / "sacct.txt"
    recorded.write_text(answer.stdout)
    code, text, err = run(["--catalog", str(LOCAL), "usage", "--account", ACCOUNT, "--since", today,
                           "--cluster", "local-juwels", "--sacct-file", str(recorded), "--format", "json"], capsys)
    assert check_stderr(code, err) is None, err
    summary = json.loads(text)["summary"]
    direct = sum(int(line.split("|")[7]) * int(line.split("|")[8]) for line in answer.stdout.splitlines() if line)
    assert summary["sacct_node_seconds"] == direct
    assert summary["node_seconds"] + summary["outside_node_seconds"] == direct
    print(f"usage: sweep {sacct_seconds} node-seconds; account {direct} node-seconds, as sacct sums them")
