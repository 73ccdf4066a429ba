"""What `catalog show` and `catalog validate` print: every number with its status and source."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from planner.catalog import KINDS, Catalog, Cluster, Entry, MfuProfile, model_for
from planner.catalog.models import Model
from planner.errors import PlannerError
from planner.laws import ChinchillaLoss, Law
from planner.report.output import Column, render_rows, to_json
from planner.yamlio import load_text, read_text, validation_messages

SHOW_COLUMNS = [Column("field", "field"), Column("value", "value", "float"), Column("status", "status"),
                Column("source", "source"), Column("note", "note")]


def sourced_rows(entry: Entry) -> list[dict]:
    """One row per number; `source` is the citation key (the citations are listed under the table)."""
    rows = [{"field": path, "value": item.value, "status": entry.status_of(item), "source": item.source,
             "note": item.note} for path, item in entry.sourced_numbers()]
    if isinstance(entry, MfuProfile):  # measured points: MFU at a model size and GPU count
        rows += [{"field": f"points.{i}: MFU at {p.params:.3g} params, {p.gpus} GPUs", "value": p.mfu,
                  "status": p.status or entry.sources[p.source].status, "source": p.source, "note": p.note}
                 for i, p in enumerate(entry.points)]
    return rows


def derived_rows(kind: str, entry: Entry, catalog: Catalog) -> list[dict]:
    """Numbers a reader wants next to the catalog's own: aggregate peaks, closed-form allocation."""
    rows = []
    if kind == "clusters" and isinstance(entry, Cluster) and entry.nodes is not None:
        acc = catalog.accelerator(entry.accelerator)
        gpus = int(entry.nodes.value) * entry.gpus_per_node_int
        rows.append({"field": "gpus (nodes × gpus_per_node)", "value": gpus, "status": "derived"})
        for dtype, peak in acc.peak_tflops.items():
            rows.append({"field": f"system dense {dtype} peak, EFLOP/s", "value": gpus * peak.value / 1e6, "status": "derived",
                         "note": f"{gpus} × {peak.value:g} TFLOP/s ({acc.name})"})
    if kind == "mfu" and isinstance(entry, MfuProfile):
        from planner.costing.mfu import gpu_scaling

        sc = gpu_scaling(entry)
        rows.append({"field": "d ln MFU / d ln GPUs at fixed size", "value": sc.slope, "status": "derived",
                     "note": f"median over {sc.groups} sizes measured at two or more GPU counts, clamped at 0"
                     if sc.groups else "no size measured at two GPU counts: MFU taken as independent of GPU count"})
    if kind == "models" and isinstance(entry, Model) and entry.shape is not None:
        sh = entry.shape
        source = "config" if "config" in entry.sources else next(iter(entry.sources))
        for name in ("layers", "d_model", "heads", "kv_heads", "ffn", "gated", "vocab", "tied_embeddings", "seq_len"):
            value = getattr(sh, name)
            if value is not None:
                rows.append({"field": f"shape.{name}", "value": value if not isinstance(value, bool) else str(value).lower(),
                             "status": entry.sources[source].status, "source": source})
        n = float(sh.params())
        note = None
        if entry.published_params is not None:
            note = f"{n / entry.published_params.value - 1:+.2%} vs published {entry.published_params.value:.4g}"
        rows.append({"field": "parameters from shape", "value": n, "status": "derived", "note": note})
        rows.append({"field": "attention FLOPs per token (12·L·h·s)", "value": float(sh.attention_flops_per_token()),
                     "status": "derived", "note": "added to 6N per token by the 6ND+attention FLOPs convention"})
    if kind == "laws" and isinstance(entry, Law):
        if isinstance(entry.loss, ChinchillaLoss) and entry.allocation is None:
            g, a, b = entry.closed_form()
            rows += [{"field": "G = (alpha·A/(beta·B))^(1/(alpha+beta))", "value": g, "status": "derived"},
                     {"field": "a (N_opt ∝ C^a)", "value": a, "status": "derived"},
                     {"field": "b (D_opt ∝ C^b)", "value": b, "status": "derived"}]
        n, d = entry.allocate(5.76e23)
        rows.append({"field": "N_opt at 5.76e23 FLOPs (Gopher budget)", "value": float(n), "status": "derived"})
        rows.append({"field": "tokens per parameter at 5.76e23", "value": float(d / n), "status": "derived"})
    return rows


