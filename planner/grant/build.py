"""`planner grant`: a proposal (YAML, planner.grant.proposal) → run-by-run resource table in the call's
unit, contingency, storage, burn plan by allocation period. Pure functions over the catalog;
rendering is grant_render.

Every run is costed by `hardware_costs` (as `planner plan` and `planner sweep` do), so a row's
GPU-hours are the ones `plan` prints for the same run. Units and period rules come from the
program file (catalogs/programs), never from code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from planner.catalog import Catalog
from planner.costing.hardware import hardware_costs, hardware_for
from planner.costing.intervals import error_interval, error_quantile
from planner.costing.mfu_basis import INTERVAL_LEVEL, mfu_for
from planner.costing.money import Cost, Price, given_price, money_cost, price_for
from planner.costing.plan import build_request
from planner.costing.regulation import regulatory_warnings
from planner.costing.runs import clip_run, run_shape
from planner.costing.scaling import ScalingTable, measurements_from_csv, strong_scaling
from planner.errors import PlannerWarning, located
from planner.grant.burn import burn_plan
from planner.grant.document import (
    CitedText,
    ClusterInfo,
    GrantDocument,
    GrantRow,
    MultiSystemGrant,
    ProgramInfo,
    RowCost,
    Subtotal,
    SweepRun,
)
from planner.grant.method import method_facts
from planner.grant.programs import Program, check_thresholds
from planner.grant.proposal import (
    Experiment,
    Proposal,
    ScalingEvidence,
    Where,
    load_proposal,  # noqa: F401  (the grant API: load a proposal, then build it)
    start_month,
)
from planner.grant.schedule import schedule
from planner.grant.storage import storage, storage_tb
from planner.grant.units import conversion
from planner.sweep.spec import Source

# --- rows -----------------------------------------------------------------------------------------


def _run_row(exp: Experiment, p: Proposal, catalog: Catalog, where: Where, i: int, warnings: list[PlannerWarning]) -> RowCost:
    """A training run (catalog model, params + tokens, or inline CLIP) costed by hardware_costs, × runs."""
    at = ("experiments", i)
    mfu = exp.mfu if exp.mfu is not None else p.mfu
    goodput = exp.goodput if exp.goodput is not None else p.goodput
    name, stated_params, gmacs = None, exp.params, None
    citations: tuple[str, ...] = ()
    if exp.kind == "model":
        assert exp.model is not None  # Experiment._one_kind
        with located(where, *at, "model"):
            m = catalog.model(exp.model)
        name, stated_params = m.name, m.params
        if m.kind == "clip":
            if exp.samples is None or exp.tokens is not None:
                raise where.error(at + ("samples",), f"{m.name} is a CLIP model: give samples (samples seen), not tokens")
            gmacs = m.gmacs_per_sample.value
            clip = clip_run(gmacs)
            params, workload, conv = m.params, clip.workload, clip.convention
            flops = clip.flops(params, exp.samples)
            citations = (m.cite(m.gmacs_per_sample),)
        else:
            if exp.tokens is None or exp.samples is not None:
                raise where.error(at + ("tokens",), f"{m.name} is a language model: give tokens, not samples")
            rs = run_shape(m, p.seq_len)
            params, workload, conv = m.active_params, rs.workload, rs.convention
            flops = rs.flops(params, exp.tokens)
            citations = (m.cite(m.params_active),) if m.kind == "moe-lm" else ()
    elif exp.kind == "clip":
        # Experiment._one_kind: an inline CLIP model gives gmacs_per_sample, params and samples
        assert exp.gmacs_per_sample is not None and exp.params is not None and exp.samples is not None
        gmacs = exp.gmacs_per_sample
        clip = clip_run(gmacs)
        params, workload, conv = exp.params, clip.workload, clip.convention
        flops = clip.flops(params, exp.samples)
    else:
        assert exp.params is not None and exp.tokens is not None  # Experiment._one_kind: params need tokens
        rs = run_shape(None, p.seq_len)
        params, workload, conv = exp.params, rs.workload, rs.convention
        flops = rs.flops(params, exp.tokens)
    seq = None if workload == "clip" else rs.seq_len
    with located(where, *at):  # at the key of the error's field: the experiment's nodes, mfu, ..., or the proposal's dtype
        hw = hardware_for(catalog, cluster=p.cluster, nodes=exp.nodes, dtype=p.dtype)
        est = mfu_for(hw, catalog, params, mfu, workload, p.mfu_basis, seq, exp.stack or p.stack)
        c = hardware_costs(flops, params, hw, catalog, est, warnings, mfu, workload, goodput)
    warnings.extend(regulatory_warnings(flops))  # per model trained: the Act counts one model's training compute
    # on the proposal's cluster, at the experiment's nodes (Experiment._one_kind requires them): all known
    assert c.node_hours is not None and c.gpu_hours is not None and c.charge is not None and c.wall_clock_hours is not None
    runs = exp.runs
    basis = c.mfu_basis if mfu is None else f"{mfu:g}, given in the {'experiment' if exp.mfu is not None else 'proposal'}"
    return RowCost(model=name, params=stated_params, tokens=exp.tokens, samples=exp.samples, gmacs_per_sample=gmacs,
                   citations=citations, mfu_errors=tuple(est.errors), mfu_profiles=(est.profile,) if est.profile else (),
                   flops=flops * runs, flops_convention=conv, mfu=c.mfu, mfu_basis=basis, goodput=goodput,
                   nodes=exp.nodes, gpus_per_run=c.gpus, wall_hours_per_run=c.wall_clock_hours,
                   node_hours=c.node_hours * runs, gpu_hours=c.gpu_hours * runs, charge=c.charge.amount * runs,
                   run_gpu_hours=c.gpu_hours, storage_params=(stated_params or params) * runs, runs=runs)


def _sweep_row(exp: Experiment, p: Proposal, catalog: Catalog, where: Where, i: int, base: Path,
               warnings: list[PlannerWarning]) -> RowCost:
    """Every run of a `planner sweep` design (hours from hardware_costs there), summed."""
    from planner.sweep import design as sw

    at = ("experiments", i, "sweep")
    if isinstance(exp.sweep, str):
        path = (base / exp.sweep)
        if not path.is_file():
            raise where.error(at, f"sweep spec '{exp.sweep}' not found (looked for {path})")
        spec, src = sw.load_spec(path)
    else:
        assert exp.sweep is not None  # a sweep experiment (Experiment._one_kind)
        block = dict(exp.sweep)
        inline = {"sweep": block} if "kind" in block else block
        defaults = {"name": re.sub(r"[^A-Za-z0-9._-]+", "-", exp.name).strip("-")[:64] or "sweep", "cluster": p.cluster,
                    "command": "true", "nodes": exp.nodes or 1}
        if exp.law or p.law:
            defaults["law"] = exp.law or p.law
        if p.partition:
            defaults["partition"] = p.partition
        data = {**defaults, **inline}
        given_by = {"law": ("experiments", i, "law") if exp.law else ("law",), "partition": ("partition",),
                    "cluster": ("cluster",), "nodes": ("experiments", i, "nodes")}
        src = InlineSweep(where.filename, where.lines, base, at=at, body="kind" in block,
                          inherited={k: v for k, v in given_by.items() if k in defaults and k not in inline})
        spec = sw.parse_spec(data, src)
    if spec.cluster != p.cluster:
        raise where.error(at, f"the sweep is for cluster '{spec.cluster}', the proposal for '{p.cluster}'")
    update: dict = {}
    if exp.mfu is not None or (spec.mfu is None and p.mfu is not None):
        update["mfu"] = exp.mfu if exp.mfu is not None else p.mfu
    if exp.nodes is not None and isinstance(exp.sweep, str):
        update["nodes"] = exp.nodes
    for key in ("mfu_basis", "stack", "seq_len"):  # the experiment's or proposal's settings, unless the spec states its own
        value = exp.stack if key == "stack" and exp.stack is not None else getattr(p, key)
        given = key in p.model_fields_set or (key == "stack" and exp.stack is not None)
        if value is not None and given and key not in spec.model_fields_set:
            update[key] = value
    if update:
        spec = spec.model_copy(update=update)
    design = sw.design(spec, src, catalog, base)
    if "mfu" in update:
        design.mfu_basis = f"{update['mfu']:g}, given in the {'experiment' if exp.mfu is not None else 'proposal'}"
    warnings.extend(design.warnings)
    goodput = exp.goodput if exp.goodput is not None else p.goodput
    runs, reps = design.runs, exp.runs
    nodes = sorted({r.nodes for r in runs})
    detail = tuple(SweepRun(experiment=exp.name, run_id=r.run_id, params=r.params, tokens=r.tokens, flops=r.flops,
                            nodes=r.nodes, mfu=r.mfu, wall_hours=r.est_hours / goodput, gpu_hours=r.gpu_hours / goodput,
                            node_hours=r.node_hours / goodput, jobs=r.segments) for r in runs)
    given_mfu = "mfu" in update
    return RowCost(
        model=f"{spec.sweep.kind} sweep '{spec.name}'", flops=sum(r.flops for r in runs) * reps,
        flops_convention=spec.flops_convention, mfu_basis=design.mfu_basis, goodput=goodput,
        nodes=nodes[0] if len(nodes) == 1 else None, nodes_range=(nodes[0], nodes[-1]),
        wall_hours_per_run=sum(d.wall_hours for d in detail) / len(detail),
        node_hours=sum(d.node_hours for d in detail) * reps, gpu_hours=sum(d.gpu_hours for d in detail) * reps,
        charge=sum(r.charge for r in runs) / goodput * reps, sweep_runs=detail, runs=len(runs) * reps,
        storage_params=sum(r.params for r in runs) * reps, law=spec.law if spec.sweep.kind in ("isoflop", "ladder") else None,
        mfu_errors=() if given_mfu else tuple(design.mfu_errors), mfu_profiles=() if given_mfu else tuple(design.mfu_profiles),
    )


@dataclass
class InlineSweep(Source):
    """A proposal's inline sweep block read as a sweep spec: its errors name the proposal's keys, at
    their lines (`experiments.0.law` where the experiment gave the law, `experiments.0.sweep.budgets`)."""

    at: tuple = ()  # the block's key path in the proposal
    body: bool = False  # the block is the spec's `sweep:` (it has `kind`), not a whole spec
    inherited: dict[str, tuple] = field(default_factory=dict)  # spec keys the experiment or proposal gave

    def shown(self, path: tuple) -> tuple:
        if path[:1] and path[0] in self.inherited:
            return self.inherited[path[0]] + path[1:]
        if self.body:  # spec keys besides `sweep` are defaults: the block stands for them
            return self.at + path[1:] if path[:1] == ("sweep",) else self.at
        return self.at + path

    def line(self, path: tuple) -> int:
        return super().line(self.shown(path))


def _hours_row(exp: Experiment, p: Proposal, catalog: Catalog, where: Where, i: int) -> RowCost:
    """Jobs that are not training (evaluation, data processing): runs × nodes × wall-hours as stated."""
    assert exp.nodes is not None and exp.wall_hours is not None  # Experiment._one_kind: with wall_hours, nodes
    with located(where, "experiments", i, "nodes"):
        hw = hardware_for(catalog, cluster=p.cluster, nodes=exp.nodes)
    cluster = hw.cluster
    assert cluster is not None  # hardware_for was given the proposal's cluster
    nh = exp.nodes * exp.wall_hours * exp.runs
    per = cluster.accounting.units_per_node_hour.value
    return RowCost(nodes=exp.nodes, gpus_per_run=hw.gpus, wall_hours_per_run=exp.wall_hours, node_hours=nh,
                   gpu_hours=nh * cluster.gpus_per_node_int, charge=nh * per, runs=exp.runs)


def build(p: Proposal, where: Where, base: Path, catalog: Catalog) -> GrantDocument | MultiSystemGrant:
    """The whole grant document as data: rows, totals, storage, burn plan, thresholds, method facts.

    Experiments may name another `cluster` (GCS, for one, takes JUWELS Booster and JUPITER in one
    application): each system then gets its own rows, totals in its own accounting, burn plan and
    thresholds, and the document lists them side by side (`systems`). Requests in different
    units are never added up."""
    for i, exp in enumerate(p.experiments):
        if exp.cluster is not None:
            with located(where, "experiments", i, "cluster"):
                catalog.cluster(exp.cluster)
    systems = list(dict.fromkeys(e.cluster or p.cluster for e in p.experiments))
    if systems == [p.cluster]:
        return _build_system(p, list(range(len(p.experiments))), where, base, catalog)
    home = p.cluster if p.cluster in systems else systems[0]
    parts = []
    for c in systems:
        q = p if c == home else p.model_copy(update={"storage_tb": None, "storage": []})  # stated storage: the home system's
        q = q.model_copy(update={"cluster": c, "partition": p.partition if c == p.cluster else None,
                                 "max_nodes_concurrent": p.max_nodes_concurrent if c == p.cluster else None})
        parts.append(_build_system(q, [i for i, e in enumerate(p.experiments) if (e.cluster or p.cluster) == c],
                                   where, base, catalog))
    return MultiSystemGrant(title=p.title, pi=p.pi, project=p.project, program=parts[0].program, start=parts[0].start,
                            months=p.months, contingency=parts[0].contingency, systems=tuple(parts),
                            warnings=tuple(dict.fromkeys(w for part in parts for w in part.warnings)),
                            provenance=catalog.provenance())


def _build_system(p: Proposal, indices: list[int], where: Where, base: Path, catalog: Catalog) -> GrantDocument:
    """The document for one system: the experiments at `indices` (positions in the proposal, for errors)."""
    with located(where, "program"):
        program: Program = catalog.get("programs", p.program)
    with located(where, "cluster"):
        cluster = catalog.cluster(p.cluster)
    with located(where, "partition"):
        partition = cluster.partition(p.partition)
    warnings: list[PlannerWarning] = []
    unit = p.unit or program.unit.value
    conv = conversion(unit, cluster, catalog, program.peak_basis, program)
    also = tuple(conversion(u.value, cluster, catalog, program.peak_basis, program) for u in program.also
                 if u.value != unit and u.value != conv.unit)
    contingency = p.contingency if p.contingency is not None else program.contingency.default.value
    with located(where, "price_per_gpu_hour"):
        rate = price_for(cluster, given_price(p.price_per_gpu_hour, p.currency))
    rows = []
    for i in indices:
        exp = p.experiments[i]
        if exp.kind == "sweep":
            cost = _sweep_row(exp, p, catalog, where, i, base, warnings)
        elif exp.kind == "wall-hours":
            cost = _hours_row(exp, p, catalog, where, i)
        else:
            cost = _run_row(exp, p, catalog, where, i, warnings)
        units = cost.node_hours * conv.per_node_hour
        if not math.isfinite(units):  # e.g. params: 1e308: more hours than a number holds
            raise where.error(("experiments", i), "its node-hours overflow; check params, tokens, samples, runs and wall_hours")
        n_errors = len(cost.mfu_errors)
        if n_errors and (1 - p.confidence) * n_errors < 3:
            warnings.append(PlannerWarning("request", f"confidence {p.confidence:g}: the {p.confidence:.0%} quantile of {n_errors} "
                                           f"published campaigns' errors rests on their "
                                           f"{max(1, round((1 - p.confidence) * n_errors))} largest; treat the request as a "
                                           "rough upper bound"))
        interval, factor, request = _request(units, cost.mfu_errors, p.confidence)
        first = exp.start_month or 1
        row = GrantRow(**vars(cost), name=exp.name, kind=exp.kind, purpose=exp.purpose, start_month=first,
                       months=exp.months or p.months - first + 1, units=units, units_interval=interval,
                       request_factor=factor, request=request,
                       also={a.unit: cost.node_hours * a.per_node_hour for a in also},
                       storage_tb=storage_tb(exp.storage_tb, exp.checkpoints, cost.storage_params),
                       jobs_per_run=_jobs(partition.max_wall_hours.value, cost), cost=_money(cost.gpu_hours, rate, units, interval))
        most = max(row.nodes_range or (row.nodes or 0,))
        if partition.max_nodes is not None and most > partition.max_nodes.value:
            raise where.error(("experiments", i, "nodes"), f"{most} nodes per run exceed the "
                              f"{partition.max_nodes.value:g}-node limit of partition {partition.name}")
        rows.append(row)
    subtotal, cont, total = (replace(t, cost=_money(t.gpu_hours, rate, t.units, t.units_interval))
                             for t in _totals(rows, [a.unit for a in also], contingency))
    lo, hi = program.contingency.low.value, program.contingency.high.value
    if not lo <= contingency <= hi:
        warnings.append(PlannerWarning("program", f"contingency {contingency:.0%} is outside the usual {lo:.0%}-{hi:.0%} "
                                       "(unverified convention)"))
    if program.systems and cluster.name not in program.systems:
        warnings.append(PlannerWarning("program", f"{program.name} allocates {', '.join(program.systems)} (per the program "
                                       f"file); '{cluster.name}' is not among them"))
    if unit != program.unit.value:
        warnings.append(PlannerWarning("program", f"unit {unit} set in the proposal; {program.name} asks for {program.unit.value}"))
    year, month = start_month(p.start)
    plan = schedule(rows, p, indices, where, warnings)  # the runs in time; the burn plan follows them
    burn = burn_plan(rows, plan, cont.request, contingency, p.period or program.period.value, program, cluster.name, warnings)
    here, everywhere = {p.experiments[i].name for i in indices}, {e.name for e in p.experiments}
    return GrantDocument(
        title=p.title, pi=p.pi, project=p.project,
        program=ProgramInfo(name=program.name, title=program.title, call=program.call, unit=unit,
                            unit_status=program.status_of_fact(program.unit), unit_source=program.cite_fact(program.unit)),
        cluster=ClusterInfo(name=cluster.name, title=cluster.title, partition=partition.name,
                            max_wall_hours=partition.max_wall_hours.value, accelerator=cluster.accelerator,
                            gpus_per_node=cluster.gpus_per_node_int, accounting_unit=cluster.accounting.unit,
                            units_per_node_hour=cluster.accounting.units_per_node_hour.value,
                            accounting_status=cluster.status_of(cluster.accounting.units_per_node_hour)),
        unit=conv, also=also, start=f"{year:04d}-{month:02d}", months=p.months, contingency=contingency, goodput=p.goodput,
        confidence=p.confidence, interval_level=INTERVAL_LEVEL, mfu_basis=p.mfu_basis,
        rows=tuple(rows), subtotal=subtotal, contingency_row=cont, total=total,
        storage=storage(p, rows, [p.experiments[i] for i in indices], program, cluster.name, warnings),
        schedule=plan, burn=burn,
        thresholds=tuple(check_thresholds(program, cluster, catalog, total.node_hours, p.months, warnings)),
        rules=tuple(CitedText(" ".join(r.text.split()), program.status_of_fact(r), program.cite_fact(r))
                    for r in program.rules_for(program.forfeiture, cluster.name)),
        expects=tuple(CitedText(r.text, program.status_of_fact(r), program.cite_fact(r)) for r in program.expects),
        method=tuple(method_facts(rows, cluster, catalog, p, program)),
        scaling=tuple(_scaling(item, j, p, where, base, catalog) for j, item in enumerate(p.scaling)
                      if item.experiment in here or item.experiment not in everywhere),  # unknown names: _scaling says so
        justification_extra=p.justification,
        provenance=catalog.provenance(),
        # energy is not part of a grant request: the node-power caveat would only distract
        warnings=tuple(w for w in dict.fromkeys(warnings) if w.topic != "energy"),
    )


def _money(gpu_hours: float, rate: Price | None, units: float, interval: tuple[float, float] | None) -> Cost | None:
    """A row's (or total's) cost at `rate`, its range the row's range in the call's unit."""
    if rate is None:
        return None
    return money_cost(gpu_hours, rate, (interval[0] / units, interval[1] / units) if interval and units else None)


def _totals(rows: list[GrantRow], also: list[str], contingency: float) -> tuple[Subtotal, Subtotal, Subtotal]:
    """Subtotal, contingency and total of the rows, in every unit; the contingency in whole units."""
    sub_also = {u: sum(r.also[u] for r in rows) for u in also}
    # rows share one throughput estimator, so their errors move together: ranges add up
    interval = None
    if any(r.units_interval for r in rows):
        ranges = [r.units_interval or (r.units, r.units) for r in rows]
        interval = (sum(lo for lo, _ in ranges), sum(hi for _, hi in ranges))
    subtotal = Subtotal("subtotal", sum(r.runs for r in rows), sum(r.node_hours for r in rows), sum(r.gpu_hours for r in rows),
                        sum(r.charge for r in rows), sum(r.units for r in rows), sum(r.request for r in rows), sub_also,
                        interval)
    cont = Subtotal(f"contingency ({contingency:.0%})", None, subtotal.node_hours * contingency,
                    subtotal.gpu_hours * contingency, subtotal.charge * contingency, subtotal.units * contingency,
                    math.ceil(subtotal.request * contingency - 1e-9), {u: v * contingency for u, v in sub_also.items()})
    total = Subtotal("total", subtotal.runs, subtotal.node_hours + cont.node_hours, subtotal.gpu_hours + cont.gpu_hours,
                     subtotal.charge + cont.charge, subtotal.units + cont.units, subtotal.request + cont.request,
                     {u: v + cont.also[u] for u, v in sub_also.items()})
    return subtotal, cont, total


def _scaling(item: ScalingEvidence, j: int, p: Proposal, where: Where, base: Path, catalog: Catalog) -> ScalingTable:
    """The strong-scaling table of one experiment, up to the node count the proposal asks for."""
    at = ("scaling", j)
    names = [e.name for e in p.experiments]
    if item.experiment not in names:
        from planner.errors import unknown_name

        raise where.error(at + ("experiment",), unknown_name("experiment", item.experiment, names))
    exp = p.experiments[names.index(item.experiment)]
    if exp.kind not in ("model", "params"):
        raise where.error(at + ("experiment",), f"'{exp.name}' is a {exp.kind} experiment; strong scaling needs one run "
                          "(a model with tokens or samples, or params with tokens)")
    with located(where, "experiments", names.index(item.experiment)):
        request = build_request({"model": exp.model, "params": [exp.params] if exp.model is None else None,
                                 "tokens": exp.tokens, "samples": exp.samples, "cluster": p.cluster,
                                 "mfu": exp.mfu if exp.mfu is not None else p.mfu, "dtype": p.dtype})
    measured = item.measured or []
    with located(where, *at, "measured"):
        if isinstance(measured, str):
            measured = measurements_from_csv(base / measured, item.global_batch)
    with located(where, *at):
        result = strong_scaling(request, catalog, item.nodes, measured, item.global_batch, up_to=exp.nodes)
    return replace(result, experiment=exp.name, source=item.source)


def _request(units: float, errors: tuple[float, ...], confidence: float) -> tuple[tuple[float, float] | None, float, int]:
    """80% range, request factor and request of a row: the request is the `confidence` quantile of the
    row's out-of-sample error (published campaigns against their estimate), in whole units, never
    below the estimate. Rows with stated hours (wall_hours) or a given MFU request their estimate."""
    interval, factor = None, 1.0
    if errors:
        lo, hi = error_interval(errors, INTERVAL_LEVEL)
        interval, factor = (units * lo, units * hi), max(1.0, error_quantile(errors, confidence))
    wanted = units * factor
    return interval, factor, math.ceil(wanted - 1e-9 * max(1.0, wanted))


def _jobs(limit_hours: float, cost: RowCost) -> int:
    """Slurm jobs per run: a run longer than the partition's wall-time limit is a chain of segments."""
    if cost.sweep_runs:
        return max(d.jobs for d in cost.sweep_runs)
    return max(1, math.ceil(cost.wall_hours_per_run / limit_hours - 1e-9))
