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

from planner.catalog import Catalog, builtin_dir

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog((builtin_dir(),))


@pytest.fixture(scope="session")
def table3() -> list[dict]:
    with open(DATA / "chinchilla_table3.csv") as handle:
        return list(csv.DictReader(handle))
