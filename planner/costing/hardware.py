"""Hardware a run uses, and the one function that turns a run's FLOPs into hours, energy and charge."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

from planner.catalog import Accelerator, Catalog, Cluster
from planner.costing import cost, mfu
from planner.costing.mfu_basis import INTERVAL_LEVEL, mfu_for
from planner.costing.money import Cost, GivenPrice, money_cost, price_for
from planner.errors import PlannerError, PlannerWarning, Topic
from planner.yamlio import key_line

# the topic of a warning that a cluster's number is unverified, by the number
UNVERIFIED: dict[str, Topic] = {"node_power_kw": "energy", "accounting": "charge", "gpus_per_node": "hardware"}


@dataclass(frozen=True)
class Hardware:
    accelerator: Accelerator
    cluster: Cluster | None
    dtype: str
    peak: float  # dense FLOP/s per GPU in `dtype`
    gpus: int | None  # GPUs running the job, when known
    sources: dict[str, str] = field(default_factory=dict)
    warnings: tuple[PlannerWarning, ...] = ()

    @property
    def gpus_per_node(self) -> int | None:
        return self.cluster.gpus_per_node_int if self.cluster else None

    @property
    def nodes(self) -> int | None:
        if self.gpus is None or self.cluster is None:
            return None
        return cost.nodes_for(self.gpus, self.cluster.gpus_per_node_int)


def hardware_for(catalog: Catalog, cluster: str | None = None, accelerator: str | None = None,
                 gpus: int | None = None, nodes: int | Literal["all"] | None = None, dtype: str = "bf16") -> Hardware:
    """The hardware a run uses: a cluster (or a bare accelerator), how many GPUs, which dtype peak."""
    cl = catalog.cluster(cluster) if cluster else None
    if cl is not None:
        acc_name = cl.accelerator
    elif accelerator is not None:
        acc_name = accelerator
    else:
        raise PlannerError("give {cluster} or {accelerator}", refs=("cluster", "accelerator"))
    try:
        acc = catalog.accelerator(acc_name)
    except PlannerError as exc:
        if cl is None:
            raise
        file = catalog.files("clusters")[cl.name]  # the cluster file names an accelerator no catalog has
        raise PlannerError(exc.spelled(), "accelerator", where=f"{file}:{key_line(file, ('accelerator',))}") from None
    peak = acc.peak_flops(dtype)
    sources = {"peak_flops": f"{acc.title}: {acc.cite(acc.dense_peak(dtype))}"}
    warnings = []
    if nodes is not None:
        if cl is None:
            raise PlannerError("needs {cluster} (an accelerator alone has no node size); use {gpus}", "nodes", refs=("cluster", "gpus"))
        if nodes == "all":
            if cl.nodes is None:
                raise PlannerError(f"cluster '{cl.name}' is a rented node type with no fixed size; give a number of nodes", "nodes")
            nodes = int(cl.nodes.value)
        if cl.nodes is not None and nodes > cl.nodes.value:
            raise PlannerError(f"{nodes} exceeds the {int(cl.nodes.value)} nodes of {cl.name}", "nodes")
        gpus = nodes * cl.gpus_per_node_int
    elif cl is not None and gpus is not None:
        warnings += _gpu_count_warnings(cl, gpus)
    if cl is not None:
        sources["node_power"] = f"{cl.title}: {cl.cite(cl.node_power_kw)}"
        sources["accounting"] = f"{cl.title}: {cl.cite(cl.accounting.units_per_node_hour)}"
        for path, item in cl.sourced_numbers():
            if cl.status_of(item) == "unverified" and path.split(".")[0] in ("node_power_kw", "accounting", "gpus_per_node"):
                warnings.append(PlannerWarning(UNVERIFIED[path.split(".")[0]], f"{cl.name} {path} = {item.value:g} is unverified"
                                               + (f" ({item.note})" if item.note else "")))
    return Hardware(acc, cl, dtype, peak, gpus, sources, tuple(warnings))


def _gpu_count_warnings(cl: Cluster, gpus: int) -> list[PlannerWarning]:
    """GPUs on a cluster come in whole nodes: more than the cluster has is an error; a count that does
    not fill its last node is billed for that node all the same (sbatch allocates, and centres charge,
    whole nodes), which the plan's node-hours and charge already count, so the user should hear it."""
    per_node = cl.gpus_per_node_int
    if cl.nodes is not None and gpus > cl.nodes.value * per_node:
        raise PlannerError(f"{gpus} exceeds the {int(cl.nodes.value) * per_node:,} GPUs of {cl.name} "
                           f"({int(cl.nodes.value):,} nodes × {per_node})", "gpus")
    if gpus % per_node == 0:
        return []
    nodes = cost.nodes_for(gpus, per_node)
    return [PlannerWarning("nodes.rounded", f"{gpus} GPUs do not fill whole {per_node}-GPU nodes of {cl.name}: the job "
                           f"holds {nodes} nodes ({nodes * per_node} GPUs), and node-hours and charge count all of them "
                           f"({nodes * per_node - gpus} idle)")]


