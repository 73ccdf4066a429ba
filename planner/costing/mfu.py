"""Reading an MFU profile: measured points, smoothed in log model size, scaled by GPU count,
capped at the matmul ceiling.

The model is separable: ln MFU = h(ln N) + s·ln G. The GPU-count slope s comes only from
measurements of the same model size by the same source at different GPU counts (a within-size
estimate, so size effects cannot leak into it); it is the median over such pairs and is clamped at
0, because adding GPUs at a fixed model size adds communication and never removes any. Every
point is first moved along s to a common reference count, then h is a kernel-smoothed mean over the measured sizes in log size.
"""

from __future__ import annotations

import math
import statistics  # not np.median: it imports numpy.ma, a sixth of a cold plan's own time
from dataclasses import dataclass, field

import numpy as np

from planner.catalog import Accelerator, MfuProfile
from planner.errors import PlannerWarning


@dataclass(frozen=True)
class MfuEstimate:
    value: float
    basis: str  # one line: where the number comes from
    sources: tuple[str, ...] = ()
    warnings: tuple[PlannerWarning, ...] = field(default=())
    kind: str = "given"  # campaign | benchmark | given: which MFU basis produced the value
    # ln(reported / estimated GPU-hours) of published campaigns the estimate was not fitted on: the
    # out-of-sample error every interval and grant quantile is read from (empty for a given MFU)
    errors: tuple[float, ...] = field(default=(), repr=False)
    profile: str | None = None  # the measured MFU profile the value was read from (its sources are cited)

    def hours_factor(self, q: float) -> float | None:
        """GPU-hours at quantile q of the out-of-sample error, as a factor on the estimate."""
        from planner.costing.intervals import error_quantile

        return error_quantile(self.errors, q) if self.errors else None

    def interval_factors(self, level: float) -> tuple[float, float] | None:
        from planner.costing.intervals import error_interval

        return error_interval(self.errors, level) if self.errors else None


def from_override(value: float) -> MfuEstimate:
    return MfuEstimate(value, "given")


@dataclass(frozen=True)
class GpuScaling:
    slope: float  # d ln MFU / d ln GPUs at fixed model size, <= 0
    groups: int  # model sizes measured at two or more GPU counts by one source
    reference_gpus: float  # the count the size table is expressed at (geometric median of the points)
    measured_gpus: tuple[int, int]  # fewest and most GPUs measured


_PREPARED: dict[int, tuple[MfuProfile, GpuScaling, np.ndarray, np.ndarray]] = {}


def _prepared(profile: MfuProfile) -> tuple[GpuScaling, np.ndarray, np.ndarray]:
    """Slope and size table of a profile, computed once: plans iterate MFU against model size.
    Keyed by identity (profiles are frozen); the entry keeps the profile alive so the id stays its own."""
    hit = _PREPARED.get(id(profile))
    if hit is None or hit[0] is not profile:
        if len(_PREPARED) > 256:  # temporary copies (leave-one-out calibration) must not pile up
            _PREPARED.clear()
        scaling = gpu_scaling(profile)
        hit = _PREPARED[id(profile)] = (profile, scaling, *_by_size(profile, scaling))
    return hit[1], hit[2], hit[3]


def gpu_scaling(profile: MfuProfile) -> GpuScaling:
    """The within-size GPU-count slope of a profile (0 when no size was measured at two counts)."""
    groups: dict[tuple[float, str], list[tuple[float, float]]] = {}
    for p in profile.points:
        groups.setdefault((p.params, p.source), []).append((math.log(p.gpus), math.log(p.mfu)))
    slopes = []
    for pts in groups.values():
        g, m = np.array(pts).T
        if np.ptp(g) > 0:
            slopes.append(float(np.polyfit(g, m, 1)[0]))
    slope = min(0.0, statistics.median(slopes)) if slopes else 0.0
    counts = [p.gpus for p in profile.points]
    reference = float(round(math.exp(statistics.median(math.log(c) for c in counts))))
    return GpuScaling(slope, len(slopes), reference, (min(counts), max(counts)))


def _by_size(profile: MfuProfile, scaling: GpuScaling) -> tuple[np.ndarray, np.ndarray]:
    """One ln MFU per model size at the reference GPU count: the median over the points at that size."""
    sizes: dict[float, list[float]] = {}
    for p in profile.points:
        moved = math.log(p.mfu) + scaling.slope * (math.log(scaling.reference_gpus) - math.log(p.gpus))
        sizes.setdefault(p.params, []).append(moved)
    xs = sorted(sizes)
    return np.log(np.array(xs)), np.array([statistics.median(sizes[x]) for x in xs])


