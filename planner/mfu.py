"""Reading an MFU profile: measured points, interpolated in log model size, capped at the matmul ceiling."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from planner.catalog import Accelerator, MfuProfile


@dataclass(frozen=True)
class MfuEstimate:
    value: float
    basis: str  # one line: where the number comes from
    sources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())


def from_override(value: float) -> MfuEstimate:
    return MfuEstimate(value, "given with --mfu")


def _by_size(profile: MfuProfile) -> tuple[np.ndarray, np.ndarray]:
    """One MFU per model size: the median over the GPU counts measured at that size."""
    sizes: dict[float, list[float]] = {}
    for p in profile.points:
        sizes.setdefault(p.params, []).append(p.mfu)
    xs = sorted(sizes)
    return np.log(np.array(xs)), np.array([float(np.median(sizes[x])) for x in xs])


def estimate(profile: MfuProfile, accelerator: Accelerator, params: float) -> MfuEstimate:
    log_n, mfu = _by_size(profile)
    x = math.log(params)
    value = float(np.interp(x, log_n, mfu))  # np.interp holds the end values outside the range
    warnings = []
    lo, hi = math.exp(log_n[0]), math.exp(log_n[-1])
    if params < lo / 3 or params > hi * 3:
        warnings.append(
            f"MFU for {params:.3g} parameters is held at the nearest measured size "
            f"({lo:.3g}-{hi:.3g}) of profile '{profile.name}'"
        )
    ceiling = accelerator.matmul_ceiling
    basis = f"profile '{profile.name}' ({len(profile.points)} measured points), interpolated in log model size"
    if ceiling is not None and value > ceiling.value:
        value = ceiling.value
        basis += f", capped at the measured matmul ceiling {ceiling.value:.3f}"
    cited = tuple(dict.fromkeys(profile.sources[p.source].citation for p in profile.points))
    return MfuEstimate(value, basis, cited, tuple(warnings))
