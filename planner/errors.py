"""The one exception type for bad input: the CLI turns it into one line on stderr and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol


class PlannerError(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def unknown_name(kind: str, name: str, known: Iterable[str]) -> PlannerError:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if not close:  # prefixes catch 'h100' -> 'h100-sxm', which difflib's ratio misses
        close = [k for k in known if k.startswith(name) or name in k][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = f" (known: {', '.join(known)})" if len(known) <= 20 else ""
    return PlannerError(f"unknown {kind} '{name}'{hint}{listing}")


class Locates(Protocol):
    """A user file that can name a field's line: `error(("experiments", 2, "nodes"), message)`."""

    def error(self, path: tuple, message: str) -> PlannerError: ...


@contextmanager
def located(source: Locates, *path) -> Iterator[None]:
    """Re-raise a PlannerError from the block as `file:line: field: message` at `path` of `source`."""
    try:
        yield
    except PlannerError as exc:
        raise source.error(path, exc.message) from None