# Gaussian kernel width in ln(model size): a factor 1.65, below the 2-3x between neighbouring sizes of
# the benchmark tables. One benchmark that sits low among its neighbours (Megatron's 22B at DP 1 between
# MPT's 13B and 30B) then bends the curve instead of opening a 20% dip that would make a 18B run cost
# more nodes than a 36B one; leave-one-out over the points is unchanged (median 3% A100, 6% H100).
SIZE_BANDWIDTH = 0.5


def smooth_in_size(x, log_n: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Kernel-weighted mean of the per-size ln MFU at ln sizes `x`; outside the measured sizes it tends
    to the end values (the nearest measured size holds, as the warnings say)."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    num, den = np.zeros_like(x), np.zeros_like(x)
    for ln, t in zip(log_n, table, strict=True):  # elementwise, point by point: one size gets the same bits alone or in a sweep
        w = np.exp(-0.5 * ((x - ln) / SIZE_BANDWIDTH) ** 2)
        num, den = num + w * t, den + w
    nearest = np.argmin(np.abs(x[:, None] - log_n[None, :]), axis=1)
    far = (x < log_n[0] - 8 * SIZE_BANDWIDTH) | (x > log_n[-1] + 8 * SIZE_BANDWIDTH) | (den == 0)
    return np.where(far, table[nearest], num / np.where(den == 0, 1.0, den))


def _basis(profile: MfuProfile, scaling: GpuScaling, gpus_given: bool) -> str:
    text = (f"profile '{profile.name}' ({len(profile.points)} measured points), smoothed in log model size "
            f"(kernel width {SIZE_BANDWIDTH:g} in ln N)")
    if scaling.groups == 0:
        return text + "; no size measured at two GPU counts, so MFU does not vary with GPU count"
    scaled = f"scaled by GPUs^{scaling.slope:+.4f} (median within-size slope over {scaling.groups} sizes, clamped at 0)"
    if not gpus_given:
        scaled += f" at {scaling.reference_gpus:.0f} GPUs, the profile's typical count (no GPU count given)"
    return f"{text}, {scaled}"


def estimate_many(profile: MfuProfile, accelerator: Accelerator, params, gpus=None) -> list[MfuEstimate]:
    """`estimate` for many model sizes at once (sweeps cost thousands of runs); `gpus` is one count,
    one count per size, or None (then the profile's typical measured count)."""
    scaling, log_n, table = _prepared(profile)
    sizes = np.atleast_1d(np.asarray(params, dtype=float))
    counts = np.broadcast_to(np.asarray(scaling.reference_gpus if gpus is None else gpus, dtype=float), sizes.shape)
    values = np.exp(smooth_in_size(np.log(sizes), log_n, table) + scaling.slope * np.log(counts / scaling.reference_gpus))
    lo, hi = math.exp(log_n[0]), math.exp(log_n[-1])
    g_lo, g_hi = scaling.measured_gpus
    ceiling = accelerator.matmul_ceiling
    basis = _basis(profile, scaling, gpus is not None)
    capped = basis + (f", capped at the measured matmul ceiling {ceiling.value:.3f}" if ceiling else "")
    cited = tuple(dict.fromkeys(profile.sources[p.source].reference for p in profile.points))
    out = []
    assumed: tuple[PlannerWarning, ...] = ()
    if accelerator.name in profile.assumed_for:
        measured_on = ", ".join(a for a in profile.accelerators if a not in profile.assumed_for)
        assumed = (PlannerWarning("mfu.evidence", f"MFU profile '{profile.name}' was measured on {measured_on}, not on "
                                  f"{accelerator.name}: assumed to carry over (no measurement published)"),)
    for n, g, value in zip(sizes, counts, values, strict=True):
        warnings = list(assumed)
        if n < lo / 3 or n > hi * 3:
            warnings.append(PlannerWarning("mfu.size", f"MFU for {n:.3g} parameters is held at the nearest measured size "
                                           f"({lo:.3g}-{hi:.3g}) of profile '{profile.name}'"))
        if gpus is not None and (g > g_hi * 3 or g < g_lo / 3):
            how = (f"extrapolated with slope {scaling.slope:+.4f}" if scaling.groups
                   else "assumed independent of GPU count (no size measured at two counts)")
            warnings.append(PlannerWarning("mfu.gpus", f"MFU at {g:.0f} GPUs is {how}; profile '{profile.name}' measured "
                                           f"{g_lo}-{g_hi} GPUs"))
        if ceiling is not None and value > ceiling.value:
            out.append(MfuEstimate(ceiling.value, capped, cited, tuple(warnings), profile=profile.name))
        else:
            out.append(MfuEstimate(float(value), basis, cited, tuple(warnings), profile=profile.name))
    return out


def estimate(profile: MfuProfile, accelerator: Accelerator, params: float, gpus: float | None = None) -> MfuEstimate:
    return estimate_many(profile, accelerator, [params], gpus)[0]
