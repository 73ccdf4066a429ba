"""`planner sweep`: a YAML spec → the runs of a scaling-law sweep, each costed by `hardware_costs`
(the function behind `planner plan`), with Slurm time limits, segment chains and job arrays; the files
are rendered by `planner.sweep.slurm`. examples/sweeps/isoflop-juwels.yaml documents every key.

Spec kinds (`sweep.kind`): `isoflop` (budgets, points, span: model sizes log-spaced over
N_opt/span .. N_opt·span around the law's optimum, tokens = C/6N), `ladder` (params, tokens_per_param or
the law's compute-optimal tokens, multipliers for over-training), `list` (runs: params, tokens, name,
nodes), `samples` for CLIP-style runs (models: catalog names, or name, params, gmacs_per_sample; samples_seen;
FLOPs = 6 × GMACs/sample × 1e9 × samples, Cherti et al. 2023). Numbers accept 1e18, 400M, 1.5B, 2T.
Unknown keys are errors that list the valid ones, with the file and line.

`command` is shell code, run once per run and segment. Placeholders become shell variables at run time
({params} → ${PLANNER_PARAMS}), so a value is never parsed as code: {run_id} {array} {index} (array
task) {model} {params} {tokens} {samples} (= tokens) {flops} {budget} {nodes} {gpus} {est_hours}
{time_limit} {segment} (1-based) {segments} {out_dir} (the sweep directory) {name} {result_file} (write
the final loss there, for `planner collect`) {done_file} (touch it
when the run has finished: later segments and re-submissions skip the run, and `planner status` counts
it completed) {resume} (0 on a run's first attempt, 1 once an attempt of it has started before: a
later segment, a resubmission or a requeue; load the run's checkpoint when it is 1). {{ and }} are
literal braces; ${VAR} is left alone.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from planner.catalog import Catalog, Cluster, Partition
from planner.costing import cost, mfu
from planner.costing.hardware import Hardware, hardware_costs, hardware_for
from planner.costing.mfu_basis import benchmark_errors, check_dtype, mfu_many
from planner.costing.runs import clip_run, run_shape
from planner.errors import PlannerWarning, located, unknown_name
from planner.sweep.rules import check_spec
from planner.sweep.slurm import check_path, round_up_time

# load_spec and parse_spec are re-exported: the sweep API is load a spec, then design it
from planner.sweep.spec import MANAGED, NAME_RE, ClipModel, Isoflop, Source, SweepSpec, load_spec, parse_spec  # noqa: F401

# --- design -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    run_id: str
    model: str
    params: int
    tokens: int
    flops: float
    budget: float | None
    nodes: int
    gpus: int = 0
    mfu: float = 0.0
    gpu_hours: float = 0.0
    gpu_hours_low: float = 0.0  # the 80% prediction interval of the estimate
    gpu_hours_high: float = 0.0
    node_hours: float = 0.0
    charge: float = 0.0
    est_hours: float = 0.0
    time_minutes: int = 0
    segments: int = 1
    array: str = ""
    index: int = 0


@dataclass
class Array:
    id: str
    runs: list[Run]
    nodes: int
    time_minutes: int
    segments: int
    throttle: int
    signal_seconds: int


@dataclass
class Sweep:
    spec: SweepSpec
    cluster: Cluster
    partition: Partition
    account: str | None
    out_dir: str  # absolute
    workdir: str  # absolute
    runs: list[Run]
    arrays: list[Array]
    tasks_per_node: int
    cpus_per_task: int
    flops_convention: str
    mfu_basis: str
    warnings: list[PlannerWarning]
    notes: list[str] = field(default_factory=list)
    mfu_errors: tuple[float, ...] = ()  # out-of-sample ln errors of the MFU estimate (one estimator for every run)
    mfu_profiles: tuple[str, ...] = ()  # the measured MFU profiles the runs' MFU was read from


def _short(x: float) -> str:
    x = float(f"{x:.3g}")  # round first, so 999,950 reads 1M rather than 1e+03K
    for scale, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if x >= scale:
            text = f"{x / scale:.3g}{suffix}"
            return _sci(x) if "e" in text else text
    return f"{x:.3g}"


def _sci(x: float) -> str:
    mantissa, _, exp = f"{x:.3g}".partition("e")
    return f"{mantissa}e{int(exp)}" if exp else mantissa


def _clip_model(m: ClipModel, catalog: Catalog, src: Source, i: int) -> tuple[float, float]:
    """Parameters and GMACs per sample: as given, or from the model catalog."""
    if m.params is not None:
        assert m.gmacs_per_sample is not None  # ClipModel._both_or_neither
        return m.params, m.gmacs_per_sample
    if m.name not in (names := catalog.names("models")):
        raise src.error(("sweep", "models", i), unknown_name("model", m.name, names, otherwise="give params and gmacs_per_sample"))
    model = catalog.model(m.name)
    if model.gmacs_per_sample is None:
        raise src.error(("sweep", "models", i), f"{model.name} is not a CLIP model (no GMACs per sample in the catalog)")
    return model.params, model.gmacs_per_sample.value


def _law(spec: SweepSpec, catalog: Catalog, src: Source):
    """The law that places the runs: a catalog name, or your own law file (the fit → sweep loop)."""
    if spec.law_file is None:
        with located(src, "law"):
            return catalog.law(spec.law)
    from planner.laws import Law
    from planner.yamlio import load_model

    path = Path(src.directory) / spec.law_file
    if not path.is_file():
        raise src.error(("law_file",), f"law file '{spec.law_file}' not found (looked for {path})")
    return load_model(Law, path)


# a run as the spec kind places it: (tag, params, tokens, budget, nodes), sizes not yet rounded
Placed = tuple[str, float, float, float | None, int | None]
# a run ready to cost: (label, model, params, tokens, flops, budget, nodes)
Point = tuple[str, str, int, int, float, float | None, int | None]


def _points(spec: SweepSpec, catalog: Catalog, src: Source) -> tuple[list[Point], str, list[PlannerWarning]]:
    """(label, model, params, tokens, flops, budget, nodes) per run, the FLOPs convention, warnings."""
    s = spec.sweep
    warnings: list[PlannerWarning] = []
    out: list[Point] = []
    if s.kind == "samples":
        for i, m in enumerate(s.models):
            size, gmacs = _clip_model(m, catalog, src, i)
            for n in s.samples_seen:
                samples = int(round(n))
                out.append((f"{m.name}-S{_short(samples)}", m.name, int(round(size)), samples,
                            clip_run(gmacs).flops(size, samples), None, None))
        return out, "C = 6 × GMACs/sample × 1e9 × samples seen (Cherti et al. 2023)", warnings
    rows: list[Placed]
    if s.kind == "list":
        rows = [(e.name or "", e.params, e.tokens, None, e.nodes) for e in s.runs]
    else:
        law = _law(spec, catalog, src)
        if s.kind == "isoflop":
            assert s.budgets is not None  # design() turns gpu_hours into budgets (Isoflop gives one or the other)
            budgets = np.asarray(s.budgets, dtype=float)
            steps = np.linspace(-1.0, 1.0, s.points) if s.points > 1 else np.zeros(1)
            grid = np.outer(law.optimal_params(budgets), s.span ** steps)  # log-spaced around N_opt
            params = np.rint(grid)
            tokens = np.rint(budgets[:, None] / (6.0 * np.maximum(params, 1.0)))
            rows = [(f"C{_sci(c)}", params[i, j], tokens[i, j], c, None)
                    for i, c in enumerate(s.budgets) for j in range(len(steps))]
            warnings += [w for w in (law.extrapolation(c) for c in s.budgets) if w]
        else:
            sizes = np.asarray(s.params, dtype=float)
            base = sizes * s.tokens_per_param if s.tokens_per_param else law.flops_for_params(sizes) / (6.0 * sizes)
            rows = [("", sizes[i], base[i] * m, None, None) for i in range(len(sizes)) for m in s.multipliers]
    shape = run_shape(None, spec.seq_len, spec.flops_convention)  # what a plan of N parameters and D tokens costs
    for tag, placed_p, placed_t, budget, nodes in rows:
        p, t = int(round(float(placed_p))), int(round(float(placed_t)))
        if p < 1 or t < 1:
            raise src.error(("sweep",), f"a run rounds to {p} parameters and {t} tokens; use larger budgets")
        label = "-".join(x for x in (tag, f"N{_short(p)}", f"D{_short(t)}" if budget is None else "") if x)
        out.append((label, tag if spec.sweep.kind == "list" else "", p, t,
                    shape.flops(p, t), budget, nodes))
    if spec.flops_convention == "6ND":
        return out, "6ND", warnings
    return out, (f"6ND+attention: C = (6·N + 12·L·h·s)·D, sequence {spec.seq_len}, width = {cost.ASPECT:g} × layers "
                 "assumed for each size (budgets are the law's 6ND compute)"), warnings


def _mfu_estimates(spec: SweepSpec, hw: Hardware, catalog: Catalog, params: list[int], src: Source,
                   warnings: list[PlannerWarning]) -> list[mfu.MfuEstimate]:
    """`mfu_for` for every run, all sizes at once (`mfu_basis.mfu_many`: the same arithmetic as `plan`;
    tests hold the two equal)."""
    if spec.mfu is not None:
        return [mfu.MfuEstimate(spec.mfu, f"{spec.mfu:g} given in the spec (mfu)")] * len(params)
    workload = "clip" if spec.sweep.kind == "samples" else "dense-lm"
    with located(src, "mfu_profile" if spec.mfu_profile else "mfu"):  # or at the key of the error's field (dtype, ...)
        if spec.mfu_profile is not None:
            profile = catalog.mfu_profile(spec.mfu_profile)
            check_dtype(profile, hw)
            out = [replace(e, kind="benchmark", errors=benchmark_errors(catalog))
                   for e in mfu.estimate_many(profile, hw.accelerator, params, hw.gpus)]
        else:
            out = mfu_many(hw, catalog, params, workload, spec.mfu_basis, spec.seq_len, spec.stack)
    # one warning for all runs, not one per run
    held = [p for p, est in zip(params, out, strict=True) if any(w.topic == "mfu.size" for w in est.warnings)]
    warnings.extend(dict.fromkeys(w for est in out for w in est.warnings if w.topic != "mfu.size"))
    if held:
        warnings.append(PlannerWarning("mfu.size", f"MFU for {len(held)} run(s) of {min(held):.3g}-{max(held):.3g} parameters "
                                       "is extrapolated beyond the sizes it was measured or calibrated on"))
    return [replace(est, warnings=()) for est in out]


MIN_DECADES = 2.0  # the span below which a fitted law is a guess (Hoffmann et al. fit over ~4 decades)


def design(spec: SweepSpec, src: Source, catalog: Catalog, out_dir: Path, account: str | None = None) -> Sweep:
    """Runs, their hours (from `hardware_costs`), time limits, chains and arrays. No files are touched."""
    if isinstance(spec.sweep, Isoflop) and spec.sweep.gpu_hours is not None:
        return _design_for_hours(spec, spec.sweep, spec.sweep.gpu_hours, src, catalog, out_dir, account)
    sw = _design(spec, src, catalog, out_dir, account)
    if spec.sweep.kind in ("isoflop", "ladder") and len(sw.runs) > 1:
        flops = [6.0 * r.params * r.tokens for r in sw.runs]  # the law's compute: the span a fit will see
        span = math.log10(max(flops) / min(flops))
        if span < MIN_DECADES:
            sw.warnings.append(PlannerWarning("sweep", f"the runs span {span:.2g} decades of compute: a law fitted on them is a "
                                              f"guess beyond them; compare procedures over at least {MIN_DECADES:g} decades"))
    return sw


def _fewest_nodes(params: int, cluster: Cluster, catalog: Catalog, src: Source) -> int:
    """`nodes: auto`: the fewest nodes that hold a model of `params` for training (an assumed shape)."""
    from planner.costing.layout import min_nodes

    with located(src, "nodes"):
        fit = min_nodes(float(params), cluster, catalog.accelerator(cluster.accelerator))
    if fit is None:
        raise src.error(("nodes",), f"a model of {params:.3g} parameters does not fit on any node count of {cluster.name}")
    return fit.units


def _nodes_within(spec: SweepSpec, target_hours: float, params: int, flops: float, nodes: int, cluster: Cluster,
                  catalog: Catalog, max_nodes: float | None, hardware_at: Callable[[int], Hardware]) -> int:
    """The fewest nodes (at least `nodes`) on which the run's estimate fits in `target_hours`; the
    partition's (or cluster's) node limit caps it, and the run then becomes a chain."""
    cap = int(max_nodes or (cluster.nodes.value if cluster.nodes is not None else 10**6))
    for _ in range(20):  # MFU falls slowly with GPU count: rescaling converges in a step or two
        hw = hardware_at(nodes)
        hours = hardware_costs(flops, float(params), hw, catalog, None, [], spec.mfu, basis=spec.mfu_basis,
                               seq_len=spec.seq_len, stack=spec.stack).wall_clock_hours
        assert hours is not None  # on a number of nodes a run has a wall-clock
        if hours <= target_hours or nodes >= cap:
            return nodes
        nodes = min(cap, max(nodes + 1, math.ceil(nodes * hours / target_hours)))
    return nodes


def _round_sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits - 1}e}")


def _design_for_hours(spec: SweepSpec, s: Isoflop, gpu_hours: float, src: Source, catalog: Catalog, out_dir: Path,
                      account: str | None) -> Sweep:
    """An IsoFLOP sweep (`s`, the spec's) whose budgets are log-spaced over `decades` and scaled so that all
    its runs together cost at most `gpu_hours` (the same GPU-hours `planner plan` gives each run)."""
    fractions = 10.0 ** (s.decades * (np.arange(s.n_budgets) / (s.n_budgets - 1) - 1.0))  # ..., C_max/10^decades .. C_max

    def trial(c_max: float) -> tuple[Sweep, float, list[float]]:
        budgets = [_round_sig(c_max * f) for f in fractions]
        sw = design(spec.model_copy(update={"sweep": s.model_copy(update={"budgets": budgets, "gpu_hours": None})}),
                    src, catalog, out_dir, account)
        return sw, sum(r.gpu_hours for r in sw.runs), budgets

    with located(src, "cluster"):
        peak = catalog.accelerator(catalog.cluster(spec.cluster).accelerator).peak_flops(spec.dtype)
    c_max = gpu_hours * 3600.0 * peak * 0.4 / (s.points * fractions.sum())  # a first guess at MFU 0.4
    for _ in range(60):  # GPU-hours are nearly proportional to compute: a few rescalings converge
        sw, hours, budgets = trial(c_max)
        if hours <= gpu_hours and hours > gpu_hours * 0.99:
            break
        c_max *= gpu_hours / hours * (0.997 if hours > gpu_hours else 1.0)
    else:
        raise src.error(("sweep", "gpu_hours"), f"could not fit the budgets to {gpu_hours:g} GPU-hours")
    sw.notes.append(f"budgets: {s.n_budgets} log-spaced over {s.decades:g} decades up to {budgets[-1]:.3g} FLOPs, "
                    f"so that the {len(sw.runs)} runs cost {hours:,.0f} of the {gpu_hours:,.0f} GPU-hours given")
    return sw


def _design(spec: SweepSpec, src: Source, catalog: Catalog, out_dir: Path, account: str | None = None) -> Sweep:
    with located(src, "cluster"):
        cluster = catalog.cluster(spec.cluster)
    with located(src, "partition"):
        partition = cluster.partition(spec.partition)
    check_spec(spec, src, account)
    out_abs = check_path(os.path.abspath(out_dir), "out_dir")
    workdir = out_abs if spec.workdir is None else os.path.normpath(os.path.join(src.directory, spec.workdir))
    with located(src, "workdir"):
        check_path(workdir, "workdir")

    points, convention, warnings = _points(spec, catalog, src)
    gpn = cluster.gpus_per_node_int
    tasks = spec.tasks_per_node or gpn
    cpus = spec.cpus_per_task or max(1, int(cluster.cpu_cores_per_node.value) // tasks)
    max_nodes = partition.max_nodes.value if partition.max_nodes else None
    limit_min = max(1, math.floor(partition.max_wall_hours.value * 60 + 1e-9))  # Slurm limits are whole minutes

    def signal_for(minutes: int) -> int:  # the warning must come well inside the job
        return min(spec.signal_seconds, minutes * 30)

    runs: list[Run] = []
    width = len(str(len(points) - 1))
    by_nodes: dict[int, list[int]] = {}
    fewest: dict[int, int] = {}

    @functools.cache
    def hardware_at(nodes: int) -> Hardware:  # one Hardware per node count, shared by the node search and the costing
        return hardware_for(catalog, cluster=cluster.name, nodes=nodes, dtype=spec.dtype)

    for i, (label, model, p, t, flops, budget, run_nodes) in enumerate(points):
        nodes = run_nodes or spec.nodes
        if nodes == "auto":
            if p not in fewest:
                fewest[p] = _fewest_nodes(p, cluster, catalog, src)
            nodes = fewest[p]
            if spec.target_hours is not None:
                nodes = _nodes_within(spec, spec.target_hours, p, flops, nodes, cluster, catalog, max_nodes, hardware_at)
        if max_nodes is not None and nodes > max_nodes:
            raise src.error(("nodes",), f"{nodes} nodes exceed the {int(max_nodes)}-node limit of partition {partition.name}")
        runs.append(Run(f"{spec.name}-{i:0{width}d}-{label}", model, p, t, flops, budget, nodes))
        by_nodes.setdefault(nodes, []).append(i)
    mfu_basis, profiles = set(), set()
    mfu_errors: tuple[float, ...] = ()
    for nodes, idx in sorted(by_nodes.items()):
        with located(src, "nodes"):
            hw = hardware_at(nodes)
        estimates = _mfu_estimates(spec, hw, catalog, [runs[i].params for i in idx], src, warnings)
        for i, est in zip(idx, estimates, strict=True):
            r = runs[i]
            c = hardware_costs(r.flops, float(r.params), hw, catalog, est, warnings)
            # on a cluster's nodes every figure of a run is known
            assert c.gpus is not None and c.mfu is not None and c.gpu_hours is not None and c.node_hours is not None
            assert c.charge is not None and c.wall_clock_hours is not None
            r.gpus, r.mfu, r.gpu_hours, r.node_hours = c.gpus, c.mfu, c.gpu_hours, c.node_hours
            r.gpu_hours_low, r.gpu_hours_high = c.gpu_hours_interval or (r.gpu_hours, r.gpu_hours)
            r.charge, r.est_hours = c.charge.amount, c.wall_clock_hours
            mfu_basis.add(est.basis)
            profiles.update([est.profile] if est.profile else [])
            mfu_errors = est.errors
            need = r.est_hours * (1.0 + spec.time_margin) * 60.0  # minutes
            if need <= limit_min:
                r.time_minutes = max(1, min(limit_min, round_up_time(need, spec.time_step_minutes)))
            else:  # a chain: each full segment loses its last signal_seconds to checkpointing
                usable = limit_min * 60 - signal_for(limit_min)
                r.segments, r.time_minutes = math.ceil(need * 60.0 / usable - 1e-9), limit_min
                if r.segments > spec.max_segments:
                    raise src.error(("nodes",), f"run {r.run_id} needs {r.segments} segments of {limit_min} min on "
                                    f"{nodes} node(s) (estimate {r.est_hours:.3g} h); give it more nodes or raise max_segments")

    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        groups.setdefault((r.nodes, r.time_minutes, r.segments), []).append(r)
    chunks = [(key, g[k:k + spec.max_array_size]) for key, g in sorted(groups.items())
              for k in range(0, len(g), spec.max_array_size)]
    arrays = []
    for j, ((nodes, minutes, segments), members) in enumerate(chunks):
        aid = f"a{j:0{max(2, len(str(len(chunks) - 1)))}d}"
        for k, r in enumerate(members):
            r.array, r.index = aid, k
        arrays.append(Array(aid, members, nodes, minutes, segments, min(spec.max_concurrent, len(members)), signal_for(minutes)))
    return Sweep(spec, cluster, partition, account or spec.account, out_abs, workdir, runs, arrays, tasks, cpus,
                 convention, "; ".join(sorted(mfu_basis)), list(dict.fromkeys(warnings)), mfu_errors=mfu_errors,
                 mfu_profiles=tuple(sorted(profiles)))
