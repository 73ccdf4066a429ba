"""Rendering results as table, JSON, CSV, Markdown or LaTeX; the only module that formats numbers.

Human formats (table, markdown, latex) round for reading; machine formats (json, csv) keep every
digit. Output is a pure function of the data, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from planner.errors import PlannerWarning


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text | count | flops | hours | fraction | loss | float | ratio | gopher


def _sig(value: float, digits: int = 3) -> str:
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    return text


def human(value: Any, kind: str = "text") -> str:
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return f"{human(value[0], kind)}–{human(value[1], kind)}"  # an interval
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if kind == "count":
        for scale, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(value) >= scale:
                return f"{_sig(value / scale, 4)}{suffix}"
        return _sig(value, 4)
    if kind == "flops":
        return _sig(value, 3)
    if kind == "hours":
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return _sig(value, 3)
    if kind == "fraction":
        return f"{value * 100:.1f}%"
    if kind == "loss":
        return f"{value:.4f}"
    if kind == "gopher":  # Hoffmann Table 3 prints fractions of the Gopher budget as 1/N
        if 0 < value < 0.5:
            return f"1/{1 / value:,.0f}"
        return _sig(value, 3) if value < 10 else f"{value:,.1f}"
    if kind == "ratio":
        return _sig(value, 3)
    if isinstance(value, int):
        return f"{value:,}"
    return _sig(value, 4)


def _json_safe(data: Any) -> Any:
    """NaN and infinity are not JSON: they become null (the human formats print them as they are)."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_json_safe(v) for v in data]
    if isinstance(data, PlannerWarning):  # its message: JSON readers see warnings as text
        return str(data)
    if hasattr(data, "record") and not isinstance(data, type):  # a typed result: JSON is its record
        return _json_safe(data.record())
    return data


def to_json(data: Any) -> str:
    return json.dumps(_json_safe(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def is_range_key(key: str) -> bool:
    """A [low, high] range by its name: `*_interval`, `interval`, or a central range of fits such as `ci80`."""
    return key.endswith("_interval") or key == "interval" or re.fullmatch(r"ci\d+", key) is not None


def _flatten(record: dict, prefix: str = "") -> dict:
    flat: dict = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, (list, tuple)) and is_range_key(key) and len(value) == 2:
            flat[f"{name}_low"], flat[f"{name}_high"] = value  # a range: two columns a spreadsheet can use
        elif isinstance(value, (list, tuple)):
            flat[name] = " | ".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...) from a proposal's title);
# a leading apostrophe makes it text (OWASP, "CSV injection"). Numbers are written as numbers.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: list[dict]) -> str:
    flat = [_flatten(r) for r in rows]
    header: list[str] = []
    for r in flat:
        header += [k for k in r if k not in header]
    buf = io.StringIO()
    # a bare CR ends a row for spreadsheets and most readers: a field holding one is quoted, like one with a newline
    cr = any("\r" in str(x) for r in flat for x in (*r, *r.values()))
    writer = csv.DictWriter(buf, fieldnames=[csv_cell(h) for h in header], lineterminator="\n",
                            quoting=csv.QUOTE_NONNUMERIC if cr else csv.QUOTE_MINIMAL)
    writer.writeheader()
    for r in flat:
        writer.writerow({csv_cell(k): csv_cell(v) for k, v in r.items()})
    return buf.getvalue()


LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def _tabulate(headers: list[str], body: list[list[str]], align: list[str], style: str) -> str:
    from tabulate import tabulate  # imported here: only human formats need it

    return tabulate(body, headers=headers, tablefmt=style, colalign=align, disable_numparse=True) + "\n"


def _latex_grid(headers: list[str], body: list[list[str]], align: list[str]) -> str:
    spec = "".join("r" if a == "right" else "l" for a in align)
    lines = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(latex_escape(h) for h in headers) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _markdown_grid(headers: list[str], body: list[list[str]], align: list[str]) -> str:
    cells = [[c.replace("|", r"\|") for c in row] for row in body]  # a pipe in a cell must not open a column
    return _tabulate(headers, cells, align, "github")


