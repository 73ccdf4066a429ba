"""Hardware a run uses, and the one function that turns a run's FLOPs into hours, energy and charge."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import math

import numpy as np

from planner import cost, mfu, throughput
from planner.catalog import Accelerator, Catalog, Cluster, MfuProfile
from planner.errors import PlannerError

# What a run's MFU is read from. `campaign` (the default): the estimator fitted on what published
# end-to-end training runs realised (planner.throughput). `benchmark`: the tuned throughput
# profiles, steady state, the upper bound of what a stack reaches.
MFU_BASES = ("campaign", "benchmark")
INTERVAL_LEVEL = throughput.INTERVAL_LEVEL


@dataclass(frozen=True)
class Hardware:
    accelerator: Accelerator
    cluster: Cluster | None
    dtype: str
    peak: float  # dense FLOP/s per GPU in `dtype`
    gpus: int | None  # GPUs running the job, when known
    sources: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def gpus_per_node(self) -> int | None:
        return self.cluster.gpus_per_node_int if self.cluster else None

    @property
    def nodes(self) -> int | None:
        if self.gpus is None or self.cluster is None:
            return None
        return cost.nodes_for(self.gpus, self.gpus_per_node)


def hardware_for(catalog: Catalog, cluster: str | None = None, accelerator: str | None = None,
                 gpus: int | None = None, nodes: int | Literal["all"] | None = None, dtype: str = "bf16") -> Hardware:
    """The hardware a run uses: a cluster (or a bare accelerator), how many GPUs, which dtype peak."""
    cluster = catalog.cluster(cluster) if cluster else None
    if cluster is None and accelerator is None:
        raise PlannerError("give a cluster or an accelerator")
    acc = catalog.accelerator(cluster.accelerator if cluster else accelerator)
    peak = acc.peak_flops(dtype)
    sources = {"peak_flops": f"{acc.title}: {acc.cite(acc.peak_tflops.get(dtype, acc.peak_tflops['bf16']))}"}
    warnings = []
    if nodes is not None:
        if cluster is None:
            raise PlannerError("--nodes needs --cluster (an accelerator alone has no node size); use --gpus")
        if nodes == "all":
            if cluster.nodes is None:
                raise PlannerError(f"cluster '{cluster.name}' is a rented node type with no fixed size; give a number of nodes")
            nodes = int(cluster.nodes.value)
        if cluster.nodes is not None and nodes > cluster.nodes.value:
            raise PlannerError(f"--nodes {nodes} exceeds the {int(cluster.nodes.value)} nodes of {cluster.name}")
        gpus = nodes * cluster.gpus_per_node_int
    if cluster is not None:
        sources["node_power"] = f"{cluster.title}: {cluster.cite(cluster.node_power_kw)}"
        sources["accounting"] = f"{cluster.title}: {cluster.cite(cluster.accounting.units_per_node_hour)}"
        for path, item in cluster.sourced_numbers():
            if cluster.status_of(item) == "unverified" and path.split(".")[0] in ("node_power_kw", "accounting", "gpus_per_node"):
                warnings.append(f"{cluster.name} {path} = {item.value:g} is unverified" + (f" ({item.note})" if item.note else ""))
    return Hardware(acc, cluster, dtype, peak, gpus, sources, tuple(warnings))


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
        raise PlannerError(f"no measured {workload} MFU profile for {where}; give --mfu (e.g. --mfu 0.4)")
    profile = catalog.mfu_profile(name)
    check_dtype(profile, hw)
    return profile


def check_dtype(profile: MfuProfile, hw: Hardware) -> None:
    """An MFU measured in one dtype says nothing about another (bf16 and fp16 share a tensor rate)."""
    if profile.dtype != hw.dtype and not {profile.dtype, hw.dtype} <= {"bf16", "fp16"}:
        raise PlannerError(f"MFU profile '{profile.name}' was measured in {profile.dtype}, not {hw.dtype}; give --mfu")


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
        raise PlannerError(f"unknown MFU basis '{basis}'; known: {', '.join(MFU_BASES)}")
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
    points = throughput.campaign_points(catalog)
    if not points:
        return None, ()
    model = throughput.fit_estimator(points, benchmark_mfus(catalog, points), benchmark_slopes(catalog, points))
    bench = benchmark_mfus(catalog, list(model.points))
    return model, tuple(math.log(bench[p.name] / p.realised) for p in model.points if p.name in bench)


CACHE_KEEP = 16


def _fitted(catalog: Catalog) -> None:
    """Fit, or read the fit from a cache keyed by everything it depends on: the planner version, the
    catalog data in effect (its fingerprint) and the source of the code that fits. Reading YAML and
    fitting cost a cold plan ~0.1 s; the cache is plain JSON (floats round-trip exactly), so a cached
    and a fresh fit give byte-identical outputs. PLANNER_CACHE_DIR= (empty) turns it off."""
    import hashlib
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
        for module in (throughput, mfu, cost):
            code.update(Path(module.__file__).read_bytes())
        code.update(Path(__file__).read_bytes())
        key = hashlib.sha256(f"{__version__}\0{catalog.fingerprint()}\0{code.hexdigest()}".encode()).hexdigest()
        path = Path(where) / f"throughput-{key[:32]}.json"
        try:
            data = json.loads(path.read_text())
            model = throughput.from_data(data["model"]) if data["model"] is not None else None
            catalog.derived["throughput"] = model
            catalog.derived["benchmark_errors"] = tuple(data["benchmark_errors"])
            return
        except (OSError, ValueError, KeyError, TypeError, StopIteration):
            pass  # absent or unreadable: fit afresh
    model, errors = _fit_now(catalog)
    catalog.derived["throughput"], catalog.derived["benchmark_errors"] = model, errors
    if path is not None:
        try:
            from planner.files import write_atomic

            path.parent.mkdir(parents=True, exist_ok=True)
            payload = {"model": throughput.to_data(model) if model is not None else None, "benchmark_errors": list(errors)}
            write_atomic(path, json.dumps(payload), force=True)
            old = sorted(path.parent.glob("throughput-*.json"), key=lambda f: (f.stat().st_mtime, f.name))[:-CACHE_KEEP]
            for stale in old:  # one file per catalog state: keep the recent ones, not every edit ever made
                stale.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only home is no reason to fail a plan


def benchmark_mfus(catalog: Catalog, points: list[throughput.CampaignPoint]) -> dict[str, float]:
    """The tuned-benchmark MFU each campaign would have had (its accelerator's profile at its size and
    GPU count): the cap of the campaign estimate, and the benchmark basis's out-of-sample test."""
    groups: dict[tuple[str, str, bool], list[throughput.CampaignPoint]] = {}
    for p in points:  # one vectorised profile lookup per accelerator, workload and known/unknown GPU count
        groups.setdefault((p.accelerator, p.workload, p.gpus is not None), []).append(p)
    out = {}
    for (acc_name, workload, known), group in groups.items():
        acc = catalog.accelerator(acc_name)
        profile = _benchmark_profile(catalog, acc, workload)
        if profile is None:
            continue
        gpus = [p.gpus for p in group] if known else None
        for p, e in zip(group, mfu.estimate_many(profile, acc, [p.params for p in group], gpus)):
            out[p.name] = e.value
    return out


