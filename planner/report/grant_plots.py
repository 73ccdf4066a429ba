"""The figures of a grant document (planner.grant.document.GrantDocument) reviewers expect: the scaling law
with its uncertainty band and the planned runs on it, strong and weak scaling with efficiency, and the
burn plan against the allocation.

Each figure is a function (document, path) → whether it applies (False: nothing drawn, no file); the
registry `grant_figures` names them with their captions. PNG, byte-identical for the same document
(report.plot.png_bytes). matplotlib is an optional extra: report.plot.pyplot says how to install it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from planner.files import write_atomic_bytes
from planner.report.grant_figures import draw_burn, draw_schedule
from planner.report.plot import draw_scaling, png_bytes, pyplot

if TYPE_CHECKING:
    from planner.catalog import Catalog
    from planner.grant.document import GrantDocument
    from planner.laws import Law

MARKERS = ("o", "s", "^", "D", "v", "P", "X")


@dataclass(frozen=True)
class FigureSpec:
    """One figure of a grant document: `draw(document, path)` writes a PNG and says whether it applies."""

    name: str
    caption: Callable[[GrantDocument], str]
    draw: Callable[[GrantDocument, Path], bool]


def _save(fig, path: Path) -> bool:
    write_atomic_bytes(path, png_bytes(fig, dpi=110), force=True)
    pyplot().close(fig)
    return True


# --- the scaling law, its band and the planned runs ----------------------------------------------

def planned_runs(document: GrantDocument) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(experiment, parameters, tokens) of every planned language-model run: each sweep run, and each
    fixed run with parameters and tokens (CLIP runs count samples and sit on no language-model law)."""
    out = []
    for r in document.rows:
        if r.sweep_runs:
            out.append((r.name, np.array([d.params for d in r.sweep_runs], float), np.array([d.tokens for d in r.sweep_runs], float)))
        elif r.params and r.tokens and not r.samples:
            out.append((r.name, np.array([r.params]), np.array([r.tokens])))
    return out


def document_laws(document: GrantDocument) -> list[str]:
    return sorted({r.law for r in document.rows if r.law})


