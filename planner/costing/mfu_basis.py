"""Where a run's MFU comes from, by basis: the campaign estimator fitted on published training runs
(the default; with the out-of-sample errors every range and grant request is read from), the
tuned benchmark profiles (steady state, the optimistic bound), or a value given. The estimator is
fitted once per catalog and cached across processes."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from planner.catalog import Accelerator, Catalog, MfuProfile, campaigns
from planner.costing import cost, intervals, mfu, throughput
from planner.errors import PlannerError, PlannerWarning

if TYPE_CHECKING:  # hardware imports this module; a Hardware only passes through here
    from planner.costing.hardware import Hardware
# What a run's MFU is read from. `campaign` (the default): the estimator fitted on what published
# end-to-end training runs realised (planner.costing.throughput). `benchmark`: the tuned throughput
# profiles, steady state, the upper bound of what a stack reaches.
MFU_BASES = ("campaign", "benchmark")
INTERVAL_LEVEL = throughput.INTERVAL_LEVEL

WORKLOADS = ("dense-lm", "moe", "clip")


def mfu_profile_for(hw: Hardware, catalog: Catalog, workload: str = "dense-lm") -> MfuProfile:
    """The measured profile for `workload` on `hw`: the cluster's own when it is for this workload,
    otherwise any profile measured for it on this accelerator (e.g. openCLIP's for CLIP training)."""
    name = None
    if hw.cluster is not None and hw.cluster.mfu_profile:
        if catalog.mfu_profile(hw.cluster.mfu_profile).workload == workload:
            name = hw.cluster.mfu_profile
    name = name or _profile_for_accelerator(catalog, hw.accelerator, workload)
    if name is None:
        where = f"cluster '{hw.cluster.name}'" if hw.cluster else f"accelerator '{hw.accelerator.name}'"
        raise PlannerError(f"no measured {workload} MFU profile for {where}; give one (e.g. 0.4)", "mfu")
    profile = catalog.mfu_profile(name)
    check_dtype(profile, hw)
    return profile


def check_dtype(profile: MfuProfile, hw: Hardware) -> None:
    """An MFU measured in one dtype says nothing about another (bf16 and fp16 share a tensor rate)."""
    if profile.dtype != hw.dtype and not {profile.dtype, hw.dtype} <= {"bf16", "fp16"}:
        raise PlannerError(f"MFU profile '{profile.name}' was measured in {profile.dtype}, not {hw.dtype}; give {{mfu}} (e.g. 0.3)",
                           "dtype", refs=("mfu",))


def mfu_for(hw: Hardware, catalog: Catalog, params: float, override: float | None = None,
            workload: str = "dense-lm", basis: str = "campaign", seq_len: float | None = None,
            stack: str | None = None) -> mfu.MfuEstimate:
    """MFU for a model of `params` (working parameters) on `hw`, at its GPU count when known: the
    override, the campaign estimator (default) or the benchmark profile."""
    if override is not None:
        return mfu.from_override(override)
    return mfu_many(hw, catalog, [params], workload, basis, seq_len, stack)[0]


def mfu_many(hw: Hardware, catalog: Catalog, params, workload: str = "dense-lm", basis: str = "campaign",
             seq_len: float | None = None, stack: str | None = None) -> list[mfu.MfuEstimate]:
    """`mfu_for` for many model sizes on one hardware at once (a sweep costs thousands of runs)."""
    if basis not in MFU_BASES:
        raise PlannerError(f"unknown MFU basis '{basis}'; known: {', '.join(MFU_BASES)}", "mfu_basis")
    if basis == "benchmark":
        profile = mfu_profile_for(hw, catalog, workload)
        errors = benchmark_errors(catalog)
        return [replace(e, kind="benchmark", basis="benchmark (tuned steady-state throughput, the upper bound): " + e.basis,
                        errors=errors) for e in mfu.estimate_many(profile, hw.accelerator, params, hw.gpus)]
    return _campaign_many(hw, catalog, params, workload, seq_len, stack)


def campaign_estimator(catalog: Catalog) -> throughput.ThroughputModel | None:
    """The throughput estimator fitted on every campaign set in effect (once per catalog, and once per
    catalog content across processes: see `_fitted`)."""
    if "throughput" not in catalog.derived:
        _fitted(catalog)
    return catalog.derived["throughput"]


def _fit_now(catalog: Catalog) -> tuple[throughput.ThroughputModel | None, tuple[float, ...]]:
    points = campaigns.campaign_points(catalog)
    if not points:
        return None, ()
    bench = benchmark_mfus(catalog, points)  # the caps of the fit, and the benchmark basis's errors
    model = throughput.fit_estimator(points, bench, benchmark_slopes(catalog, points))
    return model, tuple(math.log(bench[p.name] / p.realised) for p in model.points if p.name in bench)


CACHE_KEEP = 16
CACHE_MAX_BYTES = 16 << 20  # a cache file is kilobytes; anything else there is not ours to read whole


def _fitted(catalog: Catalog) -> None:
    """Fit, or read the fit from a cache keyed by everything it depends on: the planner version, the
    catalog data in effect (its fingerprint) and the source of the code that fits. Reading YAML and
    fitting cost a cold plan ~0.1 s; the cache is plain JSON (floats round-trip exactly), so a cached
    and a fresh fit give byte-identical outputs. PLANNER_CACHE_DIR= (empty) turns it off."""
    import hashlib
    import inspect
    import json
    import os
    from pathlib import Path

    from planner import __version__

    where = os.environ.get("PLANNER_CACHE_DIR")
    if where is None:
        where = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "planner")
    path = None
    if where:
        code = hashlib.sha256()
        for module in (campaigns, throughput, intervals, mfu, cost):
            code.update(Path(inspect.getfile(module)).read_bytes())
        code.update(Path(__file__).read_bytes())
        key = hashlib.sha256(f"{__version__}\0{catalog.fingerprint()}\0{code.hexdigest()}".encode()).hexdigest()
        path = Path(where) / f"throughput-{key[:32]}.json"
        try:
            from planner.files import read_input

            data = json.loads(read_input(path, "cache", CACHE_MAX_BYTES))
            model = throughput.from_data(data["model"]) if data["model"] is not None else None
            catalog.derived["throughput"] = model
            catalog.derived["benchmark_errors"] = tuple(data["benchmark_errors"])
            catalog.used.update((str(kind), str(name)) for kind, name in data["used"])  # as if fitted now
            return
        except (OSError, ValueError, KeyError, TypeError, StopIteration):
            pass  # absent or unreadable (PlannerError is a ValueError): fit afresh
    outer, catalog.used = catalog.used, set()  # what the fit reads: a cached fit marks it used all the same
    try:
        model, errors = _fit_now(catalog)
    finally:
        fit_used, catalog.used = catalog.used, outer | catalog.used
    catalog.derived["throughput"], catalog.derived["benchmark_errors"] = model, errors
    if path is not None:
        try:
            from planner.files import write_atomic

            path.parent.mkdir(parents=True, exist_ok=True)
            payload = {"model": throughput.to_data(model) if model is not None else None, "benchmark_errors": list(errors),
                       "used": sorted(fit_used)}
            write_atomic(path, json.dumps(payload), force=True)
            old = sorted(path.parent.glob("throughput-*.json"), key=lambda f: (f.stat().st_mtime, f.name))[:-CACHE_KEEP]
            for stale in old:  # one file per catalog state: keep the recent ones, not every edit ever made
                stale.unlink(missing_ok=True)
        except (OSError, PlannerError):
            pass  # a read-only home (or a cache file that is not a file) is no reason to fail a plan