@dataclass(frozen=True)
class OutputFormat:
    """One output format: machine formats (json, csv) keep every digit and the result's own keys; human
    formats (table, markdown, latex) round each number for reading and lay out the chosen columns.
    Adding a format is one entry in OUTPUT_FORMATS (tests/test_output.py checks every entry)."""

    name: str
    machine: bool
    rows: Callable[[list[dict], Any], str] | None = None  # machine: the rows (and the whole result)
    record: Callable[[dict], str] | None = None  # machine: one result
    grid: Callable[[list[str], list[list[str]], list[str]], str] | None = None  # human: headers, cells, alignment
    notes: Callable[[list[str]], str] | None = None  # human: the lines under a table
    heading: str = ""  # human: how a section heading starts


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    "table": OutputFormat("table", False, grid=lambda h, b, a: _tabulate(h, b, a, "simple"),
                          notes=lambda ns: "\n" + "".join(f"{n}\n" for n in ns)),
    "json": OutputFormat("json", True, rows=lambda rows, data: to_json(data if data is not None else rows), record=to_json),
    "csv": OutputFormat("csv", True, rows=lambda rows, data: to_csv(rows), record=lambda r: to_csv([r])),
    "markdown": OutputFormat("markdown", False, grid=_markdown_grid, notes=lambda ns: "\n" + "".join(f"- {n}\n" for n in ns),
                             heading="## "),
    "latex": OutputFormat("latex", False, grid=_latex_grid, notes=lambda ns: "".join(f"% {n}\n" for n in ns)),
}
FORMATS = tuple(OUTPUT_FORMATS)
HUMAN = tuple(name for name, f in OUTPUT_FORMATS.items() if not f.machine)


def output_format(name: str) -> OutputFormat:
    return OUTPUT_FORMATS[name]


def _grid(headers: list[str], body: list[list[str]], fmt: str, align: list[str]) -> str:
    grid = OUTPUT_FORMATS[fmt].grid
    assert grid is not None, f"{fmt} is a machine format"
    return grid(headers, body, align)


def _notes(notes: list[str], fmt: str) -> str:
    render = OUTPUT_FORMATS[fmt].notes
    return render(notes) if notes and render is not None else ""


def provenance_note(prov: dict | None) -> list[str]:
    """One line that says what a result was computed with (empty when the result carries none)."""
    if not prov:
        return []
    user = prov["user_catalog_dirs"]
    return [f"computed with planner {prov['planner']}, catalogs sha256:{prov['catalog_sha256']} "
            f"(built-in{f' + {user} user director' + ('y' if user == 1 else 'ies') if user else ''})"] + [
        f"catalog override: {o['kind']}/{o['name']} is read from {o['file']}, not from {' or '.join(o['over'])}"
        for o in prov.get("overrides", ())]


def render_rows(rows: list[dict], columns: list[Column], fmt: str, notes: list[str] | tuple[str, ...] = (), data: Any = None) -> str:
    """A table of many records. `data` is what JSON prints (defaults to the rows)."""
    form = OUTPUT_FORMATS[fmt]
    if form.rows is not None:
        return form.rows(rows, data)
    headers = [c.header for c in columns]
    body = [[human(r.get(c.key), c.kind) for c in columns] for r in rows]
    align = ["left" if c.kind == "text" else "right" for c in columns]
    return _grid(headers, body, fmt, align) + _notes(list(notes), fmt)


def render_record(record: dict, fields: list[Column], fmt: str, notes: list[str] | tuple[str, ...] = ()) -> str:
    """One result as two columns (quantity, value); JSON and CSV keep the record's own keys."""
    form = OUTPUT_FORMATS[fmt]
    if form.record is not None:
        return form.record(record)
    body = [[f.header, _with_interval(record, f)] for f in fields if _dig(record, f.key) is not None]
    return _grid(["quantity", "value"], body, fmt, ["left", "right"]) + _notes(list(notes), fmt)


def interval_of(record: dict, key: str) -> Any:
    """The interval stored beside a value: `x_interval` for `x`, `parent.interval` for `parent.amount`."""
    found = _dig(record, key + "_interval")
    if found is None and key.endswith(".amount"):
        found = _dig(record, key.removesuffix(".amount") + ".interval")
    return found


def _with_interval(record: dict, f: Column) -> str:
    text = human(_dig(record, f.key), f.kind)
    span = interval_of(record, f.key)
    return f"{text} ({human(span, f.kind)})" if span is not None else text


def _dig(record: dict, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