def _benchmark_profile(catalog: Catalog, accelerator: Accelerator, workload: str) -> MfuProfile | None:
    name = _profile_for_accelerator(catalog, accelerator, workload)
    profile = catalog.mfu_profile(name) if name is not None else None
    return profile if profile is not None and profile.dtype in ("bf16", "fp16") else None


def benchmark_slopes(catalog: Catalog, points: list[throughput.CampaignPoint]) -> dict[str, float]:
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
                 else ", or the benchmark MFU basis (tuned steady state)")
        raise PlannerError(f"{runs} to estimate realised MFU on {acc.name} from; give --mfu (e.g. --mfu 0.3){other}")
    if hw.dtype not in ("bf16", "fp16"):
        raise PlannerError(f"the campaign estimator is calibrated on bf16/fp16 training, not {hw.dtype}; give --mfu")
    warnings = []
    if stack is not None and "stack" in model.chosen.terms and not model.stack_applies(stack, workload):
        warnings.append(_stack_warning(model, stack, workload))
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
    median = math.expm1(float(np.median(np.abs(errors))))
    typical = float(throughput.typical_gpus(sizes[0], model.fit.gpu_line))
    gpus_text = (f"at the ~{typical:.0f} GPUs published runs of this size used (give GPUs or nodes)" if not hw.gpus else
                 f"moved from the ~{typical:.0f} GPUs published runs of this size used to {hw.gpus} along the "
                 f"benchmarks' within-size slope GPUs^{slope:+.4f}")
    who = (f"stack {stack}" if stated else "no stack stated: the average published campaign of this workload"
           if "stack" in score.terms else "")
    basis = (f"campaign: realised MFU fitted on {model.n_runs} published training runs ({score.form}; {who}; "
             f"leave-one-out median error {median:.0%}) {gpus_text}")
    sources = (f"planner campaign estimator over {model.n_runs} published runs (docs/calibration.md)",)
    runs_here = [p for p in model.points if p.architecture == arch and p.workload == workload]
    if len(runs_here) < 3:
        warnings.append(f"realised {workload} MFU on {arch} rests on {len(runs_here)} published campaign(s): "
                        "the range does not cover how little that is")
    measured = {p.accelerator for p in model.points if p.architecture == arch}
    if acc.name not in measured:
        warnings.append(f"no published campaign ran on {acc.name}: campaigns on {', '.join(sorted(measured))} "
                        f"({arch}) are assumed to carry over")
    lo = min(p.params for p in model.points if p.workload == workload)
    hi = max(p.params for p in model.points if p.workload == workload)
    how = "along the fitted size term" if "size" in score.terms else "(the chosen form has no size term)"
    out = []
    for n, value, cap in zip(sizes, values, caps):
        w = list(warnings)
        if n < lo / 3 or n > hi * 3:
            w.append(f"{n:.3g} parameters is outside the {lo:.3g}-{hi:.3g} of published {workload} campaigns: "
                     f"realised MFU extrapolated {how}")
        text = basis
        if value > cap:
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