def law_band(law: Law, flops: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The central `level` band of N_opt(C) and of the compute-optimal loss over the law's bootstrap
    draws (params low, high, loss low, high); None for a law without draws (every catalog law)."""
    from planner.laws import draws_allocate, draws_loss

    draws = law.bootstrap_draws()
    if draws is None:
        return None
    tail = (1.0 - level) / 2.0
    with np.errstate(over="ignore", under="ignore"):
        columns = {k: v[:, None] for k, v in draws.items()}
        ns, ds = draws_allocate(columns, flops[None, :])
        losses = draws_loss(columns, ns, ds)
    n_lo, n_hi = np.quantile(ns, [tail, 1.0 - tail], axis=0)
    l_lo, l_hi = np.quantile(losses, [tail, 1.0 - tail], axis=0)
    return n_lo, n_hi, l_lo, l_hi


def draw_law(document: GrantDocument, path: Path, catalog: Catalog) -> bool:
    names, runs = document_laws(document), planned_runs(document)
    if not names or not runs:
        return False
    plt = pyplot()
    laws = [catalog.law(n) for n in names]
    panels = 2 if any(law.predicts_loss for law in laws) else 1
    fig, axes = plt.subplots(len(laws), panels, figsize=(5.2 * panels, 4.0 * len(laws)), squeeze=False)
    compute = np.concatenate([6.0 * n * d for _, n, d in runs])
    grid = np.geomspace(compute.min() / 3.0, compute.max() * 3.0, 120)
    for (left, *right), law in zip(axes, laws, strict=True):
        band = law_band(law, grid, document.interval_level)
        left.plot(grid, law.optimal_params(grid), color="black", label=f"N_opt(C), law '{law.name}'")
        if band is not None:
            left.fill_between(grid, band[0], band[1], color="gray", alpha=0.3, linewidth=0,
                              label=f"{document.interval_level:.0%} of the bootstrap refits")
        for i, (name, n, d) in enumerate(runs):
            left.scatter(6.0 * n * d, n, marker=MARKERS[i % len(MARKERS)], s=28, zorder=3, label=name)
        left.set_ylabel("parameters")
        if right and law.predicts_loss:
            ax = right[0]
            ax.plot(grid, law.frontier_loss(grid), color="black", label="compute-optimal loss")
            if band is not None:
                ax.fill_between(grid, band[2], band[3], color="gray", alpha=0.3, linewidth=0)
            for i, (name, n, d) in enumerate(runs):
                ax.scatter(6.0 * n * d, law.predict_loss(n, d), marker=MARKERS[i % len(MARKERS)], s=28, zorder=3, label=name)
            ax.set_ylabel("predicted loss (nats/token)")
        elif right:
            right[0].set_axis_off()
        for ax in (left, *right):
            ax.set_xscale("log")
            ax.set_xlabel("training compute C = 6ND (FLOPs)")
        left.set_yscale("log")
        left.set_title(f"{law.name}: " + ("no uncertainty band (no bootstrap draws)" if band is None else "with its band"),
                       fontsize=9)
        left.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def law_caption(document: GrantDocument, catalog: Catalog) -> str:
    laws = [catalog.law(n) for n in document_laws(document)]
    names = "; ".join(f"'{law.name}' ({law.citation})" for law in laws)
    band = [law.name for law in laws if law.bootstrap_draws() is not None]
    what = (f"the band is the central {document.interval_level:.0%} of the bootstrap refits of {', '.join(band)}" if band else
            "no uncertainty band: the law has no bootstrap draws (a law file written by planner fit keeps them); the central law is drawn")
    return (f"Scaling law {names}: compute-optimal parameters (and loss, where the law predicts it) against training compute "
            f"C = 6ND, with every planned language-model run placed on it; {what}.")


# --- strong and weak scaling ---------------------------------------------------------------------

def draw_scaling_figure(document: GrantDocument, path: Path) -> bool:
    if not document.scaling:
        return False
    from planner.costing.weak import weak_scaling

    plt = pyplot()
    fig, axes = plt.subplots(len(document.scaling), 3, figsize=(14, 4.0 * len(document.scaling)), squeeze=False)
    for (left, middle, right), table in zip(axes, document.scaling, strict=True):
        draw_scaling(left, middle, table)
        weak = weak_scaling(table)
        key = "seconds_per_step" if weak.batch_per_node else "wall_hours"
        x = [r["nodes"] for r in weak.rows]
        y = [r[key] for r in weak.rows]  # type: ignore[literal-required]
        if y:
            right.axhline(y[0], color="gray", linestyle=":", label="ideal (flat)")
            right.plot(x, y, marker="o", color="tab:green", label="predicted, fixed work per node")
            right.set_ylim(0, max(y) * 1.25)
        right.set_xscale("log", base=2)
        right.set_xlabel("nodes")
        right.set_ylabel("seconds per step" if key == "seconds_per_step" else "wall-hours of the job")
        right.legend(fontsize=8)
        left.set_title(f"strong scaling: {table.experiment or table.run.model}", fontsize=9)
        right.set_title(f"weak scaling: {table.experiment or table.run.model}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def scaling_caption(document: GrantDocument) -> str:
    kinds = ", ".join(f"{t.experiment} ({'measured and predicted' if t.measured else 'predicted'})" for t in document.scaling)
    return (f"Strong scaling (speed-up and parallel efficiency against nodes, with the ideal) and weak scaling (time at fixed "
            f"work per node, ideal flat) of {kinds}.")


# --- the burn plan against the allocation (one place, so a schedule-based figure can replace it) ---

def schedule_caption(document: GrantDocument) -> str:
    s = document.schedule
    return (f"Schedule: each experiment's runs at their nodes over the allocation's months, at most {s.concurrency} nodes at "
            f"once ({s.concurrency_basis}), dependencies respected; below, the nodes in use.")


def burn_caption(document: GrantDocument) -> str:
    rule = " and what the program's rule forfeits (hatched)" if document.burn.simulation is not None else ""
    return (f"Burn plan by month, following the schedule: the request per month by experiment (with the contingency) "
            f"against an even share, and the cumulative use against the {document.total.request:,} {document.unit.label} "
            f"requested{rule}.")


BURN_FIGURE = FigureSpec("burn", burn_caption, draw_burn)  # the one place the burn-plan figure is chosen
SCHEDULE_FIGURE = FigureSpec("schedule", schedule_caption, draw_schedule)


def grant_figures(catalog: Catalog) -> tuple[FigureSpec, ...]:
    """Every figure of a grant document, in the order the document shows them."""
    return (FigureSpec("law", lambda d: law_caption(d, catalog), lambda d, p: draw_law(d, p, catalog)),
            FigureSpec("scaling", scaling_caption, draw_scaling_figure),
            SCHEDULE_FIGURE, BURN_FIGURE)
