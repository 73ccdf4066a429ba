"""Numbers as people write them in commands and specs: 1e21, 5.76e23, 400M, 1.5B, 2T.

One parser for the command line and for YAML specs (PyYAML reads `7e9`, without a dot, as text).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

SUFFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}
NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([kKMBGTP]?)\s*$")
EXAMPLES = "examples: 1e21, 5.76e23, 400M, 1.5T"


def parse_quantity(text: str) -> float:
    """The value of `text`; ValueError names what is wrong."""
    match = NUMBER.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a number ({EXAMPLES})")
    return float(match.group(1)) * SUFFIXES[match.group(2)]


def spec_number(value: Any, positive: bool = True) -> Any:
    """A pydantic before-validator: text is parsed, and numbers must be finite and > 0 (or ≥ 0)."""
    if isinstance(value, bool):  # YAML's yes/no/true/false: pydantic would read them as 1 and 0
        raise ValueError(f"must be a number, not {str(value).lower()}")
    if isinstance(value, str):
        value = parse_quantity(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise ValueError("must be a positive finite number" if positive else "must be a finite number ≥ 0")
    return value


Positive = Annotated[float, BeforeValidator(spec_number)]
NonNegative = Annotated[float, BeforeValidator(lambda v: spec_number(v, positive=False))]
