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
import re
from pathlib import Path

from planner.errors import PlannerError, PlannerWarning
from planner.files import decode_utf8, read_input

MANIFEST_FIELDS = ("run_id", "model", "params", "tokens", "flops", "budget", "nodes", "gpu_hours")
NUMBER_FIELDS = ("params", "tokens", "flops", "budget", "nodes", "gpu_hours")
REQUIRED = ("params", "tokens")  # the law is fitted on them; the other numbers may be empty
RESERVED = (*MANIFEST_FIELDS, "flops_6nd")  # keys of a row that a result file must not set
MAX_RESULT_BYTES = 1 << 20
# A run id names its result file: a plain file name inside results/ (as the sweep writes them), never a path.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
# A number as a program prints it: decimal digits, or nan/inf (a diverged run). Not Python's float()
# syntax, which also takes 1_000 and surrounding blanks.
DECIMAL = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf|infinity)", re.IGNORECASE)
MAX_MANIFEST_BYTES = 64 << 20  # ~200,000 runs


def collect(sweep_dir: Path) -> dict:
    """Rows of manifest fields and result fields, for the runs that wrote a result; the rest listed."""
    manifest = Path(sweep_dir) / "manifest.csv"
    if not os.path.lexists(manifest):
        raise PlannerError(f"{sweep_dir}: no manifest.csv here; give the directory a sweep was written to")
    runs = read_manifest(manifest)
    rows, missing, diverged, fields = [], [], [], []
    for run in runs:
        path = Path(sweep_dir) / "results" / str(run["run_id"])
        if not path.is_file():
            missing.append(run["run_id"])
            continue
        values = read_result(path)
        if any(not math.isfinite(v) for v in values.values()):
            diverged.append(run["run_id"])
        fields += [k for k in values if k not in fields]
        row = dict(run)
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


def read_manifest(path: Path) -> list[dict]:
    """The manifest's runs (MANIFEST_FIELDS, numbers parsed), every row checked: `file:line: column: problem`."""
    reader = csv.reader(io.StringIO(decode_utf8(read_input(path, "manifest", MAX_MANIFEST_BYTES), path), newline=""))
    try:
        header = next(reader, [])
        if not set(MANIFEST_FIELDS) <= set(header):
            raise PlannerError(f"{path}:1: not a planner sweep manifest (expected columns {', '.join(MANIFEST_FIELDS)})")
        runs, seen = [], set()
        for record in reader:
            line = reader.line_num
            if not record:
                continue
            if len(record) != len(header):
                raise PlannerError(f"{path}:{line}: {len(record)} fields, the header has {len(header)}")
            cells = dict(zip(header, record, strict=True))
            run_id = cells["run_id"]
            if not RUN_ID.fullmatch(run_id):
                raise PlannerError(f"{path}:{line}: run_id: {run_id!r} is not a run id (letters, digits, '.', '_' and '-', "
                                   "the name of a file in results/)")
            if run_id in seen:
                raise PlannerError(f"{path}:{line}: run_id: {run_id} appears twice")
            seen.add(run_id)
            run: dict = {"run_id": run_id, "model": cells["model"] or None}
            run.update({k: _number(cells[k], k in REQUIRED, f"{path}:{line}: {k}") for k in NUMBER_FIELDS})
            runs.append({k: run[k] for k in MANIFEST_FIELDS})
    except csv.Error as exc:
        raise PlannerError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
    return runs


def _number(text: str, required: bool, where: str) -> float | int | None:
    if text == "" and not required:
        return None
    if not DECIMAL.fullmatch(text) or not math.isfinite(value := float(text)) or (required and value <= 0):
        raise PlannerError(f"{where}: {text!r} is not a " + ("positive number" if required else "number"))
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _unique_keys(path: Path):
    def pairs(items: list[tuple[str, object]]) -> dict:
        keys = [k for k, _ in items]
        if dup := next((k for k in keys if keys.count(k) > 1), None):
            raise PlannerError(f"{path}:1: {dup}: appears twice in the JSON object")
        return dict(items)
    return pairs


def read_result(path: Path) -> dict[str, float]:
    text = decode_utf8(read_input(path, "result", MAX_RESULT_BYTES), path).strip()
    if DECIMAL.fullmatch(text):
        return {"loss": float(text)}
    try:
        # integers as floats: a JSON integer of thousands of digits is then inf, not a ValueError
        data = json.loads(text, object_pairs_hook=_unique_keys(path), parse_int=float)
    except json.JSONDecodeError:
        raise PlannerError(f"{path}:1: expected a number (the final loss) or a JSON object of numbers") from None
    except RecursionError:
        raise PlannerError(f"{path}:1: nested too deeply; expected a JSON object of numbers, e.g. {{\"loss\": 2.31}}") from None
    if not isinstance(data, dict) or not data:
        raise PlannerError(f"{path}:1: expected a JSON object of numbers, e.g. {{\"loss\": 2.31}}")
    out = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = "a JSON array" if isinstance(value, list) else "a JSON object" if isinstance(value, dict) else repr(value)
            raise PlannerError(f"{path}:1: {key}: {shown} is not a number")
        if key in RESERVED:
            raise PlannerError(f"{path}:1: {key}: the manifest already gives this field")
        out[str(key)] = float(value)
    return out
