"""Realised throughput: the MFU whole training campaigns achieve, estimated from published runs.

Tuned throughput benchmarks (the MFU profiles in `catalogs/mfu`) say what a stack reaches in a
short, steady stretch. A campaign also pays for warm-up, evaluation, checkpoints, restarts,
failures, idle allocations and untuned code. The estimator here is fitted on what published runs
*realised*, model FLOPs / (reported GPU-hours × dense peak), as a function of what a user knows
before the run:

    ln MFU = workload + architecture + b·ln(N / 1e9) [+ c·ln(G / 256)] [+ d·ln(s / 4096)] [+ stack]

with N the parameters that work per token, G the GPU count, s the sequence length. Candidate
forms (which optional terms) are compared by leave-one-out error over the campaign set and the
best one is used; it is linear in logs, so MFU changes smoothly and monotonically with size.
The benchmark profile of the accelerator caps it (a campaign does not beat a tuned benchmark).
Intervals come from the leave-one-out residuals: the spread of what runs that were not fitted
cost against their estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from planner import cost
from planner.campaigns import CampaignRun, check_realised, realised_mfu
from planner.catalog import Accelerator, Catalog
from planner.errors import PlannerError

INTERVAL_LEVEL = 0.8
REFERENCE = {"size": 1e9, "gpus": 256.0, "seq": 4096.0}
MIN_STACK_RUNS = 3  # a stack term needs this many runs, or one run's quirks become a coefficient
SIMPLER_WINS_BY = 0.005  # a form with more terms must lower the LOO median |ln error| by this much


@dataclass(frozen=True)
class CampaignPoint:
    """One published run, reduced to what the estimator reads."""

    name: str
    title: str
    workload: str
    accelerator: str
    architecture: str
    stack: str
    params: float  # working parameters (MoE: active)
    gpus: float | None
    seq_len: float | None
    flops: float
    gpu_hours: float
    peak: float
    realised: float
    source: str
    status: str
    excluded: str | None


def _architecture(acc: Accelerator) -> str:
    return acc.architecture or acc.name


def campaign_points(catalog: Catalog) -> list[CampaignPoint]:
    """Every run of every campaign set in the catalog (user sets included), with its realised MFU."""
    points = []
    for entry in catalog.all("campaigns"):
        for run in entry.runs:
            points.append(_point(catalog, entry, run))
    return points


def _point(catalog: Catalog, entry, run: CampaignRun) -> CampaignPoint:
    acc = catalog.accelerator(run.accelerator)
    peak = acc.peak_flops("bf16")
    if run.workload == "clip":
        gmacs = run.gmacs_per_sample.value if run.gmacs_per_sample else catalog.model(run.clip_model).gmacs_per_sample.value
        flops = float(cost.training_flops(gmacs * 1e9, run.samples.value, "clip"))
        seq = None
    else:
        n = run.working_params
        if run.layers is not None:
            layers, width = run.layers.value, run.d_model.value
        else:
            from planner.models import assumed_layers_width

            layers, width = assumed_layers_width(run.params.value)
        seq = run.seq_len.value
        flops = float(cost.training_flops(n, run.tokens.value, "6ND+attention",
                                          cost.attention_flops_per_token(layers, width, seq)))
    value = realised_mfu(flops, run.gpu_hours.value, peak)
    problem = check_realised(run.name, value)
    if problem:
        raise PlannerError(f"campaign set '{entry.name}': {problem}")
    return CampaignPoint(run.name, run.title or run.name, run.workload, acc.name, _architecture(acc), run.stack,
                         run.working_params, run.gpus.value if run.gpus else None, seq, flops, run.gpu_hours.value,
                         peak, value, entry.cite(run.gpu_hours), entry.status_of(run.gpu_hours), run.excluded)


# --- the candidate forms ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Form:
    name: str
    terms: tuple[str, ...]  # optional terms beyond workload + architecture: size, gpus, seq, stack


FORMS = (
    Form("workload + architecture", ()),
    Form("+ size", ("size",)),
    Form("+ size + GPUs", ("size", "gpus")),
    Form("+ size + sequence", ("size", "seq")),
    Form("+ size + GPUs + sequence", ("size", "gpus", "seq")),
    Form("+ size + stack", ("size", "stack")),
    Form("+ size + GPUs + stack", ("size", "gpus", "stack")),
)


@dataclass(frozen=True)
class Query:
    """What is known of a run before it starts (arrays broadcast: a sweep asks many at once)."""

    workload: str
    architecture: str
    params: np.ndarray
    gpus: np.ndarray
    seq_len: np.ndarray
    stack: str | None = None


@dataclass(frozen=True)
class _Coding:
    """How categories and terms become columns; fixed by the fitting set."""

    workloads: tuple[str, ...]
    architectures: tuple[str, ...]  # the first is the base (no column)
    stacks: tuple[str, ...]
    stack_means: tuple[float, ...]  # stack columns are centred: an unknown stack is the average campaign
    terms: tuple[str, ...]


def _columns(coding: _Coding, workload, architecture, params, gpus, seq, stack) -> np.ndarray:
    params, gpus, seq = np.broadcast_arrays(np.asarray(params, float), np.asarray(gpus, float), np.asarray(seq, float))
    cols = [np.full(params.shape, float(workload == w)) for w in coding.workloads]
    cols += [np.full(params.shape, float(architecture == a)) for a in coding.architectures[1:]]
    if "size" in coding.terms:
        cols.append(np.log(params / REFERENCE["size"]))
    if "gpus" in coding.terms:
        cols.append(np.log(gpus / REFERENCE["gpus"]))
    if "seq" in coding.terms:  # CLIP has no sequence: its term is zero
        cols.append(np.where(workload == "clip", 0.0, np.log(seq / REFERENCE["seq"])))
    if "stack" in coding.terms:
        cols += [np.full(params.shape, float(stack == s) - m) for s, m in zip(coding.stacks, coding.stack_means)]
    return np.stack(cols, axis=-1)


@dataclass(frozen=True)
class _Fit:
    form: Form
    coding: _Coding
    coef: np.ndarray
    gpu_line: tuple[float, float]  # ln G = a + b·ln N: the typical GPU count of a size, for queries without one


def _fit(points: list[CampaignPoint], form: Form) -> _Fit:
    workloads = tuple(sorted({p.workload for p in points}))
    counts: dict[str, int] = {}
    for p in points:
        counts[p.architecture] = counts.get(p.architecture, 0) + 1
    archs = tuple(sorted(counts, key=lambda a: (-counts[a], a)))  # the best-measured architecture is the base
    stacks: tuple[str, ...] = ()
    means: tuple[float, ...] = ()
    if "stack" in form.terms:
        by_stack: dict[str, int] = {}
        for p in points:
            by_stack[p.stack] = by_stack.get(p.stack, 0) + 1
        stacks = tuple(sorted(s for s, k in by_stack.items() if k >= MIN_STACK_RUNS))
        means = tuple(by_stack[s] / len(points) for s in stacks)
    coding = _Coding(workloads, archs, stacks, means, form.terms)
    gpu_line = _gpu_line(points)
    x = np.concatenate([_columns(coding, p.workload, p.architecture, p.params, _gpus_of(p, gpu_line), p.seq_len or 1.0,
                                 p.stack)[None, :] for p in points])
    y = np.log([p.realised for p in points])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    if "gpus" in form.terms:
        # More GPUs on the same model add communication and never remove any: the slope is at most 0
        # (least squares under that bound: a positive slope refits with the term held at 0). Across
        # campaigns, bigger runs use more GPUs and better-tuned stacks, which would otherwise show
        # as MFU rising with GPU count and predict super-linear strong scaling.
        k = _names(coding).index("ln(GPUs/256)")
        if coef[k] > 0:
            keep = np.arange(x.shape[1]) != k
            coef = np.zeros(x.shape[1])
            coef[keep] = np.linalg.lstsq(x[:, keep], y, rcond=None)[0]
    return _Fit(form, coding, coef, gpu_line)


def _gpu_line(points: list[CampaignPoint]) -> tuple[float, float]:
    known = [(math.log(p.params), math.log(p.gpus)) for p in points if p.gpus]
    if len(known) < 2:
        return (math.log(REFERENCE["gpus"]), 0.0)
    x, y = np.array(known).T
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def typical_gpus(params, line: tuple[float, float]):
    return np.exp(line[0] + line[1] * np.log(np.asarray(params, dtype=float)))


def _gpus_of(p: CampaignPoint, line: tuple[float, float]) -> float:
    return p.gpus if p.gpus else float(typical_gpus(p.params, line))


def _predict_log(fit: _Fit, workload, architecture, params, gpus, seq, stack) -> np.ndarray:
    if workload not in fit.coding.workloads or architecture not in fit.coding.architectures:
        return np.full(np.shape(params), np.nan)
    return _columns(fit.coding, workload, architecture, params, gpus, seq, stack) @ fit.coef


# --- selection and the estimator ------------------------------------------------------------------

@dataclass(frozen=True)
class FormScore:
    form: str
    terms: tuple[str, ...]
    median_abs: float  # median |ln(reported / estimate)| over leave-one-out predictions
    within_1_3: float  # fraction of runs within 1.3x
    worst: float  # largest |ln error|
    residuals: tuple[float, ...]  # ln(reported GPU-hours / estimate), one per fitted run, leave-one-out


def _loo(points: list[CampaignPoint], form: Form, caps: np.ndarray) -> np.ndarray:
    """ln(reported / estimated GPU-hours) for each run, estimated without it."""
    out = np.empty(len(points))
    for i, p in enumerate(points):
        others = points[:i] + points[i + 1:]
        fit = _fit(others, form)
        est = math.exp(float(_predict_log(fit, p.workload, p.architecture, p.params, _gpus_of(p, fit.gpu_line),
                                          p.seq_len or 1.0, p.stack)))
        if math.isnan(est):  # the only run of its workload or architecture: nothing to learn it from
            out[i] = np.nan
            continue
        est = min(est, caps[i]) if not math.isnan(caps[i]) else est
        out[i] = math.log(est / p.realised)  # reported/estimated hours = estimated/realised MFU
    return out


def _score(form: Form, residuals: np.ndarray) -> FormScore:
    r = residuals[~np.isnan(residuals)]
    a = np.abs(r)
    return FormScore(form.name, form.terms, float(np.median(a)), float(np.mean(a <= math.log(1.3))), float(a.max()),
                     tuple(float(x) for x in residuals))


@dataclass(frozen=True)
class ThroughputModel:
    """The fitted estimator: the chosen form, its coefficients and its out-of-sample errors."""

    fit: _Fit
    points: tuple[CampaignPoint, ...]  # the runs fitted
    excluded: tuple[CampaignPoint, ...]
    scores: tuple[FormScore, ...]  # every candidate, leave-one-out
    chosen: FormScore
    residuals: np.ndarray = field(repr=False)  # leave-one-out ln(reported/estimate) of the chosen form

    @property
    def n_runs(self) -> int:
        return len(self.points)

    def quantile_factor(self, q: float) -> float:
        """GPU-hours at quantile q of the out-of-sample error, as a factor on the estimate."""
        r = self.residuals[~np.isnan(self.residuals)]
        return float(np.exp(np.quantile(r, q)))

    def interval_factors(self, level: float = INTERVAL_LEVEL) -> tuple[float, float]:
        tail = (1.0 - level) / 2.0
        return self.quantile_factor(tail), self.quantile_factor(1.0 - tail)

    def knows(self, workload: str, architecture: str) -> bool:
        return workload in self.fit.coding.workloads and architecture in self.fit.coding.architectures

    def predict(self, q: Query) -> np.ndarray:
        """Realised MFU (uncapped) for the query; arrays broadcast."""
        gpus = np.where(np.isnan(q.gpus), typical_gpus(q.params, self.fit.gpu_line), q.gpus)
        return np.exp(_predict_log(self.fit, q.workload, q.architecture, q.params, gpus, q.seq_len, q.stack))

    def describe(self) -> str:
        coef = dict(zip(_names(self.fit.coding), self.fit.coef))
        parts = [f"{k} {v:+.3f}" for k, v in coef.items() if k.startswith(("ln ", "stack "))]
        return f"ln MFU = workload + architecture {' '.join(parts)}".rstrip()


def _names(coding: _Coding) -> list[str]:
    names = [f"workload {w}" for w in coding.workloads] + [f"architecture {a}" for a in coding.architectures[1:]]
    if "size" in coding.terms:
        names.append("ln(N/1e9)")
    if "gpus" in coding.terms:
        names.append("ln(GPUs/256)")
    if "seq" in coding.terms:
        names.append("ln(seq/4096)")
    names += [f"stack {s}" for s in coding.stacks]
    return names


def coefficients(model: ThroughputModel) -> dict[str, float]:
    return {k: float(v) for k, v in zip(_names(model.fit.coding), model.fit.coef)}


def fit_estimator(points: list[CampaignPoint], caps: dict[str, float] | None = None,
                  forms: tuple[Form, ...] = FORMS) -> ThroughputModel:
    """Fit every candidate form, score each by leave-one-out, keep the best (simpler on near-ties)."""
    used = [p for p in points if not p.excluded]
    if len(used) < 5:
        raise PlannerError(f"the campaign sets hold {len(used)} usable runs; the throughput estimator needs at least 5")
    cap_arr = np.array([(caps or {}).get(p.name, np.nan) for p in used])
    scores = []
    loo = {}
    for form in forms:
        loo[form.name] = _loo(used, form, cap_arr)
        scores.append(_score(form, loo[form.name]))
    best = scores[0]
    for s in scores[1:]:
        if s.median_abs < best.median_abs - SIMPLER_WINS_BY * (len(s.terms) - len(best.terms)):
            best = s
    form = next(f for f in forms if f.name == best.form)
    return ThroughputModel(_fit(used, form), tuple(used), tuple(p for p in points if p.excluded), tuple(scores), best,
                           loo[form.name])


def nested_coverage(model: ThroughputModel, caps: dict[str, float] | None = None,
                    level: float = INTERVAL_LEVEL) -> np.ndarray:
    """Whether each run's reported GPU-hours fall inside the interval the estimator would have given
    it without that run: intervals from leave-one-out residuals of the other runs only."""
    form = model.fit.form
    pts = list(model.points)
    cap_arr = np.array([(caps or {}).get(p.name, np.nan) for p in pts])
    tail = (1 - level) / 2
    inside = np.zeros(len(pts), dtype=bool)
    for i in range(len(pts)):
        r_i = model.residuals[i]
        if np.isnan(r_i):
            continue
        others = pts[:i] + pts[i + 1:]
        r = _loo(others, form, np.delete(cap_arr, i))
        r = r[~np.isnan(r)]
        lo, hi = np.quantile(r, tail), np.quantile(r, 1 - tail)
        inside[i] = lo <= r_i <= hi
    return inside