class Charge(NamedTuple):  # immutable and cheap: a 10,000-run sweep builds one per run
    """What the run costs in the cluster's accounting unit (core-h, node-h, GPU-h, ...)."""

    unit: str
    amount: float
    per_node_hour: float
    status: str  # of the published units per node-hour
    interval: tuple[float, float] | None = None

    def record(self) -> dict:
        out: dict = {"unit": self.unit, "amount": self.amount, "per_node_hour": self.per_node_hour, "status": self.status}
        if self.interval is not None:
            out["interval"] = list(self.interval)
        return out


class Costs(NamedTuple):
    """What a run's FLOPs cost on its hardware: hours, energy and charge, each hour and energy figure
    with its interval at `interval_level` when the MFU estimate has out-of-sample errors. Without
    hardware every field is None."""

    accelerator: str | None = None
    cluster: str | None = None
    dtype: str | None = None
    peak_flops_per_gpu: float | None = None
    mfu: float | None = None
    mfu_basis: str | None = None
    goodput: float | None = None
    gpus: int | None = None
    nodes: int | None = None
    gpu_hours: float | None = None
    node_hours: float | None = None
    wall_clock_hours: float | None = None
    wall_clock_days: float | None = None
    energy_kwh: float | None = None
    energy_basis: str | None = None
    facility_energy_kwh: float | None = None
    co2_kg: float | None = None
    site_basis: str | None = None
    charge: Charge | None = None
    mfu_kind: str | None = None
    interval_level: float | None = None
    gpu_hours_interval: tuple[float, float] | None = None
    node_hours_interval: tuple[float, float] | None = None
    wall_clock_hours_interval: tuple[float, float] | None = None
    energy_kwh_interval: tuple[float, float] | None = None
    cost: Cost | None = None  # in money, where the cluster has a price per GPU-hour or one is given

    def record(self) -> dict:
        """The fields as a plain dict in declaration order (intervals as [low, high]): what JSON shows."""
        out: dict = {}
        for name, value in zip(self._fields, self, strict=True):
            if isinstance(value, (Charge, Cost)):
                out[name] = value.record()
            elif isinstance(value, tuple):
                out[name] = list(value)
            else:
                out[name] = value
        return out


