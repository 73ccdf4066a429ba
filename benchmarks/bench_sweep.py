"""How fast `planner sweep` designs and renders a large sweep: 10,000 runs (100 IsoFLOP budgets × 100
model sizes on JUWELS Booster), in memory (design + every file's text) and end to end through the CLI
(cold process, files written).

Run: python benchmarks/bench_sweep.py
Prints the figures; nothing is asserted (timing belongs here, not in tests).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """\
name: bench
cluster: juwels-booster
account: bench
law: chinchilla-approach3
nodes: 1
max_concurrent: 16
command: srun python train.py --params {params} --tokens {tokens} --out runs/{run_id}
sweep:
  kind: isoflop
  budgets: [%s]
  points: 100
  span: 8
"""


def write_spec(directory: Path) -> Path:
    budgets = ", ".join(f"{10 ** (17 + 4 * i / 99):.6g}" for i in range(100))  # 1e17 .. 1e21
    path = directory / "bench.yaml"
    path.write_text(SPEC % budgets)
    return path


def in_memory(spec_path: Path, out: Path, repeats: int = 5) -> tuple[float, int, int]:
    from planner.catalog import Catalog
    from planner.sweep import slurm
    from planner.sweep.design import design, load_spec

    catalog = Catalog()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        spec, src = load_spec(spec_path)
        sw = design(spec, src, catalog, out)
        texts = slurm.files(sw)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(sw.runs), len(texts)


def cold_cli(spec_path: Path, out: Path, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "planner", "sweep", str(spec_path), "--out", str(out), "--force",
                        "--format", "json"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_spec(Path(tmp))
        out = Path(tmp) / "sweep"
        seconds, runs, files = in_memory(spec, out)
        print(f"design + render {runs:,} runs ({files} files): {seconds * 1000:7.1f} ms  (median of 5, warm)")
        print(f"planner sweep CLI, {runs:,} runs, files written: {cold_cli(spec, out) * 1000:7.1f} ms  "
              "(median of 3, cold process incl. imports)")


if __name__ == "__main__":
    main()
