"""A grant document as ONE self-contained HTML file a collaborator can open anywhere: inline CSS, the
figures inline (data: URIs), every table of the Markdown document, sources as links; no script and no
external resource (a Content-Security-Policy forbids loading any). Every text is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from planner.grant.document import GrantDocument, MultiSystemGrant
from planner.grant.method import justification
from planner.grant.render import (
    STORAGE_COLUMNS,
    SWEEP_COLUMNS,
    SYSTEM_COLUMNS,
    THRESHOLD_COLUMNS,
    FigureLink,
    burn_columns,
    burn_rows,
    header_items,
    notes,
    part_figures,
    resource_columns,
    resource_rows,
    scaling_sections,
    storage_rows,
    sweep_rows,
    system_rows,
    threshold_rows,
)
from planner.report.output import Column, human

URL = re.compile(r"https?://[^\s<>\"')\]]+|arXiv:? ?\d{4}\.\d{4,5}")  # an arXiv identifier links to its abstract
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 78em; padding: 0 1em;
       color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; margin-top: 1.6em; border-bottom: 1px solid #ccc; } h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; } th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
ul.notes { font-size: 0.85em; color: #444; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #333; }
dt { font-weight: bold; float: left; clear: left; width: 9em; } dd { margin-left: 10em; }
"""
# nothing may be fetched: images only from data: URIs, styles only the inline sheet
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def linked(text: str) -> str:
    """`text` escaped, with every URL in it a link."""
    out, last = [], 0
    for m in URL.finditer(text):
        shown = m.group(0).rstrip(".,;:")
        url = shown if shown.startswith("http") else "https://arxiv.org/abs/" + shown[-10:].lstrip(": ")
        out += [escape(text[last:m.start()]), f'<a href="{escape(url)}">{escape(shown)}</a>']
        last = m.start() + len(shown)
    return "".join(out) + escape(text[last:])


def table(rows: list[dict], columns: list[Column], table_notes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape(c.header)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = "".join(f'<td class="{"text" if c.kind == "text" else "num"}">{escape(human(r.get(c.key), c.kind))}</td>'
                        for c in columns)
        body.append(f"<tr>{cells}</tr>")
    out = f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n"
    if table_notes:
        out += '<ul class="notes">\n' + "".join(f"<li>{linked(n)}</li>\n" for n in table_notes) + "</ul>\n"
    return out


def figure(f: FigureLink, number: int) -> str:
    return (f'<figure id="figure-{escape(f.name)}">\n<img src="{escape(f.href)}" alt="Figure {number}: {escape(f.name)}">\n'
            f"<figcaption><b>Figure {number}.</b> {linked(f.caption)}</figcaption>\n</figure>\n")


def body(result: GrantDocument, figures: Sequence[FigureLink], h: int = 1) -> str:
    """One system's document; its headings start at level `h`."""
    text, refs = justification(result)
    h2, h3 = f"h{h + 1}", f"h{h + 2}"
    out = [f"<h{h}>Compute resources: {escape(result.title)}</h{h}>", "<dl>"]
    out += [f"<dt>{escape(k)}</dt><dd>{linked(v)}</dd>" for k, v in header_items(result)] + ["</dl>"]
    out += [f"<{h2}>Resources by experiment</{h2}>", table(resource_rows(result), resource_columns(result))]
    if result.thresholds:
        out += [f"<{h2}>Call thresholds</{h2}>", table(threshold_rows(result), THRESHOLD_COLUMNS)]
    out += [f"<{h2}>Storage</{h2}>", table(storage_rows(result), STORAGE_COLUMNS)]
    out += [f"<{h2}>Burn plan by {escape(result.burn.period)}</{h2}>", table(burn_rows(result), burn_columns(result))]
    for title, rows, columns, sc_notes in scaling_sections(result):
        out += [f"<{h2}>{escape(title)}</{h2}>", table(rows, columns, sc_notes)]
    if figures:
        out += [f"<{h2}>Figures</{h2}>"] + [figure(f, i) for i, f in enumerate(figures, 1)]
    out += [f"<{h2}>Justification</{h2}>", f"<p>{linked(text)}</p>", f"<{h3}>References</{h3}>", "<ol>"]
    out += [f"<li>{linked(r)}</li>" for r in refs] + ["</ol>", f"<{h2}>Notes</{h2}>", '<ul class="notes">']
    out += [f"<li>{linked(n)}</li>" for n in notes(result)] + ["</ul>"]
    if result.expects:
        out += [f"<{h2}>What the call expects</{h2}>", "<ul>"]
        out += [f"<li>☐ {linked(e.text)} ({escape(e.status)})</li>" for e in result.expects] + ["</ul>"]
    if sweep_rows(result):
        out += [f"<{h2}>Appendix: sweep runs</{h2}>", table(sweep_rows(result), SWEEP_COLUMNS)]
    return "\n".join(out) + "\n"


def render_html(result: GrantDocument | MultiSystemGrant, figures: Sequence[FigureLink] = ()) -> str:
    """The whole document as one HTML page; `figures` should be data: URIs (the page fetches nothing)."""
    if isinstance(result, MultiSystemGrant):
        names = ", ".join(p.cluster.title for p in result.systems)
        parts = [f"<h1>Compute resources: {escape(result.title)}</h1>",
                 f"<p>Systems: {escape(names)}. Each system is requested in its own accounting unit, with its own "
                 "contingency, burn plan and thresholds; the requests are not added across systems.</p>",
                 "<h2>Request by system</h2>", table(system_rows(result), SYSTEM_COLUMNS)]
        parts += [f'<section id="system-{escape(p.cluster.name)}">\n' + body(p, part_figures(figures, p), 2) + "</section>"
                  for p in result.systems]
        content = "\n".join(parts) + "\n"
    else:
        content = body(result, figures)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>Compute resources: {escape(result.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + content + "</body>\n</html>\n")
