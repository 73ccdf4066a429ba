"""Realised throughput: the MFU whole training campaigns achieve, estimated from published runs.

Tuned throughput benchmarks (the MFU profiles in `catalogs/mfu`) say what a stack reaches in a
short, steady stretch. A campaign also pays for warm-up, evaluation, checkpoints, restarts,
failures, idle allocations and untuned code. The estimator here is fitted on what published runs
*realised*, model FLOPs / (reported GPU-hours × dense peak), as a function of what a user knows
before the run:

    ln MFU = workload + architecture [+ b·ln(N / 1e9)] [+ d·ln(s / 4096)] [+ stack] + s_G·ln(G / G_typ(N))

with N the parameters that work per token, s the sequence length and G the GPU count. Candidate
forms (which optional terms) are compared by leave-one-out error over the campaign set and the
best one is used; it is linear in logs, so MFU changes smoothly and monotonically with size.
Across campaigns the GPU count cannot be told apart from size and stack (big runs use many GPUs
and the best-tuned code), so the estimate holds at the count published runs of that size used,
G_typ(N), and moves with G along s_G, the within-size slope the tuned benchmarks measured. The
benchmark profile of the accelerator caps it (a campaign does not beat a tuned benchmark).
Intervals come from the leave-one-out residuals: the spread of what runs that were not fitted
cost against their estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from planner.catalog.campaigns import CampaignPoint
from planner.costing.intervals import INTERVAL_LEVEL, error_interval, error_quantile
from planner.errors import PlannerError

REFERENCE = {"size": 1e9, "gpus": 256.0, "seq": 4096.0}
MIN_STACK_RUNS = 2  # a stack's term needs two runs; with one, that run's quirks would become its coefficient
SIMPLER_WINS_BY = 0.005  # a form with more terms must lower the LOO mean |ln error| by this much per term




# --- the candidate forms ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Form:
    name: str
    terms: tuple[str, ...]  # optional terms beyond workload + architecture: size, seq, stack


FORMS = (
    Form("workload + architecture", ()),
    Form("+ size", ("size",)),
    Form("+ size + sequence", ("size", "seq")),
    Form("+ stack", ("stack",)),
    Form("+ size + stack", ("size", "stack")),
    Form("+ size + sequence + stack", ("size", "seq", "stack")),
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
    gpu_slope: float = 0.0  # d ln MFU / d ln GPUs at fixed size, from the benchmarks (<= 0)


@dataclass(frozen=True)
class _Coding:
    """How categories and terms become columns; fixed by the fitting set."""

    workloads: tuple[str, ...]
    architectures: tuple[str, ...]  # the first is the base (no column)
    stacks: tuple[str, ...]  # stacks with their own term; every other stack is the base
    # an unstated stack is the average campaign of its workload: each stack's share of those runs
    stack_shares: dict[str, tuple[float, ...]]
    terms: tuple[str, ...]


def _columns(coding: _Coding, workload, architecture, params, seq, stack) -> np.ndarray:
    """Design rows: categories and logs as columns. Every argument may be an array (the training runs)
    or a scalar (a query over an array of sizes); `stack` None is an unstated stack."""
    params, seq, workload, architecture = np.broadcast_arrays(
        np.asarray(params, float), np.asarray(seq, float), np.asarray(workload, dtype=object),
        np.asarray(architecture, dtype=object))
    cols = [(workload == w).astype(float) for w in coding.workloads]
    cols += [(architecture == a).astype(float) for a in coding.architectures[1:]]
    if "size" in coding.terms:
        cols.append(np.log(params / REFERENCE["size"]))
    if "seq" in coding.terms:  # CLIP has no sequence: its term is zero
        cols.append(np.where(workload == "clip", 0.0, np.log(seq / REFERENCE["seq"])))
    if "stack" in coding.terms:
        if stack is None:
            for k in range(len(coding.stacks)):
                cols.append(np.array([coding.stack_shares.get(w, (0.0,) * len(coding.stacks))[k]
                                      for w in workload.ravel()]).reshape(params.shape))
        else:
            stack = np.broadcast_to(np.asarray(stack, dtype=object), params.shape)
            cols += [(stack == s).astype(float) for s in coding.stacks]
    return np.stack(cols, axis=-1)


@dataclass(frozen=True)
class _Fit:
    form: Form
    coding: _Coding
    coef: np.ndarray
    gpu_line: tuple[float, float]  # ln G = a + b·ln N: the typical GPU count of a size, for queries without one


def _coding(points: list[CampaignPoint], form: Form) -> _Coding:
    workloads = tuple(sorted({p.workload for p in points}))
    counts: dict[str, int] = {}
    for p in points:
        counts[p.architecture] = counts.get(p.architecture, 0) + 1
    archs = tuple(sorted(counts, key=lambda a: (-counts[a], a)))  # the best-measured architecture is the base
    stacks: tuple[str, ...] = ()
    shares: dict[str, tuple[float, ...]] = {}
    if "stack" in form.terms:
        by_stack: dict[str, int] = {}
        for p in points:
            by_stack[p.stack] = by_stack.get(p.stack, 0) + 1
        stacks = tuple(sorted(s for s, k in by_stack.items() if k >= MIN_STACK_RUNS))
        for w in workloads:
            runs = [p for p in points if p.workload == w]
            shares[w] = tuple(sum(p.stack == s for p in runs) / len(runs) for s in stacks)
    return _Coding(workloads, archs, stacks, shares, form.terms)


def _matrix(coding: _Coding, points: list[CampaignPoint]) -> np.ndarray:
    return _columns(coding, [p.workload for p in points], [p.architecture for p in points], [p.params for p in points],
                    [p.seq_len or REFERENCE["seq"] for p in points], [p.stack for p in points])


def _targets(points: list[CampaignPoint], slopes: np.ndarray, line: tuple[float, float]) -> np.ndarray:
    """ln realised MFU, each moved to the typical GPU count of its size along its benchmark slope."""
    y = np.log([p.realised for p in points])
    gpus = np.array([p.gpus or np.nan for p in points])
    params = np.array([p.params for p in points])
    shift = slopes * np.log(gpus / typical_gpus(params, line))
    return y - np.where(np.isnan(shift), 0.0, shift)


def _fit(points: list[CampaignPoint], form: Form, slopes: np.ndarray) -> _Fit:
    coding = _coding(points, form)
    line = _gpu_line(points)
    coef = np.linalg.lstsq(_matrix(coding, points), _targets(points, slopes, line), rcond=None)[0]
    return _Fit(form, coding, coef, line)


def _gpu_line(points: list[CampaignPoint]) -> tuple[float, float]:
    known = [(math.log(p.params), math.log(p.gpus)) for p in points if p.gpus]
    if len(known) < 2:
        return (math.log(REFERENCE["gpus"]), 0.0)
    x, y = np.array(known).T
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def typical_gpus(params, line: tuple[float, float]):
    return np.exp(line[0] + line[1] * np.log(np.asarray(params, dtype=float)))


def _predict_log(fit: _Fit, workload, architecture, params, seq, stack, gpus=np.nan, gpu_slope: float = 0.0) -> np.ndarray:
    if workload not in fit.coding.workloads or architecture not in fit.coding.architectures:
        return np.full(np.shape(params), np.nan)
    cols = _columns(fit.coding, workload, architecture, params, seq, stack)
    base = np.zeros(cols.shape[:-1])
    for k, c in enumerate(fit.coef):  # term by term, not a BLAS dot: one size gets the same bits alone or in a sweep
        base = base + cols[..., k] * c
    shift = np.log(np.asarray(gpus, dtype=float) / typical_gpus(params, fit.gpu_line)) * gpu_slope
    return base + np.where(np.isnan(shift), 0.0, shift)  # no GPU count: the typical one


# --- selection and the estimator ------------------------------------------------------------------

@dataclass(frozen=True)
class FormScore:
    form: str
    terms: tuple[str, ...]
    median_abs: float  # median |ln(reported / estimate)| over leave-one-out predictions
    mean_abs: float  # mean |ln(reported / estimate)|: the selection criterion (large misses count)
    within_1_3: float  # fraction of runs within 1.3x
    worst: float  # largest |ln error|
    residuals: tuple[float, ...]  # ln(reported GPU-hours / estimate), one per fitted run, leave-one-out
    # the same with no stack stated (the estimate a user who names none gets)
    unstated_median_abs: float
    unstated_mean_abs: float
    unstated_within_1_3: float
    unstated_worst: float
    unstated_residuals: tuple[float, ...]


def _loo(points: list[CampaignPoint], form: Form, caps: np.ndarray, slopes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ln(reported / estimated GPU-hours) for each run, estimated without it: with its stack stated,
    and with no stack stated (the average campaign of its workload, what a user who names none gets).

    The columns are those of the whole set (a stack with a term keeps it when one of its runs is
    left out), so every fold is the same least-squares problem less one row: its coefficients are
    b - pinv[:, i] e_i / (1 - h_ii) (h: the hat matrix), and its prediction for the row left out is
    y_i - e_i / (1 - h_ii). A run alone in its workload or architecture (h_ii = 1) has nothing to
    learn it from: NaN."""
    coding = _coding(points, form)
    line = _gpu_line(points)
    x = _matrix(coding, points)
    y = _targets(points, slopes, line)
    pinv = np.linalg.pinv(x)
    coef = pinv @ y
    h = np.einsum("ij,ji->i", x, pinv)
    e = y - x @ coef
    alone = h > 1 - 1e-9
    step = np.where(alone, np.nan, e / np.where(alone, 1.0, 1 - h))
    stated = y - step
    unstated = stated
    if coding.stacks:
        x_none = _columns(coding, [p.workload for p in points], [p.architecture for p in points],
                          [p.params for p in points], [p.seq_len or REFERENCE["seq"] for p in points], None)
        coef_without = coef[None, :] - (pinv.T * step[:, None])  # row i: the coefficients fitted without run i
        unstated = np.einsum("ij,ij->i", x_none, coef_without)
    gpus = np.array([p.gpus or np.nan for p in points])
    params = np.array([p.params for p in points])
    shift = slopes * np.log(gpus / typical_gpus(params, line))
    realised = np.array([p.realised for p in points])
    out = []
    for pred in (stated, unstated):
        est = np.exp(pred + np.where(np.isnan(shift), 0.0, shift))
        est = np.where(np.isnan(caps), est, np.minimum(est, caps))
        out.append(np.log(est / realised))  # reported/estimated hours = estimated/realised MFU
    return out[0], out[1]


