"""Parallel layouts: the fewest nodes that hold a model, and the simplest layout on a given GPU count.

The memory of one layout comes from `memory.estimate`; this module searches layouts (TP, PP, ZeRO
stage, recompute) and solves the data-parallel degree each needs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from planner.catalog import Accelerator, Catalog, Cluster
from planner.catalog.models import Model, Shape
from planner.costing.memory import (
    FSDP_STAGE,
    MARGIN,
    MAX_TP_WITHOUT_NODE,
    Breakdown,
    Dims,
    Fsdp,
    Layout,
    capacity_bytes,
    check_layout,
    dims_of,
    estimate,
    split_stage,
    stages,
)
from planner.errors import PlannerError


class NodeFit(NamedTuple):
    units: int  # nodes on a cluster, GPUs on a bare accelerator
    layout: Layout
    breakdown: Breakdown


def _divisors(n: int) -> list[int]:
    small = [k for k in range(1, math.isqrt(n) + 1) if n % k == 0]
    return sorted(set(small + [n // k for k in small]))


def _candidates(d: Dims, max_tp: int, tp, pp, zero, fsdp, base: dict) -> list[Layout]:
    """Layouts in order of preference: less model parallelism (TP × PP), then less PP, then a lower ZeRO stage."""
    if tp or pp:
        check_layout(d, Layout(tp=tp or 1, pp=pp or 1, interleave=base.get("interleave", 1)))
    tps = [tp] if tp else [k for k in _divisors(max_tp) if d.heads % k == 0]
    pps = [pp] if pp else _divisors(d.layers)
    zeros = [FSDP_STAGE[fsdp]] if fsdp else [zero] if zero is not None else [0, 1, 2, 3]
    out = []
    for t in tps:
        for p in pps:
            for z in zeros:
                if p > 1 and z >= 2 and not (pp and (zero is not None or fsdp)):
                    continue  # not searched: DeepSpeed's pipeline engine refuses ZeRO-2/3
                if d.layers % (p * base.get("interleave", 1)):
                    continue
                out.append(Layout(tp=t, pp=p, zero=z, fsdp=fsdp, **base))
    return sorted(out, key=lambda lay: (lay.tp * lay.pp, lay.pp, lay.zero))


def _need_nd(d: Dims, lay: Layout, usable: float) -> float:
    """Smallest N_d at which every stage fits (inf if none does)."""
    need = 1.0
    for st in stages(d, lay):
        fixed, sharded = split_stage(st, lay)
        if fixed >= usable:
            return math.inf
        need = max(need, math.ceil(sharded / (usable - fixed)))
    return need


def _group(lay: Layout, shard_group: int | None, node_gpus: int) -> dict:
    # hybrid_shard: PyTorch's default shard group is one node, i.e. its GPUs / TP model replicas
    return {"shard_group": shard_group or max(1, node_gpus // lay.tp)} if lay.fsdp == "hybrid_shard" else {}


def _search(model, accelerator, per_unit: int, node_gpus: int, max_units: int, units: int | None, margin: float,
            tp, pp, zero, fsdp, shard_group, base: dict) -> NodeFit | None:
    """Per candidate layout the fewest units (or, with `units`, whether that count works); the best of them."""
    d = dims_of(model, base.pop("layers", None), base.pop("hidden", None))
    base.setdefault("seq_len", d.seq_len or 4096)
    usable = capacity_bytes(accelerator) * (1 - margin)
    best = None
    for lay in _candidates(d, node_gpus, tp, pp, zero, fsdp, base):
        mp = lay.tp * lay.pp
        lay = lay.model_copy(update=_group(lay, shard_group, node_gpus))
        need = max(_need_nd(d, lay, usable), lay.ep)
        if need > (lay.shard_group or math.inf):
            continue
        block = mp * lay.ep  # units must give a whole number of model replicas, and of EP groups
        step = block // math.gcd(block, per_unit)
        n: float  # units; infinite when no data-parallel degree holds it
        if units is not None:
            if (units * per_unit) % block or units * per_unit // mp < need:
                continue
            n = units
        else:
            n = step * math.ceil(max(need, 1) * mp / (per_unit * step)) if math.isfinite(need) else math.inf
        if n <= max_units and (best is None or n < best[0]):
            best = (n, lay)
    if best is None:
        return None
    count, lay = int(best[0]), best[1]  # finite: no larger than max_units
    lay = lay.model_copy(update={"dp": count * per_unit // (lay.tp * lay.pp)})
    return NodeFit(count, lay, estimate(d, lay, accelerator, margin))


def min_nodes(model: Model | Shape | Dims | float, cluster: Cluster | None, accelerator: Accelerator | Catalog, *,
              max_nodes: int | None = None, tp: int | None = None, pp: int | None = None, zero: int | None = None,
              fsdp: Fsdp | None = None, shard_group: int | None = None, margin: float = MARGIN,
              **layout) -> NodeFit | None:
    """The fewest nodes (GPUs, when `cluster` is None) on which `model` fits, with the simplest layout there.

    Searches TP over divisors of the GPUs per node (≤ 8 without a cluster) that divide the heads,
    PP over divisors of the layers, ZeRO 0-3 (0-1 with PP > 1); fixed `tp`, `pp`, `zero`/`fsdp` are
    kept. Per layout the smallest data-parallel degree that fits is solved in closed form (memory is
    fixed + sharded / N_d), so the search costs one evaluation per layout. Ties at equal nodes go to
    less TP × PP, then less PP, then a lower ZeRO stage. `layout` takes Layout fields (seq_len,
    micro_batch, recompute, precision, optimizer, ...) and `layers`/`hidden` for an assumed shape.
    Without `recompute`, selective recompute is searched first and full recompute only if selective
    fits nowhere. None when nothing fits on `max_nodes` (default: the whole cluster)."""
    if isinstance(accelerator, Catalog):
        if cluster is None:
            raise PlannerError("a catalog alone names no accelerator: give the cluster or the accelerator itself")
        acc = accelerator.accelerator(cluster.accelerator)
    else:
        acc = accelerator
    per_unit = cluster.gpus_per_node_int if cluster else 1
    node_gpus = per_unit if cluster else MAX_TP_WITHOUT_NODE
    limit = max_nodes or (int(cluster.nodes.value) if cluster and cluster.nodes else 10**6)
    for option in _recompute_options(layout):
        found = _search(model, acc, per_unit, node_gpus, limit, None, margin, tp, pp, zero, fsdp, shard_group,
                        {**layout, "recompute": option})
        if found is not None:
            return found
    return None


def _recompute_options(layout: dict) -> tuple[str, ...]:
    # selective is the literature's default; full recompute (+~33% compute) only when selective fits nowhere
    return (layout["recompute"],) if layout.get("recompute") else ("selective", "full")


def best_layout(model: Model | Shape | Dims | float, accelerator: Accelerator, gpus: int, gpus_per_node: int | None, *,
                tp: int | None = None, pp: int | None = None, zero: int | None = None, fsdp: Fsdp | None = None,
                shard_group: int | None = None, margin: float = MARGIN, **layout) -> NodeFit:
    """The simplest layout that fits on exactly `gpus` GPUs, or, when none fits, the one needing least memory
    (its breakdown says `fits` False). `units` in the result is `gpus`."""
    node_gpus = gpus_per_node or MAX_TP_WITHOUT_NODE
    for option in _recompute_options(layout):
        found = _search(model, accelerator, 1, node_gpus, gpus, gpus, margin, tp, pp, zero, fsdp, shard_group,
                        {**layout, "recompute": option})
        if found is not None:
            return found
    layout.setdefault("recompute", "full")  # the leanest of the failures
    d = dims_of(model, layout.pop("layers", None), layout.pop("hidden", None))
    layout.setdefault("seq_len", d.seq_len or 4096)
    fits_gpus = [lay for lay in _candidates(d, node_gpus, tp, pp, zero, fsdp, layout)
                 if gpus % (lay.tp * lay.pp * lay.ep) == 0]
    if not fits_gpus:
        raise PlannerError(f"no layout divides {gpus} GPUs (TP × PP × EP must divide the GPU count)")
    tried = [estimate(d, lay.model_copy(update={"dp": gpus // (lay.tp * lay.pp), **_group(lay, shard_group, node_gpus)}),
                      accelerator, margin) for lay in fits_gpus]
    leanest = min(tried, key=lambda br: br.total)
    return NodeFit(gpus, leanest.layout, leanest)
