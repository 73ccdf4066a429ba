import csv
import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI explores the same examples on every run (reproducible failures, no surprise slow cases);
# developers' runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The fitted campaign estimator is cached across processes (planner.costing.mfu_basis._fitted): tests use a
# cache of their own, never the developer's ~/.cache.
import tempfile  # noqa: E402

os.environ["PLANNER_CACHE_DIR"] = tempfile.mkdtemp(prefix="planner-test-cache-")
# `planner sweep` asks the Slurm at hand for its limits unless told not to: the suite's outputs must not
# depend on whether a Slurm cluster happens to be running (tests of the live path pass recorded text)
os.environ["PLANNER_SWEEP_LIMITS"] = "catalog"

from planner.catalog import Catalog, builtin_dir

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog((builtin_dir(),))


@pytest.fixture(scope="session")
def table3() -> list[dict]:
    with open(DATA / "chinchilla_table3.csv") as handle:
        return list(csv.DictReader(handle))


EPOCH_CSV = DATA / "chinchilla_epoch_svg.csv"


def epoch_options(**kw):
    """Epoch AI's replication of Hoffmann et al. Approach 3 (Besiroglu et al. 2024): drop the 5 highest losses."""
    from planner.fit import FitOptions

    return FitOptions(form="chinchilla", params_col="Model Size", flops_col="Training FLOP", drop_highest=5, **kw)


@pytest.fixture(scope="session")
def epoch_fit() -> dict:
    """The Epoch fit with Epoch's bootstrap (4,000 resamples, seed 42): 4,500 starts per refit, seconds of CPU,
    so it runs once per test session. Tests that read its result share it (do not mutate it); tests of the fit
    itself with other options run their own."""
    from planner.fit import run as fit_run

    return fit_run(EPOCH_CSV, epoch_options(bootstrap=4000, seed=42))
