"""PNG figures of fits and comparisons (matplotlib is an optional extra: pip install 'planner[plot]')."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from planner.errors import PlannerError
from planner.files import write_atomic_bytes

if TYPE_CHECKING:
    from planner.costing.scaling import ScalingTable
    from planner.fit.form import FitForm
    from planner.fit.result import Comparison, FitResult


def pyplot():
    """matplotlib.pyplot on the Agg backend, set up for byte-identical output (or a PlannerError without matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        raise PlannerError("needs matplotlib: pip install 'planner[plot]'", "plot") from None
    matplotlib.use("Agg")  # no display on login nodes
    matplotlib.rcParams["svg.hashsalt"] = "planner"  # deterministic output
    import matplotlib.pyplot as plt

    return plt


def require_matplotlib() -> None:
    """Fail now, before long work, when a plot could not be drawn."""
    pyplot()


def _band(ax, form: FitForm, samples: dict | None, grid: np.ndarray, color: str) -> None:
    if not samples:
        return
    curves = form.curve(samples)(grid)
    lo, hi = np.nanpercentile(curves, [2.5, 97.5], axis=0)
    ax.fill_between(grid, lo, hi, color=color, alpha=0.2, linewidth=0, label="95% bootstrap band")


def _draw(ax, form: FitForm, params: dict, bins, samples, data, color: str, label: str) -> None:
    """The runs, the curves' frontier points (when binned), the fit, its extrapolation and bootstrap band."""
    y = data.columns[form.columns.response]
    lo, hi = data.compute.min(), data.compute.max()
    inside = np.geomspace(lo, hi, 200)
    beyond = np.geomspace(hi, hi * 100, 100)
    ax.scatter(data.compute, y, s=10, color=color, alpha=0.45, label=f"{label} runs")
    if bins:  # what the fit saw: each bin's best run at the bin centre (Cherti et al. 2023), or the non-dominated runs
        from planner.fit.curves import HULL, PARETO, frontier

        cx, cy = frontier(np.log10(data.compute), np.log10(y), bins)
        what = {PARETO: "non-dominated runs", HULL: "lower convex hull"}.get(bins, "best per log-compute bin")
        ax.scatter(10.0**cx, 10.0**cy, s=30, marker="D", color=color, edgecolor="black", linewidth=0.6,
                   label=f"{label} frontier: {what} (fitted)")
    f = form.curve(params)
    ax.plot(inside, f(inside)[0], color=color, label=f"{label} fit")
    ax.plot(beyond, f(beyond)[0], color=color, linestyle="--", label=f"{label} extrapolation")
    _band(ax, form, samples, np.concatenate([inside, beyond]), color)


def png_bytes(fig, dpi: int = 120) -> bytes:
    """The figure as PNG, the same bytes for the same figure (no software or date in the metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def save_png(fig, out: Path, force: bool) -> None:
    write_atomic_bytes(out, png_bytes(fig), force)


def plot_fit(result: FitResult, samples, data_path: Path, opts, out: Path, force: bool) -> None:
    """A fit as its form is drawn: a curve in compute (runs, fit, extrapolation, bootstrap band) or Approach 2's figure."""
    from planner.fit import FORMS, load

    form = FORMS[result.form]
    if form.plot == "isoflop":
        return plot_isoflop(result, data_path, opts, out, force)
    plt = pyplot()
    data = load(data_path, opts)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _draw(ax, form, result.params, result.procedure.get("bins"), samples, data, "tab:blue", Path(data_path).stem)
    ax.set_xscale("log")
    ax.set_yscale("log")
    xlabel, ylabel = form.axes(opts)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"planner fit: {result.form} form")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, out, force)
    plt.close(fig)


