"""Speed of `planner fit --form chinchilla` on Epoch AI's 240 Chinchilla points (2-core machine).

Prints, as wall seconds (best of three): the default solver (VPNLS) and the 4,500-start grid, each
alone and with 4,000 bootstrap refits, with their objectives; and 200 trials of simulating a 30-run
IsoFLOP sweep (`planner simulate`'s engine).

Measured on the idle 2-core machine, 2026-12-01: VPNLS fit 0.018 s, with 4,000 bootstrap refits 0.81 s;
the 4,500-start grid 1.56 s, with its bootstrap 2.24 s; 200 simulated 30-run sweeps 1.38 s.
With --reference K it also runs a plain per-start scipy L-BFGS-B loop (numerical gradients, as a
straightforward implementation would) over K starts spread across the grid, prints its time
extrapolated to 4,500 starts, and checks that the vectorised fit finds the same best optimum.

Run: python benchmarks/bench_fit.py [--reference 90]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from planner.fit import FitOptions, chinchilla, load, run

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "chinchilla_epoch_svg.csv"


def options(**kw) -> FitOptions:
    return FitOptions(form="chinchilla", params_col="Model Size", flops_col="Training FLOP", drop_highest=5, **kw)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def best_of(fn, times: int = 3):
    runs = [timed(fn) for _ in range(times)]
    return min(t for t, _ in runs), runs[0][1]


def simulate_30_runs():
    """5 budgets over two decades, 6 sizes each, the Chinchilla Approach-3 law with 1% noise."""
    from planner.simulate.engine import run_trials

    params, tokens = [], []
    for c in np.geomspace(1e18, 1e20, 5):
        centre = 0.5 * (c / 6) ** 0.45
        for f in np.geomspace(0.25, 4, 6):
            params.append(centre * f)
            tokens.append(c / 6 / (centre * f))
    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    return run_trials(np.array(params), np.array(tokens), truth, 0.01, 200, 0, 1e23)


def reference_loop(k: int):
    from scipy.optimize import minimize

    cols = load(DATA, options()).columns
    fun_grad = chinchilla.objective(np.log(cols["params"]), np.log(cols["tokens"]), np.log(cols["loss"]), 1e-3)
    one = np.arange(1)
    grid = chinchilla.start_grid()
    picks = grid[np.linspace(0, len(grid) - 1, k).astype(int)]
    best = None
    start = time.perf_counter()
    for x0 in picks:
        res = minimize(lambda th: float(fun_grad(th[None, :], one)[0][0]), x0, method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    return (time.perf_counter() - start) * len(grid) / k, best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", type=int, default=0, help="also time a per-start scipy loop over K starts")
    args = parser.parse_args()
    run(DATA, options())  # warm imports and caches
    for solver in ("vpnls", "bfgs"):
        t_fit, result = best_of(lambda s=solver: run(DATA, options(solver=s)))
        print(f"{solver:5s} fit:                          {t_fit:6.3f} s   objective {result.objective:.17g}")
        t_boot, boot = best_of(lambda s=solver: run(DATA, options(solver=s, bootstrap=4000, seed=42)))
        print(f"{solver:5s} fit + 4,000 bootstrap refits:  {t_boot:6.3f} s")
        for k, v in result.params.items():
            lo, hi = boot.ci[k]
            print(f"  {k:5s} {v:12.6f}   95% CI ({lo:.4f}, {hi:.4f})")
    print(f"200 trials of a 30-run IsoFLOP sweep:   {best_of(simulate_30_runs)[0]:6.3f} s")
    if args.reference:
        t_ref, best = reference_loop(args.reference)
        ref = {k: float(v[0]) for k, v in chinchilla.to_params(best.x).items()}
        print(f"per-start scipy loop, {args.reference} starts, extrapolated to 4,500: {t_ref:6.1f} s; best objective "
              f"{best.fun:.8g}; A {ref['A']:.2f} B {ref['B']:.2f} E {ref['E']:.4f} alpha {ref['alpha']:.4f} beta {ref['beta']:.4f}")


if __name__ == "__main__":
    main()
