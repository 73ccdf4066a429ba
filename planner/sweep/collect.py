"""Results of a sweep that has run: its manifest joined with what each run wrote to `{result_file}`.

The loop this closes: `planner sweep` → Slurm → each run writes its final loss (or a JSON object of
numbers) to `{result_file}` → `planner collect` → a CSV that `planner fit` reads → a law file that
`planner plan` uses. A result file holds one number (read as `loss`) or a JSON object;
a missing file is a run that has not finished, reported and left out, never filled in.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from planner.errors import PlannerError, PlannerWarning
from planner.files import decode_utf8, read_input

MANIFEST_FIELDS = ("run_id", "model", "params", "tokens", "flops", "budget", "nodes", "gpu_hours")
MAX_RESULT_BYTES = 1 << 20
MAX_MANIFEST_BYTES = 64 << 20  # ~200,000 runs


def collect(sweep_dir: Path) -> dict:
    """Rows of manifest fields and result fields, for the runs that wrote a result; the rest listed."""
    manifest = Path(sweep_dir) / "manifest.csv"
    if not os.path.lexists(manifest):
        raise PlannerError(f"{sweep_dir}: no manifest.csv here; give the directory a sweep was written to")
    text = decode_utf8(read_input(manifest, "manifest", MAX_MANIFEST_BYTES), manifest)
    try:
        runs = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise PlannerError(f"{manifest}: malformed CSV: {exc}") from None
    if not runs or not set(MANIFEST_FIELDS) <= set(runs[0]):
        raise PlannerError(f"{manifest}:1: not a planner sweep manifest (expected columns {', '.join(MANIFEST_FIELDS)})")
    rows, missing, diverged, fields = [], [], [], []
    for run in runs:
        path = Path(sweep_dir) / "results" / run["run_id"]
        if not path.is_file():
            missing.append(run["run_id"])
            continue
        values = _read_result(path)
        if any(not math.isfinite(v) for v in values.values()):
            diverged.append(run["run_id"])
        fields += [k for k in values if k not in fields]
        row = {k: _number(run[k]) if k not in ("run_id", "model") else (run[k] or None) for k in MANIFEST_FIELDS}
        # a law is fitted on its own compute, C = 6ND; `flops` holds the hardware FLOPs (attention included)
        row["flops_6nd"] = 6.0 * float(run["params"]) * float(run["tokens"])
        rows.append({**row, **{k: (v if math.isfinite(v) else None) for k, v in values.items()}})
    warnings: list[PlannerWarning] = []
    if missing:
        warnings.append(PlannerWarning("results", f"{len(missing)} of {len(runs)} runs have no result yet "
                                       f"(e.g. {', '.join(missing[:3])}); left out"))
    if diverged:
        warnings.append(PlannerWarning("results", f"{len(diverged)} run(s) reported a non-finite value (diverged?): "
                                       f"{', '.join(diverged[:3])}; left empty"))
    return {"sweep": str(sweep_dir), "runs": len(runs), "collected": len(rows), "result_fields": fields,
            "rows": rows, "missing": missing, "warnings": warnings}


def _number(text: str) -> float | int | None:
    if text == "":
        return None
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _read_result(path: Path) -> dict[str, float]:
    text = decode_utf8(read_input(path, "result", MAX_RESULT_BYTES), path).strip()
    try:
        return {"loss": float(text)}
    except ValueError:
        pass
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise PlannerError(f"{path}:1: expected a number (the final loss) or a JSON object of numbers") from None
    if not isinstance(data, dict) or not data:
        raise PlannerError(f"{path}:1: expected a JSON object of numbers, e.g. {{\"loss\": 2.31}}")
    out = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PlannerError(f"{path}:1: {key}: {value!r} is not a number")
        if key in MANIFEST_FIELDS:
            raise PlannerError(f"{path}:1: {key}: the manifest already gives this field")
        out[str(key)] = float(value)
    return out
