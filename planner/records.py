"""The JSON of a typed result: `Record.record()` gives a frozen dataclass's fields by name, in declaration
order; nested results (anything with its own `record()`) are left to the JSON writer (report.output)."""

from __future__ import annotations

from typing import Any


class Record:
    def record(self) -> dict[str, Any]:
        return dict(vars(self))  # a dataclass's __init__ sets its fields in declaration order
