"""Prediction intervals from out-of-sample errors: an estimate's range is the spread of what runs
that were left out of the fit cost against their estimate (ln(reported / estimated)).

Used wherever a figure carries a range: plans, sweeps, grant rows (at the proposal's confidence)."""

from __future__ import annotations

import functools
import math

import numpy as np

INTERVAL_LEVEL = 0.8  # every range printed is the central 80% one


def error_quantile(errors, q: float) -> float:
    """The factor on an estimate at quantile q of out-of-sample errors ln(reported / estimated)."""
    key = errors if isinstance(errors, tuple) else tuple(float(e) for e in errors)
    return _quantile(key, float(q))


@functools.lru_cache(maxsize=256)
def _quantile(errors: tuple[float, ...], q: float) -> float:
    # every run of a sweep asks the same few quantiles of the same errors: compute each once
    return float(np.exp(linear_quantile(errors, q)))


def linear_quantile(values, q: float) -> float:
    """numpy's default (linear) quantile, to the bit, in plain Python: np.quantile imports numpy.ma,
    a tenth of what a cold plan spends on its own code."""
    xs = sorted(float(v) for v in values)
    position = (len(xs) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(xs) - 1)
    t = position - below
    a, b = xs[below], xs[above]
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def error_interval(errors, level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    """The central `level` interval of out-of-sample errors, as factors on an estimate."""
    tail = (1.0 - level) / 2.0
    return error_quantile(errors, tail), error_quantile(errors, 1.0 - tail)
