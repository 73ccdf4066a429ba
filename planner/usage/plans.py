"""What the jobs were planned as: a `planner sweep` directory (manifest.csv's hours, submitted.tsv's job
ids, spec.yaml's cluster) or a `planner grant` proposal (its burn plan by month, its total request as the
allocation, its program's quota rule). The proposal is costed by grant.build, as `planner grant` does.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from planner.errors import PlannerError
from planner.files import decode_utf8, read_input
from planner.usage.burn import Charging, Plan

if TYPE_CHECKING:
    from planner.catalog import Catalog
    from planner.grant.document import GrantDocument
    from planner.grant.programs import Rule

MAX_SWEEP_FILE_BYTES = 64 << 20
JOB_ID = re.compile(r"\d{1,20}")


def sweep_cluster(sweep_dir: Path) -> str | None:
    """The cluster named by the spec the sweep was written from (spec.yaml in it), if it kept one."""
    spec = Path(sweep_dir) / "spec.yaml"
    if not spec.is_file():
        return None
    from planner.sweep.design import load_spec

    return load_spec(spec)[0].cluster


def sweep_manifest(sweep_dir: Path) -> Path:
    manifest = Path(sweep_dir) / "manifest.csv"
    if not os.path.lexists(manifest):
        raise PlannerError(f"{sweep_dir}: no manifest.csv here; give the directory a sweep was written to", "sweep")
    return manifest


def sweep_plan(sweep_dir: Path, charge: Charging) -> Plan:
    """A sweep's planned node-hours (manifest.csv, summed) in `charge`'s unit, and its submitted job ids."""
    sweep_dir = Path(sweep_dir)
    manifest = sweep_manifest(sweep_dir)
    text = decode_utf8(read_input(manifest, "manifest", MAX_SWEEP_FILE_BYTES), manifest)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if "node_hours" not in (reader.fieldnames or ()):
        raise PlannerError(f"{manifest}:1: not a planner sweep manifest (it has no node_hours column)", "sweep")
    node_hours = 0.0
    for row in reader:
        value = row.get("node_hours") or ""
        try:
            hours = float(value)
        except ValueError:
            hours = math.nan
        if not math.isfinite(hours) or hours < 0:
            raise PlannerError(f"{manifest}:{reader.line_num}: node_hours: {value!r} is not a number of hours", "sweep")
        node_hours += hours
    return Plan(source=f"sweep {sweep_dir}", node_hours=node_hours, units=node_hours * charge.per_node_hour,
                by_month={}, job_ids=frozenset(submitted_jobs(sweep_dir)))


def submitted_jobs(sweep_dir: Path) -> list[str]:
    """The job ids submit.sh recorded in submitted.tsv (array, segment, job_id); none before it ran."""
    path = Path(sweep_dir) / "submitted.tsv"
    if not path.is_file():
        return []
    lines = decode_utf8(read_input(path, "submitted jobs", MAX_SWEEP_FILE_BYTES), path).splitlines()
    if not lines or lines[0].split("\t") != ["array", "segment", "job_id"]:
        raise PlannerError(f"{path}:1: not the submitted.tsv of submit.sh (columns array, segment, job_id)", "sweep")
    ids = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != 3 or not JOB_ID.fullmatch(cells[2]):
            raise PlannerError(f"{path}:{number}: expected array, segment and a numeric job id separated by tabs", "sweep")
        ids.append(cells[2])
    return ids


def proposal_document(path: Path, catalog: Catalog, cluster: str | None) -> GrantDocument:
    """The grant document of `cluster` (the proposal's only system when None) for the proposal at `path`."""
    from planner.grant.build import build, load_proposal
    from planner.grant.document import MultiSystemGrant

    parsed, where, base = load_proposal(path)
    result = build(parsed, where, base, catalog)
    systems = result.systems if isinstance(result, MultiSystemGrant) else (result,)
    names = [doc.cluster.name for doc in systems]
    if cluster is None:
        if len(systems) > 1:
            raise PlannerError(f"the proposal spans {', '.join(names)}: say which with {{cluster}}", "proposal",
                               refs=("cluster",))
        return systems[0]
    if cluster not in names:
        raise PlannerError(f"the proposal plans {', '.join(names)}, not '{cluster}'", "cluster")
    return systems[names.index(cluster)]


def proposal_plan(doc: GrantDocument, path: Path) -> Plan:
    """The proposal's burn plan: whole units per month (contingency included), as `planner grant` prints it."""
    return Plan(source=f"proposal {path}", node_hours=sum(m.node_hours for m in doc.burn.months),
                units=float(doc.total.request), by_month={m.label: float(m.request) for m in doc.burn.months})


def quota_rule(catalog: Catalog, cluster: str, program: str | None = None) -> tuple[Rule | None, int | None]:
    """The quota mechanics (a QUOTA_RULES name) that apply on `cluster` and the allocation length in months
    its program states: `program`'s, or else those of the catalog programs whose rules name `cluster`
    (JSC's monthly quotas name JUWELS Booster, JURECA-DC and JUPITER), when they agree."""
    programs = [catalog.get("programs", program)] if program else catalog.all("programs")
    found: dict[str, tuple[Rule, int | None]] = {}
    for p in programs:
        for rule in p.forfeiture:
            named = cluster in rule.clusters if program is None else (not rule.clusters or cluster in rule.clusters)
            if rule.simulate and named:
                found.setdefault(rule.simulate, (rule, round(p.duration_months.value) if p.duration_months else None))
    if len(found) != 1:
        return None, None
    ((rule, months),) = found.values()
    return rule, months
