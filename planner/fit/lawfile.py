"""A fitted law as a catalog-schema YAML file that `planner plan` accepts as its law file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from planner import __version__
from planner.errors import PlannerError
from planner.fit.forms import FORMS, either, writing_laws
from planner.fit.result import FitResult
from planner.laws import Law


def _name(out: Path) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", out.stem.lower()).strip("-._") or "fitted-law"
    return slug[:80]


MAX_DRAWS = 200  # bootstrap draws kept in a law file: enough for 10th/90th percentiles, small enough to read


def law_document(result: FitResult, out: Path, samples: dict | None = None) -> dict:
    form = result.form
    law = FORMS[form].law
    if law is None:
        raise PlannerError(f"writes a law for `planner plan` and needs an N/D law ({either(writing_laws())}); "
                           f"a {form} fit is a curve in compute only: save it as JSON ({{format}} json)", "out", refs=("format",))
    record = result.record()
    data = record["data"]
    ci = record["ci"] or {}

    def number(key: str, value: float) -> dict:
        entry = {"value": float(value), "source": "fit"}
        if key in ci:
            entry["note"] = f"95% bootstrap CI ({ci[key][0]:.6g}, {ci[key][1]:.6g})"
        return entry

    doc: dict = {
        "name": _name(out),
        "title": f"{form} law fitted by planner to {Path(data['path']).name}",
        "citation": f"planner {__version__} fit, {form} form, on {Path(data['path']).name} (sha256 {data['sha256'][:12]})",
        "params_counted": "total",
    }
    doc.update(law(result, number))  # the form's `loss:` or `allocation:`
    doc["fit_range"] = {"flops": [data["compute_min"], data["compute_max"]], "source": "fit",
                        "note": f"{data['rows_used']} runs, {data['span_decades']:.2f} decades of compute"}
    doc["fitted"] = {k: record[k] for k in ("n_points", "objective", "converged", "procedure")}
    doc["fitted"]["warnings"] = [str(w) for w in record["warnings"]]  # YAML holds their text, not the objects
    doc["fitted"]["data"] = data
    if ci:
        doc["fitted"]["ci"] = ci
        doc["fitted"]["bootstrap"] = record.get("bootstrap")
    if FORMS[form].law_draws and samples:
        # the draws themselves, so that `planner plan --law-file` can give intervals on N, D and loss
        keep = {k: np.asarray(samples[k], dtype=float)[:MAX_DRAWS] for k in FORMS[form].law_draws}
        finite = np.all([np.isfinite(v) for v in keep.values()], axis=0)
        doc["fitted"]["bootstrap_draws"] = {k: [float(f"{x:.8g}") for x in v[finite]] for k, v in keep.items()}
    doc["sources"] = {"fit": {"citation": doc["citation"], "status": "derived"}}
    Law.model_validate(doc)  # what we write must load back
    return doc


def law_yaml(result: FitResult, out: Path, samples: dict | None = None) -> str:
    doc = law_document(result, out, samples)
    return "# Written by `planner fit`; a law file for `planner plan` and `planner sweep`.\n" + yaml.safe_dump(
        _plain(doc), sort_keys=False, allow_unicode=True, width=100)


def _plain(obj):
    """numpy scalars and tuples → plain YAML types, so the file is readable and deterministic."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item"):
        return obj.item()
    return obj