def benchmark_mfus(catalog: Catalog, points: list[campaigns.CampaignPoint]) -> dict[str, float]:
    """The tuned-benchmark MFU each campaign would have had (its accelerator's profile at its size and
    GPU count): the cap of the campaign estimate, and the benchmark basis's out-of-sample test."""
    groups: dict[tuple[str, str, bool], list[campaigns.CampaignPoint]] = {}
    for p in points:  # one vectorised profile lookup per accelerator, workload and known/unknown GPU count
        groups.setdefault((p.accelerator, p.workload, p.gpus is not None), []).append(p)
    out = {}
    for (acc_name, workload, known), group in groups.items():
        acc = catalog.accelerator(acc_name)
        profile = _benchmark_profile(catalog, acc, workload)
        if profile is None:
            continue
        gpus = [p.gpus for p in group] if known else None
        for p, e in zip(group, mfu.estimate_many(profile, acc, [p.params for p in group], gpus), strict=True):
            out[p.name] = e.value
    return out


def _benchmark_profile(catalog: Catalog, accelerator: Accelerator, workload: str) -> MfuProfile | None:
    name = _profile_for_accelerator(catalog, accelerator, workload)
    profile = catalog.mfu_profile(name) if name is not None else None
    return profile if profile is not None and profile.dtype in ("bf16", "fp16") else None