def plot_isoflop(result: FitResult, data_path: Path, opts, out: Path, force: bool) -> None:
    """Hoffmann et al.'s Approach 2 as their Figure 3 draws it: loss against parameters per IsoFLOP
    budget with each fitted parabola and its minimum, then the optimal sizes against compute with
    the fitted power law N_opt = k·C^a carried beyond the largest budget."""
    plt = pyplot()
    from planner.fit import load
    from planner.fit.curves import group_budgets

    data = load(data_path, opts)
    cols = data.columns
    labels = group_budgets(cols["flops"], opts.budget_tolerance)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    parabolas = result.procedure["parabolas"]
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, max(1, len(parabolas))))
    for color, par in zip(colors, parabolas, strict=False):
        members = labels == labels[np.argmin(np.abs(np.log(cols["flops"]) - np.log(par["budget"])))]
        left.scatter(cols["params"][members], cols["loss"][members], s=12, color=color)
        n_lo, n_hi = par["params_range"]
        n = np.geomspace(n_lo, n_hi, 100)
        curv, lin, const = par["coefficients"]
        left.plot(n, curv * np.log(n) ** 2 + lin * np.log(n) + const, color=color, label=f"{par['budget']:.2g} FLOPs")
        best = -lin / (2 * curv)
        left.scatter([np.exp(best)], [curv * best**2 + lin * best + const], marker="v", s=40, color=color, edgecolor="black")
    left.set_xscale("log")
    left.set_xlabel("parameters")
    left.set_ylabel("loss")
    left.set_title("IsoFLOP profiles (parabola in log N per budget; ▼ minimum)")
    left.legend(fontsize=7)
    c = np.array(result.procedure["budgets"])
    p = result.params
    right.scatter(c, result.procedure["optimal_params"], color="black", s=20, label="N_opt per budget")
    inside, beyond = np.geomspace(c.min(), c.max(), 100), np.geomspace(c.max(), c.max() * 1e3, 100)
    right.plot(inside, p["N_coefficient"] * inside ** p["a"], color="tab:blue", label=f"N_opt = {p['N_coefficient']:.3g}·C^{p['a']:.3f}")
    right.plot(beyond, p["N_coefficient"] * beyond ** p["a"], color="tab:blue", linestyle="--", label="extrapolation")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("training FLOPs")
    right.set_ylabel("compute-optimal parameters")
    right.legend(fontsize=8)
    fig.suptitle("planner fit: isoflop form (Hoffmann et al. 2022, Approach 2)")
    fig.tight_layout()
    save_png(fig, out, force)
    plt.close(fig)


def plot_compare(result: Comparison, path_a: Path, path_b: Path, opts, out: Path, force: bool, opts_b=None) -> None:
    plt = pyplot()
    from planner.fit import FORMS, load

    form = FORMS[result.form]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, fitted, path, color, o in (("a", result.a, path_a, "tab:blue", opts), ("b", result.b, path_b, "tab:orange", opts_b or opts)):
        _draw(ax, form, fitted.params, o.bins, None, load(path, o), color, f"{key.upper()} ({Path(path).stem})")
    if result.crossover:
        ax.axvline(result.crossover, color="gray", linestyle=":", label="crossover")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(form.axes(opts)[0])
    ax.set_ylabel("error" if opts.one_minus else opts.y_col)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, out, force)
    plt.close(fig)


