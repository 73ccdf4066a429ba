"""A grant document with its figures, and writing both.

Markdown and LaTeX link PNG files written in a directory beside the document (`report.md` →
`report_files/`); HTML carries them inline (one self-contained file); CSV and JSON have no figures.
The figures (planner.report.grant_plots) need matplotlib, an optional extra: without it the document is
rendered without them and `figures_of` says why.

Written all or none: the figure directory is built beside its target and swapped in whole
(planner.directory), then the document is written atomically (planner.files); when the document cannot
be written, a figure directory this write created is removed again. Nothing is overwritten without `force`.
"""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from planner.errors import PlannerError
from planner.grant.document import GrantDocument, MultiSystemGrant
from planner.grant.html import render_html
from planner.grant.render import DOCUMENT_FORMATS, FigureLink, render

REPORT_FORMATS = (*DOCUMENT_FORMATS, "html")
FIGURES_BESIDE = ("markdown", "latex")  # formats that link figure files written beside the document
FIGURES_INLINE = ("html",)


@dataclass(frozen=True)
class Figure:
    system: str | None  # the cluster of a multi-system proposal's part (None: a one-system proposal)
    name: str
    caption: str
    png: bytes

    @property
    def filename(self) -> str:
        return f"{self.system}-{self.name}.png" if self.system else f"{self.name}.png"


def figures_unavailable() -> str | None:
    """Why no figure can be drawn here (matplotlib is an optional extra), or None."""
    from importlib.util import find_spec

    return None if find_spec("matplotlib") else "figures need matplotlib: pip install 'planner[plot]'"


def figures_of(result: GrantDocument | MultiSystemGrant, catalog) -> list[Figure]:
    """Every figure that applies to the document, drawn (PlannerError when matplotlib is missing)."""
    from planner.report.grant_plots import grant_figures

    parts = result.systems if isinstance(result, MultiSystemGrant) else (result,)
    out = []
    with tempfile.TemporaryDirectory(prefix="planner-figures-") as tmp:
        for part in parts:
            system = part.cluster.name if isinstance(result, MultiSystemGrant) else None
            for spec in grant_figures(catalog):
                path = Path(tmp) / f"{system or 'figure'}-{spec.name}.png"
                if spec.draw(part, path):
                    out.append(Figure(system, spec.name, spec.caption(part), path.read_bytes()))
    return out


def figure_directory(out: Path) -> Path:
    """Where the figures of the document `out` go: `<stem>_files` beside it (a name LaTeX reads as it is)."""
    return out.with_name(re.sub(r"[^A-Za-z0-9_-]", "-", out.stem) + "_files")


def render_report(result: GrantDocument | MultiSystemGrant, fmt: str, figures: Sequence[Figure] = (),
                  directory: str | None = None) -> str:
    """The document in `fmt` (REPORT_FORMATS). HTML inlines `figures`; Markdown and LaTeX link them as files
    in `directory` (relative to the document; None: no figures)."""
    if fmt not in REPORT_FORMATS:
        raise PlannerError(f"unknown format '{fmt}' (known: {', '.join(REPORT_FORMATS)})", "format")
    if fmt == "html":
        return render_html(result, [FigureLink(f.system, f.name, f.caption, "data:image/png;base64,"
                                               + base64.b64encode(f.png).decode("ascii")) for f in figures])
    links = [FigureLink(f.system, f.name, f.caption, f"{directory}/{f.filename}") for f in figures] if directory else []
    return render(result, fmt, links if fmt in FIGURES_BESIDE else ())


def write_report(out: Path, text: str, figures: Sequence[Figure], force: bool) -> list[Path]:
    """Write the document `out` and, when there are figures, the figure directory beside it: all or none."""
    from planner.directory import write_directory
    from planner.files import check_writable, write_atomic

    check_writable(out, force)
    written = []
    created = None
    if figures:
        where = figure_directory(out)
        created = None if where.exists() else where
        write_directory(where, {f.filename: f.png for f in figures}, [f.filename for f in figures], force)
        written.append(where)
    try:
        write_atomic(out, text, force)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    return [out, *written]
