"""Reading the user's runs from CSV: named columns, row filters, and honest errors about bad data."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from array import array
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planner.errors import PlannerError
from planner.files import decode_utf8, read_input

MAX_ROWS = 1_000_000
MAX_BYTES = 64 << 20  # a million rows of a few columns; read whole, so a cap keeps a wrong file from taking all memory


@dataclass(frozen=True)
class Table:
    """A CSV's header and, column by column, the cells of the columns kept (all, unless the reader was
    told which it needs: a million rows of twenty columns would not fit in memory as Python strings)."""

    path: str
    header: list[str]
    cells: dict[str, list[str]]
    line_of: array  # file line of each row, for error messages
    sha256: str

    def __len__(self) -> int:
        return len(self.line_of)

    @property
    def rows(self) -> list[dict[str, str]]:
        """The kept columns as one dict per row (for small tables: the fit reads `cells`)."""
        return [dict(zip(self.cells, values, strict=True)) for values in zip(*self.cells.values(), strict=True)] \
            if self.cells else [{} for _ in self.line_of]


def read_csv(path: Path, keep: Collection[str] | None = None) -> Table:
    """The table in `path`, with the cells of the columns in `keep` (every column when None)."""
    raw = read_input(path, "CSV", MAX_BYTES)
    sha256 = hashlib.sha256(raw).hexdigest()
    text = decode_utf8(raw, path)
    del raw
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise PlannerError(f"{path}:1: empty file (expected a header row)") from None
    except csv.Error as exc:
        raise PlannerError(f"{path}:1: malformed CSV: {exc}") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise PlannerError(f"{path}:1: column '{dup}' appears twice in the header")
    kept = [(i, h) for i, h in enumerate(header) if keep is None or h in keep]
    cells: dict[str, list[str]] = {h: [] for _, h in kept}
    appends = [(i, cells[h].append) for i, h in kept]
    lines = array("q")
    try:
        for line_no, record in enumerate(reader, start=2):
            if not record or all(not c.strip() for c in record):
                continue
            if len(record) != len(header):
                raise PlannerError(f"{path}:{line_no}: {len(record)} fields, the header has {len(header)}")
            for i, append in appends:
                append(record[i].strip())
            lines.append(line_no)
            if len(lines) > MAX_ROWS:
                raise PlannerError(f"{path}: more than {MAX_ROWS} rows")
    except csv.Error as exc:
        raise PlannerError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
    return Table(str(path), header, cells, lines, sha256)


def parse_where(clauses: tuple[str, ...] | list[str]) -> list[tuple[str, set[str]]]:
    out = []
    for clause in clauses:
        col, sep, values = clause.partition("=")
        if not sep or not col.strip() or not values:
            raise PlannerError(f"'{clause}': expected COLUMN=VALUE[,VALUE...]", "where")
        out.append((col.strip(), {v.strip() for v in values.split(",")}))
    return out


def select(table: Table, where: list[tuple[str, set[str]]]) -> Table:
    for col, _ in where:
        _check_column(table, col, "where")
    if not where:
        return table
    keep = [i for i in range(len(table)) if all(table.cells[col][i] in values for col, values in where)]
    cells = {col: [values[i] for i in keep] for col, values in table.cells.items()}
    return Table(table.path, table.header, cells, array("q", (table.line_of[i] for i in keep)), table.sha256)


def _check_column(table: Table, col: str, field: str | None) -> None:
    if col not in table.header:
        from planner.errors import suggestions

        raise PlannerError(f"{table.path}:1: unknown column '{col}'{suggestions(col, table.header)}", field)


def column(table: Table, col: str, field: str | None = None, positive: bool = True) -> np.ndarray:
    """A numeric column; the first bad cell is reported with its line. `field` is the input that named
    the column (e.g. `params_col`), None for a column of fixed name."""
    _check_column(table, col, field)
    values = np.empty(len(table))
    for i, cell in enumerate(table.cells[col]):
        try:
            v = float(cell)
        except ValueError:
            raise PlannerError(f"{table.path}:{table.line_of[i]}: {col}: '{cell}' is not a number") from None
        if not math.isfinite(v):
            raise PlannerError(f"{table.path}:{table.line_of[i]}: {col}: {cell} is not finite")
        if positive and v <= 0:
            raise PlannerError(f"{table.path}:{table.line_of[i]}: {col}: {cell} must be positive (it is taken in log space)")
        values[i] = v
    return values


def require_rows(table: Table, minimum: int, what: str) -> None:
    if len(table) < minimum:
        raise PlannerError(f"{table.path}: {len(table)} usable rows; {what} needs at least {minimum}")


def require_spread(values: np.ndarray, name: str, path: str) -> None:
    if np.ptp(np.log(values)) < 1e-9:
        raise PlannerError(f"{path}: {name} is constant across the rows; a scaling law needs it to vary")
