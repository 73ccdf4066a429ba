"""A grant result (planner.grant.build) as a document: Markdown for web forms, a LaTeX document with
booktabs tables for the PDF, CSV (one table with a `section` column) and JSON for scripts.

Tables reuse output.render_rows, so numbers are rounded the way every other command rounds them;
machine formats keep every digit. The method paragraph comes from planner.grant.method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from planner.costing.scaling import scaling_columns, scaling_notes
from planner.costing.weak import WeakScalingTable, weak_columns, weak_notes, weak_scaling
from planner.errors import PlannerError
from planner.grant.document import GrantDocument, MultiSystemGrant
from planner.grant.method import justification
from planner.grant.schedule_table import schedule_columns, schedule_notes, schedule_rows
from planner.report.output import Column, human, latex_escape, provenance_note, render_rows, to_csv, to_json


def resource_columns(result: GrantDocument) -> list[Column]:
    cols = [Column("name", "experiment"), Column("flops", "FLOPs", "flops"), Column("mfu", "MFU", "fraction"),
            Column("runs", "runs", "count"), Column("nodes_text", "nodes/run"),
            Column("wall_hours_per_run", "wall-h/run", "hours"), Column("node_hours", "node-h", "hours"),
            Column("gpu_hours", "GPU-h (Slurm)", "hours")]
    if result.unit.unit != result.cluster.accounting_unit:
        cols.append(Column("charge", f"{result.cluster.accounting_unit} (cluster billing)", "hours"))
    label = result.unit.label
    cols += [Column("units", f"estimate ({label})", "hours"),
             Column("units_interval", f"{result.interval_level:.0%} range", "hours"),
             Column("request", f"request at {result.confidence:.0%} ({label})", "hours")]
    cols += [Column(a.unit, a.label, "hours") for a in result.also]
    if result.total.cost is not None:
        cols.append(Column("cost_amount", f"cost ({result.total.cost.currency})", "hours"))
    return cols


def resource_rows(result: GrantDocument) -> list[dict]:
    rows = [{**r.record(), "nodes_text": r.nodes_text} for r in result.rows]
    rows += [t.record() for t in (result.subtotal, result.contingency_row, result.total)]
    return [{**row, "cost_amount": row["cost"]["amount"] if row.get("cost") else None} for row in rows]


def burn_columns(result: GrantDocument) -> list[Column]:
    cols = [Column("period", "period"), Column("label", "months")]
    cols += [Column(f"by_experiment.{r.name}", r.name, "hours") for r in result.rows]
    cols += [Column("contingency", "contingency", "hours"), Column("request", f"total ({result.unit.unit})", "hours"),
             Column("node_hours", "node-h", "hours"), Column("share", "share", "fraction"),
             Column("cumulative", "cumulative", "fraction")]
    if result.burn.simulation is not None:
        cols.append(Column("forfeited", f"forfeited ({result.burn.simulation.label})", "hours"))
    return cols


def burn_rows(result: GrantDocument) -> list[dict]:
    """The burn plan's periods and a total line, flat: each experiment's column is `by_experiment.<name>`."""
    periods = result.burn.periods
    rows = []
    for p in periods:
        row = {k: v for k, v in p.record().items() if k != "by_experiment" and (k != "forfeited" or v is not None)}
        rows.append({**row, **{f"by_experiment.{k}": v for k, v in p.by_experiment.items()}})
    total = {"period": "total", "label": "", "request": sum(p.request for p in periods),
             "contingency": sum(p.contingency for p in periods), "node_hours": sum(p.node_hours for p in periods),
             "share": 1.0 if periods else 0.0}
    for r in result.rows:
        total[f"by_experiment.{r.name}"] = sum(p.by_experiment[r.name] for p in periods)
    if result.burn.simulation is not None:
        total["forfeited"] = sum(p.forfeited or 0.0 for p in periods)
    return rows + [total]


STORAGE_COLUMNS = [Column("name", "item"), Column("tb", "TB", "ratio"), Column("basis", "basis")]


def storage_rows(result: GrantDocument) -> list[dict]:
    s = result.storage
    rows = [i.record() for i in s.items] + [{"name": "requested", "tb": s.requested_tb, "basis": s.requested_basis}]
    if s.tb_hours is not None:
        rows.append({"name": "requested, in TB-hours", "tb": s.tb_hours, "basis": s.tb_hours_basis})
    return rows


THRESHOLD_COLUMNS = [Column("what", "threshold"), Column("limit_text", "limit"), Column("value", "this request", "hours"),
                     Column("verdict", "verdict"), Column("alternative", "other reading"), Column("status", "status of the limit")]


def threshold_rows(result: GrantDocument) -> list[dict]:
    rows = []
    for t in result.thresholds:
        word = "meets" if t.met else "below" if t.kind == "min" else "above"
        alt = "–"
        if t.alternative_value is not None:
            alt_word = "meets" if t.alternative_met else "below" if t.kind == "min" else "above"
            alt = f"{t.alternative_value:,.0f} at the {t.alternative_dtype} peak: {alt_word}"
        rows.append({**t.record(), "limit_text": f"{'≥' if t.kind == 'min' else '≤'} {t.limit:,.0f} {t.unit}"
                     + (" per year" if t.per == "year" else ""),
                     "verdict": f"{word} (conversion {t.basis_status})", "alternative": alt})
    return rows


SWEEP_COLUMNS = [Column("experiment", "experiment"), Column("run_id", "run"), Column("params", "parameters", "count"),
                 Column("tokens", "tokens", "count"), Column("flops", "FLOPs", "flops"), Column("nodes", "nodes", "count"),
                 Column("mfu", "MFU", "fraction"), Column("wall_hours", "wall-h", "hours"), Column("node_hours", "node-h", "hours"),
                 Column("gpu_hours", "GPU-h", "hours"), Column("jobs", "jobs", "count")]


def sweep_rows(result: GrantDocument) -> list[dict]:
    return [d.record() for r in result.rows for d in r.sweep_runs]


def notes(result: GrantDocument) -> list[str]:
    c, u = result.cluster, result.unit
    out = [f"unit: {u.basis} ({u.status})"]
    out += [f"also: {a.basis}" for a in result.also]
    out.append(f"GPU-h counts the {c.gpus_per_node} GPUs per node that Slurm shows ({c.accelerator}); "
               f"estimate = node-h × {u.per_node_hour:g}; request = the {result.confidence:.0%} quantile "
               "of the estimate's out-of-sample error against published training campaigns (confidence:), rounded up "
               "to whole units per experiment")
    out.append(f"range: {result.interval_level:.0%} prediction interval from the same errors; rows share one "
               "estimator, so the subtotal adds their ranges")
    long = [r for r in result.rows if r.jobs_per_run > 1]
    if long:
        out.append(f"runs longer than the {c.max_wall_hours:g} h limit of partition {c.partition} are chains of jobs: "
                   + ", ".join(f"{r.name} {r.jobs_per_run} jobs/run" for r in long))
    for text in (result.storage.checkpoint_basis, result.storage.tb_hours_source):
        if text:
            out.append("storage: " + text)
    out.append("totals are sums of the unrounded rows; displayed values are rounded")
    out += [f"rule: {r.text} ({r.status})" for r in result.rules]
    out += [f"warning: {w}" for w in result.warnings]
    return out + provenance_note(result.provenance)


@dataclass(frozen=True)
class FigureLink:
    """A figure a document shows: its caption and where it is (a file beside the document, or a data: URI)."""

    system: str | None  # the cluster whose part of a multi-system proposal it belongs to (None: the only one)
    name: str
    caption: str
    href: str


def scaling_sections(result: GrantDocument) -> list[tuple[str, list[dict], list[Column], list[str]]]:
    """(title, rows, columns, notes) of each strong-scaling table and, after it, its weak-scaling table."""
    out = []
    for sc in result.scaling:
        kind = "measured and predicted" if sc.measured else "predicted"
        extra = [f"measurements: {sc.source}"] if sc.source else []
        out.append((f"Strong scaling ({kind}): {sc.experiment}", [dict(r) for r in sc.rows], scaling_columns(sc),
                    extra + scaling_notes(sc, "benchmark a few counts and add measured: and source: to the scaling entry",
                                          "mfu_basis: benchmark in the proposal")))
        weak = weak_scaling(sc)
        out.append((f"Weak scaling (predicted, fixed work per node): {sc.experiment}", [dict(r) for r in weak.rows],
                    weak_columns(weak), weak_notes(weak)))
    return out


def weak_tables(result: GrantDocument) -> list[WeakScalingTable]:
    return [weak_scaling(sc) for sc in result.scaling]


def figure_markdown(figures: Sequence[FigureLink]) -> list[str]:
    out = ["## Figures", ""] if figures else []
    for i, f in enumerate(figures, 1):
        out += [f"![Figure {i}: {f.name}]({f.href})", "", f"*Figure {i}.* {f.caption}", ""]
    return out


def figure_latex(f: FigureLink) -> str:
    return (f"\\begin{{figure}}[htbp]\n\\centering\n\\includegraphics[width=\\linewidth]{{{f.href}}}\n"
            f"\\caption{{{latex_escape(f.caption)}}}\n\\end{{figure}}\n")


def document_data(result: GrantDocument) -> dict:
    text, refs = justification(result)
    return {**result.record(), "weak_scaling": [w.record() for w in weak_tables(result)], "justification": text, "references": refs}


def render(result: GrantDocument | MultiSystemGrant, fmt: str, figures: Sequence[FigureLink] = ()) -> str:
    """The grant document `build` returned, as Markdown, LaTeX, CSV or JSON (DOCUMENT_FORMATS), showing
    `figures` (Markdown and LaTeX; a multi-system proposal's part shows those of its system)."""
    if fmt not in DOCUMENT_FORMATS:
        raise PlannerError(f"unknown format '{fmt}' (known: {', '.join(DOCUMENT_FORMATS)})", "format")
    if isinstance(result, MultiSystemGrant):
        return render_systems(result, fmt, figures)
    return DOCUMENT_FORMATS[fmt](result, figures)


# --- a proposal over several systems: one complete part per system, never summed across units ----

SYSTEM_COLUMNS = [Column("system", "system"), Column("experiments", "experiments", "count"),
                  Column("node_hours", "node-h", "hours"), Column("gpu_hours", "GPU-h (Slurm)", "hours"),
                  Column("request_text", "request (incl. contingency)")]


def system_rows(result: MultiSystemGrant) -> list[dict]:
    return [{"system": part.cluster.title, "experiments": len(part.rows), "node_hours": part.total.node_hours,
             "gpu_hours": part.total.gpu_hours, "request_text": f"{part.total.request:,} {part.unit.label}"}
            for part in result.systems]


def _demote(text: str, marks: tuple[str, ...]) -> str:
    """Headings one level down (deepest first), so a system's part sits under the document's title."""
    for mark, deeper in reversed(list(zip(marks, marks[1:], strict=False))):  # each mark with the next one
        text = text.replace(mark, deeper)
    return text


def part_figures(figures: Sequence[FigureLink], part: GrantDocument) -> list[FigureLink]:
    return [f for f in figures if f.system in (None, part.cluster.name)]


def render_systems(result: MultiSystemGrant, fmt: str, figures: Sequence[FigureLink] = ()) -> str:
    if fmt == "json":
        return to_json({**result.record(), "systems": [document_data(part) for part in result.systems]})
    if fmt == "csv":
        return to_csv([{"system": part.cluster.name, **row} for part in result.systems for row in csv_rows(part)])
    names = ", ".join(p.cluster.title for p in result.systems)
    note = ("Each system is requested in its own accounting unit, with its own contingency, burn plan and "
            "thresholds; the requests are not added across systems.")
    if fmt == "latex":
        e = latex_escape
        marks = ("\\section*{", "\\subsection*{", "\\subsubsection*{", "\\paragraph*{")
        parts = [f"\\section*{{System: {e(part.cluster.title)}}}\n"
                 + _demote(_latex_body(part, part_figures(figures, part)).split("\n", 1)[1], marks) for part in result.systems]
        head = [f"\\section*{{Compute resources: {e(result.title)}}}", e(f"Systems: {names}. {note}"),
                _tex_table(render_rows(system_rows(result), SYSTEM_COLUMNS, "latex"), "Request by system.")]
        return _latex_document("\n".join(head) + "\n" + "".join(parts))
    out = [f"# Compute resources: {result.title}", "", f"Systems: {names}. {note}", "",
           "## Request by system", "", render_rows(system_rows(result), SYSTEM_COLUMNS, fmt)]
    for part in result.systems:
        body = render_markdown(part, fmt, part_figures(figures, part)).split("\n", 1)[1]  # the part's own title line goes
        out += [f"## System: {part.cluster.title}", _demote(body, ("\n## ", "\n### ", "\n#### "))]
    return "\n".join(out).rstrip("\n") + "\n"


def render_csv(result: GrantDocument, figures: Sequence[FigureLink] = ()) -> str:
    """One table for spreadsheets: `section` says which part of the document a row belongs to."""
    return to_csv(csv_rows(result))


def csv_rows(result: GrantDocument) -> list[dict]:
    keep = ("name", "kind", "purpose", "runs", "nodes", "gpus_per_run", "wall_hours_per_run", "node_hours", "gpu_hours",
            "charge", "units", "units_interval", "request_factor", "request", "flops", "flops_convention", "mfu", "goodput",
            "params", "tokens", "samples", "start_month", "months", "storage_tb") + tuple(a.unit for a in result.also)
    keep += ("cost",) if result.total.cost is not None else ()
    rows = [{"section": "resources", **{k: r.get(k) for k in keep}} for r in resource_rows(result)]
    rows += [{"section": "storage", "name": s["name"], "tb": s["tb"]} for s in storage_rows(result)]
    for p in burn_rows(result):
        flat = {k: v for k, v in p.items() if k not in ("by_experiment", "months")}
        rows.append({"section": "burn", "name": flat.pop("period"), **{k: v for k, v in flat.items() if k != "name"}})
    rows += [{"section": "schedule", **{k: v for k, v in e.items() if k not in ("bar", "after_text")}, "after": e["after_text"]}
             for e in schedule_rows(result)]
    rows += [{"section": "threshold", "name": t.what, "limit": t.limit, "value": t.value, "met": t.met}
             for t in result.thresholds]
    for sc in result.scaling:
        rows += [{"section": "scaling", "name": sc.experiment, **r} for r in sc.rows]
        rows += [{"section": "weak-scaling", "name": sc.experiment, **r} for r in weak_scaling(sc).rows]
    rows += [{"section": "sweep-run", "name": d["run_id"], **{k: v for k, v in d.items() if k != "run_id"}} for d in sweep_rows(result)]
    return rows


def header_items(result: GrantDocument) -> list[tuple[str, str]]:
    pr, c, u = result.program, result.cluster, result.unit
    items = [("Program", f"{pr.title}: request in {u.label} ({u.per_node_hour:g} per node-hour, {u.status})"),
             ("System", f"{c.title}: {c.gpus_per_node} × {c.accelerator} per node (as Slurm counts GPUs)"),
             ("Allocation", f"{result.months} months from {result.start}, planned by {result.burn.period}")]
    if result.pi:
        items.insert(0, ("PI", result.pi))
    if result.project:
        items.insert(0, ("Project", result.project))
    t = result.total
    items.append(("Total request", f"{t.request:,} {u.label} (incl. {result.contingency:.0%} contingency); "
                  f"storage {human(result.storage.requested_tb, 'ratio')} TB"))
    return items


def render_markdown(result: GrantDocument, fmt: str = "markdown", figures: Sequence[FigureLink] = ()) -> str:
    text, refs = justification(result)
    out = [f"# Compute resources: {result.title}", ""]
    out += [f"- **{k}:** {v}" for k, v in header_items(result)] + [""]
    out += ["## Resources by experiment", "", render_rows(resource_rows(result), resource_columns(result), fmt)]
    if result.thresholds:
        out += ["## Call thresholds", "", render_rows(threshold_rows(result), THRESHOLD_COLUMNS, fmt)]
    out += ["## Storage", "", render_rows(storage_rows(result), STORAGE_COLUMNS, fmt)]
    out += ["## Schedule", "", render_rows(schedule_rows(result), schedule_columns(result, fmt), fmt, schedule_notes(result))]
    out += [f"## Burn plan by {result.burn.period}", "", render_rows(burn_rows(result), burn_columns(result), fmt)]
    for title, rows, columns, sc_notes in scaling_sections(result):
        out += [f"## {title}", "", render_rows(rows, columns, fmt, sc_notes)]
    out += figure_markdown(figures)
    out += ["## Justification", "", text, "", "### References", ""] + [f"{i}. {r}" for i, r in enumerate(refs, 1)] + [""]
    out += ["## Notes", ""] + [f"- {n}" for n in notes(result)] + [""]
    if result.expects:
        out += ["## What the call expects", ""] + [f"- [ ] {e.text} ({e.status})" for e in result.expects] + [""]
    if sweep_rows(result):
        out += ["## Appendix: sweep runs", "", render_rows(sweep_rows(result), SWEEP_COLUMNS, fmt)]
    return "\n".join(out).rstrip("\n") + "\n"


TEX_SYMBOLS = {"≥": r"\ensuremath{\geq}", "≤": r"\ensuremath{\leq}", "≈": r"\ensuremath{\approx}", "→": r"\ensuremath{\rightarrow}",
               "↔": r"\ensuremath{\leftrightarrow}", "∝": r"\ensuremath{\propto}", "−": r"\ensuremath{-}", "×": r"\ensuremath{\times}",
               "·": r"\ensuremath{\cdot}", "ᵀ": r"\ensuremath{^{T}}", "–": "--", "—": "---", "…": r"\ldots{}", "‰": "permille"}


def _unicode_preamble(body: str) -> str:
    """pdflatex stops at a character it has no definition for: declare every one the body uses."""
    lines = []
    for ch in sorted({ch for ch in body if ord(ch) > 0x7F}):
        if ch in TEX_SYMBOLS:
            lines.append(f"\\DeclareUnicodeCharacter{{{ord(ch):04X}}}{{{TEX_SYMBOLS[ch]}}}")
        elif ord(ch) > 0xFF:  # Latin-1 letters are defined by inputenc; anything else prints as its code
            lines.append(f"\\DeclareUnicodeCharacter{{{ord(ch):04X}}}{{[U+{ord(ch):04X}]}}")
    return "\n".join(lines)


def _tex_table(tabular: str, caption: str) -> str:
    return ("\\begin{table}[htbp]\n\\centering\\small\n\\fitwidth{%\n" + tabular.rstrip("\n") + "%\n}\n"
            f"\\caption{{{latex_escape(caption)}}}\n\\end{{table}}\n")


def render_latex(result: GrantDocument, figures: Sequence[FigureLink] = ()) -> str:
    return _latex_document(_latex_body(result, figures))


def _latex_body(result: GrantDocument, figures: Sequence[FigureLink] = ()) -> str:
    text, refs = justification(result)
    e = latex_escape
    body = [f"\\section*{{Compute resources: {e(result.title)}}}", "\\begin{description}"]
    body += [f"\\item[{e(k)}] {e(v)}" for k, v in header_items(result)] + ["\\end{description}"]
    body.append(_tex_table(render_rows(resource_rows(result), resource_columns(result), "latex"),
                           "Resources by experiment: runs × nodes × wall-hours, subtotal, contingency and total."))
    if result.thresholds:
        body.append(_tex_table(render_rows(threshold_rows(result), THRESHOLD_COLUMNS, "latex"), "Thresholds of the call."))
    body.append(_tex_table(render_rows(storage_rows(result), STORAGE_COLUMNS, "latex"), "Storage."))
    body.append(_tex_table(render_rows(schedule_rows(result), schedule_columns(result, "latex"), "latex"),
                           "Schedule: node-hours of each experiment by period. " + "; ".join(schedule_notes(result)) + "."))
    body.append(_tex_table(render_rows(burn_rows(result), burn_columns(result), "latex"),
                           f"Burn plan by {result.burn.period} in {result.unit.unit}."))
    for title, rows, columns, sc_notes in scaling_sections(result):
        body.append(_tex_table(render_rows(rows, columns, "latex"), title + ". " + " ".join(n.rstrip(".") + "." for n in sc_notes)))
    body += [figure_latex(f) for f in figures]
    body += ["\\subsection*{Justification}", e(text), "", "\\subsection*{References}", "\\begin{enumerate}"]
    body += [f"\\item {e(r)}" for r in refs] + ["\\end{enumerate}", "\\subsection*{Notes}", "\\begin{itemize}"]
    body += [f"\\item {e(n)}" for n in notes(result)] + ["\\end{itemize}"]
    if sweep_rows(result):
        body.append(_tex_table(render_rows(sweep_rows(result), SWEEP_COLUMNS, "latex"), "Appendix: every run of the sweeps."))
    return "\n".join(body) + "\n"


def _latex_document(text_body: str) -> str:
    preamble = [
        "% Generated by `planner grant`. Compile with pdflatex; or \\input the body into your proposal",
        "% (needs \\usepackage{booktabs,graphicx} and the \\fitwidth macro below).",
        "\\documentclass[a4paper,10pt]{article}", "\\usepackage[T1]{fontenc}", "\\usepackage[utf8]{inputenc}",
        "\\usepackage[margin=2cm]{geometry}", "\\usepackage{booktabs}", "\\usepackage{graphicx}", "\\emergencystretch=3em",
        _unicode_preamble(text_body),
        "\\newsavebox{\\plannerbox}",
        "\\newcommand{\\fitwidth}[1]{\\sbox{\\plannerbox}{#1}\\ifdim\\wd\\plannerbox>\\linewidth"
        "\\resizebox{\\linewidth}{!}{\\usebox{\\plannerbox}}\\else\\usebox{\\plannerbox}\\fi}",
        "\\begin{document}",
    ]
    return "\n".join(p for p in preamble if p) + "\n" + text_body + "\\end{document}\n"


# A grant document's formats: a web form takes Markdown, a PDF annex LaTeX, a spreadsheet CSV, a
# script JSON. Adding one is a renderer and a line here (planner.grant.report adds html; the CLI's choices follow).
DOCUMENT_FORMATS: dict[str, Callable[[GrantDocument, Sequence[FigureLink]], str]] = {
    "markdown": lambda result, figures: render_markdown(result, "markdown", figures),
    "latex": render_latex,
    "csv": render_csv,
    "json": lambda result, figures: to_json(document_data(result)),
}