def _score(form: Form, stated: np.ndarray, unstated: np.ndarray) -> FormScore:
    def stats(residuals: np.ndarray) -> tuple[float, float, float, float]:
        a = np.abs(residuals[~np.isnan(residuals)])
        return float(np.median(a)), float(np.mean(a)), float(np.mean(a <= math.log(1.3))), float(a.max())

    return FormScore(form.name, form.terms, *stats(stated), tuple(float(x) for x in stated), *stats(unstated),
                     tuple(float(x) for x in unstated))


@dataclass(frozen=True)
class ThroughputModel:
    """The fitted estimator: the chosen form, its coefficients and its out-of-sample errors."""

    fit: _Fit
    points: tuple[CampaignPoint, ...]  # the runs fitted
    excluded: tuple[CampaignPoint, ...]
    scores: tuple[FormScore, ...]  # every candidate, leave-one-out
    chosen: FormScore
    residuals: np.ndarray = field(repr=False)  # leave-one-out ln(reported/estimate) of the chosen form, stack stated
    slopes: np.ndarray = field(repr=False)  # each fitted run's benchmark GPU-count slope
    unstated: np.ndarray = field(repr=False)  # the same with no stack stated

    @property
    def n_runs(self) -> int:
        return len(self.points)

    def errors(self, stack_stated: bool) -> tuple[float, ...]:
        """The out-of-sample errors that apply to an estimate with or without a stated stack."""
        r = self.residuals if stack_stated else self.unstated
        return tuple(float(x) for x in r[~np.isnan(r)])

    def quantile_factor(self, q: float, stack_stated: bool = False) -> float:
        """GPU-hours at quantile q of the out-of-sample error, as a factor on the estimate."""
        return error_quantile(self.errors(stack_stated), q)

    def interval_factors(self, level: float = INTERVAL_LEVEL, stack_stated: bool = False) -> tuple[float, float]:
        return error_interval(self.errors(stack_stated), level)

    def stack_applies(self, stack: str | None, workload: str) -> bool:
        """A stack has a term here and published runs of this workload (a CLIP stack says nothing of LMs)."""
        return (stack is not None and stack in self.fit.coding.stacks
                and any(p.stack == stack and p.workload == workload for p in self.points))

    def knows(self, workload: str, architecture: str) -> bool:
        return workload in self.fit.coding.workloads and architecture in self.fit.coding.architectures

    def predict(self, q: Query) -> np.ndarray:
        """Realised MFU (uncapped) for the query; arrays broadcast."""
        return np.exp(_predict_log(self.fit, q.workload, q.architecture, q.params, q.seq_len, q.stack, q.gpus,
                                   q.gpu_slope))