def benchmark_slopes(catalog: Catalog, points: list[campaigns.CampaignPoint]) -> dict[str, float]:
    """The within-size GPU-count slope the tuned benchmarks measured for each campaign's accelerator."""
    out, slopes = {}, {}
    for p in points:
        profile = _benchmark_profile(catalog, catalog.accelerator(p.accelerator), p.workload)
        if profile is not None and profile.name not in slopes:
            slopes[profile.name] = mfu.gpu_scaling(profile).slope
        out[p.name] = slopes[profile.name] if profile is not None else 0.0
    return out


def benchmark_errors(catalog: Catalog) -> tuple[float, ...]:
    """ln(reported / benchmark-estimated GPU-hours) over the published campaigns: how far the tuned
    profiles fall short of what whole runs cost (no fitting involved, so every run is out of sample)."""
    campaign_estimator(catalog)
    return catalog.derived["benchmark_errors"]


def _campaign_many(hw: Hardware, catalog: Catalog, params, workload: str, seq_len: float | None,
                   stack: str | None) -> list[mfu.MfuEstimate]:
    model = campaign_estimator(catalog)
    acc = hw.accelerator
    arch = acc.architecture or acc.name
    if model is None or not model.knows(workload, arch):
        runs = "no campaign set in the catalog" if model is None else f"no published {workload} campaign on {arch} GPUs"
        other = ("" if _profile_for_accelerator(catalog, acc, workload) is None
                 else ", or the benchmark MFU basis ({mfu_basis} benchmark, tuned steady state)")
        raise PlannerError(f"{runs} to estimate realised MFU on {acc.name} from; give one (e.g. 0.3){other}", "mfu",
                           refs=("mfu_basis",))
    if hw.dtype not in ("bf16", "fp16"):
        raise PlannerError(f"the campaign estimator is calibrated on bf16/fp16 training, not {hw.dtype}; give {{mfu}} (e.g. 0.3)",
                           "dtype", refs=("mfu",))
    warnings: list[PlannerWarning] = []
    if stack is not None and "stack" in model.chosen.terms and not model.stack_applies(stack, workload):
        warnings.append(PlannerWarning("mfu.stack", _stack_warning(model, stack, workload)))
        stack = None  # the average campaign, as with no stack: an unknown name must not move the estimate
    stated = stack is not None and "stack" in model.chosen.terms
    sizes = np.atleast_1d(np.asarray(params, dtype=float))
    seq = np.full(sizes.shape, float(seq_len or throughput.REFERENCE["seq"]))
    gpus = np.full(sizes.shape, float(hw.gpus) if hw.gpus else np.nan)
    try:
        profile = mfu_profile_for(hw, catalog, workload)
        caps = [e.value for e in mfu.estimate_many(profile, acc, sizes, hw.gpus)]
        slope = mfu.gpu_scaling(profile).slope
    except PlannerError:
        profile, caps, slope = None, [math.inf] * len(sizes), 0.0
    values = model.predict(throughput.Query(workload, arch, sizes, gpus, seq, stack, slope))
    score = model.chosen
    errors = model.errors(stated)
    median = math.expm1(statistics.median(abs(float(e)) for e in errors))
    typical = float(throughput.typical_gpus(sizes[0], model.fit.gpu_line))
    gpus_text = (f"at the ~{typical:.0f} GPUs published runs of this size used (give GPUs or nodes)" if not hw.gpus else
                 f"moved from the ~{typical:.0f} GPUs published runs of this size used to {hw.gpus} along the "
                 f"benchmarks' within-size slope GPUs^{slope:+.4f}")
    who = (f"stack {stack}" if stated else "no stack stated: the average published campaign of this workload"
           if "stack" in score.terms else "")
    basis = (f"campaign: realised MFU fitted on {model.n_runs} published training runs ({score.form}; {who}; "
             f"leave-one-out median error {median:.0%}) {gpus_text}")
    sources = (f"planner campaign estimator over {model.n_runs} published runs, each with its paper in the planner "
               "package's catalogs/campaigns/published-runs.yaml (`planner catalog show published-runs`)",)
    runs_here = [p for p in model.points if p.architecture == arch and p.workload == workload]
    if len(runs_here) < 3:
        warnings.append(PlannerWarning("mfu.evidence", f"realised {workload} MFU on {arch} rests on {len(runs_here)} published "
                                       "campaign(s): the range does not cover how little that is"))
    measured = {p.accelerator for p in model.points if p.architecture == arch}
    if acc.name not in measured:
        warnings.append(PlannerWarning("mfu.evidence", f"no published campaign ran on {acc.name}: campaigns on "
                                       f"{', '.join(sorted(measured))} ({arch}) are assumed to carry over"))
    lo = min(p.params for p in model.points if p.workload == workload)
    hi = max(p.params for p in model.points if p.workload == workload)
    how = "along the fitted size term" if "size" in score.terms else "(the chosen form has no size term)"
    out = []
    for n, value, cap in zip(sizes, values, caps, strict=True):
        w = list(warnings)
        if n < lo / 3 or n > hi * 3:
            w.append(PlannerWarning("mfu.size", f"{n:.3g} parameters is outside the {lo:.3g}-{hi:.3g} of published {workload} "
                                    f"campaigns: realised MFU extrapolated {how}"))
        text = basis
        if profile is not None and value > cap:  # without a profile the caps are infinite
            value, text = cap, basis + f"; capped at the tuned benchmark '{profile.name}'"
        out.append(mfu.MfuEstimate(float(value), text, sources, tuple(w), "campaign", errors))
    return out


def _stack_warning(model: throughput.ThroughputModel, stack: str, workload: str) -> str:
    import difflib

    known = [s for s in model.fit.coding.stacks if model.stack_applies(s, workload)]
    close = difflib.get_close_matches(stack, known, n=1, cutoff=0.6) or [s for s in known if s.lower() == stack.lower()]
    if stack in model.fit.coding.stacks:
        why = f"stack '{stack}' has no published {workload} campaign"
    else:
        why = f"stack '{stack}' has fewer than {throughput.MIN_STACK_RUNS} published campaigns"
    hint = f"; did you mean {close[0]}?" if close else ""
    return (f"{why}: costed as the average {workload} campaign{hint} (stacks with a {workload} term: "
            f"{', '.join(known)})")


def _profile_for_accelerator(catalog: Catalog, acc: Accelerator, workload: str) -> str | None:
    for name in catalog.names("mfu"):
        profile = catalog.mfu_profile(name)
        if profile.workload == workload and acc.name in profile.accelerators:
            return name
    return None


