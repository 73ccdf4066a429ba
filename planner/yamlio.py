"""YAML loading that remembers where every value came from, so errors read `file:line: field: message`."""

from __future__ import annotations

import difflib
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from planner.errors import PlannerError

try:  # the C loader is ~10x faster; a plan must start quickly
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

Model = TypeVar("Model", bound=BaseModel)

# Catalog and spec files are small; anything bigger is a mistake or an attack (billion laughs).
MAX_BYTES = 2_000_000
MAX_DEPTH = 40


class _Bad(Exception):
    """A problem at a line of the text; load_text names the file."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


def _to_python(node: yaml.Node, path: tuple, lines: dict, loader: yaml.BaseLoader, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise _Bad(node.start_mark.line + 1, f"nesting deeper than {MAX_DEPTH} levels")
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, path, loader)
            if isinstance(key, (list, dict)):
                raise _Bad(key_node.start_mark.line + 1, "mapping keys must be plain values")
            if key in out:
                raise _Bad(key_node.start_mark.line + 1, f"{key}: duplicate key")
            out[key] = _to_python(value_node, path + (key,), lines, loader, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, path + (i,), lines, loader, depth + 1) for i, item in enumerate(node.value)]
    return _construct(node, path, loader)


def _construct(node: yaml.Node, path: tuple, loader: yaml.BaseLoader) -> Any:
    """A scalar as Python data; one PyYAML cannot build (`2027-02-30`, `!!float abc`, an integer of more than
    4,300 digits) or a float cannot hold is an error at its line, not a traceback."""
    try:
        value = loader.construct_object(node, deep=True)
        if not (isinstance(value, int) and abs(value) > sys.float_info.max):
            return value
        problem = "is beyond the range of numbers (about 1.8e308)"
    except ValueError:
        problem = f"cannot be read as {node.tag.rsplit(':', 1)[-1]}"
    text = str(node.value) if len(str(node.value)) <= 24 else str(node.value)[:12] + "…"
    raise _Bad(node.start_mark.line + 1, f"{'.'.join(str(p) for p in path) or '(top level)'}: '{text}' {problem}")


def load_text(text: str, filename: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML text into plain Python data plus a map from key path to line number."""
    if len(text) > MAX_BYTES:
        raise PlannerError(f"{filename}: file larger than {MAX_BYTES} bytes")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        if _has_alias(node, set()):
            # Aliases let a tiny file expand exponentially; catalogs and specs never need them.
            raise PlannerError(f"{filename}:{node.start_mark.line + 1}: YAML anchors and aliases are not allowed")
        lines: dict[tuple, int] = {}
        try:
            data = _to_python(node, (), lines, loader)
        except _Bad as exc:
            raise PlannerError(f"{filename}:{exc.line}: {exc.message}") from None
        return data, lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise PlannerError(f"{filename}:{line}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML forbids: the reader knows its offset, not its line
        line = _line_at(text, exc.position)
        raise PlannerError(f"{filename}:{line}: invalid YAML: character #x{exc.character:04x}: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise PlannerError(f"{filename}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _line_at(text: str, position: int) -> int:
    """The line of a reader offset: libyaml counts UTF-8 bytes, the pure-Python reader characters."""
    head = text.encode("utf-8")[:position].decode("utf-8", "ignore") if _Loader is not yaml.SafeLoader else text[:position]
    return len((head + "x").splitlines())  # YAML's line breaks (\n, \r, \x85, \u2028, \u2029) are str's


def _has_alias(node: yaml.Node, seen: set[int]) -> bool:
    if id(node) in seen:
        return True  # the composer shares the node object for every alias of an anchor
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        return any(_has_alias(k, seen) or _has_alias(v, seen) for k, v in node.value)
    if isinstance(node, yaml.SequenceNode):
        return any(_has_alias(item, seen) for item in node.value)
    return False


def read_text(path: Path) -> str:
    from planner.files import decode_utf8, read_input

    return decode_utf8(read_input(path, "YAML", MAX_BYTES), path)


class HasErrors(Protocol):
    """A ValidationError, or anything that lists errors as it does (the sweep spec's adjusted ones)."""

    def errors(self, *, include_url: bool = ...) -> list[ErrorDetails]: ...


def validation_errors(exc: HasErrors, model: type[BaseModel] | None = None) -> list[tuple[tuple, str]]:
    """Every pydantic error as (key path in the document, message in plain words). With the model that
    was validated, an unknown key says which keys are valid there and which one it most likely meant;
    unknown keys come first (a misspelt key also makes the real one missing)."""
    out = []
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    for err in errors:
        data_loc = tuple(part for part in err["loc"] if not looks_like_tag(part))
        message = err["msg"].removeprefix("Value error, ")
        if not data_loc:  # model-level checks name their field as "a.b.0: message"
            head, sep, rest = message.partition(": ")
            if sep and " " not in head:
                data_loc = tuple(int(p) if p.isdigit() else p for p in head.split("."))
                message = rest
        if err["type"] == "extra_forbidden":
            message = "unknown field" + (did_you_mean(str(data_loc[-1]), valid_keys(model, data_loc[:-1]))
                                         if model is not None and data_loc else "")
        elif err["type"] == "missing":
            message = "required field missing"
        out.append((data_loc, message))
    return out


def validation_messages(exc: HasErrors, filename: str, lines: dict[tuple, int],
                        model: type[BaseModel] | None = None) -> list[str]:
    """Every pydantic error as `file:line: field: message` (line of the deepest key that exists)."""
    out = []
    for data_loc, message in validation_errors(exc, model):
        known = data_loc
        while known and known not in lines:  # a missing field has no line: point at its parent
            known = known[:-1]
        field = ".".join(str(p) for p in data_loc) or "(top level)"
        out.append(f"{filename}:{lines.get(known, 1)}: {field}: {message}")
    return out


def did_you_mean(key: str, valid: list[str]) -> str:
    """"; did you mean 'x'? (valid: a, b, c)" for an unknown key, from the keys valid where it stands."""
    if not valid:
        return ""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return (f"; did you mean '{close[0]}'?" if close else "") + f" (valid: {', '.join(valid)})"


def valid_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys a document validated as `model` accepts at `loc` (in declaration order)."""
    types: list[Any] = [model]
    for part in loc:
        inner: list[Any] = []
        for t in types:
            for u in _alternatives(t):
                origin = get_origin(u)
                if isinstance(u, type) and issubclass(u, BaseModel):
                    if isinstance(part, str) and part in u.model_fields:
                        inner.append(u.model_fields[part].annotation)
                elif origin in (list, tuple) and isinstance(part, int):
                    inner.extend(get_args(u)[:1])
                elif origin is dict:
                    inner.extend(get_args(u)[1:2])
        types = inner
    keys: list[str] = []
    for t in types:
        for u in _alternatives(t):
            if isinstance(u, type) and issubclass(u, BaseModel):
                keys += [k for k in u.model_fields if k not in keys]
    return keys


def _alternatives(annotation: Any) -> list[Any]:
    """The types an annotation allows: Optional, unions and Annotated unwrapped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _alternatives(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arg in get_args(annotation) for t in _alternatives(arg)]
    return [annotation]


def validation_message(exc: ValidationError, filename: str, lines: dict[tuple, int],
                       model: type[BaseModel] | None = None) -> str:
    found = validation_messages(exc, filename, lines, model)
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return found[0] + more


def looks_like_tag(part: Any) -> bool:
    """pydantic puts union-member and validator names into `loc`; they are not keys of the data."""
    return isinstance(part, str) and (
        "[" in part or part.startswith(("function-", "constrained-")) or part in {"str", "int", "float", "bool", "list", "dict"}
    )


def parse_model(model: type[Model], data: Any, filename: str, lines: dict[tuple, int], context: dict | None = None) -> Model:
    if not isinstance(data, dict):
        raise PlannerError(f"{filename}:1: (top level): expected a mapping of fields")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise PlannerError(validation_message(exc, filename, lines, model)) from None


def load_model(model: type[Model], path: Path, context: dict | None = None) -> Model:
    data, lines = load_text(read_text(path), str(path))
    return parse_model(model, data, str(path), lines, context)


def key_line(path: Path, keys: tuple) -> int:
    """The line of `keys` (or of its deepest part that exists) in the YAML file at `path`: for errors found
    after a file was loaded (names, cross-references), read again only on that error path."""
    _, lines = load_text(read_text(path), str(path))
    while keys and keys not in lines:
        keys = keys[:-1]
    return lines.get(keys, 1)
