"""`planner fit` at the documented row limit (planner.fit.data.MAX_ROWS, 1,000,000 rows): every form of the
registry, wall seconds and peak resident memory, each fit in a process of its own.

The rows are an IsoFLOP grid drawn from a known law with 1% log-normal noise (fixed seed): 10 compute
budgets 1e18 to 1e22, model sizes log-uniform over 1.5 decades around each budget's optimum, and
L = E + A/N^alpha + B/D^beta with Hoffmann et al.'s Approach-3 values. The data-constrained form reads a
second file where a fifth of the runs repeat their data (N', D' as Muennighoff et al. 2023). Each form reads the columns it
declares: runs (params, tokens or flops, loss) or a curve (loss against flops).

Run: python benchmarks/bench_fit_large.py [--rows 1000000] [--forms chinchilla,saturating] [--keep DIR]

Measured on the project's 2-core machine (shared, so give or take a few seconds), 1,000,000 rows, on
2026-12-01: chinchilla 12 s / 590 MB, data-constrained 28 s / 658 MB, isoflop 16 s / 521 MB (its bias
simulation included), overtrain 16 s / 590 MB, power 3 s / 521 MB, saturating 6 s / 521 MB; most of the
memory is the CSV's cells while they are read. Before the fit was chunked, saturating ran over 300 s at
7.8 GB and chinchilla died with a MemoryError.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from planner.fit.data import MAX_ROWS
from planner.fit.forms import FORMS

E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28
SEED = 20240612


def write_rows(path: Path, rows: int, seed: int = SEED, repeats: bool = False) -> None:
    rng = np.random.default_rng(seed)
    budgets = 10.0 ** np.linspace(18, 22, 10)[rng.integers(0, 10, rows)]
    # the optimum of this law: N_opt = G (C/6)^(beta/(alpha+beta)); sizes spread 1.5 decades around it
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    n_opt = g * (budgets / 6) ** (BETA / (ALPHA + BETA))
    params = n_opt * 10.0 ** rng.uniform(-0.75, 0.75, rows)
    flops = budgets * np.exp(rng.normal(0, 0.002, rows))  # logged FLOPs are rounded and vary a little
    tokens = flops / (6 * params)
    unique = tokens.copy()
    # with `repeats` (the data-constrained form's file), a fifth of the runs repeat their data 2-32 times and
    # Muennighoff et al.'s R*_N 5.31, R*_D 15.39 make their loss
    repeated = (rng.random(rows) < 0.2) & repeats
    unique[repeated] = tokens[repeated] / 2.0 ** rng.integers(1, 6, repeated.sum())
    n_eff, d_eff = params.copy(), tokens.copy()
    n_eff[repeated], d_eff[repeated] = _effective(params[repeated], tokens[repeated], unique[repeated], g)
    loss = (E + A / n_eff**ALPHA + B / d_eff**BETA) * np.exp(rng.normal(0, 0.01, rows))
    table = np.column_stack([params, tokens, flops, loss, unique])
    np.savetxt(path, table, delimiter=",", fmt="%.6g", header="params,tokens,flops,loss,unique", comments="")


def _effective(params, tokens, unique, g):
    """Muennighoff et al. 2023's N' and D' (Eq. 5-6); N' = N and D' = D for runs that see each token once."""
    r_n, r_d = 5.31, 15.39
    a, b = BETA / (ALPHA + BETA), ALPHA / (ALPHA + BETA)
    d_eff = unique + unique * r_d * (1 - np.exp(-(tokens / unique - 1) / r_d))
    u_n = np.minimum(g * (g * unique) ** (a / b), params)
    return u_n + u_n * r_n * (1 - np.exp(-(params / u_n - 1) / r_n)), d_eff


def form_args(name: str) -> list[str]:
    columns = FORMS[name].columns
    if columns.kind == "curve":
        return ["--x-col", "flops", "--y-col", "loss"]
    extra = ["--unique-tokens-col", "unique"] if columns.unique_tokens else []
    return (["--flops-col", "flops"] if columns.flops_required else ["--tokens-col", "tokens"]) + extra


def measure(args: list[str]) -> tuple[float, float, int, str, str]:
    """Wall seconds, peak RSS in MB (this child alone, from wait4), exit code, stdout and stderr of one command."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return (wall, usage.ru_maxrss / 1024, child.returncode, out.read().decode(errors="replace"),
                err.read().decode(errors="replace").strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=MAX_ROWS)
    parser.add_argument("--forms", default=",".join(FORMS), help="comma-separated forms (default: every registered form)")
    parser.add_argument("--keep", type=Path, help="write the CSV into this directory (and reuse it when present)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-fit-large-"))
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"rows-{args.rows}-{SEED}.csv"
    repeats = folder / f"rows-{args.rows}-{SEED}-repeated.csv"
    if not data.exists():
        write_rows(data, args.rows)
    if not repeats.exists() and any(FORMS[name].columns.unique_tokens for name in args.forms.split(",")):
        write_rows(repeats, args.rows, repeats=True)
    print(f"{args.rows:,} rows in {data} ({data.stat().st_size / 1e6:.0f} MB); one process per fit")
    print(f"{'form':12s} {'wall s':>8s} {'peak RSS MB':>12s}  fitted (the data follow E {E}, A {A}, B {B}, alpha {ALPHA}, beta {BETA})")
    for name in args.forms.split(","):
        source = repeats if FORMS[name].columns.unique_tokens else data
        command = [sys.executable, "-m", "planner", "fit", str(source), "--form", name, *form_args(name), "--format", "json"]
        wall, rss, code, out, err = measure(command)
        if code == 0:
            result = ", ".join(f"{k} {v:.4g}" for k, v in json.loads(out)["params"].items())
        else:
            result = f"exit {code}: {err.splitlines()[-1] if err else ''}"
        print(f"{name:12s} {wall:8.1f} {rss:12.0f}  {result}")
    if args.keep is None:
        for path in (data, repeats):
            path.unlink(missing_ok=True)
        folder.rmdir()


if __name__ == "__main__":
    main()