def describe(kind: str, entry: Entry, catalog: Catalog, fmt: str) -> str:
    rows = sourced_rows(entry) + derived_rows(kind, entry, catalog)
    if fmt == "json":
        return to_json({"kind": kind, "entry": entry.model_dump(mode="json", exclude_none=True),
                        "derived": derived_rows(kind, entry, catalog)})
    notes = [f"{entry.title} ({kind[:-1] if kind.endswith('s') else kind})"]
    if isinstance(entry, Law):
        notes.append(f"form: {entry.form}; predicts loss: {'yes' if entry.predicts_loss else 'no'}; citation: {entry.citation}")
    if isinstance(entry, MfuProfile):
        notes.append(f"workload {entry.workload}, {entry.dtype}; accelerators: {', '.join(entry.accelerators)}"
                     + (f"; assumed (not measured) for: {', '.join(entry.assumed_for)}" if entry.assumed_for else ""))
    if entry.notes:
        notes.append(" ".join(entry.notes.split()))
    notes += [f"[{key}] {src.reference} ({src.status})" for key, src in entry.sources.items()]
    return render_rows(rows, SHOW_COLUMNS, fmt, notes)


def _kind_of(path: Path) -> str:
    if path.parent.name in KINDS:
        return path.parent.name
    raise PlannerError(f"{path}:1: (top level): cannot tell the kind; put the file in a directory named one of {', '.join(KINDS)}")


def _files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_file():
            files.append(p)
        elif p.name in KINDS:
            files += sorted(p.glob("*.yaml"))
        else:
            found = [f for kind in KINDS for f in sorted((p / kind).glob("*.yaml"))]
            if not found:
                raise PlannerError(f"{p}: no catalog files (expected {', '.join(k + '/' for k in KINDS)} with *.yaml inside)")
            files += found
    return files


def _catalog_roots(paths: list[Path]) -> list[Path]:
    roots = []
    for p in paths:
        root = p.parent.parent if p.is_file() else (p.parent if p.name in KINDS else p)
        if root not in roots:
            roots.append(root)
    return roots


def check_file(path: Path) -> tuple[list[str], Entry | None]:
    try:
        kind = _kind_of(path)
        data, lines = load_text(read_text(path), str(path))
    except PlannerError as exc:
        return [str(exc)], None
    if not isinstance(data, dict):
        return [f"{path}:1: (top level): expected a mapping of fields"], None
    schema = model_for(kind)
    try:
        entry = schema.model_validate(data)
    except ValidationError as exc:
        return validation_messages(exc, str(path), lines, schema), None
    if entry.name != path.stem:
        return [f"{path}:{lines.get(('name',), 1)}: name: '{entry.name}' must equal the file name '{path.stem}'"], None
    return [], entry


def validate_paths(paths: list[Path], base: Catalog) -> tuple[list[str], int]:
    files = _files(paths)
    catalog = Catalog(tuple(base.dirs) + tuple(r for r in _catalog_roots(paths) if r not in base.dirs))
    errors: list[str] = []
    for f in files:
        errs, entry = check_file(f)
        errors += errs
        if isinstance(entry, Cluster):
            errors += _cluster_refs(f, entry, catalog)
    return errors, len(files)


def _cluster_refs(path: Path, cluster: Cluster, catalog: Catalog) -> list[str]:
    data, lines = load_text(read_text(path), str(path))
    errors = []
    if cluster.accelerator not in catalog.files("accelerators"):
        errors.append(f"{path}:{lines.get(('accelerator',), 1)}: accelerator: {_unknown('accelerators', cluster.accelerator, catalog)}")
        return errors
    if cluster.mfu_profile is not None:
        if cluster.mfu_profile not in catalog.files("mfu"):
            errors.append(f"{path}:{lines.get(('mfu_profile',), 1)}: mfu_profile: {_unknown('mfu', cluster.mfu_profile, catalog)}")
        else:
            try:
                profile = catalog.mfu_profile(cluster.mfu_profile)
            except PlannerError:
                return errors  # reported when that file is validated
            if cluster.accelerator not in profile.accelerators:
                errors.append(f"{path}:{lines.get(('mfu_profile',), 1)}: mfu_profile: profile '{profile.name}' "
                              f"was not measured on {cluster.accelerator} (it lists {', '.join(profile.accelerators)})")
    return errors


def _unknown(kind: str, name: str, catalog: Catalog) -> str:
    from planner.errors import unknown_name

    return str(unknown_name(kind.rstrip("s"), name, catalog.files(kind)))
