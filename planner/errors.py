"""Errors and warnings about the user's input, in the domain's words; the front ends spell them.

A `PlannerError` is the one exception type for bad input. It carries the *field* it is about: a
domain name (`nodes`, `mfu`, `seq_len`, `tokens`, `dtype`, ...) or, for nested input, a path such as
("experiments", 2, "nodes"). Its message says what is wrong in domain words and never names a
command-line flag or a YAML key. A message that needs to name another input writes it as `{name}`
and lists the name in `refs` ("needs {nodes} or {gpus}"); every front end spells those its own way.

One format everywhere: `<where>: <message>`, where `<where>` is how the front end that read the
input names the field, and an error without a field is its message alone:

    CLI (planner.cli):  planner: error: <option>: 99999 exceeds the 936 nodes of juwels-booster
    YAML (sweep spec, grant proposal, via `located`):
                        proposal.yaml:14: experiments.0.nodes: 99999 exceeds the 936 nodes of juwels-booster

The CLI maps a field to the option of the command that ran (`seq_len` to the flag of its `seq_len`
option, from the click parameters: planner.cli.spelling); a YAML front end (a `FileLocator`) maps it
to a key path of its file and that key's line. Nothing outside planner.cli knows a flag.
A located error keeps the file position in `where` and its key path in `field`; it is final, and an
outer `located` block passes it on unchanged. `str()` of an error spells fields by their domain names.

Warnings are `PlannerWarning(topic, message)`: `str()` is the message, and code that leaves some out
(a scaling table shows no charge or energy) filters them by topic, never by their text.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, get_args

FieldPath = tuple[str | int, ...]


def dotted(path: FieldPath) -> str:
    return ".".join(str(p) for p in path)


class PlannerError(ValueError):
    """Bad input: a message in domain words about `field` (a name or a path), which each front end
    spells its own way (the option on the command line, `file:line: key` in YAML, the keyword in Python)."""

    def __init__(self, message: str, field: str | FieldPath | None = None, *, refs: Iterable[str] = (),
                 where: str | None = None):
        self.message = message  # domain words; `{name}` for each name in refs
        self.field: FieldPath = (field,) if isinstance(field, str) else tuple(field or ())
        self.refs = tuple(refs)
        self.where = where  # `file:line` once a YAML front end has located it (then `field` is its key path)
        super().__init__(self.text())

    def spelled(self, spell: Callable[[str], str] = str) -> str:
        """The message, with every input it names spelled by `spell` (a flag, a key; the domain name by default)."""
        text = self.message
        for name in self.refs:
            text = text.replace("{" + name + "}", spell(name))
        return text

    def text(self, spell: Callable[[str], str] = str) -> str:
        """One line, `<where>: <message>`: the field spelled by `spell` (its first part; the rest dotted)."""
        if self.where is not None:
            return f"{self.where}: {dotted(self.field) or '(top level)'}: {self.spelled()}"
        if not self.field:
            return self.spelled(spell)
        head = spell(str(self.field[0])) + "".join(f".{p}" for p in self.field[1:])
        return f"{head}: {self.spelled(spell)}"

    def __str__(self) -> str:
        return self.text()


def suggestions(name: str, known: Iterable[str]) -> str:
    """`; did you mean a, b? (known: ...)` for a name that is not among `known` (empty when nothing is close)."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if not close:  # prefixes catch 'h100' -> 'h100-sxm', which difflib's ratio misses
        close = [k for k in known if k.startswith(name) or name in k][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return hint + (f" (known: {', '.join(known)})" if len(known) <= 20 else "")


def unknown_name(kind: str, name: str, known: Iterable[str], field: str | FieldPath | None = None,
                 otherwise: str = "") -> PlannerError:
    """`unknown model 'x'; did you mean ...?`, and `otherwise` (what else the input may give) after it."""
    other = f"; or {otherwise}" if otherwise else ""
    return PlannerError(f"unknown {kind} '{name}'{suggestions(name, known)}{other}", field)


class FileLocator:
    """A YAML file as a front end: the line of every key path (`lines`, from yamlio) and, by `key`,
    the key path a domain field has in this file. Subclasses (the sweep spec's Source, the grant
    proposal's Where) know their schema."""

    filename: str
    lines: dict[tuple, int]

    def line(self, path: tuple) -> int:
        """The line of `path`, or of its nearest parent that is in the file (a missing key has no line)."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def key(self, name: str, near: tuple) -> tuple | None:
        """The key path of domain field `name` for an error raised at `near` (None: the file has no such key)."""
        return None

    def shown(self, path: tuple) -> tuple:
        """The key path an error at `path` names: itself, unless this document sits inside another file."""
        return path

    def error(self, path: tuple, message: str | PlannerError) -> PlannerError:
        """`file:line: key.path: message` at `path`; a PlannerError is placed at its own field's key when
        the file has one (its other fields spelled as keys too), else at `path`."""
        if isinstance(message, str):
            return PlannerError(message, self.shown(path), where=f"{self.filename}:{self.line(path)}")
        if message.where is not None:
            return message
        key = self.key(str(message.field[0]), path) if message.field else None
        at = key + message.field[1:] if key is not None else path

        def spell(name: str) -> str:
            found = self.key(name, path)
            return str(found[-1]) if found else name

        return PlannerError(message.spelled(spell), self.shown(at), where=f"{self.filename}:{self.line(at)}")


@contextmanager
def located(source: FileLocator, *path) -> Iterator[None]:
    """Re-raise a PlannerError from the block as `file:line: key: message`: at its field's key in
    `source`, or at `path` when the field has none there. Located errors pass unchanged."""
    try:
        yield
    except PlannerError as exc:
        raise source.error(path, exc) from None


# What a warning is about; code that shows only some warnings picks them by these.
Topic = Literal[
    "budget",  # a budget the plan does not keep to
    "flops",  # the FLOPs convention
    "law.range",  # compute outside what the law was fitted on
    "law.counting",  # how the law counts parameters
    "law.moe",  # a dense law applied to an MoE
    "mfu.size",  # MFU read beyond the model sizes it was measured or calibrated on
    "mfu.gpus",  # MFU read beyond the GPU counts measured
    "mfu.evidence",  # few or foreign measurements behind the MFU
    "mfu.stack",  # a training stack the estimator does not know
    "mfu.ceiling",  # a given MFU above what the accelerator's matmuls reach
    "nodes.rounded",  # a GPU count that leaves part of its last node idle but billed
    "batch",  # more GPUs than a batch near the critical batch size can keep busy
    "goodput",
    "memory.short",  # the GPUs asked for cannot hold the model
    "memory.nowhere",  # no count searched holds the model
    "memory.recompute",  # only full activation recompute fits
    "memory.unchecked",  # memory could not be checked
    "hardware",  # unverified catalog numbers of a cluster's nodes
    "partition",  # a job beyond its partition's node or wall-time limit
    "energy",  # unverified node power
    "charge",  # unverified accounting
    "scaling",  # strong-scaling caveats
    "sweep",  # the design of a sweep
    "request",  # how far a grant request can be trusted
    "program",  # a proposal against its program's rules
    "schedule",  # a grant's experiments that do not fit their months
    "storage",
    "fit",  # a fitted law or a comparison of two
    "results",  # results a sweep's runs wrote
    "regulation",  # a legal threshold the training compute crosses (EU AI Act)
    "hparams.range",  # learning rate or batch from a hyperparameter law beyond the compute it was fitted on
    "hparams.warmup",  # a warmup that is a large part of the run
]
TOPICS: frozenset[str] = frozenset(get_args(Topic))


@dataclass(frozen=True)
class PlannerWarning:
    topic: Topic
    message: str

    def __post_init__(self) -> None:
        if self.topic not in TOPICS:
            raise ValueError(f"unknown warning topic '{self.topic}'")

    def __str__(self) -> str:
        return self.message