def _names(coding: _Coding) -> list[str]:
    names = [f"workload {w}" for w in coding.workloads] + [f"architecture {a}" for a in coding.architectures[1:]]
    if "size" in coding.terms:
        names.append("ln(N/1e9)")
    if "seq" in coding.terms:
        names.append("ln(seq/4096)")
    names += [f"stack {s}" for s in coding.stacks]
    return names


def coefficients(model: ThroughputModel) -> dict[str, float]:
    return {k: float(v) for k, v in zip(_names(model.fit.coding), model.fit.coef, strict=True)}


def fit_estimator(points: list[CampaignPoint], caps: dict[str, float] | None = None,
                  slopes: dict[str, float] | None = None, forms: tuple[Form, ...] = FORMS) -> ThroughputModel:
    """Fit every candidate form, score each by its leave-one-out mean |ln error| (a grant sized on a
    large miss is what goes wrong, so the tails count, not only the median), keep the best; a form
    with more terms must win by SIMPLER_WINS_BY per extra term.
    `caps` and `slopes` (by run name) are each run's tuned-benchmark MFU and GPU-count slope."""
    used = [p for p in points if not p.excluded]
    if len(used) < 5:
        raise PlannerError(f"the campaign sets hold {len(used)} usable runs; the throughput estimator needs at least 5")
    cap_arr = np.array([(caps or {}).get(p.name, np.nan) for p in used])
    slope_arr = np.array([(slopes or {}).get(p.name, 0.0) for p in used])
    scores = []
    loo = {}
    for form in forms:
        loo[form.name] = _loo(used, form, cap_arr, slope_arr)
        scores.append(_score(form, *loo[form.name]))
    best = scores[0]
    for s in scores[1:]:
        if s.mean_abs < best.mean_abs - SIMPLER_WINS_BY * (len(s.terms) - len(best.terms)):
            best = s
    form = next(f for f in forms if f.name == best.form)
    return ThroughputModel(_fit(used, form, slope_arr), tuple(used), tuple(p for p in points if p.excluded), tuple(scores), best,
                           loo[form.name][0], slope_arr, loo[form.name][1])