def hardware_costs(flops: float, params: float, hw: Hardware | None, catalog: Catalog,
                   est: mfu.MfuEstimate | None = None, warnings: list[PlannerWarning] | None = None,
                   mfu_override: float | None = None, workload: str = "dense-lm", goodput: float = 1.0,
                   pue: float | None = None, grid_gco2_per_kwh: float | None = None, basis: str = "campaign",
                   seq_len: float | None = None, stack: str | None = None, price: GivenPrice | None = None) -> Costs:
    """GPU-hours, wall-clock, node-hours, energy, charge and money cost for `flops` on `hw` (all None without hardware).

    The one place a run's hours are computed: `plan`, `sweep` and `grant` all call it.
    `goodput` (0-1] scales the MFU further: the campaign basis already includes what whole runs
    lose to restarts, evaluation and failures, so its default is 1. Every hour, energy and charge
    comes with its interval at INTERVAL_LEVEL from the MFU estimate's out-of-sample errors. `pue` and
    `grid_gco2_per_kwh` override the cluster's published values for the facility energy and the CO2 estimate;
    `price` the cluster's price per GPU-hour (and prices a cluster without one): the cost is the GPU-hours
    billed (whole nodes on a cluster) × the price."""
    warnings = [] if warnings is None else warnings
    if hw is None:
        return Costs()
    est = est or mfu_for(hw, catalog, params, mfu_override, workload, basis, seq_len, stack)
    warnings.extend(hw.warnings)
    warnings.extend(est.warnings)
    ceiling = hw.accelerator.matmul_ceiling
    if est.kind == "given" and ceiling is not None and hw.dtype in ("bf16", "fp16") and est.value > ceiling.value:
        # the ceiling is the best a large bf16 matmul reaches alone; a training step also runs attention,
        # norms, communication and the optimizer, so its MFU sits below the ceiling, never above
        warnings.append(PlannerWarning("mfu.ceiling", f"MFU {est.value:g} is above the measured matmul ceiling of "
                                       f"{hw.accelerator.name} ({ceiling.value:.3g} of its dense {hw.dtype} peak, "
                                       f"{hw.accelerator.status_of(ceiling)}): no training run reaches it"))
    if est.kind == "campaign" and goodput < 1:
        warnings.append(PlannerWarning("goodput", f"goodput {goodput:g} is applied on top of the campaign-realised MFU, which "
                                       "already includes the restarts, evaluation and failures of published runs"))
    gh = float(cost.gpu_hours(flops, hw.peak, est.value)) / goodput
    wall = float(cost.wall_clock_hours(gh, hw.gpus)) if hw.gpus else None
    values: dict = dict(accelerator=hw.accelerator.name, cluster=hw.cluster.name if hw.cluster else None, dtype=hw.dtype,
                        peak_flops_per_gpu=hw.peak, mfu=est.value, mfu_basis=est.basis, goodput=goodput, gpus=hw.gpus,
                        gpu_hours=gh, wall_clock_hours=wall, wall_clock_days=wall / 24.0 if wall is not None else None,
                        mfu_kind=est.kind)
    factors = est.interval_factors(INTERVAL_LEVEL)
    charge = None
    billed = gh  # GPU-hours paid for: whole nodes on a cluster
    if hw.cluster is not None:
        cl = hw.cluster
        nh = float(cost.node_hours(wall, hw.nodes)) if wall is not None else gh / cl.gpus_per_node_int
        energy = float(cost.energy_kwh(nh, cl.node_power_kw.value))
        if hw.gpus is not None and hw.gpus != (hw.nodes or 0) * cl.gpus_per_node_int:
            billed = nh * cl.gpus_per_node_int  # a GPU count that does not fill its last node pays for it
        values.update(nodes=hw.nodes, node_hours=nh, energy_kwh=energy,
                      energy_basis=f"node-hours × {cl.node_power_kw.value:g} kW per node ({cl.status_of(cl.node_power_kw)})",
                      **_site_energy(energy, cl, pue, grid_gco2_per_kwh))
        acct = cl.accounting
        amount = nh * acct.units_per_node_hour.value
        charge = Charge(unit=acct.unit, amount=amount, per_node_hour=acct.units_per_node_hour.value,
                        status=cl.status_of(acct.units_per_node_hour),
                        interval=(amount * factors[0], amount * factors[1]) if factors is not None else None)
    else:
        tdp_kw = hw.accelerator.tdp_w.value / 1000.0
        values.update(energy_kwh=gh * tdp_kw, energy_basis=f"GPU-hours × {tdp_kw:g} kW TDP (GPUs only; no host, network or PUE)",
                      **_site_energy(gh * tdp_kw, None, pue, grid_gco2_per_kwh))
    if factors is not None:
        values["interval_level"] = INTERVAL_LEVEL
        for key in ("gpu_hours", "node_hours", "wall_clock_hours", "energy_kwh"):
            if values.get(key) is not None:
                values[f"{key}_interval"] = (values[key] * factors[0], values[key] * factors[1])
    rate = price_for(hw.cluster, price)
    money = money_cost(billed, rate, factors) if rate is not None else None
    return Costs(charge=charge, cost=money, **values)


