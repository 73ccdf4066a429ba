"""Numbers as people write them in commands and specs: 1e21, 5.76e23, 400M, 1.5B, 2T.

One parser for the command line and for YAML specs (YAML reads `7e9` as a number, `7B` as text).
A suffix scales the number before it; an exponent does too, so both at once (`2e12T`, 2e24) is a
typo and refused. Model sizes and token counts far below anything trained are refused with the
suffix the user most likely left out (7 parameters is 7B or 7M, not a model).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

SUFFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}
NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+)?[ ]*([kKMBGTP]?)\s*$")  # `7 B`, not `7\nB`
EXAMPLES = "examples: 1e21, 5.76e23, 400M, 1.5T"

# The smallest sizes that are a training run rather than a typo. A language model's embedding alone is
# vocabulary × width: a 32k vocabulary at width 4 is already 1.3e5 parameters; Pythia-70M, the smallest
# of the catalog's models, has 7e7. A million tokens is 250 sequences of 4,096: no run trains on fewer.
MIN_PARAMS = 1e5
MIN_TOKENS = 1e6
# kind -> (the least a run has, what is wrong below it, the suffixes a typo most likely lacks in order of
# likelihood, the range a suggestion must land in: from the smallest published models or runs to the largest)
SIZES = {
    "params": (MIN_PARAMS, "parameters is smaller than any model trained (at least 1e5)", ("B", "M", "T"), (1e6, 2e12)),
    "tokens": (MIN_TOKENS, "tokens is fewer than any training run (at least 1e6)", ("T", "B", "M"), (1e8, 1e14)),
}


def parse_quantity(text: str) -> float:
    """The value of `text`; ValueError names what is wrong."""
    match = NUMBER.match(text)
    if not match:
        raise ValueError(f"'{text.strip()}' is not a number ({EXAMPLES})")
    mantissa, exponent, suffix = match.groups()
    if exponent and suffix:
        raise ValueError(f"'{text.strip()}' has both an exponent and a suffix, which multiply "
                         f"({mantissa}{exponent} × {suffix}); write one, e.g. {mantissa}{exponent} or {mantissa}{suffix}")
    return float(mantissa + (exponent or "")) * SUFFIXES[suffix]


def size_problem(value: float, kind: str) -> str | None:
    """Why `value` cannot be a model's parameters (`kind` "params") or a run's tokens ("tokens"); None if it can."""
    least, problem, suffixes, (low, high) = SIZES[kind]
    if not value < least:
        return None
    guesses = [f"{value:g}{s}" for s in suffixes if low <= value * SUFFIXES[s] <= high]
    return f"{value:g} {problem}" + (f"; did you mean {' or '.join(guesses)}?" if guesses else "")


def spec_number(value: Any, positive: bool = True) -> Any:
    """A pydantic before-validator: text is parsed, and numbers must be finite and > 0 (or ≥ 0)."""
    if isinstance(value, bool):  # YAML's true/false: pydantic would read them as 1 and 0
        raise ValueError(f"must be a number, not {str(value).lower()}")
    if isinstance(value, str):
        value = parse_quantity(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise ValueError("must be a positive finite number" if positive else "must be a finite number ≥ 0")
    return value


def size_number(kind: str):
    """A before-validator for a model size or a token count: a positive number, not below SIZES[kind]."""

    def check(value: Any) -> Any:
        value = spec_number(value)
        if isinstance(value, (int, float)) and (problem := size_problem(float(value), kind)):
            raise ValueError(problem)
        return value

    return check


Positive = Annotated[float, BeforeValidator(spec_number)]
NonNegative = Annotated[float, BeforeValidator(lambda v: spec_number(v, positive=False))]
Params = Annotated[float, BeforeValidator(size_number("params"))]  # a model's parameters
Tokens = Annotated[float, BeforeValidator(size_number("tokens"))]  # the tokens a run trains on