def nested_coverage(model: ThroughputModel, caps: dict[str, float] | None = None, level: float = INTERVAL_LEVEL,
                    stack_stated: bool = True) -> np.ndarray:
    """Whether each run's reported GPU-hours fall inside the interval the estimator would have given
    it without that run: intervals from leave-one-out residuals of the other runs only."""
    form = model.fit.form
    pts = list(model.points)
    cap_arr = np.array([(caps or {}).get(p.name, np.nan) for p in pts])
    mine = model.residuals if stack_stated else model.unstated
    tail = (1 - level) / 2
    inside = np.zeros(len(pts), dtype=bool)
    for i in range(len(pts)):
        r_i = mine[i]
        if np.isnan(r_i):
            continue
        others = pts[:i] + pts[i + 1:]
        r = _loo(others, form, np.delete(cap_arr, i), np.delete(model.slopes, i))[0 if stack_stated else 1]
        r = r[~np.isnan(r)]
        lo, hi = np.quantile(r, tail), np.quantile(r, 1 - tail)
        inside[i] = lo <= r_i <= hi
    return inside


# --- a fitted estimator as plain data (the cross-process cache) ------------------------------------

def to_data(model: ThroughputModel) -> dict:
    """Everything a fitted estimator holds, as JSON-able plain data (floats round-trip exactly)."""
    from dataclasses import asdict

    def floats(a) -> list:
        return [None if math.isnan(x) else float(x) for x in np.asarray(a, dtype=float)]

    fit = model.fit
    return {
        "form": asdict(fit.form), "coef": floats(fit.coef), "gpu_line": list(fit.gpu_line),
        "coding": {"workloads": fit.coding.workloads, "architectures": fit.coding.architectures,
                   "stacks": fit.coding.stacks, "stack_shares": fit.coding.stack_shares, "terms": fit.coding.terms},
        "points": [asdict(p) for p in model.points], "excluded": [asdict(p) for p in model.excluded],
        "scores": [asdict(s) for s in model.scores], "chosen": model.chosen.form,
        "residuals": floats(model.residuals), "slopes": floats(model.slopes), "unstated": floats(model.unstated),
    }


def from_data(data: dict) -> ThroughputModel:
    def arr(xs) -> np.ndarray:
        return np.array([np.nan if x is None else x for x in xs], dtype=float)

    def score(s: dict) -> FormScore:
        s = dict(s, terms=tuple(s["terms"]), residuals=tuple(np.nan if x is None else x for x in s["residuals"]),
                 unstated_residuals=tuple(np.nan if x is None else x for x in s["unstated_residuals"]))
        return FormScore(**s)

    c = data["coding"]
    coding = _Coding(tuple(c["workloads"]), tuple(c["architectures"]), tuple(c["stacks"]),
                     {k: tuple(v) for k, v in c["stack_shares"].items()}, tuple(c["terms"]))
    form = Form(data["form"]["name"], tuple(data["form"]["terms"]))
    fit = _Fit(form, coding, arr(data["coef"]), (float(data["gpu_line"][0]), float(data["gpu_line"][1])))
    scores = tuple(score(s) for s in data["scores"])
    return ThroughputModel(fit, tuple(CampaignPoint(**p) for p in data["points"]),
                           tuple(CampaignPoint(**p) for p in data["excluded"]), scores,
                           next(s for s in scores if s.form == data["chosen"]), arr(data["residuals"]),
                           arr(data["slopes"]), arr(data["unstated"]))
