"""YAML loading that remembers where every value came from, so errors read `file:line: field: message`."""

from __future__ import annotations

import difflib
import math
import re
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from planner.errors import PlannerError

# the C parser is ~10x faster (a plan must start quickly); the pure-Python one when libyaml is missing
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):
    """Scalars as the YAML 1.2 core schema reads them, which is how people read them: PyYAML follows
    YAML 1.1, where `nodes: 010` is 8 (octal), `nodes: 1:20` is 80 (base 60), `1_000` is 1000 and
    `no` is false. Here `010` is 10, `1:20`, `1_000` and `no` are text (which a number field then
    refuses), `1e3` is a number (1.1 wants a dot). Dates stay dates: proposals and catalogs use them."""

    yaml_implicit_resolvers: dict = {}
    yaml_constructors = dict(_Base.yaml_constructors)


def _core_int(loader: yaml.BaseLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


def _core_float(loader: yaml.BaseLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    if text.lstrip("+-") == ".inf":
        return -math.inf if text.startswith("-") else math.inf
    return math.nan if text == ".nan" else float(text)


def _core_bool(loader: yaml.BaseLoader, node: yaml.ScalarNode) -> bool:
    text = str(loader.construct_scalar(node)).lower()
    if text not in ("true", "false"):
        raise ValueError(text)
    return text == "true"


# YAML 1.2.2, 10.3.2 (core schema), in order: an integer is tried before the float pattern that also matches it
_TIMESTAMP = next(r for t, r in yaml.SafeLoader.yaml_implicit_resolvers["0"] if t == "tag:yaml.org,2002:timestamp")
_CORE = (
    ("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    ("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")),
    ("tag:yaml.org,2002:float", re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                                           r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+.0123456789")),
    ("tag:yaml.org,2002:timestamp", _TIMESTAMP, list("0123456789")),
)
for _tag, _pattern, _first in _CORE:
    _Loader.add_implicit_resolver(_tag, _pattern, _first)
_Loader.add_constructor("tag:yaml.org,2002:int", _core_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _core_float)
_Loader.add_constructor("tag:yaml.org,2002:bool", _core_bool)

Model = TypeVar("Model", bound=BaseModel)

# Catalog and spec files are small; anything bigger is a mistake or an attack (billion laughs).
MAX_BYTES = 2_000_000
MAX_DEPTH = 40


class _Bad(Exception):
    """A problem at a line of the text; load_text names the file."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


class _Open:
    """A mapping or sequence being built: its path, and for a mapping the key whose value comes next."""

    def __init__(self, data: dict | list, path: tuple):
        self.data, self.path = data, path
        self.key: str | None = None
        self.key_line = 0

    def child_path(self) -> tuple:
        return self.path + ((self.key,) if isinstance(self.data, dict) else (len(self.data),))

    def add(self, value: Any) -> None:
        if isinstance(self.data, dict):
            self.data[self.key] = value
            self.key = None
        else:
            self.data.append(value)


def _build(loader: yaml.BaseLoader) -> tuple[Any, dict[tuple, int]]:
    """The one document of the stream as Python data, and the line of every key path (a mapping value's
    line is its key's: an error about `experiments:` points at that key, not at the first item below it).

    Built from the parser's events with an explicit stack, not by PyYAML's composer, which recurses (in C
    for libyaml): a file nested 900,000 levels deep would crash the interpreter before any check ran."""
    lines: dict[tuple, int] = {}
    stack: list[_Open] = []
    root: Any = None
    documents = 0
    while not loader.check_event(yaml.StreamEndEvent):
        event = loader.get_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _Bad(line, "expected a single document in the stream, found another")
            continue
        if isinstance(event, (yaml.StreamStartEvent, yaml.DocumentEndEvent)):
            continue
        if isinstance(event, yaml.AliasEvent):  # a tiny file could expand exponentially; no input needs them
            raise _Bad(line, "YAML anchors and aliases are not allowed")
        top = stack[-1] if stack else None
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            done = stack.pop()
            if stack:
                stack[-1].add(done.data)
            else:
                root = done.data
            continue
        if top is not None and isinstance(top.data, dict) and top.key is None:  # a key
            if not isinstance(event, yaml.ScalarEvent):
                raise _Bad(line, "mapping keys must be plain values")
            key = _construct(_scalar_node(loader, event), top.path, loader)
            if not isinstance(key, str):  # every schema's keys are names; pydantic would not say which line
                what = "null" if key is None else type(key).__name__
                raise _Bad(line, f"{_dotted(top.path)}: the key '{_short(event.value)}' is {what}, not a name "
                                 "(quote it if it is one)")
            if key in top.data:
                raise _Bad(line, f"{key}: duplicate key")
            top.key, top.key_line = key, line
            continue
        path = top.child_path() if top is not None else ()
        lines[path] = top.key_line if top is not None and isinstance(top.data, dict) else line
        if isinstance(event, yaml.ScalarEvent):
            value = _construct(_scalar_node(loader, event), path, loader)
            if top is None:
                root = value
            else:
                top.add(value)
        else:  # the start of a mapping or a sequence
            if len(stack) >= MAX_DEPTH:
                raise _Bad(line, f"nesting deeper than {MAX_DEPTH} levels")
            stack.append(_Open({} if isinstance(event, yaml.MappingStartEvent) else [], path))
    return root, lines


def _scalar_node(loader: yaml.BaseLoader, event: yaml.ScalarEvent) -> yaml.ScalarNode:
    tag = event.tag
    if tag is None or tag == "!":  # untagged: the schema's resolvers say what it is (here YAML 1.2 core)
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    return yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _short(text: str) -> str:
    """User text quoted in a message: long runs (a 300-digit number) are cut."""
    return text if len(text) <= 24 else text[:12] + "…"


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
    raise _Bad(node.start_mark.line + 1, f"{_dotted(path)}: '{_short(str(node.value))}' {problem}")


def load_text(text: str, filename: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML text into plain Python data plus a map from key path to line number."""
    if len(text) > MAX_BYTES:
        raise PlannerError(f"{filename}: file larger than {MAX_BYTES} bytes")
    loader = _Loader(text)
    try:
        try:
            return _build(loader)
        except _Bad as exc:
            raise PlannerError(f"{filename}:{exc.line}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or ""
        if "nesting depth" in problem:  # PyYAML 6.0.4+ stops deep nesting itself, before MAX_DEPTH: say it the same way
            raise PlannerError(f"{filename}:{line}: nesting deeper than {MAX_DEPTH} levels") from None
        raise PlannerError(f"{filename}:{line}: invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML forbids: the reader knows its offset, not its line
        line = _line_at(text, exc.position)
        raise PlannerError(f"{filename}:{line}: invalid YAML: character #x{exc.character:04x}: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise PlannerError(f"{filename}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _line_at(text: str, position: int) -> int:
    """The line of a reader offset: libyaml counts UTF-8 bytes, the pure-Python reader characters."""
    head = text.encode("utf-8")[:position].decode("utf-8", "ignore") if _Base is not yaml.SafeLoader else text[:position]
    return len((head + "x").splitlines())  # YAML's line breaks (\n, \r, \x85, \u2028, \u2029) are str's


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
