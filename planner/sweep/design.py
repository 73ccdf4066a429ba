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
later segment, a resubmission or a requeue; load the run's checkpoint when it is 1); with `shape:` and
`hyperparameters:` (planner.sweep.setup) {n_layers} {d_model} {n_heads} {n_kv_heads} {ffn} {lr} {batch_size}
{batch_tokens} {warmup} {steps}. {{ and }} are literal braces; ${VAR} is left alone.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from planner.catalog import Catalog, Cluster, Partition
from planner.costing import cost, mfu
from planner.costing.hardware import Hardware, hardware_costs, hardware_for
from planner.costing.mfu_basis import benchmark_errors, check_dtype, mfu_many
from planner.costing.runs import clip_run, run_shape
from planner.errors import PlannerWarning, located, unknown_name
from planner.sweep.ladder import LadderCost, array_key, costs, fewest_nodes, nodes_within, rung_for, rungs
from planner.sweep.limits import Limits, SlurmAnswer, resolve, submit_warnings
from planner.sweep.rules import check_spec
from planner.sweep.setup import placement_law, run_setups
from planner.sweep.slurm import check_path, round_up_time

# load_spec and parse_spec are re-exported: the sweep API is load a spec, then design it
from planner.sweep.spec import MANAGED, NAME_RE, ClipModel, Isoflop, Source, SweepSpec, load_spec, parse_spec  # noqa: F401
from planner.training import RunSetup

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
    setup: RunSetup | None = None  # shape and hyperparameters, when the spec asks for them (planner.training)


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
    limits: Limits | None = None  # the Slurm limits designed against, and their source
    ladder: tuple[list[LadderCost], LadderCost] | None = None  # nodes: auto: what rounding to the node ladder costs


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
        law = placement_law(spec, catalog, src)
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


def design(spec: SweepSpec, src: Source, catalog: Catalog, out_dir: Path, account: str | None = None,
           slurm: SlurmAnswer | None = None) -> Sweep:
    """Runs, their hours (from `hardware_costs`), time limits, chains and arrays. No files are touched.
    `slurm`: what the Slurm at hand said (planner.sweep.limits.read_live); None designs against the catalog."""
    if isinstance(spec.sweep, Isoflop) and spec.sweep.gpu_hours is not None:
        return _design_for_hours(spec, spec.sweep, spec.sweep.gpu_hours, src, catalog, out_dir, account, slurm)
    sw = _design(spec, src, catalog, out_dir, account, slurm)
    if spec.sweep.kind in ("isoflop", "ladder") and len(sw.runs) > 1:
        flops = [6.0 * r.params * r.tokens for r in sw.runs]  # the law's compute: the span a fit will see
        span = math.log10(max(flops) / min(flops))
        if span < MIN_DECADES:
            sw.warnings.append(PlannerWarning("sweep", f"the runs span {span:.2g} decades of compute: a law fitted on them is a "
                                              f"guess beyond them; compare procedures over at least {MIN_DECADES:g} decades"))
    return sw


def _round_sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits - 1}e}")


def _design_for_hours(spec: SweepSpec, s: Isoflop, gpu_hours: float, src: Source, catalog: Catalog, out_dir: Path,
                      account: str | None, slurm: SlurmAnswer | None) -> Sweep:
    """An IsoFLOP sweep (`s`, the spec's) whose budgets are log-spaced over `decades` and scaled so that all
    its runs together cost at most `gpu_hours` (the same GPU-hours `planner plan` gives each run)."""
    fractions = 10.0 ** (s.decades * (np.arange(s.n_budgets) / (s.n_budgets - 1) - 1.0))  # ..., C_max/10^decades .. C_max

    def trial(c_max: float) -> tuple[Sweep, float, list[float]]:
        budgets = [_round_sig(c_max * f) for f in fractions]
        sw = design(spec.model_copy(update={"sweep": s.model_copy(update={"budgets": budgets, "gpu_hours": None})}),
                    src, catalog, out_dir, account, slurm)
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


