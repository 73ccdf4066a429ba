import csv
from pathlib import Path

import pytest

from planner.catalog import Catalog, builtin_dir

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog((builtin_dir(),))


@pytest.fixture(scope="session")
def table3() -> list[dict]:
    with open(DATA / "chinchilla_table3.csv") as handle:
        return list(csv.DictReader(handle))