def hardware_costs(flops: float, params: float, hw: Hardware | None, catalog: Catalog,
                   est: mfu.MfuEstimate | None = None, warnings: list[str] | None = None,
                   mfu_override: float | None = None, workload: str = "dense-lm", goodput: float = 1.0,
                   pue: float | None = None, grid_gco2_per_kwh: float | None = None, basis: str = "campaign",
                   seq_len: float | None = None, stack: str | None = None) -> dict:
    """GPU-hours, wall-clock, node-hours, energy and charge for `flops` on `hw` (None-filled without hardware).

    The one place a run's hours are computed: `plan`, `sweep` and `grant` all call it.
    `goodput` (0-1] scales the MFU further: the campaign basis already includes what whole runs
    lose to restarts, evaluation and failures, so its default is 1. Every hour, energy and charge
    comes with its interval at INTERVAL_LEVEL from the MFU estimate's out-of-sample errors. `pue` and `grid_gco2_per_kwh` override the
    cluster's published values for the facility energy and the CO2 estimate."""
    warnings = [] if warnings is None else warnings
    keys = ("accelerator", "cluster", "dtype", "peak_flops_per_gpu", "mfu", "mfu_basis", "goodput", "gpus", "nodes",
            "gpu_hours", "node_hours", "wall_clock_hours", "wall_clock_days", "energy_kwh", "energy_basis",
            "facility_energy_kwh", "co2_kg", "site_basis", "charge", "mfu_kind", "interval_level", "gpu_hours_interval",
            "node_hours_interval", "wall_clock_hours_interval", "energy_kwh_interval")
    out = dict.fromkeys(keys)
    if hw is None:
        return out
    est = est or mfu_for(hw, catalog, params, mfu_override, workload, basis, seq_len, stack)
    warnings.extend(hw.warnings)
    warnings.extend(est.warnings)
    if est.kind == "campaign" and goodput < 1:
        warnings.append(f"goodput {goodput:g} is applied on top of the campaign-realised MFU, which already includes "
                        "the restarts, evaluation and failures of published runs")
    gh = float(cost.gpu_hours(flops, hw.peak, est.value)) / goodput
    out.update(accelerator=hw.accelerator.name, cluster=hw.cluster.name if hw.cluster else None, dtype=hw.dtype,
               peak_flops_per_gpu=hw.peak, mfu=est.value, mfu_basis=est.basis, goodput=goodput, gpus=hw.gpus,
               gpu_hours=gh)
    wall = float(cost.wall_clock_hours(gh, hw.gpus)) if hw.gpus else None
    out["wall_clock_hours"] = wall
    out["wall_clock_days"] = wall / 24.0 if wall is not None else None
    if hw.cluster is not None:
        cl = hw.cluster
        out["nodes"] = hw.nodes
        nh = float(cost.node_hours(wall, hw.nodes)) if wall is not None else gh / hw.gpus_per_node
        out["node_hours"] = nh
        out["energy_kwh"] = float(cost.energy_kwh(nh, cl.node_power_kw.value))
        out["energy_basis"] = f"node-hours × {cl.node_power_kw.value:g} kW per node ({cl.status_of(cl.node_power_kw)})"
        out.update(_site_energy(out["energy_kwh"], cl, pue, grid_gco2_per_kwh))
        acct = cl.accounting
        out["charge"] = {
            "unit": acct.unit,
            "amount": nh * acct.units_per_node_hour.value,
            "per_node_hour": acct.units_per_node_hour.value,
            "status": cl.status_of(acct.units_per_node_hour),
        }
    else:
        tdp_kw = hw.accelerator.tdp_w.value / 1000.0
        out["energy_kwh"] = gh * tdp_kw
        out["energy_basis"] = f"GPU-hours × {tdp_kw:g} kW TDP (GPUs only; no host, network or PUE)"
        out.update(_site_energy(out["energy_kwh"], None, pue, grid_gco2_per_kwh))
    out["mfu_kind"] = est.kind
    factors = est.interval_factors(INTERVAL_LEVEL)
    if factors is not None:
        out["interval_level"] = INTERVAL_LEVEL
        for key in ("gpu_hours", "node_hours", "wall_clock_hours", "energy_kwh"):
            if out[key] is not None:
                out[f"{key}_interval"] = [out[key] * factors[0], out[key] * factors[1]]
        if out["charge"] is not None:
            out["charge"]["interval"] = [out["charge"]["amount"] * factors[0], out["charge"]["amount"] * factors[1]]
    return out