def _design(spec: SweepSpec, src: Source, catalog: Catalog, out_dir: Path, account: str | None = None,
            slurm: SlurmAnswer | None = None) -> Sweep:
    with located(src, "cluster"):
        cluster = catalog.cluster(spec.cluster)
    with located(src, "partition"):
        partition = cluster.partition(spec.partition)
    check_spec(spec, src, account)
    out_abs = check_path(os.path.abspath(out_dir), "out_dir")
    workdir = out_abs if spec.workdir is None else os.path.normpath(os.path.join(src.directory, spec.workdir))
    with located(src, "workdir"):
        check_path(workdir, "workdir")
    with located(src, "max_array_size"):
        limits = resolve(cluster, partition, spec.max_array_size, slurm, account or spec.account)

    points, convention, warnings = _points(spec, catalog, src)
    warnings += [PlannerWarning("partition", w) for w in limits.warnings]
    setups = run_setups(spec, src, catalog, [(p[2], p[3]) for p in points], warnings)
    if spec.shape is not None:  # the real shape's FLOPs size the hours and time limits, not the assumed width
        points = [(*pt[:4], st.shape_flops or pt[4], *pt[5:]) for pt, st in zip(points, setups, strict=True)]
        convention = (f"the FLOPs of each run's {spec.shape.recipe} shape (every matmul, attention over sequence "
                      f"{spec.seq_len}, forward and backward; budgets are the law's 6ND compute)")
    gpn = cluster.gpus_per_node_int
    tasks = spec.tasks_per_node or gpn
    cpus = spec.cpus_per_task or max(1, int(cluster.cpu_cores_per_node.value) // tasks)
    with located(src, "node_ladder"):
        ladder = rungs(spec.node_ladder, limits.max_nodes) if spec.nodes == "auto" else None

    @functools.cache
    def hardware_at(nodes: int) -> Hardware:  # one Hardware per node count, shared by the node search and the costing
        return hardware_for(catalog, cluster=cluster.name, nodes=nodes, dtype=spec.dtype)

    runs: list[Run] = []
    unrounded: dict[str, Run] = {}  # the runs the ladder raised, on the nodes they had before
    width = len(str(len(points) - 1))
    fewest: dict[int, int] = {}
    for i, (label, model, p, t, flops, budget, run_nodes) in enumerate(points):
        nodes, run_id = run_nodes or spec.nodes, f"{spec.name}-{i:0{width}d}-{label}"
        if nodes == "auto":
            if p not in fewest:
                fewest[p] = fewest_nodes(p, cluster, catalog, src)
            nodes = fewest[p]
            if spec.target_hours is not None:
                nodes = nodes_within(spec, spec.target_hours, p, flops, nodes, catalog, limits.max_nodes, hardware_at)
            with located(src, "node_ladder"):
                rung = rung_for(nodes, ladder, run_id) if ladder is not None else nodes
            if rung != nodes:
                unrounded[run_id] = Run(run_id, model, p, t, flops, budget, nodes)
            nodes = rung
        if nodes > limits.max_nodes:
            with located(src, "nodes"):
                hardware_at(nodes)  # beyond the whole cluster: its own error
            raise src.error(("nodes",), f"{nodes} nodes exceed the {limits.max_nodes}-node limit of partition "
                            f"{partition.name} (from {limits.origin})")
        runs.append(Run(run_id, model, p, t, flops, budget, nodes, setup=setups[i]))
    mfu_basis, profiles, mfu_errors = _cost(spec, runs, hardware_at, catalog, src, warnings, limits)
    if spec.nodes == "auto" and spec.target_hours is not None and (over := [r for r in runs if r.est_hours > spec.target_hours]):
        worst = max(over, key=lambda r: r.est_hours)
        warnings.append(PlannerWarning("sweep", f"{len(over)} run(s) miss target_hours {spec.target_hours:g} h at the "
                                       f"{limits.max_nodes}-node limit: the longest, {worst.run_id}, takes "
                                       f"{worst.est_hours:.3g} h on {worst.nodes} nodes in {worst.segments} segment(s)"))
    # the un-rounded runs are a yardstick, not jobs: a chain longer than max_segments is no error there
    _cost(spec.model_copy(update={"max_segments": 10**9}), list(unrounded.values()), hardware_at, catalog, src, [], limits)
    unrounded = {r.run_id: replace(unrounded.get(r.run_id, r)) for r in runs}  # before arrays share time limits

    def chunks(of: Iterable[Run], share_time: bool) -> list[list[Run]]:
        groups: dict[tuple, list[Run]] = {}
        for r in of:
            groups.setdefault(array_key(r, share_time), []).append(r)
        return [g[k:k + limits.max_array_size] for _, g in sorted(groups.items()) for k in range(0, len(g), limits.max_array_size)]

    arrays = []
    members_of = chunks(runs, share_time=ladder is not None)
    for j, members in enumerate(members_of):
        aid = f"a{j:0{max(2, len(str(len(members_of) - 1)))}d}"
        minutes = max(r.time_minutes for r in members)
        for k, r in enumerate(members):
            r.array, r.index, r.time_minutes = aid, k, minutes
        arrays.append(Array(aid, members, members[0].nodes, minutes, members[0].segments,
                            min(spec.max_concurrent, len(members)), _signal_for(spec, minutes)))
    tasks_submitted = sum(len(a.runs) * a.segments for a in arrays)
    warnings += [PlannerWarning("partition", w) for w in submit_warnings(limits, len(arrays), tasks_submitted)]
    ladder_costs = costs(arrays, unrounded, len(chunks(unrounded.values(), False))) if ladder is not None else None
    return Sweep(spec, cluster, partition, account or spec.account, out_abs, workdir, runs, arrays, tasks, cpus,
                 convention, "; ".join(sorted(mfu_basis)), list(dict.fromkeys(warnings)), mfu_errors=mfu_errors,
                 mfu_profiles=tuple(sorted(profiles)), limits=limits, ladder=ladder_costs)


def _signal_for(spec: SweepSpec, minutes: int) -> int:  # the warning must come well inside the job
    return min(spec.signal_seconds, minutes * 30)


def _cost(spec: SweepSpec, runs: list[Run], hardware_at: Callable[[int], Hardware], catalog: Catalog, src: Source,
          warnings: list[PlannerWarning], limits: Limits) -> tuple[set[str], set[str], tuple[float, ...]]:
    """Each run's figures from `hardware_costs`, its time limit and segments; the MFU bases, profiles and errors."""
    limit_min = limits.max_minutes
    by_nodes: dict[int, list[Run]] = {}
    for r in runs:
        by_nodes.setdefault(r.nodes, []).append(r)
    mfu_basis, profiles = set(), set()
    mfu_errors: tuple[float, ...] = ()
    for nodes, group in sorted(by_nodes.items()):
        with located(src, "nodes"):
            hw = hardware_at(nodes)
        estimates = _mfu_estimates(spec, hw, catalog, [r.params for r in group], src, warnings)
        for r, est in zip(group, estimates, strict=True):
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
                usable = limit_min * 60 - _signal_for(spec, limit_min)
                r.segments, r.time_minutes = math.ceil(need * 60.0 / usable - 1e-9), limit_min
                if r.segments > spec.max_segments:
                    raise src.error(("nodes",), f"run {r.run_id} needs {r.segments} segments of {limit_min} min on "
                                    f"{nodes} node(s) (estimate {r.est_hours:.3g} h; limits from {limits.origin}); "
                                    "give it more nodes or raise max_segments")
    return mfu_basis, profiles, mfu_errors
