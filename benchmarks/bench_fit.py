"""Speed of `planner fit --form chinchilla` on Epoch AI's 240 Chinchilla points (2-core machine).

Prints: the full 4,500-start grid fit, and fit plus 4,000 bootstrap refits, as wall seconds.
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
    t_fit, result = timed(lambda: run(DATA, options()))
    print(f"grid fit, 4,500 starts:              {t_fit:6.2f} s   objective {result.objective:.8g}")
    t_boot, boot = timed(lambda: run(DATA, options(bootstrap=4000, seed=42)))
    print(f"grid fit + 4,000 bootstrap refits:   {t_boot:6.2f} s")
    for k, v in result.params.items():
        lo, hi = boot.ci[k]
        print(f"  {k:5s} {v:10.4f}   95% CI ({lo:.4f}, {hi:.4f})")
    if args.reference:
        t_ref, best = reference_loop(args.reference)
        ref = {k: float(v[0]) for k, v in chinchilla.to_params(best.x).items()}
        print(f"per-start scipy loop, {args.reference} starts, extrapolated to 4,500: {t_ref:6.1f} s; best objective "
              f"{best.fun:.8g}; A {ref['A']:.2f} B {ref['B']:.2f} E {ref['E']:.4f} alpha {ref['alpha']:.4f} beta {ref['beta']:.4f}")


if __name__ == "__main__":
    main()