def _site_energy(it_kwh: float, cluster: Cluster | None, pue: float | None, grid: float | None) -> dict:
    """Facility energy (× PUE) and CO2 (× the grid's intensity), from the options or the cluster's
    published values; None where neither says (a PUE of 1 would be a silent guess)."""
    parts = []
    if pue is None and cluster is not None and cluster.pue is not None:
        pue = cluster.pue.value
        parts.append(f"PUE {pue:g} ({cluster.status_of(cluster.pue)}: {cluster.cite(cluster.pue)})")
    elif pue is not None:
        parts.append(f"PUE {pue:g} (given)")
    facility = it_kwh * pue if pue is not None else None
    if grid is None and cluster is not None and cluster.grid_gco2_per_kwh is not None:
        grid = cluster.grid_gco2_per_kwh.value
        parts.append(f"{grid:g} gCO2/kWh ({cluster.status_of(cluster.grid_gco2_per_kwh)}: {cluster.cite(cluster.grid_gco2_per_kwh)})")
    elif grid is not None:
        parts.append(f"{grid:g} gCO2/kWh (given)")
    co2 = (facility if facility is not None else it_kwh) * grid / 1000.0 if grid is not None else None
    if co2 is not None and facility is None:
        parts.append("no PUE known: CO2 from IT energy alone, an underestimate")
    return {"facility_energy_kwh": facility, "co2_kg": co2, "site_basis": "; ".join(parts) or None}


def memory_check(model, hw: Hardware | None, catalog: Catalog, warnings: list[str], seq_len: int | None = None) -> dict | None:
    """Minimum nodes (or GPUs) that hold the model for training, and whether the requested count does.

    `model` is a catalog model or a bare parameter count (then an assumed shape, which the notes state).
    """
    if hw is None:
        return None
    from planner.layout import best_layout, min_nodes
    from planner.memory import GIB

    try:
        extra = {"seq_len": int(seq_len)} if seq_len else {}  # activations grow with the sequence
        smallest = min_nodes(model, hw.cluster, hw.accelerator, **extra)
        chosen = best_layout(model, hw.accelerator, hw.gpus, hw.gpus_per_node, **extra) if hw.gpus else None
    except PlannerError as exc:
        warnings.append(f"memory not checked: {exc.message}")
        return None
    unit = "nodes" if hw.cluster else "GPUs"
    out = {"unit": unit, "min": smallest.units if smallest else None,
           "min_layout": smallest.layout.describe() if smallest else None}
    if smallest is None:
        where = f"all {int(hw.cluster.nodes.value)} nodes of {hw.cluster.name}" if hw.cluster and hw.cluster.nodes else "any count searched"
        warnings.append(f"the model does not fit in GPU memory on {where} with the layouts searched (planner memory)")
    if chosen is not None:
        br = chosen.breakdown
        out.update(layout=chosen.layout.describe(), fits=br.fits, per_gpu_gib=br.total / GIB, usable_gib=br.usable / GIB)
        if br.fits and chosen.layout.recompute == "full":
            easier = f"; selective recompute fits from {smallest.units} {unit}" if smallest and smallest.layout.recompute != "full" else ""
            warnings.append(f"on {hw.gpus} GPUs only full activation recompute fits: it repeats the forward pass "
                            f"(~33% more compute), so expect about 3/4 of the profile's MFU, which was measured with "
                            f"selective or no recompute (Narayanan et al. 2021){easier}")
        if not br.fits:
            need = f"; at least {smallest.units} {unit} do" if smallest else ""
            warnings.append(f"the requested {hw.gpus} GPUs cannot hold the model: the leanest layout ({chosen.layout.describe()}) "
                            f"needs {br.total / GIB:.1f} GiB per GPU, {br.usable / GIB:.1f} GiB usable{need}")
    return out