def partition_warnings(hw: Hardware | None, wall_clock_hours: float | None) -> list[PlannerWarning]:
    """A run beyond the limits of the cluster's default partition: more nodes than one job may take,
    or more hours than one job may run (it then runs as a chain of jobs, as sweeps and grants plan it)."""
    if hw is None or hw.cluster is None or hw.nodes is None:
        return []
    part = hw.cluster.default_partition
    out = []
    if part.max_nodes is not None and hw.nodes > part.max_nodes.value:
        out.append(PlannerWarning("partition", f"{hw.nodes} nodes exceed the {part.max_nodes.value:g} nodes one job may use "
                                  f"in partition {part.name} of {hw.cluster.name}"))
    limit = part.max_wall_hours.value
    if wall_clock_hours is not None and wall_clock_hours > limit * (1 + 1e-9):  # a budget of whole days lands on the limit
        out.append(PlannerWarning("partition", f"the run takes {wall_clock_hours:,.0f} h, beyond the {limit:g} h one job may run "
                                  f"in partition {part.name}: {math.ceil(wall_clock_hours / limit * (1 - 1e-9))} chained jobs "
                                  "(checkpoint and resubmit; a sweep or grant plans the chain)"))
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


@dataclass(frozen=True)
class MemoryFit:
    """Whether the model fits: the fewest nodes (or GPUs) that hold it, and the layout on the count asked for."""

    unit: str  # "nodes" on a cluster, "GPUs" on a bare accelerator
    min: int | None  # None: no count searched holds it
    min_layout: str | None
    layout: str | None = None  # the rest: only when a GPU count was given
    fits: bool | None = None
    per_gpu_gib: float | None = None
    usable_gib: float | None = None

    def record(self) -> dict:
        out: dict = {"unit": self.unit, "min": self.min, "min_layout": self.min_layout}
        if self.layout is not None:
            out.update(layout=self.layout, fits=self.fits, per_gpu_gib=self.per_gpu_gib, usable_gib=self.usable_gib)
        return out


def memory_check(model, hw: Hardware | None, catalog: Catalog, warnings: list[PlannerWarning],
                 seq_len: int | None = None) -> MemoryFit | None:
    """Minimum nodes (or GPUs) that hold the model for training, and whether the requested count does.

    `model` is a catalog model or a bare parameter count (then an assumed shape, which the notes state).
    """
    if hw is None:
        return None
    from planner.costing.layout import best_layout, min_nodes
    from planner.costing.memory import GIB

    try:
        # Layout fields for the searches' **layout: activations grow with the sequence
        extra: dict[str, Any] = {"seq_len": int(seq_len)} if seq_len else {}
        smallest = min_nodes(model, hw.cluster, hw.accelerator, **extra)
        chosen = best_layout(model, hw.accelerator, hw.gpus, hw.gpus_per_node, **extra) if hw.gpus else None
    except PlannerError as exc:
        warnings.append(PlannerWarning("memory.unchecked", f"memory not checked: {exc.spelled()}"))
        return None
    unit = "nodes" if hw.cluster else "GPUs"
    fit = MemoryFit(unit, smallest.units if smallest else None, smallest.layout.describe() if smallest else None)
    if smallest is None:
        where = f"all {int(hw.cluster.nodes.value)} nodes of {hw.cluster.name}" if hw.cluster and hw.cluster.nodes else "any count searched"
        warnings.append(PlannerWarning("memory.nowhere", f"the model does not fit in GPU memory on {where} with the layouts "
                                       "searched (planner memory)"))
    if chosen is not None:
        br = chosen.breakdown
        fit = replace(fit, layout=chosen.layout.describe(), fits=br.fits, per_gpu_gib=br.total / GIB, usable_gib=br.usable / GIB)
        if br.fits and chosen.layout.recompute == "full":
            easier = f"; selective recompute fits from {smallest.units} {unit}" if smallest and smallest.layout.recompute != "full" else ""
            warnings.append(PlannerWarning("memory.recompute", f"on {hw.gpus} GPUs only full activation recompute fits: it "
                                           f"repeats the forward pass (~33% more compute), so expect about 3/4 of the profile's "
                                           f"MFU, which was measured with selective or no recompute (Narayanan et al. 2021){easier}"))
        if not br.fits:
            need = f"; at least {smallest.units} {unit} do" if smallest else ""
            warnings.append(PlannerWarning("memory.short", f"the requested {hw.gpus} GPUs cannot hold the model: the leanest layout "
                                           f"({chosen.layout.describe()}) needs {br.total / GIB:.1f} GiB per GPU, "
                                           f"{br.usable / GIB:.1f} GiB usable{need}"))
    return fit
