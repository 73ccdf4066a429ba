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


def estimate_many(profile: MfuProfile, accelerator: Accelerator, params) -> list[MfuEstimate]:
    """`estimate` for many model sizes at once (sweeps cost thousands of runs)."""
    log_n, table = _by_size(profile)
    sizes = np.atleast_1d(np.asarray(params, dtype=float))
    values = np.interp(np.log(sizes), log_n, table)  # np.interp holds the end values outside the range
    lo, hi = math.exp(log_n[0]), math.exp(log_n[-1])
    ceiling = accelerator.matmul_ceiling
    basis = f"profile '{profile.name}' ({len(profile.points)} measured points), interpolated in log model size"
    capped = basis + (f", capped at the measured matmul ceiling {ceiling.value:.3f}" if ceiling else "")
    cited = tuple(dict.fromkeys(profile.sources[p.source].citation for p in profile.points))
    out = []
    for n, value in zip(sizes, values):
        warnings = ()
        if n < lo / 3 or n > hi * 3:
            warnings = (f"MFU for {n:.3g} parameters is held at the nearest measured size "
                        f"({lo:.3g}-{hi:.3g}) of profile '{profile.name}'",)
        if ceiling is not None and value > ceiling.value:
            out.append(MfuEstimate(ceiling.value, capped, cited, warnings))
        else:
            out.append(MfuEstimate(float(value), basis, cited, warnings))
    return out


def estimate(profile: MfuProfile, accelerator: Accelerator, params: float) -> MfuEstimate:
    return estimate_many(profile, accelerator, [params])[0]
