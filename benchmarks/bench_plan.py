"""How fast `planner plan` answers: the CLI end to end (cold process) and the library call (warm).

Run: python benchmarks/bench_plan.py
Prints the figures; nothing is asserted (timing belongs here, not in tests).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMANDS = [
    ["plan", "--flops", "5.76e23", "--cluster", "juwels-booster", "--nodes", "64"],
    # the campaign estimator is fitted (leave-one-out over every form) in each cold process
    ["plan", "--model", "llama-2-7b", "--tokens", "2T", "--accelerator", "a100-sxm-80gb"],
    ["plan", "--model", "llama-2-7b", "--tokens", "2T", "--accelerator", "a100-sxm-80gb", "--mfu-basis", "benchmark"],
    ["plan", "--model", "llama-2-7b", "--tokens", "2T", "--accelerator", "a100-sxm-80gb", "--mfu", "0.4"],
    ["plan", "--gpu-hours", "4e6", "--cluster", "jupiter-booster", "--nodes", "all"],
    ["plan", "--params", "400M,1B,10B,67B,175B,280B,520B,1T,10T", "--law", "chinchilla-approach1", "--cluster", "juwels-booster"],
    ["plan", "--flops", "1e23", "--inference-tokens", "2e12"],
]


def cold(args: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "planner", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def warm(repeats: int = 200) -> float:
    from planner.catalog import Catalog
    from planner.costing.plan import PlanRequest, make_plan

    catalog = Catalog()
    request = PlanRequest(flops=5.76e23, cluster="juwels-booster", nodes=64)
    make_plan(request, catalog)
    start = time.perf_counter()
    for _ in range(repeats):
        make_plan(request, catalog)
    return (time.perf_counter() - start) / repeats


def estimator() -> float:
    """Loading the campaign sets and fitting the estimator, on a fresh catalog (what a cold plan pays)."""
    from planner.catalog import Catalog
    from planner.costing.mfu_basis import campaign_estimator

    campaign_estimator(Catalog())  # imports and numpy's lazy modules
    start = time.perf_counter()
    for _ in range(5):
        campaign_estimator(Catalog())
    return (time.perf_counter() - start) / 5


def main() -> None:
    print(f"campaign estimator  {estimator() * 1000:7.1f} ms  load {'+'} fit, fresh catalog (in process)")
    for args in COMMANDS:
        print(f"cold CLI  {cold(args) * 1000:7.1f} ms  planner {' '.join(args)}")
    print(f"warm call {warm() * 1e6:7.1f} µs  make_plan(flops=5.76e23, juwels-booster, 64 nodes)")


if __name__ == "__main__":
    main()