def plot_scaling(result: ScalingTable, out: Path, force: bool) -> None:
    """Speed-up (log-log, with the ideal line) and parallel efficiency against nodes: predicted, and
    measured when given."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    draw_scaling(left, right, result)
    run = result.run
    fig.suptitle(f"strong scaling: {run.model or format(run.params, '.3g') + ' parameters'} on {run.cluster}")
    fig.tight_layout()
    save_png(fig, out, force)
    plt.close(fig)


def draw_scaling(left, right, result: ScalingTable) -> None:
    """Speed-up on `left` (log-log, ideal line) and parallel efficiency on `right`, predicted and measured."""
    from matplotlib.ticker import FuncFormatter

    base = result.baseline_nodes
    nodes = np.array([r["nodes"] for r in result.rows], dtype=float)
    left.plot(nodes, nodes / (base or nodes[0]), color="gray", linestyle=":", label="ideal (linear)")
    right.axhline(1.0, color="gray", linestyle=":", label="ideal")
    series = (("speedup", "efficiency", "o", "tab:blue", "predicted (MFU profile at each GPU count)"),
              ("measured_speedup", "measured_efficiency", "s", "tab:orange", "measured"))
    for speedup, efficiency, marker, color, label in series:
        rows = [dict(r) for r in result.rows if r.get(speedup) is not None]
        if rows:
            x = [r["nodes"] for r in rows]
            left.plot(x, [r[speedup] for r in rows], marker=marker, color=color, label=label)
            right.plot(x, [r[efficiency] for r in rows], marker=marker, color=color, label=label)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("nodes")
    left.set_yscale("log", base=2)
    left.set_ylabel(f"speed-up over {base} node{'s' if base != 1 else ''}" if base else "speed-up")
    right.set_ylabel("parallel efficiency")
    right.set_ylim(0, 1.1)
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    left.legend(fontsize=8)


def plot_calibration(report, catalog, out: Path, force: bool = False) -> None:
    """Realised MFU of every published campaign against model size, with the estimator's curve for each
    (workload, architecture) it knows at the GPU count such runs typically use, and its 80% band."""
    from planner.costing import throughput

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    model = report.model
    colors = {"ampere": "tab:blue", "hopper": "tab:orange", "volta": "tab:green"}
    markers = {"dense-lm": "o", "moe": "s", "clip": "^"}
    lo_f, hi_f = report.interval_factors
    for p in list(model.points) + list(model.excluded):
        ax.scatter(p.params, p.realised, marker=markers.get(p.workload, "o"), color=colors.get(p.architecture, "tab:gray"),
                   edgecolor="black" if p.excluded is None else "none", linewidth=0.5, alpha=0.9 if p.excluded is None else 0.3,
                   s=36, zorder=3)
    for workload in model.fit.coding.workloads:
        sizes = [p.params for p in model.points if p.workload == workload]
        for arch in model.fit.coding.architectures:
            if not any(p.architecture == arch and p.workload == workload for p in model.points):
                continue
            grid = np.geomspace(min(sizes) / 2, max(sizes) * 2, 100)
            q = throughput.Query(workload, arch, grid, np.full(grid.shape, np.nan), np.full(grid.shape, 4096.0))
            m = model.predict(q)
            style = {"dense-lm": "-", "moe": ":", "clip": "--"}[workload]
            ax.plot(grid, m, style, color=colors.get(arch, "tab:gray"), label=f"{workload} on {arch} (average stack)")
            if workload == "dense-lm":  # hours x f means MFU / f
                ax.fill_between(grid, m / hi_f, m / lo_f, color=colors.get(arch, "tab:gray"), alpha=0.12, linewidth=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters that work per token (CLIP: image + text towers)")
    ax.set_ylabel("realised MFU = model FLOPs / (reported GPU-hours × peak)")
    ax.set_title(f"{model.n_runs} published training campaigns; estimator: {model.chosen.form}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    save_png(fig, out, force)


def plot_progression(result, out: Path, force: bool) -> None:
    """`planner simulate`'s plot: the fitted quantity (median and central 80% of the trials) against the
    GPU-hours an IsoFLOP sweep has spent, budget by budget, with the truth."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    spent = result.progression
    x = np.array([s.gpu_hours for s in spent])
    mid = np.array([s.median for s in spent])
    lo, hi = np.array([s.ci80[0] for s in spent]), np.array([s.ci80[1] for s in spent])
    truth = result.quantities[result.progression_quantity].truth
    ax.fill_between(x, lo, hi, color="tab:blue", alpha=0.25, linewidth=0, label="80% of simulated fits")
    ax.plot(x, mid, marker="o", color="tab:blue", label="median fit")
    for i, s in enumerate(spent):
        # below the band, clear of the median line and the truth; the end labels lean inwards to stay on the axes
        align = "left" if i == 0 else "right" if i == len(spent) - 1 else "center"
        ax.annotate(f"{s.budgets} budget{'s' if s.budgets > 1 else ''}, {s.runs} runs", (s.gpu_hours, s.ci80[0]),
                    textcoords="offset points", xytext=(0, -10), ha=align, va="top", fontsize=7)
    ax.axhline(truth, color="black", linestyle=":", label=f"truth ({result.law})")
    ax.set_xscale("log")
    if result.progression_quantity in ("params_at_target", "tokens_at_target"):
        ax.set_yscale("log")
    ax.margins(x=0.06, y=0.12)  # room for the labels under the band
    ax.set_xlabel("GPU-hours spent (smallest budgets first)")
    ax.set_ylabel(result.progression_quantity + (f" at {result.target_flops:.3g} FLOPs"
                                                 if result.progression_quantity.endswith("_at_target") else ""))
    ax.set_title(f"what the sweep's fit recovers as it runs ({result.trials} trials, noise {result.noise:.2g})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, out, force)
    plt.close(fig)
